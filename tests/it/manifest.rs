//! Shared corpus checks: load `corpus/manifest.json` (and other manifests of the same format) and
//! check a scan against an entry: verdict, format and the globals that must be reported.
#![allow(dead_code)]

use picklescan_rs::internals::file::scan_path;
use picklescan_rs::internals::file::FileOptions;
use picklescan_rs::report::FileReport;
use picklescan_rs::{Scanner, Verdict};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// One manifest entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path relative to the manifest's folder.
    pub path: String,
    /// Expected verdict.
    pub verdict: Verdict,
    /// Globals that must be reported.
    pub globals: Vec<String>,
    /// Substrings the rendered calls must contain.
    pub calls: Vec<String>,
    /// Expected container format.
    pub container: String,
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Entries of one manifest file; paths are made absolute (relative to the manifest's folder or
/// the corpus root). Missing manifest ⇒ empty list.
pub fn load(manifest: &Path) -> Vec<(PathBuf, Entry)> {
    let Ok(text) = std::fs::read_to_string(manifest) else {
        return Vec::new();
    };
    let doc: Value = serde_json::from_str(&text).expect("manifest is JSON");
    let dir = manifest.parent().expect("manifest folder");
    let files = doc
        .get("files")
        .and_then(Value::as_array)
        .expect("manifest has files");
    files
        .iter()
        .map(|f| {
            let s = |k: &str| f.get(k).and_then(Value::as_str).unwrap_or("").to_string();
            let list = |k: &str| -> Vec<String> {
                f.get(k)
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|x| x.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let verdict = match s("verdict").as_str() {
                "clean" => Verdict::Clean,
                "suspicious" => Verdict::Suspicious,
                "dangerous" => Verdict::Dangerous,
                v => panic!("unknown verdict {v}"),
            };
            let e = Entry {
                path: s("path"),
                verdict,
                globals: list("globals"),
                calls: list("calls"),
                container: s("container"),
            };
            // Paths are relative to the manifest's folder, or to the corpus root above it.
            let here = dir.join(&e.path);
            let file = match dir.parent() {
                Some(up) if !here.exists() && up.join(&e.path).exists() => up.join(&e.path),
                _ => here,
            };
            (file, e)
        })
        .collect()
}

/// Every manifest of the corpus: `corpus/manifest.json` and `corpus/*/manifest.json`.
pub fn all() -> Vec<(PathBuf, Entry)> {
    let corpus = root().join("corpus");
    let mut out = load(&corpus.join("manifest.json"));
    if let Ok(dirs) = std::fs::read_dir(&corpus) {
        let mut extra: Vec<PathBuf> = dirs
            .filter_map(|d| d.ok())
            .map(|d| d.path().join("manifest.json"))
            .filter(|p| p.is_file())
            .collect();
        extra.sort();
        for m in extra {
            out.extend(load(&m));
        }
    }
    out
}

/// Formats the manifest's `other` stands for: content that cannot be scanned or is unknown.
pub const OTHER_FORMATS: &[&str] = &[
    "7z",
    "rar",
    "zstd",
    "hdf5",
    "cab",
    "arj",
    "torch-preview",
    "empty",
    "unknown",
];

/// True when the built-in rule set is populated (with an empty one every global is unknown and
/// only the weaker checks of [`check`] apply).
pub fn rules_loaded(scanner: &Scanner) -> bool {
    !scanner.rules.rules().is_empty()
}

/// Check one scan against its entry. With a populated rule set the verdict must match exactly;
/// without one, a dangerous or suspicious entry must be at least suspicious, and a clean entry
/// may only have findings about globals (no anomaly of the content).
pub fn check(scanner: &Scanner, file: &Path, e: &Entry) -> Result<FileReport, String> {
    let report = scan_path(scanner, file, &FileOptions { hash: false });
    let mut problems = Vec::new();
    if report.error.is_some() {
        problems.push(format!("read error {:?}", report.error));
    }
    let format_ok = if e.container == "other" {
        OTHER_FORMATS.contains(&report.format.to_string().as_str())
    } else {
        report.format.to_string() == e.container
    };
    if !format_ok {
        problems.push(format!(
            "format {} (expected {})",
            report.format, e.container
        ));
    }
    if rules_loaded(scanner) {
        if report.verdict != e.verdict {
            problems.push(format!(
                "verdict {} (expected {})",
                report.verdict, e.verdict
            ));
        }
    } else if e.verdict == Verdict::Clean {
        let anomalies: Vec<_> = report
            .findings
            .iter()
            .filter(|f| f.global.is_none() && f.severity > picklescan_rs::Severity::Info)
            .map(|f| format!("{} {}", f.rule, f.message))
            .collect();
        if !anomalies.is_empty() {
            problems.push(format!("clean file has anomalies: {anomalies:?}"));
        }
    } else if report.verdict == Verdict::Clean {
        problems.push(format!("verdict clean (expected {})", e.verdict));
    }
    for g in &e.globals {
        if !report
            .findings
            .iter()
            .any(|f| f.global.as_deref() == Some(g.as_str()))
        {
            problems.push(format!("global {g} not reported"));
        }
    }
    for c in &e.calls {
        if !report
            .findings
            .iter()
            .any(|f| f.call.as_deref().is_some_and(|x| x.contains(c.as_str())))
        {
            problems.push(format!("call {c} not rendered"));
        }
    }
    if problems.is_empty() {
        Ok(report)
    } else {
        Err(format!("{}: {}", e.path, problems.join("; ")))
    }
}
