//! The human-readable report, coloured on a terminal.

use super::json::Summary;
use super::FileReport;
use crate::finding::{Severity, Verdict};
use colored::Colorize;
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

/// One file's report as text.
pub fn render_file(f: &FileReport) -> String {
    let mut out = String::new();
    if f.is_not_a_model() && f.findings.is_empty() && f.error.is_none() {
        let what = f.format.split_once(':').map_or("", |(_, w)| w);
        let _ = writeln!(out, "{}: {} ({what})", f.path, "not a model".dimmed());
        return out;
    }
    let _ = writeln!(
        out,
        "{}: {} ({})",
        f.path,
        verdict_word(f.verdict),
        f.format
    );
    if let Some(e) = &f.error {
        let _ = writeln!(out, "  error: {e}");
    }
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
        let _ = writeln!(
            out,
            "  [{}] {} {}{} ({}){}",
            severity_word(x.severity),
            x.rule.bold(),
            x.usage.as_str(),
            what,
            x.message,
            place
        );
        if let Some(c) = &x.call {
            let _ = writeln!(out, "      {}", c.cyan());
        }
    }
    if let Some(wo) = &f.torch_weights_only {
        out.push_str(&crate::policy::render_weights_only(wo));
    }
    out
}

/// The closing summary line.
pub fn render_summary(files: &[FileReport], seconds: f64) -> String {
    let s = Summary::of(files);
    format!(
        "{} files, {} clean ({} not models), {} suspicious, {} dangerous, {} errors; {} bytes in {:.3}s\n",
        s.files, s.clean, s.not_models, s.suspicious, s.dangerous, s.errors, s.bytes, seconds
    )
}
