//! Chunked HDF5 datasets extracted against h5py: for every fixture `corpus/gen/hdf5_chunked.py`
//! wrote in `corpus/formats/hdf5-chunked/`, each numeric dataset's shape, dtype and the SHA-256
//! of its C-order little-endian bytes as h5py read them (`hdf5-chunked-contents.json`) are what
//! extraction gives. Damaged chunks (a deflate bomb, a cut stream, a short chunk, a wrong
//! checksum, bytes overwritten, a cut file) are errors naming the dataset, never a panic, and
//! what the chunks decode to is bounded by the budget.

use picklescan_rs::extract::{ExtractOptions, Extraction, Source};
use picklescan_rs::internals::format::hdf5;
use picklescan_rs::{Limits, Scanner};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/formats")
}

fn expected() -> Value {
    let text = std::fs::read_to_string(dir().join("hdf5-chunked-contents.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn collect(
    name: &str,
    bytes: Vec<u8>,
    scanner: &Scanner,
    select: Option<&str>,
) -> Result<Extraction, String> {
    let opts = ExtractOptions {
        skip_unsupported: true,
        select: select.map(str::to_string),
        ..Default::default()
    };
    Source::from_bytes(name, bytes)
        .collect(scanner, &opts)
        .map_err(|e| e.to_string())
}

fn read(name: &str) -> Vec<u8> {
    std::fs::read(dir().join("hdf5-chunked").join(name)).unwrap()
}

/// Datasets left out on purpose, and a word of the reason given.
const NOT_EXTRACTED: &[(&str, &str, &str)] = &[("lzf.h5", "lzf", "lzf (32000)")];

#[test]
fn chunked_datasets_match_h5py() {
    let expected = expected();
    let files = expected["files"].as_object().unwrap();
    assert!(files.len() >= 10, "{} files", files.len());
    let scanner = Scanner::default();
    let mut problems = Vec::new();
    let mut checked = 0;
    for (file, datasets) in files {
        if file == "damaged_chunks.h5" {
            continue;
        }
        let x = match collect(file, read(file), &scanner, None) {
            Ok(x) => x,
            Err(e) => {
                problems.push(format!("{file}: {e}"));
                continue;
            }
        };
        for (name, want) in datasets.as_object().unwrap() {
            if let Some((_, _, why)) = NOT_EXTRACTED
                .iter()
                .find(|(f, d, _)| f == file && d == name)
            {
                match x.skipped.iter().find(|s| &s.name == name) {
                    Some(s) if s.what.contains(why) => {}
                    other => problems.push(format!(
                        "{file}/{name}: expected skipped ({why}), got {other:?}"
                    )),
                }
                continue;
            }
            let Some(t) = x.tensors.iter().find(|t| &t.name == name) else {
                problems.push(format!("{file}/{name}: not extracted ({:?})", x.skipped));
                continue;
            };
            let dtype = want["dtype"].as_str().unwrap(); // numpy's, little-endian: "<f4"
            let kind = dtype[1..2].to_uppercase();
            let bits = dtype[2..].parse::<u32>().unwrap() * 8;
            let want_dtype = format!("{kind}{bits}");
            let shape: Vec<u64> = want["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap())
                .collect();
            let mut bytes = Vec::new();
            t.source.write_to(&mut bytes, 1 << 16).unwrap();
            let sha = format!("{:x}", Sha256::digest(&bytes));
            if t.dtype.safetensors_name() != want_dtype
                || t.shape != shape
                || Some(sha.as_str()) != want["sha256"].as_str()
            {
                problems.push(format!(
                    "{file}/{name}: {} {:?} {sha}, h5py {want}",
                    t.dtype.safetensors_name(),
                    t.shape
                ));
            }
            checked += 1;
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 45, "{checked} datasets checked");
}

/// One dataset of a file read whole, as extraction reads it.
fn read_one(data: &[u8], path: &str, budget: &mut u64) -> Result<Vec<u8>, hdf5::Hdf5Error> {
    let contents = hdf5::read(data).unwrap();
    let d = contents.datasets.iter().find(|d| d.path == path).unwrap();
    hdf5::read_chunked(data, d, budget)
}

#[test]
fn damaged_chunks_are_errors() {
    let bytes = read("damaged_chunks.h5");
    for (name, why) in [
        ("bomb", "inflates past its 64 bytes"),
        ("cut", "ends before its stream does"),
        ("short", "decodes to 60 bytes, not its 64"),
        ("bad_checksum", "fletcher32 checksum mismatch"),
    ] {
        let mut budget = u64::MAX;
        let e = read_one(&bytes, &format!("/{name}"), &mut budget).unwrap_err();
        let e = e.to_string();
        assert!(e.contains(name) && e.contains(why), "{name}: {e}");
    }
    assert_eq!(read_one(&bytes, "/good", &mut 1024).unwrap().len(), 64);
    // Extraction stops at the first damaged dataset, naming it.
    let e = collect("d.h5", bytes, &Scanner::default(), None).unwrap_err();
    assert!(
        e.contains("/bad_checksum") && e.contains("fletcher32"),
        "{e}"
    );
}

#[test]
fn overwritten_or_cut_chunks_are_errors() {
    let scanner = Scanner::default();
    let expected = expected();
    let first = &expected["files"]["gzip_levels.h5"]["gzip1"]["first_chunk"];
    let (at, size) = (
        first["offset"].as_u64().unwrap() as usize,
        first["size"].as_u64().unwrap() as usize,
    );
    let original = read("gzip_levels.h5");
    // Bytes in the middle of the deflate stream: the stream or its Adler-32 no longer holds.
    let mut d = original.clone();
    for b in &mut d[at + size / 2..at + size / 2 + 16] {
        *b ^= 0x5a;
    }
    let e = collect("g.h5", d, &scanner, None).unwrap_err();
    assert!(e.contains("/gzip1") && e.contains("deflate"), "{e}");
    // The file cut inside the chunk.
    let e = collect("g.h5", original[..at + size / 2].to_vec(), &scanner, None);
    assert!(e.is_err(), "{e:?}");
}

/// Random damage to every fixture: extraction ends in a result or an error, never a panic.
#[test]
fn damaged_fixtures_never_panic() {
    let scanner = Scanner::default();
    let mut damage = crate::common::Damage::new(0x9e37_79b9_7f4a_7c15);
    for entry in std::fs::read_dir(dir().join("hdf5-chunked")).unwrap() {
        let data = std::fs::read(entry.unwrap().path()).unwrap();
        for round in 0..40 {
            let d = damage.copy(&data, 0, round % 10 == 9);
            let _ = collect("x.h5", d, &scanner, None);
        }
    }
}

#[test]
fn decompressed_bytes_are_charged_to_the_budget() {
    let scanner = |ratio| {
        let base = Scanner::default();
        let limits = Limits {
            ratio_floor: 4096,
            max_ratio: ratio,
            ..base.limits.clone()
        };
        Scanner::new(base.rules, limits)
    };
    // 89 200 bytes of data in a 74 350-byte file: past a budget of once the file's size,
    // within twice.
    let e = collect("g.h5", read("gzip_levels.h5"), &scanner(1), None).unwrap_err();
    assert!(e.contains("budget"), "{e}");
    assert!(collect("g.h5", read("gzip_levels.h5"), &scanner(2), None).is_ok());
    // A budget smaller than one dataset: refused before anything is allocated.
    let data = read("gzip_levels.h5");
    let e = read_one(&data, "/ramp", &mut 39_999).unwrap_err();
    assert!(matches!(e, hdf5::Hdf5Error::Limit(_)), "{e}");
}
