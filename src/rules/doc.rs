//! The generated rule table of `docs/rules.md`.

use super::{Pattern, Rule, RuleSet};
use crate::finding::Usage;
use std::fmt::Write;

/// One Markdown table row per rule.
pub(crate) fn markdown_table(set: &RuleSet) -> String {
    let mut out = String::new();
    out.push_str("| ID | Name | Action | Severity | Matches | File |\n");
    out.push_str("|---|---|---|---|---|---|\n");
    let mut rules: Vec<_> = set.rules().iter().collect();
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    for rule in rules {
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} | {} | `{}` |",
            rule.id,
            rule.name,
            rule.action.as_str(),
            rule.severity,
            matches_cell(&rule.patterns, 12),
            rule.origin
        );
    }
    out
}

/// The patterns of a rule, grouped by module; after `most` globals, only a count.
fn matches_cell(patterns: &[Pattern], most: usize) -> String {
    if patterns.is_empty() {
        return "—".into();
    }
    if patterns.len() > most {
        let shown = matches_cell(&patterns[..most], most);
        return format!("{shown} … and {} more", patterns.len() - most);
    }
    let mut parts: Vec<String> = Vec::new();
    let mut group: Option<(String, Vec<String>)> = None;
    let flush = |group: &mut Option<(String, Vec<String>)>, parts: &mut Vec<String>| {
        if let Some((m, names)) = group.take() {
            if names.len() == 1 {
                parts.push(format!("`{m}.{}`", names[0]));
            } else {
                parts.push(format!("`{m}.{{{}}}`", names.join(", ")));
            }
        }
    };
    for p in patterns {
        match p {
            Pattern::Global { module, name } => {
                if group.as_ref().is_some_and(|(m, _)| m != module) {
                    flush(&mut group, &mut parts);
                }
                group
                    .get_or_insert_with(|| (module.clone(), Vec::new()))
                    .1
                    .push(name.clone());
            }
            other => {
                flush(&mut group, &mut parts);
                parts.push(format!("`{other}`"));
            }
        }
    }
    flush(&mut group, &mut parts);
    parts.join(", ")
}

/// A rule's documentation as text (`picklescan-rs rule ID`).
pub fn rule_text(rule: &Rule) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "{} {}", rule.id, rule.name);
    let _ = writeln!(
        out,
        "  action: {}   severity: {}   from: {}",
        rule.action.as_str(),
        rule.severity,
        rule.origin
    );
    if let Some(u) = &rule.usages {
        let names: Vec<&str> = u.iter().map(|u| u.as_str()).collect();
        let _ = writeln!(out, "  usage: {}", names.join(", "));
    }
    if !rule.patterns.is_empty() {
        let _ = writeln!(
            out,
            "  matches: {}",
            matches_cell(&rule.patterns, usize::MAX)
        );
    }
    out.push('\n');
    for line in rule.rationale.lines() {
        let _ = writeln!(out, "  {line}");
    }
    if let Some(h) = &rule.help {
        let _ = writeln!(out, "\n  What to do:");
        for line in h.lines() {
            let _ = writeln!(out, "  {line}");
        }
    }
    if !rule.examples.is_empty() {
        let _ = writeln!(out, "\n  Examples: {}", rule.examples.join(", "));
    }
    for r in &rule.references {
        let _ = writeln!(out, "  see {r}");
    }
    out
}

/// One line per rule (`picklescan-rs rules`): id, action, severity, name.
pub fn rules_list(set: &RuleSet) -> String {
    let mut rules: Vec<_> = set.rules().iter().collect();
    rules.sort_by(|a, b| a.id.cmp(&b.id));
    let mut out = String::new();
    for r in rules {
        let _ = writeln!(
            out,
            "{}  {:<7} {:<8} {}",
            r.id,
            r.action.as_str(),
            r.severity.as_str(),
            r.name
        );
    }
    out
}

/// The one-line reason shown beside a finding: the start of the rule's rationale (to its first
/// colon or full stop, at most about 100 characters) and where to read the rest.
pub fn reason(rule: &Rule) -> String {
    let text = rule
        .rationale
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    let mut end = [": ", ". ", "; "]
        .iter()
        .filter_map(|p| text.find(p))
        .min()
        .unwrap_or(text.len());
    let mut cut = false;
    let limit = text.char_indices().nth(100).map_or(text.len(), |(i, _)| i);
    if end > limit {
        end = text[..limit].rfind(' ').unwrap_or(0);
        cut = true;
    }
    let head = text[..end].trim_end_matches('.');
    format!(
        "{head}{} (picklescan-rs rule {})",
        if cut { " …" } else { "" },
        rule.id
    )
}

/// The `.picklescan.toml` rule that allows `module.name` used as `usages`, for a user who has
/// reviewed it and trusts it.
pub fn allow_snippet(module: &str, names: &[(String, Vec<Usage>)]) -> String {
    let mut usages: Vec<&str> = names
        .iter()
        .flat_map(|(_, u)| u.iter().map(|u| u.as_str()))
        .collect();
    usages.sort();
    usages.dedup();
    let quoted = |v: &[&str]| {
        v.iter()
            .map(|s| format!("\"{s}\""))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let name_list: Vec<&str> = names.iter().map(|(n, _)| n.as_str()).collect();
    let slug: String = module
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect();
    format!(
        "[[rule]]\nid = \"PS800\"  # PS800-PS899 are free for your own rules\nname = \"allow-{slug}\"\naction = \"allow\"\nseverity = \"info\"\nrationale = \"Reviewed: what this code does when unpickled, and why it is trusted.\"\nexamples = [\"{module}:{}\"]\nusage = [{}]\n\n[rule.globals]\n\"{module}\" = [{}]\n",
        name_list[0],
        quoted(&usages),
        quoted(&name_list)
    )
}
