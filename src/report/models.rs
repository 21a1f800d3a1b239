//! Models stored as folders. A TensorFlow SavedModel is `saved_model.pb` beside `variables/`,
//! `assets/`, `fingerprint.pb` and (tf.keras) `keras_metadata.pb`: each file is scanned as what
//! it is, and the model gets one verdict, the worst of its files' (a file that could not be
//! read counts, never clean).

use super::FileReport;
use crate::finding::Verdict;
use serde::Serialize;
use std::path::Path;

/// One model folder among the scanned files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelFolder {
    /// The folder, as the paths of its files show it.
    pub path: String,
    /// What kind of model (`tf-savedmodel`).
    pub format: &'static str,
    /// The worst verdict of its files.
    pub verdict: Verdict,
    /// Files of the folder scanned.
    pub files: usize,
}

/// The SavedModel folders among `files` (those holding a scanned `saved_model.pb`).
pub fn model_folders(files: &[FileReport]) -> Vec<ModelFolder> {
    let mut out: Vec<ModelFolder> = Vec::new();
    for f in files {
        let p = Path::new(&f.path);
        if p.file_name().is_none_or(|n| n != "saved_model.pb") {
            continue;
        }
        let Some(dir) = p.parent() else { continue };
        let inside: Vec<&FileReport> = files
            .iter()
            .filter(|g| Path::new(&g.path).starts_with(dir))
            .collect();
        let verdict = inside
            .iter()
            .map(|g| g.verdict)
            .max()
            .unwrap_or(Verdict::Suspicious);
        out.push(ModelFolder {
            path: dir.display().to_string(),
            format: "tf-savedmodel",
            verdict,
            files: inside.len(),
        });
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    out.dedup_by(|a, b| a.path == b.path);
    out
}
