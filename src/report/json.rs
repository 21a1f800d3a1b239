//! The JSON report.
//!
//! ```json
//! {"schema_version": 1, "tool": "picklescan-rs", "version": "0.1.0",
//!  "summary": {"files": 1, "clean": 0, "suspicious": 0, "dangerous": 1, "errors": 0},
//!  "files": [{"path": "evil.pkl", "verdict": "dangerous", "sha256": "…", "size": 52,
//!             "format": "pickle", "findings": [{"rule": "PS101", "severity": "critical",
//!             "global": "posix.system", "usage": "called", "offset": 30,
//!             "call": "posix.system('echo pwned')", "message": "calls posix.system"}]}]}
//! ```
//!
//! When SavedModel folders were scanned, `"models": [{"path", "format": "tf-savedmodel",
//! "verdict", "files"}]` gives each one verdict, the worst of its files'.

use super::{FileReport, SCHEMA_VERSION};
use crate::finding::Verdict;
use serde::Serialize;

/// Counts over all files.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Summary {
    /// Files reported.
    pub files: usize,
    /// Clean files (not-a-model files included).
    pub clean: usize,
    /// Files whose content is not a model (text, images, …): clean, counted apart too.
    pub not_models: usize,
    /// Suspicious files.
    pub suspicious: usize,
    /// Dangerous files.
    pub dangerous: usize,
    /// Files that could not be read.
    pub errors: usize,
    /// Bytes in all files.
    pub bytes: u64,
}

impl Summary {
    /// Count the files.
    pub fn of(files: &[FileReport]) -> Self {
        let mut s = Summary {
            files: files.len(),
            ..Default::default()
        };
        for f in files {
            s.bytes += f.size;
            // A file that could not be read is an error, not also a suspicious file.
            if f.error.is_some() {
                s.errors += 1;
                continue;
            }
            if f.is_not_a_model() {
                s.not_models += 1;
            }
            match f.verdict {
                Verdict::Clean => s.clean += 1,
                Verdict::Suspicious => s.suspicious += 1,
                Verdict::Dangerous => s.dangerous += 1,
            }
        }
        s
    }
}

#[derive(Serialize)]
struct Document<'a> {
    schema_version: u32,
    tool: &'static str,
    version: &'static str,
    summary: Summary,
    files: &'a [FileReport],
    /// Models stored as folders (SavedModels), each with the worst verdict of its files.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    models: Vec<super::models::ModelFolder>,
}

/// The whole JSON document for these files.
pub fn render(files: &[FileReport]) -> String {
    let doc = Document {
        schema_version: SCHEMA_VERSION,
        tool: "picklescan-rs",
        version: env!("CARGO_PKG_VERSION"),
        summary: Summary::of(files),
        files,
        models: super::models::model_folders(files),
    };
    serde_json::to_string_pretty(&doc).expect("report types always serialize")
}
