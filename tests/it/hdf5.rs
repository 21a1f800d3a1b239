//! The HDF5 reader against h5py: for every benign fixture in `corpus/formats/hdf5/`, the
//! datasets (shape, element kind and size, layout, file offset of contiguous data) and the
//! attributes (names, string values) that h5py listed when `corpus/gen/hdf5.py` wrote it
//! (`corpus/formats/hdf5-contents.json`) are exactly what `format::hdf5::read` finds.

use picklescan_rs::internals::format::hdf5::{self, AttrValue, Element, Layout};
use std::collections::BTreeMap;
use std::path::Path;

fn formats() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/corpus/formats"))
}

fn kind(e: Element) -> (&'static str, u64) {
    match e {
        Element::Float { size, .. } => ("f", size as u64),
        Element::Int { size, signed, .. } => (if signed { "i" } else { "u" }, size as u64),
        Element::Other { size } => ("other", size as u64),
    }
}

#[test]
fn reader_finds_what_h5py_lists() {
    let text = std::fs::read_to_string(formats().join("hdf5-contents.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
    let files = expected.as_object().unwrap();
    assert!(files.len() >= 15, "{} files listed", files.len());
    let mut problems = Vec::new();
    for (name, want) in files {
        let data = std::fs::read(formats().join("hdf5").join(name)).unwrap();
        let got = match hdf5::read(&data) {
            Ok(c) => c,
            Err(e) => {
                problems.push(format!("{name}: {e}"));
                continue;
            }
        };
        // Datasets.
        let want_ds = want["datasets"].as_object().unwrap();
        let got_ds: BTreeMap<&str, &hdf5::Dataset> =
            got.datasets.iter().map(|d| (d.path.as_str(), d)).collect();
        let names = |m: Vec<&str>| m.join(", ");
        if want_ds.len() != got_ds.len() || want_ds.keys().any(|k| !got_ds.contains_key(k.as_str()))
        {
            problems.push(format!(
                "{name}: datasets differ: h5py [{}], read [{}]",
                names(want_ds.keys().map(String::as_str).collect()),
                names(got_ds.keys().copied().collect())
            ));
            continue;
        }
        for (path, w) in want_ds {
            let d = got_ds[path.as_str()];
            let shape: Vec<u64> = w["shape"]
                .as_array()
                .map(|a| a.iter().map(|x| x.as_u64().unwrap()).collect())
                .unwrap_or_default();
            let (k, size) = kind(d.element);
            let want_kind = match w["kind"].as_str().unwrap() {
                k @ ("f" | "i" | "u") => k,
                _ => "other",
            };
            let layout = match d.layout {
                Layout::Compact { .. } => "compact",
                Layout::Contiguous { .. } => "contiguous",
                Layout::Chunked(_) => "chunked",
                Layout::Virtual => "virtual",
            };
            let offset = match d.layout {
                Layout::Contiguous { offset, .. } => offset,
                _ => None,
            };
            let want_offset = w["offset"].as_u64();
            // numpy's size of a variable-length string is a pointer's, HDF5's a heap reference's.
            let object = w["kind"].as_str() == Some("O");
            if d.shape != shape
                || (!object && size != w["size"].as_u64().unwrap())
                || k != want_kind
                || layout != w["layout"].as_str().unwrap()
                || offset != want_offset
            {
                problems.push(format!(
                    "{name}{path}: h5py {w}, read shape {:?} {k}{size} {layout} at {offset:?}",
                    d.shape
                ));
            }
        }
        // Attributes.
        let want_attrs = want["attributes"].as_object().unwrap();
        let got_attrs: BTreeMap<String, &AttrValue> = got
            .attributes
            .iter()
            .map(|a| (format!("{}@{}", a.object, a.name), &a.value))
            .collect();
        if want_attrs.len() != got_attrs.len() {
            problems.push(format!(
                "{name}: {} attributes listed by h5py, {} read",
                want_attrs.len(),
                got_attrs.len()
            ));
        }
        for (key, w) in want_attrs {
            match (got_attrs.get(key), w) {
                (None, _) => problems.push(format!("{name}: attribute {key} not read")),
                (Some(AttrValue::Strings(s)), serde_json::Value::Array(ws)) => {
                    let ws: Vec<&str> = ws.iter().map(|x| x.as_str().unwrap()).collect();
                    if s.iter().map(String::as_str).ne(ws.iter().copied()) {
                        problems.push(format!("{name}: attribute {key}: {s:?} != {ws:?}"));
                    }
                }
                (Some(AttrValue::Other), serde_json::Value::Null) => {}
                (Some(v), w) => {
                    problems.push(format!("{name}: attribute {key}: read {v:?}, h5py {w}"))
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Damaged copies of every fixture (bytes overwritten, the file cut short) are read to an error
/// or a result, never a panic, in bounded time.
#[test]
fn damaged_files_never_panic() {
    let mut damage = crate::common::Damage::new(0x2545_f491_4f6c_dd1d);
    let dir = formats().join("hdf5");
    let mut tried = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if data.len() > 200_000 || data.is_empty() {
            continue;
        }
        for round in 0..60 {
            let d = damage.copy(&data, 0, round % 10 == 9);
            let _ = hdf5::read(&d);
            tried += 1;
        }
    }
    assert!(tried > 1000, "{tried} damaged files read");
}
