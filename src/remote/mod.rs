//! Scanning files before they are downloaded: URLs and model-hub repositories, reading only the
//! bytes the scanner needs through HTTP range requests.
//!
//! A remote file is first probed with two requests in parallel, its first bytes
//! (`Range: bytes=0-…`) and its last (`Range: bytes=-…`, which also gives the size through
//! `Content-Range`). Its format is recognised by content, as for local files, and [`plan`]
//! fetches what the scanner will read: for a torch zip, the central directory, the pickles and
//! the first bytes of the members no pickle names as a tensor storage (tensor data is never
//! fetched); for safetensors and GGUF, the header; for pickles, joblib dumps, legacy torch
//! files, tar archives and npy object arrays, what the scanner reads as it goes (large payloads
//! and raw storages stepped over); for compressed files, whose every byte the scanner reads, the
//! whole file in one request, decompressed as it arrives (reading stops at a dangerous finding
//! in the output). The bytes land in a sparse
//! in-memory image of the file ([`range::Sparse`]) and the ordinary scanner
//! ([`crate::container::scan`]) runs over it. Nothing is written to disk.
//!
//! Fail-closed rules:
//! * each file has a byte budget ([`RemoteOptions::max_bytes`]); what it would take more to scan
//!   is not scanned, and that is a finding (`PS919`, suspicious), never a clean verdict;
//! * a server that ignores ranges (`200`) is read as a stream, never beyond the budget, and
//!   only what the scanner reads is kept (with or without `Content-Length`);
//! * a file that cannot be fetched (after retries) is an error (exit code 3), never clean.

pub mod http;
pub mod hub;
pub mod inflate;
pub mod plan;
pub mod range;

use crate::container::weights_only::{self, WeightsOnly};
use crate::container::{self, ids};
use crate::engine::Engine;
use crate::finding::{Finding, Verdict};
use crate::format::access::Missing;
use crate::format::detect::{detect, Kind};
use crate::format::{zip, Format};
use crate::policy::Policy;
use crate::report::FileReport;
use crate::scan::{Scanner, StreamEnd};
use http::{Client, Fetched, HttpOptions, Meter, Range};
use hub::HubRef;
use range::{BodyStream, FetchError, Frozen, RemoteFile, Source, Sparse};

/// Default byte budget of one remote file.
pub const DEFAULT_MAX_BYTES: u64 = 256 * 1024 * 1024;
/// Default hub endpoint (`HF_ENDPOINT` overrides it).
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// How remote files are fetched.
#[derive(Debug, Clone)]
pub struct RemoteOptions {
    /// Timeouts, retries and token.
    pub http: HttpOptions,
    /// Bytes one file may cost; more is a finding.
    pub max_bytes: u64,
    /// Range requests in flight per file.
    pub parallel: usize,
    /// Files scanned at once (hub repositories and URL lists).
    pub files_parallel: usize,
    /// Bytes asked for at the start of a file.
    pub head: u64,
    /// Bytes asked for at the end of a file (at least 64 KiB + 98 so that every place a zip
    /// end record may be is seen).
    pub tail: u64,
    /// Hub endpoint, e.g. `https://huggingface.co`.
    pub endpoint: String,
    /// Also fetch the local headers of tensor storage members. The zip scanner does not read
    /// them today (it judges storages from the central directory); this is for a scanner that
    /// would, and for measuring what that costs (one request per storage).
    pub fetch_storage_headers: bool,
    /// Fetch what the zip scan will read before it runs (`plan::zip`). Only a prefetch: the
    /// scan reports what it lacks and is run again once that is fetched, so with this off the
    /// result is the same, in more round trips (for measuring, and for the tests that show it).
    pub prefetch_zip_members: bool,
}

impl Default for RemoteOptions {
    fn default() -> Self {
        RemoteOptions {
            http: HttpOptions::default(),
            max_bytes: DEFAULT_MAX_BYTES,
            parallel: 4,
            files_parallel: 8,
            head: 64 * 1024,
            tail: 128 * 1024,
            endpoint: DEFAULT_ENDPOINT.to_string(),
            fetch_storage_headers: false,
            prefetch_zip_members: true,
        }
    }
}

impl RemoteOptions {
    /// These options with the engine's policy, for one scan.
    fn under<'a>(&'a self, engine: &'a Engine) -> Run<'a> {
        Run {
            opts: self,
            policy: &engine.policy,
        }
    }

    /// Defaults, with the token and endpoint from `HF_TOKEN` and `HF_ENDPOINT` when set.
    pub fn from_env() -> Self {
        let mut o = RemoteOptions::default();
        if let Ok(t) = std::env::var("HF_TOKEN") {
            if !t.trim().is_empty() {
                o.http.token = Some(t.trim().to_string());
            }
        }
        if let Ok(e) = std::env::var("HF_ENDPOINT") {
            if !e.trim().is_empty() {
                o.endpoint = e.trim().trim_end_matches('/').to_string();
            }
        }
        o
    }
}

/// True for what [`scan_url`] takes: `http://` and `https://` URLs.
pub fn is_url(s: &str) -> bool {
    let l = s.get(..8).unwrap_or(s).to_ascii_lowercase();
    l.starts_with("http://") || l.starts_with("https://")
}

/// What a remote scan cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Cost {
    /// Body bytes received.
    pub bytes: u64,
    /// HTTP requests sent (redirect hops and retries included).
    pub requests: u64,
    /// Round trips: batches of requests that waited for the previous batch.
    pub rounds: u32,
    /// Bytes held at the end of the scan: of the file (fetched, or kept from a body read as a
    /// stream), and of a compressed file's decompressed output.
    pub kept: u64,
}

/// One remote scan's options and the engine's policy, applied to each scanned file's report
/// while its fetched bytes are at hand (`torch-weights-only` replays the loader over them).
/// Reports of files that could not be fetched are errors whatever the policy.
struct Run<'a> {
    opts: &'a RemoteOptions,
    policy: &'a Policy,
}

impl std::ops::Deref for Run<'_> {
    type Target = RemoteOptions;
    fn deref(&self) -> &RemoteOptions {
        self.opts
    }
}

/// Scan the file at `url` (its name, for tie-breaking, is the last path segment) with the
/// engine's rules, limits and policy.
pub fn scan_url(engine: &Engine, client: &Client, url: &str, opts: &RemoteOptions) -> FileReport {
    scan_url_with_cost(engine, client, url, opts).0
}

/// [`scan_url`], and what it cost.
pub fn scan_url_with_cost(
    engine: &Engine,
    client: &Client,
    url: &str,
    opts: &RemoteOptions,
) -> (FileReport, Cost) {
    url_report(&engine.scanner, client, url, &opts.under(engine))
}

fn url_report(scanner: &Scanner, client: &Client, url: &str, opts: &Run<'_>) -> (FileReport, Cost) {
    let name = url_name(url);
    let (r, cost) = scan_remote(
        scanner,
        client,
        url,
        url.to_string(),
        name.as_deref(),
        opts,
        false,
    );
    let r = r.unwrap_or_else(|| {
        // Only sniffing drops a file; a URL asked for is always reported.
        FileReport::unreadable(url.to_string(), "no report".into())
    });
    (r, cost)
}

/// Scan every URL and every hub repository, `opts.files_parallel` files at a time. Reports come
/// in the order given (a repository's files in its listing order).
pub fn scan_all(
    engine: &Engine,
    urls: &[String],
    repos: &[HubRef],
    opts: &RemoteOptions,
) -> Vec<FileReport> {
    let client = Client::new(opts.http.clone());
    let mut jobs: Vec<Job> = urls.iter().map(|u| Job::Url(u.clone())).collect();
    for r in repos {
        match hub::list(&client, &opts.endpoint, r) {
            Ok(files) => jobs.extend(files.into_iter().map(Job::Hub)),
            Err(e) => jobs.push(Job::Failed(Box::new(FileReport::unreadable(
                r.display(None),
                format!("cannot list the repository: {e}"),
            )))),
        }
    }
    run_jobs(&engine.scanner, &client, jobs, &opts.under(engine))
}

/// Scan the files of one hub repository at one revision.
pub fn scan_hub(
    engine: &Engine,
    client: &Client,
    repo: &HubRef,
    opts: &RemoteOptions,
) -> Vec<FileReport> {
    match hub::list(client, &opts.endpoint, repo) {
        Ok(files) => run_jobs(
            &engine.scanner,
            client,
            files.into_iter().map(Job::Hub).collect(),
            &opts.under(engine),
        ),
        Err(e) => vec![FileReport::unreadable(
            repo.display(None),
            format!("cannot list the repository: {e}"),
        )],
    }
}

enum Job {
    Url(String),
    Hub(hub::HubFile),
    Failed(Box<FileReport>),
}

fn run_jobs(scanner: &Scanner, client: &Client, jobs: Vec<Job>, opts: &Run<'_>) -> Vec<FileReport> {
    let n = jobs.len();
    let slots: Vec<std::sync::Mutex<Option<Option<FileReport>>>> =
        (0..n).map(|_| std::sync::Mutex::new(None)).collect();
    let next = std::sync::atomic::AtomicUsize::new(0);
    let jobs = &jobs;
    std::thread::scope(|s| {
        for _ in 0..opts.files_parallel.clamp(1, n.max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= n {
                    return;
                }
                let out = match &jobs[i] {
                    Job::Url(u) => Some(url_report(scanner, client, u, opts).0),
                    Job::Hub(f) => {
                        let name = f.path.rsplit('/').next().map(str::to_string);
                        let sniff = f.selection == hub::Selection::Sniff;
                        scan_remote(
                            scanner,
                            client,
                            &f.url,
                            f.shown.clone(),
                            name.as_deref(),
                            opts,
                            sniff,
                        )
                        .0
                    }
                    Job::Failed(r) => Some((**r).clone()),
                };
                if let Ok(mut slot) = slots[i].lock() {
                    *slot = Some(out);
                }
            });
        }
    });
    slots
        .into_iter()
        .filter_map(|m| m.into_inner().ok().flatten().flatten())
        .collect()
}

/// The last path segment of a URL, without query or fragment.
fn url_name(url: &str) -> Option<String> {
    let no_query = url.split(['?', '#']).next().unwrap_or(url);
    let after_scheme = no_query.split_once("://").map(|x| x.1).unwrap_or(no_query);
    let path = after_scheme.split_once('/').map(|x| x.1)?;
    path.rsplit('/')
        .next()
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Scan one remote file. With `sniff`, content of no known format is not reported (`Ok(None)`).
fn scan_remote(
    scanner: &Scanner,
    client: &Client,
    url: &str,
    shown: String,
    name: Option<&str>,
    opts: &Run<'_>,
    sniff: bool,
) -> (Option<FileReport>, Cost) {
    let meter = Meter::default();
    let mut rounds = 1;
    let mut kept = 0;
    let result = scan_inner(
        scanner,
        client,
        url,
        &shown,
        name,
        opts,
        sniff,
        &meter,
        (&mut rounds, &mut kept),
    );
    let cost = Cost {
        bytes: meter.bytes(),
        requests: meter.requests(),
        rounds,
        kept: kept + meter.held(),
    };
    match result {
        Ok(Some(mut r)) => {
            r.transferred = Some(cost.bytes);
            (Some(r), cost)
        }
        Ok(None) => (None, cost),
        Err(e) => {
            let mut r = FileReport::unreadable(shown, format!("cannot fetch: {e}"));
            r.transferred = Some(cost.bytes);
            (Some(r), cost)
        }
    }
}

/// The report of a file not scanned because what its scan reads lies beyond the budget or
/// could not be kept: a `PS919` finding, never clean.
fn unscanned(scanner: &Scanner, shown: &str, src: &impl Source, why: &str) -> FileReport {
    let size = src.length();
    let f = budget_finding(scanner, src.transferred(), size, src.budget(), why);
    let shown_size = size.unwrap_or_else(|| src.transferred());
    FileReport::scanned(shown.to_string(), shown_size, Format::Unscanned, vec![f])
}

fn budget_finding(
    scanner: &Scanner,
    fetched: u64,
    size: Option<u64>,
    budget: u64,
    why: &str,
) -> Finding {
    scanner.anomaly(
        ids::IO_ERROR,
        Some(fetched),
        format!(
            "not fully scanned: {why}; {fetched} of {} bytes were fetched within the remote budget of {budget} bytes (--max-remote-bytes)",
            size.map(|s| s.to_string()).unwrap_or_else(|| "?".into())
        ),
    )
}

fn report(
    scanner: &Scanner,
    opts: &Run<'_>,
    shown: &str,
    data: &[u8],
    size: u64,
    name: Option<&str>,
    extra: Option<Finding>,
) -> FileReport {
    let scan = container::scan_file(scanner, data, name, None);
    report_scanned(opts, shown, scan.scanned, scan.weights_only, size, extra)
}

/// Scans of the image in a row, each after fetching what the one before lacked, until nothing
/// is missing (or the budget or [`MAX_SCAN_ROUNDS`] ends it: the report then says the file is
/// not fully read).
fn scan_fetching(
    scanner: &Scanner,
    opts: &Run<'_>,
    rf: &mut RemoteFile<'_>,
    shown: &str,
    name: Option<&str>,
) -> Result<FileReport, FetchError> {
    let size = rf.sparse.size();
    let mut round = 0;
    loop {
        let scan = container::scan_image(scanner, rf.sparse.bytes(), &rf.sparse, name);
        round += 1;
        let over_budget = if scan.missing.is_empty() || round >= MAX_SCAN_ROUNDS {
            None
        } else {
            let ranges: Vec<(u64, u64)> = scan.missing.iter().map(|m| (m.start, m.end)).collect();
            match rf.ensure(&ranges) {
                Ok(()) => continue,
                Err(FetchError::Budget { .. }) => Some(budget_finding(
                    scanner,
                    rf.sparse.fetched(),
                    Some(size),
                    rf.budget,
                    "the zip members to scan are larger than the budget",
                )),
                Err(e) => return Err(e),
            }
        };
        return Ok(report_scanned(
            opts,
            shown,
            scan.scanned,
            scan.weights_only,
            size,
            over_budget,
        ));
    }
}

/// Scans of one file's image at most (each fetching what the one before lacked).
const MAX_SCAN_ROUNDS: usize = 16;

/// [`report`] of content scanned already, with the policy applied.
fn report_scanned(
    opts: &Run<'_>,
    shown: &str,
    scanned: container::Scanned,
    weights_only: Option<WeightsOnly>,
    size: u64,
    extra: Option<Finding>,
) -> FileReport {
    let mut findings = scanned.findings;
    findings.extend(extra);
    let mut r = FileReport::scanned(shown.to_string(), size, scanned.format, findings);
    r.torch_weights_only = weights_only;
    opts.policy.apply(&mut r);
    r
}

#[allow(clippy::too_many_arguments)]
fn scan_inner(
    scanner: &Scanner,
    client: &Client,
    url: &str,
    shown: &str,
    name: Option<&str>,
    opts: &Run<'_>,
    sniff: bool,
    meter: &Meter,
    (rounds, kept): (&mut u32, &mut u64),
) -> Result<Option<FileReport>, FetchError> {
    // Round 1: first and last bytes in parallel; the last also give the size.
    let head_len = opts.head.max(16);
    let (head, tail) = std::thread::scope(|s| {
        let tail = s.spawn(|| client.fetch(url, Some(Range::Suffix(opts.tail.max(22))), meter));
        let head = client.fetch(url, Some(Range::Span(0, head_len)), meter);
        let tail = tail
            .join()
            .unwrap_or_else(|_| Err(http::HttpError::Transport("request thread failed".into())));
        (head, tail)
    });
    let budget = opts.max_bytes;
    let (head, tail) = match (head, tail) {
        (Err(e), _) | (_, Err(e)) => return Err(e.into()),
        (Ok(h), Ok(t)) => (h, t),
    };
    let (hs, hd, total, ts, td, total2) = match (head, tail) {
        (Fetched::Empty, _) | (_, Fetched::Empty) => {
            return Ok(Some(report(scanner, opts, shown, &[], 0, name, None)));
        }
        (
            Fetched::Partial {
                start: 0,
                data,
                total,
            },
            Fetched::Whole { .. },
        ) => {
            // Explicit ranges work but suffix ranges do not: ask for the tail by position.
            let tail_start = total.saturating_sub(opts.tail.max(22));
            (0, data, total, tail_start, Vec::new(), total)
        }
        (Fetched::Whole { length, body }, _) | (_, Fetched::Whole { length, body }) => {
            // No range support: the body is read as a stream, its length known or not.
            let (r, held) = scan_body(
                scanner, client, url, body, length, shown, name, opts, sniff, meter,
            );
            *kept = held;
            return r;
        }
        (
            Fetched::Partial {
                start: hs,
                data: hd,
                total,
            },
            Fetched::Partial {
                start: ts,
                data: td,
                total: total2,
            },
        ) => (hs, hd, total, ts, td, total2),
    };
    if total != total2 {
        return Err(http::HttpError::Protocol(format!(
            "{url} changed size while being scanned ({total} then {total2} bytes)"
        ))
        .into());
    }
    let mut sparse = Sparse::new(total)
        .map_err(|e| http::HttpError::Protocol(format!("cannot hold the image of {url}: {e}")))?;
    sparse.put(hs, &hd);
    sparse.put(ts, &td);
    drop((hd, td));
    let mut rf = RemoteFile::new(client, url, sparse, meter, budget, opts.parallel);
    rf.ensure(&[(ts, total)])?;
    let result = plan_and_scan(scanner, client, url, &mut rf, shown, name, sniff, opts);
    *rounds = rf.rounds;
    *kept = rf.sparse.fetched() + rf.streamed;
    result
}

#[allow(clippy::too_many_arguments)]
fn plan_and_scan(
    scanner: &Scanner,
    client: &Client,
    url: &str,
    rf: &mut RemoteFile<'_>,
    shown: &str,
    name: Option<&str>,
    sniff: bool,
    opts: &Run<'_>,
) -> Result<Option<FileReport>, FetchError> {
    let size = rf.size();
    let over =
        |rf: &RemoteFile<'_>, e: FetchError, why: &str| -> Result<Option<FileReport>, FetchError> {
            match e {
                FetchError::Budget { .. } => Ok(Some(unscanned(scanner, shown, rf, why))),
                other => Err(other),
            }
        };
    // What detection itself reads: a safetensors header, a zip directory.
    if let Some(end) = plan::safetensors_header_end(&rf.sparse) {
        if let Err(e) = rf.ensure(&[(0, end)]) {
            return over(rf, e, "the safetensors header is larger than the budget");
        }
    }
    // The zip reader runs on what is fetched; what it misses is fetched and it runs again.
    let mut dir = None;
    for _ in 0..3 {
        match plan::directory(&rf.sparse) {
            Err(Missing { start, end }) => {
                if let Err(e) = rf.ensure(&[(start, end)]) {
                    return over(rf, e, "the zip end records lie beyond the budget");
                }
            }
            Ok(found) => {
                dir = found;
                break;
            }
        }
    }
    if let Some((lo, hi)) = dir {
        if let Err(e) = rf.ensure(&[(lo, hi)]) {
            if !matches!(e, FetchError::Budget { .. }) {
                return Err(e);
            }
            // A directory larger than the budget: judged below, by the whole-file rule.
            dir = None;
        }
    }
    let kind = detect(rf.sparse.bytes(), name);
    let json = Kind::Format(crate::format::detect::Recognised::Json);
    if sniff {
        match kind {
            Kind::Unknown | Kind::Empty => return Ok(None),
            k if k == json && !container::formats::remote_json_worth_reading(name, size) => {
                return Ok(None)
            }
            Kind::Pickle
                if rf.sparse.bytes()[0] != 0x80 && plan::inert_prefix(scanner, &rf.sparse) =>
            {
                // Text that merely starts with a protocol 0 opcode and stops being a pickle
                // within the first bytes, without doing anything.
                return Ok(None);
            }
            _ => {}
        }
    }
    let head = &rf.sparse.bytes()[..rf.sparse.prefix() as usize];
    if let Some(reads) = stream_reads(scanner, kind, head) {
        let report = |d: &[u8], size, extra| report(scanner, opts, shown, d, size, name, extra);
        if let Some(r) = stream_pickle(scanner, rf, &report, reads)? {
            if stream_followed(scanner, kind, &rf.sparse) {
                return Ok(Some(r));
            }
        }
    }
    if let Kind::Compressed(codec) = kind {
        if !rf.sparse.has(0, size) {
            // Every byte is read, once, in order: one plain GET read as a stream.
            let mut st = rf.body()?;
            let head = &rf.sparse.bytes()[..rf.sparse.prefix() as usize];
            let file = Compressed {
                scanner,
                codec,
                shown,
                name,
                opts,
                head,
            };
            let r = scan_compressed(&file, client, url, &mut st);
            rf.streamed = st.sparse.fetched();
            return r.map(Some);
        }
    }
    let need_whole = match kind {
        Kind::Zip => match dir {
            Some(_) if !opts.prefetch_zip_members => false,
            Some((lo, hi)) => match plan::zip(scanner, rf, lo, hi, opts.fetch_storage_headers) {
                Ok(plan::ZipPlan::Ready) => false,
                Ok(plan::ZipPlan::Whole) => true,
                Err(e) => return over(rf, e, "the zip members to scan are larger than the budget"),
            },
            None => true,
        },
        Kind::Safetensors | Kind::Gguf | Kind::Npy => match header_reads(scanner, rf, kind) {
            Ok(whole) => whole,
            Err((e, why)) => return over(rf, e, why),
        },
        Kind::Unknown | Kind::Unscannable(_) | Kind::Empty => false,
        // JSON too large to hold a config is judged from its first bytes, as other text.
        k if k == json => container::formats::remote_json_worth_reading(name, size),
        Kind::Pickle | Kind::TorchLegacy | Kind::Tar | Kind::Compressed(_) | Kind::Format(_) => {
            true
        }
    };
    // What the scanner reads is fetched: the planned parts, or the whole file when the budget
    // allows it.
    let missing = |rf: &RemoteFile<'_>| -> u64 {
        rf.sparse.missing(0, size).iter().map(|(s, e)| e - s).sum()
    };
    if !need_whole && kind == Kind::Zip {
        return scan_fetching(scanner, opts, rf, shown, name).map(Some);
    }
    if !need_whole || missing(rf) <= rf.left() {
        if need_whole {
            rf.ensure(&[(0, size)])?;
        }
        let data = rf.sparse.bytes();
        return Ok(Some(report(scanner, opts, shown, data, size, name, None)));
    }
    // Longest prefix the budget pays for.
    let mut left = rf.left();
    let mut end = 0u64;
    for (s, e) in rf.sparse.missing(0, size) {
        if e - s > left {
            end = s + left;
            break;
        }
        left -= e - s;
        end = e;
    }
    if end > 0 {
        match rf.ensure(&[(0, end)]) {
            Ok(()) | Err(FetchError::Budget { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let prefix = rf.sparse.prefix();
    let f = budget_finding(
        scanner,
        prefix,
        Some(size),
        rf.budget,
        &format!(
            "a {} file is read whole by its loader and is larger than the budget",
            kind.format()
        ),
    );
    let mut r = report(
        scanner,
        opts,
        shown,
        &rf.sparse.bytes()[..prefix as usize],
        size,
        name,
        Some(f),
    );
    r.size = size;
    Ok(Some(r))
}

/// A file from a server without range support, read front to back, keeping only what the
/// scanner reads (and the last [`range::BODY_TAIL`] bytes): pickles, joblib dumps, legacy torch
/// files, tar archives and npy object arrays are streamed as the scan goes (reading stops at a
/// final verdict); zips are walked by local header; compressed files are decompressed as they
/// are read; safetensors, GGUF and plain npy files are read up to the end of their header.
/// Content that a local scan reads whole in another way (a header the walk does not follow) is
/// kept whole, up to the budget. A body without `Content-Length` is read the same way, its
/// length learnt at its end; one that goes on past the budget is not fully scanned (`PS919`).
/// Also gives the bytes the image holds at the end.
#[allow(clippy::too_many_arguments)]
fn scan_body(
    scanner: &Scanner,
    client: &Client,
    url: &str,
    body: http::Body,
    length: Option<u64>,
    shown: &str,
    name: Option<&str>,
    opts: &Run<'_>,
    sniff: bool,
    meter: &Meter,
) -> (Result<Option<FileReport>, FetchError>, u64) {
    let mut st = match BodyStream::new(body, length, meter, opts.max_bytes) {
        Ok(st) => st,
        Err(e) => {
            let e = http::HttpError::Protocol(format!("cannot hold the image: {e}"));
            return (Err(e.into()), 0);
        }
    };
    let r = match read_body(scanner, client, url, &mut st, shown, name, opts, sniff) {
        Err(FetchError::Budget { .. }) => Ok(Some(unscanned(
            scanner,
            shown,
            &st,
            "the server does not support range requests and the file is larger than the budget",
        ))),
        other => other,
    };
    (r, st.sparse.fetched())
}

/// [`scan_body`] over its stream.
#[allow(clippy::too_many_arguments)]
fn read_body(
    scanner: &Scanner,
    client: &Client,
    url: &str,
    st: &mut BodyStream<'_>,
    shown: &str,
    name: Option<&str>,
    opts: &Run<'_>,
    sniff: bool,
) -> Result<Option<FileReport>, FetchError> {
    let budget = opts.max_bytes;
    st.ensure(&[(0, opts.head.max(16).min(budget))])?;
    let unscanned = |st: &BodyStream<'_>, why: &str| unscanned(scanner, shown, st, why);
    // What detection itself reads: a safetensors header.
    if let Some(end) = plan::safetensors_header_end(&st.sparse) {
        match st.ensure(&[(0, end)]) {
            Ok(()) => {}
            Err(FetchError::Budget { .. }) => {
                return Ok(Some(unscanned(
                    st,
                    "the safetensors header is larger than the budget",
                )))
            }
            Err(e) => return Err(e),
        }
    }
    let prefix = &st.sparse.bytes()[..st.sparse.prefix() as usize];
    let kind = detect(prefix, name);
    // Content that starts with a protocol 0/1 opcode or no magic at all is what it is only with
    // its end known (a zip's end record): such a read goes on to the end of the body, and the
    // kind must not change.
    let told_by_end = match kind {
        Kind::Unknown | Kind::Empty => true,
        Kind::Pickle => prefix.first() != Some(&0x80),
        _ => false,
    };
    if sniff && kind == Kind::Pickle && told_by_end && plan::inert_prefix(scanner, &st.sparse) {
        return Ok(None);
    }
    if let Some(reads) = stream_reads(scanner, kind, prefix) {
        let report = |d: &[u8], size, extra| report(scanner, opts, shown, d, size, name, extra);
        let r = stream_pickle(scanner, st, &report, reads)?
            .filter(|_| stream_followed(scanner, kind, &st.sparse));
        let Some(r) = r else {
            return Ok(Some(unscanned(
                st,
                "the content could not be read as a stream from a server without range support",
            )));
        };
        if !told_by_end || r.verdict == Verdict::Dangerous {
            return Ok(Some(r));
        }
        return match st.read_to_end() {
            Ok(()) if detect(st.sparse.bytes(), name) == kind => Ok(Some(r)),
            Ok(()) => Ok(Some(unscanned(
                st,
                "the file starts as a pickle but ends as a zip, which cannot be read as a stream",
            ))),
            Err(FetchError::Budget { .. }) => Ok(Some(unscanned(
                st,
                "the file starts as a protocol 0/1 pickle, which only its end tells from a zip, and is larger than the budget",
            ))),
            Err(e) => Err(e),
        };
    }
    if let Kind::Compressed(codec) = kind {
        let head = prefix.to_vec();
        let file = Compressed {
            scanner,
            codec,
            shown,
            name,
            opts,
            head: &head,
        };
        return scan_compressed(&file, client, url, st).map(Some);
    }
    if kind == Kind::Zip && prefix.starts_with(b"PK") && st.length().is_none_or(|l| l <= budget) {
        return stream_zip(scanner, st, shown, name, opts).map(Some);
    }
    let whole = match kind {
        Kind::Safetensors | Kind::Gguf | Kind::Npy => match header_reads(scanner, st, kind) {
            Ok(whole) => whole,
            Err((FetchError::Budget { .. }, why)) => return Ok(Some(unscanned(st, why))),
            Err((e, _)) => return Err(e),
        },
        // Recognised by its magic and never opened.
        Kind::Unscannable(_) => false,
        Kind::Unknown | Kind::Empty => match st.read_to_end() {
            Ok(()) if detect(st.sparse.bytes(), name) == kind => false,
            Ok(()) => {
                return Ok(Some(unscanned(
                    st,
                    "content before a zip's first member cannot be read as a stream",
                )))
            }
            // Sniffing drops content of no known format; past the budget its end is not read.
            Err(FetchError::Budget { .. }) if sniff => return Ok(None),
            Err(FetchError::Budget { .. }) => {
                return Ok(Some(unscanned(
                    st,
                    "content of no known format is only told from a zip by its end, and the file is larger than the budget",
                )))
            }
            Err(e) => return Err(e),
        },
        _ => true,
    };
    if !whole {
        if sniff && matches!(kind, Kind::Unknown | Kind::Empty) {
            return Ok(None);
        }
        // The scanner checks sizes against the file's: a body of unknown length is read to
        // its end first.
        let len = st.learn_length()?;
        return Ok(Some(report(
            scanner,
            opts,
            shown,
            st.sparse.bytes(),
            len,
            name,
            None,
        )));
    }
    let end = st.sparse.size().min(budget);
    let over = match st.ensure(&[(0, end)]) {
        Ok(()) => false,
        // A body of unknown length that goes on past the budget.
        Err(FetchError::Budget { .. }) if st.length().is_none() => true,
        Err(e) => return Err(e),
    };
    let end = end.min(st.sparse.size());
    let data = &st.sparse.bytes()[..end as usize];
    if sniff && matches!(detect(data, name), Kind::Unknown | Kind::Empty) {
        return Ok(None);
    }
    let len = st.length();
    let extra = (over || len.is_some_and(|l| end < l)).then(|| {
        budget_finding(
            scanner,
            end,
            len,
            budget,
            "the server does not support range requests and the file is larger than the budget",
        )
    });
    Ok(Some(report(
        scanner,
        opts,
        shown,
        data,
        len.unwrap_or(end),
        name,
        extra,
    )))
}

/// A compressed file scanned from a body: what its report needs.
struct Compressed<'a> {
    scanner: &'a Scanner,
    codec: crate::format::compress::Codec,
    shown: &'a str,
    name: Option<&'a str>,
    opts: &'a Run<'a>,
    /// The file's first bytes, for a policy (a loader judges compressed content by them).
    head: &'a [u8],
}

/// A compressed file read front to back ([`stream_compressed`]); when what the scanner reads
/// of its output could not be kept as it passed (an archive that turns out not to be read as
/// the walk assumed), the file is read again and its output kept whole.
fn scan_compressed(
    file: &Compressed<'_>,
    client: &Client,
    url: &str,
    st: &mut BodyStream<'_>,
) -> Result<FileReport, FetchError> {
    if let Some(r) = stream_compressed(file, st, false)? {
        return Ok(r);
    }
    let left = file.opts.max_bytes.saturating_sub(st.transferred());
    let mut again = range::fetch_body(client, url, st.meter(), st.length(), left)?;
    let r = stream_compressed(file, &mut again, true)?;
    // (Kept whole, the output is always reported.)
    Ok(r.unwrap_or_else(|| {
        unscanned(
            file.scanner,
            file.shown,
            &again,
            "the output could not be kept",
        )
    }))
}

/// A compressed file read front to back (from a server without range support, or one plain
/// GET from a server with it): decompressed on a thread as the body is read, its compressed
/// bytes dropped as they pass, and its output read like any other body (what the scanner reads
/// of pickles, joblib dumps, legacy torch files, tar archives and npy object arrays kept, large
/// payloads and arrays dropped; other content kept whole). Reading, and with it the
/// decompression and the download, stops at a dangerous finding. The decompression budget is
/// the local scan's. With `whole`, all the output is kept. `None` when what the scanner reads
/// of the output was not all kept.
fn stream_compressed(
    file: &Compressed<'_>,
    st: &mut BodyStream<'_>,
    whole: bool,
) -> Result<Option<FileReport>, FetchError> {
    use std::sync::atomic::{AtomicU64, Ordering};
    let &Compressed {
        scanner,
        codec,
        shown,
        name,
        opts,
        head,
    } = file;
    let length = st.length();
    let meter = st.meter();
    let limits = &scanner.limits;
    let read = AtomicU64::new(0);
    let compressed = || length.unwrap_or(read.load(Ordering::Relaxed));
    let ended = std::sync::Mutex::new(None::<inflate::Ended>);
    // Report of what came out (or its first bytes): the findings of the local scan of the
    // compressed file.
    let report_out = |data: &[u8], _: u64, extra: Option<Finding>| {
        let end = ended
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or_default();
        let scanned = container::scan_decompressed_file(
            scanner,
            codec,
            data,
            end.error.as_ref(),
            compressed(),
            name,
        );
        let over = matches!(end.fetch, Some(FetchError::Budget { .. })).then(|| {
            budget_finding(
                scanner,
                meter.bytes(),
                length,
                opts.max_bytes,
                "the compressed file is larger than the budget",
            )
        });
        // torch.load reads the compressed bytes themselves.
        let weights_only = scanner
            .weights_only
            .then(|| weights_only::check_with(head, &scanner.limits));
        report_scanned(
            opts,
            shown,
            scanned,
            weights_only,
            compressed(),
            extra.or(over),
        )
    };
    std::thread::scope(|s| {
        let (tx, rx) = std::sync::mpsc::sync_channel(inflate::IN_FLIGHT);
        let mut rest = st.rest();
        let read = &read;
        s.spawn(move || {
            let input = std::io::BufReader::new(crate::format::compress::Counting {
                inner: &mut rest,
                count: read,
            });
            let budget = || limits.inflate_budget(length.unwrap_or(read.load(Ordering::Relaxed)));
            let mut out = inflate::Pieces(tx);
            let error = crate::format::compress::decompress_into(codec, input, &budget, &mut out);
            let fetch = rest.error.take();
            // Nobody may be reading any more: then there is nobody to tell.
            let _ = out
                .0
                .send(inflate::Piece::End(inflate::Ended { error, fetch }));
        });
        // The output's image: as large as the most the decompression may give.
        let cap = limits.inflate_budget(length.unwrap_or(u64::MAX));
        let mut out = BodyStream::new(inflate::Decoded::new(rx, &ended), None, meter, cap)
            .map_err(|e| http::HttpError::Protocol(format!("cannot hold the output: {e}")))?;
        out.ensure(&[(0, opts.head.max(16))])?;
        let prefix = &out.sparse.bytes()[..out.sparse.prefix() as usize];
        let kind = detect(prefix, None);
        let r = match stream_reads(scanner, kind, prefix).filter(|_| !whole) {
            Some(reads) => stream_pickle(scanner, &mut out, &report_out, reads)?
                .filter(|_| stream_followed(scanner, kind, &out.sparse)),
            None => {
                // Read whole, as a local scan does.
                out.ensure(&[(0, out.sparse.size())])?;
                Some(report_out(out.sparse.bytes(), 0, None))
            }
        };
        meter.hold(out.sparse.fetched());
        // `out` is dropped here, before the thread is joined: a decompression still running
        // fails its next write and ends.
        Ok(r)
    })
}

/// A zip from a server without range support, read front to back: each member is walked by
/// its local header (or, when its size is only in a data descriptor, up to the descriptor that
/// records its length), and a large member that is not named like a pickle keeps only its first
/// bytes unless they are a pickle or a container (tensor storages are dropped as they pass);
/// the central directory at the end is kept. The range planner then checks that everything the
/// scanner reads was kept; if not, the file is reported not fully scanned, never clean.
fn stream_zip(
    scanner: &Scanner,
    st: &mut BodyStream<'_>,
    shown: &str,
    name: Option<&str>,
    opts: &Run<'_>,
) -> Result<FileReport, FetchError> {
    let mut at = 0u64;
    // Walk the local headers; anything this walk does not follow is kept whole from there on.
    // The size is read again after each read: a body of unknown length learns it at its end.
    loop {
        st.ensure(&[(at, at + 30)])?;
        // The zip reader's own local header, read on what the stream has kept so far.
        let mut header = None;
        for _ in 0..3 {
            match zip::LocalHeader::read(&st.sparse, at) {
                Err(Missing { start, end }) => st.ensure(&[(start, end)])?,
                Ok(h) => {
                    header = h.map(|h| (h.flags, h.method, h.csize, h.data_start, h.name.to_vec()));
                    break;
                }
            }
        }
        let Some((flags, method, csize, data, raw_name)) = header else {
            break;
        };
        let member = String::from_utf8_lossy(&raw_name).into_owned();
        if flags & 8 != 0 {
            // The size is only in the data descriptor after the data (what torch.save writes).
            let keep_until = if plan::named_like_pickle(&member) {
                u64::MAX
            } else {
                data + plan::STREAM_MEMBER_HEAD
            };
            match st.skip_described_member(data, keep_until)? {
                Some(next) => {
                    at = next;
                    continue;
                }
                None => {
                    at = st.sparse.size();
                    break;
                }
            }
        }
        // zip64 sizes: not followed.
        if csize == 0xFFFF_FFFF || data + csize > st.sparse.size() {
            break;
        }
        let end = data + csize;
        if csize <= SKIP_MIN || plan::named_like_pickle(&member) {
            st.ensure(&[(data, end)])?;
        } else {
            let head_end = data + plan::STREAM_MEMBER_HEAD;
            st.ensure(&[(data, head_end)])?;
            let Some(raw) = st.sparse.bytes().get(data as usize..head_end as usize) else {
                break;
            };
            let scanned = plan::inflate_head(method, raw)
                .is_none_or(|head| plan::head_is_scanned(&head, &member));
            let in_storage_folder = member
                .to_lowercase()
                .rsplit_once('/')
                .and_then(|(dir, _)| {
                    dir.rsplit('/')
                        .next()
                        .map(|b| b == "data" || b == "constants")
                })
                .unwrap_or(false);
            if scanned && !in_storage_folder {
                st.ensure(&[(head_end, end)])?;
            }
        }
        at = end;
    }
    st.ensure(&[(at, st.sparse.size())])?;
    let len = st.learn_length()?;
    // Everything the scanner reads must have been kept.
    let mut kept = Frozen(&st.sparse);
    let followed = match plan::directory(&st.sparse) {
        Ok(Some((lo, hi))) => {
            matches!(
                plan::zip(scanner, &mut kept, lo, hi, false),
                Ok(plan::ZipPlan::Ready)
            )
        }
        _ => false,
    };
    if !followed {
        return Ok(unscanned(
            scanner,
            shown,
            st,
            "the zip could not be read as a stream from a server without range support",
        ));
    }
    Ok(report(
        scanner,
        opts,
        shown,
        st.sparse.bytes(),
        len,
        name,
        None,
    ))
}

/// What the scanner reads of a file that can be read as a stream, from its first bytes
/// `head`: pickles and joblib dumps, torch's legacy format, tar archives, npy object arrays.
fn stream_reads(
    scanner: &Scanner,
    kind: Kind,
    head: &[u8],
) -> Option<fn(&Scanner, &[u8]) -> plan::PrefixRun> {
    match kind {
        Kind::TorchLegacy => Some(plan::legacy_prefix),
        Kind::Pickle if container::looks_torch_legacy(scanner, head) => Some(plan::legacy_prefix),
        Kind::Pickle => Some(plan::pickle_prefix),
        Kind::Tar => Some(plan::tar_prefix),
        Kind::Npy if crate::format::npy::parse_header(head).is_ok_and(|h| h.has_object) => {
            Some(plan::npy_prefix)
        }
        _ => None,
    }
}

/// True when a streamed read kept everything the scanner reads (a tar's walk assumes torch's
/// format until its end tells).
fn stream_followed(scanner: &Scanner, kind: Kind, image: &Sparse) -> bool {
    kind != Kind::Tar || plan::tar_followed(scanner, image)
}

/// Rounds of a streamed pickle read before the rest is fetched whole instead (a round per
/// large skipped part, a few more per run of opcodes).
const STREAM_ROUNDS: u32 = 256;
/// Bytes read past the known part of a streamed pickle; doubled every round that reads on
/// without a skip, up to [`STREAM_CHUNK_MAX`], and back to this after a skip (what follows a
/// skipped array is usually the next few opcodes and the next array).
const STREAM_CHUNK: u64 = 64 << 10;
const STREAM_CHUNK_MAX: u64 = 8 << 20;
/// Skipped bytes (a large payload, a joblib inline array) are left unfetched from this size on;
/// shorter ones cost less to fetch than to step over.
const SKIP_MIN: u64 = 1 << 20;
/// First bytes of a skipped part fetched anyway: its padding byte and what a report shows.
const SKIP_HEAD: u64 = 4 << 10;

/// How a streamed file is reported: the scan of `data` (its image, or the image's first bytes)
/// for a file of `size` bytes, with an `extra` finding.
type ReportImage<'a> = &'a dyn Fn(&[u8], u64, Option<Finding>) -> FileReport;

/// Scan a protocol 2+ pickle, joblib dump or legacy torch file by reading it as the scanner's
/// run goes (`reads` mirrors what the scanner reads of a prefix): each
/// round runs the scanner over the known prefix and fetches what the run needs next, leaving
/// out the bodies of large skipped parts; it stops as soon as the whole file is known or a
/// dangerous finding makes the verdict final. `None` when this does not converge (then the
/// whole file is fetched).
fn stream_pickle(
    scanner: &Scanner,
    src: &mut impl Source,
    report: ReportImage<'_>,
    reads: fn(&Scanner, &[u8]) -> plan::PrefixRun,
) -> Result<Option<FileReport>, FetchError> {
    let mut frontier = src.image().prefix();
    let mut holes: Vec<(u64, u64)> = Vec::new();
    let in_hole = |holes: &[(u64, u64)], at: u64| holes.iter().any(|&(s, e)| s <= at && at < e);
    let mut chunk = STREAM_CHUNK;
    // A round per large part the budget can pay to step over, and a few more.
    let rounds = STREAM_ROUNDS.max(u32::try_from(src.budget() / SKIP_MIN).unwrap_or(u32::MAX));
    for _ in 0..rounds {
        // Read again each round: a body of unknown length learns its size at its end.
        let size = src.image().size();
        frontier = frontier.min(size);
        let run = reads(scanner, &src.image().bytes()[..frontier as usize]);
        let stopped = match run.end {
            StreamEnd::Stopped { offset } if in_hole(&holes, offset) => return Ok(None),
            StreamEnd::Stopped { .. } => true,
            _ => false,
        };
        if frontier >= size || stopped {
            // The run reads nothing past this point: the image is what the scanner sees, once
            // its size is known.
            let size = match src.learn_length() {
                Ok(size) => size,
                Err(FetchError::Budget { .. }) => {
                    return Ok(Some(past_budget(scanner, src, report, frontier)))
                }
                Err(e) => return Err(e),
            };
            let r = report(src.image().bytes(), size, None);
            // (Offsets of findings in an archive member are the member's, not the file's.)
            if r.findings
                .iter()
                .any(|f| f.member.is_none() && f.offset.is_some_and(|o| in_hole(&holes, o)))
            {
                return Ok(None);
            }
            return Ok(Some(r));
        }
        if run.dangerous {
            // Nothing later can lower the verdict. The cut at the end of the prefix is where
            // fetching stopped, not a truncated file.
            let prefix = &src.image().bytes()[..frontier as usize];
            let shown_size = src.length().unwrap_or(frontier);
            let mut r = report(prefix, shown_size, None);
            r.findings.retain(|f| f.rule != ids::TRUNCATED);
            return Ok(Some(r));
        }
        // Everything before `known` is fetched or a hole the run steps over.
        let known = frontier;
        let mut want = Vec::new();
        let mut start = known;
        let mut until = known.saturating_add(chunk);
        if let StreamEnd::Cut { need: Some(need) } = run.end {
            if need.saturating_sub(known) > SKIP_MIN {
                // Step over the body: its first bytes now, reading resumes where it ends.
                want.push((known, known + SKIP_HEAD));
                holes.push((known + SKIP_HEAD, need.min(size)));
                chunk = STREAM_CHUNK;
                start = need.min(size);
                until = start.saturating_add(chunk);
            } else {
                until = until.max(need);
            }
        }
        until = until.min(size);
        want.push((start, until));
        frontier = until;
        match src.ensure(&want) {
            Ok(()) => {}
            Err(FetchError::Budget { .. }) => {
                return Ok(Some(past_budget(scanner, src, report, known)))
            }
            Err(e) => return Err(e),
        }
        if start == known {
            chunk = (chunk * 2).min(STREAM_CHUNK_MAX);
        }
    }
    Ok(None)
}

/// The report of a streamed pickle that runs past the budget: the scan of its first `known`
/// bytes, and a `PS919` finding.
fn past_budget(
    scanner: &Scanner,
    src: &impl Source,
    report: ReportImage<'_>,
    known: u64,
) -> FileReport {
    let f = budget_finding(
        scanner,
        src.transferred(),
        src.length(),
        src.budget(),
        "the pickle runs past the budget",
    );
    let prefix = &src.image().bytes()[..known as usize];
    let size = src.length().unwrap_or_else(|| src.transferred());
    report(prefix, size, Some(f))
}

/// Fetch more of a safetensors or GGUF file while the scanner's pickle run over it would read
/// past what is fetched (doubling each time); `true` when the whole file is needed.
fn polyglot(scanner: &Scanner, src: &mut impl Source) -> Result<bool, FetchError> {
    loop {
        match plan::polyglot_prefix(scanner, src.image()) {
            plan::Prefix::Inert => return Ok(false),
            plan::Prefix::Whole => return Ok(true),
            plan::Prefix::NeedMore => {
                let size = src.image().size();
                let have = src.image().prefix();
                if have >= size {
                    return Ok(false);
                }
                let to = have.saturating_mul(2).max(have + (64 << 10)).min(size);
                src.ensure(&[(0, to)])?;
            }
        }
    }
}

/// Fetch what the scanner reads of a safetensors, GGUF or npy file, all of it from the file's
/// start: `true` when the scanner reads the whole file. An error comes with what it stopped.
fn header_reads(
    scanner: &Scanner,
    src: &mut impl Source,
    kind: Kind,
) -> Result<bool, (FetchError, &'static str)> {
    const POLYGLOT: &str = "the file runs as a pickle past the budget";
    const GGUF: &str = "the GGUF header is larger than the budget";
    let size = src.image().size();
    match kind {
        Kind::Safetensors => polyglot(scanner, src).map_err(|e| (e, POLYGLOT)),
        Kind::Gguf => {
            // The GGUF reader runs on what is fetched; what it misses is fetched (the prefix
            // at least doubled each time) and it runs again.
            for _ in 0..32 {
                let prefix = src.image().prefix();
                match crate::format::gguf::read_header(src.image(), &mut Vec::new()) {
                    Ok(h) => {
                        src.ensure(&[(0, h.infos_end)]).map_err(|e| (e, GGUF))?;
                        return polyglot(scanner, src).map_err(|e| (e, POLYGLOT));
                    }
                    Err(crate::format::gguf::HeaderError::Missing(m)) => {
                        let to = m.end.max(prefix.saturating_mul(2)).min(size);
                        if to <= prefix {
                            break;
                        }
                        src.ensure(&[(0, to)]).map_err(|e| (e, GGUF))?;
                    }
                    Err(crate::format::gguf::HeaderError::Invalid(_)) => break,
                }
            }
            Ok(true)
        }
        Kind::Npy => {
            let prefix = &src.image().bytes()[..src.image().prefix() as usize];
            Ok(!matches!(crate::format::npy::parse_header(prefix), Ok(h) if !h.has_object))
        }
        _ => Ok(true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(is_url("https://x/y"));
        assert!(is_url("HTTP://x"));
        assert!(!is_url("hf://a/b"));
        assert!(!is_url("/tmp/x"));
        assert_eq!(url_name("https://h/a/b.pt?x=1").as_deref(), Some("b.pt"));
        assert_eq!(url_name("https://h").as_deref(), None);
    }
}
