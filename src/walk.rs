//! Turning the paths a user gives into the files to scan: folders are walked recursively,
//! `--exclude` globs are applied, and loops or unreadable entries are reported, never skipped.

use globset::{Glob, GlobSet, GlobSetBuilder};
use std::path::{Path, PathBuf};

/// One thing to report on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A file to scan.
    File(PathBuf),
    /// Something that could not be walked (symlink loop, permission denied, missing path).
    Error {
        /// The path concerned.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
}

/// Compile `--exclude` patterns. A pattern matches a file's full path or its file name.
pub fn exclude_set(patterns: &[String]) -> Result<GlobSet, globset::Error> {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        b.add(Glob::new(p)?);
    }
    b.build()
}

fn excluded(set: &GlobSet, path: &Path) -> bool {
    !set.is_empty() && (set.is_match(path) || path.file_name().is_some_and(|n| set.is_match(n)))
}

/// Every file under `paths`, in a stable order (as given, then sorted within folders).
pub fn collect(paths: &[PathBuf], exclude: &GlobSet) -> Vec<Entry> {
    let mut out = Vec::new();
    for root in paths {
        if excluded(exclude, root) {
            continue;
        }
        match std::fs::metadata(root) {
            Err(e) => out.push(Entry::Error {
                path: root.clone(),
                message: format!("cannot open: {e}"),
            }),
            Ok(m) if !m.is_dir() => out.push(Entry::File(root.clone())),
            Ok(_) => {
                let walker = walkdir::WalkDir::new(root)
                    .follow_links(true)
                    .sort_by_file_name()
                    .into_iter();
                let it = walker.filter_entry(|e| e.depth() == 0 || !excluded(exclude, e.path()));
                for item in it {
                    match item {
                        Ok(e) if e.file_type().is_dir() => {}
                        Ok(e) => out.push(Entry::File(e.into_path())),
                        Err(e) => {
                            let path = e
                                .path()
                                .map(Path::to_path_buf)
                                .unwrap_or_else(|| root.clone());
                            let message = if e.loop_ancestor().is_some() {
                                "symbolic link loop: not followed".to_string()
                            } else {
                                format!("cannot read: {e}")
                            };
                            out.push(Entry::Error { path, message });
                        }
                    }
                }
            }
        }
    }
    out
}
