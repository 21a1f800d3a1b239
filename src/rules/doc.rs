//! The generated rule table of `docs/rules.md`.

use super::{Pattern, RuleSet};
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
            matches_cell(&rule.patterns),
            rule.origin
        );
    }
    out
}

fn matches_cell(patterns: &[Pattern]) -> String {
    if patterns.is_empty() {
        return "—".into();
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
