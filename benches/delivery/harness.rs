//! The benchmark's parts: the receiver that verifies and times every delivery, hookline as a
//! child process, the publishers, and the figures.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::Sha256;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::watch;

pub(crate) const TOKEN: &str = "bench-admin-token-0123456789";
/// hookline's in-flight limit in every scenario, and the ceiling's concurrency.
pub(crate) const CONCURRENCY: usize = 64;
/// Concurrent publishers.
pub(crate) const PUBLISHERS: usize = 32;
/// Padding that makes a delivered body about 1 KiB.
pub(crate) const PAD: usize = 800;

/// Process-wide clock: microseconds since the benchmark started.
pub(crate) fn now_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

// ------------------------------------------------------------------------------ receiver

/// What one scenario's receiver saw. Slot `seq * hooks + hook` belongs to one (event, hook)
/// pair, so checking for duplicates and gaps needs no lock.
pub(crate) struct Sink {
    pub(crate) hooks: usize,
    /// Signing keys by hook index, set once the hooks exist.
    pub(crate) keys: RwLock<Vec<Vec<u8>>>,
    /// Publish-to-arrival microseconds + 1 (0: not arrived).
    pub(crate) latency: Vec<AtomicU32>,
    /// Arrival time (µs since the benchmark started).
    pub(crate) arrival: Vec<AtomicU64>,
    pub(crate) received: AtomicUsize,
    pub(crate) duplicates: AtomicUsize,
    pub(crate) bad: AtomicUsize,
    /// While false, requests are held (the receiver is "stopped" but connections stay up).
    pub(crate) open: watch::Sender<bool>,
    /// While true, requests are answered 503 and not booked (an endpoint that is down).
    pub(crate) failing: std::sync::atomic::AtomicBool,
}

impl Sink {
    pub(crate) fn new(hooks: usize, events: usize) -> Arc<Self> {
        let slots = hooks * events;
        Arc::new(Sink {
            hooks,
            keys: RwLock::new(vec![Vec::new(); hooks]),
            latency: (0..slots).map(|_| AtomicU32::new(0)).collect(),
            arrival: (0..slots).map(|_| AtomicU64::new(0)).collect(),
            received: AtomicUsize::new(0),
            duplicates: AtomicUsize::new(0),
            bad: AtomicUsize::new(0),
            open: watch::channel(true).0,
            failing: std::sync::atomic::AtomicBool::new(false),
        })
    }

    pub(crate) fn slots(&self) -> usize {
        self.latency.len()
    }

    /// Verifies and books one request; false if it is not a valid delivery.
    pub(crate) fn accept(&self, hook: usize, headers: &HeaderMap, body: &[u8]) -> bool {
        let at = now_us();
        let Some(signature) = headers
            .get("logto-signature-sha-256")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| hex::decode(v).ok())
        else {
            return false;
        };
        let verified = {
            let keys = self.keys.read().unwrap();
            let Some(key) = keys.get(hook) else {
                return false;
            };
            let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
            mac.update(body);
            mac.verify_slice(&signature).is_ok()
        };
        let (Some(seq), Some(t0)) = (
            number_after(body, b"\"seq\":"),
            number_after(body, b"\"t0\":"),
        ) else {
            return false;
        };
        let slot = seq as usize * self.hooks + hook;
        if !verified || slot >= self.slots() {
            return false;
        }
        let latency = (at.saturating_sub(t0)).min(u32::MAX as u64 - 1) as u32 + 1;
        if self.latency[slot].swap(latency, Ordering::Relaxed) != 0 {
            self.duplicates.fetch_add(1, Ordering::Relaxed);
        } else {
            self.arrival[slot].store(at, Ordering::Relaxed);
            self.received.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    pub(crate) async fn wait_for(&self, n: usize, within: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        while self.received.load(Ordering::Relaxed) < n {
            anyhow::ensure!(
                Instant::now() < deadline,
                "deliveries stalled at {} of {n}",
                self.received.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        Ok(())
    }

    /// Latencies in µs of the arrived deliveries, sorted.
    pub(crate) fn latencies(&self) -> Vec<u32> {
        let mut v: Vec<u32> = self
            .latency
            .iter()
            .map(|l| l.load(Ordering::Relaxed))
            .filter(|&l| l > 0)
            .map(|l| l - 1)
            .collect();
        v.sort_unstable();
        v
    }

    pub(crate) fn arrivals(&self) -> Vec<u64> {
        let mut v: Vec<u64> = self
            .arrival
            .iter()
            .map(|a| a.load(Ordering::Relaxed))
            .filter(|&a| a > 0)
            .collect();
        v.sort_unstable();
        v
    }

    /// Everything arrived exactly once, verified.
    pub(crate) fn check_complete(&self) -> anyhow::Result<()> {
        self.check_complete_but(0)
    }

    /// Every delivery of the accepted events arrived exactly once, verified, when `rejected`
    /// events were refused at publish (and so have no deliveries).
    pub(crate) fn check_complete_but(&self, rejected: usize) -> anyhow::Result<()> {
        let expected = self.slots() - rejected * self.hooks;
        let got = self.received.load(Ordering::Relaxed);
        let dup = self.duplicates.load(Ordering::Relaxed);
        let bad = self.bad.load(Ordering::Relaxed);
        anyhow::ensure!(
            got == expected && dup == 0 && bad == 0,
            "{got} of {expected} deliveries arrived, {dup} duplicates, {bad} invalid"
        );
        Ok(())
    }
}

/// The integer after `key` in a JSON text (the bodies are ours; no full parse needed).
pub(crate) fn number_after(body: &[u8], key: &[u8]) -> Option<u64> {
    let at = body.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = body[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut n: u64 = 0;
    let mut any = false;
    for d in digits {
        n = n.checked_mul(10)?.checked_add((d - b'0') as u64)?;
        any = true;
    }
    any.then_some(n)
}

pub(crate) async fn receive(
    State(sink): State<Arc<Sink>>,
    Path(hook): Path<usize>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut open = sink.open.subscribe();
    let _ = open.wait_for(|o| *o).await;
    if sink.failing.load(Ordering::Relaxed) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if sink.accept(hook, &headers, &body) {
        StatusCode::OK
    } else {
        sink.bad.fetch_add(1, Ordering::Relaxed);
        StatusCode::BAD_REQUEST
    }
}

/// Starts a receiver for `sink`; returns its base URL (`http://addr/r`).
pub(crate) async fn start_receiver(sink: Arc<Sink>) -> anyhow::Result<String> {
    let app = axum::Router::new()
        .route("/r/{hook}", axum::routing::post(receive))
        .with_state(sink);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}/r"))
}

pub(crate) fn event_body(seq: usize, t0: u64) -> String {
    json!({"event": "User.Created", "data": {"seq": seq, "t0": t0, "pad": "x".repeat(PAD)}})
        .to_string()
}

/// [`event_body`] of another event, for hooks that must not get the `User.Created` load.
pub(crate) fn deleted_body(seq: usize, t0: u64) -> String {
    json!({"event": "User.Deleted", "data": {"seq": seq, "t0": t0, "pad": "x".repeat(PAD)}})
        .to_string()
}

// ------------------------------------------------------------------------------ hookline

/// hookline's in-flight limits in a scenario.
#[derive(Clone, Copy)]
pub(crate) enum Limits {
    /// [`CONCURRENCY`] over all hooks and per hook: the ceiling's concurrency, for the
    /// throughput comparisons.
    Ceiling,
    /// hookline's defaults (256 over all hooks, 64 per hook), as an operator runs it.
    Defaults,
}

/// How many hookline processes each scenario runs (`--nodes`; several need PostgreSQL).
pub(crate) static NODES: AtomicUsize = AtomicUsize::new(1);

pub(crate) struct Hookline {
    pub(crate) children: Vec<Child>,
    /// The first node's address: hooks are made there, metrics read there.
    pub(crate) base: String,
    /// Every node's address; publishers take them in turn.
    pub(crate) bases: Vec<String>,
    pub(crate) _dir: tempfile::TempDir,
}

/// A new, empty database on the PostgreSQL server `admin_url` names; returns its URL.
pub(crate) async fn fresh_postgres_database(admin_url: &str) -> anyhow::Result<String> {
    use sqlx::Connection;
    static N: AtomicUsize = AtomicUsize::new(0);
    let name = format!(
        "bench_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await?;
    let mut url = url::Url::parse(admin_url)?;
    url.set_path(&name);
    Ok(url.to_string())
}

impl Hookline {
    /// Starts hookline with [`CONCURRENCY`] as its in-flight limits, or with its defaults.
    pub(crate) async fn start(
        database_url: Option<&str>,
        limits: Limits,
        extra: &[&str],
    ) -> anyhow::Result<Self> {
        let dir = tempfile::tempdir()?;
        let url = match database_url {
            Some(u) if u.starts_with("postgres") => fresh_postgres_database(u).await?,
            Some(u) => u.to_owned(),
            None => format!("sqlite://{}", dir.path().join("bench.db").display()),
        };
        let mut children = Vec::new();
        let mut bases = Vec::new();
        for node in 0..NODES.load(Ordering::Relaxed) {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?
                .local_addr()?
                .port();
            let log = std::fs::File::create(dir.path().join(format!("hookline-{node}.log")))?;
            let child = Command::new(env!("CARGO_BIN_EXE_hookline"))
                .args(["serve", "--allow-private-targets", "--admin-token", TOKEN])
                .args(["--listen", &format!("127.0.0.1:{port}")])
                .args(["--database-url", &url])
                .args(match limits {
                    Limits::Ceiling => vec![
                        "--max-in-flight".to_owned(),
                        CONCURRENCY.to_string(),
                        "--max-in-flight-per-hook".to_owned(),
                        CONCURRENCY.to_string(),
                    ],
                    Limits::Defaults => vec![],
                })
                .args(extra)
                // hookline's own default log level (info), as an operator runs it.
                .env_remove("RUST_LOG")
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()?;
            children.push(child);
            let base = format!("http://127.0.0.1:{port}");
            let client = reqwest::Client::new();
            let deadline = Instant::now() + Duration::from_secs(30);
            loop {
                if let Ok(r) = client.get(format!("{base}/readyz")).send().await {
                    if r.status() == 200 {
                        break;
                    }
                }
                anyhow::ensure!(Instant::now() < deadline, "hookline did not become ready");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            bases.push(base);
        }
        Ok(Hookline {
            children,
            base: bases[0].clone(),
            bases,
            _dir: dir,
        })
    }

    /// A scenario's setup: a receiver for `hooks` × `events` deliveries, hookline started with
    /// `limits` and `extra` flags, and the hooks made on it, pointing at the receiver.
    pub(crate) async fn with_receiver(
        client: &reqwest::Client,
        database_url: Option<&str>,
        limits: Limits,
        extra: &[&str],
        hooks: usize,
        events: usize,
    ) -> anyhow::Result<(Arc<Sink>, Self)> {
        let sink = Sink::new(hooks, events);
        let receiver = start_receiver(sink.clone()).await?;
        let hookline = Hookline::start(database_url, limits, extra).await?;
        hookline.create_hooks(client, &sink, &receiver).await?;
        Ok((sink, hookline))
    }

    /// Creates `sink.hooks` hooks pointing at the receiver and gives the sink their keys.
    pub(crate) async fn create_hooks(
        &self,
        client: &reqwest::Client,
        sink: &Sink,
        receiver: &str,
    ) -> anyhow::Result<()> {
        self.create_hooks_with(client, sink, receiver, &json!({}))
            .await
    }

    /// [`Self::create_hooks`] with more fields in each hook's `config` (a transform).
    pub(crate) async fn create_hooks_with(
        &self,
        client: &reqwest::Client,
        sink: &Sink,
        receiver: &str,
        config: &Value,
    ) -> anyhow::Result<()> {
        for i in 0..sink.hooks {
            let mut config = config.clone();
            config["url"] = json!(format!("{receiver}/{i}"));
            let res = client
                .post(format!("{}/api/hooks", self.base))
                .bearer_auth(TOKEN)
                .json(&json!({"name": format!("bench {i}"), "events": ["User.Created"], "config": config}))
                .send()
                .await?;
            anyhow::ensure!(res.status() == 201, "creating a hook: {}", res.status());
            let hook: Value = res.json().await?;
            let key = hook["signingKey"]
                .as_str()
                .unwrap_or_default()
                .as_bytes()
                .to_vec();
            sink.keys.write().unwrap()[i] = key;
        }
        Ok(())
    }

    /// Peak resident memory so far, in MiB.
    pub(crate) fn peak_rss_mib(&self) -> f64 {
        self.children
            .iter()
            .map(|child| {
                let status = std::fs::read_to_string(format!("/proc/{}/status", child.id()))
                    .unwrap_or_default();
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
                    .map_or(f64::NAN, |kb| kb / 1024.0)
            })
            .sum()
    }

    /// CPU time (user + system) hookline has used so far, in seconds.
    pub(crate) fn cpu_seconds(&self) -> f64 {
        self.children.iter().map(|c| cpu_seconds_of(c.id())).sum()
    }

    /// Bytes hookline has caused to be written to disk so far (`write_bytes` in
    /// `/proc/<pid>/io`: the database, its WAL and checkpoints; not sockets).
    pub(crate) fn disk_write_bytes(&self) -> f64 {
        self.children
            .iter()
            .map(|child| {
                std::fs::read_to_string(format!("/proc/{}/io", child.id()))
                    .unwrap_or_default()
                    .lines()
                    .find_map(|l| l.strip_prefix("write_bytes:"))
                    .and_then(|v| v.trim().parse::<f64>().ok())
                    .unwrap_or(f64::NAN)
            })
            .sum()
    }

    /// A sample of `/metrics`.
    pub(crate) async fn metric(
        &self,
        client: &reqwest::Client,
        series: &str,
    ) -> anyhow::Result<f64> {
        let text = client
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?;
        text.lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.strip_prefix(' ')))
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| anyhow::anyhow!("{series} not in /metrics"))
    }
}

impl Drop for Hookline {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// CPU time (user + system) process `pid` has used so far, in seconds.
pub(crate) fn cpu_seconds_of(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which is in parentheses): utime is the 12th, stime
    // the 13th; both in clock ticks (100 per second on Linux).
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(vec![], |(_, rest)| rest.split_whitespace().collect());
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(f64::NAN)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// Publishes events `from..to` from [`PUBLISHERS`] clients as fast as hookline takes them.
/// Returns how long that took.
pub(crate) async fn publish_range(
    client: &reqwest::Client,
    bases: &[String],
    from: usize,
    to: usize,
) -> anyhow::Result<Duration> {
    publish_range_of(client, bases, from, to, event_body).await
}

/// [`publish_range`] with bodies made by `body`.
pub(crate) async fn publish_range_of(
    client: &reqwest::Client,
    bases: &[String],
    from: usize,
    to: usize,
    body: fn(usize, u64) -> String,
) -> anyhow::Result<Duration> {
    let events = to;
    let next = Arc::new(AtomicUsize::new(from));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for i in 0..PUBLISHERS {
        // Publishers spread over the nodes.
        let base = &bases[i % bases.len()];
        let (client, next, url) = (client.clone(), next.clone(), format!("{base}/api/events"));
        tasks.push(tokio::spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= events {
                    return anyhow::Ok(());
                }
                publish(&client, &url, body(seq, now_us())).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(started.elapsed())
}

pub(crate) async fn publish(
    client: &reqwest::Client,
    url: &str,
    body: String,
) -> anyhow::Result<()> {
    let res = client
        .post(url)
        .bearer_auth(TOKEN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await?;
    anyhow::ensure!(res.status() == 202, "publishing: {}", res.status());
    Ok(())
}

// ------------------------------------------------------------------------------ figures

pub(crate) fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    sorted_us[i] as f64 / 1000.0
}

/// Deliveries per second between the 10th and the 90th percentile arrival: the steady state,
/// without the ramp-up and the tail.
pub(crate) fn sustained_rate(arrivals: &[u64]) -> f64 {
    let n = arrivals.len();
    if n < 10 {
        return f64::NAN;
    }
    let (a, b) = (n / 10, n * 9 / 10);
    let span = (arrivals[b] - arrivals[a]).max(1) as f64 / 1e6;
    (b - a) as f64 / span
}
