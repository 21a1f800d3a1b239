//! Scanning one file on disk: map it, recognise its format by content, scan every pickle a loader
//! would run, and hash it when asked.

use crate::container;
use crate::mmap::Input;
use crate::report::FileReport;
use crate::scan::Scanner;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Options for scanning files.
#[derive(Debug, Clone, Default)]
pub struct FileOptions {
    /// Compute each file's SHA-256 (JSON and SARIF reports carry it). Off for text output:
    /// hashing reads every byte, which a scan of a large checkpoint otherwise never does.
    pub hash: bool,
}

/// Scan one file. A file that cannot be opened or read gets a report with `error` set (exit
/// code 3), never a clean one. The file is opened read-only and never modified.
pub fn scan_path(scanner: &Scanner, path: &Path, opts: &FileOptions) -> FileReport {
    match Input::open(path) {
        Ok(input) => scan_input(scanner, &input, path, opts),
        Err(e) => FileReport::unreadable(path.display().to_string(), format!("cannot read: {e}")),
    }
}

/// Scan the already opened content of the file at `path` (its name and folder matter: model
/// formats are recognised by name too, companion files are found beside it).
pub fn scan_input(scanner: &Scanner, input: &Input, path: &Path, opts: &FileOptions) -> FileReport {
    let shown = path.display().to_string();
    let name = path.file_name().and_then(|n| n.to_str());
    let dir = path.parent().map(|d| {
        if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        }
    });
    let container::FileScan {
        scanned,
        companions,
        weights_only,
        ..
    } = container::scan_file(scanner, input, name, dir);
    let mut findings = scanned.findings;
    if !companions.is_empty() {
        scan_companions(
            scanner,
            dir.unwrap_or(Path::new(".")),
            &companions,
            &mut findings,
        );
    }
    let mut report = FileReport::scanned(shown, input.len() as u64, scanned.format, findings);
    report.torch_weights_only = weights_only;
    if opts.hash {
        report.sha256 = Some(hex(&Sha256::digest(input.bytes())));
    }
    report
}

/// Scan the companion files a joblib < 0.10 dump names, as `joblib.load` reads them: from the
/// dump's folder (`os.path.join(folder, name)`). A name that is absolute or has a folder part
/// reaches a file elsewhere: dangerous. A companion that is there replaces its "not scanned"
/// finding by its own findings; one that is missing keeps it (the dump is not fully read).
fn scan_companions(
    scanner: &Scanner,
    folder: &Path,
    companions: &[(u64, String)],
    findings: &mut Vec<crate::Finding>,
) {
    use container::ids;
    for (at, file) in companions {
        let same = |f: &crate::Finding| {
            f.rule == ids::JOBLIB_COMPANION
                && f.offset == Some(*at)
                && f.member.as_deref() == Some(file)
        };
        let plain =
            !file.is_empty() && !file.contains(['/', '\\', '\0']) && file != ".." && file != ".";
        if !plain {
            findings.retain(|f| !same(f));
            findings.push(crate::Finding {
                member: Some(file.clone()),
                ..scanner.anomaly(
                    ids::JOBLIB_COMPANION_OUTSIDE,
                    Some(*at),
                    format!("joblib < 0.10 companion file '{file}' is not a plain name in the dump's folder: joblib.load reads a file elsewhere"),
                )
            });
            continue;
        }
        let Ok(input) = Input::open(&folder.join(file)) else {
            continue;
        };
        let scanned = container::scan(scanner, &input, Some(file));
        findings.retain(|f| !same(f));
        findings.extend(scanned.findings.into_iter().map(|f| f.in_member(file)));
    }
}

/// Scan bytes already in memory (`path` is only used in the report).
pub fn scan_bytes(scanner: &Scanner, data: &[u8], path: String) -> FileReport {
    let name = Path::new(&path)
        .file_name()
        .and_then(|n| n.to_str())
        .map(str::to_string);
    scan_named(scanner, data, path, name.as_deref())
}

fn scan_named(scanner: &Scanner, data: &[u8], path: String, name: Option<&str>) -> FileReport {
    let scan = container::scan_file(scanner, data, name, None);
    let mut report = FileReport::scanned(
        path,
        data.len() as u64,
        scan.scanned.format,
        scan.scanned.findings,
    );
    report.torch_weights_only = scan.weights_only;
    report
}

pub use crate::format::hex;
