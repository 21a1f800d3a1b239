//! In-process throughput of scanning many small files (no process start-up, rules loaded once):
//!     cargo bench --bench scan_many -- DIR [ROUNDS]
//! Prints the median files/s over the rounds, single-threaded and with rayon, and the rate of
//! only reading the files (opening and reading each as the scan does, nothing scanned).
//!     cargo bench --bench scan_many -- --memory FILE
//! Scans one file and prints the process's peak and current resident memory, split into private
//! (anonymous) memory and mapped file pages (Linux `/proc/self/status`).

use picklescan_rs::internals::file::{scan_path, FileOptions};
use picklescan_rs::Scanner;
use rayon::prelude::*;
use std::time::Instant;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn memory(path: &str) {
    let scanner = Scanner::default();
    let input =
        picklescan_rs::internals::mmap::Input::open(std::path::Path::new(path)).expect("readable");
    let t = Instant::now();
    let r = picklescan_rs::internals::file::scan_bytes(&scanner, &input, path.to_string());
    let took = t.elapsed();
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |k: &str| {
        status
            .lines()
            .find(|l| l.starts_with(k))
            .map(|l| l[k.len()..].trim().to_string())
            .unwrap_or_default()
    };
    println!(
        "{path}: {} ({}) in {:.1} ms; VmHWM {}, RssAnon {}, RssFile {}",
        r.verdict,
        r.format,
        took.as_secs_f64() * 1e3,
        field("VmHWM:"),
        field("RssAnon:"),
        field("RssFile:")
    );
}

fn main() {
    let raw: Vec<String> = std::env::args().collect();
    if let Some(i) = raw.iter().position(|a| a == "--memory") {
        if let Some(p) = raw.get(i + 1) {
            memory(p);
        }
        return;
    }
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let Some(dir) = args.first() else {
        eprintln!("usage: scan_many DIR [ROUNDS]");
        return;
    };
    let rounds: usize = args.get(1).and_then(|r| r.parse().ok()).unwrap_or(15);
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("readable folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    let scanner = Scanner::default();
    let opts = FileOptions { hash: false };
    let mut single = Vec::new();
    let mut parallel = Vec::new();
    let mut read_only = Vec::new();
    let mut flagged = 0;
    for _ in 0..rounds {
        let t = Instant::now();
        flagged = paths
            .iter()
            .map(|p| scan_path(&scanner, p, &opts))
            .filter(|r| r.verdict != picklescan_rs::Verdict::Clean)
            .count();
        single.push(paths.len() as f64 / t.elapsed().as_secs_f64());
        let t = Instant::now();
        let n = paths
            .par_iter()
            .map(|p| scan_path(&scanner, p, &opts))
            .count();
        parallel.push(n as f64 / t.elapsed().as_secs_f64());
        // The floor: the same reads of every file (open, size, read, close), nothing scanned.
        let t = Instant::now();
        let n = paths
            .par_iter()
            .filter(|p| picklescan_rs::internals::mmap::Input::open(p).is_ok())
            .count();
        read_only.push(n as f64 / t.elapsed().as_secs_f64());
    }
    println!(
        "{} files ({} not clean), median over {rounds} rounds: {:.0} files/s single-threaded, {:.0} files/s with rayon ({} threads); reading them only, with rayon: {:.0} files/s",
        paths.len(),
        flagged,
        median(single),
        median(parallel),
        rayon::current_num_threads(),
        median(read_only)
    );
}
