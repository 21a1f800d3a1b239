//! Model formats other than pickles: every fixture in `corpus/formats/` (made by
//! `corpus/gen/formats.py` with the real libraries, attacks edited from real saves) is scanned
//! and its verdict and rule ids compared with `corpus/formats/manifest.json`.

use picklescan_rs::internals::file::{scan_path, FileOptions};
use picklescan_rs::Scanner;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/formats")
}

struct Entry {
    path: String,
    container: String,
    verdict: String,
    rules: Vec<String>,
}

/// Entries of `manifest.json` and of every `manifest-*.json` beside it (one per generator).
fn manifest() -> Vec<Entry> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(root())
        .expect("readable corpus")
        .map(|e| e.expect("entry").path())
        .filter(|p| is_manifest(&p.file_name().unwrap_or_default().to_string_lossy()))
        .collect();
    files.sort();
    files.iter().flat_map(|p| entries(p)).collect()
}

fn is_manifest(name: &str) -> bool {
    name == "manifest.json" || (name.starts_with("manifest-") && name.ends_with(".json"))
}

fn entries(manifest: &Path) -> Vec<Entry> {
    let text = std::fs::read_to_string(manifest).expect("manifest");
    let v: serde_json::Value = serde_json::from_str(&text).expect("manifest JSON");
    v["files"]
        .as_array()
        .expect("files")
        .iter()
        .map(|e| Entry {
            path: e["path"].as_str().expect("path").to_string(),
            container: e["container"].as_str().expect("container").to_string(),
            verdict: e["verdict"].as_str().expect("verdict").to_string(),
            rules: e["rules"]
                .as_array()
                .expect("rules")
                .iter()
                .map(|r| r.as_str().expect("rule").to_string())
                .collect(),
        })
        .collect()
}

/// Scan every manifest entry whose path starts with `prefix`; fail with every mismatch.
fn check(prefix: &str) -> usize {
    let scanner = Scanner::default();
    let mut problems = Vec::new();
    let mut n = 0;
    for e in manifest().iter().filter(|e| e.path.starts_with(prefix)) {
        n += 1;
        let r = scan_path(&scanner, &root().join(&e.path), &FileOptions::default());
        let got: BTreeSet<&str> = r.findings.iter().map(|f| f.rule.as_str()).collect();
        let missing: Vec<&String> = e
            .rules
            .iter()
            .filter(|x| !got.contains(x.as_str()))
            .collect();
        if r.verdict.as_str() != e.verdict
            || !missing.is_empty()
            || r.format.to_string() != e.container
        {
            problems.push(format!(
                "{}: expected {} {} {:?}, got {} {} {:?}: {:#?}",
                e.path,
                e.container,
                e.verdict,
                e.rules,
                r.format,
                r.verdict,
                got,
                r.findings.iter().map(|f| &f.message).collect::<Vec<_>>()
            ));
        }
    }
    assert!(n > 0, "no fixtures under {prefix}");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    n
}

#[test]
fn chat_templates() {
    let n = check("templates/");
    assert!(n >= 100, "{n}");
}

#[test]
fn every_fixture_is_in_the_manifest() {
    let listed: BTreeSet<String> = manifest().into_iter().map(|e| e.path).collect();
    let mut stack = vec![root()];
    let mut unlisted = Vec::new();
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("readable corpus") {
            let p = entry.expect("entry").path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let rel = p
                .strip_prefix(root())
                .expect("under root")
                .to_string_lossy()
                .replace('\\', "/");
            // `*-contents.json`: what the libraries list in their fixtures, for the readers' tests.
            if is_manifest(&rel)
                || rel.ends_with("README.md")
                || rel.ends_with("-contents.json")
                || rel.contains("/data/")
            {
                continue;
            }
            if !listed.contains(&rel) {
                unlisted.push(rel);
            }
        }
    }
    assert!(unlisted.is_empty(), "not in the manifest: {unlisted:?}");
}

#[test]
fn onnx() {
    let n = check("onnx/");
    assert!(n >= 15, "{n}");
}

#[test]
fn pmml() {
    let n = check("pmml/");
    assert!(n >= 12, "{n}");
}

#[test]
fn legacy_ggml() {
    let n = check("ggml/");
    assert!(n >= 9, "{n}");
}

#[test]
fn skops() {
    let n = check("skops/");
    assert!(n >= 7, "{n}");
}

#[test]
fn hugging_face_remote_code() {
    let n = check("hf/");
    assert!(n >= 8, "{n}");
    // The risky imports of the code beside the config are named in the finding.
    let r = scan_path(
        &Scanner::default(),
        &root().join("hf/remote_code_risky/config.json"),
        &FileOptions::default(),
    );
    let text: Vec<&str> = r.findings.iter().map(|f| f.message.as_str()).collect();
    let all = text.join("\n");
    for want in ["modeling_tiny.py", "subprocess", "socket", "exec("] {
        assert!(all.contains(want), "{want} not in {all}");
    }
    let plain = scan_path(
        &Scanner::default(),
        &root().join("hf/remote_code/config.json"),
        &FileOptions::default(),
    );
    assert!(
        plain
            .findings
            .iter()
            .all(|f| !f.message.contains("imports")),
        "{:?}",
        plain.findings
    );
}

/// Every fixture, cut short and with bytes changed (a fixed pseudo-random sequence), through the
/// whole scan: the readers must answer, never panic.
#[test]
fn damaged_fixtures_never_panic() {
    let scanner = Scanner::default();
    let mut damage = crate::common::Damage::new(0x9e37_79b9_7f4a_7c15);
    let mut n = 0;
    for e in manifest() {
        let data = std::fs::read(root().join(&e.path)).expect("fixture");
        if data.is_empty() || data.len() > 1 << 20 {
            continue;
        }
        let name = e.path.rsplit('/').next().unwrap_or("x").to_string();
        for i in 0..24 {
            let d = damage.copy(&data, 0, i % 4 == 0);
            let _ = picklescan_rs::internals::file::scan_bytes(&scanner, &d, name.clone());
            n += 1;
        }
    }
    assert!(n > 1000, "{n}");
}

#[test]
fn keras() {
    let n = check("keras/");
    assert!(n >= 13, "{n}");
}

#[test]
fn hdf5() {
    let n = check("hdf5/");
    assert!(n >= 40, "{n}");
}

/// Chunked datasets (`corpus/gen/hdf5_chunked.py`): benign data, scanned without reading chunks.
#[test]
fn hdf5_chunked() {
    let n = check("hdf5-chunked/");
    assert!(n >= 10, "{n}");
}

#[test]
fn tensorflow_savedmodel() {
    let n = check("savedmodel/");
    assert!(n >= 40, "{n}");
}

#[test]
fn keras_lambda_bytecode() {
    let n = check("keras-lambda/");
    assert!(n >= 40, "{n}");
}

#[test]
fn sevenz() {
    let n = check("sevenz/");
    assert!(n >= 15, "{n}");
}

/// Damaged copies of every 7z fixture (bytes overwritten, the file cut short) are scanned to a
/// verdict, never a panic (a flipped byte a decoder never reads, past the end of a deflate
/// stream say, may leave an archive as clean as it was).
#[test]
fn damaged_7z_never_panics() {
    let scanner = Scanner::default();
    let mut damage = crate::common::Damage::new(0x9e37_79b9_7f4a_7c15);
    let dir = root().join("sevenz");
    let mut tried = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        if data.len() > 100_000 || data.len() < 40 {
            continue;
        }
        for round in 0..40 {
            // Past the signature header: a shorter cut is no longer a 7z at all.
            let d = damage.copy(&data, 32, round % 8 == 7);
            let tmp = tempfile::NamedTempFile::new().unwrap();
            std::fs::write(tmp.path(), &d).unwrap();
            let r = scan_path(&scanner, tmp.path(), &FileOptions::default());
            if d.len() < data.len() {
                // Cut short: the next header is at the end, so nothing reads whole.
                assert!(
                    r.verdict.as_str() != "clean",
                    "{}: cut at {}",
                    path.display(),
                    d.len()
                );
            }
            tried += 1;
        }
    }
    assert!(tried > 300, "{tried}");
}

/// The 7z reader lists what py7zr lists in every fixture py7zr opens (names, sizes, in order),
/// and every member it decodes within 64 MiB has the CRC-32 of py7zr's extraction
/// (`corpus/formats/sevenz-contents.json`, written by the generator). Folders of methods the
/// reader does not decode (PPMd, Zstandard) must fail as unsupported, never as broken.
#[test]
fn sevenz_reader_agrees_with_py7zr() {
    use picklescan_rs::internals::format::sevenz::{self, SevenZipError};
    let text = std::fs::read_to_string(root().join("sevenz-contents.json")).unwrap();
    let listing: serde_json::Value = serde_json::from_str(&text).unwrap();
    let budget = 64 << 20;
    let (mut archives, mut checked) = (0, 0);
    for (file, members) in listing.as_object().unwrap() {
        let data = std::fs::read(root().join("sevenz").join(file)).unwrap();
        let a = sevenz::read(&data, budget).unwrap_or_else(|e| panic!("{file}: {e}"));
        let members = members.as_array().unwrap();
        let got: Vec<(&str, u64)> = a.entries.iter().map(|e| (&*e.name, e.size)).collect();
        let want: Vec<(&str, u64)> = members
            .iter()
            .map(|m| (m["name"].as_str().unwrap(), m["size"].as_u64().unwrap()))
            .collect();
        assert_eq!(got, want, "{file}");
        let decoded: Vec<sevenz::Decoded> = a
            .folders
            .iter()
            .map(|f| sevenz::decode_folder(&data, &a, f, budget))
            .collect();
        for (e, m) in a.entries.iter().zip(members) {
            let Some(folder) = e.folder else {
                assert_eq!(e.size, 0, "{file}: {}", e.name);
                continue;
            };
            let d = &decoded[folder];
            let start = e.offset as usize;
            match d.data.get(start..start + e.size as usize) {
                Some(bytes) => {
                    assert_eq!(
                        u64::from(crc32fast::hash(bytes)),
                        m["crc32"].as_u64().unwrap(),
                        "{file}: {}",
                        e.name
                    );
                    checked += 1;
                }
                None => match &d.error {
                    Some(SevenZipError::Budget(_)) => assert!(e.size > budget, "{file}"),
                    Some(SevenZipError::Unsupported(m)) => {
                        assert!(m == "PPMd" || m.starts_with("method 04f71101"), "{m}")
                    }
                    other => panic!("{file}: {} not decoded: {other:?}", e.name),
                },
            }
        }
        archives += 1;
    }
    assert!(archives >= 25 && checked >= 70, "{archives} {checked}");
}

/// A 7z of more members than the limit is refused before its file list is built: suspicious,
/// never clean, nothing scanned.
#[test]
fn sevenz_member_limit() {
    use picklescan_rs::rules::RuleSet;
    use picklescan_rs::Limits;
    let path = root().join("sevenz/benign_lzma2.7z");
    let scanner = Scanner::new(
        RuleSet::builtin(),
        Limits {
            max_members: 2,
            ..Limits::default()
        },
    );
    let r = scan_path(&scanner, &path, &FileOptions::default());
    assert_eq!(r.verdict.as_str(), "suspicious");
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule == "PS910" && f.message.contains("3 files (at most 2")),
        "{:?}",
        r.findings
    );
    let r = scan_path(&Scanner::default(), &path, &FileOptions::default());
    assert_eq!(r.verdict.as_str(), "clean");
}

/// A 7z number: the first byte's leading ones count the bytes that follow.
fn sevenz_number(v: u64, out: &mut Vec<u8>) {
    for extra in 0..8u32 {
        if v < 1u64 << (7 * (extra + 1)) {
            let high = (v >> (8 * extra)) as u8;
            out.push((0xff00u16 >> extra) as u8 | high);
            out.extend_from_slice(&v.to_le_bytes()[..extra as usize]);
            return;
        }
    }
    out.push(0xff);
    out.extend_from_slice(&v.to_le_bytes());
}

/// A 7z archive with a plain header: one packed stream `packed`, one folder of one coder
/// (`method`, `props`) declaring `unpack` bytes, split into `files` (name, size) in order.
fn sevenz_archive(
    packed: &[u8],
    method: &[u8],
    props: &[u8],
    unpack: u64,
    files: &[(&str, u64)],
) -> Vec<u8> {
    let mut h = vec![0x01, 0x04, 0x06, 0x00, 0x01, 0x09];
    sevenz_number(packed.len() as u64, &mut h);
    h.extend_from_slice(&[0x00, 0x07, 0x0b, 0x01, 0x00, 0x01]);
    h.push(method.len() as u8 | if props.is_empty() { 0 } else { 0x20 });
    h.extend_from_slice(method);
    if !props.is_empty() {
        sevenz_number(props.len() as u64, &mut h);
        h.extend_from_slice(props);
    }
    h.push(0x0c);
    sevenz_number(unpack, &mut h);
    h.extend_from_slice(&[0x00, 0x08, 0x0d]);
    sevenz_number(files.len() as u64, &mut h);
    h.push(0x09);
    for (_, size) in &files[..files.len() - 1] {
        sevenz_number(*size, &mut h);
    }
    h.extend_from_slice(&[0x00, 0x00, 0x05]);
    sevenz_number(files.len() as u64, &mut h);
    let mut names = vec![0u8];
    for (name, _) in files {
        for u in name.encode_utf16().chain([0]) {
            names.extend_from_slice(&u.to_le_bytes());
        }
    }
    h.push(0x11);
    sevenz_number(names.len() as u64, &mut h);
    h.extend_from_slice(&names);
    h.extend_from_slice(&[0x00, 0x00]);
    let mut start = Vec::new();
    start.extend_from_slice(&(packed.len() as u64).to_le_bytes());
    start.extend_from_slice(&(h.len() as u64).to_le_bytes());
    start.extend_from_slice(&crc32fast::hash(&h).to_le_bytes());
    let mut out = picklescan_rs::internals::format::sevenz::SIGNATURE.to_vec();
    out.extend_from_slice(&[0, 4]);
    out.extend_from_slice(&crc32fast::hash(&start).to_le_bytes());
    out.extend_from_slice(&start);
    out.extend_from_slice(packed);
    out.extend_from_slice(&h);
    out
}

/// Archives written here with a plain header: members are chosen as zip members are (data of
/// no known format is skipped, unless named like a pickle), and an LZMA2 stream that holds far
/// more than its header declares (the 256 MiB of zeros of `bomb_zeros.7z`, declared as 1 MiB)
/// is decoded only up to the declared size.
#[test]
fn sevenz_written_by_hand() {
    use picklescan_rs::internals::format::sevenz;
    let scanner = Scanner::default();
    let scan =
        |data: &[u8]| picklescan_rs::internals::file::scan_bytes(&scanner, data, "x.7z".into());
    let evil = std::fs::read(root().join("../malicious/reduce_posix_system_proto2.pkl")).unwrap();
    let blob: Vec<u8> = (0..4000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8 | 1)
        .collect();
    let mut packed = evil.clone();
    packed.extend_from_slice(&blob);
    let files = [("a.pkl", evil.len() as u64), ("b.bin", blob.len() as u64)];
    let a = sevenz_archive(&packed, &[0], &[], packed.len() as u64, &files);
    let r = scan(&a);
    assert_eq!(
        (r.verdict.as_str(), r.format.to_string().as_str()),
        ("dangerous", "7z")
    );
    assert!(r
        .findings
        .iter()
        .all(|f| f.member.as_deref() == Some("a.pkl")));
    // Without the payload the unknown blob is data, as in a zip; named like a pickle, it is not.
    let a = sevenz_archive(&blob, &[0], &[], blob.len() as u64, &[("b.bin", 4000)]);
    assert_eq!(scan(&a).verdict.as_str(), "clean");
    let a = sevenz_archive(&blob, &[0], &[], blob.len() as u64, &[("b.pkl", 4000)]);
    assert_eq!(scan(&a).verdict.as_str(), "suspicious");
    // A header shorter than its stream: the decoder stops at the declared size.
    let bomb = std::fs::read(root().join("sevenz/bomb_zeros.7z")).unwrap();
    let arch = sevenz::read(&bomb, 1 << 20).unwrap();
    let folder = &arch.folders[0];
    let lzma2 = folder.coders.iter().find(|c| c.method == [0x21]).unwrap();
    let start = 32 + arch.pack_pos as usize;
    let stream = &bomb[start..start + arch.pack_sizes[0] as usize];
    let a = sevenz_archive(
        stream,
        &[0x21],
        &lzma2.props,
        1 << 20,
        &[("zeros.bin", 1 << 20)],
    );
    let parsed = sevenz::read(&a, 1 << 30).unwrap();
    let d = sevenz::decode_folder(&a, &parsed, &parsed.folders[0], 1 << 30);
    assert_eq!((d.data.len(), d.error), (1 << 20, None));
    assert!(d.data.iter().all(|&b| b == 0));
    assert_eq!(scan(&a).verdict.as_str(), "clean");
    // Declared larger than the budget: a prefix, and the budget as the reason.
    let a = sevenz_archive(
        stream,
        &[0x21],
        &lzma2.props,
        1 << 30,
        &[("zeros.bin", 1 << 30)],
    );
    let parsed = sevenz::read(&a, 1 << 20).unwrap();
    let d = sevenz::decode_folder(&a, &parsed, &parsed.folders[0], 1 << 20);
    assert_eq!(d.data.len(), 1 << 20);
    assert!(matches!(d.error, Some(sevenz::SevenZipError::Budget(_))));
}

#[test]
fn zstd_wrappers() {
    let n = check("zstd/");
    assert!(n >= 8, "{n}");
}
