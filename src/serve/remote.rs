//! Scanning a remote file by URL (`POST /v1/scan` with `{"url": …}`).
//!
//! The fetching side lives elsewhere; this is the one place the server calls it.

use super::Engine;
use crate::report::FileReport;

/// Why a remote scan did not produce a report.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// This build cannot fetch remote files.
    #[error("remote scanning is not available in this build; upload the file as the request body")]
    NotImplemented,
    /// The URL is not one the server fetches.
    #[error("{0}")]
    BadUrl(String),
}

/// Fetch `url` and scan it with `engine`'s scanner and policy.
pub async fn remote_scan(engine: &Engine, url: &str) -> Result<FileReport, RemoteError> {
    let _ = engine;
    if !(url.starts_with("https://") || url.starts_with("http://") || url.starts_with("hf://")) {
        return Err(RemoteError::BadUrl(format!(
            "unsupported URL `{url}`: expected http://, https:// or hf://"
        )));
    }
    Err(RemoteError::NotImplemented)
}
