//! The delivery benchmark: hookline against the machine's own ceiling, in one run.
//!
//! ```sh
//! cargo bench --bench delivery               # the full run (about 2 minutes on 2 cores)
//! cargo bench --bench delivery -- --quick    # smaller counts, for a smoke test
//! cargo bench --bench delivery -- --only latency   # one scenario: throughput, latency or backlog
//! cargo bench --bench delivery -- --database-url postgres://…   # on PostgreSQL
//! cargo bench --bench delivery -- --database-url postgres://… --nodes 3   # 3 nodes on it
//! cargo bench --bench delivery -- --only sustained --rates 3000 --repeat 5  # 5 runs of a step
//! cargo bench --bench delivery -- --only recovery   # a 1M-delivery recovery beside live traffic
//! cargo bench --bench delivery -- --only actions    # what a trivial action run costs
//! cargo bench --bench delivery -- --only transforms # what a transform costs per delivery
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

mod actions;
mod harness;
mod load;
mod recovery;
mod scenarios;
mod transforms;

use harness::*;
use scenarios::*;
use serde_json::json;
use std::sync::atomic::Ordering;

struct Options {
    database_url: Option<String>,
    quick: bool,
    /// Only this scenario (`throughput` with its ceiling, `latency`, `backlog`, `sustained`
    /// or `burst`), for working on one figure.
    only: Option<String>,
    /// The sustained scenario's offered rates, events/s (`--rates 1000,2000,…`).
    rates: Vec<usize>,
    /// Seconds per sustained step and per burst (`--seconds N`).
    seconds: Option<usize>,
    /// Runs of each sustained rate (`--repeat N`, default 1).
    repeat: usize,
}

fn options() -> anyhow::Result<Options> {
    let mut o = Options {
        database_url: None,
        quick: false,
        only: None,
        rates: vec![1_000, 2_000, 3_000, 4_000],
        seconds: None,
        repeat: 1,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--quick" => o.quick = true,
            "--only" => o.only = args.next(),
            "--database-url" => o.database_url = args.next(),
            "--rates" => {
                o.rates = args
                    .next()
                    .unwrap_or_default()
                    .split(',')
                    .map(str::parse)
                    .collect::<Result<_, _>>()?;
                anyhow::ensure!(
                    o.rates.iter().all(|&r| r > 0),
                    "--rates takes events/s above 0"
                );
            }
            "--seconds" => o.seconds = Some(args.next().unwrap_or_default().parse()?),
            "--repeat" => {
                o.repeat = args.next().unwrap_or_default().parse()?;
                anyhow::ensure!(o.repeat > 0, "--repeat takes a count above 0");
            }
            "--nodes" => {
                let n: usize = args.next().unwrap_or_default().parse()?;
                anyhow::ensure!(n >= 1, "--nodes takes a count of at least 1");
                NODES.store(n, Ordering::Relaxed);
            }
            // `cargo bench` passes this to every bench target.
            "--bench" => {}
            other => {
                anyhow::bail!("unknown argument {other}; takes --quick, --only throughput|latency|backlog|sustained|burst|recovery|actions|transforms, --rates R,R,…, --seconds N, --repeat N, --database-url URL and --nodes N")
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
    let seconds = o.seconds.unwrap_or(if o.quick { 2 } else { 10 });
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
        Some("sustained") => {
            let s =
                load::sustained(&client, db, &o.rates, seconds, o.repeat, 100_000 / scale).await?;
            print_sustained(&s);
            println!("{}", json!(s));
            return Ok(());
        }
        Some("burst") => {
            let bursts = bursts(&client, db, seconds).await?;
            print_bursts(&bursts);
            println!("{}", json!(bursts));
            return Ok(());
        }
        Some("recovery") => {
            let r =
                recovery::recovery(&client, db, 1_000_000 / scale, o.seconds.unwrap_or(30)).await?;
            println!(
                "recovery of {} failed deliveries beside {} events/s to {} hooks:",
                r.failed_deliveries, r.live_events_per_s, r.live_hooks
            );
            println!("  live p50/p99 before {:.1}/{:.1} ms, during {:.1}/{:.1} ms; recovered {:.0}/s, all {} in {:.1} s (peak RSS {:.1} MiB)", r.live_p50_ms_before, r.live_p99_ms_before, r.live_p50_ms_during, r.live_p99_ms_during, r.recovered_per_s, r.queued, r.recovered_all_in_s, r.peak_rss_mib);
            println!("{}", json!(r));
            return Ok(());
        }
        Some("actions") => {
            let a = actions::actions(&client, db, 2_000 / scale, 200 / scale).await?;
            println!(
                "a trivial action ({} dry runs, {} sign-ins each way, one at a time):",
                a.requests, a.sign_ins
            );
            println!("  GET /api/configs/actions p50/p99 {:.2}/{:.2} ms; dry run {:.2}/{:.2} ms", a.route_p50_ms, a.route_p99_ms, a.dry_run_p50_ms, a.dry_run_p99_ms);
            println!("  sign-in p50/p99 {:.2}/{:.2} ms; with a postSignIn action {:.2}/{:.2} ms (peak RSS {:.1} MiB)", a.sign_in_p50_ms, a.sign_in_p99_ms, a.sign_in_with_action_p50_ms, a.sign_in_with_action_p99_ms, a.peak_rss_mib);
            println!("{}", json!(a));
            return Ok(());
        }
        Some("transforms") => {
            let (compile_us, run_us) = transforms::in_process(1_000 / scale);
            println!("in process, median: a check (all but the call) {compile_us:.0} µs, a whole pass-through run {run_us:.0} µs");
            let runs = transforms::transforms(&client, db, 10, 5_000 / scale).await?;
            println!("10 hooks x {} events, without and with a pass-through transform, alternating:", 5_000 / scale);
            for r in &runs {
                println!("  {:<14} {:>7.0} deliveries/s, p50/p99 {:.1}/{:.1} ms, {:.0} CPU µs a delivery (peak RSS {:.1} MiB)", if r.transform { "transform" } else { "no transform" }, r.sustained_deliveries_per_s, r.latency_p50_ms, r.latency_p99_ms, r.cpu_us_per_delivery, r.peak_rss_mib);
            }
            println!("{}", json!(runs));
            return Ok(());
        }
        Some(other) => anyhow::bail!(
            "--only takes throughput, latency, backlog, sustained, burst, recovery, actions or transforms, not {other}"
        ),
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

    eprintln!("sustained: stepped offered rates ...");
    let sustained =
        load::sustained(&client, db, &o.rates, seconds, o.repeat, 100_000 / scale).await?;
    eprintln!("burst: publishing as fast as {PUBLISHERS} clients can for {seconds} s ...");
    let bursts = bursts(&client, db, seconds).await?;

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
    println!();
    print_sustained(&sustained);
    println!();
    print_bursts(&bursts);
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
            "sustained": sustained,
            "burst": bursts,
        })
    );
    Ok(())
}

/// The burst scenario with 10 hooks and with 1.
async fn bursts(
    client: &reqwest::Client,
    db: Option<&str>,
    seconds: usize,
) -> anyhow::Result<Vec<load::Burst>> {
    let mut out = Vec::new();
    for hooks in [10, 1] {
        let b = load::burst(client, db, hooks, seconds as u64).await?;
        eprintln!("  {b:?}");
        out.push(b);
    }
    Ok(out)
}

fn print_sustained(s: &load::Sustained) {
    println!(
        "sustained load, open loop, 10 hooks, hookline's default limits (ceiling {:.0} POSTs/s):",
        s.ceiling_posts_per_s
    );
    println!();
    println!("| offered ev/s | deliveries/s offered | ingest ev/s | refused | delivered/s while publishing | delivered ≤ 1 s after | p50 ms | p99 ms | publisher late p99 ms | holds | CPU µs/delivery | disk bytes/delivery | handed over | peak RSS MiB |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|:---:|---:|---:|---:|---:|");
    for st in &s.steps {
        println!(
            "| {} | {} | {:.0} | {} | {:.0} | {:.1} % | {:.1} | {:.1} | {:.1} | {} | {:.0} | {:.0} | {:.0} % | {:.1} |",
            st.offered_events_per_s,
            st.offered_events_per_s * st.hooks,
            st.ingest_events_per_s,
            st.refused,
            st.deliveries_per_s_while_publishing,
            st.delivered_within_1s * 100.0,
            st.latency_p50_ms,
            st.latency_p99_ms,
            st.publish_lateness_p99_ms,
            if st.holds { "yes" } else { "no" },
            st.cpu_us_per_delivery,
            st.disk_bytes_per_delivery,
            st.handed_over * 100.0,
            st.peak_rss_mib,
        );
    }
    println!();
    if s.repeat > 1 {
        let mut rates: Vec<usize> = s.steps.iter().map(|st| st.offered_events_per_s).collect();
        rates.dedup();
        for rate in rates {
            let held = s
                .steps
                .iter()
                .filter(|st| st.offered_events_per_s == rate && st.holds)
                .count();
            println!("{rate} events/s held in {held} of {} runs", s.repeat);
        }
    }
    println!(
        "sustainable: {:.0} deliveries/s, {:.2} x ceiling{}",
        s.sustainable_deliveries_per_s,
        s.sustainable_ratio_to_ceiling,
        if s.repeat > 1 {
            " (held in more than half of its runs)"
        } else {
            ""
        }
    );
}

fn print_bursts(bursts: &[load::Burst]) {
    println!("burst: {PUBLISHERS} publishers as fast as they can, hookline's default limits:");
    println!();
    println!("| hooks | seconds | events | ingest ev/s | deliveries/s during | deliveries/s after | during / after | p50 ms | p99 ms | peak RSS MiB |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for b in bursts {
        println!(
            "| {} | {:.1} | {} | {:.0} | {:.0} | {:.0} | {:.2} | {:.1} | {:.1} | {:.1} |",
            b.hooks,
            b.seconds,
            b.events,
            b.ingest_events_per_s,
            b.deliveries_per_s_during,
            b.deliveries_per_s_after,
            b.during_over_after,
            b.latency_p50_ms,
            b.latency_p99_ms,
            b.peak_rss_mib,
        );
    }
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
