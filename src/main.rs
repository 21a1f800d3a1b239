//! The `picklescan-rs` command: a thin layer over the library.

use clap::{Parser, ValueEnum};
use picklescan_rs::file::{scan_path, FileOptions};
use picklescan_rs::report::{self, FileReport};
use picklescan_rs::rules::RuleSet;
use picklescan_rs::{Limits, Scanner};
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// Scan pickle-based model files (PyTorch, joblib, numpy, raw pickle) without executing them.
///
/// Exit codes: 0 all clean, 1 something dangerous, 2 something suspicious (nothing dangerous),
/// 3 usage or I/O error.
#[derive(Debug, Parser)]
#[command(name = "picklescan-rs", version)]
struct Cli {
    /// Files to scan.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Extra rule file(s) to load on top of the built-in rules.
    #[arg(long = "rules", value_name = "FILE")]
    rules: Vec<PathBuf>,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 3 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    if !std::io::stdout().is_terminal() {
        colored::control::set_override(false);
    }
    let mut rules = RuleSet::builtin();
    for r in &cli.rules {
        if let Err(e) = rules.add_file(r) {
            eprintln!("picklescan-rs: {e}");
            return ExitCode::from(3);
        }
    }
    let scanner = Scanner::new(rules, Limits::default());
    let opts = FileOptions {
        hash: cli.format != Format::Text,
    };
    let start = Instant::now();
    let reports: Vec<FileReport> = cli
        .paths
        .iter()
        .map(|p| scan_path(&scanner, p, &opts))
        .collect();
    let mut out = std::io::stdout().lock();
    let written = match cli.format {
        Format::Json => writeln!(out, "{}", report::json::render(&reports)),
        Format::Text => {
            let mut r = Ok(());
            for f in &reports {
                r = r.and_then(|_| write!(out, "{}", report::text::render_file(f)));
            }
            r.and_then(|_| {
                write!(
                    out,
                    "{}",
                    report::text::render_summary(&reports, start.elapsed().as_secs_f64())
                )
            })
        }
    };
    // A closed pipe (`| head`) is not an error of the scan.
    let _ = written;
    ExitCode::from(report::exit_code(&reports) as u8)
}
