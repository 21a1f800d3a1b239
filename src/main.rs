//! The `picklescan-rs` command: a thin layer over the library.

use clap::{Parser, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use picklescan_rs::file::{scan_path, FileOptions};
use picklescan_rs::report::{self, FileReport};
use picklescan_rs::rules::RuleSet;
use picklescan_rs::walk::{self, Entry};
use picklescan_rs::{Limits, Scanner};
use rayon::prelude::*;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    Text,
    Json,
    Sarif,
}

/// Scan pickle-based model files (PyTorch, joblib, numpy, raw pickle) without executing them.
///
/// Exit codes: 0 all clean, 1 something dangerous, 2 something suspicious (nothing dangerous),
/// 3 usage or I/O error. Over many files: 1, then 3, then 2, then 0.
#[derive(Debug, Parser)]
#[command(name = "picklescan-rs", version)]
struct Cli {
    /// Files or folders to scan (folders are walked recursively).
    #[arg(required_unless_present = "extract")]
    paths: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Extra rule file(s), on top of the built-in rules.
    #[arg(long = "rules", value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Skip files and folders whose path or name matches this glob (repeatable).
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,
    #[command(flatten)]
    extract: ExtractArgs,
}

/// Safe extraction to safetensors (scan first, then rebuild tensors without running anything).
#[derive(Debug, clap::Args)]
struct ExtractArgs {
    /// Extract the tensors of PATH into a safetensors file (default: beside it, NAME.safetensors).
    #[arg(long = "extract", value_name = "PATH", conflicts_with = "paths")]
    extract: Option<PathBuf>,
    /// Output file for --extract.
    #[arg(short = 'o', long = "output", value_name = "OUT", requires = "extract")]
    output: Option<PathBuf>,
    /// Extract only the sub-tree under this dotted name (e.g. state_dict).
    #[arg(long, value_name = "KEY", requires = "extract")]
    select: Option<String>,
    /// Refuse to extract a file whose scan verdict is not clean.
    #[arg(long, requires = "extract")]
    strict: bool,
    /// Replace an existing output file.
    #[arg(long, requires = "extract")]
    force: bool,
    /// Leave out tensors safetensors cannot hold (complex, quantized) instead of failing.
    #[arg(long, requires = "extract")]
    skip_unsupported: bool,
    /// Do not record the input's SHA-256 in the output metadata (faster on large files).
    #[arg(long, requires = "extract")]
    no_source_hash: bool,
}

fn fail(message: String) -> ExitCode {
    eprintln!("picklescan-rs: {message}");
    ExitCode::from(3)
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
            return fail(e.to_string());
        }
    }
    let exclude = match walk::exclude_set(&cli.exclude) {
        Ok(s) => s,
        Err(e) => return fail(format!("bad --exclude pattern: {e}")),
    };
    let scanner = Scanner::new(rules, Limits::default());
    if let Some(input) = &cli.extract.extract {
        return run_extract(&scanner, input, &cli.extract);
    }
    let opts = FileOptions {
        hash: cli.format != Format::Text,
    };
    let start = Instant::now();
    let entries = walk::collect(&cli.paths, &exclude);
    let progress = if !cli.no_progress && std::io::stderr().is_terminal() && entries.len() > 50 {
        let bar = ProgressBar::new(entries.len() as u64);
        if let Ok(style) =
            ProgressStyle::with_template("{bar:40} {pos}/{len} files {elapsed} {wide_msg}")
        {
            bar.set_style(style);
        }
        bar
    } else {
        ProgressBar::hidden()
    };
    let reports: Vec<FileReport> = entries
        .par_iter()
        .map(|e| {
            let r = match e {
                Entry::File(p) => scan_path(&scanner, p, &opts),
                Entry::Error { path, message } => {
                    FileReport::unreadable(path.display().to_string(), message.clone())
                }
            };
            progress.inc(1);
            r
        })
        .collect();
    progress.finish_and_clear();
    let mut out = std::io::stdout().lock();
    let written = match cli.format {
        Format::Json => writeln!(out, "{}", report::json::render(&reports)),
        Format::Sarif => writeln!(out, "{}", report::sarif::render(&reports, &scanner.rules)),
        Format::Text => reports
            .iter()
            .try_for_each(|f| write!(out, "{}", report::text::render_file(f)))
            .and_then(|_| {
                write!(
                    out,
                    "{}",
                    report::text::render_summary(&reports, start.elapsed().as_secs_f64())
                )
            }),
    };
    // A closed pipe (`| head`) does not change the verdict.
    drop(written);
    ExitCode::from(report::exit_code(&reports) as u8)
}

/// `--extract`: print the scan, then what was written (or why not).
fn run_extract(scanner: &Scanner, input: &std::path::Path, a: &ExtractArgs) -> ExitCode {
    use picklescan_rs::extract::{self, ExtractOptions};
    let opts = ExtractOptions {
        output: a.output.clone(),
        select: a.select.clone(),
        strict: a.strict,
        force: a.force,
        skip_unsupported: a.skip_unsupported,
        no_source_hash: a.no_source_hash,
    };
    let outcome = extract::extract(scanner, input, &opts);
    if let Some(scan) = &outcome.scan {
        print!("{}", report::text::render_file(scan));
    }
    match &outcome.result {
        Ok(w) => print!("{}", extract::render_written(w)),
        Err(e) => eprintln!("picklescan-rs: extraction failed: {e}"),
    }
    ExitCode::from(outcome.exit_code() as u8)
}
