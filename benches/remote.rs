//! Remote scanning benchmark: a ~1.5 GB torch.save'd file and a hub-like repository of 10
//! files, served from disk by the range-capable test server on 127.0.0.1, with and without a
//! simulated round-trip delay. Figures go to benches/REMOTE.md.
//!
//! ```text
//! /work/pyenv/bin/python benches/remote_gen.py /tmp/remote-bench
//! REMOTE_BENCH_DIR=/tmp/remote-bench cargo bench --bench remote
//! ```

#[path = "../tests/it/server.rs"]
mod server;

use picklescan_rs::engine::Engine;
use picklescan_rs::policy::{Mode, Policy};
use picklescan_rs::remote::http::Client;
use picklescan_rs::remote::hub::HubRef;
use picklescan_rs::remote::{self, RemoteOptions};
use picklescan_rs::report::FileReport;
use picklescan_rs::rules::RuleSet;
use picklescan_rs::{Limits, Scanner};
use server::{Data, Req, Resp, Server};
use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RUNS: usize = 7;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// Serve `dir`'s files under `/f/NAME`, and a hub API for the `repo/` folder; every answer
/// waits `delay` milliseconds first (a simulated round trip).
fn serve(dir: &Path, delay: Arc<AtomicU64>) -> Server {
    let mut files: HashMap<String, Data> = HashMap::new();
    let mut repo: Vec<String> = Vec::new();
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        if e.path().is_file() {
            files.insert(e.file_name().to_string_lossy().into(), Data::file(e.path()));
        }
    }
    for e in std::fs::read_dir(dir.join("repo")).unwrap().flatten() {
        let n: String = e.file_name().to_string_lossy().into();
        files.insert(format!("repo/{n}"), Data::file(e.path()));
        repo.push(n);
    }
    repo.sort();
    let sha = "0123456789abcdef0123456789abcdef01234567";
    Server::start(move |req: &Req| {
        let d = delay.load(Ordering::Relaxed);
        if d > 0 {
            std::thread::sleep(Duration::from_millis(d));
        }
        if req.path == "/api/models/org/repo/revision/main" {
            let siblings: Vec<_> = repo
                .iter()
                .map(|n| serde_json::json!({ "rfilename": n }))
                .collect();
            return Resp::json(&serde_json::json!({ "sha": sha, "siblings": siblings }));
        }
        if let Some(n) = req.path.strip_prefix(&format!("/org/repo/resolve/{sha}/")) {
            return match files.get(&format!("repo/{n}")) {
                Some(d) => Resp::file(req, d, true),
                None => Resp::status(404),
            };
        }
        match req.path.strip_prefix("/f/").and_then(|n| files.get(n)) {
            Some(d) => Resp::file(req, d, true),
            None => Resp::status(404),
        }
    })
}

/// Scan `url` RUNS times: the median time, and the last report and cost.
fn time_scan(
    engine: &Engine,
    srv: &Server,
    url: &str,
    o: &RemoteOptions,
) -> (f64, FileReport, remote::Cost) {
    let client = Client::new(o.http.clone());
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..RUNS {
        srv.stats.reset();
        let t = Instant::now();
        let (r, cost) = remote::scan_url_with_cost(engine, &client, url, o);
        times.push(t.elapsed().as_secs_f64());
        assert!(r.error.is_none(), "{:?}", r.error);
        assert_eq!(cost.requests, srv.stats.requests());
        last = Some((r, cost));
    }
    let (r, cost) = last.expect("at least one run");
    (median(times), r, cost)
}

fn main() {
    let dir = PathBuf::from(
        std::env::var("REMOTE_BENCH_DIR").unwrap_or_else(|_| "/tmp/remote-bench".into()),
    );
    if !dir.join("model.pth").exists() {
        eprintln!(
            "no {}: run `python benches/remote_gen.py {}` first",
            dir.join("model.pth").display(),
            dir.display()
        );
        return;
    }
    let engine = Engine::new(
        Scanner::new(RuleSet::builtin(), Limits::default()),
        Policy::new(Mode::Default),
    );
    let scanner = &engine.scanner;
    let delay = Arc::new(AtomicU64::new(0));
    let srv = serve(&dir, delay.clone());
    let size = std::fs::metadata(dir.join("model.pth")).unwrap().len();
    let url = format!("{}/f/model.pth", srv.base());

    println!("## Single file: model.pth ({size} bytes)\n");
    println!("| simulated RTT | variant | median time | requests | round trips | bytes transferred | verdict |");
    println!("|---|---|---|---|---|---|---|");
    for rtt in [0u64, 25] {
        delay.store(rtt, Ordering::Relaxed);
        for (variant, storage_headers) in [("default", false), ("+ storage local headers", true)] {
            let o = RemoteOptions {
                fetch_storage_headers: storage_headers,
                ..RemoteOptions::default()
            };
            let (time, r, cost) = time_scan(&engine, &srv, &url, &o);
            println!(
                "| {rtt} ms | {variant} | {:.1} ms | {} | {} | {} | {} |",
                time * 1e3,
                cost.requests,
                cost.rounds,
                r.transferred.unwrap(),
                r.verdict.as_str()
            );
        }
    }
    // Baseline: download everything, then scan (what whole-file peers do).
    delay.store(0, Ordering::Relaxed);
    let mut times = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let resp = ureq::get(&url).call().unwrap();
        let mut body = Vec::with_capacity(size as usize);
        resp.into_body()
            .into_with_config()
            .limit(u64::MAX)
            .reader()
            .read_to_end(&mut body)
            .unwrap();
        let r = picklescan_rs::internals::file::scan_bytes(scanner, &body, "model.pth".into());
        assert!(r.error.is_none());
        times.push(t.elapsed().as_secs_f64());
    }
    println!(
        "| 0 ms | full download, then scan | {:.1} ms | 1 | 1 | {size} | |",
        median(times) * 1e3
    );

    println!("\n## Streamed pickles: 64 arrays of 16 MiB\n");
    println!("| file | size | simulated RTT | median time | requests | round trips | bytes transferred | verdict |");
    println!("|---|---|---|---|---|---|---|---|");
    for name in ["raw.pkl", "model.joblib"] {
        let Ok(meta) = std::fs::metadata(dir.join(name)) else {
            println!("| {name} | missing: rerun benches/remote_gen.py | | | | | | |");
            continue;
        };
        let url = format!("{}/f/{name}", srv.base());
        for rtt in [0u64, 25] {
            delay.store(rtt, Ordering::Relaxed);
            let o = RemoteOptions::default();
            let (time, r, cost) = time_scan(&engine, &srv, &url, &o);
            println!(
                "| {name} | {} | {rtt} ms | {:.1} ms | {} | {} | {} | {} |",
                meta.len(),
                time * 1e3,
                cost.requests,
                cost.rounds,
                r.transferred.unwrap(),
                r.verdict.as_str()
            );
        }
    }
    delay.store(0, Ordering::Relaxed);

    let total: u64 = std::fs::read_dir(dir.join("repo"))
        .unwrap()
        .flatten()
        .map(|e| e.metadata().unwrap().len())
        .sum();
    println!("\n## Hub-like repository: 10 files, {total} bytes\n");
    println!(
        "| simulated RTT | files at once | median time | requests | bytes transferred | verdicts |"
    );
    println!("|---|---|---|---|---|---|");
    let repo: HubRef = "org/repo".parse().unwrap();
    for rtt in [0u64, 25] {
        delay.store(rtt, Ordering::Relaxed);
        for files_parallel in [1usize, 8] {
            let o = RemoteOptions {
                files_parallel,
                endpoint: srv.base(),
                ..RemoteOptions::default()
            };
            let client = Client::new(o.http.clone());
            let mut times = Vec::new();
            let mut last = None;
            for _ in 0..RUNS {
                srv.stats.reset();
                let t = Instant::now();
                let reports = remote::scan_hub(&engine, &client, &repo, &o);
                times.push(t.elapsed().as_secs_f64());
                assert_eq!(reports.len(), 10);
                last = Some(reports);
            }
            let reports = last.unwrap();
            let bytes: u64 = reports.iter().map(|r| r.transferred.unwrap_or(0)).sum();
            let mut verdicts: HashMap<&str, usize> = HashMap::new();
            for r in &reports {
                *verdicts.entry(r.verdict.as_str()).or_default() += 1;
            }
            let mut v: Vec<_> = verdicts.into_iter().collect();
            v.sort();
            println!(
                "| {rtt} ms | {files_parallel} | {:.1} ms | {} | {bytes} | {v:?} |",
                median(times) * 1e3,
                srv.stats.requests(),
            );
        }
    }
}
