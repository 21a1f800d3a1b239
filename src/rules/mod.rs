//! The rule set: which imported globals are safe, dangerous, or unknown.
//!
//! (Interface placeholder; the rule engine and the data in `rules/` fill this in.)

use crate::finding::Severity;
use std::path::Path;

/// What a rule does with the globals it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Known-safe: no finding.
    Allow,
    /// Known-dangerous: a finding with the rule's severity.
    Deny,
    /// Not about globals: describes a fact about the file (malformed stream, container oddity).
    Anomaly,
}

/// One rule from `rules/`.
#[derive(Debug, Clone)]
pub struct Rule {
    /// Stable id such as `PS101`.
    pub id: String,
    /// Kebab-case name.
    pub name: String,
    /// Allow, deny or anomaly.
    pub action: Action,
    /// Severity of a finding this rule produces.
    pub severity: Severity,
    /// Why the rule exists.
    pub rationale: String,
    /// Links to advisories, CVEs, write-ups.
    pub references: Vec<String>,
}

/// The answer for one imported global.
#[derive(Debug, Clone, Copy)]
pub enum Judgement<'a> {
    /// On the allowlist.
    Safe(&'a Rule),
    /// On the denylist.
    Dangerous(&'a Rule),
    /// Neither: suspicious under the default policy.
    Unknown,
}

/// Error loading a rule file.
#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct RuleError {
    /// The rule file.
    pub file: String,
    /// What is wrong.
    pub message: String,
}

/// All rules in force.
#[derive(Debug, Clone, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// The rules embedded in the binary from `rules/`.
    pub fn builtin() -> RuleSet {
        RuleSet::default()
    }

    /// Add the rules of one more file (`--rules FILE`).
    pub fn add_file(&mut self, path: &Path) -> Result<(), RuleError> {
        Err(RuleError {
            file: path.display().to_string(),
            message: "not implemented".into(),
        })
    }

    /// Judge `module.name` as resolved by the unpickler.
    pub fn judge(&self, _module: &str, _name: &str) -> Judgement<'_> {
        Judgement::Unknown
    }

    /// Look a rule up by id (anomaly rules used by the scanner are looked up this way).
    pub fn get(&self, id: &str) -> Option<&Rule> {
        self.rules.iter().find(|r| r.id == id)
    }

    /// Every rule, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}
