//! The human-readable report, coloured on a terminal.

use super::json::Summary;
use super::FileReport;
use crate::finding::{Severity, Usage, Verdict};
use crate::format::Format;
use crate::rules::{doc, RuleSet};
use colored::Colorize;
use std::collections::BTreeMap;
use std::fmt::Write;

fn verdict_word(v: Verdict) -> colored::ColoredString {
    match v {
        Verdict::Clean => "clean".green().bold(),
        Verdict::Suspicious => "suspicious".yellow().bold(),
        Verdict::Dangerous => "dangerous".red().bold(),
    }
}

fn severity_word(s: Severity) -> colored::ColoredString {
    match s {
        Severity::Critical | Severity::High => s.as_str().red(),
        Severity::Medium | Severity::Low => s.as_str().yellow(),
        Severity::Info => s.as_str().normal(),
    }
}

/// For the unknown globals of a report: the `.picklescan.toml` rules that would allow them, for
/// a user who has reviewed and trusts them (one rule per module).
fn allow_hint(f: &FileReport) -> String {
    let mut by_module: BTreeMap<&str, Vec<(String, Vec<Usage>)>> = BTreeMap::new();
    for x in &f.findings {
        if x.rule != crate::rules::ids::UNKNOWN_GLOBAL {
            continue;
        }
        let (Some(g), Some(m)) = (&x.global, &x.module) else {
            continue;
        };
        let Some(name) = g.strip_prefix(m.as_str()).and_then(|n| n.strip_prefix('.')) else {
            continue;
        };
        let names = by_module.entry(m).or_default();
        match names.iter_mut().find(|(n, _)| n == name) {
            Some((_, u)) if !u.contains(&x.usage) => u.push(x.usage),
            Some(_) => {}
            None => names.push((name.to_string(), vec![x.usage])),
        }
    }
    if by_module.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "  to allow what this file imports, once you have reviewed it and trust it, add to .picklescan.toml:\n",
    );
    for (module, names) in by_module {
        for line in doc::allow_snippet(module, &names).lines() {
            if line.is_empty() {
                out.push('\n');
            } else {
                let _ = writeln!(out, "    {line}");
            }
        }
    }
    out
}

/// One file's report as text; each finding's reason is its rule's in `rules` (the rules in
/// force, user rules included).
pub fn render_file(f: &FileReport, rules: &RuleSet) -> String {
    let mut out = String::new();
    if let (Format::NotAModel(what), [], None) = (&f.format, f.findings.as_slice(), &f.error) {
        let _ = writeln!(out, "{}: {} ({what})", f.path, "not a model".dimmed());
        return out;
    }
    // A file that could not be read has no verdict to show: it is an error (exit 3).
    if let Some(e) = &f.error {
        let _ = writeln!(out, "{}: {}", f.path, "error".red().bold());
        let _ = writeln!(out, "  {e}");
        return out;
    }
    let _ = writeln!(
        out,
        "{}: {} ({})",
        f.path,
        verdict_word(f.verdict),
        f.format
    );
    if let Some(t) = f.transferred {
        let share = if f.size > 0 {
            format!(" ({:.3} %)", t as f64 * 100.0 / f.size as f64)
        } else {
            String::new()
        };
        let _ = writeln!(out, "  fetched {t} of {} bytes{share}", f.size);
    }
    for x in &f.findings {
        let mut place = String::new();
        if let Some(m) = &x.member {
            let _ = write!(place, " in {m}");
        }
        if let Some(o) = x.offset {
            let _ = write!(place, " at byte {o}");
        }
        let what = x
            .global
            .as_deref()
            .map(|g| format!(" {g}"))
            .unwrap_or_default();
        // A message that only repeats the usage and the global ("calls posix.system") adds
        // nothing to "called posix.system".
        let repeats = x
            .global
            .as_deref()
            .is_some_and(|g| x.message.split_once(' ').is_some_and(|(_, rest)| rest == g));
        let message = if repeats || x.message.is_empty() {
            String::new()
        } else {
            format!(" ({})", x.message)
        };
        let _ = writeln!(
            out,
            "  [{}] {} {}{}{}{}",
            severity_word(x.severity),
            x.rule.bold(),
            x.usage.as_str(),
            what,
            message,
            place
        );
        if let Some(c) = &x.call {
            let _ = writeln!(out, "      {}", c.cyan());
        }
        if let Some(rule) = rules.get(&x.rule) {
            let _ = writeln!(out, "      why: {}", doc::reason(rule).dimmed());
        }
    }
    out.push_str(&allow_hint(f));
    if let Some(wo) = &f.torch_weights_only {
        out.push_str(&render_weights_only(wo));
    }
    out
}

/// One line per model stored as a folder (a SavedModel): its verdict, the worst of its files'.
pub fn render_models(files: &[FileReport]) -> String {
    super::models::model_folders(files)
        .iter()
        .map(|m| {
            format!(
                "{}/: {} ({} folder, {})\n",
                m.path,
                m.verdict,
                m.format,
                plural(m.files as u64, "file")
            )
        })
        .collect()
}

/// The closing summary line.
pub fn render_summary(files: &[FileReport], seconds: f64) -> String {
    let s = Summary::of(files);
    format!(
        "{}, {} clean ({} not models), {} suspicious, {} dangerous, {}; {} in {:.3}s\n",
        plural(s.files as u64, "file"),
        s.clean,
        s.not_models,
        s.suspicious,
        s.dangerous,
        plural(s.errors as u64, "error"),
        plural(s.bytes, "byte"),
        seconds
    )
}

/// `1 file`, `2 files`.
pub fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// The text-report lines for a torch `weights_only` answer.
pub fn render_weights_only(wo: &crate::container::weights_only::WeightsOnly) -> String {
    let mut out = String::new();
    let what = if wo.loads {
        "loads".to_string()
    } else if wo.loads_after_allowlisting {
        "fails; loads after allowlisting what it needs".to_string()
    } else {
        match wo.errors.first() {
            Some(p) => format!("fails: {}", p.message),
            None => "fails: blocked modules".to_string(),
        }
    };
    out.push_str(&format!(
        "  torch {} load(weights_only=True) [{}]: {what}\n",
        wo.torch_version, wo.container
    ));
    if let Some(py) = wo.python() {
        out.push_str(&format!("      needs {py}\n"));
    }
    if !wo.blocked.is_empty() {
        out.push_str(&format!(
            "      never allowed (blocked modules): {}\n",
            wo.blocked.join(", ")
        ));
    }
    out
}
