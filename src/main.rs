//! The `picklescan-rs` command: a thin layer over the library.

use clap::{Args, Parser, Subcommand, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use picklescan_rs::config::{self, Config};
use picklescan_rs::engine::Engine;
use picklescan_rs::internals::file::FileOptions;
use picklescan_rs::internals::walk::{self, Entry};
use picklescan_rs::policy::{self, FailOn, Mode, Policy};
use picklescan_rs::report::{self, FileReport, Gate};
use picklescan_rs::rules::RuleSet;
use picklescan_rs::{remote, serve, Limits, Scanner};
use rayon::prelude::*;
use sha2::Digest;
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
#[command(
    name = "picklescan-rs",
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Files or folders to scan (folders are walked recursively); `http://` and `https://`
    /// URLs are scanned remotely, fetching only the bytes the scan needs; `-` reads standard
    /// input.
    #[arg(required_unless_present_any = ["extract", "hf"])]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    remote: RemoteArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    format: Format,
    /// Extra rule file(s), on top of the built-in rules.
    #[arg(long = "rules", value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Skip files and folders matching this glob, in .gitignore syntax relative to each folder
    /// walked: `target/` or `/target` (that folder), `*.bin` (any depth) (repeatable).
    #[arg(long, value_name = "GLOB")]
    exclude: Vec<String>,
    /// Skip what .gitignore/.ignore files exclude (off by default: in CI, whoever writes the
    /// .gitignore could hide a committed model from the scan).
    #[arg(long)]
    gitignore: bool,
    /// Walk version-control folders (.git, .hg, .svn, .jj) too.
    #[arg(long)]
    include_vcs: bool,
    /// Exit 0 when the paths hold no file to scan. Without it, an empty folder (or one whose
    /// files are all excluded) is an error (exit 3): a wrong path in CI must not pass.
    #[arg(long)]
    allow_empty: bool,
    /// Never show a progress bar.
    #[arg(long)]
    no_progress: bool,
    /// Also list the uses the allowlist allows, as info findings naming the allow rule (to
    /// audit what a file relies on, or to write allow rules).
    #[arg(long)]
    show_allowed: bool,
    #[command(flatten)]
    policy: PolicyArgs,
    #[command(flatten)]
    extract: ExtractArgs,
}

/// Remote scanning (URLs given as paths, hub repositories).
#[derive(Debug, Args)]
struct RemoteArgs {
    /// Scan a Hugging Face repository at a revision (repeatable; endpoint from HF_ENDPOINT).
    #[arg(long = "hf", value_name = "ORG/REPO[@REVISION]")]
    hf: Vec<remote::hub::HubRef>,
    /// Bearer token for gated or private repositories (default: HF_TOKEN).
    #[arg(long, value_name = "TOKEN")]
    token: Option<String>,
    /// Bytes one remote file may cost (K, M, G suffixes); a file that needs more is suspicious.
    #[arg(long, value_name = "BYTES", default_value = "256M", value_parser = parse_size)]
    max_remote_bytes: u64,
}

/// Policy and configuration flags (the scan and `serve`).
#[derive(Debug, Args)]
struct PolicyArgs {
    /// How findings are judged: `default`; `strict` (imports on no list are dangerous);
    /// `torch-weights-only` (only torch's weights_only allowlist is safe; the report says
    /// whether torch.load(weights_only=True) would succeed and what add_safe_globals it needs).
    #[arg(long, value_name = "POLICY", value_parser = parse_mode)]
    policy: Option<Mode>,
    /// Which verdict makes the exit code non-zero: `suspicious` (default: exit 2 for suspicious
    /// files) or `dangerous` (suspicious files exit 0).
    #[arg(long, value_name = "VERDICT", value_parser = parse_fail_on)]
    fail_on: Option<FailOn>,
    /// Configuration file. Without it, `.picklescan.toml` (or `pyproject.toml` with
    /// `[tool.picklescan-rs]`) is looked for from the first path's folder upwards.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Do not look for a configuration file.
    #[arg(long, conflicts_with = "config")]
    no_config: bool,
    /// Compression ratio cap: one compressed stream, archive member or extracted tensor set may
    /// grow to this many times its input (above 64 MiB) before it is cut off as a bomb
    /// (default 100; config key `max_ratio`).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    max_ratio: Option<u64>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve an HTTP API for upload gates: POST /v1/scan?name=FILE with the file as the body.
    Serve(ServeArgs),
    /// Print a rule's documentation (e.g. `picklescan-rs rule PS101`).
    Rule {
        /// The rule id.
        id: String,
        /// Extra rule file(s), on top of the built-in rules.
        #[arg(long = "rules", value_name = "FILE")]
        rules: Vec<PathBuf>,
    },
    /// List every rule: id, action, severity, name.
    Rules {
        /// Extra rule file(s), on top of the built-in rules.
        #[arg(long = "rules", value_name = "FILE")]
        rules: Vec<PathBuf>,
    },
}

/// `picklescan-rs rule ID` and `picklescan-rs rules`.
fn rules_main(id: Option<&str>, files: &[PathBuf]) -> ExitCode {
    let mut set = RuleSet::builtin();
    for f in files {
        if let Err(e) = set.add_file(f) {
            return fail(e.to_string());
        }
    }
    let text = match id {
        None => picklescan_rs::rules::doc::rules_list(&set),
        Some(id) => match set.get(&id.to_ascii_uppercase()) {
            Some(rule) => picklescan_rs::rules::doc::rule_text(rule),
            None => return fail(format!("no rule {id} (`picklescan-rs rules` lists them)")),
        },
    };
    let _ = std::io::stdout().write_all(text.as_bytes());
    ExitCode::SUCCESS
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on (port 0: any free port, printed at start).
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    listen: std::net::SocketAddr,
    /// Append one JSON line per decision to this file.
    #[arg(long, value_name = "FILE")]
    audit_log: Option<PathBuf>,
    /// When the audit log is fsynced: `batch` (before answering; default) or `never`.
    #[arg(long, value_name = "WHEN", default_value = "batch", value_parser = parse_fsync)]
    audit_fsync: serve::audit::Fsync,
    /// Largest upload (bytes; K, M, G suffixes allowed); larger bodies get 413.
    #[arg(long, value_name = "BYTES", default_value = "8G", value_parser = parse_size)]
    max_body: u64,
    /// Scans at once (default: twice the CPUs); more requests wait for a slot.
    #[arg(long, value_name = "N")]
    max_concurrent: Option<usize>,
    /// Requests that may wait for a slot; beyond, 503.
    #[arg(long, value_name = "N", default_value_t = 1024)]
    max_queue: usize,
    /// Seconds a request may wait for a scan slot before 503.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    queue_timeout: f64,
    /// Seconds for a whole request (upload, wait, scan): 408 while uploading, 504 while scanning.
    #[arg(long, value_name = "SECS", default_value_t = 600.0)]
    timeout: f64,
    /// Seconds to wait for the next piece of a body (or for request headers) before cutting a
    /// slow client off.
    #[arg(long, value_name = "SECS", default_value_t = 30.0)]
    read_timeout: f64,
    /// Folder for upload temporary files (default: the system's).
    #[arg(long, value_name = "DIR")]
    temp_dir: Option<PathBuf>,
    /// Extra rule file(s), on top of the built-in rules.
    #[arg(long = "rules", value_name = "FILE")]
    rules: Vec<PathBuf>,
    /// Allow `{"url": …}` scans of URLs under this prefix (repeatable, e.g.
    /// `https://huggingface.co/`). Without it the server fetches nothing.
    #[arg(long = "allow-url", value_name = "PREFIX")]
    allow_url: Vec<String>,
    /// Bytes one remote file may cost (K, M, G suffixes); a file that needs more is suspicious.
    #[arg(long, value_name = "BYTES", default_value = "256M", value_parser = parse_size)]
    max_remote_bytes: u64,
    #[command(flatten)]
    policy: PolicyArgs,
}

fn parse_mode(s: &str) -> Result<Mode, String> {
    s.parse()
}
fn parse_fail_on(s: &str) -> Result<FailOn, String> {
    s.parse()
}
fn parse_fsync(s: &str) -> Result<serve::audit::Fsync, String> {
    match s {
        "batch" => Ok(serve::audit::Fsync::Batch),
        "never" => Ok(serve::audit::Fsync::Never),
        _ => Err(format!(
            "unknown fsync policy `{s}` (expected batch or never)"
        )),
    }
}
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if c.is_ascii_alphabetic() => {
            let m: u64 = match c.to_ascii_uppercase() {
                'K' => 1 << 10,
                'M' => 1 << 20,
                'G' => 1 << 30,
                'T' => 1 << 40,
                _ => return Err(format!("bad size `{s}`")),
            };
            (&t[..i], m)
        }
        _ => (t, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("bad size `{s}`"))
}

/// Rules, policy and limits from the built-ins, `--rules` files, the configuration and the
/// flags.
fn setup(
    rule_files: &[PathBuf],
    args: &PolicyArgs,
    discover_from: Option<&std::path::Path>,
) -> Result<(RuleSet, Policy, Limits), String> {
    let mut rules = RuleSet::builtin();
    for r in rule_files {
        rules.add_file(r).map_err(|e| e.to_string())?;
    }
    let config_file = match (&args.config, args.no_config) {
        (Some(f), _) => Some(f.clone()),
        (None, false) => discover_from.and_then(config::discover),
        (None, true) => None,
    };
    let config = match &config_file {
        Some(f) => {
            let c = Config::load(f).map_err(|e| format!("invalid configuration: {e}"))?;
            c.apply_rules(&mut rules)
                .map_err(|e| format!("invalid configuration: {e}"))?;
            c
        }
        None => Config::default(),
    };
    for w in rules.warnings() {
        eprintln!("picklescan-rs: warning: {w} (this allow entry has no effect)");
    }
    let policy = config.policy(args.policy, args.fail_on);
    let mut limits = Limits::default();
    if let Some(r) = args.max_ratio.or(config.max_ratio) {
        limits.max_ratio = r;
    }
    if policy.mode == Mode::TorchWeightsOnly || !policy.suppressions.is_empty() {
        rules
            .add_str("rules/policy/anomalies.toml", policy::RULES_FILE)
            .map_err(|e| e.to_string())?;
    }
    Ok((rules, policy, limits))
}

/// Safe extraction to safetensors (scan first, then rebuild tensors without running anything).
#[derive(Debug, clap::Args)]
struct ExtractArgs {
    /// Extract the tensors of PATH into a safetensors file (default: beside it, NAME.safetensors).
    /// A Hugging Face model folder (with config.json) converts with --to gguf into the GGUF
    /// llama.cpp runs (default: FOLDER.gguf beside it).
    #[arg(long = "extract", value_name = "PATH", conflicts_with = "paths")]
    extract: Option<PathBuf>,
    /// Output file (or an existing folder to write NAME.safetensors into) for --extract.
    #[arg(short = 'o', long = "output", value_name = "OUT")]
    output: Option<PathBuf>,
    /// Extract only the sub-tree under this dotted name (e.g. state_dict).
    #[arg(long, value_name = "KEY")]
    select: Option<String>,
    /// Refuse to extract a file whose scan verdict is not clean.
    #[arg(long)]
    strict: bool,
    /// Replace an existing output file.
    #[arg(long)]
    force: bool,
    /// Leave out tensors safetensors cannot hold (complex, quantized) instead of failing.
    #[arg(long)]
    skip_unsupported: bool,
    /// Do not record the input's SHA-256 in the output metadata (faster on large files).
    #[arg(long)]
    no_source_hash: bool,
    /// Output format of --extract: safetensors (default) or gguf (default output NAME.gguf).
    #[arg(long = "to", value_name = "FORMAT", value_parser = parse_output_format)]
    to: Option<picklescan_rs::extract::OutputFormat>,
    /// GGUF: convert the float tensors to TYPE (f32, f16, bf16, q8_0, q4_0, q4_1, q5_0, q5_1,
    /// q2_k, q3_k, q4_k, q5_k, q6_k); 1-D tensors stay F32. For a model folder: f32, f16
    /// (default), bf16, q8_0, or a llama-quantize mix (q2_k, q3_k_m, q4_k_s, q4_k_m, q5_k_s,
    /// q5_k_m, q6_k).
    #[arg(long, value_name = "TYPE", value_parser = parse_quant)]
    quant: Option<String>,
    /// GGUF: general.architecture (default: unknown).
    #[arg(long, value_name = "ARCH")]
    arch: Option<String>,
}

fn parse_output_format(s: &str) -> Result<picklescan_rs::extract::OutputFormat, String> {
    use picklescan_rs::extract::OutputFormat;
    match s.to_ascii_lowercase().as_str() {
        "safetensors" => Ok(OutputFormat::Safetensors),
        "gguf" => Ok(OutputFormat::Gguf),
        _ => Err(format!(
            "unknown output format '{s}' (expected safetensors or gguf)"
        )),
    }
}

/// A type or a mix name; which one applies depends on the input (file or model folder).
fn parse_quant(s: &str) -> Result<String, String> {
    if s.parse::<picklescan_rs::quant::mix::Mix>().is_ok() {
        return Ok(s.to_string());
    }
    s.parse::<picklescan_rs::quant::GgmlType>()
        .map(|_| s.to_string())
        .map_err(|e| e.to_string())
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
    match cli.command {
        Some(Command::Serve(args)) => return serve_main(args),
        Some(Command::Rule { id, rules }) => return rules_main(Some(&id), &rules),
        Some(Command::Rules { rules }) => return rules_main(None, &rules),
        None => {}
    }
    if !std::io::stdout().is_terminal() {
        colored::control::set_override(false);
    }
    if let Err(e) = check_flags(&cli) {
        return fail(e);
    }
    let discover_from = cli
        .paths
        .first()
        .or(cli.extract.extract.as_ref())
        .filter(|p| p.as_os_str() != "-")
        .map(|p| p.as_path());
    let (rules, policy, limits) = match setup(&cli.rules, &cli.policy, discover_from) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    if let Err(e) = walk::check_excludes(&cli.exclude) {
        return fail(format!("bad --exclude pattern: {e}"));
    }
    let engine = Engine::new(Scanner::new(rules, limits), policy);
    let (scanner, policy) = (&engine.scanner, &engine.policy);
    if let Some(input) = &cli.extract.extract {
        return run_extract(&engine, input, &cli);
    }
    let opts = FileOptions {
        hash: cli.format != Format::Text,
    };
    let start = Instant::now();
    let (urls, local): (Vec<PathBuf>, Vec<PathBuf>) = cli
        .paths
        .iter()
        .cloned()
        .partition(|p| p.to_str().is_some_and(remote::is_url));
    let walk_opts = walk::WalkOptions {
        exclude: cli.exclude.clone(),
        gitignore: cli.gitignore,
        include_vcs: cli.include_vcs,
    };
    let (entries, notes): (Vec<Entry>, Vec<Entry>) = walk::collect(&local, &walk_opts)
        .into_iter()
        .partition(|e| !matches!(e, Entry::Note { .. }));
    for n in &notes {
        if let Entry::Note { path, message } = n {
            eprintln!("picklescan-rs: note: {}: {message}", path.display());
        }
    }
    if entries.is_empty() && urls.is_empty() && cli.remote.hf.is_empty() && !cli.allow_empty {
        return fail(format!(
            "no file to scan in {} (empty, or everything excluded or ignored); \
             --allow-empty accepts this",
            shown_list(&local)
        ));
    }
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
    let scan_entry = |e: &Entry| {
        let r = match e {
            Entry::File(p) => engine.scan_path(p, &opts),
            Entry::Stdin => scan_stdin(&engine, &opts),
            Entry::Error { path, message } | Entry::Note { path, message } => {
                FileReport::unreadable(path.display().to_string(), message.clone())
            }
        };
        progress.inc(1);
        r
    };
    // One file needs no thread pool (starting one costs more than a small scan).
    let reports: Vec<FileReport> = if entries.len() > 1 {
        entries.par_iter().map(scan_entry).collect()
    } else {
        entries.iter().map(scan_entry).collect()
    };
    let mut reports = reports;
    if !urls.is_empty() || !cli.remote.hf.is_empty() {
        let mut ropts = remote::RemoteOptions::from_env();
        ropts.http.token = cli.remote.token.clone().or(ropts.http.token);
        ropts.max_bytes = cli.remote.max_remote_bytes;
        let urls: Vec<String> = urls
            .iter()
            .filter_map(|u| u.to_str().map(String::from))
            .collect();
        reports.extend(remote::scan_all(&engine, &urls, &cli.remote.hf, &ropts));
    }
    progress.finish_and_clear();
    // Stdout flushes at every newline; one buffer for the whole report saves a write per file.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, std::io::stdout().lock());
    let written = match cli.format {
        Format::Json => writeln!(out, "{}", report::json::render(&reports)),
        Format::Sarif => writeln!(out, "{}", report::sarif::render(&reports, &scanner.rules)),
        Format::Text => reports
            .iter()
            .try_for_each(|f| write!(out, "{}", report::text::render_file(f, &scanner.rules)))
            .and_then(|_| write!(out, "{}", report::text::render_models(&reports)))
            .and_then(|_| {
                write!(
                    out,
                    "{}",
                    report::text::render_summary(&reports, start.elapsed().as_secs_f64())
                )
            }),
    };
    // A closed pipe (`| head`) does not change the verdict.
    drop(written.and_then(|_| out.flush()));
    for unused in policy.unused_suppressions() {
        eprintln!(
            "picklescan-rs: warning: {} [{}]",
            unused.message, unused.rule
        );
    }
    ExitCode::from(exit_code(policy.gate(&reports)))
}

/// The exit code of a gate: 0 pass, 1 dangerous, 2 suspicious, 3 not read or not done.
fn exit_code(gate: Gate) -> u8 {
    match gate {
        Gate::Pass => 0,
        Gate::Dangerous => 1,
        Gate::Suspicious => 2,
        Gate::Error => 3,
    }
}

fn shown_list(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    shown.join(", ")
}

/// Flags that only mean something with others: refused rather than silently ignored.
fn check_flags(cli: &Cli) -> Result<(), String> {
    let a = &cli.extract;
    if a.extract.is_none() {
        let given: Vec<&str> = [
            (a.output.is_some(), "-o/--output"),
            (a.to.is_some(), "--to"),
            (a.select.is_some(), "--select"),
            (a.strict, "--strict"),
            (a.force, "--force"),
            (a.skip_unsupported, "--skip-unsupported"),
            (a.no_source_hash, "--no-source-hash"),
            (a.quant.is_some(), "--quant"),
            (a.arch.is_some(), "--arch"),
        ]
        .into_iter()
        .filter_map(|(set, name)| set.then_some(name))
        .collect();
        if !given.is_empty() {
            return Err(format!(
                "{} only apply to --extract (a scan writes nothing)",
                given.join(", ")
            ));
        }
        return Ok(());
    }
    if cli.format == Format::Sarif {
        return Err("--extract reports as text or JSON, not SARIF".into());
    }
    if !cli.exclude.is_empty() || cli.gitignore || cli.include_vcs || cli.allow_empty {
        return Err(
            "--exclude, --gitignore, --include-vcs and --allow-empty apply to scans, not --extract"
                .into(),
        );
    }
    Ok(())
}

/// Scan standard input (the path `-`), read to its end (bounded, see [`mmap::Input`]).
fn scan_stdin(engine: &Engine, opts: &FileOptions) -> FileReport {
    let input = match picklescan_rs::internals::mmap::Input::read_stream(std::io::stdin().lock()) {
        Ok(i) => i,
        Err(e) => return FileReport::unreadable("-".into(), format!("cannot read: {e}")),
    };
    let mut r = engine.scan(input.bytes(), "-");
    if opts.hash {
        r.sha256 = Some(picklescan_rs::internals::file::hex(&sha2::Sha256::digest(
            input.bytes(),
        )));
    }
    r
}

fn serve_main(args: ServeArgs) -> ExitCode {
    let (rules, policy, limits) = match setup(&args.rules, &args.policy, None) {
        Ok(x) => x,
        Err(e) => return fail(e),
    };
    let secs = |s: f64, what: &str| {
        if s.is_finite() && s > 0.0 {
            Ok(std::time::Duration::from_secs_f64(s))
        } else {
            Err(format!("--{what} must be a positive number of seconds"))
        }
    };
    let durations = (|| {
        Ok::<_, String>((
            secs(args.timeout, "timeout")?,
            secs(args.read_timeout, "read-timeout")?,
            secs(args.queue_timeout, "queue-timeout")?,
        ))
    })();
    let (timeout, read_timeout, queue_timeout) = match durations {
        Ok(d) => d,
        Err(e) => return fail(e),
    };
    let mut options = serve::Options {
        max_body: args.max_body,
        max_queue: args.max_queue,
        queue_timeout,
        timeout,
        read_timeout,
        header_timeout: read_timeout,
        temp_dir: args.temp_dir,
        audit_log: args.audit_log.map(|p| (p, args.audit_fsync)),
        ..serve::Options::default()
    };
    options.remote.allow = args.allow_url;
    options.remote.options = remote::RemoteOptions::from_env();
    options.remote.options.max_bytes = args.max_remote_bytes;
    if let Some(n) = args.max_concurrent {
        options.max_concurrent = n.max(1);
    }
    let engine = Engine::new(Scanner::new(rules, limits), policy);
    let app = match serve::App::new(engine, options) {
        Ok(a) => a,
        Err(serve::StartError::TempDir { path, source }) => {
            return fail(format!(
                "cannot start: --temp-dir {} cannot hold uploads: {source}",
                path.display()
            ))
        }
        Err(e) => return fail(format!("cannot start: {e}")),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return fail(format!("cannot start: {e}")),
    };
    runtime.block_on(async move {
        let listener = match tokio::net::TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => return fail(format!("cannot listen on {}: {e}", args.listen)),
        };
        if let Ok(addr) = listener.local_addr() {
            eprintln!(
                "picklescan-rs: serving on http://{addr} (rules {}, policy {})",
                &app.engine.fingerprint[..12],
                app.engine.policy.mode
            );
        }
        match serve::run(listener, app, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(format!("server error: {e}")),
        }
    })
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
}

/// `--extract`: print the scan, then what was written (or why not). The exit code carries the
/// scan's verdict even when the tensors were written (1 dangerous, 2 suspicious): extraction runs
/// nothing from the file, but `--extract x.pt && deploy` must still notice a bad file.
fn run_extract(engine: &Engine, input: &std::path::Path, cli: &Cli) -> ExitCode {
    use picklescan_rs::extract::{self, ExtractOptions};
    let a = &cli.extract;
    if input.to_str().is_some_and(remote::is_url) {
        return fail(format!(
            "--extract reads local files only, and {} is a URL: scan it in place with \
             `picklescan-rs {}`, download it, then extract the downloaded file",
            input.display(),
            input.display()
        ));
    }
    if input.as_os_str() == "-" {
        return fail("--extract needs a file, not standard input".into());
    }
    if picklescan_rs::extract::hf::is_model_folder(input) {
        return run_convert_folder(engine, input, cli);
    }
    let quant = match a
        .quant
        .as_deref()
        .map(str::parse::<picklescan_rs::quant::GgmlType>)
    {
        None => None,
        Some(Ok(t)) => Some(t),
        Some(Err(_)) => {
            return fail(format!(
            "--quant {}: quantization mixes apply to a model folder (a folder with config.json); \
                 a single file takes one type",
            a.quant.as_deref().unwrap_or_default()
        ))
        }
    };
    let opts = ExtractOptions {
        output: a.output.clone(),
        select: a.select.clone(),
        strict: a.strict,
        force: a.force,
        skip_unsupported: a.skip_unsupported,
        no_source_hash: a.no_source_hash,
        to: a.to.unwrap_or_default(),
        quant,
        arch: a.arch.clone(),
        progress: extract::Progress::default(),
    };
    if opts.to != extract::OutputFormat::Gguf && (opts.quant.is_some() || opts.arch.is_some()) {
        return fail("--quant and --arch apply to --to gguf".into());
    }
    remove_temp_files_on_signal();
    let outcome = with_progress(cli, &opts.progress, || {
        extract::extract(engine, input, &opts)
    });
    let scan_code = outcome
        .scan
        .as_ref()
        .map_or(0, |s| exit_code(engine.gate(std::slice::from_ref(s))));
    let code = match (&outcome.result, scan_code) {
        (_, 1) => 1,
        (Err(e), _) => exit_code(e.gate()).max(scan_code),
        (Ok(_), c) => c,
    };
    let mut out = std::io::stdout().lock();
    let written = if cli.format == Format::Json {
        writeln!(out, "{}", extract_json(&outcome))
    } else {
        let mut text = String::new();
        if let Some(scan) = &outcome.scan {
            text.push_str(&report::text::render_file(scan, &engine.scanner.rules));
        }
        if let Ok(w) = &outcome.result {
            text.push_str(&extract::render_written(w));
        }
        write!(out, "{text}")
    };
    drop(written.and_then(|_| out.flush()));
    if let Err(e) = &outcome.result {
        eprintln!("picklescan-rs: extraction failed: {}", extract_failure(e));
    }
    ExitCode::from(code)
}

/// `--extract FOLDER --to gguf`: scan every file of a Hugging Face model folder, then convert
/// it to a GGUF llama.cpp runs. The exit code is the folder's verdict (as for a file), or the
/// conversion's failure.
fn run_convert_folder(engine: &Engine, input: &std::path::Path, cli: &Cli) -> ExitCode {
    use picklescan_rs::extract::{self, hf, ExtractOptions, OutputFormat};
    let a = &cli.extract;
    if a.to != Some(OutputFormat::Gguf) {
        return fail(format!(
            "{} is a model folder: it converts to GGUF only (--to gguf)",
            input.display()
        ));
    }
    if a.select.is_some() || a.arch.is_some() || a.skip_unsupported {
        return fail("--select, --arch and --skip-unsupported apply to single files".into());
    }
    let target = match hf::target(a.quant.as_deref()) {
        Ok(t) => t,
        Err(e) => return fail(format!("--quant {e}")),
    };
    let opts = ExtractOptions {
        output: a.output.clone(),
        strict: a.strict,
        force: a.force,
        no_source_hash: a.no_source_hash,
        to: OutputFormat::Gguf,
        ..ExtractOptions::default()
    };
    remove_temp_files_on_signal();
    let outcome = with_progress(cli, &opts.progress, || {
        hf::convert_folder(engine, input, &opts, target)
    });
    let scan_code = exit_code(engine.gate(&outcome.scans));
    let code = match (&outcome.result, scan_code) {
        (_, 1) => 1,
        (Err(e), _) => exit_code(e.gate()).max(scan_code),
        (Ok(_), c) => c,
    };
    let single = extract::Outcome {
        scan: None,
        result: outcome.result,
    };
    let mut out = std::io::stdout().lock();
    let written = if cli.format == Format::Json {
        writeln!(out, "{}", extract_json_of(&outcome.scans, &single))
    } else {
        let mut text = String::new();
        for scan in &outcome.scans {
            text.push_str(&report::text::render_file(scan, &engine.scanner.rules));
        }
        if let Ok(w) = &single.result {
            text.push_str(&extract::render_written(w));
        }
        write!(out, "{text}")
    };
    drop(written.and_then(|_| out.flush()));
    if let Err(e) = &single.result {
        eprintln!("picklescan-rs: conversion failed: {}", extract_failure(e));
    }
    ExitCode::from(code)
}

/// An extraction error as the command line says it: with the flag that changes the outcome.
fn extract_failure(e: &picklescan_rs::extract::ExtractError) -> String {
    use picklescan_rs::extract::ExtractError as E;
    match e {
        E::NotClean { .. } => format!("{e} (--strict)"),
        E::Exists(_) => format!("{e}; use --force to replace it"),
        E::Duplicates(_) => format!("{e}: rename them or use --select"),
        E::Unsupported(_) | E::UnsupportedGguf(_) => {
            format!("{e}; use --skip-unsupported to leave them out")
        }
        E::Select { .. } => format!("--select {e}"),
        _ => e.to_string(),
    }
}

/// The `--format json` document of an extraction: the scan report's document with an
/// `extraction` object (`output`, `tensors`, … or `error`).
fn extract_json(outcome: &picklescan_rs::extract::Outcome) -> String {
    let scans: Vec<FileReport> = outcome.scan.iter().cloned().collect();
    extract_json_of(&scans, outcome)
}

/// The document of `scans` with the `extraction` object of `outcome`'s result.
fn extract_json_of(scans: &[FileReport], outcome: &picklescan_rs::extract::Outcome) -> String {
    use serde_json::{json, Value};
    let mut doc: Value = serde_json::from_str(&report::json::render(scans)).unwrap_or(Value::Null);
    let extraction = match &outcome.result {
        Ok(w) => json!({
            "written": true,
            "output": w.output.display().to_string(),
            "format": w.format,
            "bytes": w.bytes,
            "source_sha256": w.source_sha256,
            "tensors": w.tensors.iter().map(|(name, dtype, shape)| json!({
                "name": name, "dtype": format!("{dtype:?}"), "shape": shape,
            })).collect::<Vec<_>>(),
            "skipped": w.skipped,
            "dropped": w.dropped,
            "notes": w.notes,
        }),
        Err(e) => json!({ "written": false, "error": extract_failure(e) }),
    };
    if let Some(map) = doc.as_object_mut() {
        map.insert("extraction".into(), extraction);
    }
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

/// On Ctrl-C, SIGTERM or SIGHUP, remove the temporary output being written and exit 128 + the
/// signal's number, as a shell reports it. (SIGKILL cannot be caught: its temporary file,
/// `.NAME.PID.N.tmp` beside the output, stays behind.)
fn remove_temp_files_on_signal() {
    #[cfg(unix)]
    {
        use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
        if let Ok(mut signals) = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP]) {
            std::thread::spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    picklescan_rs::extract::remove_temp_files();
                    eprintln!("picklescan-rs: interrupted; nothing was written");
                    std::process::exit(128 + signal);
                }
            });
        }
    }
}

/// Run `work` with a progress bar of the bytes it writes on a terminal (unless
/// `--no-progress`), cleared when it ends.
fn with_progress<T>(
    cli: &Cli,
    progress: &picklescan_rs::extract::Progress,
    work: impl FnOnce() -> T,
) -> T {
    let bar = (!cli.no_progress && std::io::stderr().is_terminal())
        .then(|| show_progress(progress.clone()));
    let out = work();
    if let Some((bar, stop, thread)) = bar {
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let _ = thread.join();
        bar.finish_and_clear();
    }
    out
}

/// Outputs from this size on get a progress bar.
const SHOW_PROGRESS_FROM: u64 = 64 << 20;

/// A progress bar of the tensor bytes written, fed from `progress` by a thread until `stop`.
fn show_progress(
    progress: picklescan_rs::extract::Progress,
) -> (
    ProgressBar,
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::thread::JoinHandle<()>,
) {
    use std::sync::atomic::{AtomicBool, Ordering};
    // Drawn only once the output is known to be large enough to take a while.
    let bar = ProgressBar::with_draw_target(Some(0), indicatif::ProgressDrawTarget::hidden());
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {bytes}/{total_bytes} {binary_bytes_per_sec} {elapsed} (eta {eta})",
    ) {
        bar.set_style(style);
    }
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let thread = {
        let (bar, stop) = (bar.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut shown = false;
            while !stop.load(Ordering::Relaxed) {
                if !shown && progress.total() >= SHOW_PROGRESS_FROM {
                    bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
                    shown = true;
                }
                bar.set_length(progress.total());
                bar.set_position(progress.done());
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
        })
    };
    (bar, stop, thread)
}
