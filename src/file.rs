//! Scanning one file on disk: read it, hash it, find its pickles, judge them.

use crate::pickle::vm::NoHooks;
use crate::report::FileReport;
use crate::scan::Scanner;
use sha2::{Digest, Sha256};
use std::path::Path;

/// Options for scanning files.
#[derive(Debug, Clone, Default)]
pub struct FileOptions {
    /// Compute each file's SHA-256 (JSON and SARIF reports carry it).
    pub hash: bool,
}

/// Scan one file. A file that cannot be read gets a report with `error` set, never a clean one.
pub fn scan_path(scanner: &Scanner, path: &Path, opts: &FileOptions) -> FileReport {
    let shown = path.display().to_string();
    let data = match std::fs::read(path) {
        Ok(d) => d,
        Err(e) => return FileReport::unreadable(shown, format!("cannot read: {e}")),
    };
    let mut report = scan_bytes(scanner, &data, shown);
    if opts.hash {
        report.sha256 = Some(hex(&Sha256::digest(&data)));
    }
    report
}

/// Scan bytes already in memory.
pub fn scan_bytes(scanner: &Scanner, data: &[u8], path: String) -> FileReport {
    let scan = scanner.scan_pickles(data, &mut NoHooks);
    FileReport::scanned(path, data.len() as u64, "pickle", scan.findings)
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
