//! A small blocking HTTP(S) client for range requests: timeouts, retries with exponential backoff
//! (honouring `Retry-After`), redirects followed by hand so that the `Range` header is kept on
//! every hop and the `Authorization` header is only ever sent to the host the user named.
//!
//! TLS is rustls (ring provider) with Mozilla's root certificates compiled in (webpki-roots), so
//! the binary verifies servers the same way on every machine; `SSL_CERT_FILE` (a PEM bundle)
//! replaces them, for mirrors behind a private certificate authority.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use ureq::http::Uri;

/// Redirect hops followed before giving up.
pub const MAX_REDIRECTS: usize = 10;

/// How the client behaves.
#[derive(Debug, Clone)]
pub struct HttpOptions {
    /// Time to establish a connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Longest wait for the response headers, and for each read of the body.
    pub read_timeout: Duration,
    /// Retries after the first attempt, on 429, 5xx and transport errors.
    pub retries: u32,
    /// First backoff delay; doubled on each retry.
    pub backoff: Duration,
    /// Longest backoff delay (and longest `Retry-After` honoured).
    pub max_backoff: Duration,
    /// Bearer token, sent only to the host of the URL asked for (never to a redirect target on
    /// another host, never over plain HTTP after an HTTPS start).
    pub token: Option<String>,
}

impl Default for HttpOptions {
    fn default() -> Self {
        HttpOptions {
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
            retries: 4,
            backoff: Duration::from_millis(500),
            max_backoff: Duration::from_secs(30),
            token: None,
        }
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HttpError {
    /// The server answered with an error status (after retries, for retryable ones).
    #[error("HTTP {status} from {url}{}", hint(*status))]
    Status {
        /// The status code.
        status: u16,
        /// The URL that answered.
        url: String,
    },
    /// Connection, TLS, timeout or body read failure (after retries).
    #[error("{0}")]
    Transport(String),
    /// The server's answer does not make sense (bad `Content-Range`, redirect without
    /// `Location`, too many redirects, a file that changed size between requests).
    #[error("{0}")]
    Protocol(String),
}

fn hint(status: u16) -> &'static str {
    match status {
        401 | 403 => " (access denied: a gated or private repository needs a token, HF_TOKEN)",
        404 => " (not found)",
        416 => " (range not satisfiable)",
        429 => " (rate limited)",
        _ => "",
    }
}

/// Counts of what was sent and received, shared by the threads working on one file.
#[derive(Debug, Default)]
pub struct Meter {
    bytes: AtomicU64,
    requests: AtomicU64,
    held: AtomicU64,
}

impl Meter {
    /// Body bytes received so far (failed attempts included).
    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }
    /// Requests sent so far (redirect hops and retries included).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    /// Bytes of decompressed output held at the end of the scan (they count in
    /// [`super::Cost::kept`]).
    pub fn held(&self) -> u64 {
        self.held.load(Ordering::Relaxed)
    }
    /// Record bytes of decompressed output held.
    pub fn hold(&self, n: u64) {
        self.held.fetch_add(n, Ordering::Relaxed);
    }
    fn add_bytes(&self, n: u64) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
    }
    fn add_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }
}

/// A byte range to ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Range {
    /// `start..end` (end exclusive).
    Span(u64, u64),
    /// The last `n` bytes.
    Suffix(u64),
}

impl Range {
    fn header(self) -> String {
        match self {
            Range::Span(s, e) => format!("bytes={s}-{}", e.saturating_sub(1)),
            Range::Suffix(n) => format!("bytes=-{n}"),
        }
    }
}

/// What a ranged GET produced.
pub enum Fetched {
    /// `206 Partial Content`: the bytes at `start`, and the size of the whole file.
    Partial {
        /// Offset of `data` in the file.
        start: u64,
        /// The bytes.
        data: Vec<u8>,
        /// Size of the whole file.
        total: u64,
    },
    /// The range was not honoured (`200 OK`): the whole body, unread.
    Whole {
        /// `Content-Length`, when given.
        length: Option<u64>,
        /// The body.
        body: Body,
    },
    /// `416` with `Content-Range: bytes */0`: the file is empty.
    Empty,
}

/// A response body being read; counts what it reads.
pub struct Body {
    reader: ureq::BodyReader<'static>,
}

impl Body {
    /// Read some bytes into `buf` (0 at the end of the body).
    pub fn read_some(&mut self, buf: &mut [u8], meter: &Meter) -> Result<usize, HttpError> {
        let n = self
            .reader
            .read(buf)
            .map_err(|e| HttpError::Transport(format!("reading the body: {e}")))?;
        meter.add_bytes(n as u64);
        Ok(n)
    }

    /// Read up to `limit` bytes (fewer if the body ends first); `true` when the body held more.
    pub fn read_limited(
        &mut self,
        limit: u64,
        meter: &Meter,
    ) -> Result<(Vec<u8>, bool), HttpError> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let room = limit.saturating_sub(out.len() as u64);
            let want = if room == 0 {
                1
            } else {
                room.min(buf.len() as u64) as usize
            };
            let n = self
                .reader
                .read(&mut buf[..want])
                .map_err(|e| HttpError::Transport(format!("reading the body: {e}")))?;
            meter.add_bytes(n as u64);
            if n == 0 {
                return Ok((out, false));
            }
            if room == 0 {
                return Ok((out, true));
            }
            out.extend_from_slice(&buf[..n]);
        }
    }
}

/// The client. Cheap to share between threads.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    opts: HttpOptions,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("token", &self.opts.token.as_ref().map(|_| "<set>"))
            .finish()
    }
}

fn root_certs() -> ureq::tls::RootCerts {
    if let Some(path) = std::env::var_os("SSL_CERT_FILE") {
        if let Ok(pem) = std::fs::read(&path) {
            let certs: Vec<_> = ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(c)) => Some(c),
                    _ => None,
                })
                .collect();
            if !certs.is_empty() {
                return ureq::tls::RootCerts::new_with_certs(&certs);
            }
        }
    }
    ureq::tls::RootCerts::WebPki
}

impl Client {
    /// A client with these options.
    pub fn new(opts: HttpOptions) -> Client {
        let tls = ureq::tls::TlsConfig::builder()
            .root_certs(root_certs())
            .build();
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(concat!("picklescan-rs/", env!("CARGO_PKG_VERSION")))
            .accept_encoding("identity")
            .timeout_connect(Some(opts.connect_timeout))
            .timeout_recv_response(Some(opts.read_timeout))
            .timeout_per_read(Some(opts.read_timeout))
            .tls_config(tls)
            .build()
            .into();
        Client { agent, opts }
    }

    /// The options in force.
    pub fn options(&self) -> &HttpOptions {
        &self.opts
    }

    /// GET `url` (with `range`), following redirects and retrying. A `206` is read whole and
    /// checked against the range asked for; a `200` is handed back unread.
    pub fn fetch(
        &self,
        url: &str,
        range: Option<Range>,
        meter: &Meter,
    ) -> Result<Fetched, HttpError> {
        self.with_retries(
            url,
            meter,
            |resp, final_url| {
                let status = resp.status().as_u16();
                match status {
                    206 => {
                        let cr = header(&resp, "content-range").ok_or_else(|| {
                            HttpError::Protocol(format!(
                                "206 without Content-Range from {final_url}"
                            ))
                        })?;
                        let (start, end, total) = parse_content_range(&cr).ok_or_else(|| {
                            HttpError::Protocol(format!(
                                "bad Content-Range '{cr}' from {final_url}"
                            ))
                        })?;
                        let (start, end) = match (start, end) {
                            (Some(s), Some(e)) if e >= s && e < total => (s, e + 1),
                            _ => {
                                return Err(HttpError::Protocol(format!(
                                    "bad Content-Range '{cr}' from {final_url}"
                                )))
                            }
                        };
                        if let Some(r) = range {
                            let ok = match r {
                                Range::Span(s, e) => start == s && end == e.min(total),
                                Range::Suffix(n) => {
                                    end == total && start == total.saturating_sub(n)
                                }
                            };
                            if !ok {
                                return Err(HttpError::Protocol(format!(
                                    "asked for {} but {final_url} sent '{cr}'",
                                    r.header()
                                )));
                            }
                        }
                        let len = end - start;
                        let mut body = Body {
                            reader: resp.into_body().into_reader(),
                        };
                        let (data, more) = body.read_limited(len, meter)?;
                        if more || data.len() as u64 != len {
                            return Err(HttpError::Transport(format!(
                                "{final_url} sent {} bytes for a {len}-byte range",
                                data.len()
                            )));
                        }
                        Ok(Some(Fetched::Partial { start, data, total }))
                    }
                    200 => {
                        let length =
                            header(&resp, "content-length").and_then(|v| v.trim().parse().ok());
                        Ok(Some(Fetched::Whole {
                            length,
                            body: Body {
                                reader: resp.into_body().into_reader(),
                            },
                        }))
                    }
                    416 => {
                        let total = header(&resp, "content-range")
                            .and_then(|cr| parse_content_range(&cr))
                            .map(|t| t.2);
                        if total == Some(0) {
                            Ok(Some(Fetched::Empty))
                        } else {
                            Err(HttpError::Status {
                                status,
                                url: final_url.to_string(),
                            })
                        }
                    }
                    _ => Ok(None),
                }
            },
            range,
        )
    }

    /// GET `url` and parse the body as JSON (at most `limit` bytes).
    pub fn get_json(
        &self,
        url: &str,
        limit: u64,
        meter: &Meter,
    ) -> Result<serde_json::Value, HttpError> {
        self.with_retries(
            url,
            meter,
            |resp, final_url| {
                if resp.status().as_u16() != 200 {
                    return Ok(None);
                }
                let mut body = Body {
                    reader: resp.into_body().into_reader(),
                };
                let (data, more) = body.read_limited(limit, meter)?;
                if more {
                    return Err(HttpError::Protocol(format!(
                        "answer of {final_url} is larger than {limit} bytes"
                    )));
                }
                serde_json::from_slice(&data).map(Some).map_err(|e| {
                    HttpError::Protocol(format!("answer of {final_url} is not JSON: {e}"))
                })
            },
            None,
        )
    }

    /// Send the request (following redirects), hand the final response to `accept`; retry on
    /// 429/5xx/transport errors. `accept` returns `Ok(None)` for a status it does not handle.
    fn with_retries<T>(
        &self,
        url: &str,
        meter: &Meter,
        mut accept: impl FnMut(ureq::http::Response<ureq::Body>, &str) -> Result<Option<T>, HttpError>,
        range: Option<Range>,
    ) -> Result<T, HttpError> {
        let mut attempt = 0u32;
        loop {
            let (err, wait) = match self.send(url, range, meter) {
                Ok((resp, final_url)) => {
                    let status = resp.status().as_u16();
                    let retry_after =
                        header(&resp, "retry-after").and_then(|v| v.trim().parse::<u64>().ok());
                    let retryable = status == 429 || (500..600).contains(&status);
                    if !retryable {
                        match accept(resp, &final_url) {
                            Ok(Some(t)) => return Ok(t),
                            Ok(None) => {
                                return Err(HttpError::Status {
                                    status,
                                    url: final_url,
                                })
                            }
                            // A body cut off in the middle is worth another try.
                            Err(e @ HttpError::Transport(_)) => (e, None),
                            Err(e) => return Err(e),
                        }
                    } else {
                        (
                            HttpError::Status {
                                status,
                                url: final_url,
                            },
                            retry_after.map(Duration::from_secs),
                        )
                    }
                }
                Err(e @ HttpError::Transport(_)) => (e, None),
                Err(e) => return Err(e),
            };
            if attempt >= self.opts.retries {
                return Err(err);
            }
            let backoff = self
                .opts
                .backoff
                .saturating_mul(1u32 << attempt.min(16))
                .min(self.opts.max_backoff);
            let delay = wait
                .map(|w| w.min(self.opts.max_backoff))
                .unwrap_or(backoff);
            std::thread::sleep(delay);
            attempt += 1;
        }
    }

    /// One attempt: GET with redirects followed by hand.
    fn send(
        &self,
        url: &str,
        range: Option<Range>,
        meter: &Meter,
    ) -> Result<(ureq::http::Response<ureq::Body>, String), HttpError> {
        let origin: Uri = url
            .parse()
            .map_err(|e| HttpError::Protocol(format!("bad URL '{url}': {e}")))?;
        let mut current = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let uri: Uri = current
                .parse()
                .map_err(|e| HttpError::Protocol(format!("bad URL '{current}': {e}")))?;
            let mut req = self.agent.get(&current);
            if let Some(r) = range {
                req = req.header("Range", r.header());
            }
            if let Some(token) = &self.opts.token {
                if same_origin(&origin, &uri) {
                    req = req.header("Authorization", format!("Bearer {token}"));
                }
            }
            meter.add_request();
            let resp = req
                .call()
                .map_err(|e| HttpError::Transport(format!("{current}: {e}")))?;
            let status = resp.status().as_u16();
            if matches!(status, 301 | 302 | 303 | 307 | 308) {
                let loc = header(&resp, "location").ok_or_else(|| {
                    HttpError::Protocol(format!("redirect without Location from {current}"))
                })?;
                current = resolve(&uri, &loc).ok_or_else(|| {
                    HttpError::Protocol(format!("bad redirect '{loc}' from {current}"))
                })?;
                continue;
            }
            return Ok((resp, current));
        }
        Err(HttpError::Protocol(format!(
            "more than {MAX_REDIRECTS} redirects from {url}"
        )))
    }
}

fn header(resp: &ureq::http::Response<ureq::Body>, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
}

/// Same scheme, host and port: where a token may go.
fn same_origin(a: &Uri, b: &Uri) -> bool {
    a.scheme_str() == b.scheme_str()
        && a.host().map(str::to_ascii_lowercase) == b.host().map(str::to_ascii_lowercase)
        && a.port_u16() == b.port_u16()
}

/// Resolve a `Location` against the URL that sent it.
pub fn resolve(base: &Uri, loc: &str) -> Option<String> {
    let loc = loc.trim();
    if loc.starts_with("http://") || loc.starts_with("https://") {
        return Some(loc.to_string());
    }
    let scheme = base.scheme_str()?;
    if let Some(rest) = loc.strip_prefix("//") {
        return Some(format!("{scheme}://{rest}"));
    }
    let authority = base.authority()?.as_str();
    if loc.starts_with('/') {
        return Some(format!("{scheme}://{authority}{loc}"));
    }
    let path = base.path();
    let dir = &path[..path.rfind('/').map(|i| i + 1).unwrap_or(0)];
    Some(format!("{scheme}://{authority}{dir}{loc}"))
}

/// `bytes START-END/TOTAL` or `bytes */TOTAL`: (start, end inclusive, total).
pub fn parse_content_range(v: &str) -> Option<(Option<u64>, Option<u64>, u64)> {
    let rest = v.trim().strip_prefix("bytes")?.trim_start();
    let (span, total) = rest.split_once('/')?;
    let total: u64 = total.trim().parse().ok()?;
    if span.trim() == "*" {
        return Some((None, None, total));
    }
    let (s, e) = span.split_once('-')?;
    Some((
        Some(s.trim().parse().ok()?),
        Some(e.trim().parse().ok()?),
        total,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range() {
        assert_eq!(
            parse_content_range("bytes 0-9/100"),
            Some((Some(0), Some(9), 100))
        );
        assert_eq!(parse_content_range("bytes */0"), Some((None, None, 0)));
        assert_eq!(parse_content_range("bytes 5-x/10"), None);
    }

    #[test]
    fn redirects_resolve() {
        let base: Uri = "https://h.example:8443/a/b/c?x=1".parse().unwrap();
        assert_eq!(resolve(&base, "/z").unwrap(), "https://h.example:8443/z");
        assert_eq!(resolve(&base, "z").unwrap(), "https://h.example:8443/a/b/z");
        assert_eq!(resolve(&base, "//cdn/q").unwrap(), "https://cdn/q");
        assert_eq!(resolve(&base, "http://o/p").unwrap(), "http://o/p");
    }

    #[test]
    fn origins() {
        let a: Uri = "https://hub.example/x".parse().unwrap();
        assert!(same_origin(&a, &"https://HUB.example/y".parse().unwrap()));
        assert!(!same_origin(&a, &"https://cdn.example/y".parse().unwrap()));
        assert!(!same_origin(&a, &"http://hub.example/y".parse().unwrap()));
    }
}
