//! Every published scanner bypass in `corpus/bypass/manifest.json` must be caught: the verdict at
//! least the expected one (a dangerous fixture must be dangerous, a suspicious one must not be
//! clean), every listed global reported, every listed call substring rendered.
//!
//! All failures are collected and printed as one table before the test fails. With
//! `BYPASS_RESULTS=FILE` the per-fixture results are also written as JSON, which
//! `corpus/gen/bypass.py --results FILE` turns into the "our verdict" column of
//! docs/bypass-catalogue.md.

use picklescan_rs::internals::file::{scan_path, FileOptions};
use picklescan_rs::{Scanner, Verdict};
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus")
}

fn verdict_of(s: &str) -> Verdict {
    match s {
        "dangerous" => Verdict::Dangerous,
        "suspicious" => Verdict::Suspicious,
        "clean" => Verdict::Clean,
        other => panic!("manifest: unknown verdict {other:?}"),
    }
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn every_published_bypass_is_caught() {
    let manifest_path = corpus().join("bypass").join("manifest.json");
    let text = std::fs::read_to_string(&manifest_path).expect("read corpus/bypass/manifest.json");
    let manifest: Value = serde_json::from_str(&text).expect("manifest is JSON");
    assert_eq!(manifest["version"], 1, "manifest version");
    let files = manifest["files"].as_array().expect("files array");
    assert!(!files.is_empty(), "empty manifest");

    let scanner = Scanner::default();
    let opts = FileOptions { hash: false };
    let mut failures: Vec<(String, String, String, String)> = Vec::new();
    let mut results = Vec::new();

    for entry in files {
        let rel = entry["path"].as_str().expect("path");
        let expected = verdict_of(entry["verdict"].as_str().expect("verdict"));
        let path = corpus().join(rel);
        assert!(path.exists(), "missing fixture {}", path.display());
        let report = scan_path(&scanner, &path, &opts);

        let mut problems = Vec::new();
        if report.verdict < expected {
            problems.push(format!("verdict {} < {}", report.verdict, expected));
        }
        let globals: Vec<&str> = report
            .findings
            .iter()
            .filter_map(|f| f.global.as_deref())
            .collect();
        for g in strings(entry, "globals") {
            if !globals.contains(&g.as_str()) {
                problems.push(format!("global {g} not reported"));
            }
        }
        for c in strings(entry, "calls") {
            let found = report
                .findings
                .iter()
                .filter_map(|f| f.call.as_deref())
                .any(|call| call.contains(&c));
            if !found {
                problems.push(format!("call {c:?} not rendered"));
            }
        }
        let seen = {
            let mut g: Vec<&str> = globals.clone();
            g.sort_unstable();
            g.dedup();
            g.join(", ")
        };
        // Rules behind the verdict: those of the findings as serious as the verdict.
        let mut rules: Vec<&str> = report
            .findings
            .iter()
            .filter(|f| f.severity.verdict() == report.verdict && report.verdict != Verdict::Clean)
            .map(|f| f.rule.as_str())
            .collect();
        rules.sort_unstable();
        rules.dedup();
        results.push(json!({
            "rules": rules,
            "path": rel,
            "expected": entry["verdict"],
            "verdict": report.verdict.as_str(),
            "format": report.format,
            "ok": problems.is_empty(),
            "problems": problems,
            "globals": seen,
        }));
        if !problems.is_empty() {
            failures.push((
                rel.trim_start_matches("bypass/").to_string(),
                format!("{} / {}", expected, report.verdict),
                problems.join("; "),
                seen,
            ));
        }
    }

    if let Ok(out) = std::env::var("BYPASS_RESULTS") {
        std::fs::write(&out, serde_json::to_string_pretty(&results).unwrap())
            .expect("write BYPASS_RESULTS");
    }

    if !failures.is_empty() {
        let mut table = format!(
            "\n{} of {} bypass fixtures not caught\n\n| fixture | expected / got | problems | globals reported |\n|---|---|---|---|\n",
            failures.len(),
            files.len()
        );
        for (f, v, p, g) in &failures {
            table.push_str(&format!("| {f} | {v} | {p} | {g} |\n"));
        }
        panic!("{table}");
    }
}

#[test]
fn manifest_entries_are_well_formed() {
    let text =
        std::fs::read_to_string(corpus().join("bypass").join("manifest.json")).expect("manifest");
    let manifest: Value = serde_json::from_str(&text).unwrap();
    for entry in manifest["files"].as_array().unwrap() {
        let path = entry["path"].as_str().unwrap();
        assert!(path.starts_with("bypass/"), "{path}");
        let v = entry["verdict"].as_str().unwrap();
        assert!(
            v == "dangerous" || v == "suspicious",
            "{path}: a bypass is never expected clean"
        );
        for key in ["globals", "calls", "advisories"] {
            assert!(entry[key].is_array(), "{path}: {key}");
        }
        for key in ["container", "technique", "source", "generator"] {
            assert!(entry[key].is_string(), "{path}: {key}");
        }
    }
}
