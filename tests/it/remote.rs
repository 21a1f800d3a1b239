//! Remote scanning against real HTTP servers on 127.0.0.1: verdicts equal the local scan of the
//! same bytes, and a torch zip costs a small fraction of its size.

use crate::common::compress;
use crate::server::{Data, Req, Resp, Server};
use picklescan_rs::engine::Engine;
use picklescan_rs::internals::file::scan_bytes;
use picklescan_rs::policy::{Mode, Policy};
use picklescan_rs::remote::http::{Client, HttpOptions};
use picklescan_rs::remote::hub::HubRef;
use picklescan_rs::remote::{self, RemoteOptions};
use picklescan_rs::report::FileReport;
use picklescan_rs::rules::RuleSet;
use picklescan_rs::Format;
use picklescan_rs::{Limits, Scanner, Verdict};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

fn scanner() -> Scanner {
    Scanner::new(RuleSet::builtin(), Limits::default())
}

fn engine() -> Engine {
    Engine::new(scanner(), Policy::new(Mode::Default))
}

fn opts() -> RemoteOptions {
    RemoteOptions {
        http: HttpOptions {
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(20),
            retries: 2,
            backoff: Duration::from_millis(50),
            max_backoff: Duration::from_secs(2),
            token: None,
        },
        ..RemoteOptions::default()
    }
}

/// What must agree between a local and a remote scan.
fn key(r: &FileReport) -> (Verdict, Format, Vec<String>) {
    let mut f: Vec<String> = r
        .findings
        .iter()
        .map(|f| format!("{} {:?} {:?} {}", f.rule, f.member, f.offset, f.message))
        .collect();
    f.sort();
    (r.verdict, r.format.clone(), f)
}

/// How a test server answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Serve {
    /// Range requests honoured.
    Ranges,
    /// Ranges ignored: the whole body, with `Content-Length`.
    Whole,
    /// Ranges ignored: the whole body in chunks, without `Content-Length`.
    Chunked,
}

const ALL_SERVES: [Serve; 3] = [Serve::Ranges, Serve::Whole, Serve::Chunked];

/// Serve `files` (by name under /f/) with or without range support.
fn file_server(files: HashMap<String, Data>, ranges: bool) -> Server {
    serve(files, if ranges { Serve::Ranges } else { Serve::Whole })
}

fn serve(files: HashMap<String, Data>, how: Serve) -> Server {
    let files = Arc::new(files);
    Server::start(
        move |req: &Req| match req.path.strip_prefix("/f/").and_then(|n| files.get(n)) {
            Some(d) if how == Serve::Chunked => Resp::file(req, d, false).chunked(),
            Some(d) => Resp::file(req, d, how == Serve::Ranges),
            None => Resp::status(404),
        },
    )
}

fn manifest_files() -> Vec<String> {
    let m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(corpus().join("manifest.json")).unwrap()).unwrap();
    m["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap().to_string())
        .collect()
}

fn url_name(path: &str) -> String {
    path.replace('/', "__")
}

fn check_corpus(o: &RemoteOptions, how: Serve) {
    let engine = engine();
    let scanner = &engine.scanner;
    let paths = manifest_files();
    let mut files = HashMap::new();
    for p in &paths {
        files.insert(
            url_name(p),
            Data::mem(std::fs::read(corpus().join(p)).unwrap()),
        );
    }
    let srv = serve(files.clone(), how);
    let client = Client::new(o.http.clone());
    let mut bad = Vec::new();
    for p in &paths {
        let name = url_name(p);
        let Data::Mem(bytes) = &files[&name] else {
            unreachable!()
        };
        // The same name on both sides (the name only breaks ties).
        let local = scan_bytes(scanner, bytes, name.clone());
        let r = remote::scan_url(&engine, &client, &format!("{}/f/{name}", srv.base()), o);
        assert!(r.error.is_none(), "{p}: {:?}", r.error);
        assert!(r.transferred.is_some());
        if key(&local) != key(&r) {
            bad.push(format!(
                "{p}:\n local {:?}\n remote {:?}",
                key(&local),
                key(&r)
            ));
        }
    }
    assert!(bad.is_empty(), "{} differ:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn corpus_verdicts_match_local_scans() {
    check_corpus(&opts(), Serve::Ranges);
}

#[test]
fn corpus_verdicts_match_with_small_probes() {
    // Small first/last probes make the planner fetch directories, pickles and member heads in
    // further rounds instead of finding them in the probes.
    let o = RemoteOptions {
        head: 64,
        tail: 22 + 0xFFFF + 98,
        ..opts()
    };
    check_corpus(&o, Serve::Ranges);
}

#[test]
fn corpus_verdicts_match_when_the_zip_scan_fetches_alone() {
    // No prefetch plan for zip members, and small probes: the scan itself says which members
    // (or heads of members) it lacks, they are fetched and it runs again, until the archive is
    // read as locally.
    let o = RemoteOptions {
        head: 64,
        tail: 22 + 0xFFFF + 98,
        prefetch_zip_members: false,
        ..opts()
    };
    check_corpus(&o, Serve::Ranges);
}

#[test]
fn corpus_verdicts_match_without_range_support() {
    check_corpus(&opts(), Serve::Whole);
}

#[test]
fn corpus_verdicts_match_without_range_support_or_length() {
    check_corpus(&opts(), Serve::Chunked);
}

// ---- generated torch zips ----

fn binunicode(out: &mut Vec<u8>, s: &str) {
    out.push(b'X');
    out.extend((s.len() as u32).to_le_bytes());
    out.extend(s.as_bytes());
}

/// The verdict a generated file gets with or without its `os.system` call.
fn verdict_for(evil: bool) -> Verdict {
    if evil {
        Verdict::Dangerous
    } else {
        Verdict::Clean
    }
}

/// Dict entry `'x': os.system('echo hi')` (a dict must be on the stack).
fn set_x_to_system_call(p: &mut Vec<u8>) {
    binunicode(p, "x");
    p.extend(b"cos\nsystem\n");
    binunicode(p, "echo hi");
    p.extend(b"\x85Rs");
}

/// A torch.save-like state dict pickle: one FloatStorage tensor of `numel` elements under key
/// "0", and optionally a call to `os.system`.
fn state_dict_pickle(numel: u32, evil: bool) -> Vec<u8> {
    let mut p = vec![0x80, 0x02];
    p.extend(b"ccollections\nOrderedDict\n)R");
    binunicode(&mut p, "weight");
    p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
    binunicode(&mut p, "storage");
    p.extend(b"ctorch\nFloatStorage\n");
    binunicode(&mut p, "0");
    binunicode(&mut p, "cpu");
    p.push(b'J');
    p.extend(numel.to_le_bytes());
    p.extend(b"tQK\x00J");
    p.extend(numel.to_le_bytes());
    p.extend(b"\x85K\x01\x85\x89ccollections\nOrderedDict\n)RtRs");
    if evil {
        set_x_to_system_call(&mut p);
    }
    p.push(b'.');
    p
}

/// A stored zip of `members`, with local headers, a central directory and an end record.
/// With `descriptors`, sizes and CRCs are only in a data descriptor after each member's data
/// (flag bit 3, as torch.save writes).
fn zip_with(members: &[(&str, &[u8])], descriptors: bool) -> Vec<u8> {
    let members: Vec<(&str, &[u8], bool)> = members.iter().map(|&(n, d)| (n, d, false)).collect();
    zip_of(&members, descriptors)
}

/// [`zip_with`], deflating the members marked `true`.
fn zip_of(members: &[(&str, &[u8], bool)], descriptors: bool) -> Vec<u8> {
    let flag = if descriptors { 8 } else { 0 };
    let mut out = Vec::new();
    let mut central = Vec::new();
    for &(name, data, deflate) in members {
        let stored;
        let body: &[u8] = if deflate {
            use std::io::Write;
            let mut enc =
                flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(data).unwrap();
            stored = enc.finish().unwrap();
            &stored
        } else {
            data
        };
        let method: u8 = if deflate { 8 } else { 0 };
        let off = out.len() as u32;
        let crc = crc32fast::hash(data);
        let (clen, len) = (body.len() as u32, data.len() as u32);
        out.extend(0x0403_4b50u32.to_le_bytes());
        out.extend([20, 0, flag, 0, method, 0, 0, 0, 0, 0]);
        for v in [crc, clen, len] {
            out.extend((if descriptors { 0 } else { v }).to_le_bytes());
        }
        out.extend((name.len() as u16).to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out.extend(name.as_bytes());
        out.extend_from_slice(body);
        if descriptors {
            out.extend(0x0807_4b50u32.to_le_bytes());
            for v in [crc, clen, len] {
                out.extend(v.to_le_bytes());
            }
        }
        central.extend(0x0201_4b50u32.to_le_bytes());
        central.extend([20, 0, 20, 0, flag, 0, method, 0, 0, 0, 0, 0]);
        central.extend(crc.to_le_bytes());
        central.extend(clen.to_le_bytes());
        central.extend(len.to_le_bytes());
        central.extend((name.len() as u16).to_le_bytes());
        central.extend([0u8; 12]);
        central.extend(off.to_le_bytes());
        central.extend(name.as_bytes());
    }
    let cd_off = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend(0x0605_4b50u32.to_le_bytes());
    out.extend([0u8; 4]);
    out.extend((members.len() as u16).to_le_bytes());
    out.extend((members.len() as u16).to_le_bytes());
    out.extend((central.len() as u32).to_le_bytes());
    out.extend(cd_off.to_le_bytes());
    out.extend(0u16.to_le_bytes());
    out
}

/// A torch zip with one `mib`-MiB storage, an unreferenced data member, and small records.
fn big_torch(mib: u32, evil: bool) -> Vec<u8> {
    big_torch_with(mib, evil, false)
}

fn big_torch_with(mib: u32, evil: bool, descriptors: bool) -> Vec<u8> {
    let numel = mib * 1024 * 256;
    let storage: Vec<u8> = (0..numel as usize * 4).map(|i| (i % 251) as u8).collect();
    let blob = vec![0u8; 1 << 20];
    let pkl = state_dict_pickle(numel, evil);
    zip_with(
        &[
            ("archive/data.pkl", &pkl),
            ("archive/byteorder", b"little"),
            ("archive/data/0", &storage),
            ("archive/extra/blob", &blob),
            ("archive/version", b"3\n"),
        ],
        descriptors,
    )
}

/// Small probes and no prefetch plan for zip members: the scan fetches what it lacks itself.
fn fetching_alone() -> RemoteOptions {
    RemoteOptions {
        head: 64,
        tail: 0xFFFF + 120,
        prefetch_zip_members: false,
        ..opts()
    }
}

#[test]
fn the_zip_scan_fetches_what_it_lacks_without_the_prefetch_plan() {
    // Only the directory is in the probes; the scan asks for data.pkl, then (once it knows the
    // storages) for the head of the unreferenced member, and never for the storage.
    let engine = engine();
    let o = fetching_alone();
    for (evil, descriptors) in [(false, false), (true, false), (false, true), (true, true)] {
        let data = big_torch_with(8, evil, descriptors);
        let local = scan_bytes(&engine.scanner, &data, "model.pt".into());
        assert_eq!(local.verdict, verdict_for(evil), "{:?}", local.findings);
        let size = data.len() as u64;
        let mut files = HashMap::new();
        files.insert("model.pt".to_string(), Data::mem(data));
        let srv = file_server(files, true);
        let client = Client::new(o.http.clone());
        let (r, cost) =
            remote::scan_url_with_cost(&engine, &client, &format!("{}/f/model.pt", srv.base()), &o);
        assert_eq!(
            key(&r),
            key(&local),
            "evil {evil}, descriptors {descriptors}"
        );
        let t = r.transferred.unwrap();
        assert!(t < 300 * 1024, "transferred {t} of {size}");
        assert!(cost.rounds >= 2, "{cost:?}");
    }
}

#[test]
fn deflated_members_are_fetched_as_far_as_their_heads_need() {
    // Deflated members: the pickle whole, the others as far as their first bytes take to
    // inflate (a pickle hidden in one of them, after which the scan reads it whole).
    let engine = engine();
    let o = fetching_alone();
    let mut noise = Vec::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..(2 << 20) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        noise.push(b"abcdefghijklmnopqrstuvwxyz \n"[(x % 28) as usize]);
    }
    let storage = vec![7u8; 4 << 20];
    for evil in [false, true] {
        let mut hidden = if evil {
            let mut p = vec![0x80, 0x02];
            p.extend(b"cos\nsystem\n");
            binunicode(&mut p, "echo hi");
            p.extend(b"\x85R.");
            p
        } else {
            b"plain text, not a pickle\n".to_vec()
        };
        hidden.extend_from_slice(&noise);
        let pkl = state_dict_pickle(1 << 20, false);
        let data = zip_of(
            &[
                ("archive/data.pkl", &pkl, true),
                ("archive/data/0", &storage, false),
                ("archive/extra/notes.txt", &noise, true),
                ("archive/extra/hidden.bin", &hidden, true),
                ("archive/version", b"3\n", true),
            ],
            true,
        );
        let local = scan_bytes(&engine.scanner, &data, "model.pt".into());
        assert_eq!(local.verdict, verdict_for(evil), "{:?}", local.findings);
        let mut files = HashMap::new();
        files.insert("model.pt".to_string(), Data::mem(data.clone()));
        let srv = file_server(files, true);
        let client = Client::new(o.http.clone());
        let url = format!("{}/f/model.pt", srv.base());
        let (r, _) = remote::scan_url_with_cost(&engine, &client, &url, &o);
        assert_eq!(key(&r), key(&local), "evil {evil}");
        let t = r.transferred.unwrap();
        // The storage is never fetched; the noise member only as far as its head.
        assert!(
            t < data.len() as u64 - (4 << 20),
            "transferred {t} of {}",
            data.len()
        );
        // The prefetch plan, when on, gives the same report.
        let (p, _) = remote::scan_url_with_cost(&engine, &client, &url, &opts());
        assert_eq!(key(&p), key(&local), "evil {evil}, prefetched");
    }
}

#[test]
fn torch_zip_costs_a_small_fraction_of_its_size() {
    let engine = engine();
    let scanner = &engine.scanner;
    for evil in [false, true] {
        let data = big_torch(32, evil);
        let local = scan_bytes(scanner, &data, "model.pt".into());
        assert_eq!(local.verdict, verdict_for(evil), "{:?}", local.findings);
        let size = data.len() as u64;
        let mut files = HashMap::new();
        files.insert("model.pt".to_string(), Data::mem(data));
        let srv = file_server(files, true);
        let client = Client::new(opts().http);
        let (r, cost) = remote::scan_url_with_cost(
            &engine,
            &client,
            &format!("{}/f/model.pt", srv.base()),
            &opts(),
        );
        assert_eq!(key(&r), key(&local));
        assert_eq!(r.size, size);
        let t = r.transferred.unwrap();
        assert!(t < 300 * 1024, "transferred {t} of {size}");
        assert_eq!(t, srv.stats.body_bytes());
        assert_eq!(cost.requests, srv.stats.requests());
        // The probes hold the pickle and the directory; the unreferenced member needs its head.
        assert!(cost.rounds <= 3, "{cost:?}");
        // With tiny probes the planner works in rounds, still without touching the storage.
        srv.stats.reset();
        let small = RemoteOptions {
            head: 64,
            tail: 0xFFFF + 120,
            ..opts()
        };
        let (r, cost) = remote::scan_url_with_cost(
            &engine,
            &client,
            &format!("{}/f/model.pt", srv.base()),
            &small,
        );
        assert_eq!(key(&r), key(&local));
        assert!(r.transferred.unwrap() < 300 * 1024, "{cost:?}");
    }
}

// ---- streamed pickles and joblib dumps ----

/// A joblib-1.2-style dump at the opcode level (protocol 2, no frames): a dict whose values are
/// `NumpyArrayWrapper`s of `mib` MiB of float32 each, their bytes inline after each BUILD
/// (a padding-length byte, the padding, the raw array), then optionally a call to `os.system`.
fn joblib_dump(arrays: usize, mib: u32, evil: bool) -> Vec<u8> {
    let count = mib * (1 << 20) / 4;
    let mut p = vec![0x80, 0x02, b'}'];
    for i in 0..arrays {
        binunicode(&mut p, &format!("w{i}"));
        p.extend(b"cjoblib.numpy_pickle\nNumpyArrayWrapper\n)\x81}(");
        binunicode(&mut p, "subclass");
        p.extend(b"cnumpy\nndarray\n");
        binunicode(&mut p, "shape");
        p.push(b'J');
        p.extend(count.to_le_bytes());
        p.push(0x85);
        binunicode(&mut p, "order");
        binunicode(&mut p, "C");
        binunicode(&mut p, "dtype");
        p.extend(b"cnumpy\ndtype\n");
        binunicode(&mut p, "f4");
        p.extend(b"\x89\x88\x87R(K\x03");
        binunicode(&mut p, "<");
        p.extend(b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb");
        binunicode(&mut p, "allow_mmap");
        p.push(0x88);
        binunicode(&mut p, "numpy_array_alignment_bytes");
        p.extend(b"K\x10ub");
        // Padding to a 16-byte boundary after the length byte, then the array.
        let pad = (16 - (p.len() + 1) % 16) % 16;
        p.push(pad as u8);
        p.extend(std::iter::repeat_n(0xFF, pad));
        p.extend((0..count).flat_map(|i| (i as f32).to_le_bytes()));
        p.push(b's');
    }
    if evil {
        set_x_to_system_call(&mut p);
    }
    p.push(b'.');
    p
}

/// A protocol 4 pickle of a dict of `mib`-MiB byte strings (BINBYTES8), optionally starting
/// with a call to `os.system`.
fn bytes_pickle(values: usize, mib: u32, evil_first: bool) -> Vec<u8> {
    let mut p = vec![0x80, 0x04, b'}'];
    if evil_first {
        set_x_to_system_call(&mut p);
    }
    for i in 0..values {
        binunicode(&mut p, &format!("b{i}"));
        let n = u64::from(mib) << 20;
        p.push(0x8e);
        p.extend(n.to_le_bytes());
        p.extend((0..n).map(|i| (i % 251) as u8));
        p.push(b's');
    }
    p.push(b'.');
    p
}

/// Serve `data` (with or without range support) and scan it by URL with `o`: the report, the
/// bytes sent, the local report.
fn scan_served(
    data: Vec<u8>,
    name: &str,
    o: &RemoteOptions,
    ranges: bool,
) -> (FileReport, u64, FileReport) {
    let how = if ranges { Serve::Ranges } else { Serve::Whole };
    let (r, cost, local) = scan_served_by(data, name, o, how);
    (r, cost.bytes, local)
}

/// [`scan_served`] by any server, with what the scan cost (its `bytes` are the server's).
fn scan_served_by(
    data: Vec<u8>,
    name: &str,
    o: &RemoteOptions,
    how: Serve,
) -> (FileReport, remote::Cost, FileReport) {
    let local = scan_bytes(&scanner(), &data, name.into());
    let (r, cost) = remote_scan_by(data, name, o, how);
    (r, cost, local)
}

/// [`scan_served_by`] without the local scan, for tests that serve the same bytes several ways.
fn remote_scan_by(
    data: Vec<u8>,
    name: &str,
    o: &RemoteOptions,
    how: Serve,
) -> (FileReport, remote::Cost) {
    let mut files = HashMap::new();
    files.insert(name.to_string(), Data::mem(data));
    let srv = serve(files, how);
    let (r, mut cost) = remote::scan_url_with_cost(
        &engine(),
        &Client::new(o.http.clone()),
        &format!("{}/f/{name}", srv.base()),
        o,
    );
    assert!(r.error.is_none(), "{:?}", r.error);
    if how == Serve::Ranges {
        // Every body read whole, at most what was written of one the client stopped reading.
        let got = r.transferred.unwrap_or(0);
        let (whole, written) = (srv.stats.body_bytes(), srv.stats.body_written());
        assert!(
            whole <= got && got <= written,
            "{whole} <= {got} <= {written}"
        );
    }
    cost.bytes = srv.stats.body_written();
    (r, cost)
}

#[test]
fn joblib_arrays_are_stepped_over() {
    for evil in [false, true] {
        let data = joblib_dump(3, 4, evil);
        let size = data.len() as u64;
        for o in [
            opts(),
            RemoteOptions {
                head: 64,
                tail: 64,
                ..opts()
            },
        ] {
            let (r, sent, local) = scan_served(data.clone(), "model.joblib", &o, true);
            assert_eq!(local.format, Format::Joblib);
            assert_eq!(local.verdict, verdict_for(evil), "{:?}", local.findings);
            assert_eq!(key(&r), key(&local));
            assert_eq!(r.size, size);
            assert!(sent < 1 << 20, "sent {sent} of {size}");
        }
    }
}

#[test]
fn large_pickle_payloads_are_stepped_over() {
    let data = bytes_pickle(4, 3, false);
    let size = data.len() as u64;
    let (r, sent, local) = scan_served(data, "data.pkl", &opts(), true);
    assert_eq!(local.verdict, Verdict::Clean, "{:?}", local.findings);
    assert_eq!(key(&r), key(&local));
    assert!(sent < 1 << 20, "sent {sent} of {size}");
}

#[test]
fn fetching_stops_once_the_verdict_is_dangerous() {
    let data = bytes_pickle(1, 16, true);
    let (r, sent, local) = scan_served(data, "evil.pkl", &opts(), true);
    assert_eq!(local.verdict, Verdict::Dangerous);
    assert_eq!(key(&r), key(&local));
    // The head probe holds the call; the tail probe is all else that is sent.
    assert!(sent <= (64 + 128) << 10, "sent {sent}");
}

#[test]
fn truncated_streamed_pickle_is_never_clean() {
    let mut data = joblib_dump(2, 4, false);
    data.truncate(data.len() - (3 << 20));
    for ranges in [true, false] {
        let (r, _, local) = scan_served(data.clone(), "cut.joblib", &opts(), ranges);
        assert_ne!(local.verdict, Verdict::Clean);
        assert_eq!(key(&r), key(&local));
    }
}

/// torch's legacy format at the opcode level: magic number, protocol version, sys_info, a
/// state dict naming storage "0" of `mib` MiB of float32, the storage keys, the raw storage.
fn legacy_torch(mib: u32, evil: bool) -> Vec<u8> {
    let numel = mib * (1 << 20) / 4;
    let mut p = vec![0x80, 0x02, 0x8a, 0x0a];
    p.extend([
        0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, b'.',
    ]);
    p.extend(b"\x80\x02M\xe9\x03.");
    p.extend(b"\x80\x02}(");
    binunicode(&mut p, "protocol_version");
    p.extend(b"M\xe9\x03");
    binunicode(&mut p, "little_endian");
    p.extend(b"\x88u.");
    p.extend(state_dict_pickle(numel, evil));
    p.extend(b"\x80\x02]");
    binunicode(&mut p, "0");
    p.extend(b"a.");
    p.extend(u64::from(numel).to_le_bytes());
    p.extend((0..numel).flat_map(|i| (i as f32).to_le_bytes()));
    p
}

#[test]
fn legacy_torch_storages_are_stepped_over() {
    for evil in [false, true] {
        let data = legacy_torch(16, evil);
        let size = data.len() as u64;
        for ranges in [true, false] {
            let (r, sent, local) = scan_served(data.clone(), "model.pt", &opts(), ranges);
            assert_eq!(local.format, Format::TorchLegacy);
            assert_eq!(local.verdict, verdict_for(evil), "{:?}", local.findings);
            assert_eq!(key(&r), key(&local));
            if ranges {
                assert!(sent < 1 << 20, "sent {sent} of {size}");
            }
        }
    }
}

#[test]
fn without_range_support_torch_zips_are_read_as_a_stream() {
    // The storages pass by (only their first bytes are kept); data.pkl and the directory are
    // kept, and the verdict is the local one.
    for (evil, descriptors) in [(false, false), (true, false), (false, true), (true, true)] {
        let data = big_torch_with(32, evil, descriptors);
        let size = data.len() as u64;
        let (r, _, local) = scan_served(data, "model.pt", &opts(), false);
        assert_eq!(local.format, Format::TorchZip);
        assert_eq!(key(&r), key(&local));
        assert_eq!(r.transferred, Some(size));
    }
}

#[test]
fn without_range_support_pickles_are_read_as_a_stream() {
    // A clean dump is read to its end, stepping over the arrays without keeping them; a
    // dangerous call ends the read.
    let data = joblib_dump(3, 4, true);
    let size = data.len() as u64;
    let (r, _, local) = scan_served(data, "model.joblib", &opts(), false);
    assert_eq!(local.verdict, Verdict::Dangerous);
    assert_eq!(key(&r), key(&local));
    assert_eq!(r.transferred, Some(size));
    let data = bytes_pickle(1, 16, true);
    let size = data.len() as u64;
    let (r, _, local) = scan_served(data, "evil.pkl", &opts(), false);
    assert_eq!(key(&r), key(&local));
    assert!(
        r.transferred.unwrap() < size / 4,
        "{:?} of {size}",
        r.transferred
    );
    // Larger than the budget: what was read is scanned, and the file is never clean.
    let o = RemoteOptions {
        max_bytes: 2 << 20,
        ..opts()
    };
    let (r, _, local) = scan_served(joblib_dump(3, 4, false), "big.joblib", &o, false);
    assert_eq!(local.verdict, Verdict::Clean);
    assert_eq!(r.verdict, Verdict::Suspicious, "{:?}", r.findings);
    assert!(r.findings.iter().any(|f| f.rule == "PS919"));
}

#[test]
fn servers_without_suffix_ranges_are_asked_by_position() {
    let engine = engine();
    let scanner = &engine.scanner;
    let data = Data::mem(big_torch(8, true));
    let Data::Mem(bytes) = &data else {
        unreachable!()
    };
    let local = scan_bytes(scanner, bytes, "model.pt".into());
    let srv = Server::start(move |req: &Req| {
        let suffix = req
            .header("range")
            .is_some_and(|r| r.starts_with("bytes=-"));
        Resp::file(req, &data, !suffix)
    });
    let r = remote::scan_url(
        &engine,
        &Client::new(opts().http),
        &format!("{}/model.pt", srv.base()),
        &opts(),
    );
    assert_eq!(key(&r), key(&local));
    assert!(r.transferred.unwrap() < 2 << 20, "{:?}", r.transferred);
}

#[test]
fn budget_exceeded_is_never_clean() {
    let engine = engine();
    let scanner = &engine.scanner;
    // A clean raw pickle larger than the budget, opcodes all the way (nothing to step over):
    // the loader reads it all, so must the scan.
    let mut big = vec![0x80, 0x02, b']', b'('];
    while big.len() < 4 << 20 {
        binunicode(&mut big, &"s".repeat(100));
    }
    big.extend(b"e.");
    assert_eq!(
        scan_bytes(scanner, &big, "x.pkl".into()).verdict,
        Verdict::Clean
    );
    let mut files = HashMap::new();
    files.insert("x.pkl".to_string(), Data::mem(big));
    for ranges in [true, false] {
        let srv = file_server(files.clone(), ranges);
        let client = Client::new(opts().http);
        let o = RemoteOptions {
            max_bytes: 1 << 20,
            ..opts()
        };
        let r = remote::scan_url(&engine, &client, &format!("{}/f/x.pkl", srv.base()), &o);
        assert_eq!(r.verdict, Verdict::Suspicious, "{r:?}");
        assert!(
            r.findings.iter().any(|f| f.rule == "PS919"),
            "{:?}",
            r.findings
        );
        assert!(
            r.transferred.unwrap() <= (1 << 20) + 1,
            "{:?}",
            r.transferred
        );
    }
}

#[test]
fn large_safetensors_header_only() {
    let engine = engine();
    let scanner = &engine.scanner;
    let n = 8u64 << 20;
    let header = format!(r#"{{"w":{{"dtype":"U8","shape":[{n}],"data_offsets":[0,{n}]}}}}"#);
    let mut good = (header.len() as u64).to_le_bytes().to_vec();
    good.extend(header.as_bytes());
    good.extend(vec![1u8; n as usize]);
    let mut bad = good.clone();
    bad.truncate(bad.len() - 1);
    let mut files = HashMap::new();
    files.insert("good.safetensors".to_string(), Data::mem(good.clone()));
    files.insert("bad.safetensors".to_string(), Data::mem(bad.clone()));
    let client = Client::new(opts().http);
    // Without range support the body is read up to the end of the header, and no further.
    for ranges in [true, false] {
        let srv = file_server(files.clone(), ranges);
        for (name, data, verdict) in [
            ("good.safetensors", &good, Verdict::Clean),
            ("bad.safetensors", &bad, Verdict::Suspicious),
        ] {
            let local = scan_bytes(scanner, data, name.into());
            assert_eq!(local.verdict, verdict);
            let r = remote::scan_url(
                &engine,
                &client,
                &format!("{}/f/{name}", srv.base()),
                &opts(),
            );
            assert_eq!(key(&r), key(&local), "ranges: {ranges}");
            assert!(r.transferred.unwrap() < 256 * 1024, "{:?}", r.transferred);
        }
    }
}

/// A protocol 1 pickle (no PROTO opcode) of a dict of `mib`-MiB BINSTRINGs, optionally with a
/// call to `os.system` first, and optionally ending with `tail`.
fn protocol1_pickle(values: usize, mib: u32, evil_first: bool) -> Vec<u8> {
    let mut p = vec![b'}'];
    if evil_first {
        p.extend(b"U\x01xcos\nsystem\nU\x07echo hi\x85Rs");
    }
    for i in 0..values {
        let key = format!("b{i}");
        p.push(b'U');
        p.push(key.len() as u8);
        p.extend(key.as_bytes());
        let n = mib << 20;
        p.push(b'T');
        p.extend(n.to_le_bytes());
        p.extend((0..n).map(|i| (i % 251) as u8));
        p.push(b's');
    }
    p.push(b'.');
    p
}

#[test]
fn protocol_1_pickles_are_read_as_a_stream() {
    for ranges in [true, false] {
        // Clean: stepped over with ranges, read to the end (dropping the strings) without.
        let data = protocol1_pickle(3, 4, false);
        let size = data.len() as u64;
        let (r, sent, local) = scan_served(data, "model.pkl", &opts(), ranges);
        assert_eq!(local.format, Format::Pickle);
        assert_eq!(local.verdict, Verdict::Clean, "{:?}", local.findings);
        assert_eq!(key(&r), key(&local));
        if ranges {
            assert!(sent < 1 << 20, "sent {sent} of {size}");
        }
        // Dangerous: reading stops at the call.
        let data = protocol1_pickle(1, 16, true);
        let size = data.len() as u64;
        let (r, _, local) = scan_served(data, "evil.pkl", &opts(), ranges);
        assert_eq!(local.verdict, Verdict::Dangerous);
        assert_eq!(key(&r), key(&local));
        assert!(
            r.transferred.unwrap() < size / 4,
            "{:?} of {size}",
            r.transferred
        );
    }
}

#[test]
fn a_pickle_ending_as_a_zip_is_never_clean_without_range_support() {
    // A protocol 1 pickle whose last bytes are a zip: a local scan (and Python's zipfile) reads
    // it as a zip, found from its end record. A forward read has dropped the pickle's strings by
    // then: not scanned, never clean. With ranges, the end is fetched first.
    let mut data = protocol1_pickle(1, 2, false);
    data.extend(zip_with(&[("a/data.pkl", b"\x80\x02}.")], false));
    for ranges in [true, false] {
        let (r, _, local) = scan_served(data.clone(), "x.bin", &opts(), ranges);
        assert_eq!(local.format, Format::TorchZip, "{:?}", local.findings);
        if ranges {
            assert_eq!(key(&r), key(&local));
        } else {
            assert_eq!(r.verdict, Verdict::Suspicious, "{:?}", r.findings);
            assert!(r.findings.iter().any(|f| f.rule == "PS919"));
        }
    }
}

#[test]
fn safetensors_that_reads_as_a_text_opcode_is_fetched_only_up_to_the_newline() {
    // Header length 76 = b'L': run as a pickle, LONG reads a line into the tensor data.
    let engine = engine();
    let scanner = &engine.scanner;
    let n = 8u64 << 20;
    let mut header = format!(r#"{{"w":{{"dtype":"U8","shape":[{n}],"data_offsets":[0,{n}]}}}}"#);
    while header.len() < 76 {
        header.push(' ');
    }
    assert_eq!(header.len(), 76);
    let mut data = 76u64.to_le_bytes().to_vec();
    data.extend(header.as_bytes());
    let mut body = vec![1u8; n as usize];
    body[100 * 1024] = b'\n';
    data.extend(body);
    let local = scan_bytes(scanner, &data, "m.safetensors".into());
    assert_eq!(local.verdict, Verdict::Clean);
    let mut files = HashMap::new();
    files.insert("m.safetensors".to_string(), Data::mem(data));
    let srv = file_server(files, true);
    let client = Client::new(opts().http);
    let r = remote::scan_url(
        &engine,
        &client,
        &format!("{}/f/m.safetensors", srv.base()),
        &opts(),
    );
    assert_eq!(key(&r), key(&local));
    let t = r.transferred.unwrap();
    assert!(t > 100 * 1024 && t < 512 * 1024, "{t}");
}

#[test]
fn redirects_keep_ranges_and_drop_the_token_across_hosts() {
    let engine = engine();
    let scanner = &engine.scanner;
    let data = big_torch(8, true);
    let local = scan_bytes(scanner, &data, "model.pt".into());
    let mut files = HashMap::new();
    files.insert("model.pt".to_string(), Data::mem(data));
    let cdn = file_server(files, true);
    let cdn_base = cdn.base();
    let origin = Server::start(move |req: &Req| {
        if req.header("authorization") != Some("Bearer s3cret") {
            return Resp::status(401);
        }
        match req.path.strip_prefix("/r/") {
            Some(n) => Resp::redirect(&format!("{cdn_base}/f/{n}")),
            None => Resp::status(404),
        }
    });
    let url = format!("{}/r/model.pt", origin.base());
    let mut o = opts();
    // Without the token: an error, not a verdict.
    let r = remote::scan_url(&engine, &Client::new(o.http.clone()), &url, &o);
    assert!(r.error.as_deref().unwrap().contains("401"), "{:?}", r.error);
    assert_ne!(r.verdict, Verdict::Clean);
    o.http.token = Some("s3cret".into());
    origin.stats.reset();
    let r = remote::scan_url(&engine, &Client::new(o.http.clone()), &url, &o);
    assert_eq!(key(&r), key(&local));
    let log = cdn.stats.log();
    assert!(!log.is_empty());
    assert!(
        log.iter().all(|l| l.authorization.is_none()),
        "token leaked: {log:?}"
    );
    assert!(log.iter().all(|l| l.range.is_some()), "range lost: {log:?}");
    assert!(origin
        .stats
        .log()
        .iter()
        .all(|l| l.authorization.as_deref() == Some("Bearer s3cret")));
}

#[test]
fn rate_limits_are_retried_after_the_delay_asked() {
    let engine = engine();
    let scanner = &engine.scanner;
    let bytes = std::fs::read(corpus().join("benign/torch_state_dict.pt")).unwrap();
    let local = scan_bytes(scanner, &bytes, "m.pt".into());
    let data = Data::mem(bytes);
    let hits = Arc::new(AtomicU64::new(0));
    let h = hits.clone();
    let srv = Server::start(move |req: &Req| {
        // The first two requests are turned away; the second with a server error.
        match h.fetch_add(1, Ordering::SeqCst) {
            0 => Resp::status(429).with_header("Retry-After", "1"),
            1 => Resp::status(503),
            _ => Resp::file(req, &data, true),
        }
    });
    let o = RemoteOptions {
        http: HttpOptions {
            retries: 3,
            ..opts().http
        },
        ..opts()
    };
    let t = Instant::now();
    let r = remote::scan_url(
        &engine,
        &Client::new(o.http.clone()),
        &format!("{}/m.pt", srv.base()),
        &o,
    );
    assert!(t.elapsed() >= Duration::from_secs(1), "Retry-After ignored");
    assert_eq!(key(&r), key(&local));
    // Too many failures: an error, never a verdict.
    let srv = Server::start(|_req: &Req| Resp::status(503));
    let r = remote::scan_url(
        &engine,
        &Client::new(o.http.clone()),
        &format!("{}/m.pt", srv.base()),
        &o,
    );
    assert!(r.error.as_deref().unwrap().contains("503"));
    assert_eq!(
        srv.stats.requests(),
        2 * 4,
        "first try and 3 retries, for both probes"
    );
}

#[test]
fn unreachable_url_is_an_error() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let o = RemoteOptions {
        http: HttpOptions {
            retries: 0,
            ..opts().http
        },
        ..opts()
    };
    let r = remote::scan_url(
        &engine(),
        &Client::new(o.http.clone()),
        &format!("http://127.0.0.1:{port}/model.pt"),
        &o,
    );
    assert!(r.error.is_some());
    assert_eq!(
        picklescan_rs::report::gate(&[r]),
        picklescan_rs::report::Gate::Error
    );
}

// ---- servers without range support or Content-Length ----

#[test]
fn bodies_without_length_are_read_as_a_stream() {
    // The same streamed reads as with a length: only what the scanner reads is kept.
    let files: Vec<(&str, Vec<u8>)> = vec![
        ("a.joblib", joblib_dump(3, 4, false)),
        ("b.joblib", joblib_dump(3, 4, true)),
        ("c.pt", legacy_torch(16, false)),
        ("d.pt", big_torch_with(16, false, true)),
        ("e.pt", big_torch_with(16, true, false)),
        ("f.pkl", protocol1_pickle(3, 4, false)),
    ];
    for (name, data) in files {
        let size = data.len() as u64;
        let (r, cost, local) = scan_served_by(data, name, &opts(), Serve::Chunked);
        assert_eq!(key(&r), key(&local), "{name}");
        if local.verdict == Verdict::Clean {
            assert_eq!(r.size, size, "{name}");
        }
        assert!(cost.kept < size / 8, "{name}: kept {} of {size}", cost.kept);
    }
}

#[test]
fn bodies_without_length_past_the_budget_are_never_clean() {
    // A body of exactly the budget is scanned whole; one byte more is not fully scanned.
    let data = joblib_dump(3, 4, false);
    let n = data.len() as u64;
    for (budget, verdict) in [(n, Verdict::Clean), (n - 1, Verdict::Suspicious)] {
        let o = RemoteOptions {
            max_bytes: budget,
            ..opts()
        };
        let (r, _, local) = scan_served_by(data.clone(), "m.joblib", &o, Serve::Chunked);
        assert_eq!(r.verdict, verdict, "{:?}", r.findings);
        if verdict == Verdict::Clean {
            assert_eq!(key(&r), key(&local));
        } else {
            assert!(r.findings.iter().any(|f| f.rule == "PS919"));
        }
    }
    // Kinds read to their end: a zip, a safetensors file, a compressed file.
    let mut st = br#"{"w":{"dtype":"U8","shape":[4194304],"data_offsets":[0,4194304]}}"#.to_vec();
    let mut head = (st.len() as u64).to_le_bytes().to_vec();
    head.append(&mut st);
    head.extend(vec![1u8; 4 << 20]);
    let o = RemoteOptions {
        max_bytes: 1 << 20,
        ..opts()
    };
    for (name, data) in [
        ("z.pt", big_torch(4, false)),
        ("s.safetensors", head),
        ("c.joblib.gz", compress("gzip", &noise_pickle(4, false))),
    ] {
        for how in [Serve::Whole, Serve::Chunked] {
            let (r, _, local) = scan_served_by(data.clone(), name, &o, how);
            assert_eq!(local.verdict, Verdict::Clean, "{name}");
            if how == Serve::Whole && name.ends_with(".safetensors") {
                // Its length known, the header is all the scanner reads.
                assert_eq!(key(&r), key(&local));
                continue;
            }
            assert_eq!(
                r.verdict,
                Verdict::Suspicious,
                "{name} {how:?}: {:?}",
                r.findings
            );
            assert!(r.findings.iter().any(|f| f.rule == "PS919"), "{name}");
        }
    }
}

/// Pseudo-random bytes (xorshift): they compress to about their size.
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A protocol 4 pickle of a dict holding `mib` MiB of noise (BINBYTES8), optionally followed
/// by a call to `os.system`.
fn noise_pickle(mib: u32, evil_last: bool) -> Vec<u8> {
    noise_pickle_with(mib, false, evil_last)
}

/// [`noise_pickle`], the call to `os.system` before the noise, after it, or both.
fn noise_pickle_with(mib: u32, evil_first: bool, evil_last: bool) -> Vec<u8> {
    let mut p = vec![0x80, 0x04, b'}'];
    if evil_first {
        set_x_to_system_call(&mut p);
    }
    binunicode(&mut p, "b");
    let n = (mib as usize) << 20;
    p.push(0x8e);
    p.extend((n as u64).to_le_bytes());
    p.extend(noise(n, 7));
    p.push(b's');
    if evil_last {
        set_x_to_system_call(&mut p);
    }
    p.push(b'.');
    p
}

// One test per codec and check, so that the harness runs them side by side; each file is
// scanned locally once and remotely by each kind of server.

/// Compressed files are decompressed as they are read: verdicts equal the local scan, and only
/// the first and last compressed bytes and what the scanner reads of the output are kept.
fn check_compressed_read(codec: &str) {
    let engine = engine();
    let scanner = &engine.scanner;
    let clean = compress(codec, &noise_pickle(4, false));
    for evil in [false, true] {
        let data = if evil {
            compress(codec, &noise_pickle(4, true))
        } else {
            clean.clone()
        };
        let size = data.len() as u64;
        let local = scan_bytes(scanner, &data, "m.joblib.z".into());
        assert!(
            matches!(local.format, Format::JoblibCompressed(_)),
            "{}",
            local.format
        );
        assert_eq!(
            local.verdict,
            verdict_for(evil),
            "{codec}: {:?}",
            local.findings
        );
        for how in ALL_SERVES {
            let (r, cost) = remote_scan_by(data.clone(), "m.joblib.z", &opts(), how);
            assert_eq!(key(&r), key(&local), "{codec} {how:?}");
            // The compressed bytes pass by (with ranges too: one plain GET after the
            // probes): only the first and last are kept; of the output, what the scanner
            // reads (the 4 MiB payload is dropped as it passes).
            assert!(
                cost.kept < size / 4,
                "{codec} {how:?}: kept {} of {size}",
                cost.kept
            );
            if how == Serve::Ranges {
                assert!(cost.bytes < size + (256 << 10), "{codec}: {cost:?}");
            }
        }
    }
    // A cut stream is never clean, and reads as it does locally.
    let mut data = clean;
    data.truncate(data.len() / 2);
    let local = scan_bytes(scanner, &data, "cut.joblib.z".into());
    assert_ne!(local.verdict, Verdict::Clean, "{codec}");
    for how in ALL_SERVES {
        let (r, _) = remote_scan_by(data.clone(), "cut.joblib.z", &opts(), how);
        assert_eq!(key(&r), key(&local), "{codec} {how:?}");
    }
}

mod compressed_files_are_decompressed_as_they_are_read {
    use super::check_compressed_read as check;
    #[test]
    fn zlib() {
        check("zlib")
    }
    #[test]
    fn gzip() {
        check("gzip")
    }
    #[test]
    fn bz2() {
        check("bz2")
    }
    #[test]
    fn lz4() {
        check("lz4")
    }
    #[test]
    fn xz() {
        check("xz")
    }
    #[test]
    fn lzma() {
        check("lzma")
    }
}

/// Reading a compressed file stops at a dangerous finding: a call first, then 16 MiB of noise
/// and a second call; the stream is cut short.
fn check_compressed_stop(codec: &str) {
    let data = compress(codec, &noise_pickle_with(16, true, true));
    let size = data.len() as u64;
    let local = scan_bytes(&scanner(), &data, "m.joblib.z".into());
    assert_eq!(local.verdict, Verdict::Dangerous);
    // What was found is what the local scan found first, and nothing about the cut.
    let first = local.findings.iter().map(|f| f.offset).min().flatten();
    for how in ALL_SERVES {
        let (r, _) = remote_scan_by(data.clone(), "m.joblib.z", &opts(), how);
        assert_eq!(
            r.verdict,
            Verdict::Dangerous,
            "{codec} {how:?}: {:?}",
            r.findings
        );
        assert_eq!(r.format, local.format);
        assert!(
            r.findings
                .iter()
                .all(|f| f.rule != picklescan_rs::scan::ids::TRUNCATED),
            "{codec} {how:?}: {:?}",
            r.findings
        );
        assert!(
            r.findings
                .iter()
                .any(|f| f.offset == first && f.severity.verdict() == Verdict::Dangerous),
            "{codec} {how:?}: {:?}",
            r.findings
        );
        // Read by the client: the server may have written more into the connection's
        // buffers before it was closed.
        let read = r.transferred.unwrap_or(u64::MAX);
        assert!(read < size / 8, "{codec} {how:?}: read {read} of {size}");
    }
}

mod reading_a_compressed_file_stops_at_a_dangerous_finding {
    use super::check_compressed_stop as check;
    #[test]
    fn zlib() {
        check("zlib")
    }
    #[test]
    fn gzip() {
        check("gzip")
    }
    #[test]
    fn bz2() {
        check("bz2")
    }
    #[test]
    fn lz4() {
        check("lz4")
    }
    #[test]
    fn xz() {
        check("xz")
    }
    #[test]
    fn lzma() {
        check("lzma")
    }
}

/// A numpy `.npy` (version 1.0) of an object array: the header, then `pickle`.
fn npy_object(pickle: &[u8]) -> Vec<u8> {
    let mut header = "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }".to_string();
    let pad = (64 - (10 + header.len() + 1) % 64) % 64;
    header.push_str(&" ".repeat(pad));
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(pickle);
    out
}

#[test]
fn npy_object_arrays_are_read_as_a_stream() {
    for (pickle, verdict) in [
        (bytes_pickle(3, 4, false), Verdict::Clean),
        (bytes_pickle(1, 12, true), Verdict::Dangerous),
        (noise_pickle(12, true), Verdict::Dangerous),
    ] {
        let data = npy_object(&pickle);
        let size = data.len() as u64;
        for how in ALL_SERVES {
            let (r, cost, local) = scan_served_by(data.clone(), "a.npy", &opts(), how);
            assert_eq!(local.format, Format::Npy);
            assert_eq!(local.verdict, verdict, "{:?}", local.findings);
            assert_eq!(key(&r), key(&local), "{how:?}");
            assert!(cost.kept < 1 << 20, "{how:?}: kept {} of {size}", cost.kept);
            if how == Serve::Ranges {
                assert!(cost.bytes < 1 << 20, "sent {} of {size}", cost.bytes);
            }
        }
    }
    // Cut short: never clean.
    let mut data = npy_object(&bytes_pickle(3, 4, false));
    data.truncate(data.len() - (3 << 20));
    for how in ALL_SERVES {
        let (r, _, local) = scan_served_by(data.clone(), "cut.npy", &opts(), how);
        assert_ne!(local.verdict, Verdict::Clean);
        assert_eq!(key(&r), key(&local), "{how:?}");
    }
}

/// A ustar header for a regular file `name` of `size` bytes.
fn tar_header(name: &str, size: usize) -> Vec<u8> {
    let mut h = vec![0u8; 512];
    h[..name.len()].copy_from_slice(name.as_bytes());
    for (at, field) in [
        (100, "0000644\0".to_string()),
        (108, "0000000\0".into()),
        (116, "0000000\0".into()),
        (124, format!("{size:011o}\0")),
        (136, "00000000000\0".into()),
    ] {
        h[at..at + field.len()].copy_from_slice(field.as_bytes());
    }
    h[148..156].copy_from_slice(b"        ");
    h[156] = b'0';
    h[257..265].copy_from_slice(b"ustar\x0000");
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
    h
}

/// A tar of `members`, padded, with its end-of-archive blocks.
fn tar_with(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, data) in members {
        out.extend(tar_header(name, data.len()));
        out.extend_from_slice(data);
        out.resize(out.len().div_ceil(512) * 512, 0);
    }
    out.extend([0u8; 1024]);
    out
}

/// The `storages` member of torch's oldest format: `n` FloatStorages of `mib` MiB each.
fn tar_storages(n: usize, mib: u32) -> Vec<u8> {
    let numel = u64::from(mib) << 18;
    let mut s = vec![0x80, 0x02, b'K', n as u8, b'.'];
    for i in 0..n {
        s.extend([0x80, 0x02, b'(']);
        binunicode(&mut s, &i.to_string());
        binunicode(&mut s, "cpu");
        s.extend(b"ctorch\nFloatStorage\nt.");
        s.extend(numel.to_le_bytes());
        s.extend((0..numel).flat_map(|j| (j as f32).to_le_bytes()));
    }
    s.extend(b"\x80\x02].");
    s
}

/// torch's oldest format, storages first: `n` storages of `mib` MiB, a state dict pickle
/// (optionally with a call to `os.system`) and no tensors. `torch` false leaves out `tensors`:
/// then no member is read as torch reads it.
fn torch_tar(n: usize, mib: u32, evil: bool, torch: bool) -> Vec<u8> {
    let storages = tar_storages(n, mib);
    let pickle = state_dict_pickle(mib << 18, evil);
    let mut members: Vec<(&str, &[u8])> = vec![("storages", &storages)];
    if torch {
        members.push(("tensors", b"\x80\x02K\x00."));
    }
    members.push(("pickle", &pickle));
    members.push(("sys_info", b"\x80\x02}."));
    tar_with(&members)
}

#[test]
fn torch_tars_step_over_their_storages() {
    for evil in [false, true] {
        let data = torch_tar(3, 4, evil, true);
        let size = data.len() as u64;
        for how in ALL_SERVES {
            let (r, cost, local) = scan_served_by(data.clone(), "old.pt", &opts(), how);
            assert_eq!(local.format, Format::TorchTar);
            assert_eq!(local.verdict, verdict_for(evil), "{:?}", local.findings);
            assert_eq!(key(&r), key(&local), "{how:?}");
            assert!(cost.kept < 1 << 20, "{how:?}: kept {} of {size}", cost.kept);
            if how == Serve::Ranges {
                assert!(cost.bytes < 1 << 20, "sent {} of {size}", cost.bytes);
            }
        }
    }
}

#[test]
fn tars_not_read_as_torch_reads_them_are_never_clean() {
    // Without `tensors` the scanner reads `storages` whole: the walk that stepped over its raw
    // bytes did not keep what the scan reads. With ranges they are fetched.
    let data = torch_tar(1, 4, false, false);
    for how in ALL_SERVES {
        let (r, _, local) = scan_served_by(data.clone(), "odd.tar", &opts(), how);
        assert_eq!(local.format, Format::Tar);
        if how == Serve::Ranges {
            assert_eq!(key(&r), key(&local));
        } else {
            assert_eq!(r.verdict, Verdict::Suspicious, "{how:?}: {:?}", r.findings);
            assert!(r.findings.iter().any(|f| f.rule == "PS919"));
        }
    }
    // Compressed, with or without range support: the decompressed output is read as a stream,
    // and when the walk turns out wrong the file is read again, its output kept whole.
    let data = compress("gzip", &torch_tar(1, 4, false, false));
    for how in ALL_SERVES {
        let (r, _, local) = scan_served_by(data.clone(), "odd.tar.gz", &opts(), how);
        assert_eq!(local.format.to_string(), "gzip+tar");
        assert_eq!(key(&r), key(&local), "{how:?}");
        assert!(r.transferred > Some(2 * data.len() as u64 - 1), "{how:?}");
    }
    // A cut archive reads as it does locally, never clean.
    let mut data = torch_tar(2, 4, false, true);
    data.truncate(6 << 20);
    for how in ALL_SERVES {
        let (r, _, local) = scan_served_by(data.clone(), "cut.pt", &opts(), how);
        assert_ne!(local.verdict, Verdict::Clean);
        assert_eq!(key(&r), key(&local), "{how:?}");
    }
}

// ---- hub ----

struct Hub {
    api: Server,
    cdn: Server,
}

/// A hub-like pair of servers: the API/resolve host requires `token` when given, large files
/// redirect to a CDN host.
fn hub(files: Vec<(&str, Vec<u8>)>, token: Option<&str>) -> Hub {
    let sha = "0123456789abcdef0123456789abcdef01234567";
    let by_name: HashMap<String, Data> = files
        .iter()
        .map(|(n, d)| (format!("{sha}/{n}"), Data::mem(d.clone())))
        .collect();
    let cdn = file_server(by_name.clone(), true);
    let cdn_base = cdn.base();
    let names: Vec<String> = files.iter().map(|(n, _)| n.to_string()).collect();
    let token = token.map(|t| format!("Bearer {t}"));
    let api = Server::start(move |req: &Req| {
        if let Some(t) = &token {
            if req.header("authorization") != Some(t.as_str()) {
                return Resp::status(401);
            }
        }
        if req.path == "/api/models/org/repo/revision/main" {
            let siblings: Vec<_> = names
                .iter()
                .map(|n| serde_json::json!({ "rfilename": n }))
                .collect();
            return Resp::json(&serde_json::json!({ "sha": sha, "siblings": siblings }));
        }
        let Some(rest) = req.path.strip_prefix("/org/repo/resolve/") else {
            return Resp::status(404);
        };
        match by_name.get(rest) {
            Some(d) if d.len() > 100_000 => Resp::redirect(&format!("{cdn_base}/f/{rest}")),
            Some(d) => Resp::file(req, d, true),
            None => Resp::status(404),
        }
    });
    Hub { api, cdn }
}

fn read(p: &str) -> Vec<u8> {
    std::fs::read(corpus().join(p)).unwrap()
}

#[test]
fn hub_repository_is_listed_and_scanned() {
    let engine = engine();
    let scanner = &engine.scanner;
    let files = vec![
        ("pytorch_model.bin", big_torch(4, false)),
        ("model.safetensors", read("benign/valid.safetensors")),
        (
            "sub/evil.pkl",
            read("malicious/reduce_posix_system_proto2.pkl"),
        ),
        ("config.json", b"{\"a\": 1}".to_vec()),
        ("README.md", b"# model".to_vec()),
        ("tokenizer.model", b"\x0a\x0bsentencepiece-ish".to_vec()),
        (
            "notes.weird",
            b"(just text that starts like an opcode".to_vec(),
        ),
    ];
    let hub = hub(files.clone(), Some("tok"));
    let o = RemoteOptions {
        endpoint: hub.api.base(),
        http: HttpOptions {
            token: Some("tok".into()),
            ..opts().http
        },
        ..opts()
    };
    let repo: HubRef = "org/repo".parse().unwrap();
    let reports = remote::scan_hub(&engine, &Client::new(o.http.clone()), &repo, &o);
    let shown: Vec<&str> = reports.iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        shown,
        [
            "hf://org/repo/pytorch_model.bin",
            "hf://org/repo/model.safetensors",
            "hf://org/repo/sub/evil.pkl"
        ]
    );
    for (r, (name, data)) in reports.iter().zip(&files) {
        let local = scan_bytes(scanner, data, name.rsplit('/').next().unwrap().into());
        assert_eq!(key(r), key(&local), "{name}");
    }
    assert_eq!(reports[2].verdict, Verdict::Dangerous);
    // Skipped files are never fetched; the big one went to the CDN without the token.
    let api_log = hub.api.stats.log();
    assert!(!api_log
        .iter()
        .any(|l| l.path.ends_with("config.json") || l.path.ends_with("README.md")));
    let cdn_log = hub.cdn.stats.log();
    assert!(!cdn_log.is_empty() && cdn_log.iter().all(|l| l.authorization.is_none()));
    // Without the token the listing fails: an error for the repository.
    let o2 = RemoteOptions {
        http: HttpOptions {
            token: None,
            ..o.http.clone()
        },
        ..o.clone()
    };
    let reports = remote::scan_hub(&engine, &Client::new(o2.http.clone()), &repo, &o2);
    assert_eq!(reports.len(), 1);
    assert!(reports[0].error.as_deref().unwrap().contains("401"));
}

// ---- the command line ----

fn bin() -> std::process::Command {
    std::process::Command::new(env!("CARGO_BIN_EXE_picklescan-rs"))
}

#[test]
fn cli_scans_urls_and_hub_repositories() {
    let mut files = HashMap::new();
    files.insert(
        "evil.pkl".to_string(),
        Data::mem(read("malicious/reduce_posix_system_proto2.pkl")),
    );
    files.insert(
        "ok.pt".to_string(),
        Data::mem(read("benign/torch_state_dict.pt")),
    );
    let srv = file_server(files, true);
    let out = bin()
        .args(["--no-config", "--format", "json"])
        .arg(format!("{}/f/ok.pt", srv.base()))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let f = &v["files"][0];
    assert_eq!(f["verdict"], "clean");
    assert!(f["transferred"].as_u64().unwrap() > 0);
    let out = bin()
        .args(["--no-config"])
        .arg(format!("{}/f/evil.pkl", srv.base()))
        .arg(format!("{}/f/ok.pt", srv.base()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    let size = read("benign/torch_state_dict.pt").len();
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("fetched ")
                && l.contains(&format!(" of {size} bytes"))),
        "{text}"
    );
    // A policy that reads the content runs over the fetched bytes.
    let out = bin()
        .args([
            "--no-config",
            "--format",
            "json",
            "--policy",
            "torch-weights-only",
        ])
        .arg(format!("{}/f/ok.pt", srv.base()))
        .arg(format!("{}/f/evil.pkl", srv.base()))
        .output()
        .unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for f in v["files"].as_array().unwrap() {
        assert!(f["torch_weights_only"].is_object(), "{f}");
    }
    assert_eq!(out.status.code(), Some(1));

    let hub = hub(
        vec![("model.pt", read("benign/torch_state_dict.pt"))],
        Some("t0k"),
    );
    let out = bin()
        .args(["--no-config", "--hf", "org/repo", "--token", "t0k"])
        .env("HF_ENDPOINT", hub.api.base())
        .env_remove("HF_TOKEN")
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = bin()
        .args(["--no-config", "--hf", "org/repo@main"])
        .env("HF_ENDPOINT", hub.api.base())
        .env("HF_TOKEN", "t0k")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn cli_unreachable_url_exits_3() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let out = bin()
        .args(["--no-config"])
        .arg(format!("http://127.0.0.1:{port}/model.pt"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
}

/// 7z archives are fetched whole and read as on disk, whatever the server: the same report as
/// the local scan for every 7z fixture (the nullifAI shape dangerous); one larger than the budget
/// is never clean.
#[test]
fn sevenz_archives_are_fetched_whole() {
    let dir = corpus().join("formats/sevenz");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() >= 25, "{names:?}");
    for how in ALL_SERVES {
        for name in &names {
            let data = std::fs::read(dir.join(name)).unwrap();
            let local = scan_bytes(&scanner(), &data, name.clone());
            let (r, _) = remote_scan_by(data, name, &opts(), how);
            assert_eq!(key(&local), key(&r), "{name} {how:?}");
            if name.starts_with("nullifai") {
                assert_eq!(r.verdict, Verdict::Dangerous, "{name}");
            }
        }
    }
    let data = std::fs::read(dir.join("benign_copy.7z")).unwrap();
    let o = RemoteOptions {
        head: 64,
        tail: 64,
        max_bytes: 1000,
        ..opts()
    };
    for how in ALL_SERVES {
        let (r, _) = remote_scan_by(data.clone(), "benign_copy.7z", &o, how);
        assert_ne!(r.verdict, Verdict::Clean, "{how:?}: {:?}", r.findings);
        assert!(r.findings.iter().any(|f| f.rule == "PS919"), "{how:?}");
    }
}
