//! Policies: what a scan's findings mean for one deployment.
//!
//! The scanner reports what a file would do; a [`Policy`] then decides how much that matters,
//! after the scan and without rescanning:
//!
//! * the **mode** ([`Mode`]): `default` (the rule set as is), `strict` (imports that are not
//!   allowlisted are dangerous, not suspicious), or `torch-weights-only` (only torch 2.15's
//!   `weights_only` allowlist is safe; the report says whether `torch.load(weights_only=True)`
//!   would succeed and which `torch.serialization.add_safe_globals([...])` the file needs, see
//!   [`weights_only`]);
//! * **severity overrides** by rule id;
//! * **suppressions** by rule id and path glob (each counts its uses; unused ones are reported);
//! * the exit-code threshold ([`FailOn`]).
//!
//! The same policy serves the CLI, the HTTP server and library callers: scan, then
//! [`Policy::apply`] to each [`FileReport`].

pub use crate::container::weights_only;

use crate::finding::{verdict_of, Finding, Severity, Usage};
use crate::report::{FileReport, Gate};
use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use weights_only::{ProblemKind, WeightsOnly};

/// Rule ids: the one registry, [`crate::rules::ids`].
pub use crate::rules::ids;

/// The anomaly rules for the ids in [`ids`], in the rule file format.
pub const RULES_FILE: &str = include_str!("../rules/policy/anomalies.toml");

/// Rule ids that stand for an import the rules do not know (made dangerous by `strict`).
const UNKNOWN_IMPORT_IDS: &[&str] = &[ids::UNKNOWN_GLOBAL, ids::EXTENSION, ids::DYNAMIC_GLOBAL];

/// How findings are judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// The rule set as is: unknown imports are suspicious.
    #[default]
    Default,
    /// Unknown imports (and imports that cannot be known) are dangerous.
    Strict,
    /// Only torch's `weights_only` allowlist is safe; everything else is at least suspicious.
    TorchWeightsOnly,
}

impl Mode {
    /// The name used on the command line and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Default => "default",
            Mode::Strict => "strict",
            Mode::TorchWeightsOnly => "torch-weights-only",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Mode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "default" => Ok(Mode::Default),
            "strict" => Ok(Mode::Strict),
            "torch-weights-only" => Ok(Mode::TorchWeightsOnly),
            _ => Err(format!(
                "unknown policy `{s}` (expected default, strict or torch-weights-only)"
            )),
        }
    }
}

/// Which verdict makes the exit code non-zero.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FailOn {
    /// Only dangerous files (and I/O errors) fail; suspicious files exit 0.
    Dangerous,
    /// Suspicious files fail too (exit 2): fail closed.
    #[default]
    Suspicious,
}

impl FromStr for FailOn {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dangerous" => Ok(FailOn::Dangerous),
            "suspicious" => Ok(FailOn::Suspicious),
            _ => Err(format!(
                "unknown threshold `{s}` (expected dangerous or suspicious)"
            )),
        }
    }
}

impl FailOn {
    /// The name used on the command line and in configuration.
    pub fn as_str(self) -> &'static str {
        match self {
            FailOn::Dangerous => "dangerous",
            FailOn::Suspicious => "suspicious",
        }
    }
}

/// The gate over many files under a threshold: [`crate::report::gate`], with suspicious files
/// passing when `fail_on` is `dangerous`.
pub fn gate(files: &[FileReport], fail_on: FailOn) -> Gate {
    match crate::report::gate(files) {
        Gate::Suspicious if fail_on == FailOn::Dangerous => Gate::Pass,
        g => g,
    }
}

/// Error in a suppression or policy setting.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct PolicyError(pub String);

/// Drops the findings of one rule in files whose path matches a glob.
#[derive(Debug, Clone)]
pub struct Suppression {
    /// The rule id suppressed.
    pub rule: String,
    /// Path globs (empty: everywhere). Globs with a `/` match the path relative to the base
    /// folder (or as given); globs without one also match the file name alone.
    pub paths: Vec<String>,
    /// Why (kept for the audit trail).
    pub reason: Option<String>,
    /// Where it was declared (`file:line`).
    pub origin: String,
    set: Option<GlobSet>,
    name_set: Option<GlobSet>,
}

impl Suppression {
    /// A suppression of `rule` in `paths`.
    pub fn new(
        rule: &str,
        paths: Vec<String>,
        reason: Option<String>,
        origin: String,
    ) -> Result<Self, PolicyError> {
        let build =
            |globs: &mut dyn Iterator<Item = &String>| -> Result<Option<GlobSet>, PolicyError> {
                let mut b = GlobSetBuilder::new();
                let mut any = false;
                for g in globs {
                    let glob = GlobBuilder::new(g.trim_start_matches("./"))
                        .literal_separator(true)
                        .build()
                        .map_err(|e| PolicyError(format!("bad path glob `{g}`: {e}")))?;
                    b.add(glob);
                    any = true;
                }
                if !any {
                    return Ok(None);
                }
                b.build()
                    .map(Some)
                    .map_err(|e| PolicyError(format!("bad path globs: {e}")))
            };
        let set = build(&mut paths.iter())?;
        let name_set = build(&mut paths.iter().filter(|g| !g.contains('/')))?;
        Ok(Suppression {
            rule: rule.to_string(),
            paths,
            reason,
            origin,
            set,
            name_set,
        })
    }

    fn matches_path(&self, shown: &str, base: Option<&Path>) -> bool {
        let Some(set) = &self.set else {
            return true;
        };
        let shown = shown.replace('\\', "/");
        let shown = shown.trim_start_matches("./");
        if set.is_match(shown) {
            return true;
        }
        if let Some(base) = base {
            if let (Ok(abs), Ok(base)) = (std::path::absolute(shown), std::path::absolute(base)) {
                if let Ok(rel) = abs.strip_prefix(&base) {
                    if set.is_match(rel) {
                        return true;
                    }
                }
            }
        }
        match (&self.name_set, Path::new(shown).file_name()) {
            (Some(names), Some(name)) => names.is_match(name),
            _ => false,
        }
    }
}

/// What a deployment makes of findings. Cheap to clone; suppression counters are shared.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// How findings are judged.
    pub mode: Mode,
    /// The exit-code threshold.
    pub fail_on: FailOn,
    /// Severity by rule id, replacing the rule's.
    pub severity: BTreeMap<String, Severity>,
    /// Suppressions, in declaration order.
    pub suppressions: Vec<Suppression>,
    /// Folder that suppression globs are relative to (the configuration file's).
    pub base: Option<PathBuf>,
    used: Arc<Vec<AtomicU64>>,
}

impl Policy {
    /// A policy with this mode and nothing else.
    pub fn new(mode: Mode) -> Self {
        Policy {
            mode,
            ..Policy::default()
        }
    }

    /// Replace the suppressions (resetting their counters).
    pub fn with_suppressions(mut self, suppressions: Vec<Suppression>) -> Self {
        self.used = Arc::new(suppressions.iter().map(|_| AtomicU64::new(0)).collect());
        self.suppressions = suppressions;
        self
    }

    /// Whether the scanner must model `torch.load(weights_only=True)` for this policy
    /// (`Scanner::weights_only`; [`crate::engine::Engine`] sets it).
    pub fn needs_weights_only(&self) -> bool {
        self.mode == Mode::TorchWeightsOnly
    }

    /// Apply the policy to one report: add the mode's findings, rewrite severities, drop
    /// suppressed findings, and recompute the verdict. A pure function of the report: the torch
    /// mode reads `torch_weights_only`, which the scan worked out (a report without it, from a
    /// scanner not asked to model torch's loader, cannot load as far as this mode knows).
    ///
    /// A report of a file that could not be read is left as it is: never clean.
    pub fn apply(&self, report: &mut FileReport) {
        if report.error.is_some() {
            return;
        }
        if self.mode == Mode::TorchWeightsOnly {
            let mut wo = report
                .torch_weights_only
                .take()
                .unwrap_or_else(not_modelled);
            // A storage whose record size differs from what its pickle declares: torch reads
            // the pickle, then refuses the record (the scan found it, PS910).
            if let Some(f) = report
                .findings
                .iter()
                .find(|f| f.rule == ids::ZIP_ANOMALY && f.message.contains("but its member holds"))
            {
                wo.errors.push(weights_only::Problem {
                    kind: weights_only::ProblemKind::Container,
                    offset: f.offset,
                    message: format!("torch.load refuses the storage record: {}", f.message),
                });
                wo.loads = false;
                wo.loads_after_allowlisting = false;
            }
            add_weights_only_findings(&mut report.findings, &wo);
            report.torch_weights_only = Some(wo);
        }
        if self.mode == Mode::Strict {
            for f in &mut report.findings {
                if UNKNOWN_IMPORT_IDS.contains(&f.rule.as_str()) {
                    f.severity = f.severity.max(Severity::High);
                }
            }
        }
        for f in &mut report.findings {
            if let Some(&s) = self.severity.get(&f.rule) {
                f.severity = s;
            }
        }
        if !self.suppressions.is_empty() {
            let base = self.base.as_deref();
            let active: Vec<usize> = (0..self.suppressions.len())
                .filter(|&i| self.suppressions[i].matches_path(&report.path, base))
                .collect();
            report.findings.retain(|f| {
                match active
                    .iter()
                    .find(|&&i| self.suppressions[i].rule == f.rule)
                {
                    Some(&i) => {
                        self.used[i].fetch_add(1, Ordering::Relaxed);
                        false
                    }
                    None => true,
                }
            });
        }
        report.verdict = verdict_of(&report.findings);
    }

    /// How many findings each suppression has dropped so far.
    pub fn suppression_uses(&self) -> Vec<(&Suppression, u64)> {
        self.suppressions
            .iter()
            .zip(self.used.iter())
            .map(|(s, n)| (s, n.load(Ordering::Relaxed)))
            .collect()
    }

    /// Info findings (rule PS958) for the suppressions that matched nothing so far.
    pub fn unused_suppressions(&self) -> Vec<Finding> {
        self.suppression_uses()
            .into_iter()
            .filter(|(_, n)| *n == 0)
            .map(|(s, _)| {
                let place = if s.paths.is_empty() {
                    String::new()
                } else {
                    format!(" in {}", s.paths.join(", "))
                };
                Finding::anomaly(
                    ids::UNUSED_SUPPRESSION,
                    Severity::Info,
                    None,
                    format!(
                        "suppression of {}{place} ({}) matched no finding",
                        s.rule, s.origin
                    ),
                )
            })
            .collect()
    }

    /// The gate for these reports under this policy's threshold.
    pub fn gate(&self, files: &[FileReport]) -> Gate {
        gate(files, self.fail_on)
    }
}

/// The answer for a report whose scan did not model torch's loader: it cannot be said to load.
fn not_modelled() -> WeightsOnly {
    WeightsOnly {
        torch_version: weights_only::Allowlist::get().torch_version.clone(),
        container: weights_only::TorchContainer::Unknown,
        member: None,
        loads: false,
        loads_after_allowlisting: false,
        add_safe_globals: Vec::new(),
        blocked: Vec::new(),
        errors: vec![weights_only::Problem {
            kind: ProblemKind::Container,
            offset: None,
            message: "not analysed: the scanner was not asked to model torch.load".into(),
        }],
    }
}

fn add_weights_only_findings(findings: &mut Vec<Finding>, wo: &WeightsOnly) {
    let reported = |g: &str, findings: &[Finding]| {
        findings
            .iter()
            .any(|f| f.global.as_deref() == Some(g) && f.severity >= Severity::Medium)
    };
    let mut added = Vec::new();
    for g in wo.add_safe_globals.iter().chain(wo.blocked.iter()) {
        if reported(g, findings) {
            continue;
        }
        let blocked = wo.blocked.contains(g);
        added.push(Finding {
            rule: ids::WEIGHTS_ONLY_GLOBAL.to_string(),
            severity: Severity::Medium,
            global: Some(g.clone()),
            module: None,
            usage: Usage::Imported,
            offset: None,
            member: wo.member.clone(),
            call: None,
            message: if blocked {
                format!(
                    "{g} is not on torch {}'s weights_only allowlist, and its module is blocked",
                    wo.torch_version
                )
            } else {
                format!(
                    "{g} is not on torch {}'s weights_only allowlist: \
                     torch.load(weights_only=True) refuses it unless added with add_safe_globals",
                    wo.torch_version
                )
            },
        });
    }
    for p in &wo.errors {
        if p.kind == ProblemKind::NotTorchFile {
            // Not a safety matter: the pickle itself is judged by its globals and opcodes.
            continue;
        }
        added.push(Finding {
            offset: p.offset,
            member: if p.kind == ProblemKind::Unpickler {
                wo.member.clone()
            } else {
                None
            },
            ..Finding::anomaly(
                ids::WEIGHTS_ONLY_REJECTED,
                Severity::Medium,
                None,
                format!("torch.load(weights_only=True) fails: {}", p.message),
            )
        });
    }
    findings.extend(added);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::finding::Verdict;

    fn report(findings: Vec<Finding>) -> FileReport {
        FileReport::scanned("models/a.pkl".into(), 10, crate::Format::Pickle, findings)
    }

    fn unknown() -> Finding {
        Finding {
            global: Some("acme.Net".into()),
            usage: Usage::Called,
            ..Finding::anomaly("PS001", Severity::Medium, Some(2), "calls acme.Net".into())
        }
    }

    #[test]
    fn strict_makes_unknown_imports_dangerous() {
        let mut r = report(vec![unknown()]);
        Policy::new(Mode::Strict).apply(&mut r);
        assert_eq!(r.verdict, Verdict::Dangerous);
        let mut r = report(vec![unknown()]);
        Policy::new(Mode::Default).apply(&mut r);
        assert_eq!(r.verdict, Verdict::Suspicious);
    }

    #[test]
    fn overrides_then_suppressions_then_verdict() {
        let mut p = Policy::new(Mode::Strict).with_suppressions(vec![
            Suppression::new("PS906", vec!["models/*".into()], None, "c:1".into()).unwrap(),
            Suppression::new("PS903", vec![], None, "c:2".into()).unwrap(),
        ]);
        p.severity.insert("PS001".into(), Severity::Low);
        let trailing = Finding::anomaly("PS906", Severity::Low, None, "trailing".into());
        let mut r = report(vec![unknown(), trailing]);
        p.apply(&mut r);
        assert_eq!(r.findings.len(), 1);
        assert_eq!(
            r.findings[0].severity,
            Severity::Low,
            "override wins over strict"
        );
        assert_eq!(r.verdict, Verdict::Suspicious);
        let unused = p.unused_suppressions();
        assert_eq!(unused.len(), 1);
        assert!(unused[0].message.contains("PS903"));
        assert_eq!(unused[0].rule, ids::UNUSED_SUPPRESSION);
    }

    #[test]
    fn fail_on_dangerous_lets_suspicious_files_pass() {
        let files = vec![report(vec![unknown()])];
        assert_eq!(gate(&files, FailOn::Suspicious), Gate::Suspicious);
        assert_eq!(gate(&files, FailOn::Dangerous), Gate::Pass);
        let mut unreadable = FileReport::unreadable("x".into(), "gone".into());
        Policy::new(Mode::Strict).apply(&mut unreadable);
        assert_eq!(gate(&[unreadable], FailOn::Dangerous), Gate::Error);
    }

    #[test]
    fn suppression_globs_match_relative_paths_and_names() {
        let s = Suppression::new("PS001", vec!["*.pkl".into()], None, "c:1".into()).unwrap();
        assert!(s.matches_path("deep/dir/a.pkl", None));
        let s = Suppression::new("PS001", vec!["vendor/**".into()], None, "c:1".into()).unwrap();
        assert!(s.matches_path("./vendor/x/a.pkl", None));
        assert!(!s.matches_path("models/vendor.pkl", None));
    }
}
