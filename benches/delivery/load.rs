//! The scenarios of a user's load, where events keep coming while deliveries go out (issue 14):
//! - **sustained**: a fixed offered rate, stepped up, from an open-loop publisher; each step
//!   says whether hookline kept pace (the share delivered within a second of the last publish,
//!   publish→arrival p50/p99), and the highest step that held is the *sustainable* rate;
//! - **burst**: publishers as fast as they can for a while; deliveries/s *during* publishing
//!   against deliveries/s *after* it, which shows whether deliveries wait for ingest to stop.
//!
//! Both run hookline at its default limits, on a fresh database per step, to 10 hooks.

use crate::harness::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Open-loop publishers: each takes the next event, waits for its scheduled time if that is
/// still ahead, and publishes it. While all are busy the next send is late, and its lateness
/// counts in its latency (every latency is measured from the *scheduled* time, carried in the
/// body): a slow server cannot hide by making the publisher publish less.
const OPEN_LOOP_CONNECTIONS: usize = 256;

/// What a step holds to: every delivery arrives once, p99 publish→arrival under this, and at
/// least [`HOLD_SHARE`] of the deliveries arrived within a second of the last publish.
const HOLD_P99_MS: f64 = 250.0;
const HOLD_SHARE: f64 = 0.95;

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Step {
    pub(crate) offered_events_per_s: usize,
    pub(crate) hooks: usize,
    pub(crate) seconds: usize,
    /// Accepted publishes over the publishing window (a 503 is refused, not accepted).
    pub(crate) ingest_events_per_s: f64,
    pub(crate) refused: usize,
    /// Share of the accepted events' deliveries that arrived within 1 s of the last
    /// scheduled publish.
    pub(crate) delivered_within_1s: f64,
    /// Deliveries/s that arrived during the publishing window.
    pub(crate) deliveries_per_s_while_publishing: f64,
    pub(crate) latency_p50_ms: f64,
    pub(crate) latency_p99_ms: f64,
    /// How late the publisher itself was, p99 (its own connections all busy): part of the
    /// latency, reported so that a late publisher is seen as such.
    pub(crate) publish_lateness_p99_ms: f64,
    pub(crate) holds: bool,
    pub(crate) peak_rss_mib: f64,
    pub(crate) cpu_us_per_delivery: f64,
    /// Bytes hookline wrote to disk per delivery (database, WAL, checkpoints), ingest
    /// included.
    pub(crate) disk_bytes_per_delivery: f64,
    /// Share of the deliveries (the first node's) handed over at enqueue rather than claimed
    /// from the queue (`hookline_deliveries_taken_total`): the fast path, which new events
    /// may take only while nothing older is queued.
    pub(crate) handed_over: f64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Sustained {
    pub(crate) ceiling_posts_per_s: f64,
    /// Every run of every rate, in order.
    pub(crate) steps: Vec<Step>,
    /// Runs per rate (`--repeat`).
    pub(crate) repeat: usize,
    /// Deliveries/s of the highest rate that held in more than half of its runs (0 if none).
    pub(crate) sustainable_deliveries_per_s: f64,
    pub(crate) sustainable_ratio_to_ceiling: f64,
}

/// One step: `per_second` events/s to `hooks` hooks for `seconds`.
/// What an open-loop run published (times in µs of the benchmark's clock, [`now_us`]).
pub(crate) struct OpenLoop {
    pub(crate) start: u64,
    pub(crate) last_scheduled: u64,
    /// Publishes answered 503.
    pub(crate) refused: usize,
    /// How late each publish went out, sorted.
    pub(crate) lateness: Vec<u32>,
    /// The instant `now_us()` counts from.
    pub(crate) epoch: Instant,
}

/// Publishes events `from..to` (bodies by `body(seq, scheduled_µs)`) at `per_second` from
/// [`OPEN_LOOP_CONNECTIONS`] open-loop publishers, spread over `urls`.
pub(crate) async fn open_loop(
    client: &reqwest::Client,
    urls: Arc<Vec<String>>,
    per_second: usize,
    from: usize,
    to: usize,
    body: fn(usize, u64) -> String,
) -> anyhow::Result<OpenLoop> {
    let interval_us = 1_000_000.0 / per_second as f64;
    let start = now_us() + 20_000;
    let scheduled = move |seq: usize| start + ((seq - from) as f64 * interval_us) as u64;
    let last_scheduled = scheduled(to.saturating_sub(1).max(from));
    let epoch = Instant::now() - Duration::from_micros(now_us());
    let next = Arc::new(AtomicUsize::new(from));
    let mut tasks = Vec::new();
    for _ in 0..OPEN_LOOP_CONNECTIONS {
        let (client, next, urls) = (client.clone(), next.clone(), urls.clone());
        tasks.push(tokio::spawn(async move {
            let (mut refused, mut lateness) = (0usize, Vec::new());
            loop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                if seq >= to {
                    return anyhow::Ok((refused, lateness));
                }
                let t0 = scheduled(seq);
                tokio::time::sleep_until((epoch + Duration::from_micros(t0)).into()).await;
                lateness.push(now_us().saturating_sub(t0) as u32);
                let status = client
                    .post(&urls[seq % urls.len()])
                    .bearer_auth(TOKEN)
                    .header("content-type", "application/json")
                    .body(body(seq, t0))
                    .send()
                    .await?
                    .status()
                    .as_u16();
                match status {
                    202 => {}
                    503 => refused += 1,
                    other => anyhow::bail!("publishing: {other}"),
                }
            }
        }));
    }
    let (mut refused, mut lateness) = (0, Vec::with_capacity(to - from));
    for t in tasks {
        let (r, l) = t.await??;
        refused += r;
        lateness.extend(l);
    }
    lateness.sort_unstable();
    Ok(OpenLoop {
        start,
        last_scheduled,
        refused,
        lateness,
        epoch,
    })
}

pub(crate) async fn sustained_step(
    client: &reqwest::Client,
    database_url: Option<&str>,
    hooks: usize,
    per_second: usize,
    seconds: usize,
) -> anyhow::Result<Step> {
    let events = per_second * seconds;
    let (sink, hookline) =
        Hookline::with_receiver(client, database_url, Limits::Defaults, &[], hooks, events).await?;
    let urls: Arc<Vec<String>> = Arc::new(
        hookline
            .bases
            .iter()
            .map(|b| format!("{b}/api/events"))
            .collect(),
    );
    let cpu_before = hookline.cpu_seconds();
    let disk_before = hookline.disk_write_bytes();
    let OpenLoop {
        start,
        last_scheduled,
        refused,
        lateness,
        epoch,
    } = open_loop(client, urls, per_second, 0, events, event_body).await?;
    let published_in = (now_us() - start) as f64 / 1e6;
    let expected = sink.slots() - refused * hooks;
    // Wait past the 1 s mark, then for the rest: every delivery must arrive, once.
    let one_second_after = last_scheduled + 1_000_000;
    tokio::time::sleep_until((epoch + Duration::from_micros(one_second_after)).into()).await;
    sink.wait_for(expected, Duration::from_secs(300)).await?;
    let cpu = hookline.cpu_seconds() - cpu_before;
    let disk = hookline.disk_write_bytes() - disk_before;
    sink.check_complete_but(refused)?;
    let arrivals = sink.arrivals();
    let within = arrivals.partition_point(|&a| a <= one_second_after);
    let during = arrivals.partition_point(|&a| a <= last_scheduled);
    let latencies = sink.latencies();
    let share = within as f64 / expected.max(1) as f64;
    let taken = "hookline_deliveries_taken_total";
    let handover = hookline
        .metric(client, &format!("{taken}{{by=\"handover\"}}"))
        .await?;
    let claim = hookline
        .metric(client, &format!("{taken}{{by=\"claim\"}}"))
        .await?;
    let p99 = percentile_ms(&latencies, 0.99);
    Ok(Step {
        offered_events_per_s: per_second,
        hooks,
        seconds,
        ingest_events_per_s: (events - refused) as f64 / published_in,
        refused,
        delivered_within_1s: share,
        deliveries_per_s_while_publishing: during as f64
            / ((last_scheduled - start) as f64 / 1e6).max(1e-3),
        latency_p50_ms: percentile_ms(&latencies, 0.5),
        latency_p99_ms: p99,
        publish_lateness_p99_ms: percentile_ms(&lateness, 0.99),
        holds: refused == 0 && p99 < HOLD_P99_MS && share >= HOLD_SHARE,
        peak_rss_mib: hookline.peak_rss_mib(),
        cpu_us_per_delivery: cpu * 1e6 / expected.max(1) as f64,
        disk_bytes_per_delivery: disk / expected.max(1) as f64,
        handed_over: handover / (handover + claim).max(1.0),
    })
}

/// The stepped scenario: the ceiling, then each rate in turn, `repeat` times (a fresh
/// hookline each run). A rate is sustainable when more than half of its runs held: on a
/// shared machine one run can hold or miss by the machine's noise alone.
pub(crate) async fn sustained(
    client: &reqwest::Client,
    database_url: Option<&str>,
    rates: &[usize],
    seconds: usize,
    repeat: usize,
    ceiling_posts: usize,
) -> anyhow::Result<Sustained> {
    const HOOKS: usize = 10;
    let ceiling = crate::scenarios::measure_ceiling(client, ceiling_posts).await?;
    let mut steps = Vec::new();
    for &rate in rates {
        for run in 1..=repeat {
            eprintln!(
                "  sustained: {rate} events/s to {HOOKS} hooks for {seconds} s (run {run} of {repeat}) ..."
            );
            let step = sustained_step(client, database_url, HOOKS, rate, seconds).await?;
            eprintln!("    {step:?}");
            steps.push(step);
        }
    }
    let sustainable = rates
        .iter()
        .filter(|&&rate| {
            let held = steps
                .iter()
                .filter(|s| s.offered_events_per_s == rate && s.holds)
                .count();
            2 * held > repeat
        })
        .map(|&rate| (rate * HOOKS) as f64)
        .fold(0.0, f64::max);
    Ok(Sustained {
        ceiling_posts_per_s: ceiling,
        steps,
        repeat,
        sustainable_deliveries_per_s: sustainable,
        sustainable_ratio_to_ceiling: sustainable / ceiling,
    })
}

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Burst {
    pub(crate) hooks: usize,
    pub(crate) seconds: f64,
    pub(crate) events: usize,
    pub(crate) ingest_events_per_s: f64,
    /// Deliveries that arrived while publishing went on, per second of publishing.
    pub(crate) deliveries_per_s_during: f64,
    /// The rest, per second from the last publish to the last arrival; NaN when under 1 % of
    /// the deliveries was left (deliveries kept pace with ingest).
    pub(crate) deliveries_per_s_after: f64,
    /// `during / after`: 1 when deliveries do not wait for ingest to stop.
    pub(crate) during_over_after: f64,
    pub(crate) latency_p50_ms: f64,
    pub(crate) latency_p99_ms: f64,
    pub(crate) peak_rss_mib: f64,
}

/// [`PUBLISHERS`] clients publish as fast as hookline takes events for `seconds`, to `hooks`
/// hooks at hookline's default limits.
pub(crate) async fn burst(
    client: &reqwest::Client,
    database_url: Option<&str>,
    hooks: usize,
    seconds: u64,
) -> anyhow::Result<Burst> {
    // Room for more events than this machine can ingest in the time (slots are 12 bytes).
    let room = 20_000 * seconds as usize;
    let (sink, hookline) =
        Hookline::with_receiver(client, database_url, Limits::Defaults, &[], hooks, room).await?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = now_us();
    let stop = start + seconds * 1_000_000;
    let mut tasks = Vec::new();
    for i in 0..PUBLISHERS {
        let base = &hookline.bases[i % hookline.bases.len()];
        let (client, next, url) = (client.clone(), next.clone(), format!("{base}/api/events"));
        tasks.push(tokio::spawn(async move {
            let mut published = Vec::new();
            while now_us() < stop {
                let seq = next.fetch_add(1, Ordering::Relaxed);
                anyhow::ensure!(seq < room, "the burst outran the receiver's room");
                publish(&client, &url, event_body(seq, now_us())).await?;
                published.push(seq);
            }
            anyhow::Ok(published)
        }));
    }
    let mut published = Vec::new();
    for t in tasks {
        published.extend(t.await??);
    }
    let ended = now_us();
    // Every publisher stops after its last publish, so the published seqs are 0..n.
    let events = published.len();
    anyhow::ensure!(
        published.iter().all(|&s| s < events),
        "published events are not a prefix"
    );
    sink.wait_for(events * hooks, Duration::from_secs(300))
        .await?;
    sink.check_complete_but(room - events)?;
    let arrivals = sink.arrivals();
    let during = arrivals.partition_point(|&a| a <= ended);
    let last = *arrivals.last().unwrap_or(&ended);
    let during_rate = during as f64 / ((ended - start) as f64 / 1e6);
    // NaN when (almost) nothing was left to deliver after publishing stopped: a rate over a
    // few stragglers in a fraction of a millisecond says nothing.
    let after_rate = if arrivals.len() - during > arrivals.len() / 100 {
        (arrivals.len() - during) as f64 / ((last - ended).max(1) as f64 / 1e6)
    } else {
        f64::NAN
    };
    let latencies = sink.latencies();
    Ok(Burst {
        hooks,
        seconds: (ended - start) as f64 / 1e6,
        events,
        ingest_events_per_s: events as f64 / ((ended - start) as f64 / 1e6),
        deliveries_per_s_during: during_rate,
        deliveries_per_s_after: after_rate,
        during_over_after: during_rate / after_rate,
        latency_p50_ms: percentile_ms(&latencies, 0.5),
        latency_p99_ms: percentile_ms(&latencies, 0.99),
        peak_rss_mib: hookline.peak_rss_mib(),
    })
}
