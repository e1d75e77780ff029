//! A quick end-to-end throughput probe against a running hookline (the full benchmark harness
//! is a separate piece of work). It starts its own receiver and first measures the ceiling
//! (plain POSTs of the same bodies straight to it at the same concurrency), then creates
//! `HOOKS` hooks pointing at it, publishes `EVENTS` events from `CONCURRENCY` clients and
//! reports ingest and delivery rates and the ratio to the ceiling.
//!
//! ```sh
//! cargo run --release -- serve --allow-private-targets --admin-token $TOKEN --database-url sqlite:///tmp/bench.db &
//! HOOKLINE_URL=http://127.0.0.1:3001 HOOKLINE_ADMIN_TOKEN=$TOKEN cargo run --release --example throughput
//! ```

use axum::body::Bytes;
use serde_json::json;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let base = std::env::var("HOOKLINE_URL").unwrap_or_else(|_| "http://127.0.0.1:3001".into());
    let token = std::env::var("HOOKLINE_ADMIN_TOKEN")?;
    let hooks = env_or("HOOKS", 1);
    let events = env_or("EVENTS", 20_000);
    let concurrency = env_or("CONCURRENCY", 32);

    let received = Arc::new(AtomicUsize::new(0));
    let counter = received.clone();
    let app = axum::Router::new().fallback(move |_body: Bytes| {
        let counter = counter.clone();
        async move {
            counter.fetch_add(1, Ordering::Relaxed);
            "ok"
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move { axum::serve(listener, app).await });

    let client = reqwest::Client::new();
    let data = "x".repeat(900);

    // The ceiling: the same number of plain keep-alive POSTs of the same size, straight to the
    // receiver, at the same concurrency. A delivery is one such POST.
    let direct = events * hooks.max(1);
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut posters = Vec::new();
    for _ in 0..concurrency {
        let (client, next, body) = (
            client.clone(),
            next.clone(),
            json!({"event": "User.Created", "data": {"blob": data}}).to_string(),
        );
        posters.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < direct {
                let res = client
                    .post(format!("http://{addr}/ceiling"))
                    .body(body.clone())
                    .send()
                    .await;
                assert!(
                    matches!(res, Ok(ref r) if r.status() == 200),
                    "direct POST failed"
                );
            }
        }));
    }
    for p in posters {
        p.await?;
    }
    let ceiling = direct as f64 / started.elapsed().as_secs_f64();
    received.store(0, Ordering::Relaxed);

    for _ in 0..hooks {
        let res = client
            .post(format!("{base}/api/hooks"))
            .bearer_auth(&token)
            .json(&json!({"name": "bench", "events": ["User.Created"], "config": {"url": format!("http://{addr}/hook")}}))
            .send()
            .await?;
        anyhow::ensure!(res.status() == 201, "creating a hook: {}", res.status());
    }
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..concurrency {
        let (client, base, token, next, data) = (
            client.clone(),
            base.clone(),
            token.clone(),
            next.clone(),
            data.clone(),
        );
        clients.push(tokio::spawn(async move {
            while next.fetch_add(1, Ordering::Relaxed) < events {
                let res = client
                    .post(format!("{base}/api/events"))
                    .bearer_auth(&token)
                    .json(&json!({"event": "User.Created", "data": {"blob": data}}))
                    .send()
                    .await;
                match res {
                    Ok(r) if r.status() == 202 => {}
                    other => panic!("publish failed: {other:?}"),
                }
            }
        }));
    }
    for c in clients {
        c.await?;
    }
    let ingest = started.elapsed();
    let expected = events * hooks;
    while received.load(Ordering::Relaxed) < expected {
        tokio::time::sleep(Duration::from_millis(5)).await;
        anyhow::ensure!(
            started.elapsed() < Duration::from_secs(600),
            "deliveries stalled at {}",
            received.load(Ordering::Relaxed)
        );
    }
    let total = started.elapsed();
    let deliveries = expected as f64 / total.as_secs_f64();
    println!(
        "hooks={hooks} events={events} concurrency={concurrency}: ceiling {ceiling:.0} POSTs/s; ingest {:.0} events/s ({:.2}s); deliveries {deliveries:.0}/s ({:.2}s to the last) = {:.2} x ceiling",
        events as f64 / ingest.as_secs_f64(),
        ingest.as_secs_f64(),
        total.as_secs_f64(),
        deliveries / ceiling
    );
    Ok(())
}
