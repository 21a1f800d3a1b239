//! Every file in corpus/ against the verdict, globals and calls its manifest expects.
//! The fixtures were produced by corpus/gen/*.py with the real libraries; no Python runs here.

use picklescan_rs::internals::file::{scan_path, FileOptions};
use picklescan_rs::{Scanner, Verdict};
use serde::Deserialize;
use std::path::Path;

#[derive(Deserialize)]
struct Manifest {
    files: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    path: String,
    verdict: Verdict,
    #[serde(default)]
    globals: Vec<String>,
    #[serde(default)]
    calls: Vec<String>,
    #[serde(default)]
    container: String,
}

/// Scan every entry of one manifest; return one line per mismatch.
fn check_manifest(dir: &Path) -> (usize, Vec<String>) {
    let text = std::fs::read_to_string(dir.join("manifest.json")).unwrap();
    let manifest: Manifest = serde_json::from_str(&text).unwrap();
    let scanner = Scanner::default();
    let mut failures = Vec::new();
    for e in &manifest.files {
        let path = dir.join(&e.path);
        let report = scan_path(&scanner, &path, &FileOptions::default());
        let found: Vec<&str> = report
            .findings
            .iter()
            .filter_map(|f| f.global.as_deref())
            .collect();
        let calls: Vec<&str> = report
            .findings
            .iter()
            .filter_map(|f| f.call.as_deref())
            .collect();
        let mut problems = Vec::new();
        if report.verdict != e.verdict {
            problems.push(format!(
                "verdict {} (expected {})",
                report.verdict, e.verdict
            ));
        }
        for g in &e.globals {
            if !found.contains(&g.as_str()) {
                problems.push(format!("global {g} not reported"));
            }
        }
        for c in &e.calls {
            if !calls.iter().any(|x| x.contains(c.as_str())) {
                problems.push(format!("call {c:?} not rendered"));
            }
        }
        if !problems.is_empty() {
            let rules: Vec<&str> = report.findings.iter().map(|f| f.rule.as_str()).collect();
            failures.push(format!(
                "{} [{}]: {} — rules {:?}",
                e.path,
                e.container,
                problems.join("; "),
                rules
            ));
        }
    }
    (manifest.files.len(), failures)
}

#[test]
fn corpus_matches_its_manifest() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let (n, failures) = check_manifest(&dir);
    assert!(n > 100, "only {n} corpus entries");
    assert!(
        failures.is_empty(),
        "{} of {n} corpus files differ from the manifest:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// What the ML libraries' normal save paths write is clean, a repository's other files are not
/// models, and attacks on the allowlists and on TorchScript are caught (corpus/gen/ecosystem.py).
#[test]
fn ecosystem_matches_its_manifest() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/ecosystem");
    let (n, failures) = check_manifest(&dir);
    assert!(n > 300, "only {n} ecosystem entries");
    assert!(
        failures.is_empty(),
        "{} of {n} ecosystem files differ from the manifest:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
