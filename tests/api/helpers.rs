//! Test harness: a hookline app spawned in-process (or as the real binary), a real HTTP
//! receiver that records what it gets, and small helpers around the API.

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use hookline::configuration::ServeArgs;
use hookline::startup::Application;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tempfile::TempDir;
use tokio::sync::{watch, Notify};
use tokio_util::sync::CancellationToken;

pub const TOKEN: &str = "test-admin-token-0123456789";

// ---------------------------------------------------------------- receiver

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub headers: HeaderMap,
    pub body: Bytes,
    pub at: Instant,
}

impl Received {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("the receiver got JSON")
    }
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }
}

/// What the receiver answers: a script consumed in order, then `default`.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn status(status: u16) -> Self {
        Reply {
            status,
            headers: vec![],
            body: String::new(),
            delay: Duration::ZERO,
        }
    }
    pub fn body(mut self, body: &str) -> Self {
        self.body = body.to_owned();
        self
    }
    pub fn header(mut self, name: &'static str, value: &str) -> Self {
        self.headers.push((name, value.to_owned()));
        self
    }
    pub fn delay(mut self, d: Duration) -> Self {
        self.delay = d;
        self
    }
}

struct ReceiverState {
    requests: Mutex<Vec<Received>>,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    arrived: Notify,
    /// While false, requests are recorded and then held until it turns true.
    gate: watch::Sender<bool>,
}

/// A real HTTP server on loopback that records every request.
#[derive(Clone)]
pub struct Receiver {
    pub addr: SocketAddr,
    state: Arc<ReceiverState>,
}

impl Receiver {
    pub async fn start() -> Self {
        let state = Arc::new(ReceiverState {
            requests: Mutex::new(Vec::new()),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::status(200).body("ok")),
            arrived: Notify::new(),
            gate: watch::channel(true).0,
        });
        let s = state.clone();
        let app = axum::Router::new().fallback(move |headers: HeaderMap, body: Bytes| {
            let s = s.clone();
            async move {
                s.requests.lock().unwrap().push(Received {
                    headers,
                    body,
                    at: Instant::now(),
                });
                s.arrived.notify_waiters();
                let mut gate = s.gate.subscribe();
                let _ = gate.wait_for(|open| *open).await;
                let reply = s
                    .script
                    .lock()
                    .unwrap()
                    .pop_front()
                    .unwrap_or_else(|| s.default.lock().unwrap().clone());
                tokio::time::sleep(reply.delay).await;
                let mut res =
                    (StatusCode::from_u16(reply.status).unwrap(), reply.body).into_response();
                for (k, v) in reply.headers {
                    res.headers_mut().insert(k, v.parse().unwrap());
                }
                res
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Receiver { addr, state }
    }

    pub fn url(&self) -> String {
        format!("http://{}/hook", self.addr)
    }

    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.state.script.lock().unwrap().extend(replies);
    }

    pub fn set_default(&self, reply: Reply) {
        *self.state.default.lock().unwrap() = reply;
    }

    pub fn close_gate(&self) {
        self.state.gate.send_replace(false);
    }

    pub fn open_gate(&self) {
        self.state.gate.send_replace(true);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.requests.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.state.requests.lock().unwrap().len()
    }

    /// Waits until at least `n` requests have arrived (panics after `within`).
    pub async fn wait_for(&self, n: usize, within: Duration) -> Vec<Received> {
        let deadline = Instant::now() + within;
        loop {
            let notified = self.state.arrived.notified();
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!("expected {n} requests within {within:?}, got {}", got.len());
            }
            let _ = tokio::time::timeout(left.min(Duration::from_millis(200)), notified).await;
        }
    }

    /// Asserts that no more than `n` requests arrive during `for_`.
    pub async fn assert_stays_at(&self, n: usize, for_: Duration) {
        tokio::time::sleep(for_).await;
        assert_eq!(self.count(), n, "unexpected extra requests");
    }
}

/// A port on which nothing listens (bound, then released).
pub async fn dead_url() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/hook")
}

// ---------------------------------------------------------------- app in-process

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: Arc<TempDir>,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub fn test_args(dir: &Path) -> ServeArgs {
    let mut args = ServeArgs::defaults();
    args.listen = "127.0.0.1:0".into();
    args.database_url = format!("sqlite://{}", dir.join("hookline.db").display());
    args.admin_token = Some(TOKEN.into());
    args.allow_private_targets = true;
    args.request_timeout = Duration::from_secs(3);
    args.retry_schedule = "100ms,200ms".parse().unwrap();
    args
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut ServeArgs)) -> Self {
        Self::spawn_in(Arc::new(TempDir::new().unwrap()), configure).await
    }

    /// Starts an app on the database in `dir` (reused across restarts).
    pub async fn spawn_in(dir: Arc<TempDir>, configure: impl FnOnce(&mut ServeArgs)) -> Self {
        hookline::telemetry::init(hookline::configuration::LogFormat::Text);
        let mut args = test_args(dir.path());
        configure(&mut args);
        let app = Application::build(args).await.expect("the app builds");
        let base = format!("http://{}", app.local_addr().unwrap());
        let shutdown = CancellationToken::new();
        let handle = tokio::spawn(app.run_until_stopped(shutdown.clone()));
        TestApp {
            base,
            client: reqwest::Client::new(),
            dir,
            shutdown,
            handle,
        }
    }

    pub async fn stop(self) -> Arc<TempDir> {
        self.shutdown.cancel();
        self.handle.await.unwrap().unwrap();
        self.dir
    }

    /// `GET {path}` outside `/api`, without a token (health, readiness, metrics).
    pub async fn get_public(&self, path: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{path}", self.base))
            .send()
            .await
            .unwrap()
    }

    pub fn api(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}/api{path}", self.base))
            .bearer_auth(TOKEN)
    }

    pub async fn create_hook(&self, events: &[&str], url: &str) -> Value {
        let res = self
            .api(reqwest::Method::POST, "/hooks")
            .json(&json!({"name": "test hook", "events": events, "config": {"url": url}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 201, "creating a hook");
        res.json().await.unwrap()
    }

    /// Sends `body` as JSON and returns the answer's JSON, whatever the status.
    pub async fn send_json(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let res = self.api(method, path).json(&body).send().await.unwrap();
        res.json().await.unwrap()
    }

    pub async fn publish(&self, body: Value) -> Value {
        let res = self
            .api(reqwest::Method::POST, "/events")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202, "publishing an event");
        res.json().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let res = self.api(reqwest::Method::GET, path).send().await.unwrap();
        assert_eq!(res.status(), 200, "GET {path}");
        res.json().await.unwrap()
    }

    /// Polls `path` until `done` holds for its JSON (panics after `within`).
    pub async fn poll_json(
        &self,
        path: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let v = self.get_json(path).await;
            if done(&v) {
                return v;
            }
            assert!(
                Instant::now() < deadline,
                "condition on {path} not met within {within:?}: {v}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

// ---------------------------------------------------------------- app as a process

/// The real `hookline` binary, for tests that kill it, signal it or read its output.
pub struct Process {
    pub child: Child,
    pub base: String,
    pub stdout: Arc<Mutex<String>>,
    /// The logs (hookline logs to stderr).
    pub stderr: Arc<Mutex<String>>,
}

/// Copies everything from `pipe` into a shared string, on a thread of its own.
fn collect(mut pipe: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let out = Arc::new(Mutex::new(String::new()));
    let sink = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            sink.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    out
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Process {
    pub async fn start(db_dir: &Path, extra: &[&str]) -> Self {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookline"));
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--database-url")
            .arg(format!("sqlite://{}", db_dir.join("hookline.db").display()))
            .args(extra)
            .env_remove("HOOKLINE_ADMIN_TOKEN")
            .env("RUST_LOG", "trace")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("the binary starts");
        let stdout = collect(child.stdout.take().unwrap());
        let stderr = collect(child.stderr.take().unwrap());
        let base = format!("http://127.0.0.1:{port}");
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(r) = client.get(format!("{base}/healthz")).send().await {
                if r.status() == 200 {
                    break;
                }
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!("hookline exited early with {status}");
            }
            assert!(Instant::now() < deadline, "hookline did not become healthy");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Process {
            child,
            base,
            stdout,
            stderr,
        }
    }

    /// `GET /api{path}` with the test admin token, as JSON.
    pub async fn get_json(&self, path: &str) -> Value {
        let res = reqwest::Client::new()
            .get(format!("{}/api{path}", self.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "GET {path}");
        res.json().await.unwrap()
    }

    /// `{method} /api{path}` with the test admin token and a JSON body; the answer's JSON.
    pub async fn send_json(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        reqwest::Client::new()
            .request(method, format!("{}/api{path}", self.base))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Sends SIGTERM and waits for the exit status.
    pub async fn terminate(mut self) -> std::process::ExitStatus {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success());
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "hookline did not stop after SIGTERM"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn compat_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/compat")
}

/// Asserts an API error: the status, a JSON `{code, message}` body with this code. Returns the body.
pub async fn expect_error(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status(), status, "{}", res.url());
    let body: Value = res.json().await.expect("errors are JSON");
    assert_eq!(body["code"], code, "{body}");
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    body
}
