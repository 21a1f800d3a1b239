//! A small threaded HTTP/1.1 server on 127.0.0.1 for remote-scanning tests and benchmarks:
//! single-range requests (`bytes=a-b`, `bytes=a-`, `bytes=-n`), files from memory or disk,
//! and a handler closure per server to compose redirects, tokens, rate limits and listings.
//! Every request is logged (path, Range, Authorization) and body bytes are counted.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Bytes a response can carry.
#[derive(Clone)]
pub enum Data {
    Mem(Arc<Vec<u8>>),
    File(Arc<PathBuf>, u64),
}

impl Data {
    pub fn mem(v: Vec<u8>) -> Data {
        Data::Mem(Arc::new(v))
    }
    pub fn file(p: PathBuf) -> Data {
        let len = std::fs::metadata(&p).expect("served file").len();
        Data::File(Arc::new(p), len)
    }
    pub fn len(&self) -> u64 {
        match self {
            Data::Mem(v) => v.len() as u64,
            Data::File(_, n) => *n,
        }
    }
    fn write(&self, out: &mut dyn Write, start: u64, end: u64) -> std::io::Result<()> {
        match self {
            Data::Mem(v) => out.write_all(&v[start as usize..end as usize]),
            Data::File(p, _) => {
                let mut f = std::fs::File::open(p.as_path())?;
                f.seek(SeekFrom::Start(start))?;
                let mut left = end - start;
                let mut buf = vec![0u8; 1 << 20];
                while left > 0 {
                    let n = (left as usize).min(buf.len());
                    f.read_exact(&mut buf[..n])?;
                    out.write_all(&buf[..n])?;
                    left -= n as u64;
                }
                Ok(())
            }
        }
    }
}

/// A parsed request.
#[derive(Debug, Clone)]
pub struct Req {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
}

impl Req {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// What to answer.
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Data,
    /// Part of `body` to send.
    pub span: (u64, u64),
    /// Sent in chunks (`Transfer-Encoding: chunked`), without `Content-Length`.
    pub chunked: bool,
}

impl Resp {
    pub fn status(status: u16) -> Resp {
        Resp {
            status,
            headers: Vec::new(),
            body: Data::mem(Vec::new()),
            span: (0, 0),
            chunked: false,
        }
    }
    /// The same answer sent in chunks, without `Content-Length`.
    pub fn chunked(mut self) -> Resp {
        self.chunked = true;
        self
    }
    pub fn with_header(mut self, k: &str, v: &str) -> Resp {
        self.headers.push((k.to_string(), v.to_string()));
        self
    }
    pub fn redirect(to: &str) -> Resp {
        Resp::status(302).with_header("Location", to)
    }
    pub fn json(v: &serde_json::Value) -> Resp {
        let body = serde_json::to_vec(v).unwrap();
        let n = body.len() as u64;
        Resp {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: Data::mem(body),
            span: (0, n),
            chunked: false,
        }
    }
    /// `data`, honouring a single Range header when `ranges`.
    pub fn file(req: &Req, data: &Data, ranges: bool) -> Resp {
        let len = data.len();
        let whole = Resp {
            status: 200,
            headers: vec![],
            body: data.clone(),
            span: (0, len),
            chunked: false,
        };
        if !ranges {
            return whole;
        }
        let Some(spec) = req.header("range").and_then(|r| r.strip_prefix("bytes=")) else {
            return whole.with_header("Accept-Ranges", "bytes");
        };
        if spec.contains(',') {
            return whole;
        }
        let Some((a, b)) = spec.split_once('-') else {
            return whole;
        };
        let (start, end) = if a.is_empty() {
            let n: u64 = b.parse().unwrap_or(0);
            (len.saturating_sub(n), len)
        } else {
            let s: u64 = a.parse().unwrap_or(u64::MAX);
            let e = if b.is_empty() {
                len
            } else {
                b.parse::<u64>()
                    .map(|e| e.saturating_add(1).min(len))
                    .unwrap_or(0)
            };
            (s, e)
        };
        if start >= end || start >= len {
            return Resp::status(416).with_header("Content-Range", &format!("bytes */{len}"));
        }
        Resp {
            status: 206,
            headers: vec![(
                "Content-Range".into(),
                format!("bytes {start}-{}/{len}", end - 1),
            )],
            body: data.clone(),
            span: (start, end),
            chunked: false,
        }
    }
}

/// One logged request.
#[derive(Debug, Clone)]
pub struct Logged {
    pub path: String,
    pub range: Option<String>,
    pub authorization: Option<String>,
}

#[derive(Default)]
pub struct Stats {
    pub requests: AtomicU64,
    /// Body bytes of the responses written whole.
    pub body_bytes: AtomicU64,
    /// Body bytes written, those of responses cut short by the client included.
    pub body_written: AtomicU64,
    pub log: Mutex<Vec<Logged>>,
}

impl Stats {
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }
    pub fn body_bytes(&self) -> u64 {
        self.body_bytes.load(Ordering::Relaxed)
    }
    pub fn body_written(&self) -> u64 {
        self.body_written.load(Ordering::Relaxed)
    }
    pub fn log(&self) -> Vec<Logged> {
        self.log.lock().unwrap().clone()
    }
    pub fn reset(&self) {
        self.requests.store(0, Ordering::Relaxed);
        self.body_bytes.store(0, Ordering::Relaxed);
        self.body_written.store(0, Ordering::Relaxed);
        self.log.lock().unwrap().clear();
    }
}

type Handler = dyn Fn(&Req) -> Resp + Send + Sync;

/// A running server; stops when dropped.
pub struct Server {
    pub addr: SocketAddr,
    pub stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start(handler: impl Fn(&Req) -> Resp + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
        let addr = listener.local_addr().unwrap();
        let stats = Arc::new(Stats::default());
        let stop = Arc::new(AtomicBool::new(false));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let (stats, stop) = (stats.clone(), stop.clone());
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                    let Ok(conn) = conn else { continue };
                    let (handler, stats) = (handler.clone(), stats.clone());
                    std::thread::spawn(move || {
                        let _ = serve_conn(conn, &*handler, &stats);
                    });
                }
            });
        }
        Server { addr, stats, stop }
    }

    /// `http://127.0.0.1:PORT`
    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Each write one chunk of a chunked body.
struct Chunked<'w, W: Write>(&'w mut W);

impl<W: Write> Write for Chunked<'_, W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        for piece in buf.chunks(1 << 20) {
            write!(self.0, "{:x}\r\n", piece.len())?;
            self.0.write_all(piece)?;
            self.0.write_all(b"\r\n")?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

/// A writer counting the bytes it passes on, each piece before it is written: the count is
/// never less than what the client may have read.
struct Counted<'a>(&'a mut dyn Write, &'a AtomicU64);

impl Write for Counted<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = buf.len().min(64 << 10);
        self.1.fetch_add(n as u64, Ordering::Relaxed);
        self.0.write_all(&buf[..n])?;
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

fn serve_conn(conn: TcpStream, handler: &Handler, stats: &Stats) -> std::io::Result<()> {
    conn.set_read_timeout(Some(std::time::Duration::from_secs(30)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut out = std::io::BufWriter::with_capacity(1 << 20, conn);
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or("").to_string();
        let path = parts.next().unwrap_or("/").to_string();
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if reader.read_line(&mut h)? == 0 {
                return Ok(());
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let req = Req {
            method,
            path,
            headers,
        };
        stats.requests.fetch_add(1, Ordering::Relaxed);
        stats.log.lock().unwrap().push(Logged {
            path: req.path.clone(),
            range: req.header("range").map(String::from),
            authorization: req.header("authorization").map(String::from),
        });
        let resp = handler(&req);
        let (s, e) = resp.span;
        let reason = match resp.status {
            200 => "OK",
            206 => "Partial Content",
            302 => "Found",
            401 => "Unauthorized",
            404 => "Not Found",
            416 => "Range Not Satisfiable",
            429 => "Too Many Requests",
            _ => "Status",
        };
        write!(out, "HTTP/1.1 {} {reason}\r\n", resp.status)?;
        for (k, v) in &resp.headers {
            write!(out, "{k}: {v}\r\n")?;
        }
        if resp.chunked {
            write!(out, "Transfer-Encoding: chunked\r\n\r\n")?;
        } else {
            write!(out, "Content-Length: {}\r\n\r\n", e - s)?;
        }
        if req.method != "HEAD" {
            let count = &stats.body_written;
            if resp.chunked {
                let mut chunked = Chunked(&mut out);
                resp.body.write(&mut Counted(&mut chunked, count), s, e)?;
                write!(out, "0\r\n\r\n")?;
            } else {
                resp.body.write(&mut Counted(&mut out, count), s, e)?;
            }
            stats.body_bytes.fetch_add(e - s, Ordering::Relaxed);
        }
        out.flush()?;
    }
}
