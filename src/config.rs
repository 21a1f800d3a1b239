//! Configuration files: `.picklescan.toml`, or `[tool.picklescan-rs]` in `pyproject.toml`.
//!
//! A configuration is found by walking up from the scanned path ([`discover`]) or given with
//! `--config FILE`. It can set the policy and threshold, override severities, suppress rule ids
//! in some paths, load extra rule files, and declare extra allow/deny rules inline in the rule
//! file format (`docs/rules.md`):
//!
//! ```toml
//! policy = "strict"                 # default | strict | torch-weights-only
//! fail_on = "dangerous"             # dangerous | suspicious
//! rules = ["team-rules.toml"]       # more rule files, relative to this file
//! max_ratio = 100                   # compression ratio cap (see `Limits::max_ratio`)
//!
//! [severity]                        # severity by rule id
//! PS906 = "info"
//!
//! [[suppress]]                      # drop findings of a rule in some paths
//! rule = "PS001"
//! paths = ["vendor/**/*.pkl"]       # globs relative to this file's folder; none = everywhere
//! reason = "reviewed"
//!
//! [aliases]                         # module aliases, as in rule files
//! [[rule]]                          # allow/deny rules, as in rule files
//! ```
//!
//! Unknown keys are errors, and every error names the file, line and column.

use crate::finding::Severity;
use crate::policy::{self, FailOn, Mode, Policy, Suppression};
use crate::rules::RuleSet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The configuration file name looked for in every folder.
pub const FILE_NAME: &str = ".picklescan.toml";
/// The table used in `pyproject.toml`.
pub const PYPROJECT_TABLE: &str = "tool.picklescan-rs";

/// An invalid configuration, with where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The configuration file.
    pub file: PathBuf,
    /// 1-based line and column, when known.
    pub position: Option<(usize, usize)>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.position {
            Some((line, col)) => {
                write!(f, "{}:{line}:{col}: {}", self.file.display(), self.message)
            }
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}

/// A suppression as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSuppress {
    rule: Spanned<String>,
    #[serde(default)]
    paths: Vec<Spanned<String>>,
    #[serde(default)]
    reason: Option<String>,
}

/// The configuration as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    #[serde(default)]
    policy: Option<Mode>,
    #[serde(default)]
    fail_on: Option<FailOn>,
    #[serde(default)]
    rules: Vec<Spanned<String>>,
    #[serde(default)]
    severity: BTreeMap<String, Spanned<Severity>>,
    #[serde(default)]
    suppress: Vec<Spanned<RawSuppress>>,
    #[serde(default)]
    aliases: Option<Spanned<toml::Table>>,
    #[serde(default)]
    rule: Vec<Spanned<toml::Table>>,
    #[serde(default)]
    max_ratio: Option<Spanned<u64>>,
}

#[derive(Debug, Deserialize)]
struct Pyproject {
    #[serde(default)]
    tool: PyTool,
}

#[derive(Debug, Default, Deserialize)]
struct PyTool {
    #[serde(rename = "picklescan-rs")]
    picklescan: Option<RawConfig>,
}

#[derive(Serialize)]
struct RuleText<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    aliases: Option<&'a toml::Table>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rule: Vec<&'a toml::Table>,
}

/// A loaded configuration.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The file it came from.
    pub file: PathBuf,
    /// The policy mode, if set.
    pub policy: Option<Mode>,
    /// The exit-code threshold, if set.
    pub fail_on: Option<FailOn>,
    /// The compression ratio cap ([`crate::Limits::max_ratio`]), if set.
    pub max_ratio: Option<u64>,
    /// Severity overrides by rule id.
    pub severity: BTreeMap<String, Severity>,
    /// Suppressions.
    pub suppressions: Vec<Suppression>,
    /// Extra rule files (resolved against the configuration's folder).
    pub rule_files: Vec<PathBuf>,
    /// Inline rules: `(origin "file:line", rule-file text)`.
    pub inline_rules: Vec<(String, String)>,
    /// Line of each severity override, for errors found later.
    severity_lines: BTreeMap<String, (usize, usize)>,
}

/// 1-based (line, column) of a byte offset.
fn position(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

impl Config {
    /// Read and parse a configuration file (`pyproject.toml` is read for its
    /// `[tool.picklescan-rs]` table).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_path_buf(),
            position: None,
            message: format!("cannot read: {e}"),
        })?;
        Config::parse(path, &text)
    }

    /// Parse configuration text; `path` names the file in errors and anchors relative paths.
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let err = |position: Option<(usize, usize)>, message: String| ConfigError {
            file: path.to_path_buf(),
            position,
            message,
        };
        let toml_err = |e: toml::de::Error| {
            err(
                e.span().map(|s| position(text, s.start)),
                e.message().trim_end().to_string(),
            )
        };
        let is_pyproject = path.file_name().is_some_and(|n| n == "pyproject.toml");
        let raw = if is_pyproject {
            let p: Pyproject = toml::from_str(text).map_err(toml_err)?;
            p.tool
                .picklescan
                .ok_or_else(|| err(None, format!("no [{PYPROJECT_TABLE}] table")))?
        } else {
            toml::from_str::<RawConfig>(text).map_err(toml_err)?
        };
        let base = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        let shown = path.display().to_string();
        let mut cfg = Config {
            file: path.to_path_buf(),
            policy: raw.policy,
            fail_on: raw.fail_on,
            ..Config::default()
        };
        if let Some(r) = raw.max_ratio {
            if *r.get_ref() == 0 {
                return Err(err(
                    Some(position(text, r.span().start)),
                    "max_ratio must be at least 1".into(),
                ));
            }
            cfg.max_ratio = Some(r.into_inner());
        }
        for (rule, sev) in raw.severity {
            let pos = position(text, sev.span().start);
            cfg.severity_lines.insert(rule.clone(), pos);
            cfg.severity.insert(rule, sev.into_inner());
        }
        for s in raw.suppress {
            let pos = position(text, s.span().start);
            let s = s.into_inner();
            let origin = format!("{shown}:{}", pos.0);
            // A bad glob is reported where it is written.
            for p in &s.paths {
                if let Err(e) = globset::Glob::new(p.get_ref()) {
                    return Err(err(
                        Some(position(text, p.span().start)),
                        format!("bad path glob `{}`: {e}", p.get_ref()),
                    ));
                }
            }
            let paths = s.paths.into_iter().map(Spanned::into_inner).collect();
            let sup = Suppression::new(s.rule.get_ref(), paths, s.reason, origin)
                .map_err(|e| err(Some(pos), e.0))?;
            cfg.severity_lines
                .entry(format!("suppress:{}", s.rule.get_ref()))
                .or_insert(position(text, s.rule.span().start));
            cfg.suppressions.push(sup);
        }
        for r in raw.rules {
            cfg.rule_files.push(base.join(r.get_ref()));
        }
        if let Some(aliases) = &raw.aliases {
            let line = position(text, aliases.span().start).0;
            let body = toml::to_string(&RuleText {
                aliases: Some(aliases.get_ref()),
                rule: Vec::new(),
            })
            .map_err(|e| err(None, e.to_string()))?;
            cfg.inline_rules.push((format!("{shown}:{line}"), body));
        }
        for rule in &raw.rule {
            let line = position(text, rule.span().start).0;
            let body = toml::to_string(&RuleText {
                aliases: None,
                rule: vec![rule.get_ref()],
            })
            .map_err(|e| err(None, e.to_string()))?;
            cfg.inline_rules.push((format!("{shown}:{line}"), body));
        }
        Ok(cfg)
    }

    /// Add the configuration's rule files and inline rules to `rules`, then check that every
    /// rule id it names (overrides, suppressions) exists.
    pub fn apply_rules(&self, rules: &mut RuleSet) -> Result<(), ConfigError> {
        for f in &self.rule_files {
            rules.add_file(f).map_err(|e| ConfigError {
                file: self.file.clone(),
                position: None,
                message: format!("rule file {e}"),
            })?;
        }
        for (origin, text) in &self.inline_rules {
            rules.add_str(origin, text).map_err(|e| {
                let line = origin
                    .rsplit(':')
                    .next()
                    .and_then(|l| l.parse().ok())
                    .unwrap_or(1);
                ConfigError {
                    file: self.file.clone(),
                    position: Some((line, 1)),
                    message: e.message,
                }
            })?;
        }
        self.check_ids(rules)
    }

    /// Every rule id named by the configuration must exist.
    pub fn check_ids(&self, rules: &RuleSet) -> Result<(), ConfigError> {
        let known = |id: &str| {
            rules.get(id).is_some()
                || policy::ids::POLICY.contains(&id)
                || id == policy::ids::NOT_LISTED
        };
        for id in self.severity.keys() {
            if !known(id) {
                return Err(ConfigError {
                    file: self.file.clone(),
                    position: self.severity_lines.get(id).copied(),
                    message: format!("severity override for unknown rule id `{id}`"),
                });
            }
        }
        for s in &self.suppressions {
            if !known(&s.rule) {
                return Err(ConfigError {
                    file: self.file.clone(),
                    position: self
                        .severity_lines
                        .get(&format!("suppress:{}", s.rule))
                        .copied(),
                    message: format!("suppression of unknown rule id `{}`", s.rule),
                });
            }
        }
        Ok(())
    }

    /// The policy this configuration describes, with command-line choices taking precedence.
    pub fn policy(&self, mode: Option<Mode>, fail_on: Option<FailOn>) -> Policy {
        let mut p = Policy::new(mode.or(self.policy).unwrap_or_default())
            .with_suppressions(self.suppressions.clone());
        p.fail_on = fail_on.or(self.fail_on).unwrap_or_default();
        p.severity = self.severity.clone();
        p.base = self.file.parent().map(Path::to_path_buf);
        p
    }
}

/// Find the configuration for `start` (a file or folder): the nearest `.picklescan.toml`, or
/// `pyproject.toml` with a `[tool.picklescan-rs]` table, in its folder or any folder above.
pub fn discover(start: &Path) -> Option<PathBuf> {
    let abs = std::path::absolute(start).ok()?;
    let mut dir = if abs.is_dir() {
        Some(abs.as_path())
    } else {
        abs.parent()
    };
    while let Some(d) = dir {
        let candidate = d.join(FILE_NAME);
        if candidate.is_file() {
            return Some(candidate);
        }
        let py = d.join("pyproject.toml");
        if py.is_file() && pyproject_has_table(&py) {
            return Some(py);
        }
        dir = d.parent();
    }
    None
}

fn pyproject_has_table(path: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(path) else {
        return false;
    };
    match toml::from_str::<toml::Table>(&text) {
        Ok(t) => t.get("tool").and_then(|t| t.get("picklescan-rs")).is_some(),
        // A broken pyproject that mentions the table is reported rather than skipped.
        Err(_) => text.contains("[tool.picklescan-rs"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        assert_eq!(position("a\nbc\n", 3), (2, 2));
        assert_eq!(position("abc", 0), (1, 1));
    }

    #[test]
    fn unknown_key_names_its_line() {
        let e = Config::parse(Path::new("x.toml"), "policy = \"strict\"\nfoo = 1\n").unwrap_err();
        assert_eq!(e.position.map(|p| p.0), Some(2), "{e}");
        assert!(e.to_string().starts_with("x.toml:2:"), "{e}");
    }
}
