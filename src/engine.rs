//! The one entry point for scanning with a policy: a [`Scanner`] (rules and limits) and the
//! [`Policy`] applied to its reports. The command line, the server and extraction scan through
//! it, so a file is mapped once and its report always has the policy applied with its bytes.

use crate::file::{scan_input, FileOptions};
use crate::mmap::Input;
use crate::policy::Policy;
use crate::report::FileReport;
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
    /// An engine over this scanner and policy.
    pub fn new(scanner: Scanner, policy: Policy) -> Self {
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
        let input = match Input::open(path) {
            Ok(i) => i,
            Err(e) => {
                return FileReport::unreadable(
                    path.display().to_string(),
                    format!("cannot read: {e}"),
                )
            }
        };
        self.scan_opened(&input, path, opts)
    }

    /// Scan a file already opened (extraction then reads the same mapping), and apply the
    /// policy.
    pub fn scan_opened(&self, input: &Input, path: &Path, opts: &FileOptions) -> FileReport {
        let mut r = scan_input(&self.scanner, input, path, opts);
        self.policy.apply(&mut r, Some(input.bytes()));
        r
    }

    /// Scan bytes as one file called `name`, and apply the policy.
    pub fn scan(&self, data: &[u8], name: &str) -> FileReport {
        let mut r = crate::file::scan_bytes(&self.scanner, data, name.to_string());
        self.policy.apply(&mut r, Some(data));
        r
    }

    /// The exit code of a set of reports under the policy (0 clean, 1 dangerous, 2
    /// suspicious, 3 unreadable).
    pub fn exit_code(&self, reports: &[FileReport]) -> i32 {
        self.policy.exit_code(reports)
    }
}
