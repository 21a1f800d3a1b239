//! SARIF 2.1.0 output, as GitHub code scanning reads it.
//!
//! One run; the tool's rules are the rule set's deny and anomaly rules (with their rationale as
//! help text); one result per finding. Pickle files have no lines, so each location names line 1
//! and carries the byte offset; an archive member is a logical location (and part of the message).

use super::FileReport;
use crate::finding::Severity;
use crate::rules::{Action, RuleSet};
use serde_json::{json, Value};
use std::collections::BTreeMap;

/// SARIF `level` for a severity.
pub fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` score for a severity.
fn security_severity(s: Severity) -> &'static str {
    match s {
        Severity::Critical => "9.8",
        Severity::High => "8.0",
        Severity::Medium => "5.0",
        Severity::Low => "3.0",
        Severity::Info => "0.0",
    }
}

/// A relative path stays relative (GitHub resolves it against the checkout); an absolute one
/// becomes a `file://` URI.
fn uri(path: &str) -> String {
    let p = path
        .strip_prefix("./")
        .unwrap_or(path)
        .replace('\\', "/")
        .replace(' ', "%20");
    if p.starts_with('/') {
        format!("file://{p}")
    } else {
        p
    }
}

/// The SARIF document for these files.
pub fn render(files: &[FileReport], rules: &RuleSet) -> String {
    let mut descriptors: Vec<Value> = Vec::new();
    let mut index: BTreeMap<String, usize> = BTreeMap::new();
    for r in rules.rules().iter().filter(|r| r.action != Action::Allow) {
        if index.contains_key(&r.id) {
            continue;
        }
        index.insert(r.id.clone(), descriptors.len());
        let mut help = r.rationale.clone();
        if !r.references.is_empty() {
            help.push_str("\n\nReferences:\n");
            for link in &r.references {
                help.push_str(&format!("- {link}\n"));
            }
        }
        descriptors.push(json!({
            "id": r.id,
            "name": r.name,
            "shortDescription": {"text": r.name.replace('-', " ")},
            "fullDescription": {"text": r.rationale},
            "help": {"text": help},
            "defaultConfiguration": {"level": level(r.severity)},
            "properties": {"security-severity": security_severity(r.severity), "tags": ["security"]}
        }));
    }
    let mut results = Vec::new();
    let mut artifacts = Vec::new();
    for f in files {
        let mut artifact = json!({"location": {"uri": uri(&f.path)}, "length": f.size});
        if let Some(h) = &f.sha256 {
            artifact["hashes"] = json!({"sha-256": h});
        }
        let artifact_index = artifacts.len();
        artifacts.push(artifact);
        if let Some(e) = &f.error {
            results.push(json!({
                "ruleId": crate::rules::ids::IO_ERROR,
                "level": "warning",
                "message": {"text": format!("could not be scanned: {e}")},
                "locations": [{"physicalLocation": {
                    "artifactLocation": {"uri": uri(&f.path), "index": artifact_index},
                    "region": {"startLine": 1}
                }}]
            }));
        }
        for x in &f.findings {
            let mut text = x.message.clone();
            if let Some(c) = &x.call {
                text.push_str(&format!(": {c}"));
            }
            if let Some(m) = &x.member {
                text.push_str(&format!(" (in archive member {m})"));
            }
            let mut region = json!({"startLine": 1});
            if let Some(o) = x.offset {
                region["byteOffset"] = json!(o);
            }
            let mut location = json!({"physicalLocation": {
                "artifactLocation": {"uri": uri(&f.path), "index": artifact_index},
                "region": region
            }});
            if let Some(m) = &x.member {
                location["logicalLocations"] = json!([{"fullyQualifiedName": m, "kind": "member"}]);
            }
            let mut result = json!({
                "ruleId": x.rule,
                "level": level(x.severity),
                "message": {"text": text},
                "locations": [location],
                "partialFingerprints": {
                    "findingHash/v1": format!("{}:{}:{}:{}", x.rule, x.global.as_deref().unwrap_or(""),
                        x.member.as_deref().unwrap_or(""), x.offset.unwrap_or(0))
                },
                "properties": {"usage": x.usage.as_str(), "severity": x.severity.as_str()}
            });
            if let Some(&i) = index.get(&x.rule) {
                result["ruleIndex"] = json!(i);
            }
            if let Some(g) = &x.global {
                result["properties"]["global"] = json!(g);
            }
            results.push(result);
        }
    }
    let doc = json!({
        "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": "picklescan-rs",
                "version": env!("CARGO_PKG_VERSION"),
                "informationUri": "https://github.com/picklescan-rs/picklescan-rs",
                "rules": descriptors
            }},
            "artifacts": artifacts,
            "results": results,
            "columnKind": "unicodeCodePoints"
        }]
    });
    serde_json::to_string_pretty(&doc).expect("JSON values always serialize")
}
