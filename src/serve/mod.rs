//! `picklescan-rs serve`: an HTTP API for upload gates.
//!
//! | Route | Answer |
//! |---|---|
//! | `POST /v1/scan?name=FILE` (file as the body) | 200 + the `--format json` document for that file, whatever the verdict |
//! | `POST /v1/scan` (`Content-Type: application/json`, `{"url": "…"}`) | remote scan of a URL under an allowed prefix ([`remote::RemoteAccess`]; 403 otherwise) |
//! | `GET /healthz` | 200 `{"status":"ok",…}` |
//! | `GET /metrics` | Prometheus text |
//!
//! An upload is streamed to a temporary file (never held in memory) while its SHA-256 is
//! computed, then memory-mapped and scanned on the blocking pool; the file is removed when the
//! scan ends. Errors are JSON `{"error": {"status": N, "message": "…"}}`: 400 bad query or body,
//! 404/405 unknown route or method, 408 body too slow or too long to arrive, 413 body too large,
//! 415 unsupported content type, 403 URL not allowed, 500 audit log failure, 503 no scan slot
//! within the queue timeout, 504 scan longer than the request timeout.

pub mod audit;
pub mod metrics;
pub mod remote;

use crate::file::hex;
use crate::report::{self, FileReport};
use audit::{AuditLog, Entry, LoggedFinding};
use axum::body::Body;
use axum::extract::{ConnectInfo, Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http_body_util::BodyExt;
use metrics::Metrics;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::timeout_at;

/// Server limits and settings.
#[derive(Debug, Clone)]
pub struct Options {
    /// Largest accepted body, in bytes (413 above).
    pub max_body: u64,
    /// Scans (uploads in progress included) at once.
    pub max_concurrent: usize,
    /// Requests allowed to wait for a scan slot (503 beyond).
    pub max_queue: usize,
    /// How long a request may wait for a scan slot (503 after).
    pub queue_timeout: Duration,
    /// Whole-request deadline: upload, queue and scan (408 while receiving, 504 while scanning).
    pub timeout: Duration,
    /// Longest wait for the next body chunk (408 after): cuts off slow clients.
    pub read_timeout: Duration,
    /// Longest wait for a request's headers on a connection.
    pub header_timeout: Duration,
    /// Folder for upload temporary files (the system's by default).
    pub temp_dir: Option<PathBuf>,
    /// Audit log file and its fsync policy.
    pub audit_log: Option<(PathBuf, audit::Fsync)>,
    /// Scanning by URL: the prefixes the server may fetch (none: disabled) and fetch settings.
    pub remote: remote::RemoteAccess,
}

impl Default for Options {
    fn default() -> Self {
        let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
        Options {
            max_body: 8 << 30,
            max_concurrent: 2 * cpus,
            max_queue: 1024,
            queue_timeout: Duration::from_secs(30),
            timeout: Duration::from_secs(600),
            read_timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(30),
            temp_dir: None,
            audit_log: None,
            remote: remote::RemoteAccess::default(),
        }
    }
}

pub use crate::engine::Engine;

/// Shared server state.
#[derive(Debug)]
pub struct App {
    /// Scanner and policy.
    pub engine: Engine,
    /// Limits.
    pub options: Options,
    /// Metrics.
    pub metrics: Metrics,
    audit: Option<AuditLog>,
    remote_client: crate::remote::http::Client,
    slots: Arc<Semaphore>,
    waiting: AtomicI64,
}

impl App {
    /// Server state; opens the audit log if one is configured, and checks that the folder for
    /// uploads can hold a file (found at start, not by answering every upload with 500).
    pub fn new(engine: Engine, options: Options) -> Result<Arc<App>, StartError> {
        let audit = match &options.audit_log {
            Some((path, fsync)) => {
                Some(
                    AuditLog::open(path, *fsync).map_err(|source| StartError::AuditLog {
                        path: path.clone(),
                        source,
                    })?,
                )
            }
            None => None,
        };
        if let Some(dir) = &options.temp_dir {
            tempfile::tempfile_in(dir).map_err(|source| StartError::TempDir {
                path: dir.clone(),
                source,
            })?;
        }
        Ok(Arc::new(App {
            remote_client: crate::remote::http::Client::new(options.remote.options.http.clone()),
            engine,
            slots: Arc::new(Semaphore::new(options.max_concurrent.max(1))),
            options,
            metrics: Metrics::default(),
            audit,
            waiting: AtomicI64::new(0),
        }))
    }
}

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The audit log cannot be opened for appending.
    #[error("cannot open the audit log {}: {source}", .path.display())]
    AuditLog {
        /// The log.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
    /// No temporary file can be made in the folder for uploads.
    #[error("the folder for uploads {} cannot hold them: {source}", .path.display())]
    TempDir {
        /// The folder.
        path: PathBuf,
        /// Cause.
        source: std::io::Error,
    },
}

/// The routes.
pub fn router(app: Arc<App>) -> Router {
    Router::new()
        .route("/v1/scan", post(scan))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics_text))
        .fallback(|State(app): State<Arc<App>>| async move {
            reject(&app, StatusCode::NOT_FOUND, "no such route".into())
        })
        .method_not_allowed_fallback(|State(app): State<Arc<App>>| async move {
            reject(
                &app,
                StatusCode::METHOD_NOT_ALLOWED,
                "method not allowed on this route".into(),
            )
        })
        .with_state(app)
}

/// Serve on `listener` until `shutdown` resolves; then stop accepting, and wait (up to the
/// request timeout) for requests holding or waiting for a scan slot to finish.
pub async fn run(
    listener: TcpListener,
    app: Arc<App>,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    use hyper_util::rt::{TokioIo, TokioTimer};
    use tower_service::Service;
    let routes = router(app.clone());
    tokio::pin!(shutdown);
    loop {
        let (stream, addr) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                // Out of file descriptors and the like: back off instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let routes = routes.clone();
        let header_timeout = app.options.header_timeout;
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |mut req: hyper::Request<_>| {
                req.extensions_mut().insert(ConnectInfo(addr));
                let mut routes = routes.clone();
                async move { routes.call(req.map(Body::new)).await }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(header_timeout)
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
    let deadline = Instant::now() + app.options.timeout;
    while (app.metrics.in_flight.load(Ordering::Relaxed) > 0
        || app.waiting.load(Ordering::Relaxed) > 0)
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok(())
}

fn error(status: StatusCode, message: String) -> Response {
    let body = serde_json::json!({"error": {"status": status.as_u16(), "message": message}});
    let mut r = (status, axum::Json(body)).into_response();
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    r
}

fn reject(app: &App, status: StatusCode, message: String) -> Response {
    app.metrics.rejected(status.as_u16());
    error(status, message)
}

async fn healthz(State(app): State<Arc<App>>) -> Response {
    axum::Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "rules": app.engine.fingerprint,
        "policy": app.engine.policy.mode.as_str(),
    }))
    .into_response()
}

async fn metrics_text(State(app): State<Arc<App>>) -> Response {
    let text = app
        .metrics
        .render(&app.engine.fingerprint, app.engine.policy.mode.as_str());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// The query of `POST /v1/scan`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScanQuery {
    name: Option<String>,
}

/// The JSON body of a remote scan.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RemoteRequest {
    url: String,
}

/// Largest JSON request body.
const MAX_JSON_BODY: u64 = 64 * 1024;
/// Longest upload name.
const MAX_NAME: usize = 1024;

/// Counts a request as waiting for a slot while alive.
struct Waiting<'a>(&'a AtomicI64, &'a AtomicI64);
impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
        self.1.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts a scan in flight while alive (moved into the blocking task).
struct InFlight(Arc<App>);
impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.metrics.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

fn json_response(report: &FileReport) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        report::json::render(std::slice::from_ref(report)),
    )
        .into_response()
}

fn parse_query(raw: Option<&str>) -> Result<ScanQuery, String> {
    let uri: axum::http::Uri = format!("/?{}", raw.unwrap_or_default())
        .parse()
        .map_err(|e| format!("bad query: {e}"))?;
    Query::<ScanQuery>::try_from_uri(&uri)
        .map(|Query(q)| q)
        .map_err(|e| format!("bad query: {}", e.body_text()))
}

async fn scan(
    State(app): State<Arc<App>>,
    ConnectInfo(client): ConnectInfo<SocketAddr>,
    RawQuery(raw_query): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let deadline = tokio::time::Instant::from_std(started + app.options.timeout);
    let query = match parse_query(raw_query.as_deref()) {
        Ok(q) => q,
        Err(e) => return reject(&app, StatusCode::BAD_REQUEST, e),
    };
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if content_type == "application/json" {
        return remote(&app, client, body, started, deadline).await;
    }
    if content_type.starts_with("multipart/") || content_type.starts_with("text/") {
        return reject(
            &app,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "unsupported content type `{content_type}`: send the file itself as the body \
                 (application/octet-stream), or JSON {{\"url\": …}}"
            ),
        );
    }
    let name = query.name.unwrap_or_else(|| "upload".to_string());
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(char::is_control) {
        return reject(
            &app,
            StatusCode::BAD_REQUEST,
            format!("bad name: 1 to {MAX_NAME} bytes without control characters"),
        );
    }
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if let Some(len) = declared.filter(|&l| l > app.options.max_body) {
        return reject(
            &app,
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "body of {len} bytes is over the limit of {} bytes",
                app.options.max_body
            ),
        );
    }

    let slot = match acquire_slot(&app, deadline).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let upload = match receive(&app, body, deadline).await {
        Ok(u) => u,
        Err((status, message)) => return reject(&app, status, message),
    };
    let task_app = app.clone();
    let task_name = name.clone();
    let job = move || {
        scan_file(&task_app.engine, upload, &task_name)
            .map_err(|e| format!("cannot scan the upload: {e}"))
    };
    finish(&app, client, name, started, deadline, slot, job).await
}

/// A scan slot and the in-flight count, held until the scan ends.
type Slot = (OwnedSemaphorePermit, InFlight);

/// Wait for a scan slot within the queue timeout (503 when none frees in time).
async fn acquire_slot(app: &Arc<App>, deadline: tokio::time::Instant) -> Result<Slot, Response> {
    if app.waiting.fetch_add(1, Ordering::Relaxed) >= app.options.max_queue as i64 {
        app.waiting.fetch_sub(1, Ordering::Relaxed);
        return Err(reject(
            app,
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests waiting for a scan slot".into(),
        ));
    }
    app.metrics.queued.fetch_add(1, Ordering::Relaxed);
    let permit = {
        let _waiting = Waiting(&app.waiting, &app.metrics.queued);
        let until = deadline.min(tokio::time::Instant::now() + app.options.queue_timeout);
        match timeout_at(until, app.slots.clone().acquire_owned()).await {
            Ok(Ok(p)) => p,
            _ => {
                return Err(reject(
                    app,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "no scan slot became free in time; retry later".into(),
                ))
            }
        }
    };
    app.metrics.in_flight.fetch_add(1, Ordering::Relaxed);
    Ok((permit, InFlight(app.clone())))
}

/// Run `job` (a blocking scan) on the blocking pool within the request deadline, count it,
/// write its audit line, and answer with its report. `name` is the upload's name or the URL.
async fn finish(
    app: &Arc<App>,
    client: SocketAddr,
    name: String,
    started: Instant,
    deadline: tokio::time::Instant,
    slot: Slot,
    job: impl FnOnce() -> Result<FileReport, String> + Send + 'static,
) -> Response {
    let task_app = app.clone();
    let task = tokio::task::spawn_blocking(move || {
        // The slot is held until the scan really ends, even if the client is gone.
        let _slot = slot;
        let begun = Instant::now();
        let report = job();
        if let Ok(r) = &report {
            task_app.metrics.scanned(r.verdict, r.size, begun.elapsed());
        }
        report
    });
    let report = match timeout_at(deadline, task).await {
        Ok(Ok(Ok(r))) => r,
        Ok(Ok(Err(e))) => return reject(app, StatusCode::INTERNAL_SERVER_ERROR, e),
        Ok(Err(e)) => {
            return reject(
                app,
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("scan task failed: {e}"),
            )
        }
        Err(_) => {
            return reject(
                app,
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "scan did not finish within {} s",
                    app.options.timeout.as_secs_f64()
                ),
            )
        }
    };

    if let Some(log) = &app.audit {
        let entry = Entry {
            time: audit::rfc3339(SystemTime::now()),
            client: client.to_string(),
            name,
            sha256: report.sha256.clone().unwrap_or_default(),
            size: report.size,
            verdict: report.verdict.as_str().to_string(),
            findings: report
                .findings
                .iter()
                .map(|f| LoggedFinding {
                    rule: f.rule.clone(),
                    global: f.global.clone(),
                })
                .collect(),
            policy: app.engine.policy.mode.as_str().to_string(),
            rules: app.engine.fingerprint.clone(),
            duration_ms: started.elapsed().as_secs_f64() * 1e3,
        };
        if let Err(e) = log.append(&entry).await {
            return reject(app, StatusCode::INTERNAL_SERVER_ERROR, e);
        }
    }
    app.metrics.request_seconds.observe(started.elapsed());
    json_response(&report)
}

/// A received upload: its temporary file (removed on drop), size and hash.
struct Upload {
    file: std::fs::File,
    _path: tempfile::TempPath,
    size: u64,
    sha256: String,
}

/// Stream the body to a temporary file, hashing it, within the limits.
async fn receive(
    app: &App,
    mut body: Body,
    deadline: tokio::time::Instant,
) -> Result<Upload, (StatusCode, String)> {
    let internal = |e: std::io::Error| {
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot store the upload: {e}"),
        )
    };
    let dir = app
        .options
        .temp_dir
        .clone()
        .unwrap_or_else(std::env::temp_dir);
    let tmp = tempfile::Builder::new()
        .prefix("picklescan-upload-")
        .tempfile_in(dir)
        .map_err(internal)?;
    let (file, path) = tmp.into_parts();
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(file));
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    loop {
        let until = deadline.min(tokio::time::Instant::now() + app.options.read_timeout);
        let frame = match timeout_at(until, body.frame()).await {
            Err(_) => {
                return Err((
                    StatusCode::REQUEST_TIMEOUT,
                    "the body arrived too slowly; upload cut off".into(),
                ))
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return Err((
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {e}"),
                ))
            }
            Ok(Some(Ok(f))) => f,
        };
        let Ok(chunk) = frame.into_data() else {
            continue; // trailers
        };
        size += chunk.len() as u64;
        app.metrics
            .bytes_received
            .fetch_add(chunk.len() as u64, Ordering::Relaxed);
        if size > app.options.max_body {
            return Err((
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("body is over the limit of {} bytes", app.options.max_body),
            ));
        }
        hasher.update(&chunk);
        out.write_all(&chunk).await.map_err(internal)?;
    }
    out.flush().await.map_err(internal)?;
    let file = out.into_inner().into_std().await;
    Ok(Upload {
        file,
        _path: path,
        size,
        sha256: hex(&hasher.finalize()),
    })
}

/// Scan a received upload (blocking: run it on the blocking pool).
fn scan_file(engine: &Engine, upload: Upload, name: &str) -> std::io::Result<FileReport> {
    let mut report = if upload.size == 0 {
        engine.scan(&[], name)
    } else {
        // SAFETY: the file is this server's private temporary file; nothing else writes to or
        // truncates it while the map is alive (it is removed only after the map is dropped).
        let map = unsafe { memmap2::Mmap::map(&upload.file)? };
        if map.len() as u64 != upload.size {
            return Err(std::io::Error::other("temporary file changed size"));
        }
        engine.scan(&map, name)
    };
    report.sha256 = Some(upload.sha256);
    Ok(report)
}

async fn remote(
    app: &Arc<App>,
    client: SocketAddr,
    mut body: Body,
    started: Instant,
    deadline: tokio::time::Instant,
) -> Response {
    let mut buf = Vec::new();
    loop {
        let until = deadline.min(tokio::time::Instant::now() + app.options.read_timeout);
        match timeout_at(until, body.frame()).await {
            Err(_) => {
                return reject(
                    app,
                    StatusCode::REQUEST_TIMEOUT,
                    "the body arrived too slowly".into(),
                )
            }
            Ok(None) => break,
            Ok(Some(Err(e))) => {
                return reject(
                    app,
                    StatusCode::BAD_REQUEST,
                    format!("cannot read the body: {e}"),
                )
            }
            Ok(Some(Ok(f))) => {
                if let Ok(d) = f.into_data() {
                    buf.extend_from_slice(&d);
                    if buf.len() as u64 > MAX_JSON_BODY {
                        return reject(
                            app,
                            StatusCode::PAYLOAD_TOO_LARGE,
                            format!("JSON body over {MAX_JSON_BODY} bytes"),
                        );
                    }
                }
            }
        }
    }
    let req: RemoteRequest = match serde_json::from_slice(&buf) {
        Ok(r) => r,
        Err(e) => {
            return reject(
                app,
                StatusCode::BAD_REQUEST,
                format!("bad JSON body (expected {{\"url\": \"…\"}}): {e}"),
            )
        }
    };
    if let Err(e) = app.options.remote.check(&req.url) {
        let status = match e {
            remote::RemoteError::Disabled | remote::RemoteError::NotAllowed(_) => {
                StatusCode::FORBIDDEN
            }
            remote::RemoteError::BadUrl(_) => StatusCode::BAD_REQUEST,
        };
        return reject(app, status, e.to_string());
    }
    let slot = match acquire_slot(app, deadline).await {
        Ok(s) => s,
        Err(r) => return r,
    };
    let task_app = app.clone();
    let url = req.url.clone();
    let job = move || {
        let a = &task_app;
        Ok(a.options.remote.scan(&a.remote_client, &a.engine, &url))
    };
    finish(app, client, req.url, started, deadline, slot, job).await
}
