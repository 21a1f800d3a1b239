//! Quantization throughput on ~100M f32 values (run with `cargo bench --bench quant`).
//!
//! Options (after `--`): `--n N` values (default 100_663_296 = 24576 rows of 4096),
//! `--runs R` (default 5), `--types q8_0,q4_0`, `--threads 1,2`, `--dump PATH` (write the input
//! as raw little-endian f32 for benches/quant_py.py and exit), `--reuse` (encode into one output
//! buffer allocated before timing, with `quantize_into`, instead of a new `quantize` result).
//! Prints the median wall time and throughput (GB/s of f32 input) per type and thread count,
//! the median CPU time (steadier when other processes compete for the cores), and the SHA-256
//! of the output so it can be compared with gguf-py's.

use std::time::Instant;

use picklescan_rs::quant::{quantize, quantize_into, GgmlType};
use rayon::prelude::*;
use sha2::{Digest, Sha256};

const ROW: usize = 4096;

fn data(n: usize) -> Vec<f32> {
    // Deterministic N(0,1) values (xorshift64 + Box-Muller), generated in parallel.
    let mut v = vec![0f32; n];
    v.par_chunks_mut(1 << 16).enumerate().for_each(|(c, out)| {
        let mut s = 0x9e37_79b9_7f4a_7c15u64 ^ (c as u64).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let mut next = || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 11) as f64 + 0.5) / (1u64 << 53) as f64
        };
        for o in out.iter_mut() {
            let (u, w) = (next(), next());
            *o = ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * w).cos()) as f32;
        }
    });
    v
}

/// CPU time (user + system) of this process in seconds, from /proc/self/stat (Linux; 0 elsewhere).
/// Under contention from other processes, throughput per CPU-second is the steadier figure.
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &stat[stat.rfind(')').map_or(0, |i| i + 2)..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (ticks(11) + ticks(12)) / 100.0
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let get = |flag: &str| {
        args.iter()
            .position(|a| a == flag)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    let n: usize = get("--n").map_or(24576 * ROW, |s| s.parse().unwrap());
    let runs: usize = get("--runs").map_or(5, |s| s.parse().unwrap());
    let types: Vec<GgmlType> = get("--types")
        .unwrap_or_else(|| "q8_0,q4_0".into())
        .split(',')
        .map(|t| t.parse().unwrap())
        .collect();
    let threads: Vec<usize> = get("--threads")
        .unwrap_or_else(|| "1,2".into())
        .split(',')
        .map(|t| t.parse().unwrap())
        .collect();
    let reuse = args.iter().any(|a| a == "--reuse");
    assert_eq!(n % ROW, 0, "--n must be a multiple of {ROW}");

    let x = data(n);
    if let Some(path) = get("--dump") {
        let bytes: Vec<u8> = x.iter().flat_map(|v| v.to_le_bytes()).collect();
        std::fs::write(&path, bytes).unwrap();
        println!("wrote {n} f32 values to {path}");
        return;
    }
    let gb = (n * 4) as f64 / 1e9;
    let mode = if reuse {
        "quantize_into, output buffer reused"
    } else {
        "quantize, new output"
    };
    println!("{n} values ({gb:.3} GB of f32), rows of {ROW}, {runs} runs, median; {mode}");
    for &ty in &types {
        for &t in &threads {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(t)
                .build()
                .unwrap();
            let mut times = Vec::new();
            let mut cpu = Vec::new();
            let mut digest = String::new();
            let mut buf = vec![
                1u8;
                if reuse {
                    ty.nbytes(&[n / ROW, ROW]).unwrap()
                } else {
                    0
                }
            ];
            for _ in 0..runs {
                let c0 = cpu_seconds();
                let start = Instant::now();
                let fresh;
                let out = if reuse {
                    pool.install(|| quantize_into(ty, &x, ROW, &mut buf).unwrap());
                    &buf
                } else {
                    fresh = pool.install(|| quantize(ty, &x, ROW).unwrap());
                    &fresh
                };
                times.push(start.elapsed().as_secs_f64());
                cpu.push(cpu_seconds() - c0);
                if digest.is_empty() {
                    digest = Sha256::digest(out)
                        .iter()
                        .map(|b| format!("{b:02x}"))
                        .collect();
                }
            }
            times.sort_by(f64::total_cmp);
            cpu.sort_by(f64::total_cmp);
            let med = times[times.len() / 2];
            let cpu_med = cpu[cpu.len() / 2];
            println!(
                "{ty:5} threads={t}: median {med:.3} s  {:.2} GB/s  (min {:.3} s, max {:.3} s)  cpu {cpu_med:.2} s = {:.2} GB/cpu-s  sha256 {}",
                gb / med,
                times[0],
                times[times.len() - 1],
                gb / cpu_med.max(1e-9),
                &digest[..16]
            );
        }
    }
}
