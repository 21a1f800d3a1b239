//! The rule file format (`rules/*.toml`, `--rules FILE`): parsing and validation.
//!
//! See `docs/rules.md` for the documented format.

use super::{Action, Pattern, Rule, RuleError};
use crate::finding::{Severity, Usage};
use crate::names::{is_dotted_identifier, is_identifier};
use serde::Deserialize;
use std::collections::BTreeMap;

/// One rule file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleFile {
    /// Module spellings that name the same module: alias → canonical.
    #[serde(default)]
    aliases: BTreeMap<String, String>,
    /// The rules, in file order.
    #[serde(default)]
    rule: Vec<RuleDef>,
}

/// One `[[rule]]` table as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDef {
    id: String,
    name: String,
    action: Action,
    severity: Severity,
    rationale: String,
    #[serde(default)]
    help: Option<String>,
    #[serde(default)]
    references: Vec<String>,
    /// Exact globals: module → names (a name may be dotted: `Class.method`).
    #[serde(default)]
    globals: BTreeMap<String, Vec<String>>,
    /// Whole modules, including every submodule and every name in them.
    #[serde(default)]
    modules: Vec<String>,
    /// Attribute names that make any dotted path dangerous wherever they appear.
    #[serde(default)]
    attributes: Vec<String>,
    /// Globals (`module:name`) that must match this rule; for anomaly rules, prose.
    #[serde(default)]
    examples: Vec<String>,
    /// Allow rules only: the usages allowed (`imported`, `instantiated`, `state_set`,
    /// `called`, `method_on_object`); absent means every usage.
    #[serde(default)]
    usage: Option<Vec<Usage>>,
}

/// What one file contributes.
#[derive(Debug, Default)]
pub(crate) struct Parsed {
    pub aliases: Vec<(String, String)>,
    pub rules: Vec<Rule>,
}

fn err(file: &str, message: impl Into<String>) -> RuleError {
    RuleError {
        file: file.to_string(),
        message: message.into(),
    }
}

/// Parse and validate one rule file. `origin` names it in errors.
pub(crate) fn parse(origin: &str, text: &str) -> Result<Parsed, RuleError> {
    let file: RuleFile = toml::from_str(text).map_err(|e| err(origin, e.to_string().trim_end()))?;
    check(origin, file)
}

/// Parse and validate one rule file converted to JSON by `build.rs`.
pub(crate) fn parse_json(origin: &str, json: &str) -> Result<Parsed, RuleError> {
    let file: RuleFile = serde_json::from_str(json).map_err(|e| err(origin, e.to_string()))?;
    check(origin, file)
}

fn check(origin: &str, file: RuleFile) -> Result<Parsed, RuleError> {
    let mut out = Parsed::default();
    for (alias, canonical) in file.aliases {
        if !is_dotted_identifier(&alias) || !is_dotted_identifier(&canonical) {
            return Err(err(
                origin,
                format!("alias `{alias}` = `{canonical}`: not a dotted name"),
            ));
        }
        if alias == canonical {
            return Err(err(origin, format!("alias `{alias}` names itself")));
        }
        out.aliases.push((alias, canonical));
    }
    for def in file.rule {
        out.rules.push(validate(origin, def)?);
    }
    Ok(out)
}

fn is_rule_id(id: &str) -> bool {
    id.len() == 5 && id.starts_with("PS") && id[2..].bytes().all(|b| b.is_ascii_digit())
}

fn is_kebab(name: &str) -> bool {
    !name.is_empty()
        && name.split('-').all(|w| {
            !w.is_empty()
                && w.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

fn validate(origin: &str, def: RuleDef) -> Result<Rule, RuleError> {
    let id = def.id;
    let rerr = |m: String| err(origin, format!("rule {id}: {m}"));
    if !is_rule_id(&id) {
        return Err(err(
            origin,
            format!("rule id `{id}` is not of the form PS000"),
        ));
    }
    if !is_kebab(&def.name) {
        return Err(rerr(format!("name `{}` is not kebab-case", def.name)));
    }
    if def.rationale.trim().is_empty() {
        return Err(rerr("rationale is empty".into()));
    }
    if def.examples.is_empty() {
        return Err(rerr("needs at least one example".into()));
    }
    if def.references.iter().any(|r| r.trim().is_empty()) {
        return Err(rerr("empty reference".into()));
    }

    let mut patterns = Vec::new();
    for module in &def.modules {
        if !is_dotted_identifier(module) {
            return Err(rerr(format!(
                "modules: `{module}` is not a dotted module name"
            )));
        }
        patterns.push(Pattern::Module(module.clone()));
    }
    for (module, names) in &def.globals {
        if !is_dotted_identifier(module) {
            return Err(rerr(format!(
                "globals: `{module}` is not a dotted module name"
            )));
        }
        if names.is_empty() {
            return Err(rerr(format!("globals: `{module}` has no names")));
        }
        for name in names {
            if name.contains('*') {
                return Err(rerr(format!(
                    "globals: `{module}` `{name}`: no wildcards; list a whole module in `modules`"
                )));
            }
            if !is_dotted_identifier(name) {
                return Err(rerr(format!(
                    "globals: `{module}` `{name}` is not a dotted name"
                )));
            }
            patterns.push(Pattern::Global {
                module: module.clone(),
                name: name.clone(),
            });
        }
    }
    for attr in &def.attributes {
        if !is_identifier(attr) {
            return Err(rerr(format!("attributes: `{attr}` is not an identifier")));
        }
        patterns.push(Pattern::Attribute(attr.clone()));
    }

    match def.action {
        Action::Allow => {
            if !def.modules.is_empty() || !def.attributes.is_empty() {
                return Err(rerr(
                    "an allow rule lists exact globals only (no `modules`, no `attributes`)".into(),
                ));
            }
            if def.globals.is_empty() {
                return Err(rerr("an allow rule needs `globals`".into()));
            }
            if def.severity != Severity::Info {
                return Err(rerr("an allow rule has severity \"info\"".into()));
            }
        }
        Action::Deny => {
            if patterns.is_empty() {
                return Err(rerr(
                    "a deny rule needs `globals`, `modules` or `attributes`".into(),
                ));
            }
        }
        Action::Anomaly => {
            if !patterns.is_empty() {
                return Err(rerr(
                    "an anomaly rule matches no globals (no `globals`, `modules`, `attributes`)"
                        .into(),
                ));
            }
        }
    }
    if let Some(usages) = &def.usage {
        if def.action != Action::Allow {
            return Err(rerr("only an allow rule lists `usage`".into()));
        }
        if usages.is_empty() {
            return Err(rerr(
                "`usage` lists no usage (leave it out to allow every usage)".into(),
            ));
        }
        if let Some(u) = usages
            .iter()
            .find(|u| matches!(u, Usage::PersistentId | Usage::Anomaly))
        {
            return Err(rerr(format!(
                "usage `{}` is not a use of a global",
                u.as_str()
            )));
        }
    }
    if def.action != Action::Anomaly {
        for ex in &def.examples {
            match ex.split_once(':') {
                Some((m, n)) if !m.is_empty() && !n.is_empty() => {}
                _ => {
                    return Err(rerr(format!(
                        "example `{ex}` is not of the form module:name"
                    )))
                }
            }
        }
    }

    Ok(Rule {
        id,
        name: def.name,
        action: def.action,
        severity: def.severity,
        rationale: def.rationale.trim().to_string(),
        references: def.references,
        help: def.help.map(|h| h.trim().to_string()),
        patterns,
        examples: def.examples,
        usages: def.usage,
        origin: origin.to_string(),
    })
}
