//! Prometheus metrics (text exposition format 0.0.4), kept in atomics.

use crate::finding::Verdict;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histogram buckets.
const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A cumulative histogram of durations.
#[derive(Debug)]
pub struct Histogram {
    counts: Vec<AtomicU64>,
    sum_micros: AtomicU64,
    count: AtomicU64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram {
            counts: BUCKETS.iter().map(|_| AtomicU64::new(0)).collect(),
            sum_micros: AtomicU64::new(0),
            count: AtomicU64::new(0),
        }
    }
}

impl Histogram {
    /// Record one duration.
    pub fn observe(&self, d: Duration) {
        let s = d.as_secs_f64();
        for (b, c) in BUCKETS.iter().zip(&self.counts) {
            if s <= *b {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros
            .fetch_add(d.as_micros() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (b, c) in BUCKETS.iter().zip(&self.counts) {
            let _ = writeln!(
                out,
                "{name}_bucket{{le=\"{b}\"}} {}",
                c.load(Ordering::Relaxed)
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let _ = writeln!(
            out,
            "{name}_sum {}",
            self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
        );
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Every metric the server exports.
#[derive(Debug, Default)]
pub struct Metrics {
    scans: [AtomicU64; 3],
    /// Bytes of every scanned upload.
    pub bytes_scanned: AtomicU64,
    /// Bytes received in upload bodies (scanned or not).
    pub bytes_received: AtomicU64,
    /// Scans running now (holding a scan slot).
    pub in_flight: AtomicI64,
    /// Requests waiting for a scan slot.
    pub queued: AtomicI64,
    /// Time spent scanning (temp file to report, excluding the upload).
    pub scan_seconds: Histogram,
    /// Whole request time of answered scans (upload, queue, scan, audit).
    pub request_seconds: Histogram,
    /// Requests answered with an error status, by status.
    rejected: Mutex<BTreeMap<u16, u64>>,
}

fn verdict_index(v: Verdict) -> usize {
    match v {
        Verdict::Clean => 0,
        Verdict::Suspicious => 1,
        Verdict::Dangerous => 2,
    }
}

impl Metrics {
    /// Count one finished scan.
    pub fn scanned(&self, verdict: Verdict, bytes: u64, took: Duration) {
        self.scans[verdict_index(verdict)].fetch_add(1, Ordering::Relaxed);
        self.bytes_scanned.fetch_add(bytes, Ordering::Relaxed);
        self.scan_seconds.observe(took);
    }

    /// Scans finished with this verdict so far.
    pub fn scans(&self, verdict: Verdict) -> u64 {
        self.scans[verdict_index(verdict)].load(Ordering::Relaxed)
    }

    /// Count one request answered with an error status.
    pub fn rejected(&self, status: u16) {
        if let Ok(mut m) = self.rejected.lock() {
            *m.entry(status).or_default() += 1;
        }
    }

    /// The text exposition; `fingerprint` labels the rules-info gauge.
    pub fn render(&self, fingerprint: &str, policy: &str) -> String {
        let mut out = String::new();
        out.push_str("# HELP picklescan_scans_total Uploads scanned, by verdict.\n");
        out.push_str("# TYPE picklescan_scans_total counter\n");
        for v in [Verdict::Clean, Verdict::Suspicious, Verdict::Dangerous] {
            let _ = writeln!(
                out,
                "picklescan_scans_total{{verdict=\"{}\"}} {}",
                v.as_str(),
                self.scans(v)
            );
        }
        let gauge = |out: &mut String, name: &str, kind: &str, help: &str, v: i64| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {v}");
        };
        gauge(
            &mut out,
            "picklescan_scanned_bytes_total",
            "counter",
            "Bytes of scanned uploads.",
            self.bytes_scanned.load(Ordering::Relaxed) as i64,
        );
        gauge(
            &mut out,
            "picklescan_received_bytes_total",
            "counter",
            "Bytes received in upload bodies, scanned or not.",
            self.bytes_received.load(Ordering::Relaxed) as i64,
        );
        gauge(
            &mut out,
            "picklescan_scans_in_flight",
            "gauge",
            "Scans running now.",
            self.in_flight.load(Ordering::Relaxed),
        );
        gauge(
            &mut out,
            "picklescan_scans_queued",
            "gauge",
            "Requests waiting for a scan slot.",
            self.queued.load(Ordering::Relaxed),
        );
        out.push_str("# HELP picklescan_rejected_total Requests answered with an error status.\n");
        out.push_str("# TYPE picklescan_rejected_total counter\n");
        if let Ok(m) = self.rejected.lock() {
            for (status, n) in m.iter() {
                let _ = writeln!(out, "picklescan_rejected_total{{status=\"{status}\"}} {n}");
            }
        }
        self.scan_seconds.render(
            &mut out,
            "picklescan_scan_duration_seconds",
            "Time to scan one upload once received.",
        );
        self.request_seconds.render(
            &mut out,
            "picklescan_request_duration_seconds",
            "Time to answer one scan request, upload included.",
        );
        out.push_str("# HELP picklescan_rules_info The rule set and policy in force.\n");
        out.push_str("# TYPE picklescan_rules_info gauge\n");
        let _ = writeln!(
            out,
            "picklescan_rules_info{{fingerprint=\"{fingerprint}\",policy=\"{policy}\",version=\"{}\"}} 1",
            env!("CARGO_PKG_VERSION")
        );
        out
    }
}
