//! The one entry point for scanning with a policy: a [`Scanner`] (rules and limits) and the
//! [`Policy`] applied to its reports. The command line, the server and extraction scan through
//! it, so a file is mapped and read once and its report always has the policy applied.

use crate::file::{scan_input, FileOptions};
use crate::mmap::Input;
use crate::policy::Policy;
use crate::report::{FileReport, Gate};
use crate::scan::Scanner;
use std::path::Path;

/// What scans: the scanner, the policy applied to its reports, and the rules' fingerprint.
#[derive(Debug)]
pub struct Engine {
    /// The scanner.
    pub scanner: Scanner,
    /// The policy applied to every report.
    pub policy: Policy,
    /// `RuleSet::fingerprint()`, computed once.
    pub fingerprint: String,
}

impl Engine {
    /// An engine over this scanner and policy (the scanner is told to model torch's loader
    /// when the policy judges by it).
    pub fn new(mut scanner: Scanner, policy: Policy) -> Self {
        scanner.weights_only |= policy.needs_weights_only();
        let fingerprint = scanner.rules.fingerprint();
        Engine {
            scanner,
            policy,
            fingerprint,
        }
    }

    /// Scan one file and apply the policy to the same mapped bytes. A file that cannot be
    /// opened gets a report with `error` set, never a clean one.
    pub fn scan_path(&self, path: &Path, opts: &FileOptions) -> FileReport {
        self.open_and_scan(path, opts).0
    }

    /// [`Engine::scan_path`], also giving the file as it was opened (its bytes and the handle
    /// they were mapped or read from), so extraction reads exactly what was scanned.
    pub fn open_and_scan(
        &self,
        path: &Path,
        opts: &FileOptions,
    ) -> (FileReport, Option<(Input, std::fs::File)>) {
        match Input::open_with_file(path) {
            Ok((input, file)) => {
                let mut r = scan_input(&self.scanner, &input, path, opts);
                self.policy.apply(&mut r);
                (r, Some((input, file)))
            }
            Err(e) => (
                FileReport::unreadable(path.display().to_string(), format!("cannot read: {e}")),
                None,
            ),
        }
    }

    /// Scan bytes as one file called `name`, and apply the policy.
    pub fn scan(&self, data: &[u8], name: &str) -> FileReport {
        let mut r = crate::file::scan_bytes(&self.scanner, data, name.to_string());
        self.policy.apply(&mut r);
        r
    }

    /// The gate of a set of reports under the policy.
    pub fn gate(&self, reports: &[FileReport]) -> Gate {
        self.policy.gate(reports)
    }
}
