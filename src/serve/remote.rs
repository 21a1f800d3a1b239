//! Scanning a remote file by URL (`POST /v1/scan` with `{"url": …}`).
//!
//! A server that fetches whatever URL a client names can be turned against the network it runs
//! in (server-side request forgery), so remote scanning is off until the operator lists the URL
//! prefixes it may fetch (`serve --allow-url https://huggingface.co/`). A prefix matches at a
//! path boundary: `https://huggingface.co` admits `https://huggingface.co/x` but not
//! `https://huggingface.co.example/x`. Redirects the allowed host answers with (a hub sending
//! large files to its CDN) are followed.

use crate::remote::http::Client;
use crate::remote::{self, RemoteOptions};
use crate::report::FileReport;

/// Remote scanning settings of a server.
#[derive(Debug, Clone, Default)]
pub struct RemoteAccess {
    /// URL prefixes the server may fetch; empty: remote scanning is disabled.
    pub allow: Vec<String>,
    /// How files are fetched (budget, token, timeouts).
    pub options: RemoteOptions,
}

/// Why a remote scan request is refused before anything is fetched.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RemoteError {
    /// The server has no allowed prefix.
    #[error(
        "remote scanning is not enabled on this server (it allows no URL prefix); \
         upload the file as the request body"
    )]
    Disabled,
    /// Not an http(s) URL.
    #[error("unsupported URL `{0}`: expected http:// or https://")]
    BadUrl(String),
    /// An http(s) URL outside every allowed prefix.
    #[error("URL `{0}` is not under a prefix this server may fetch")]
    NotAllowed(String),
}

impl RemoteAccess {
    /// Check that `url` may be fetched.
    pub fn check(&self, url: &str) -> Result<(), RemoteError> {
        if !remote::is_url(url) || url.chars().any(|c| c.is_control() || c == ' ') {
            return Err(RemoteError::BadUrl(url.to_string()));
        }
        if self.allow.is_empty() {
            return Err(RemoteError::Disabled);
        }
        if self.allow.iter().any(|p| under_prefix(url, p)) {
            Ok(())
        } else {
            Err(RemoteError::NotAllowed(url.to_string()))
        }
    }

    /// Fetch and scan `url` with the engine (blocking: run it on the blocking pool); its policy
    /// is applied while the fetched bytes are at hand.
    pub fn scan(&self, client: &Client, engine: &crate::engine::Engine, url: &str) -> FileReport {
        remote::scan_url(engine, client, url, &self.options)
    }
}

/// True when `url` is `prefix` or lies under it at a path boundary. Scheme and host compare
/// case-insensitively.
fn under_prefix(url: &str, prefix: &str) -> bool {
    let (u, p) = (normalise(url), normalise(prefix));
    if !u.starts_with(&p) {
        return false;
    }
    if p.ends_with('/') || u.len() == p.len() {
        return true;
    }
    matches!(u.as_bytes()[p.len()], b'/' | b'?' | b'#')
}

/// Lower-case the scheme and authority, keep the path as written.
fn normalise(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let cut = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    format!(
        "{}://{}{}",
        scheme.to_ascii_lowercase(),
        rest[..cut].to_ascii_lowercase(),
        &rest[cut..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(allow: &[&str]) -> RemoteAccess {
        RemoteAccess {
            allow: allow.iter().map(|s| s.to_string()).collect(),
            options: RemoteOptions::default(),
        }
    }

    #[test]
    fn disabled_without_prefixes() {
        assert_eq!(
            access(&[]).check("https://huggingface.co/x"),
            Err(RemoteError::Disabled)
        );
    }

    #[test]
    fn prefixes_match_at_path_boundaries() {
        let a = access(&["https://huggingface.co", "http://127.0.0.1:9000/models/"]);
        assert!(a
            .check("https://huggingface.co/org/repo/resolve/main/x.bin")
            .is_ok());
        assert!(a.check("HTTPS://HuggingFace.co/x").is_ok());
        assert!(a.check("http://127.0.0.1:9000/models/a.pt").is_ok());
        for bad in [
            "https://huggingface.co.example/x",
            "https://huggingface.com/x",
            "http://127.0.0.1:9000/other/a.pt",
            "http://127.0.0.1:90001/models/a.pt",
        ] {
            assert_eq!(
                a.check(bad),
                Err(RemoteError::NotAllowed(bad.into())),
                "{bad}"
            );
        }
        for bad in [
            "file:///etc/passwd",
            "ftp://huggingface.co/x",
            "hf://org/repo",
        ] {
            assert_eq!(a.check(bad), Err(RemoteError::BadUrl(bad.into())), "{bad}");
        }
    }
}
