//! The delivery benchmark: hookline against the machine's own ceiling, in one run.
//!
//! ```sh
//! cargo bench --bench delivery               # the full run (about 2 minutes on 2 cores)
//! cargo bench --bench delivery -- --quick    # smaller counts, for a smoke test
//! cargo bench --bench delivery -- --only latency   # one scenario: throughput, latency or backlog
//! cargo bench --bench delivery -- --database-url postgres://…   # on PostgreSQL
//! cargo bench --bench delivery -- --database-url postgres://… --nodes 3   # 3 nodes on it
//! ```
//!
//! With a PostgreSQL URL (an administrator's), every scenario runs on a database of its own,
//! created on that server; with `--nodes N`, N `hookline serve` processes share it, events
//! are published to them in turn and hooks are made on the first (the others see them at
//! once). Memory and CPU figures are the nodes' sums. `scripts/with-postgres` starts a
//! throwaway server; give it `HOOKLINE_PG_DURABLE=1` to keep PostgreSQL's durable defaults.
//!
//! What it does, in order:
//! 1. **Ceiling**: posts signed ~1 KiB bodies straight to its own receiver at hookline's
//!    concurrency. A delivery is one such POST, so this is the most deliveries per second the
//!    machine can do in this run. It is measured at the start and again right before each
//!    throughput scenario, which is compared with its own: on a shared machine the ceiling
//!    itself moves by half within minutes.
//! 2. **Throughput** for 1, 10 and 100 hooks: starts the release binary on a fresh SQLite file,
//!    publishes events through `POST /api/events` from concurrent clients and measures ingest
//!    events/s, deliveries/s at the receiver and publish-to-arrival latency.
//! 3. **Latency under moderate load**: 1,000 events/s to 10 hooks, hookline at its default
//!    limits, latency measured from each event's scheduled publish time (so a stall is not
//!    hidden by publishing less).
//! 4. **Backlog**: the receiver stalls (accepts, does not answer) while 1,000,000 deliveries
//!    queue up; then it answers and the drain is timed decile by decile, to show whether
//!    claiming slows down while the queue is large.
//!
//! Every delivery is checked at the receiver: its Logto signature must verify with its hook's
//! key, and each (event, hook) pair must arrive exactly once. Peak RSS is read from
//! `/proc/<pid>/status` (VmHWM). Results print as a table and as one JSON line.
//!
//! The benchmark process (publishers and receiver) shares the machine with hookline, exactly
//! as the ceiling's client and receiver do.

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

const TOKEN: &str = "bench-admin-token-0123456789";
/// hookline's in-flight limit in every scenario, and the ceiling's concurrency.
const CONCURRENCY: usize = 64;
/// Concurrent publishers.
const PUBLISHERS: usize = 32;
/// Padding that makes a delivered body about 1 KiB.
const PAD: usize = 800;

/// Process-wide clock: microseconds since the benchmark started.
fn now_us() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_micros() as u64
}

// ------------------------------------------------------------------------------ receiver

/// What one scenario's receiver saw. Slot `seq * hooks + hook` belongs to one (event, hook)
/// pair, so checking for duplicates and gaps needs no lock.
struct Sink {
    hooks: usize,
    /// Signing keys by hook index, set once the hooks exist.
    keys: RwLock<Vec<Vec<u8>>>,
    /// Publish-to-arrival microseconds + 1 (0: not arrived).
    latency: Vec<AtomicU32>,
    /// Arrival time (µs since the benchmark started).
    arrival: Vec<AtomicU64>,
    received: AtomicUsize,
    duplicates: AtomicUsize,
    bad: AtomicUsize,
    /// While false, requests are held (the receiver is "stopped" but connections stay up).
    open: watch::Sender<bool>,
}

impl Sink {
    fn new(hooks: usize, events: usize) -> Arc<Self> {
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
        })
    }

    fn slots(&self) -> usize {
        self.latency.len()
    }

    /// Verifies and books one request; false if it is not a valid delivery.
    fn accept(&self, hook: usize, headers: &HeaderMap, body: &[u8]) -> bool {
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

    async fn wait_for(&self, n: usize, within: Duration) -> anyhow::Result<()> {
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
    fn latencies(&self) -> Vec<u32> {
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

    fn arrivals(&self) -> Vec<u64> {
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
    fn check_complete(&self) -> anyhow::Result<()> {
        self.check_complete_but(0)
    }

    /// Every delivery of the accepted events arrived exactly once, verified, when `rejected`
    /// events were refused at publish (and so have no deliveries).
    fn check_complete_but(&self, rejected: usize) -> anyhow::Result<()> {
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
fn number_after(body: &[u8], key: &[u8]) -> Option<u64> {
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

async fn receive(
    State(sink): State<Arc<Sink>>,
    Path(hook): Path<usize>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let mut open = sink.open.subscribe();
    let _ = open.wait_for(|o| *o).await;
    if sink.accept(hook, &headers, &body) {
        StatusCode::OK
    } else {
        sink.bad.fetch_add(1, Ordering::Relaxed);
        StatusCode::BAD_REQUEST
    }
}

/// Starts a receiver for `sink`; returns its base URL (`http://addr/r`).
async fn start_receiver(sink: Arc<Sink>) -> anyhow::Result<String> {
    let app = axum::Router::new()
        .route("/r/{hook}", axum::routing::post(receive))
        .with_state(sink);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok(format!("http://{addr}/r"))
}

fn event_body(seq: usize, t0: u64) -> String {
    json!({"event": "User.Created", "data": {"seq": seq, "t0": t0, "pad": "x".repeat(PAD)}})
        .to_string()
}

// ------------------------------------------------------------------------------ hookline

/// hookline's in-flight limits in a scenario.
#[derive(Clone, Copy)]
enum Limits {
    /// [`CONCURRENCY`] over all hooks and per hook: the ceiling's concurrency, for the
    /// throughput comparisons.
    Ceiling,
    /// hookline's defaults (256 over all hooks, 16 per hook), as an operator runs it.
    Defaults,
}

/// How many hookline processes each scenario runs (`--nodes`; several need PostgreSQL).
static NODES: AtomicUsize = AtomicUsize::new(1);

struct Hookline {
    children: Vec<Child>,
    /// The first node's address: hooks are made there, metrics read there.
    base: String,
    /// Every node's address; publishers take them in turn.
    bases: Vec<String>,
    _dir: tempfile::TempDir,
}

/// A new, empty database on the PostgreSQL server `admin_url` names; returns its URL.
async fn fresh_postgres_database(admin_url: &str) -> anyhow::Result<String> {
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
    async fn start(
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

    /// Creates `sink.hooks` hooks pointing at the receiver and gives the sink their keys.
    async fn create_hooks(
        &self,
        client: &reqwest::Client,
        sink: &Sink,
        receiver: &str,
    ) -> anyhow::Result<()> {
        for i in 0..sink.hooks {
            let res = client
                .post(format!("{}/api/hooks", self.base))
                .bearer_auth(TOKEN)
                .json(&json!({"name": format!("bench {i}"), "events": ["User.Created"], "config": {"url": format!("{receiver}/{i}")}}))
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
    fn peak_rss_mib(&self) -> f64 {
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
    fn cpu_seconds(&self) -> f64 {
        self.children.iter().map(|c| cpu_seconds_of(c.id())).sum()
    }

    /// A sample of `/metrics`.
    async fn metric(&self, client: &reqwest::Client, series: &str) -> anyhow::Result<f64> {
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
fn cpu_seconds_of(pid: u32) -> f64 {
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
async fn publish_range(
    client: &reqwest::Client,
    bases: &[String],
    from: usize,
    to: usize,
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
                publish(&client, &url, event_body(seq, now_us())).await?;
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(started.elapsed())
}

async fn publish(client: &reqwest::Client, url: &str, body: String) -> anyhow::Result<()> {
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

fn percentile_ms(sorted_us: &[u32], p: f64) -> f64 {
    if sorted_us.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted_us.len() as f64 - 1.0) * p).round() as usize;
    sorted_us[i] as f64 / 1000.0
}

/// Deliveries per second between the 10th and the 90th percentile arrival: the steady state,
/// without the ramp-up and the tail.
fn sustained_rate(arrivals: &[u64]) -> f64 {
    let n = arrivals.len();
    if n < 10 {
        return f64::NAN;
    }
    let (a, b) = (n / 10, n * 9 / 10);
    let span = (arrivals[b] - arrivals[a]).max(1) as f64 / 1e6;
    (b - a) as f64 / span
}

#[derive(Debug, Clone, serde::Serialize)]
struct Throughput {
    hooks: usize,
    events: usize,
    deliveries: usize,
    ingest_events_per_s: f64,
    sustained_deliveries_per_s: f64,
    /// All deliveries over the time from the first publish to the last arrival.
    overall_deliveries_per_s: f64,
    /// The ceiling measured right before this scenario: the machine's noise changes within
    /// minutes, so each scenario is compared with its own.
    ceiling_posts_per_s: f64,
    ratio_to_ceiling: f64,
    latency_p50_ms: f64,
    latency_p99_ms: f64,
    peak_rss_mib: f64,
    /// hookline's CPU time per delivery, ingest included.
    cpu_us_per_delivery: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
struct Backlog {
    deliveries: usize,
    queued_in_s: f64,
    queue_depth_metric: f64,
    drain_per_s: f64,
    /// Drain rate in each tenth of the backlog, from the fullest queue to the last tenth.
    drain_per_s_by_decile: Vec<f64>,
    /// Ingest events/s over the first and the last tenth of the queueing (each event queues one
    /// delivery per hook).
    ingest_first_tenth_per_s: f64,
    ingest_last_tenth_per_s: f64,
    peak_rss_mib: f64,
    /// hookline's CPU time per delivery while draining (claims, sends and records only).
    drain_cpu_us_per_delivery: f64,
}

// ------------------------------------------------------------------------------ scenarios

async fn ceiling(client: &reqwest::Client, posts: usize) -> anyhow::Result<f64> {
    let sink = Sink::new(1, posts);
    let key = b"ceiling-signing-key".to_vec();
    sink.keys.write().unwrap()[0] = key.clone();
    let url = format!("{}/0", start_receiver(sink.clone()).await?);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (client, next, url, key) = (client.clone(), next.clone(), url.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= posts {
                    return anyhow::Ok(());
                }
                // Built and signed per request, as hookline signs per delivery.
                let body = event_body(seq, now_us());
                let mut mac = Hmac::<Sha256>::new_from_slice(&key)?;
                mac.update(body.as_bytes());
                let res = client
                    .post(&url)
                    .header("content-type", "application/json")
                    .header(
                        "logto-signature-sha-256",
                        hex::encode(mac.finalize().into_bytes()),
                    )
                    .body(body)
                    .send()
                    .await?;
                anyhow::ensure!(res.status() == 200, "ceiling POST: {}", res.status());
            }
        }));
    }
    for t in tasks {
        t.await??;
    }
    let rate = posts as f64 / started.elapsed().as_secs_f64();
    sink.check_complete()?;
    Ok(rate)
}

/// The ceiling after a warm-up (fresh receiver, new connections).
async fn measure_ceiling(client: &reqwest::Client, posts: usize) -> anyhow::Result<f64> {
    ceiling(client, (posts / 20).max(500)).await?;
    ceiling(client, posts).await
}

async fn throughput(
    client: &reqwest::Client,
    database_url: Option<&str>,
    hooks: usize,
    events: usize,
    ceiling_posts: usize,
) -> anyhow::Result<Throughput> {
    let ceiling = measure_ceiling(client, ceiling_posts).await?;
    let sink = Sink::new(hooks, events);
    let receiver = start_receiver(sink.clone()).await?;
    let hookline = Hookline::start(database_url, Limits::Ceiling, &[]).await?;
    hookline.create_hooks(client, &sink, &receiver).await?;
    let started = now_us();
    let cpu_before = hookline.cpu_seconds();
    let ingest = publish_range(client, &hookline.bases, 0, events).await?;
    sink.wait_for(sink.slots(), Duration::from_secs(300))
        .await?;
    sink.check_complete()?;
    let arrivals = sink.arrivals();
    let last = *arrivals.last().unwrap_or(&started);
    let latencies = sink.latencies();
    let sustained = sustained_rate(&arrivals);
    Ok(Throughput {
        hooks,
        events,
        deliveries: sink.slots(),
        ingest_events_per_s: events as f64 / ingest.as_secs_f64(),
        sustained_deliveries_per_s: sustained,
        overall_deliveries_per_s: sink.slots() as f64 / ((last - started) as f64 / 1e6),
        ceiling_posts_per_s: ceiling,
        ratio_to_ceiling: sustained / ceiling,
        latency_p50_ms: percentile_ms(&latencies, 0.5),
        latency_p99_ms: percentile_ms(&latencies, 0.99),
        peak_rss_mib: hookline.peak_rss_mib(),
        cpu_us_per_delivery: (hookline.cpu_seconds() - cpu_before) * 1e6 / sink.slots() as f64,
    })
}

/// Publishes at a fixed rate and measures latency from each event's scheduled time. Returns
/// p50 and p99 in ms, the peak RSS in MiB and how many publishes were refused (503: an
/// overloaded node sheds load rather than queueing without bound; their events are not
/// expected at the receiver).
async fn fixed_rate(
    client: &reqwest::Client,
    database_url: Option<&str>,
    hooks: usize,
    per_second: usize,
    seconds: usize,
) -> anyhow::Result<(f64, f64, f64, usize)> {
    let events = per_second * seconds;
    let sink = Sink::new(hooks, events);
    let receiver = start_receiver(sink.clone()).await?;
    let hookline = Hookline::start(database_url, Limits::Defaults, &[]).await?;
    hookline.create_hooks(client, &sink, &receiver).await?;
    let urls: Vec<String> = hookline
        .bases
        .iter()
        .map(|b| format!("{b}/api/events"))
        .collect();
    let interval_us = 1_000_000 / per_second as u64;
    let start = now_us() + 10_000;
    let epoch = Instant::now() - Duration::from_micros(now_us());
    let mut tasks = Vec::with_capacity(events);
    for seq in 0..events {
        let t0 = start + seq as u64 * interval_us;
        tokio::time::sleep_until((epoch + Duration::from_micros(t0)).into()).await;
        let (client, url) = (client.clone(), urls[seq % urls.len()].clone());
        tasks.push(tokio::spawn(async move {
            let res = client
                .post(&url)
                .bearer_auth(TOKEN)
                .header("content-type", "application/json")
                .body(event_body(seq, t0))
                .send()
                .await?;
            match res.status().as_u16() {
                202 => anyhow::Ok(false),
                503 => anyhow::Ok(true),
                other => anyhow::bail!("publishing: {other}"),
            }
        }));
    }
    let mut rejected = 0;
    for t in tasks {
        rejected += usize::from(t.await??);
    }
    sink.wait_for(sink.slots() - rejected * hooks, Duration::from_secs(120))
        .await?;
    sink.check_complete_but(rejected)?;
    let latencies = sink.latencies();
    Ok((
        percentile_ms(&latencies, 0.5),
        percentile_ms(&latencies, 0.99),
        hookline.peak_rss_mib(),
        rejected,
    ))
}

async fn backlog(
    client: &reqwest::Client,
    database_url: Option<&str>,
    deliveries: usize,
) -> anyhow::Result<Backlog> {
    const HOOKS: usize = 100;
    let events = deliveries / HOOKS;
    let sink = Sink::new(HOOKS, events);
    let receiver = start_receiver(sink.clone()).await?;
    // The receiver holds requests instead of answering, so hookline must not time them out
    // while the backlog builds.
    let hookline = Hookline::start(
        database_url,
        Limits::Ceiling,
        &["--request-timeout", "600s"],
    )
    .await?;
    hookline.create_hooks(client, &sink, &receiver).await?;
    sink.open.send_replace(false);

    let tenth = (events / 10).max(1);
    let started = Instant::now();
    // The first and the last tenth are timed apart: if inserting slowed down as the queue
    // grows, the last tenth would show it.
    let first = publish_range(client, &hookline.bases, 0, tenth).await?;
    publish_range(client, &hookline.bases, tenth, events - tenth).await?;
    let last_tenth = publish_range(client, &hookline.bases, events - tenth, events).await?;
    let queued_in = started.elapsed();
    let depth = hookline
        .metric(client, "hookline_queue_depth{state=\"due\"}")
        .await?;

    let drain_start = now_us();
    let cpu_before = hookline.cpu_seconds();
    sink.open.send_replace(true);
    sink.wait_for(sink.slots(), Duration::from_secs(600))
        .await?;
    sink.check_complete()?;
    let arrivals = sink.arrivals();
    let last = *arrivals.last().unwrap_or(&drain_start);
    let n = arrivals.len();
    let mut by_decile = Vec::new();
    let mut from = drain_start;
    for d in 1..=10 {
        let to = arrivals[(n * d / 10).saturating_sub(1)];
        by_decile.push((n / 10) as f64 / ((to - from).max(1) as f64 / 1e6));
        from = to;
    }
    Ok(Backlog {
        deliveries: sink.slots(),
        queued_in_s: queued_in.as_secs_f64(),
        queue_depth_metric: depth,
        drain_per_s: n as f64 / ((last - drain_start) as f64 / 1e6),
        drain_per_s_by_decile: by_decile,
        ingest_first_tenth_per_s: tenth as f64 / first.as_secs_f64(),
        ingest_last_tenth_per_s: tenth as f64 / last_tenth.as_secs_f64(),
        peak_rss_mib: hookline.peak_rss_mib(),
        drain_cpu_us_per_delivery: (hookline.cpu_seconds() - cpu_before) * 1e6 / n as f64,
    })
}

// ------------------------------------------------------------------------------ main

struct Options {
    database_url: Option<String>,
    quick: bool,
    /// Only this scenario (`throughput` with its ceiling, `latency` or `backlog`), for working
    /// on one figure.
    only: Option<String>,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        database_url: None,
        quick: false,
        only: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--only" => o.only = args.next(),
            "--database-url" => o.database_url = args.next(),
            "--nodes" => {
                let n: usize = args.next().unwrap_or_default().parse()?;
                anyhow::ensure!(n >= 1, "--nodes takes a count of at least 1");
                NODES.store(n, Ordering::Relaxed);
            }
            // `cargo bench` passes this to every bench target.
            "--bench" => {}
            other => {
                anyhow::bail!("unknown argument {other}; takes --quick, --only throughput|latency|backlog, --database-url URL and --nodes N")
            }
        }
    }
    Ok(o)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = options()?;
    let db = o.database_url.as_deref();
    let nodes = NODES.load(Ordering::Relaxed);
    anyhow::ensure!(
        nodes == 1 || db.is_some_and(|u| u.starts_with("postgres")),
        "--nodes above 1 needs a PostgreSQL --database-url"
    );
    let scale = if o.quick { 10 } else { 1 };
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()?;
    now_us();
    let machine = machine();
    eprintln!("machine: {machine}");
    match o.only.as_deref() {
        Some("latency") => {
            let (p50, p99, rss, rejected) = fixed_rate(&client, db, 10, 1_000, 10).await?;
            println!("latency at 1,000 events/s to 10 hooks: p50 {p50:.2} ms, p99 {p99:.2} ms (peak RSS {rss:.1} MiB; {rejected} publishes refused with 503)");
            return Ok(());
        }
        Some("backlog") => {
            let b = backlog(&client, db, 1_000_000 / scale).await?;
            println!("{}", json!(b));
            return Ok(());
        }
        Some("throughput") => {
            for (hooks, events) in [(10, 20_000), (100, 2_000)] {
                let t = throughput(&client, db, hooks, events / scale, 100_000 / scale).await?;
                println!("{}", json!(t));
            }
            return Ok(());
        }
        Some(other) => anyhow::bail!("--only takes throughput, latency or backlog, not {other}"),
        None => {}
    }

    eprintln!("measuring the ceiling ...");
    let ceiling = measure_ceiling(&client, 200_000 / scale).await?;
    eprintln!("  {ceiling:.0} POSTs/s");

    let mut runs = Vec::new();
    for (hooks, events) in [(1, 40_000), (10, 10_000), (100, 1_000)] {
        eprintln!("throughput: {hooks} hooks x {} events ...", events / scale);
        let t = throughput(&client, db, hooks, events / scale, 100_000 / scale).await?;
        eprintln!("  {t:?}");
        runs.push(t);
    }

    eprintln!("latency at 1,000 events/s to 10 hooks ...");
    let (p50, p99, rss, rejected) =
        fixed_rate(&client, db, 10, 1_000, if o.quick { 2 } else { 10 }).await?;
    eprintln!("  p50 {p50:.2} ms, p99 {p99:.2} ms");

    let backlog_size = 1_000_000 / scale;
    eprintln!("backlog: {backlog_size} deliveries queued behind a stalled receiver ...");
    let b = backlog(&client, db, backlog_size).await?;
    eprintln!("  {b:?}");

    let best = runs
        .iter()
        .map(|r| r.ratio_to_ceiling)
        .fold(f64::NAN, f64::max);
    println!();
    let store = match db {
        Some(u) if u.starts_with("postgres") => format!("PostgreSQL, {nodes} node(s)"),
        Some(_) => "SQLite (given URL)".to_owned(),
        None => "SQLite".to_owned(),
    };
    println!("hookline delivery benchmark ({machine}; {store}; concurrency {CONCURRENCY} per node; ~1 KiB bodies)");
    println!("ceiling at the start: {ceiling:.0} signed POSTs/s straight to the receiver (each throughput row is compared with the ceiling measured right before it)");
    println!();
    println!("| hooks | events | ceiling POSTs/s | ingest ev/s | deliveries/s (sustained) | deliveries/s (overall) | x ceiling | p50 ms | p99 ms | peak RSS MiB | hookline CPU µs/delivery |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in &runs {
        println!(
            "| {} | {} | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} | {:.1} | {:.1} | {:.1} | {:.0} |",
            r.hooks,
            r.events,
            r.ceiling_posts_per_s,
            r.ingest_events_per_s,
            r.sustained_deliveries_per_s,
            r.overall_deliveries_per_s,
            r.ratio_to_ceiling,
            r.latency_p50_ms,
            r.latency_p99_ms,
            r.peak_rss_mib,
            r.cpu_us_per_delivery
        );
    }
    println!();
    println!("latency at 1,000 events/s to 10 hooks: p50 {p50:.2} ms, p99 {p99:.2} ms (peak RSS {rss:.1} MiB; {rejected} of {} publishes refused with 503)", 1_000 * if o.quick { 2 } else { 10 });
    println!(
        "backlog of {}: queued in {:.1} s (ingest {:.0} -> {:.0} events/s, first -> last tenth; /metrics showed {} due), \
         drained at {:.0}/s ({:.0} µs hookline CPU per delivery); by tenth of the backlog: {}; peak RSS {:.1} MiB",
        b.deliveries,
        b.queued_in_s,
        b.ingest_first_tenth_per_s,
        b.ingest_last_tenth_per_s,
        b.queue_depth_metric,
        b.drain_per_s,
        b.drain_cpu_us_per_delivery,
        b.drain_per_s_by_decile
            .iter()
            .map(|r| format!("{r:.0}"))
            .collect::<Vec<_>>()
            .join(", "),
        b.peak_rss_mib
    );
    println!("best ratio, hookline deliveries/s / ceiling: {best:.2}");
    println!(
        "{}",
        json!({
            "machine": machine,
            "store": store,
            "nodes": nodes,
            "concurrency": CONCURRENCY,
            "ceiling_posts_per_s": ceiling,
            "throughput": runs,
            "best_ratio_to_ceiling": best,
            "fixed_rate": {"events_per_s": 1000, "hooks": 10, "p50_ms": p50, "p99_ms": p99, "peak_rss_mib": rss, "refused": rejected},
            "backlog": b,
        })
    );
    Ok(())
}

/// The CPU model and core count, for the record.
fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{model}, {cores} cores")
}
