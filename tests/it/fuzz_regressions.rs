//! Replays every input in fuzz/regressions/<target>/ (crashes the fuzzers found, minimised) through
//! the code its target drives, so a fixed crash stays fixed. Runs without cargo-fuzz.

use picklescan_rs::internals::container::{self, gguf, joblib::JoblibHooks, npy, safetensors};
use picklescan_rs::internals::format::{compress, zip::Archive};
use picklescan_rs::internals::pickle::vm::NoHooks;
use picklescan_rs::Scanner;
use std::path::Path;

fn replay(target: &str, data: &[u8]) {
    let scanner = Scanner::default();
    match target {
        "scan_any" => {
            let _ = container::scan(&scanner, data, None);
        }
        "pickle_vm" => {
            let _ = scanner.scan_pickles(data, &mut NoHooks);
        }
        "joblib" => {
            let _ = scanner.scan_pickles(data, &mut JoblibHooks::new(data));
        }
        "zip" => {
            if let Ok(a) = Archive::parse(data, 10_000) {
                let mut notes = Vec::new();
                for e in &a.entries {
                    let _ = a.head(e, 64, &mut notes);
                    let _ = a.read(e, 1 << 20, &mut notes);
                }
            }
        }
        "npy" => {
            let _ = npy::parse_header(data);
        }
        "safetensors" => {
            let _ = safetensors::validate(data);
        }
        "gguf" => {
            let _ = gguf::validate(data);
        }
        "decompress" => {
            use compress::Codec::*;
            for codec in [Zlib, Gzip, Bz2, Lzma, Xz, Lz4, ZFile] {
                let _ = compress::decompress(codec, data, 1 << 20);
            }
        }
        other => panic!("fuzz/regressions/{other}: no such fuzz target"),
    }
}

#[test]
fn every_regression_input_replays_without_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/regressions");
    let mut replayed = 0;
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        if !dir.is_dir() {
            continue;
        }
        let target = dir.file_name().unwrap().to_string_lossy().into_owned();
        for f in std::fs::read_dir(&dir).unwrap() {
            let path = f.unwrap().path();
            replay(&target, &std::fs::read(&path).unwrap());
            replayed += 1;
        }
    }
    // Every target is exercised at least with the corpus seeds below, even before any crash.
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/malformed");
    for f in std::fs::read_dir(&seeds).unwrap() {
        let data = std::fs::read(f.unwrap().path()).unwrap();
        for t in [
            "scan_any",
            "pickle_vm",
            "joblib",
            "zip",
            "npy",
            "safetensors",
            "gguf",
            "decompress",
        ] {
            replay(t, &data);
        }
        replayed += 1;
    }
    assert!(replayed > 0);
}
