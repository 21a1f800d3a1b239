//! Resource bombs: each ends with a clear finding, never a clean verdict, a panic, a hang or
//! unbounded memory. `benches/bombs.sh` times the same bombs through the release binary and
//! records wall time and peak RSS in `benches/BOMBS.md`; `benches/make_bombs.py` writes them.

use picklescan_rs::internals::file::{scan_bytes, scan_path, FileOptions};
use picklescan_rs::report::FileReport;
use picklescan_rs::{Scanner, Verdict};
use std::io::Write;

fn scan(data: &[u8], name: &str) -> FileReport {
    scan_bytes(&Scanner::default(), data, name.into())
}

fn rules(r: &FileReport) -> Vec<&str> {
    r.findings.iter().map(|f| f.rule.as_str()).collect()
}

fn assert_flagged(r: &FileReport, any_of: &[&str]) {
    assert_ne!(r.verdict, Verdict::Clean, "{:?}", r.findings);
    assert!(
        r.findings.iter().any(|f| any_of.contains(&f.rule.as_str())),
        "expected one of {any_of:?}, got {:?}",
        r.findings
    );
}

/// `STACK_GLOBAL posix.system` at protocol 4.
fn system() -> Vec<u8> {
    let mut v = vec![0x80, 0x04];
    v.extend([0x8c, 5]);
    v.extend(b"posix");
    v.extend([0x8c, 6]);
    v.extend(b"system");
    v.push(0x93);
    v
}

#[test]
fn memo_billion_laughs_is_judged_without_expanding() {
    // lol0 = 'lol'; lolN = (lol(N-1),) * 10 through BINGET, 40 levels: 10^40 leaves.
    let mut v = system();
    v.extend([0x8c, 3]);
    v.extend(b"lol");
    v.push(0x94); // MEMOIZE -> 0
    for i in 1..=40u8 {
        v.push(b'(');
        for _ in 0..10 {
            v.extend([b'h', i - 1]);
        }
        v.extend([b't', 0x94]);
    }
    v.extend([0x85, b'R', b'.']); // TUPLE1 REDUCE STOP
    let r = scan(&v, "laughs.pkl");
    assert_eq!(r.verdict, Verdict::Dangerous, "{:?}", r.findings);
    let call = r
        .findings
        .iter()
        .find_map(|f| f.call.clone())
        .expect("a rendered call");
    assert!(call.chars().count() <= 420, "{} chars", call.len());
}

#[test]
fn dup_billion_laughs_is_judged_without_expanding() {
    // x; then 200 times: DUP DUP TUPLE3 -> 3^200 leaves.
    let mut v = system();
    v.extend([0x8c, 3]);
    v.extend(b"lol");
    for _ in 0..200 {
        v.extend([b'2', b'2', 0x87]);
    }
    v.extend([0x85, b'R', b'.']);
    let r = scan(&v, "dup.pkl");
    assert_eq!(r.verdict, Verdict::Dangerous, "{:?}", r.findings);
}

#[test]
fn hundred_thousand_marks_exceed_the_mark_budget() {
    let mut v = vec![0x80, 0x02];
    v.extend(std::iter::repeat_n(b'(', 100_000));
    v.push(b'.');
    assert_flagged(&scan(&v, "marks.pkl"), &["PS902"]);
}

#[test]
fn hundred_thousand_nested_tuples_render_and_judge_bounded() {
    // posix.system(((((None,),),)…)) 100k deep: rendering, judging and reporting stay bounded.
    let mut v = system();
    v.push(b'N');
    v.extend(std::iter::repeat_n(0x85, 100_000));
    v.extend([0x85, b'R', b'.']);
    let r = scan(&v, "nested.pkl");
    assert_eq!(r.verdict, Verdict::Dangerous, "{:?}", r.findings);
    // The report serialises too.
    let json = serde_json::to_string(&r).unwrap();
    assert!(json.len() < 100_000, "{} bytes of JSON", json.len());
}

#[test]
fn huge_declared_lengths_are_truncations_not_allocations() {
    let cases: [(&str, Vec<u8>); 4] = [
        (
            "LONG4",
            [
                &[0x80, 0x02, 0x8b][..],
                &0x7fff_ffffu32.to_le_bytes(),
                b"xx",
            ]
            .concat(),
        ),
        (
            "BINBYTES8",
            [&[0x80, 0x04, 0x8e][..], &(1u64 << 62).to_le_bytes(), b"xx"].concat(),
        ),
        (
            "BINUNICODE8",
            [&[0x80, 0x04, 0x8d][..], &u64::MAX.to_le_bytes(), b"xx"].concat(),
        ),
        (
            "BINBYTES",
            [&[0x80, 0x03, b'B'][..], &u32::MAX.to_le_bytes(), b"xx"].concat(),
        ),
    ];
    for (what, v) in cases {
        let r = scan(&v, "len.pkl");
        assert_ne!(r.verdict, Verdict::Clean, "{what}: {:?}", r.findings);
        assert!(
            rules(&r).iter().any(|id| ["PS900", "PS901"].contains(id)),
            "{what}: {:?}",
            r.findings
        );
    }
}

// ----------------------------------------------------------------------------------------------
// Archives and compression
// ----------------------------------------------------------------------------------------------

/// A raw deflate stream of `header` then `gib` GiB of zeros, about 1 MB per GiB, built without
/// compressing the whole output: 1 MiB of zeros is compressed once with a full flush (byte
/// aligned, no reference to earlier data) and the block is repeated.
fn deflate_bomb(header: &[u8], mib: usize) -> Vec<u8> {
    use flate2::{Compress, Compression, FlushCompress};
    fn block(data: &[u8]) -> Vec<u8> {
        let mut c = Compress::new(Compression::best(), false);
        let mut out = Vec::with_capacity(data.len() + 1024);
        c.compress_vec(data, &mut out, FlushCompress::Full).unwrap();
        out
    }
    let mut out = block(header);
    let zeros = block(&vec![0u8; 1 << 20]);
    for _ in 0..mib {
        out.extend_from_slice(&zeros);
    }
    out.extend([0x03, 0x00]); // final, empty fixed-Huffman block
    out
}

/// Pickle header that declares a 1 GiB bytes object, so the zeros are its payload.
fn big_bytes_header() -> Vec<u8> {
    [&[0x80, 0x04, 0x8e][..], &(1u64 << 30).to_le_bytes()].concat()
}

/// A zip with `members` as (name, method, raw data, uncompressed size, crc).
fn zip(members: &[(String, u16, Vec<u8>, u64)]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, method, data, size) in members {
        let offset = out.len() as u32;
        let head = |sig: u32, central: bool| {
            let mut h = Vec::new();
            h.extend(sig.to_le_bytes());
            if central {
                h.extend(20u16.to_le_bytes());
            }
            h.extend(20u16.to_le_bytes());
            h.extend(0u16.to_le_bytes());
            h.extend(method.to_le_bytes());
            h.extend([0u8; 4]);
            h.extend(0u32.to_le_bytes()); // CRC 0: torch's "no CRC" convention
            h.extend((data.len() as u32).to_le_bytes());
            h.extend((*size as u32).to_le_bytes());
            h.extend((name.len() as u16).to_le_bytes());
            h.extend(0u16.to_le_bytes());
            if central {
                h.extend([0u8; 8]);
                h.extend(0u32.to_le_bytes());
                h.extend(offset.to_le_bytes());
            }
            h.extend(name.as_bytes());
            h
        };
        out.extend(head(0x0403_4b50, false));
        out.extend(data);
        central.extend(head(0x0201_4b50, true));
    }
    let cd_offset = out.len() as u32;
    let n = members.len().min(0xffff) as u16;
    out.extend(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend(n.to_le_bytes());
    out.extend(n.to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_offset.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

#[test]
fn zip_with_more_members_than_the_budget() {
    let members: Vec<_> = (0..100_001)
        .map(|i| (format!("archive/m{i}"), 0u16, Vec::new(), 0u64))
        .collect();
    let r = scan(&zip(&members), "many.pt");
    assert_flagged(&r, &["PS910"]);
}

#[test]
fn zip_member_deflate_bomb_stops_at_the_ratio_cap() {
    let bomb = deflate_bomb(&big_bytes_header(), 1024);
    assert!(bomb.len() < 2 << 20, "{} bytes", bomb.len());
    let z = zip(&[("archive/data.pkl".into(), 8, bomb, 1 << 30)]);
    let r = scan(&z, "bomb.pt");
    assert_flagged(&r, &["PS916"]);
    let f = r.findings.iter().find(|f| f.rule == "PS916").unwrap();
    assert!(f.message.contains("ratio cap"), "{}", f.message);
}

#[test]
fn joblib_gzip_bomb_stops_at_the_ratio_cap() {
    let mut gz = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
    gz.extend(deflate_bomb(&big_bytes_header(), 1024));
    gz.extend([0u8; 8]); // trailer never reached
    let r = scan(&gz, "model.joblib");
    assert_flagged(&r, &["PS916"]);
}

#[test]
fn joblib_zlib_bomb_stops_at_the_ratio_cap() {
    let mut z = vec![0x78, 0x9c];
    z.extend(deflate_bomb(&big_bytes_header(), 1024));
    z.extend([0u8; 4]);
    let r = scan(&z, "model.joblib");
    assert_flagged(&r, &["PS916"]);
}

#[test]
fn joblib_xz_bomb_stops_at_the_ratio_cap() {
    // 1 GiB of zeros behind a pickle header, xz-compressed to 156 KB (tests/fixtures/bombs).
    let xz = std::fs::read(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/bombs/zeros-1g.pkl.xz"),
    )
    .unwrap();
    let r = scan(&xz, "model.joblib.xz");
    assert_flagged(&r, &["PS916"]);
}

#[test]
fn ten_gigabyte_sparse_file_is_not_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sparse.bin");
    let mut f = std::fs::File::create(&path).unwrap();
    f.write_all(&[0x80, 0x02]).unwrap();
    f.set_len(10 << 30).unwrap();
    drop(f);
    let r = scan_path(&Scanner::default(), &path, &FileOptions::default());
    assert_ne!(r.verdict, Verdict::Clean, "{:?}", r.findings);
    assert!(!r.findings.is_empty());
}
