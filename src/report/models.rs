//! Models stored as folders. A TensorFlow SavedModel is `saved_model.pb` beside `variables/`,
//! `assets/`, `fingerprint.pb` and (tf.keras) `keras_metadata.pb`: each file is scanned as what
//! it is, and the model gets one verdict, the worst of its files' (a file that could not be
//! read counts, never clean).

use super::FileReport;
use crate::finding::Verdict;
use crate::format::Format;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::Path;

/// One model folder among the scanned files.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ModelFolder {
    /// The folder, as the paths of its files show it.
    pub path: String,
    /// What kind of model.
    pub format: Format,
    /// The worst verdict of its files.
    pub verdict: Verdict,
    /// Files of the folder scanned.
    pub files: usize,
}

/// The SavedModel folders among `files` (those holding a scanned `saved_model.pb`).
pub fn model_folders(files: &[FileReport]) -> Vec<ModelFolder> {
    let mut folders: BTreeMap<&Path, (Verdict, usize)> = files
        .iter()
        .map(|f| Path::new(&f.path))
        .filter(|p| p.file_name().is_some_and(|n| n == "saved_model.pb"))
        .filter_map(|p| p.parent())
        .map(|dir| (dir, (Verdict::Clean, 0)))
        .collect();
    // Each file counts for every model folder above it.
    for f in files {
        for dir in Path::new(&f.path).ancestors().skip(1) {
            if let Some((verdict, n)) = folders.get_mut(dir) {
                *verdict = (*verdict).max(f.verdict);
                *n += 1;
            }
        }
    }
    folders
        .into_iter()
        .map(|(dir, (verdict, files))| ModelFolder {
            path: dir.display().to_string(),
            format: Format::TfSavedModel,
            verdict,
            files,
        })
        .collect()
}
