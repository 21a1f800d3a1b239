//! Containers: every corpus fixture that is not a plain pickle gets its manifest verdict, format
//! and globals; targeted cases for each zip trick, legacy position, compression, npy, safetensors
//! and GGUF check.

use crate::common::compress;
use crate::manifest;
use flate2::write::DeflateEncoder;
use picklescan_rs::internals::file::{scan_bytes, scan_path, FileOptions};
use picklescan_rs::internals::format::detect::{detect, Kind, Recognised};
use picklescan_rs::report::FileReport;
use picklescan_rs::Format;
use picklescan_rs::{Limits, Scanner, Verdict};
use std::io::Write;

fn scanner() -> Scanner {
    Scanner::default()
}

#[test]
fn corpus_container_fixtures_match_their_manifest() {
    let s = scanner();
    let entries = manifest::all();
    let mut checked = 0;
    let mut failures = Vec::new();
    for (file, e) in &entries {
        if e.container == "pickle" {
            continue;
        }
        checked += 1;
        if let Err(msg) = manifest::check(&s, file, e) {
            failures.push(msg);
        }
    }
    assert!(
        checked > 0 || entries.is_empty(),
        "no container fixture checked"
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

// ----------------------------------------------------------------------------------------------
// Builders
// ----------------------------------------------------------------------------------------------

/// `posix.system('echo pwned')` at protocol 2.
fn evil() -> Vec<u8> {
    let mut v = vec![0x80, 0x02];
    v.extend_from_slice(b"cposix\nsystem\nq\x00X\x0a\x00\x00\x00echo pwned\x85R.");
    v
}

/// Protocol 0 version of the same call (CVE-2025-10155: protocol 0/1 pickles named `.bin`).
fn evil_proto0() -> Vec<u8> {
    b"cposix\nsystem\n(S'echo pwned'\ntR.".to_vec()
}

/// A benign protocol 2 pickle: `{'a': 1}`.
fn benign() -> Vec<u8> {
    vec![
        0x80, 0x02, b'}', b'q', 0, b'X', 1, 0, 0, 0, b'a', b'K', 1, b's', b'.',
    ]
}

/// A data.pkl that references storage `key` as `archive/data/<key>`.
fn data_pkl_with_storage(key: &str) -> Vec<u8> {
    let mut v = vec![0x80, 0x02];
    // ('storage', torch.FloatStorage, key, 'cpu', 1) BINPERSID, then STOP.
    v.extend_from_slice(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\n");
    v.push(b'X');
    v.extend((key.len() as u32).to_le_bytes());
    v.extend_from_slice(key.as_bytes());
    v.extend_from_slice(b"X\x03\x00\x00\x00cpuK\x01tQ.");
    v
}

#[derive(Clone)]
struct Member {
    name: String,
    data: Vec<u8>,
    deflate: bool,
    flags: u16,
    local_flags: Option<u16>,
    method_override: Option<u16>,
    crc_override: Option<u32>,
    local_name: Option<String>,
    local_method: Option<u16>,
}

fn member(name: &str, data: &[u8]) -> Member {
    Member {
        name: name.into(),
        data: data.to_vec(),
        deflate: false,
        flags: 0,
        local_flags: None,
        method_override: None,
        crc_override: None,
        local_name: None,
        local_method: None,
    }
}

#[derive(Default)]
struct ZipOpts {
    /// Bytes before the archive; `shift_offsets` records offsets as if they were not there.
    prefix: Vec<u8>,
    unshifted_offsets: bool,
    zip64: bool,
    no_end: bool,
}

fn build_zip(members: &[Member], o: &ZipOpts) -> Vec<u8> {
    let mut out = o.prefix.clone();
    let base = if o.unshifted_offsets {
        o.prefix.len()
    } else {
        0
    };
    let mut central = Vec::new();
    for m in members {
        let stored = if m.deflate {
            let mut e = DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&m.data).unwrap();
            e.finish().unwrap()
        } else {
            m.data.clone()
        };
        let method = m.method_override.unwrap_or(if m.deflate { 8 } else { 0 });
        let crc = m.crc_override.unwrap_or_else(|| crc32fast::hash(&m.data));
        let offset = (out.len() - base) as u32;
        let lname = m.local_name.clone().unwrap_or(m.name.clone());
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend(20u16.to_le_bytes());
        out.extend(m.local_flags.unwrap_or(m.flags).to_le_bytes());
        out.extend(m.local_method.unwrap_or(method).to_le_bytes());
        out.extend([0u8; 4]);
        out.extend(crc.to_le_bytes());
        out.extend((stored.len() as u32).to_le_bytes());
        out.extend((m.data.len() as u32).to_le_bytes());
        out.extend((lname.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(lname.as_bytes());
        out.extend(&stored);
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend(20u16.to_le_bytes());
        central.extend(20u16.to_le_bytes());
        central.extend(m.flags.to_le_bytes());
        central.extend(method.to_le_bytes());
        central.extend([0u8; 4]);
        central.extend(crc.to_le_bytes());
        if o.zip64 {
            central.extend(0xFFFF_FFFFu32.to_le_bytes());
            central.extend(0xFFFF_FFFFu32.to_le_bytes());
        } else {
            central.extend((stored.len() as u32).to_le_bytes());
            central.extend((m.data.len() as u32).to_le_bytes());
        }
        central.extend((m.name.len() as u16).to_le_bytes());
        central.extend((if o.zip64 { 28u16 } else { 0 }).to_le_bytes());
        central.extend([0u8; 10]);
        central.extend((if o.zip64 { 0xFFFF_FFFF } else { offset }).to_le_bytes());
        central.extend(m.name.as_bytes());
        if o.zip64 {
            central.extend(1u16.to_le_bytes());
            central.extend(24u16.to_le_bytes());
            central.extend((m.data.len() as u64).to_le_bytes());
            central.extend((stored.len() as u64).to_le_bytes());
            central.extend(u64::from(offset).to_le_bytes());
        }
    }
    if o.no_end {
        return out;
    }
    let cd_offset = out.len() - base;
    out.extend(&central);
    let n = members.len();
    if o.zip64 {
        let z64 = out.len() - base;
        out.extend(0x0606_4b50u32.to_le_bytes());
        out.extend(44u64.to_le_bytes());
        out.extend([45u8, 0, 45, 0]);
        out.extend([0u8; 8]);
        out.extend((n as u64).to_le_bytes());
        out.extend((n as u64).to_le_bytes());
        out.extend((central.len() as u64).to_le_bytes());
        out.extend((cd_offset as u64).to_le_bytes());
        out.extend(0x0706_4b50u32.to_le_bytes());
        out.extend(0u32.to_le_bytes());
        out.extend((z64 as u64).to_le_bytes());
        out.extend(1u32.to_le_bytes());
    }
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    let n16 = if o.zip64 { 0xFFFF } else { n as u16 };
    out.extend(n16.to_le_bytes());
    out.extend(n16.to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(
        (if o.zip64 {
            0xFFFF_FFFF
        } else {
            cd_offset as u32
        })
        .to_le_bytes(),
    );
    out.extend(0u16.to_le_bytes());
    out
}

fn torch_members(data_pkl: &[u8]) -> Vec<Member> {
    vec![
        member("archive/data.pkl", data_pkl),
        member("archive/.format_version", b"1"),
        member("archive/byteorder", b"little"),
        member("archive/data/0", &[0x11, 0x22, 0x33, 0x44]),
        member("archive/version", b"3\n"),
        member(
            "archive/.data/serialization_id",
            b"0123456789012345678901234567890123456789",
        ),
    ]
}

fn scan(data: &[u8]) -> FileReport {
    scan_bytes(&scanner(), data, "model.bin".into())
}

fn has(r: &FileReport, rule: &str) -> bool {
    r.findings.iter().any(|f| f.rule == rule)
}

fn finds_system(r: &FileReport) -> bool {
    r.findings
        .iter()
        .any(|f| f.global.as_deref() == Some("posix.system"))
}

fn anomalies(r: &FileReport) -> Vec<String> {
    r.findings
        .iter()
        .filter(|f| f.global.is_none() && f.rule != "PS000")
        .map(|f| format!("{} {}", f.rule, f.message))
        .collect()
}

// ----------------------------------------------------------------------------------------------
// Detection
// ----------------------------------------------------------------------------------------------

#[test]
fn detection_is_by_content() {
    assert_eq!(detect(b"PK\x03\x04rest", None), Kind::Zip);
    assert_eq!(detect(b"PK\x05\x06", Some("a.pkl")), Kind::Zip);
    assert_eq!(detect(b"\x93NUMPY\x01\x00", None), Kind::Npy);
    assert_eq!(detect(b"GGUF\x03\x00\x00\x00", None), Kind::Gguf);
    assert_eq!(
        detect(picklescan_rs::internals::format::torch::LEGACY_MAGIC, None),
        Kind::TorchLegacy
    );
    assert_eq!(detect(&evil(), Some("model.safetensors")), Kind::Pickle);
    assert_eq!(
        detect(&evil_proto0(), Some("pytorch_model.bin")),
        Kind::Pickle
    );
    assert_eq!(
        detect(b"\x37\x7a\xbc\xaf\x27\x1cxx", None),
        Kind::Format(Recognised::SevenZip)
    );
    assert_eq!(
        detect(b"Rar!\x1a\x07\x00", None),
        Kind::Unscannable(&Format::Rar)
    );
    assert_eq!(
        detect(&[0x28, 0xb5, 0x2f, 0xfd, 0], None),
        Kind::Compressed(picklescan_rs::internals::format::compress::Codec::Zstd)
    );
    assert_eq!(detect(b"", None), Kind::Empty);
    assert_eq!(detect(b"\x00\x01\x02", None), Kind::Unknown);
    for (magic, c) in [
        (&b"\x78\x9c"[..], "zlib"),
        (b"\x1f\x8b\x08", "gzip"),
        (b"BZh9", "bz2"),
        (b"\x5d\x00\x00\x80", "lzma"),
        (b"\xfd7zXZ\x00", "xz"),
        (b"\x04\x22\x4d\x18", "lz4"),
    ] {
        assert_eq!(detect(magic, None).format().to_string(), c);
    }
}

#[test]
fn protocol_0_pickle_named_bin_is_scanned() {
    let r = scan(&evil_proto0());
    assert_eq!(r.format, Format::Pickle);
    assert!(finds_system(&r));
}

#[test]
fn unknown_and_empty_content_is_never_clean() {
    for data in [&b""[..], b"\x00\x00garbage", b"lorem ipsum"] {
        let r = scan(data);
        assert_eq!(r.verdict, Verdict::Suspicious, "{data:?}: {:?}", r.findings);
    }
}

// ----------------------------------------------------------------------------------------------
// Zip tricks
// ----------------------------------------------------------------------------------------------

#[test]
fn benign_torch_zip_members_raise_no_anomaly() {
    let z = build_zip(
        &torch_members(&data_pkl_with_storage("0")),
        &ZipOpts::default(),
    );
    let r = scan(&z);
    assert_eq!(r.format, Format::TorchZip);
    assert!(anomalies(&r).is_empty(), "{:?}", anomalies(&r));
}

#[test]
fn referenced_storage_is_skipped_but_unreferenced_pickle_member_is_scanned() {
    let mut m = torch_members(&data_pkl_with_storage("0"));
    // data/0 is referenced: even pickle bytes there are data torch never unpickles.
    m[3].data = evil();
    let r = scan(&build_zip(&m, &ZipOpts::default()));
    assert!(!finds_system(&r), "{:?}", r.findings);
    // data/99 is not referenced: scanned by content, whatever its name.
    m.push(member("archive/data/99", &evil()));
    m.push(member("archive/notes.txt", &evil_proto0()));
    let r = scan(&build_zip(&m, &ZipOpts::default()));
    let members: Vec<_> = r
        .findings
        .iter()
        .filter(|f| f.global.as_deref() == Some("posix.system"))
        .map(|f| f.member.clone().unwrap_or_default())
        .collect();
    assert!(
        members.contains(&"archive/data/99".to_string()),
        "{members:?}"
    );
    assert!(
        members.contains(&"archive/notes.txt".to_string()),
        "{members:?}"
    );
}

#[test]
fn crc_mismatch_is_noted_and_scanned() {
    let mut m = torch_members(&evil());
    m[0].crc_override = Some(0xdead_beef);
    let r = scan(&build_zip(&m, &ZipOpts::default()));
    assert!(finds_system(&r));
    assert!(has(&r, "PS910"));
    // CRC 0 (torch's set_crc32_options(False)) is not an oddity.
    let mut m = torch_members(&data_pkl_with_storage("0"));
    for x in &mut m {
        x.crc_override = Some(0);
    }
    let r = scan(&build_zip(&m, &ZipOpts::default()));
    assert!(anomalies(&r).is_empty(), "{:?}", anomalies(&r));
}

#[test]
fn local_header_disagreement_and_odd_flags_are_noted() {
    let mut m = torch_members(&evil());
    m[0].local_name = Some("archive/other.pkl".into());
    m[0].local_flags = Some(0x0001);
    let r = scan(&build_zip(&m, &ZipOpts::default()));
    assert!(finds_system(&r));
    assert!(has(&r, "PS910"));
}

#[test]
fn duplicate_names_are_all_scanned() {
    for evil_first in [true, false] {
        let (a, b) = if evil_first {
            (evil(), benign())
        } else {
            (benign(), evil())
        };
        let mut m = vec![
            member("archive/data.pkl", &a),
            member("archive/DATA.pkl", &b),
        ];
        m.push(member("archive/version", b"3\n"));
        let r = scan(&build_zip(&m, &ZipOpts::default()));
        assert!(finds_system(&r), "evil first: {evil_first}");
        assert!(has(&r, "PS910"));
    }
}

#[test]
fn bytes_before_the_archive_shifted_or_not() {
    for unshifted in [false, true] {
        let o = ZipOpts {
            prefix: b"\x00\x01junk junk junk".to_vec(),
            unshifted_offsets: unshifted,
            ..Default::default()
        };
        let r = scan(&build_zip(&torch_members(&evil()), &o));
        assert_eq!(r.format, Format::TorchZip, "unshifted: {unshifted}");
        assert!(finds_system(&r));
        assert!(has(&r, "PS910"));
    }
    // A pickle before the zip is what torch.load actually runs.
    let o = ZipOpts {
        prefix: evil(),
        ..Default::default()
    };
    let z = build_zip(&torch_members(&benign()), &o);
    assert!(finds_system(&scan(&z)));
}

#[test]
fn zip64_records_are_read() {
    let o = ZipOpts {
        zip64: true,
        ..Default::default()
    };
    let r = scan(&build_zip(&torch_members(&evil()), &o));
    assert_eq!(r.format, Format::TorchZip);
    assert!(finds_system(&r), "{:?}", r.findings);
}

#[test]
fn missing_central_directory_walks_local_headers() {
    let o = ZipOpts {
        no_end: true,
        ..Default::default()
    };
    let r = scan(&build_zip(&torch_members(&evil()), &o));
    assert!(finds_system(&r), "{:?}", r.findings);
    assert!(has(&r, "PS910"));
}

#[test]
fn corrupt_member_before_data_pkl_does_not_stop_the_scan() {
    let mut bad = member("archive/aaa.pkl", b"xxxx");
    bad.deflate = false;
    bad.method_override = Some(8); // claims deflate, is not
    let mut m = vec![bad];
    m.extend(torch_members(&evil()));
    let r = scan(&build_zip(&m, &ZipOpts::default()));
    assert!(finds_system(&r));
    assert!(has(&r, "PS910"));
}

#[test]
fn deflated_members_are_inflated_and_budgeted() {
    let mut m = torch_members(&evil());
    m[0].deflate = true;
    let z = build_zip(&m, &ZipOpts::default());
    assert!(finds_system(&scan(&z)));

    let mut bomb = member("archive/big.pkl", &vec![b'N'; 1 << 20]);
    bomb.deflate = true;
    let z = build_zip(&[bomb], &ZipOpts::default());
    let s = Scanner::new(
        Default::default(),
        Limits {
            max_decompressed: 1000,
            ..Limits::default()
        },
    );
    let r = scan_bytes(&s, &z, "x.zip".into());
    assert!(has(&r, "PS916"), "{:?}", r.findings);
}

#[test]
fn encrypted_and_unsupported_members_are_suspicious() {
    let mut m = member("archive/data.pkl", &evil());
    m.flags = 0x0001;
    let r = scan(&build_zip(&[m], &ZipOpts::default()));
    assert!(has(&r, "PS911"));
    // Stored in clear despite the flag: scanned anyway.
    assert!(finds_system(&r));
    let mut m = member("archive/data.pkl", b"whatever");
    m.method_override = Some(12);
    let r = scan(&build_zip(&[m], &ZipOpts::default()));
    assert!(has(&r, "PS911"));
    assert_eq!(r.verdict, Verdict::Suspicious);
}

#[test]
fn nested_containers_are_scanned_to_the_depth_limit() {
    let inner = build_zip(&[member("model.pkl", &evil())], &ZipOpts::default());
    let outer = build_zip(&[member("inner.zip", &inner)], &ZipOpts::default());
    let r = scan(&outer);
    let f = r
        .findings
        .iter()
        .find(|f| f.global.as_deref() == Some("posix.system"))
        .expect("found");
    assert_eq!(f.member.as_deref(), Some("inner.zip!model.pkl"));

    let mut z = build_zip(&[member("model.pkl", &evil())], &ZipOpts::default());
    for _ in 0..3 {
        z = build_zip(&[member("n.zip", &z)], &ZipOpts::default());
    }
    let s = Scanner::new(
        Default::default(),
        Limits {
            max_container_depth: 2,
            ..Limits::default()
        },
    );
    let r = scan_bytes(&s, &z, "x.zip".into());
    assert!(has(&r, "PS915"));
    assert_eq!(r.verdict, Verdict::Suspicious);
}

#[test]
fn torchscript_code_is_judged_by_what_it_calls() {
    let archive = |code: &[u8]| {
        let m = vec![
            member("m/data.pkl", &benign()),
            member("m/constants.pkl", &benign()),
            member("m/code/__torch__.py", code),
            member("m/version", b"3\n"),
        ];
        scan(&build_zip(&m, &ZipOpts::default()))
    };
    let r = archive(
        b"class M(Module):\n  def forward(self, x: Tensor) -> Tensor:\n    return torch.relu(x)\n",
    );
    assert_eq!(r.format, Format::TorchScript);
    assert_eq!(r.verdict, Verdict::Clean, "{r:#?}");
    let r = archive(b"class M(Module):\n  def forward(self, x: Tensor) -> Tensor:\n    _0 = ops.aten.save(x, \"/tmp/x\")\n    return x\n");
    assert!(has(&r, "PS940"));
    assert_eq!(r.verdict, Verdict::Dangerous);
    let r = archive(b"class M(Module):\n  def forward(self, x: Tensor) -> Tensor:\n    return ops.acme.fast_relu(x)\n");
    assert!(has(&r, "PS941"));
    assert_eq!(r.verdict, Verdict::Suspicious);
}

// ----------------------------------------------------------------------------------------------
// torch legacy and tar
// ----------------------------------------------------------------------------------------------

/// A legacy file; `evil_at` (0..5) replaces that pickle with the evil one.
fn legacy(evil_at: Option<usize>) -> Vec<u8> {
    let key = "140000";
    let mut model = vec![0x80, 0x02];
    model.extend_from_slice(b"(X\x07\x00\x00\x00storagectorch\nFloatStorage\nX\x06\x00\x00\x00140000X\x03\x00\x00\x00cpuK\x02Ntq\x00Q.");
    let pickles: Vec<Vec<u8>> = vec![
        picklescan_rs::internals::format::torch::LEGACY_MAGIC.to_vec(),
        vec![0x80, 0x02, b'M', 0xe9, 0x03, b'.'],
        benign(),
        model,
        {
            let mut v = vec![0x80, 0x02, b']', b'q', 0, b'X'];
            v.extend((key.len() as u32).to_le_bytes());
            v.extend_from_slice(key.as_bytes());
            v.extend_from_slice(b"a.");
            v
        },
    ];
    let mut out = Vec::new();
    for (i, p) in pickles.iter().enumerate() {
        if evil_at == Some(i) {
            out.extend(evil());
        } else {
            out.extend(p);
        }
    }
    // Raw storage: 2 floats whose bytes start like a pickle, to prove they are skipped.
    out.extend(2u64.to_le_bytes());
    out.extend(b"cos\nsys\n");
    out
}

#[test]
fn legacy_storages_are_skipped_and_every_position_is_scanned() {
    let r = scan(&legacy(None));
    assert_eq!(r.format, Format::TorchLegacy);
    assert!(anomalies(&r).is_empty(), "{:?}", anomalies(&r));
    for i in 0..5 {
        let r = scan(&legacy(Some(i)));
        assert!(finds_system(&r), "position {i}: {:?}", r.findings);
        assert_ne!(r.verdict, Verdict::Clean);
    }
}

#[test]
fn legacy_truncated_storage_is_reported() {
    let mut d = legacy(None);
    d.truncate(d.len() - 3);
    let r = scan(&d);
    assert!(has(&r, "PS901"), "{:?}", r.findings);
}

fn tar_member(name: &str, data: &[u8]) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    h[100..107].copy_from_slice(b"0000644");
    h[124..135].copy_from_slice(format!("{:011o}", data.len()).as_bytes());
    h[156] = b'0';
    h[257..263].copy_from_slice(b"ustar\0");
    h[263..265].copy_from_slice(b"00");
    h[148..156].copy_from_slice(b"        ");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..155].copy_from_slice(format!("{sum:06o}\0").as_bytes());
    let mut out = h;
    out.extend(data);
    out.resize(out.len().div_ceil(512) * 512, 0);
    out
}

#[test]
fn tar_members_are_scanned() {
    let mut t = tar_member("storages", &[0x80, 0x02, b'K', 0, b'.']);
    t.extend(tar_member("tensors", &[0x80, 0x02, b'K', 0, b'.']));
    t.extend(tar_member("pickle", &evil()));
    t.extend(vec![0u8; 1024]);
    let r = scan(&t);
    assert_eq!(r.format, Format::TorchTar);
    assert!(finds_system(&r));
    let mut t = tar_member("model/weights.pkl", &evil());
    t.extend(vec![0u8; 1024]);
    let r = scan(&t);
    assert_eq!(r.format, Format::Tar);
    assert!(finds_system(&r));
}

// ----------------------------------------------------------------------------------------------
// joblib and compression
// ----------------------------------------------------------------------------------------------

/// A joblib-style stream: NumpyArrayWrapper of `n` f8 values with padding, then `tail`.
fn joblib_stream(n: u32, tail: &[u8]) -> Vec<u8> {
    let mut v = vec![0x80, 0x04];
    v.extend_from_slice(
        b"\x8c\x13joblib.numpy_pickle\x94\x8c\x11NumpyArrayWrapper\x94\x93\x94)\x81\x94}\x94(",
    );
    v.extend_from_slice(b"\x8c\x05shape\x94J");
    v.extend(n.to_le_bytes());
    v.extend_from_slice(b"\x85\x94\x8c\x05order\x94\x8c\x01C\x94\x8c\x05dtype\x94");
    v.extend_from_slice(b"\x8c\x05numpy\x94\x8c\x05dtype\x94\x93\x94\x8c\x02f8\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01<\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t\x94b");
    v.extend_from_slice(b"\x8c\x1bnumpy_array_alignment_bytes\x94K\x10u");
    v.push(b'b');
    let pos = v.len();
    let p = 16 - ((pos + 1) % 16);
    v.push(p as u8);
    v.extend(vec![0xffu8; p]);
    // Array bytes that look like opcodes, to prove they are skipped.
    for _ in 0..n {
        v.extend_from_slice(b"cos\nsys\n");
    }
    v.push(b'.');
    v.extend(tail);
    v
}

#[test]
fn joblib_inline_arrays_are_skipped_and_scanning_continues() {
    let r = scan(&joblib_stream(3, b""));
    assert_eq!(r.format, Format::Joblib);
    assert!(anomalies(&r).is_empty(), "{:?}", anomalies(&r));
    assert!(!r
        .findings
        .iter()
        .any(|f| f.global.as_deref() == Some("os.sys")));
    let r = scan(&joblib_stream(3, &evil()));
    assert!(finds_system(&r), "{:?}", r.findings);
}

#[test]
fn every_joblib_compression_is_scanned() {
    let stream = joblib_stream(2, &evil());
    for kind in ["zlib", "gzip", "bz2", "xz", "lzma", "lz4"] {
        let r = scan(&compress(kind, &stream));
        assert_eq!(r.format.to_string(), format!("joblib-{kind}"));
        assert!(finds_system(&r), "{kind}: {:?}", r.findings);
    }
    // Compressed non-pickle content is detected again.
    let npy = npy_bytes("'<f4'", "(2,)", &[0u8; 8]);
    assert_eq!(scan(&compress("gzip", &npy)).format.to_string(), "gzip+npy");
}

#[test]
fn decompression_budget_and_corruption_are_reported() {
    let big = compress("zlib", &vec![b'N'; 1 << 20]);
    let s = Scanner::new(
        Default::default(),
        Limits {
            max_decompressed: 4096,
            ..Limits::default()
        },
    );
    let r = scan_bytes(&s, &big, "x.joblib".into());
    assert!(has(&r, "PS916"));
    let mut cut = compress("gzip", &evil());
    cut.truncate(cut.len() - 6);
    let r = scan(&cut);
    assert_ne!(r.verdict, Verdict::Clean);
}

// ----------------------------------------------------------------------------------------------
// numpy
// ----------------------------------------------------------------------------------------------

fn npy_bytes(descr: &str, shape: &str, body: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut v = b"\x93NUMPY\x01\x00".to_vec();
    v.extend((header.len() as u16).to_le_bytes());
    v.extend(header.as_bytes());
    v.extend(body);
    v
}

#[test]
fn npy_object_arrays_are_pickles_and_plain_arrays_are_sized() {
    let r = scan(&npy_bytes("'|O'", "(1,)", &evil()));
    assert_eq!(r.format, Format::Npy);
    assert!(finds_system(&r));
    let r = scan(&npy_bytes("[('a', '<f4'), ('b', '|O')]", "(1,)", &evil()));
    assert!(finds_system(&r), "structured dtype with an object field");
    let r = scan(&npy_bytes("'<f4'", "(2, 3)", &[0u8; 24]));
    assert_eq!(r.verdict, Verdict::Clean, "{:?}", r.findings);
    let r = scan(&npy_bytes("'<U2'", "(3,)", &[0u8; 24]));
    assert_eq!(r.verdict, Verdict::Clean, "{:?}", r.findings);
    for bad in [
        npy_bytes("'<f4'", "(2, 3)", &[0u8; 20]),
        npy_bytes("'<f4'", "(2, 3)", &[0u8; 30]),
        npy_bytes("'<q9'", "(1,)", &[0u8; 8]),
        b"\x93NUMPY\x01\x00\xff\x00{'descr'".to_vec(),
    ] {
        assert!(has(&scan(&bad), "PS920"));
    }
}

// ----------------------------------------------------------------------------------------------
// safetensors and GGUF
// ----------------------------------------------------------------------------------------------

fn safetensors(header: &str, data_len: usize) -> Vec<u8> {
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    v.extend(header.as_bytes());
    v.extend(vec![0u8; data_len]);
    v
}

#[test]
fn safetensors_validation() {
    let ok = r#"{"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[],"data_offsets":[8,10]}}"#;
    let r = scan(&safetensors(ok, 10));
    assert_eq!(r.format, Format::Safetensors);
    assert_eq!(r.verdict, Verdict::Clean, "{:?}", r.findings);
    for (h, n) in [
        (ok, 11), // trailing
        (ok, 9),  // short
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}"#,
            16,
        ), // duplicate
        (
            r#"{"a":{"dtype":"F31","shape":[2],"data_offsets":[0,8]}}"#,
            8,
        ), // dtype
        (
            r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
            8,
        ), // size
        (
            r#"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#,
            8,
        ), // gap
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#,
            8,
        ), // overlap
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#,
            8,
        ), // JSON
        (r#"{"__metadata__":{"x":1}}"#, 0), // metadata
    ] {
        let r = scan(&safetensors(h, n));
        assert!(has(&r, "PS917"), "{h} / {n}: {:?}", r.findings);
    }
}

struct Gguf(Vec<u8>);
impl Gguf {
    fn new(version: u32, tensors: u64, kv: u64) -> Self {
        let mut v = b"GGUF".to_vec();
        v.extend(version.to_le_bytes());
        v.extend(tensors.to_le_bytes());
        v.extend(kv.to_le_bytes());
        Gguf(v)
    }
    fn s(mut self, s: &str) -> Self {
        self.0.extend((s.len() as u64).to_le_bytes());
        self.0.extend(s.as_bytes());
        self
    }
    fn u32(mut self, x: u32) -> Self {
        self.0.extend(x.to_le_bytes());
        self
    }
    fn u64(mut self, x: u64) -> Self {
        self.0.extend(x.to_le_bytes());
        self
    }
    fn pad(mut self, to: usize) -> Self {
        while !self.0.len().is_multiple_of(to) {
            self.0.push(0);
        }
        self
    }
    fn bytes(mut self, n: usize) -> Vec<u8> {
        self.0.extend(vec![0u8; n]);
        self.0
    }
}

fn gguf_one_tensor(ty: u32, ne0: u64, offset: u64) -> Gguf {
    Gguf::new(3, 1, 1)
        .s("general.architecture")
        .u32(8)
        .s("llama")
        .s("t")
        .u32(1)
        .u64(ne0)
        .u32(ty)
        .u64(offset)
        .pad(32)
}

#[test]
fn gguf_validation() {
    let r = scan(&gguf_one_tensor(0, 8, 0).bytes(32));
    assert_eq!(r.format, Format::Gguf);
    assert_eq!(r.verdict, Verdict::Clean, "{:?}", r.findings);
    for bad in [
        gguf_one_tensor(0, 8, 0).bytes(16),         // truncated data
        gguf_one_tensor(0, 8, 0).bytes(4096),       // trailing data
        gguf_one_tensor(4, 8, 0).bytes(32),         // removed type
        gguf_one_tensor(2, 8, 0).bytes(32),         // ne0 not a multiple of the block
        gguf_one_tensor(0, 8, 32).bytes(64),        // offset not cumulative
        Gguf::new(1, 0, 0).bytes(0),                // version 1
        Gguf::new(3, u64::MAX, 0).bytes(0),         // counts
        Gguf::new(3, 0, 1).s("k").u32(13).bytes(8), // value type
        Gguf::new(3, 0, 1).s("k").u32(8).u64(1 << 40).bytes(0), // string bound
        Gguf::new(3, 0, 1)
            .s("general.alignment")
            .u32(4)
            .u32(3)
            .bytes(0), // alignment
    ] {
        let r = scan(&bad);
        assert!(has(&r, "PS918"), "{:?}", r.findings);
    }
}

#[test]
fn safetensors_that_is_also_a_pickle_is_scanned_as_both() {
    // Header length 0x56 = 'V' (protocol 0 UNICODE): pickle.load reads the length bytes and the
    // JSON header as one text line ending at the header's final newline, then runs the tensor
    // bytes as opcodes. Valid safetensors and a working pickle at once.
    let payload: Vec<u8> = [&b"0"[..], &evil_proto0()].concat();
    let mut header = format!(
        r#"{{"a":{{"dtype":"U8","shape":[{n}],"data_offsets":[0,{n}]}}}}"#,
        n = payload.len()
    );
    while header.len() < 0x55 {
        header.push(' ');
    }
    header.push('\n');
    let mut v = (header.len() as u64).to_le_bytes().to_vec();
    assert_eq!(v[0], b'V');
    v.extend(header.as_bytes());
    v.extend(&payload);
    assert!(picklescan_rs::internals::format::safetensors::read(&v).is_ok());
    let r = scan(&v);
    assert_eq!(r.format, Format::Safetensors);
    assert!(finds_system(&r), "{:?}", r.findings);
    assert!(has(&r, "PS913"));
}

// ----------------------------------------------------------------------------------------------
// Files
// ----------------------------------------------------------------------------------------------

#[test]
fn large_files_are_mapped_small_files_read_and_unreadable_paths_reported() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.pt");
    let mut m = torch_members(&evil());
    m[3].data = vec![0u8; 3 << 20];
    std::fs::write(&big, build_zip(&m, &ZipOpts::default())).unwrap();
    let input = picklescan_rs::internals::mmap::Input::open(&big).unwrap();
    assert!(input.is_mapped());
    let r = scan_path(&scanner(), &big, &FileOptions { hash: true });
    assert!(finds_system(&r));
    assert_eq!(r.sha256.as_ref().map(|h| h.len()), Some(64));
    let r = scan_path(&scanner(), &big, &FileOptions { hash: false });
    assert!(r.sha256.is_none());

    let small = dir.path().join("small.pkl");
    std::fs::write(&small, evil()).unwrap();
    assert!(!picklescan_rs::internals::mmap::Input::open(&small)
        .unwrap()
        .is_mapped());

    let r = scan_path(
        &scanner(),
        &dir.path().join("missing.pt"),
        &FileOptions::default(),
    );
    assert!(r.error.is_some());
    assert_ne!(r.verdict, Verdict::Clean);
    let r = scan_path(&scanner(), dir.path(), &FileOptions::default());
    assert!(r.error.is_some());
}
