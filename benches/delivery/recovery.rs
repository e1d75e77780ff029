//! The recovery scenario (issue 15): what a large `POST /api/hooks/{id}/recover` costs the
//! live traffic it runs beside.
//!
//! One hook's endpoint is down while `failed` events reach it (one attempt each:
//! `--retry-schedule ""`), so it ends with that many failed deliveries. Then the endpoint is
//! back, live traffic runs at 1,000 events/s to 10 other hooks for `seconds`, and five
//! seconds in, the failed deliveries are recovered at the default `--recovery-rate`. The
//! figures: live publish→arrival p50/p99 before and during the recovery, the recovery's own
//! rate, and how long it took to deliver them all.

use crate::harness::*;
use crate::load::{open_loop, OpenLoop};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

const LIVE_HOOKS: usize = 10;
const LIVE_RATE: usize = 1_000;
const RECOVER_AFTER_S: u64 = 5;

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Recovery {
    pub(crate) failed_deliveries: usize,
    /// Time to queue the events and fail their deliveries (setup, not a figure of merit).
    pub(crate) failed_in_s: f64,
    pub(crate) live_events_per_s: usize,
    pub(crate) live_hooks: usize,
    pub(crate) live_p50_ms_before: f64,
    pub(crate) live_p99_ms_before: f64,
    pub(crate) live_p50_ms_during: f64,
    pub(crate) live_p99_ms_during: f64,
    /// `queued` in the 202 of the recover call.
    pub(crate) queued: u64,
    /// Recovered deliveries per second while the live traffic ran.
    pub(crate) recovered_per_s: f64,
    /// From the recover call to the last recovered delivery's arrival.
    pub(crate) recovered_all_in_s: f64,
    pub(crate) peak_rss_mib: f64,
}

pub(crate) async fn recovery(
    client: &reqwest::Client,
    database_url: Option<&str>,
    failed: usize,
    seconds: usize,
) -> anyhow::Result<Recovery> {
    let hookline =
        Hookline::start(database_url, Limits::Defaults, &["--retry-schedule", ""]).await?;
    // The recovering hook, on User.Deleted; its endpoint down for now.
    let down = Sink::new(1, failed);
    down.failing.store(true, Ordering::Relaxed);
    let down_url = start_receiver(down.clone()).await?;
    let res = client
        .post(format!("{}/api/hooks", hookline.base))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "recovering", "events": ["User.Deleted"], "config": {"url": format!("{down_url}/0")}}))
        .send()
        .await?;
    anyhow::ensure!(res.status() == 201, "creating a hook: {}", res.status());
    let hook: serde_json::Value = res.json().await?;
    let hook_id = hook["id"].as_str().unwrap_or_default().to_owned();
    down.keys.write().unwrap()[0] = hook["signingKey"]
        .as_str()
        .unwrap_or_default()
        .as_bytes()
        .to_vec();
    // The live hooks, on User.Created.
    let events = LIVE_RATE * seconds;
    let live = Sink::new(LIVE_HOOKS, events);
    let live_url = start_receiver(live.clone()).await?;
    hookline.create_hooks(client, &live, &live_url).await?;

    let started = Instant::now();
    publish_range_of(client, &hookline.bases, 0, failed, deleted_body).await?;
    let deadline = Instant::now() + Duration::from_secs(900);
    while hookline
        .metric(client, "hookline_deliveries_total{outcome=\"failed\"}")
        .await?
        < failed as f64
    {
        anyhow::ensure!(Instant::now() < deadline, "the deliveries never all failed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let failed_in = started.elapsed();
    down.failing.store(false, Ordering::Relaxed);

    let urls: Arc<Vec<String>> = Arc::new(
        hookline
            .bases
            .iter()
            .map(|b| format!("{b}/api/events"))
            .collect(),
    );
    let recover = {
        let (client, base) = (client.clone(), hookline.base.clone());
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(RECOVER_AFTER_S)).await;
            let at = now_us();
            let res = client
                .post(format!("{base}/api/hooks/{hook_id}/recover"))
                .bearer_auth(TOKEN)
                .json(&json!({"since": 0}))
                .send()
                .await?;
            anyhow::ensure!(res.status() == 202, "recover: {}", res.status());
            let body: serde_json::Value = res.json().await?;
            anyhow::Ok((at, body["queued"].as_u64().unwrap_or_default()))
        })
    };
    let OpenLoop { refused, .. } =
        open_loop(client, urls, LIVE_RATE, 0, events, event_body).await?;
    anyhow::ensure!(refused == 0, "{refused} live publishes refused");
    let (recover_at, queued) = recover.await??;
    live.wait_for(live.slots(), Duration::from_secs(300))
        .await?;
    live.check_complete()?;
    let live_end = now_us();
    down.wait_for(failed, Duration::from_secs(1800)).await?;
    down.check_complete()?;
    // Live latencies by when the event was published: before the recover call or after.
    let (mut before, mut during) = (Vec::new(), Vec::new());
    for slot in 0..live.slots() {
        let latency = live.latency[slot].load(Ordering::Relaxed);
        let arrival = live.arrival[slot].load(Ordering::Relaxed);
        if latency == 0 {
            continue;
        }
        let published = arrival.saturating_sub(u64::from(latency - 1));
        if published < recover_at {
            before.push(latency - 1);
        } else {
            during.push(latency - 1);
        }
    }
    before.sort_unstable();
    during.sort_unstable();
    let recovered = down.arrivals();
    let in_window = recovered.partition_point(|&a| a <= live_end);
    let last = recovered.last().copied().unwrap_or(recover_at);
    Ok(Recovery {
        failed_deliveries: failed,
        failed_in_s: failed_in.as_secs_f64(),
        live_events_per_s: LIVE_RATE,
        live_hooks: LIVE_HOOKS,
        live_p50_ms_before: percentile_ms(&before, 0.5),
        live_p99_ms_before: percentile_ms(&before, 0.99),
        live_p50_ms_during: percentile_ms(&during, 0.5),
        live_p99_ms_during: percentile_ms(&during, 0.99),
        queued,
        recovered_per_s: in_window as f64 / ((live_end - recover_at) as f64 / 1e6).max(1e-3),
        recovered_all_in_s: (last - recover_at) as f64 / 1e6,
        peak_rss_mib: hookline.peak_rss_mib(),
    })
}
