//! The scenarios that measure one thing each: the ceiling, throughput, latency at a fixed
//! rate, and the backlog drain.

use crate::harness::*;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Throughput {
    pub(crate) hooks: usize,
    pub(crate) events: usize,
    pub(crate) deliveries: usize,
    pub(crate) ingest_events_per_s: f64,
    pub(crate) sustained_deliveries_per_s: f64,
    /// All deliveries over the time from the first publish to the last arrival.
    pub(crate) overall_deliveries_per_s: f64,
    /// The ceiling measured right before this scenario: the machine's noise changes within
    /// minutes, so each scenario is compared with its own.
    pub(crate) ceiling_posts_per_s: f64,
    pub(crate) ratio_to_ceiling: f64,
    pub(crate) latency_p50_ms: f64,
    pub(crate) latency_p99_ms: f64,
    pub(crate) peak_rss_mib: f64,
    /// hookline's CPU time per delivery, ingest included.
    pub(crate) cpu_us_per_delivery: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Backlog {
    pub(crate) deliveries: usize,
    pub(crate) queued_in_s: f64,
    pub(crate) queue_depth_metric: f64,
    pub(crate) drain_per_s: f64,
    /// Drain rate in each tenth of the backlog, from the fullest queue to the last tenth.
    pub(crate) drain_per_s_by_decile: Vec<f64>,
    /// Ingest events/s over the first and the last tenth of the queueing (each event queues one
    /// delivery per hook).
    pub(crate) ingest_first_tenth_per_s: f64,
    pub(crate) ingest_last_tenth_per_s: f64,
    pub(crate) peak_rss_mib: f64,
    /// hookline's CPU time per delivery while draining (claims, sends and records only).
    pub(crate) drain_cpu_us_per_delivery: f64,
}

// ------------------------------------------------------------------------------ scenarios

pub(crate) async fn ceiling(client: &reqwest::Client, posts: usize) -> anyhow::Result<f64> {
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
pub(crate) async fn measure_ceiling(client: &reqwest::Client, posts: usize) -> anyhow::Result<f64> {
    ceiling(client, (posts / 20).max(500)).await?;
    ceiling(client, posts).await
}

pub(crate) async fn throughput(
    client: &reqwest::Client,
    database_url: Option<&str>,
    hooks: usize,
    events: usize,
    ceiling_posts: usize,
) -> anyhow::Result<Throughput> {
    let ceiling = measure_ceiling(client, ceiling_posts).await?;
    let (sink, hookline) =
        Hookline::with_receiver(client, database_url, Limits::Ceiling, &[], hooks, events).await?;
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
pub(crate) async fn fixed_rate(
    client: &reqwest::Client,
    database_url: Option<&str>,
    hooks: usize,
    per_second: usize,
    seconds: usize,
) -> anyhow::Result<(f64, f64, f64, usize)> {
    let events = per_second * seconds;
    let (sink, hookline) =
        Hookline::with_receiver(client, database_url, Limits::Defaults, &[], hooks, events).await?;
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

pub(crate) async fn backlog(
    client: &reqwest::Client,
    database_url: Option<&str>,
    deliveries: usize,
) -> anyhow::Result<Backlog> {
    const HOOKS: usize = 100;
    let events = deliveries / HOOKS;
    // The receiver holds requests instead of answering, so hookline must not time them out
    // while the backlog builds.
    let (sink, hookline) = Hookline::with_receiver(
        client,
        database_url,
        Limits::Ceiling,
        &["--request-timeout", "600s"],
        HOOKS,
        events,
    )
    .await?;
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
