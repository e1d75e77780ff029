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

// ---------------------------------------------------------------- databases

/// The backend this run of the suite tests: `HOOKLINE_TEST_DATABASE=sqlite` (the default) or
/// `postgres` (then `HOOKLINE_TEST_POSTGRES_URL` names a server where each test creates a
/// database of its own; `scripts/with-postgres` starts one).
pub fn postgres_run() -> bool {
    match std::env::var("HOOKLINE_TEST_DATABASE").as_deref() {
        Ok("postgres") => true,
        Ok("sqlite") | Err(_) => false,
        Ok(other) => panic!("HOOKLINE_TEST_DATABASE={other}: use sqlite or postgres"),
    }
}

/// The server the PostgreSQL run uses (an administrator's URL).
pub fn postgres_admin_url() -> String {
    std::env::var("HOOKLINE_TEST_POSTGRES_URL").expect(
        "HOOKLINE_TEST_POSTGRES_URL is not set: run the suite through scripts/with-postgres (see the README)",
    )
}

/// Creates an empty database on the test server and returns its URL.
pub async fn new_postgres_database() -> String {
    use sqlx::Connection;
    let admin = postgres_admin_url();
    let name = format!("t_{}", hookline::domain::id::new_id());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("the test PostgreSQL server answers");
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&name);
    url.to_string()
}

/// Where one test's data lives: a temporary directory (always; some tests write files there)
/// and a database of the backend under test (a file in that directory, or a database of its
/// own on the PostgreSQL server). Restarts reuse it.
pub struct TestDb {
    dir: TempDir,
    url: String,
}

impl TestDb {
    pub async fn new() -> Arc<Self> {
        let dir = TempDir::new().unwrap();
        let url = if postgres_run() {
            new_postgres_database().await
        } else {
            format!("sqlite://{}", dir.path().join("hookline.db").display())
        };
        Arc::new(TestDb { dir, url })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn is_sqlite(&self) -> bool {
        self.url.starts_with("sqlite:")
    }

    /// How many rows `table` holds now (read beside the running app: SQLite's WAL lets a
    /// reader in while it writes).
    pub async fn count_rows(&self, table: &str) -> i64 {
        use sqlx::Connection;
        let sql = format!("SELECT COUNT(*) FROM {table}");
        if self.is_sqlite() {
            let url = format!("{}?mode=ro", self.url);
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            return sqlx::query_scalar(&sql).fetch_one(&mut conn).await.unwrap();
        }
        let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
        sqlx::query_scalar(&sql).fetch_one(&mut conn).await.unwrap()
    }

    /// Everything the database stores, as text: the SQLite files' bytes (WAL included), or
    /// every row of every table. For tests that check a secret is never stored in the clear.
    pub async fn stored_text(&self) -> String {
        if self.is_sqlite() {
            let mut text = String::new();
            for entry in std::fs::read_dir(self.path()).unwrap() {
                let path = entry.unwrap().path();
                if path.to_string_lossy().contains("hookline.db") {
                    // The `-wal` and `-shm` files go when the last connection closes, which
                    // may be just now: one that is gone holds nothing.
                    match std::fs::read(&path) {
                        Ok(bytes) => text.push_str(&String::from_utf8_lossy(&bytes)),
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => panic!("reading {}: {e}", path.display()),
                    }
                }
            }
            return text;
        }
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_all(&mut conn)
        .await
        .unwrap();
        let mut text = String::new();
        for t in tables {
            let rows: Vec<String> = sqlx::query_scalar(&format!("SELECT t::text FROM {t} t"))
                .fetch_all(&mut conn)
                .await
                .unwrap();
            text.push_str(&rows.join("\n"));
        }
        text
    }
}

// ---------------------------------------------------------------- app in-process

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub dir: Arc<TestDb>,
    shutdown: CancellationToken,
    handle: tokio::task::JoinHandle<anyhow::Result<()>>,
}

pub fn test_args(db: &TestDb) -> ServeArgs {
    let mut args = ServeArgs::defaults();
    args.listen = "127.0.0.1:0".into();
    args.database_url = db.url().to_owned();
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
        Self::spawn_in(TestDb::new().await, configure).await
    }

    /// Starts an app on the database `dir` (reused across restarts).
    pub async fn spawn_in(dir: Arc<TestDb>, configure: impl FnOnce(&mut ServeArgs)) -> Self {
        hookline::telemetry::init(hookline::configuration::LogFormat::Text);
        let mut args = test_args(&dir);
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

    pub async fn stop(self) -> Arc<TestDb> {
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
    pub async fn start(db: &TestDb, extra: &[&str]) -> Self {
        let port = free_port();
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_hookline"));
        cmd.arg("serve")
            .arg("--listen")
            .arg(format!("127.0.0.1:{port}"))
            .arg("--database-url")
            .arg(db.url())
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

// ---------------------------------------------------------------- a PostgreSQL of one's own

/// A throwaway PostgreSQL cluster for one test, for tests that stop and start the server
/// (the shared one serves every other test). Stopped and deleted when dropped.
pub struct PrivateCluster {
    child: Child,
    /// An administrator's URL (its `postgres` database).
    pub url: String,
    /// `pg_ctl -D … -l …`, as a shell command line (with `runuser` when run as root).
    ctl: String,
}

impl PrivateCluster {
    pub fn start() -> Self {
        use std::io::BufRead;
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/with-postgres");
        let mut child = Command::new(script)
            .args([
                "bash",
                "-c",
                r#"echo "$HOOKLINE_TEST_POSTGRES_URL"; echo "$HOOKLINE_TEST_POSTGRES_CTL"; read -r _"#,
            ])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("scripts/with-postgres starts");
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let url = lines.next().unwrap().unwrap();
        let ctl = lines.next().unwrap().unwrap();
        assert!(url.starts_with("postgres://"), "{url}");
        PrivateCluster { child, url, ctl }
    }

    /// Runs `pg_ctl <action>` (`stop -m fast`, `start -w`).
    pub fn ctl(&self, action: &str) {
        let status = Command::new("sh")
            .args(["-c", &format!("{} {action} >/dev/null", self.ctl)])
            .status()
            .unwrap();
        assert!(status.success(), "pg_ctl {action}");
    }

    /// The cluster's data directory.
    pub fn data_dir(&self) -> PathBuf {
        let data = self
            .ctl
            .split_whitespace()
            .skip_while(|w| *w != "-D")
            .nth(1)
            .expect("pg_ctl -D <dir>");
        PathBuf::from(data)
    }

    /// Turns TLS on with a throwaway self-signed certificate (openssl) and restarts.
    pub fn enable_tls(&self) {
        let data = self.data_dir();
        let status = Command::new("openssl")
            .args([
                "req",
                "-new",
                "-x509",
                "-days",
                "1",
                "-nodes",
                "-subj",
                "/CN=localhost",
            ])
            .arg("-keyout")
            .arg(data.join("server.key"))
            .arg("-out")
            .arg(data.join("server.crt"))
            .stderr(Stdio::null())
            .status()
            .expect("openssl runs");
        assert!(status.success());
        let owner = std::fs::metadata(data.join("PG_VERSION")).unwrap();
        for f in ["server.key", "server.crt"] {
            let path = data.join(f);
            std::os::unix::fs::chown(
                &path,
                Some(std::os::unix::fs::MetadataExt::uid(&owner)),
                Some(std::os::unix::fs::MetadataExt::gid(&owner)),
            )
            .unwrap();
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
        }
        let conf = data.join("postgresql.conf");
        let old = std::fs::read_to_string(&conf).unwrap();
        std::fs::write(&conf, format!("{old}\nssl = on\n")).unwrap();
        self.ctl("-w restart");
    }

    /// Puts `line` first in the cluster's `pg_hba.conf` (so it wins) and reloads.
    pub fn hba_first(&self, line: &str) {
        let path = self.data_dir().join("pg_hba.conf");
        let old = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, format!("{line}\n{old}")).unwrap();
        self.ctl("reload");
    }

    /// A new, empty database on this cluster.
    pub async fn database(&self) -> Arc<TestDb> {
        use sqlx::Connection;
        let name = format!("t_{}", hookline::domain::id::new_id());
        let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .unwrap();
        let mut url = url::Url::parse(&self.url).unwrap();
        url.set_path(&name);
        Arc::new(TestDb {
            dir: TempDir::new().unwrap(),
            url: url.to_string(),
        })
    }
}

impl Drop for PrivateCluster {
    fn drop(&mut self) {
        // Closing its stdin ends the `read`; the script then stops and deletes the cluster.
        drop(self.child.stdin.take());
        let _ = self.child.wait();
    }
}
