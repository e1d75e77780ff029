//! The transforms scenario (issue 16): what a hook's `config.transform` costs per delivery.
//!
//! The same load twice over, alternating (without, with, without, with, so that a drift of
//! the shared machine shows as a spread rather than as a cost): `events` `User.Created`
//! events to `hooks` hooks at the ceiling's concurrency, every hook either plain or with a
//! trivial transform that passes the payload and headers through (so the receiver verifies
//! the same bodies). The difference is one script run per delivery (a fresh QuickJS runtime
//! and context, the script compiled, the payload parsed into it and its answer read back),
//! plus storing the transformed body with the attempt.

use crate::harness::*;
use serde_json::json;
use std::time::Duration;

/// Passes everything through: the cost of a run, not of a script's own work.
const PASS_THROUGH: &str = "const transform = ({ payload, headers }) => ({ payload, headers });";

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct TransformRun {
    pub(crate) transform: bool,
    pub(crate) deliveries: usize,
    pub(crate) sustained_deliveries_per_s: f64,
    pub(crate) latency_p50_ms: f64,
    pub(crate) latency_p99_ms: f64,
    pub(crate) cpu_us_per_delivery: f64,
    pub(crate) peak_rss_mib: f64,
}

async fn run(
    client: &reqwest::Client,
    database_url: Option<&str>,
    hooks: usize,
    events: usize,
    transform: bool,
) -> anyhow::Result<TransformRun> {
    let sink = Sink::new(hooks, events);
    let receiver = start_receiver(sink.clone()).await?;
    let hookline = Hookline::start(database_url, Limits::Ceiling, &[]).await?;
    let config = if transform {
        json!({"transform": PASS_THROUGH})
    } else {
        json!({})
    };
    hookline
        .create_hooks_with(client, &sink, &receiver, &config)
        .await?;
    let cpu_before = hookline.cpu_seconds();
    publish_range(client, &hookline.bases, 0, events).await?;
    sink.wait_for(sink.slots(), Duration::from_secs(600))
        .await?;
    sink.check_complete()?;
    let latencies = sink.latencies();
    Ok(TransformRun {
        transform,
        deliveries: sink.slots(),
        sustained_deliveries_per_s: sustained_rate(&sink.arrivals()),
        latency_p50_ms: percentile_ms(&latencies, 0.5),
        latency_p99_ms: percentile_ms(&latencies, 0.99),
        cpu_us_per_delivery: (hookline.cpu_seconds() - cpu_before) * 1e6 / sink.slots() as f64,
        peak_rss_mib: hookline.peak_rss_mib(),
    })
}

/// Where a run's time goes, in this process (no HTTP, no storage): the median µs of `n`
/// checks (`script::check`: a fresh runtime and context, the host's `console` and `fetch`,
/// the script compiled and its top level run) and of `n` whole runs of [`PASS_THROUGH`]
/// over a delivery's payload (`script::run`: the same, plus the payload parsed in, the
/// call, the answer read back).
pub(crate) fn in_process(n: usize) -> (f64, f64) {
    use hookline::script::{check, run, Limits, NoFetch};
    let input = json!({"event": "User.Created", "payload": serde_json::from_str::<serde_json::Value>(&event_body(1, 2)).unwrap_or_default(), "headers": {}});
    let median = |mut us: Vec<f64>| {
        us.sort_by(f64::total_cmp);
        us[us.len() / 2]
    };
    let time = |f: &mut dyn FnMut()| {
        let t = std::time::Instant::now();
        f();
        t.elapsed().as_secs_f64() * 1e6
    };
    let compile = (0..n)
        .map(|_| time(&mut || drop(check(PASS_THROUGH, "transform", &Limits::default()))))
        .collect();
    let fetch: std::sync::Arc<dyn hookline::script::Fetcher> = std::sync::Arc::new(NoFetch);
    let runs = (0..n)
        .map(|_| {
            time(&mut || {
                let r = run(
                    PASS_THROUGH,
                    "transform",
                    &input,
                    &Limits::default(),
                    fetch.clone(),
                );
                assert!(r.outcome.is_ok(), "{:?}", r.outcome);
            })
        })
        .collect();
    (median(compile), median(runs))
}

pub(crate) async fn transforms(
    client: &reqwest::Client,
    database_url: Option<&str>,
    hooks: usize,
    events: usize,
) -> anyhow::Result<Vec<TransformRun>> {
    let mut runs = Vec::new();
    for transform in [false, true, false, true] {
        runs.push(run(client, database_url, hooks, events, transform).await?);
    }
    Ok(runs)
}
