//! The HTTP API, driven over loopback by a real HTTP client (ureq, on tokio's blocking threads).

use crate::common::Asm;
use crate::server as file_server;
use picklescan_rs::policy::{Mode, Policy};
use picklescan_rs::rules::RuleSet;
use picklescan_rs::serve::{self, audit::Fsync, App, Engine, Options};
use picklescan_rs::{Limits, Scanner};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the server answered.
struct Answer {
    status: u16,
    retry_after: Option<String>,
    body: String,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

/// An HTTP client that reports every status as an answer (none as an error).
#[derive(Clone)]
struct Client(ureq::Agent);

impl Client {
    fn new() -> Client {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build();
        Client(config.into())
    }

    async fn get(&self, url: String) -> Answer {
        let agent = self.0.clone();
        tokio::task::spawn_blocking(move || answer(agent.get(&url).call()))
            .await
            .unwrap()
    }

    async fn post(&self, url: String, content_type: Option<&'static str>, body: Vec<u8>) -> Answer {
        let agent = self.0.clone();
        tokio::task::spawn_blocking(move || {
            let mut req = agent.post(&url);
            if let Some(t) = content_type {
                req = req.header("content-type", t);
            }
            answer(req.send(&body[..]))
        })
        .await
        .unwrap()
    }
}

fn answer(r: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Answer {
    let mut r = r.expect("the server answers");
    let retry_after = r
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    Answer {
        status: r.status().as_u16(),
        retry_after,
        body: r.body_mut().read_to_string().unwrap(),
    }
}

struct Server {
    addr: SocketAddr,
    app: Arc<App>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Server {
    async fn start(options: Options, policy: Policy) -> Server {
        let scanner = Scanner::new(RuleSet::builtin(), Limits::default());
        let app = App::new(Engine::new(scanner, policy), options).unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(serve::run(listener, app.clone(), async move {
            let _ = rx.await;
        }));
        Server {
            addr,
            app,
            stop: Some(tx),
            task,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    async fn upload(&self, client: &Client, name: &str, body: Vec<u8>) -> (u16, Value) {
        let url = self.url(&format!("/v1/scan?name={name}"));
        let r = client
            .post(url, Some("application/octet-stream"), body)
            .await;
        (r.status, r.json())
    }

    async fn metrics(&self) -> String {
        Client::new().get(self.url("/metrics")).await.body
    }

    async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("server stops")
            .unwrap()
            .unwrap();
    }
}

fn clean() -> Vec<u8> {
    // {'w': [1, 2]} at protocol 2.
    Asm::new()
        .proto(2)
        .op(b'}')
        .unicode("w")
        .op(b']')
        .int(1)
        .op(b'a')
        .int(2)
        .op(b'a')
        .op(b's')
        .stop()
        .build()
}

fn dangerous() -> Vec<u8> {
    Asm::new()
        .global("posix", "system")
        .unicode("echo pwned")
        .tuple1()
        .reduce()
        .stop()
        .build()
}

fn suspicious() -> Vec<u8> {
    Asm::new()
        .proto(2)
        .global("acme.models", "Net")
        .op(b')')
        .reduce()
        .stop()
        .build()
}

fn malformed() -> Vec<u8> {
    // A MARK and a tuple that never ends.
    Asm::new().proto(2).mark().int(7).build()
}

fn sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn file0(doc: &Value) -> &Value {
    &doc["files"][0]
}

/// Send raw bytes, read the whole answer (`Connection: close`), return the status and body.
async fn raw(addr: SocketAddr, head: &str, chunks: &[&[u8]], pause: Duration) -> (u16, String) {
    let mut s = TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(head.as_bytes()).await;
    for c in chunks {
        if s.write_all(c).await.is_err() {
            break;
        }
        tokio::time::sleep(pause).await;
    }
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn verdicts_for_clean_dangerous_suspicious_and_malformed_uploads() {
    let server = Server::start(Options::default(), Policy::default()).await;
    let client = Client::new();

    let body = clean();
    let (status, doc) = server.upload(&client, "weights.pkl", body.clone()).await;
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["summary"]["files"], 1);
    assert_eq!(doc["summary"]["clean"], 1);
    assert_eq!(file0(&doc)["path"], "weights.pkl");
    assert_eq!(file0(&doc)["verdict"], "clean");
    assert_eq!(file0(&doc)["size"], body.len());
    assert_eq!(file0(&doc)["sha256"], sha256(&body));

    let (status, doc) = server.upload(&client, "evil.pkl", dangerous()).await;
    assert_eq!(status, 200, "dangerous files are still answered 200: {doc}");
    assert_eq!(file0(&doc)["verdict"], "dangerous");
    let f = &file0(&doc)["findings"][0];
    assert_eq!(f["global"], "posix.system");
    assert_eq!(f["severity"], "critical");
    assert_eq!(f["call"], "posix.system('echo pwned')");

    let (status, doc) = server.upload(&client, "net.pkl", suspicious()).await;
    assert_eq!(status, 200);
    assert_eq!(file0(&doc)["verdict"], "suspicious");
    assert_eq!(file0(&doc)["findings"][0]["rule"], "PS001");

    let (status, doc) = server.upload(&client, "broken.pkl", malformed()).await;
    assert_eq!(status, 200);
    assert_eq!(file0(&doc)["verdict"], "suspicious", "{doc}");

    let (status, doc) = server.upload(&client, "empty.pkl", Vec::new()).await;
    assert_eq!(status, 200);
    assert_ne!(
        file0(&doc)["verdict"],
        "clean",
        "an empty upload is never clean"
    );

    // Names are reported as given, percent-decoded.
    let (_, doc) = server
        .upload(&client, "dir%2Fmodel%20v2.bin", clean())
        .await;
    assert_eq!(file0(&doc)["path"], "dir/model v2.bin");

    let health = client.get(server.url("/healthz")).await.json();
    assert_eq!(health["status"], "ok");
    assert_eq!(health["rules"].as_str().unwrap().len(), 64);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn bad_requests_get_json_errors() {
    let options = Options {
        max_body: 1024,
        read_timeout: Duration::from_millis(500),
        ..Options::default()
    };
    let server = Server::start(options, Policy::default()).await;
    let client = Client::new();
    let error_of = |doc: &Value| doc["error"]["message"].as_str().unwrap_or("").to_string();

    // Declared too large: refused before reading.
    let (status, doc) = server.upload(&client, "big.bin", vec![0u8; 2048]).await;
    assert_eq!(status, 413, "{doc}");
    assert!(error_of(&doc).contains("1024"));
    // Too large without a declared length (chunked): cut off while streaming.
    let head = "POST /v1/scan?name=big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
                Connection: close\r\n\r\n";
    let chunk = format!("{:x}\r\n{}\r\n", 600, "a".repeat(600));
    let (status, body) = raw(
        server.addr,
        head,
        &[
            chunk.as_bytes(),
            chunk.as_bytes(),
            chunk.as_bytes(),
            b"0\r\n\r\n",
        ],
        Duration::ZERO,
    )
    .await;
    assert_eq!(status, 413, "{body}");

    // Unknown query parameter, empty name, control characters.
    for q in ["nme=x.pkl", "name=", "name=a%0Ab", "name=x&name=y"] {
        let r = client
            .post(server.url(&format!("/v1/scan?{q}")), None, clean())
            .await;
        assert_eq!(r.status, 400, "{q}");
        let doc = r.json();
        assert_eq!(doc["error"]["status"], 400);
    }

    // JSON bodies: malformed, unknown field, bad scheme, and a remote scan on a server that
    // allows none.
    for (body, want) in [
        ("{\"url\": ", 400),
        ("{\"nope\": 1}", 400),
        ("{\"url\": \"file:///etc/passwd\"}", 400),
        ("{\"url\": \"https://example.com/m.pt\"}", 403),
    ] {
        let r = client
            .post(
                server.url("/v1/scan"),
                Some("application/json"),
                body.as_bytes().to_vec(),
            )
            .await;
        assert_eq!(r.status, want, "{body}");
        let doc = r.json();
        assert!(!error_of(&doc).is_empty());
    }

    // Multipart forms are not the API.
    let r = client
        .post(
            server.url("/v1/scan?name=a"),
            Some("multipart/form-data; boundary=x"),
            b"--x--".to_vec(),
        )
        .await;
    assert_eq!(r.status, 415);

    // Wrong method, unknown route.
    let r = client.get(server.url("/v1/scan")).await;
    assert_eq!(r.status, 405);
    let r = client.get(server.url("/nope")).await;
    assert_eq!(r.status, 404);
    let doc = r.json();
    assert_eq!(doc["error"]["status"], 404);

    // A client that stops sending is cut off.
    let head = "POST /v1/scan?name=slow HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\
                Connection: close\r\n\r\n";
    let (status, body) = raw(server.addr, head, &[b"0123456789"], Duration::from_secs(2)).await;
    assert_eq!(status, 408, "{body}");

    // Garbage instead of HTTP: the connection is refused, the server carries on.
    let _ = raw(
        server.addr,
        "\x16\x03\x01garbage\r\n\r\n",
        &[],
        Duration::ZERO,
    )
    .await;
    let (status, doc) = server.upload(&client, "ok.pkl", clean()).await;
    assert_eq!(status, 200);
    assert_eq!(file0(&doc)["verdict"], "clean");

    let metrics = server.metrics().await;
    assert!(
        metrics.contains("picklescan_rejected_total{status=\"413\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("picklescan_rejected_total{status=\"408\"} 1"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_free_slot_gives_503() {
    let options = Options {
        max_concurrent: 1,
        queue_timeout: Duration::from_millis(300),
        read_timeout: Duration::from_secs(5),
        ..Options::default()
    };
    let server = Server::start(options, Policy::default()).await;
    let addr = server.addr;
    // Hold the only slot with an upload that trickles in.
    let slow = tokio::spawn(async move {
        let head = "POST /v1/scan?name=slow HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\
                    Connection: close\r\n\r\n";
        raw(addr, head, &[b"N", b"N", b"."], Duration::from_millis(700)).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let client = Client::new();
    let r = client
        .post(server.url("/v1/scan?name=x"), None, clean())
        .await;
    assert_eq!(r.status, 503);
    assert_eq!(r.retry_after.as_deref(), Some("1"));
    let (status, _) = slow.await.unwrap();
    assert_eq!(status, 200);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_concurrent_uploads_are_all_judged_logged_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let options = Options {
        max_concurrent: 4,
        audit_log: Some((log.clone(), Fsync::Batch)),
        ..Options::default()
    };
    let server = Arc::new(Server::start(options, Policy::default()).await);
    let client = Client::new();
    type Maker = fn() -> Vec<u8>;
    let kinds: [(&str, Maker); 3] = [
        ("clean", clean),
        ("suspicious", suspicious),
        ("dangerous", dangerous),
    ];
    let mut tasks = Vec::new();
    let mut total_bytes = 0u64;
    for i in 0..50 {
        let (want, make) = kinds[i % 3];
        // Vary the bytes so every upload has its own hash.
        let mut body = make();
        body.extend(Asm::new().int(i as i32).stop().build());
        total_bytes += body.len() as u64;
        let server = server.clone();
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            let name = format!("m{i}.pkl");
            let (status, doc) = server.upload(&client, &name, body.clone()).await;
            assert_eq!(status, 200, "{doc}");
            assert_eq!(file0(&doc)["verdict"], want, "{name}: {doc}");
            assert_eq!(file0(&doc)["sha256"], sha256(&body));
            (name, sha256(&body), want)
        }));
    }
    let mut expected = Vec::new();
    for t in tasks {
        expected.push(t.await.unwrap());
    }

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 50);
    let fingerprint = server.app.engine.fingerprint.clone();
    for line in &lines {
        let e: Value = serde_json::from_str(line).expect("every line is one JSON object");
        let (name, sha, want) = expected
            .iter()
            .find(|(n, _, _)| e["name"] == *n)
            .expect("logged name was uploaded");
        assert_eq!(e["sha256"], *sha);
        assert_eq!(e["verdict"], *want);
        assert_eq!(e["rules"], fingerprint);
        assert!(e["client"].as_str().unwrap().starts_with("127.0.0.1:"));
        let time = e["time"].as_str().unwrap();
        assert!(
            time.len() == 24 && time.ends_with('Z') && &time[10..11] == "T",
            "{time}"
        );
        assert!(e["duration_ms"].as_f64().unwrap() >= 0.0);
        assert!(e["size"].as_u64().unwrap() > 0);
        if *want == "dangerous" {
            assert!(e["findings"]
                .as_array()
                .unwrap()
                .iter()
                .any(|f| f["global"] == "posix.system" && f["rule"].is_string()));
        }
        let _ = name;
    }

    let metrics = server.metrics().await;
    let count = |v: &str| -> u64 {
        let key = format!("picklescan_scans_total{{verdict=\"{v}\"}} ");
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&key))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {metrics}"))
    };
    assert_eq!(count("clean"), 17);
    assert_eq!(count("suspicious"), 17);
    assert_eq!(count("dangerous"), 16);
    assert!(metrics.contains(&format!("picklescan_scanned_bytes_total {total_bytes}\n")));
    assert!(metrics.contains("picklescan_scans_in_flight 0\n"));
    assert!(metrics.contains("picklescan_scan_duration_seconds_count 50\n"));
    assert!(metrics.contains("picklescan_request_duration_seconds_bucket{le=\"+Inf\"} 50\n"));
    assert!(metrics.contains(&format!("fingerprint=\"{fingerprint}\"")));
    Arc::try_unwrap(server).ok().unwrap().stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torch_weights_only_policy_is_applied_to_uploads() {
    let server = Server::start(Options::default(), Policy::new(Mode::TorchWeightsOnly)).await;
    let client = Client::new();
    // An OrderedDict at protocol 2: only allowlisted globals, but not a torch.save file.
    let body = Asm::new()
        .proto(2)
        .global("collections", "OrderedDict")
        .op(b')')
        .reduce()
        .stop()
        .build();
    let (_, doc) = server.upload(&client, "sd.pkl", body).await;
    let wo = &file0(&doc)["torch_weights_only"];
    assert_eq!(wo["container"], "pickle");
    assert_eq!(wo["loads"], false);
    assert_eq!(wo["add_safe_globals"], serde_json::json!([]));
    assert_eq!(file0(&doc)["verdict"], "clean");
    // A global the rules allow but torch does not.
    let body = Asm::new()
        .proto(2)
        .global("collections", "defaultdict")
        .op(b')')
        .reduce()
        .stop()
        .build();
    let (_, doc) = server.upload(&client, "dd.pkl", body).await;
    assert_eq!(file0(&doc)["verdict"], "suspicious", "{doc}");
    let wo = &file0(&doc)["torch_weights_only"];
    assert_eq!(
        wo["add_safe_globals"],
        serde_json::json!(["collections.defaultdict"])
    );
    assert_eq!(
        wo["loads_after_allowlisting"], false,
        "not a torch file: {wo}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn urls_under_an_allowed_prefix_are_fetched_and_judged() {
    use file_server::{Data, Req, Resp};
    let corpus = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    let mut files = std::collections::HashMap::new();
    for (name, path) in [
        ("state_dict.pt", "benign/torch_state_dict.pt"),
        ("evil.pt", "containers/torch_zip_evil_in_state_dict.pt"),
    ] {
        files.insert(name.to_string(), Data::file(corpus.join(path)));
    }
    let files = Arc::new(files);
    let origin = file_server::Server::start(move |req: &Req| {
        match req.path.strip_prefix("/models/").and_then(|n| files.get(n)) {
            Some(d) => Resp::file(req, d, true),
            None => Resp::status(404),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("audit.jsonl");
    let mut options = Options {
        audit_log: Some((log.clone(), Fsync::Batch)),
        ..Options::default()
    };
    options.remote.allow = vec![format!("{}/models/", origin.base())];
    let server = Server::start(options, Policy::default()).await;
    let client = Client::new();
    let ask = |url: String| {
        let (client, endpoint) = (client.clone(), server.url("/v1/scan"));
        async move {
            let body = serde_json::json!({ "url": url }).to_string().into_bytes();
            let r = client.post(endpoint, Some("application/json"), body).await;
            (r.status, r.json())
        }
    };

    let base = origin.base();
    for (name, want) in [("state_dict.pt", "clean"), ("evil.pt", "dangerous")] {
        origin.stats.reset();
        let (status, doc) = ask(format!("{base}/models/{name}")).await;
        assert_eq!(status, 200, "{doc}");
        let f = file0(&doc);
        assert_eq!(f["verdict"], want, "{doc}");
        assert!(f["size"].as_u64().unwrap() > 0);
        // The report counts what the origin really sent.
        let moved = f["transferred"]
            .as_u64()
            .expect("bytes transferred reported");
        assert_eq!(moved, origin.stats.body_bytes(), "{doc}");
    }
    // A missing file is an error, never clean.
    let (status, doc) = ask(format!("{base}/models/missing.pt")).await;
    assert_eq!(status, 200, "{doc}");
    assert!(file0(&doc)["error"].is_string(), "{doc}");
    assert_ne!(file0(&doc)["verdict"], "clean", "{doc}");
    // Outside the prefix, or a look-alike host: refused before anything is fetched.
    let before = origin.stats.requests();
    let port = origin.addr.port();
    for url in [
        format!("{base}/other/evil.pt"),
        format!("{base}/models.evil.pt"),
        format!("http://localhost:{port}/models/evil.pt"),
    ] {
        let (status, doc) = ask(url.clone()).await;
        assert_eq!(status, 403, "{url}: {doc}");
    }
    assert_eq!(
        origin.stats.requests(),
        before,
        "refused URLs are never fetched"
    );

    let text = std::fs::read_to_string(&log).unwrap();
    let logged: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(logged.len(), 3, "{text}");
    assert_eq!(logged[1]["name"], format!("{base}/models/evil.pt"));
    assert_eq!(logged[1]["verdict"], "dangerous");
    server.stop().await;
}
