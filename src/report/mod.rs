//! Reports: the per-file result and its renderings (text, JSON).
//!
//! The JSON wire format is versioned by [`SCHEMA_VERSION`] and documented in README.md; fields are
//! only ever added within one version.

pub mod json;
pub mod models;
pub mod sarif;
pub mod text;

use crate::finding::{verdict_of, Finding, Verdict};
use crate::format::Format;
use serde::Serialize;

/// Version of the JSON report schema.
pub const SCHEMA_VERSION: u32 = 1;

/// The result of scanning one file.
#[derive(Debug, Clone, Serialize)]
pub struct FileReport {
    /// The path as given (or found while walking a folder).
    pub path: String,
    /// The verdict.
    pub verdict: Verdict,
    /// Lower-case hex SHA-256 of the file's bytes, when computed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// Size in bytes.
    pub size: u64,
    /// What the content was detected as (serialized as its name: `pickle`, `torch-zip`, …).
    pub format: Format,
    /// Findings, in stream order.
    pub findings: Vec<Finding>,
    /// Set when the file could not be read at all (exit code 3).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What `torch.load(weights_only=True)` would do (`--policy torch-weights-only`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub torch_weights_only: Option<crate::container::weights_only::WeightsOnly>,
    /// Bytes downloaded to scan a remote file (compare with `size`); absent for local files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transferred: Option<u64>,
}

impl FileReport {
    /// A report for a scanned file; the verdict follows from the findings.
    pub fn scanned(path: String, size: u64, format: Format, findings: Vec<Finding>) -> Self {
        FileReport {
            path,
            verdict: verdict_of(&findings),
            sha256: None,
            size,
            format,
            findings,
            error: None,
            torch_weights_only: None,
            transferred: None,
        }
    }

    /// True when the content is not a model (text, images, …), reported apart.
    pub fn is_not_a_model(&self) -> bool {
        self.format.is_not_a_model()
    }

    /// A report for a file that could not be read: never clean.
    pub fn unreadable(path: String, error: String) -> Self {
        FileReport {
            path,
            verdict: Verdict::Suspicious,
            sha256: None,
            size: 0,
            format: Format::Unreadable,
            findings: Vec::new(),
            error: Some(error),
            torch_weights_only: None,
            transferred: None,
        }
    }
}

/// What a set of files means for a gate, from nothing to stop for to the worst.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Gate {
    /// Nothing to stop for.
    Pass,
    /// Something suspicious (and no file dangerous or unreadable).
    Suspicious,
    /// A file could not be read (or a job on it could not be done), so it is not known clean.
    Error,
    /// Something dangerous.
    Dangerous,
}

/// The gate over many files: dangerous if anything is, else an error if a file could not be
/// read, else suspicious if anything is, else pass.
pub fn gate(files: &[FileReport]) -> Gate {
    if files.iter().any(|f| f.verdict == Verdict::Dangerous) {
        Gate::Dangerous
    } else if files.iter().any(|f| f.error.is_some()) {
        Gate::Error
    } else if files.iter().any(|f| f.verdict == Verdict::Suspicious) {
        Gate::Suspicious
    } else {
        Gate::Pass
    }
}
