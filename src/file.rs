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
    let shown = path.display().to_string();
    let input = match Input::open(path) {
        Ok(i) => i,
        Err(e) => return FileReport::unreadable(shown, format!("cannot read: {e}")),
    };
    let name = path.file_name().and_then(|n| n.to_str());
    let dir = path.parent().map(|d| {
        if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        }
    });
    let scanned = container::scan_in(scanner, &input, name, dir);
    let mut report = FileReport::scanned(
        shown.clone(),
        input.len() as u64,
        &scanned.format,
        scanned.findings,
    );
    if opts.hash {
        report.sha256 = Some(hex(&Sha256::digest(input.bytes())));
    }
    report
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
    let scanned = container::scan(scanner, data, name);
    FileReport::scanned(path, data.len() as u64, &scanned.format, scanned.findings)
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
