//! Findings, severities and verdicts: the vocabulary every scanner part reports in.
//!
//! A finding is one thing a loader would do (import, call, set state, …) or one thing wrong with
//! the file (malformed stream, exceeded budget, odd container). Its severity decides what it
//! contributes to the verdict; the verdict of a file is the worst contribution of its findings.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How serious a finding is. The order matters: later variants are more serious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Informational; does not change a clean verdict.
    Info,
    /// Unusual but not known to be harmful; makes the file suspicious.
    Low,
    /// Unknown import, malformed content, or something that could not be scanned; suspicious.
    Medium,
    /// Known-dangerous capability (file writes, network, nested loaders); dangerous.
    High,
    /// Direct code execution; dangerous.
    Critical,
}

impl Severity {
    /// The verdict a finding of this severity contributes.
    pub fn verdict(self) -> Verdict {
        match self {
            Severity::Info => Verdict::Clean,
            Severity::Low | Severity::Medium => Verdict::Suspicious,
            Severity::High | Severity::Critical => Verdict::Dangerous,
        }
    }

    /// Lower-case name, as used in rule files and reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The answer for a file. The order matters: later variants are more serious.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    /// Nothing that would import or call anything outside the allowlist, and fully read.
    Clean,
    /// Unknown imports, malformed or unscannable content: not proven safe.
    Suspicious,
    /// Something a load would run is known to be dangerous.
    Dangerous,
}

impl Verdict {
    /// Lower-case name, as used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Clean => "clean",
            Verdict::Suspicious => "suspicious",
            Verdict::Dangerous => "dangerous",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a global (or an object) is used by the stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Usage {
    /// Imported (GLOBAL, STACK_GLOBAL, EXT*) but not called in the stream.
    Imported,
    /// Called with arguments (REDUCE).
    Called,
    /// Instantiated (INST, OBJ, NEWOBJ, NEWOBJ_EX).
    Instantiated,
    /// Given state (BUILD → `__setstate__` or `__dict__` update).
    StateSet,
    /// A container method (`append`, `extend`, `__setitem__`, `add`) called on a non-plain object.
    MethodOnObject,
    /// Handed to the host's `persistent_load`.
    PersistentId,
    /// Not a use of a global: a fact about the file itself (malformed, budget, container oddity).
    Anomaly,
}

impl Usage {
    /// Snake-case name, as used in reports.
    pub fn as_str(self) -> &'static str {
        match self {
            Usage::Imported => "imported",
            Usage::Called => "called",
            Usage::Instantiated => "instantiated",
            Usage::StateSet => "state_set",
            Usage::MethodOnObject => "method_on_object",
            Usage::PersistentId => "persistent_id",
            Usage::Anomaly => "anomaly",
        }
    }
}

/// One reportable fact about a file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule id (e.g. `PS101`), never reused.
    pub rule: String,
    /// Severity after rules and overrides.
    pub severity: Severity,
    /// The global involved, as `module.name`, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub global: Option<String>,
    /// The module part of `global` as the unpickler imports it (the rest is the attribute
    /// path), where the scanner knows it: what an allow rule must name.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub module: Option<String>,
    /// How it is used.
    pub usage: Usage,
    /// Byte offset of the opcode (or structure) within the stream or member.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    /// Archive member (or nested path such as `outer.zip!inner.pkl`) the finding is in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    /// The call rendered like Python, e.g. `os.system('echo pwned')`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub call: Option<String>,
    /// One-line human explanation.
    pub message: String,
}

impl Finding {
    /// A finding about the file itself rather than about a global.
    pub fn anomaly(rule: &str, severity: Severity, offset: Option<u64>, message: String) -> Self {
        Finding {
            rule: rule.to_string(),
            severity,
            global: None,
            module: None,
            usage: Usage::Anomaly,
            offset,
            member: None,
            call: None,
            message,
        }
    }

    /// Attach the archive member this finding was found in (prefixing any nested member).
    pub fn in_member(mut self, member: &str) -> Self {
        self.member = Some(match self.member.take() {
            Some(inner) => format!("{member}!{inner}"),
            None => member.to_string(),
        });
        self
    }
}

/// The verdict a list of findings adds up to.
pub fn verdict_of(findings: &[Finding]) -> Verdict {
    findings
        .iter()
        .map(|f| f.severity.verdict())
        .max()
        .unwrap_or(Verdict::Clean)
}
