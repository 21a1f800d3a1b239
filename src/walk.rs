//! Turning the paths a user gives into the files to scan: folders are walked recursively,
//! `--exclude` globs and `.gitignore` files are applied, and what cannot be scanned is reported.
//!
//! Walking is done by the `ignore` crate (ripgrep's walker): it matches globs relative to the
//! folder walked, as `.gitignore` does, reads `.gitignore` files the way git does when asked,
//! and detects symbolic link loops. Hidden files are scanned (a model called `.x.pt` loads like
//! any other); version-control folders (`.git`, `.hg`, `.svn`, `.jj`) are not walked by default.
//!
//! `.gitignore` is not honoured by default: a scanner is a gate, and in CI whoever opens a pull
//! request writes the `.gitignore` too. A file that git tracks is in the checkout whatever
//! `.gitignore` says, so an ignore pattern in the same change would hide a committed model from
//! the scan. `--gitignore` opts in (for local runs over build output).

use globset::{Glob, GlobSet, GlobSetBuilder};
use ignore::overrides::{Override, OverrideBuilder};
use ignore::WalkBuilder;
use std::path::{Path, PathBuf};

/// Folders of version-control systems: their objects are compressed history, never loaded as
/// models, and a large repository holds thousands of them.
pub const VCS_DIRS: &[&str] = &[".git", ".hg", ".svn", ".jj"];

/// One thing to report on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// A file to scan.
    File(PathBuf),
    /// Standard input (the path `-`).
    Stdin,
    /// Something that could not be walked or opened (permission denied, missing path).
    Error {
        /// The path concerned.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Something skipped on purpose (a FIFO, socket or device inside a folder; a symbolic link
    /// loop): worth a note, not a verdict.
    Note {
        /// The path concerned.
        path: PathBuf,
        /// Why it was skipped.
        message: String,
    },
}

/// How folders are walked.
#[derive(Debug, Clone, Default)]
pub struct WalkOptions {
    /// `--exclude` globs (gitignore syntax, relative to each folder walked).
    pub exclude: Vec<String>,
    /// Skip what `.gitignore`, `.ignore` and `.git/info/exclude` exclude.
    pub gitignore: bool,
    /// Walk version-control folders too.
    pub include_vcs: bool,
}

/// Check `--exclude` patterns; the error names the bad pattern.
pub fn check_excludes(patterns: &[String]) -> Result<(), String> {
    let mut b = OverrideBuilder::new(".");
    for p in patterns {
        b.add(&negated(p)).map_err(|e| format!("{p}: {e}"))?;
    }
    b.build().map(|_| ()).map_err(|e| e.to_string())
}

/// An override glob that excludes what `pattern` matches. A leading `./` means the folder
/// walked, which in gitignore syntax is a leading `/`.
fn negated(pattern: &str) -> String {
    match pattern.strip_prefix("./") {
        Some(rest) => format!("!/{rest}"),
        None => format!("!{pattern}"),
    }
}

fn overrides(root: &Path, patterns: &[String]) -> Result<Override, ignore::Error> {
    let mut b = OverrideBuilder::new(root);
    for p in patterns {
        b.add(&negated(p))?;
    }
    b.build()
}

/// Globs that a path named on the command line is checked against: the path as given, or its
/// file name (named paths are not inside a walked folder).
fn named_set(patterns: &[String]) -> GlobSet {
    let mut b = GlobSetBuilder::new();
    for p in patterns {
        let p = p.trim_start_matches("./");
        let p = p.strip_suffix("/**").unwrap_or(p);
        if let Ok(g) = Glob::new(p) {
            b.add(g);
        }
    }
    b.build().unwrap_or_else(|_| GlobSet::empty())
}

/// Every file under `paths`, in a stable order (as given, then sorted within folders).
pub fn collect(paths: &[PathBuf], opts: &WalkOptions) -> Vec<Entry> {
    let named = named_set(&opts.exclude);
    let mut out = Vec::new();
    for root in paths {
        if root.as_os_str() == "-" {
            out.push(Entry::Stdin);
            continue;
        }
        if named.is_match(root) || root.file_name().is_some_and(|n| named.is_match(n)) {
            continue;
        }
        match std::fs::metadata(root) {
            Err(e) => out.push(Entry::Error {
                path: root.clone(),
                message: format!("cannot open: {e}"),
            }),
            // A named file is scanned whatever it is; reading a non-regular one is bounded.
            Ok(m) if !m.is_dir() => out.push(Entry::File(root.clone())),
            Ok(_) => walk_folder(root, opts, &mut out),
        }
    }
    out
}

fn walk_folder(root: &Path, opts: &WalkOptions, out: &mut Vec<Entry>) {
    let overrides = match overrides(root, &opts.exclude) {
        Ok(o) => o,
        Err(e) => {
            out.push(Entry::Error {
                path: root.to_path_buf(),
                message: format!("bad exclude pattern: {e}"),
            });
            return;
        }
    };
    let mut builder = WalkBuilder::new(root);
    builder
        .standard_filters(false)
        .git_ignore(opts.gitignore)
        .git_exclude(opts.gitignore)
        .git_global(opts.gitignore)
        .ignore(opts.gitignore)
        .parents(opts.gitignore)
        .follow_links(true)
        .overrides(overrides)
        .sort_by_file_name(|a, b| a.cmp(b));
    if !opts.include_vcs {
        builder.filter_entry(|e| {
            e.depth() == 0
                || !(e.file_type().is_some_and(|t| t.is_dir())
                    && VCS_DIRS.iter().any(|v| e.file_name() == *v))
        });
    }
    for item in builder.build() {
        match item {
            Ok(e) => match e.file_type() {
                Some(t) if t.is_dir() => {}
                Some(t) if t.is_file() => out.push(Entry::File(e.into_path())),
                // Stdin (never yielded for a folder) or a FIFO, socket or device: reading one
                // could block forever or never end.
                _ => out.push(Entry::Note {
                    message: format!("skipped: {}", kind_of(e.path())),
                    path: e.into_path(),
                }),
            },
            Err(e) => {
                let (path, is_loop) = error_details(&e);
                let path = path.unwrap_or_else(|| root.to_path_buf());
                if is_loop {
                    out.push(Entry::Note {
                        path,
                        message: "symbolic link loop: not followed".into(),
                    });
                } else {
                    out.push(Entry::Error {
                        path,
                        message: format!("cannot read: {}", innermost(&e)),
                    });
                }
            }
        }
    }
}

/// What kind of non-regular file `path` is, in words.
fn kind_of(path: &Path) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if let Ok(m) = std::fs::metadata(path) {
            let t = m.file_type();
            if t.is_fifo() {
                return "a FIFO (named pipe), not a regular file";
            }
            if t.is_socket() {
                return "a socket, not a regular file";
            }
            if t.is_char_device() || t.is_block_device() {
                return "a device, not a regular file";
            }
        }
    }
    let _ = path;
    "not a regular file"
}

/// The path an error is about, and whether it is a symbolic link loop.
fn error_details(e: &ignore::Error) -> (Option<PathBuf>, bool) {
    match e {
        ignore::Error::WithPath { path, err } => {
            let (inner, is_loop) = error_details(err);
            (inner.or_else(|| Some(path.clone())), is_loop)
        }
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            error_details(err)
        }
        ignore::Error::Loop { child, .. } => (Some(child.clone()), true),
        ignore::Error::Partial(errs) => errs.first().map(error_details).unwrap_or((None, false)),
        _ => (None, false),
    }
}

/// The error without the path and depth wrappers (the path is reported beside it).
fn innermost(e: &ignore::Error) -> &ignore::Error {
    match e {
        ignore::Error::WithPath { err, .. }
        | ignore::Error::WithDepth { err, .. }
        | ignore::Error::WithLineNumber { err, .. } => innermost(err),
        other => other,
    }
}
