//! What a new user meets first: the README's example, exit codes of extraction, flags that must
//! not be ignored, walking real folders (globs, VCS folders, .gitignore, FIFOs, loops), signals.

use crate::common::{benign_pickle as benign, Asm};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_picklescan-rs"))
}

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn corpus(rel: &str) -> String {
    root()
        .join("corpus")
        .join(rel)
        .to_str()
        .unwrap()
        .to_string()
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(&p, bytes).unwrap();
    p
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    bin().current_dir(dir).args(args).output().unwrap()
}

fn run(args: &[&str]) -> Output {
    run_in(root(), args)
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn unknown() -> Vec<u8> {
    Asm::new()
        .proto(2)
        .global("mylib.model", "MyModel")
        .op(b')')
        .op(0x81)
        .stop()
        .build()
}

/// Paths of the files a JSON report lists, relative to `base`.
fn scanned(out: &str, base: &Path) -> Vec<String> {
    let v: Value = serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"));
    v["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let p = f["path"].as_str().unwrap();
            let p = Path::new(p);
            p.strip_prefix(base)
                .unwrap_or(p)
                .to_str()
                .unwrap()
                .trim_start_matches("./")
                .to_string()
        })
        .collect()
}

// ---- the README ------------------------------------------------------------------------------

/// The README's first example is run as written, and prints what the README shows (but for the
/// time in the summary line).
#[test]
fn readme_first_example_runs_as_shown() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let block = readme
        .split("```")
        .find(|b| b.trim_start().starts_with("$ picklescan-rs"))
        .expect("a ```$ picklescan-rs``` example in README.md");
    let mut lines = block.trim().lines();
    let command = lines.next().unwrap().trim_start_matches("$ ");
    let expected: Vec<&str> = lines.collect();
    let args: Vec<&str> = command.split_whitespace().skip(1).collect();
    let o = run(&args);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    let got = stdout(&o);
    let got: Vec<&str> = got.lines().collect();
    assert_eq!(
        got.len(),
        expected.len(),
        "{got:#?}\nvs README\n{expected:#?}"
    );
    // The summary line ends with the time taken.
    let untimed = |s: &str| match s.rfind(" in ") {
        Some(i) if s.starts_with(|c: char| c.is_ascii_digit()) => s[..i].to_string(),
        _ => s.to_string(),
    };
    for (g, e) in got.iter().zip(&expected) {
        assert_eq!(untimed(g), untimed(e));
    }
}

#[test]
fn a_missing_path_is_an_error_not_a_suspicious_file() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("nope.pkl");
    let o = run(&[missing.to_str().unwrap()]);
    assert_eq!(code(&o), 3);
    let out = stdout(&o);
    assert!(out.contains("nope.pkl: error"), "{out}");
    assert!(!out.contains("suspicious ("), "{out}");
    assert!(out.contains("0 suspicious, 0 dangerous, 1 error;"), "{out}");
    let o = run(&["--format", "json", missing.to_str().unwrap()]);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["summary"]["errors"], 1);
    assert_eq!(v["summary"]["suspicious"], 0);
}

// ---- extraction ------------------------------------------------------------------------------

#[test]
fn extraction_exit_code_carries_the_scan_verdict() {
    let d = tempfile::tempdir().unwrap();
    // Dangerous: the weights are written (rescuing them is legitimate) but the exit code is 1.
    let out = d.path().join("evil.safetensors");
    let o = run(&[
        "--extract",
        &corpus("malicious/reduce_posix_system_proto2.pkl"),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1, "{}{}", stdout(&o), stderr(&o));
    assert!(out.exists());
    // --strict refuses to write, with the same exit code.
    let strict = d.path().join("strict.safetensors");
    let o = run(&[
        "--extract",
        &corpus("malicious/reduce_posix_system_proto2.pkl"),
        "--strict",
        "-o",
        strict.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 1);
    assert!(!strict.exists());
    // Suspicious: 2, or 0 with --fail-on dangerous.
    let sus = write(d.path(), "sus.pkl", &unknown());
    let o = run(&["--extract", sus.to_str().unwrap(), "--no-config"]);
    assert_eq!(code(&o), 2, "{}{}", stdout(&o), stderr(&o));
    assert!(d.path().join("sus.safetensors").exists());
    let o = run(&[
        "--extract",
        sus.to_str().unwrap(),
        "--force",
        "--fail-on",
        "dangerous",
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    // Clean: 0.
    let o = run(&[
        "--extract",
        &corpus("benign/array_f32.npy"),
        "-o",
        d.path().join("a.safetensors").to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("extracted 1 tensor ("),
        "{}",
        stdout(&o)
    );
}

#[test]
fn extraction_into_a_folder_names_the_file_there() {
    let d = tempfile::tempdir().unwrap();
    for extra in [&[][..], &["--force"][..]] {
        let mut args = vec![
            "--extract".to_string(),
            corpus("benign/array_f32.npy"),
            "-o".into(),
            d.path().to_str().unwrap().into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let o = run(&args);
        assert_eq!(code(&o), 0, "{extra:?}: {}{}", stdout(&o), stderr(&o));
        assert!(d.path().join("array_f32.safetensors").is_file());
    }
}

#[test]
fn extraction_reports_json_when_asked() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("a.safetensors");
    let o = run(&[
        "--format",
        "json",
        "--extract",
        &corpus("benign/array_f32.npy"),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["files"][0]["verdict"], "clean");
    assert_eq!(v["extraction"]["written"], true);
    assert_eq!(v["extraction"]["output"], out.to_str().unwrap());
    assert_eq!(v["extraction"]["tensors"].as_array().unwrap().len(), 1);
    // A failure is JSON too.
    let o = run(&[
        "--format",
        "json",
        "--extract",
        &corpus("benign/array_f32.npy"),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert_eq!(code(&o), 3);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["extraction"]["written"], false);
    assert!(v["extraction"]["error"]
        .as_str()
        .unwrap()
        .contains("exists"));
}

// ---- flags that must not be ignored ----------------------------------------------------------

#[test]
fn extraction_flags_without_extract_are_usage_errors() {
    let path = corpus("benign/array_f32.npy");
    for flags in [
        &["-o", "x.safetensors"][..],
        &["--to", "gguf"],
        &["--strict"],
        &["--force"],
        &["--select", "state_dict"],
    ] {
        let mut args = flags.to_vec();
        args.push(&path);
        let o = run(&args);
        assert_eq!(code(&o), 3, "{flags:?}: {}", stdout(&o));
        assert!(stderr(&o).contains("--extract"), "{}", stderr(&o));
        assert!(stdout(&o).is_empty());
    }
}

#[test]
fn extracting_a_url_says_urls_cannot_be_extracted() {
    let o = run(&["--extract", "https://example.invalid/model.pt"]);
    assert_eq!(code(&o), 3);
    assert!(stderr(&o).contains("is a URL"), "{}", stderr(&o));
}

#[test]
fn nothing_to_scan_is_an_error_unless_allowed() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().to_str().unwrap();
    let o = run(&[p]);
    assert_eq!(code(&o), 3, "{}", stdout(&o));
    assert!(stderr(&o).contains("no file to scan"), "{}", stderr(&o));
    assert_eq!(code(&run(&["--allow-empty", p])), 0);
    // Everything excluded is the same mistake.
    write(d.path(), "m/a.pkl", &benign());
    assert_eq!(code(&run(&[p])), 0);
    assert_eq!(code(&run(&["--exclude", "*.pkl", p])), 3);
    assert_eq!(code(&run(&["--exclude", "*.pkl", "--allow-empty", p])), 0);
}

#[test]
fn standard_input_is_scanned_as_dash() {
    let mut child = bin()
        .args(["-", "--format", "json"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let data = std::fs::read(corpus("malicious/reduce_posix_system_proto2.pkl")).unwrap();
    use std::io::Write;
    child.stdin.take().unwrap().write_all(&data).unwrap();
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 1);
    let v: Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["files"][0]["path"], "-");
    assert_eq!(v["files"][0]["verdict"], "dangerous");
}

// ---- walking ---------------------------------------------------------------------------------

/// A small project: models, build output, a VCS folder, a .gitignore.
fn project() -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    write(p, "models/ok.pkl", &benign());
    write(p, "target/debug/build/x.pkl", &unknown());
    write(p, "src/target/keep.pkl", &benign());
    write(p, ".git/objects/aa/evil.pkl", &unknown());
    write(p, ".hidden.pkl", &benign());
    d
}

#[test]
fn exclude_globs_are_relative_to_the_folder_walked() {
    let d = project();
    // Scanning `.` from inside the project, as docs/ci.md does.
    let o = run_in(
        d.path(),
        &["--format", "json", "--exclude", "target/**", "."],
    );
    let files = scanned(&stdout(&o), d.path());
    assert_eq!(
        files,
        ["./.hidden.pkl", "models/ok.pkl", "src/target/keep.pkl"]
            .map(|s| s.trim_start_matches("./")),
        "{}",
        stderr(&o)
    );
    assert_eq!(code(&o), 0);
    // The same from outside, naming the folder.
    let o = run(&[
        "--format",
        "json",
        "--exclude",
        "target/**",
        d.path().to_str().unwrap(),
    ]);
    assert_eq!(scanned(&stdout(&o), d.path()).len(), 3, "{}", stdout(&o));
    // A glob without a slash matches at any depth; `./x` means the walked folder's x.
    let o = run_in(d.path(), &["--format", "json", "--exclude", "target", "."]);
    assert_eq!(
        scanned(&stdout(&o), d.path()),
        [".hidden.pkl", "models/ok.pkl"]
    );
    let o = run_in(
        d.path(),
        &["--format", "json", "--exclude", "./target", "."],
    );
    assert_eq!(scanned(&stdout(&o), d.path()).len(), 3);
}

#[test]
fn vcs_folders_are_skipped_and_gitignore_only_on_request() {
    let d = project();
    let git = Command::new("git")
        .args(["init", "-q"])
        .current_dir(d.path())
        .status();
    if !git.is_ok_and(|s| s.success()) {
        eprintln!("git is not available: skipped");
        return;
    }
    write(d.path(), ".gitignore", b"/target/\n");
    // By default .gitignore hides nothing (a change could list the model it adds), and
    // .git is not walked.
    let o = run_in(d.path(), &["--format", "json", "."]);
    let all = [
        ".gitignore",
        ".hidden.pkl",
        "models/ok.pkl",
        "src/target/keep.pkl",
        "target/debug/build/x.pkl",
    ];
    assert_eq!(scanned(&stdout(&o), d.path()), all);
    assert_eq!(code(&o), 2, "{}", stdout(&o));
    let o = run_in(d.path(), &["--format", "json", "--gitignore", "."]);
    assert_eq!(
        scanned(&stdout(&o), d.path()),
        [
            ".gitignore",
            ".hidden.pkl",
            "models/ok.pkl",
            "src/target/keep.pkl"
        ]
    );
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let o = run_in(d.path(), &["--format", "json", "--include-vcs", "."]);
    let files = scanned(&stdout(&o), d.path());
    assert!(
        files.iter().any(|f| f.starts_with(".git/objects/aa/")),
        "{files:?}"
    );
}

/// A model that git tracks is in every checkout, whatever .gitignore says: listing it there
/// must not hide it from the default scan.
#[test]
fn a_committed_model_listed_in_gitignore_is_still_scanned() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path();
    let git = |args: &[&str]| {
        Command::new("git")
            .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
            .args(args)
            .current_dir(p)
            .status()
            .is_ok_and(|s| s.success())
    };
    if !git(&["init", "-q"]) {
        eprintln!("git is not available: skipped");
        return;
    }
    std::fs::copy(
        corpus("malicious/reduce_posix_system_proto2.pkl"),
        p.join("model.pkl"),
    )
    .unwrap();
    write(p, ".gitignore", b"model.pkl\n");
    assert!(git(&["add", "-f", "model.pkl", ".gitignore"]));
    assert!(git(&["commit", "-qm", "x"]));
    let o = run_in(p, &["."]);
    assert_eq!(code(&o), 1, "{}", stdout(&o));
}

#[cfg(unix)]
#[test]
fn fifos_in_folders_are_skipped_with_a_note() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "a.pkl", &benign());
    let fifo = d.path().join("pipe.pkl");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let mut child = bin()
        .arg(d.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("the scan hung on a FIFO");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
    assert!(
        stderr(&o).contains("pipe.pkl: skipped: a FIFO"),
        "{}",
        stderr(&o)
    );
    assert!(stdout(&o).starts_with(&format!("{}: clean", d.path().join("a.pkl").display())));
}

#[cfg(target_os = "linux")]
#[test]
fn a_named_endless_device_is_read_only_so_far() {
    let o = run(&["/dev/zero"]);
    assert_eq!(code(&o), 3);
    assert!(stdout(&o).contains("not a regular file"), "{}", stdout(&o));
}

#[cfg(unix)]
#[test]
fn a_symlink_loop_is_a_note_not_an_error() {
    let d = tempfile::tempdir().unwrap();
    write(d.path(), "x/ok.pkl", &benign());
    std::os::unix::fs::symlink(d.path().join("x"), d.path().join("x/loop")).unwrap();
    let o = run(&["--format", "json", d.path().to_str().unwrap()]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert!(stderr(&o).contains("symbolic link loop"), "{}", stderr(&o));
    assert_eq!(scanned(&stdout(&o), d.path()), ["x/ok.pkl"]);
}

// ---- long extractions: progress and interruption ---------------------------------------------

/// A `.npy` of `mib` MiB of float32 zeros, sparse on disk. Extracting it takes seconds in a
/// debug build (the input is hashed), long enough to watch.
fn big_npy(dir: &Path, mib: u64) -> PathBuf {
    let n = (mib << 20) / 4;
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': ({n},), }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY\x01\x00".to_vec();
    bytes.extend((header.len() as u16).to_le_bytes());
    bytes.extend(header.as_bytes());
    let p = dir.join("big.npy");
    std::fs::write(&p, &bytes).unwrap();
    let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
    f.set_len(bytes.len() as u64 + (mib << 20)).unwrap();
    p
}

fn temp_files(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[cfg(unix)]
#[test]
fn an_interrupted_extraction_leaves_no_temporary_file() {
    let d = tempfile::tempdir().unwrap();
    let input = big_npy(d.path(), 256);
    let out = d.path().join("out");
    std::fs::create_dir(&out).unwrap();
    for (signal, expected) in [("TERM", 143), ("INT", 130)] {
        // The signal may arrive after the extraction has finished (a fast disk, a busy
        // machine): then the output is complete and the attempt is made again.
        let mut interrupted = false;
        for _attempt in 0..5 {
            let mut child = bin()
                .args(["--extract", input.to_str().unwrap(), "-o"])
                .arg(out.join("big.safetensors"))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            let t = Instant::now();
            while temp_files(&out).is_empty() && child.try_wait().unwrap().is_none() {
                assert!(t.elapsed() < Duration::from_secs(60));
                std::thread::sleep(Duration::from_millis(5));
            }
            let kill = Command::new("kill")
                .args([&format!("-{signal}"), &child.id().to_string()])
                .status()
                .unwrap();
            let o = child.wait_with_output().unwrap();
            assert_eq!(temp_files(&out), Vec::<String>::new(), "SIG{signal}");
            if o.status.code() == Some(0) {
                assert!(out.join("big.safetensors").exists());
                std::fs::remove_file(out.join("big.safetensors")).unwrap();
                continue;
            }
            assert!(kill.success());
            assert_eq!(o.status.code(), Some(expected), "{}", stderr(&o));
            assert!(!out.join("big.safetensors").exists());
            interrupted = true;
            break;
        }
        assert!(
            interrupted,
            "SIG{signal} never arrived during an extraction"
        );
    }
}

/// On a terminal a long extraction shows a progress bar; `--no-progress` hides it. `script`
/// gives the command a terminal.
#[cfg(target_os = "linux")]
#[test]
fn a_long_extraction_shows_progress_on_a_terminal() {
    if Command::new("script").arg("--version").output().is_err() {
        eprintln!("`script` is not available: skipped");
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let input = big_npy(d.path(), 128);
    for (flag, shown) in [("", true), ("--no-progress", false)] {
        let cmd = format!(
            "{} --extract {} -o {} --force {flag}",
            env!("CARGO_BIN_EXE_picklescan-rs"),
            input.display(),
            d.path().join("o.safetensors").display()
        );
        let o = Command::new("script")
            .args(["-qec", &cmd, "/dev/null"])
            .output()
            .unwrap();
        let text = stdout(&o);
        assert_eq!(code(&o), 0, "{text}");
        assert!(text.contains("extracted 1 tensor"), "{text}");
        assert_eq!(text.contains("/128.00 MiB"), shown, "{flag}: {text}");
    }
}

// ---- the ratio cap ---------------------------------------------------------------------------

/// What `joblib.dump(np.zeros((4000, 4000)), f, compress=3)` writes: a zlib stream of a pickle
/// holding a NumpyArrayWrapper, then the array's 128 MB of zeros inline.
fn joblib_zeros() -> Vec<u8> {
    let n: u32 = 4000 * 4000;
    let mut v = vec![0x80, 0x04];
    v.extend_from_slice(
        b"\x8c\x13joblib.numpy_pickle\x94\x8c\x11NumpyArrayWrapper\x94\x93\x94)\x81\x94}\x94(",
    );
    v.extend_from_slice(b"\x8c\x05shape\x94J");
    v.extend(n.to_le_bytes());
    v.extend_from_slice(b"\x85\x94\x8c\x05order\x94\x8c\x01C\x94\x8c\x05dtype\x94");
    v.extend_from_slice(b"\x8c\x05numpy\x94\x8c\x05dtype\x94\x93\x94\x8c\x02f8\x94\x89\x88\x87\x94R\x94(K\x03\x8c\x01<\x94NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00t\x94b");
    v.extend_from_slice(b"\x8c\x1bnumpy_array_alignment_bytes\x94K\x10u");
    v.push(b'b');
    let pad = 16 - ((v.len() + 1) % 16);
    v.push(pad as u8);
    v.extend(vec![0xffu8; pad]);
    v.resize(v.len() + n as usize * 8, 0);
    v.push(b'.');
    crate::common::compress("zlib", &v)
}

#[test]
fn the_ratio_cap_says_so_and_can_be_raised() {
    let d = tempfile::tempdir().unwrap();
    let f = write(d.path(), "zeros.joblib", &joblib_zeros());
    let p = f.to_str().unwrap();
    let o = run(&["--no-config", p]);
    let out = stdout(&o);
    assert_eq!(code(&o), 2, "{out}");
    assert!(out.contains("ratio cap 100×"), "{out}");
    assert!(out.contains("--max-ratio"), "{out}");
    // The truncation that follows is the cap's, not the file's.
    assert!(out.contains("cut the stream, not the file"), "{out}");
    // Raised from the command line, or from the configuration.
    let o = run(&["--no-config", "--max-ratio", "2000", p]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    let cfg = write(d.path(), "cfg.toml", b"max_ratio = 2000\n");
    let o = run(&["--config", cfg.to_str().unwrap(), p]);
    assert_eq!(code(&o), 0, "{}", stdout(&o));
    assert_eq!(code(&run(&["--max-ratio", "0", p])), 3);
    // Extraction has the same cap.
    let out_file = d.path().join("z.safetensors");
    let o = run(&["--extract", p, "-o", out_file.to_str().unwrap()]);
    assert_eq!(code(&o), 3, "{}", stdout(&o));
    assert!(stderr(&o).contains("ratio cap"), "{}", stderr(&o));
    let o = run(&[
        "--extract",
        p,
        "-o",
        out_file.to_str().unwrap(),
        "--max-ratio",
        "2000",
    ]);
    assert_eq!(code(&o), 0, "{}{}", stdout(&o), stderr(&o));
}

// ---- smaller things --------------------------------------------------------------------------

/// Names of the tensors in a safetensors file.
fn safetensors_names(path: &Path) -> Vec<String> {
    let b = std::fs::read(path).unwrap();
    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
    let header: Value = serde_json::from_slice(&b[8..8 + n]).unwrap();
    let mut names: Vec<String> = header
        .as_object()
        .unwrap()
        .keys()
        .filter(|k| *k != "__metadata__")
        .cloned()
        .collect();
    names.sort();
    names
}

#[test]
fn a_whole_module_is_extracted_under_its_state_dict_names() {
    let d = tempfile::tempdir().unwrap();
    let out = d.path().join("m.safetensors");
    let o = run(&[
        "--extract",
        &corpus("benign/full_module_linear.pt"),
        "-o",
        out.to_str().unwrap(),
    ]);
    assert!(out.exists(), "{}{}", stdout(&o), stderr(&o));
    // torch.nn.Linear(3, 2).state_dict().keys()
    assert_eq!(safetensors_names(&out), ["bias", "weight"]);
}

#[test]
fn a_bad_suppression_glob_is_reported_where_it_is_written() {
    let d = tempfile::tempdir().unwrap();
    let cfg = write(
        d.path(),
        ".picklescan.toml",
        b"policy = \"default\"\n\n[[suppress]]\nrule = \"PS001\"\npaths = [\"ok/**\", \"a/[b\"]\n",
    );
    let o = run(&[
        "--config",
        cfg.to_str().unwrap(),
        &corpus("benign/array_f32.npy"),
    ]);
    assert_eq!(code(&o), 3);
    assert!(
        stderr(&o).contains(".picklescan.toml:5:19: bad path glob `a/[b`"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn serve_checks_its_temp_dir_at_start() {
    let mut child = bin()
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(["--temp-dir", "/nonexistent/picklescan"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let t = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > Duration::from_secs(10) {
            let _ = child.kill();
            panic!("serve started with a --temp-dir that does not exist");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let o = child.wait_with_output().unwrap();
    assert_eq!(code(&o), 3);
    let err = stderr(&o);
    assert!(err.contains("--temp-dir /nonexistent/picklescan"), "{err}");
}

/// One HTTP/1.1 request; the whole answer.
fn http(addr: &str, request: &str) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s.write_all(request.as_bytes()).unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    out
}

#[test]
fn serve_counts_unknown_routes_and_methods_as_rejected() {
    use std::io::BufRead;
    let mut child = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--no-config"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    err.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_string();
    let close = "Connection: close\r\nHost: x\r\n\r\n";
    let a = http(&addr, &format!("GET /nope HTTP/1.1\r\n{close}"));
    let b = http(&addr, &format!("GET /v1/scan HTTP/1.1\r\n{close}"));
    let m = http(&addr, &format!("GET /metrics HTTP/1.1\r\n{close}"));
    let _ = child.kill();
    let _ = child.wait();
    assert!(a.starts_with("HTTP/1.1 404"), "{a}");
    assert!(b.starts_with("HTTP/1.1 405"), "{b}");
    assert!(
        m.contains("picklescan_rejected_total{status=\"404\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("picklescan_rejected_total{status=\"405\"} 1"),
        "{m}"
    );
}

// ---- toolchain -------------------------------------------------------------------------------

/// `(1, 89)` from `"1.89"` or `"1.89.0"`.
fn version(s: &str) -> (u32, u32) {
    let mut it = s.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    (it.next().unwrap_or(0), it.next().unwrap_or(0))
}

fn rust_version_of(manifest: &str) -> Option<(u32, u32)> {
    manifest
        .lines()
        .find_map(|l| l.trim().strip_prefix("rust-version"))
        .and_then(|r| r.split('"').nth(1))
        .map(version)
}

/// The `rust-version` in Cargo.toml is at least what every crate in Cargo.lock asks for (their
/// manifests are in cargo's registry once the tests are built), and the README says the same.
#[test]
fn the_declared_rust_version_covers_the_locked_crates() {
    let ours = rust_version_of(&std::fs::read_to_string(root().join("Cargo.toml")).unwrap())
        .expect("rust-version in Cargo.toml");
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).unwrap();
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"));
    let indexes: Vec<PathBuf> = std::fs::read_dir(home.join("registry/src"))
        .map(|r| r.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    let mut checked = 0;
    let mut too_new = Vec::new();
    let mut name = "";
    for line in lock.lines() {
        if let Some(n) = line.strip_prefix("name = ") {
            name = n.trim_matches('"');
        } else if let Some(v) = line.strip_prefix("version = ") {
            let dir = format!("{name}-{}", v.trim_matches('"'));
            let Some(text) = indexes
                .iter()
                .find_map(|i| std::fs::read_to_string(i.join(&dir).join("Cargo.toml")).ok())
            else {
                continue;
            };
            checked += 1;
            if let Some(needed) = rust_version_of(&text) {
                if needed > ours {
                    too_new.push(format!("{dir} needs {}.{}", needed.0, needed.1));
                }
            }
        }
    }
    assert!(
        checked > 100,
        "only {checked} locked crates found in the registry"
    );
    assert!(
        too_new.is_empty(),
        "rust-version {ours:?} is too old: {too_new:?}"
    );
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("Rust {}.{} or newer", ours.0, ours.1)),
        "the README states another minimum Rust version"
    );
}

/// Every documented cargo command that resolves dependencies uses the lock file.
#[test]
fn documented_cargo_commands_use_the_lock_file() {
    let mut missing = Vec::new();
    for doc in [
        "README.md",
        "docs/ci.md",
        "CONTRIBUTING.md",
        "Dockerfile",
        "action.yml",
    ] {
        let Ok(text) = std::fs::read_to_string(root().join(doc)) else {
            continue;
        };
        for line in text.lines() {
            // A command line, in a shell block, a YAML step or a Dockerfile.
            let mut l = line.trim();
            for prefix in ["- ", "run: ", "RUN ", "$ "] {
                l = l.strip_prefix(prefix).unwrap_or(l).trim_start();
            }
            let resolves = ["cargo install", "cargo build", "cargo test", "cargo run"]
                .iter()
                .any(|c| l.starts_with(c));
            if resolves && !l.contains("--locked") {
                missing.push(format!("{doc}: {l}"));
            }
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}
