//! Replays every input in fuzz/regressions/<target>/ (crashes the fuzzers found, minimised) through
//! the code its target drives, so a fixed crash stays fixed. Runs without cargo-fuzz.

use picklescan_rs::internals::container;
use picklescan_rs::internals::format::joblib::JoblibHooks;
use picklescan_rs::internals::format::{compress, zip::Archive};
use picklescan_rs::internals::format::{gguf, npy, safetensors};
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
            let _ = safetensors::read(data);
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
        #[cfg(feature = "remote")]
        "zip_partial" => zip_partial(&scanner, data),
        other => panic!("fuzz/regressions/{other}: no such fuzz target"),
    }
}

/// What the `zip_partial` target checks: scanned from its probes and directory, then from what
/// each scan says it lacks, an archive ends with the findings of its whole scan.
#[cfg(feature = "remote")]
fn zip_partial(scanner: &Scanner, data: &[u8]) {
    use picklescan_rs::internals::format::detect::{detect, Kind};
    use picklescan_rs::remote::{plan, range::Sparse};
    if detect(&data[..data.len().min(64)], None) != Kind::Zip {
        return;
    }
    let size = data.len() as u64;
    let mut image = Sparse::new(size).unwrap();
    let fetch = |image: &mut Sparse, start: u64, end: u64| {
        let end = end.min(size);
        if start < end {
            image.put(start, &data[start as usize..end as usize]);
        }
    };
    fetch(&mut image, 0, 64);
    fetch(&mut image, size.saturating_sub(22 + 0xFFFF + 98), size);
    let Ok(Some((lo, hi))) = plan::directory(&image) else {
        return;
    };
    fetch(&mut image, lo, hi.min(size));
    let rules = |s: &container::Scanned| {
        let mut r: Vec<(String, Option<String>)> = s
            .findings
            .iter()
            .map(|f| (f.rule.clone(), f.member.clone()))
            .collect();
        r.sort();
        r
    };
    for _ in 0..16 {
        let scan = container::scan_image(scanner, image.bytes(), &image, None);
        if scan.missing.is_empty() {
            assert_eq!(
                rules(&scan.scanned),
                rules(&container::scan(scanner, data, None))
            );
            return;
        }
        for m in &scan.missing {
            fetch(&mut image, m.start, m.end);
        }
    }
    panic!("still missing bytes after 16 rounds");
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
