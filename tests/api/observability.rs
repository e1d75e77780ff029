//! Metrics, readiness and logs: what an operator watches.

use crate::helpers::*;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// The samples of a `/metrics` scrape, by series (`name{labels}`).
async fn scrape(app: &TestApp) -> HashMap<String, f64> {
    let res = app.get_public("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/openmetrics-text"));
    let text = res.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "{text}");
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("a sample line");
            (series.to_owned(), value.parse().expect("a number"))
        })
        .collect()
}

/// Scrapes until `done` holds (panics after 10 s).
async fn scrape_until(
    app: &TestApp,
    done: impl Fn(&HashMap<String, f64>) -> bool,
) -> HashMap<String, f64> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = scrape(app).await;
        if done(&m) {
            return m;
        }
        assert!(Instant::now() < deadline, "metrics never got there: {m:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn get(m: &HashMap<String, f64>, series: &str) -> f64 {
    *m.get(series)
        .unwrap_or_else(|| panic!("{series} missing in {m:?}"))
}

#[tokio::test]
async fn metrics_move_when_deliveries_happen() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let slow = Receiver::start().await;
    slow.close_gate();
    app.create_hook(&["User.Created"], &receiver.url()).await;
    // Refuses connections: three attempts each (the test schedule has two retries), then failed.
    app.create_hook(&["User.Created"], &dead_url().await).await;
    app.create_hook(&["Role.Created"], &slow.url()).await;

    let before = scrape(&app).await;
    for series in [
        "hookline_events_ingested_total",
        "hookline_deliveries_total{outcome=\"succeeded\"}",
        "hookline_deliveries_total{outcome=\"failed\"}",
        "hookline_delivery_attempts_total{result=\"success\"}",
        "hookline_delivery_attempts_total{result=\"failure\"}",
        "hookline_delivery_latency_seconds_count",
        "hookline_attempt_duration_seconds_count",
        "hookline_deliveries_in_flight",
        "hookline_deliveries_taken_total{by=\"handover\"}",
        "hookline_deliveries_taken_total{by=\"claim\"}",
        "hookline_queue_depth{state=\"due\"}",
        "hookline_queue_depth{state=\"scheduled\"}",
        "hookline_endpoints_failing",
    ] {
        assert_eq!(get(&before, series), 0.0, "{series} before any event");
    }

    for i in 0..5 {
        app.publish(json!({"event": "User.Created", "data": {"i": i}}))
            .await;
    }
    receiver.wait_for(5, Duration::from_secs(10)).await;
    // Counters move when a send finishes; the queue gauges when its result is committed.
    let m = scrape_until(&app, |m| {
        m.get("hookline_deliveries_total{outcome=\"failed\"}") == Some(&5.0)
            && m.get("hookline_endpoints_failing") == Some(&1.0)
            && m.get("hookline_queue_depth{state=\"scheduled\"}") == Some(&0.0)
    })
    .await;
    assert_eq!(get(&m, "hookline_events_ingested_total"), 5.0);
    assert_eq!(
        get(&m, "hookline_deliveries_total{outcome=\"succeeded\"}"),
        5.0
    );
    assert_eq!(
        get(&m, "hookline_delivery_attempts_total{result=\"success\"}"),
        5.0
    );
    assert_eq!(
        get(&m, "hookline_delivery_attempts_total{result=\"failure\"}"),
        15.0
    );
    assert_eq!(get(&m, "hookline_attempt_duration_seconds_count"), 20.0);
    // Every attempt was of a delivery taken once for it: first attempts handed over or
    // claimed, the ten retries claimed.
    let (handover, claim) = (
        get(&m, "hookline_deliveries_taken_total{by=\"handover\"}"),
        get(&m, "hookline_deliveries_taken_total{by=\"claim\"}"),
    );
    assert_eq!(handover + claim, 20.0);
    assert!(claim >= 10.0, "{claim} claimed");
    // Latency is observed for successful deliveries only, and lands in a finite bucket.
    assert_eq!(get(&m, "hookline_delivery_latency_seconds_count"), 5.0);
    assert!(get(&m, "hookline_delivery_latency_seconds_sum") > 0.0);
    assert_eq!(
        get(&m, "hookline_delivery_latency_seconds_bucket{le=\"8.192\"}"),
        5.0
    );
    assert_eq!(get(&m, "hookline_endpoints_failing"), 1.0);
    assert_eq!(get(&m, "hookline_queue_depth{state=\"due\"}"), 0.0);
    assert_eq!(get(&m, "hookline_queue_depth{state=\"scheduled\"}"), 0.0);

    // Deliveries held by a receiver that does not answer are in flight, and queued (claimed)
    // until they finish.
    for _ in 0..3 {
        app.publish(json!({"event": "Role.Created"})).await;
    }
    let m = scrape_until(&app, |m| {
        m.get("hookline_deliveries_in_flight") == Some(&3.0)
    })
    .await;
    assert_eq!(get(&m, "hookline_queue_depth{state=\"scheduled\"}"), 3.0);
    assert_eq!(get(&m, "hookline_events_ingested_total"), 8.0);
    slow.open_gate();
    let m = scrape_until(&app, |m| {
        m.get("hookline_deliveries_total{outcome=\"succeeded\"}") == Some(&8.0)
            && m.get("hookline_queue_depth{state=\"scheduled\"}") == Some(&0.0)
    })
    .await;
    assert_eq!(get(&m, "hookline_deliveries_in_flight"), 0.0);
    assert_eq!(get(&m, "hookline_queue_depth{state=\"scheduled\"}"), 0.0);
    // The failing endpoint is still failing; the others are fine.
    assert_eq!(get(&m, "hookline_endpoints_failing"), 1.0);
    app.stop().await;
}

#[tokio::test]
async fn work_held_back_by_the_per_hook_limit_shows_as_due() {
    let app = TestApp::spawn_with(|a| a.max_in_flight_per_hook = 1).await;
    let receiver = Receiver::start().await;
    app.create_hook(&["User.Created"], &receiver.url()).await;
    receiver.close_gate();
    for _ in 0..6 {
        app.publish(json!({"event": "User.Created"})).await;
    }
    receiver.wait_for(1, Duration::from_secs(5)).await;
    // One request in flight; the dispatcher holds at most one more claimed behind it (both
    // leased, so scheduled); the rest are due and wait in the database.
    let m = scrape_until(&app, |m| {
        m.get("hookline_deliveries_in_flight") == Some(&1.0)
            && m.get("hookline_queue_depth{state=\"scheduled\"}") == Some(&2.0)
    })
    .await;
    assert_eq!(get(&m, "hookline_queue_depth{state=\"due\"}"), 4.0);
    receiver.open_gate();
    receiver.wait_for(6, Duration::from_secs(10)).await;
    // Every result recorded: nothing is left leased, or due. (Waited for together: on a busy
    // machine the records of the last sends may still be on their way at the first scrape.)
    let m = scrape_until(&app, |m| {
        m.get("hookline_queue_depth{state=\"scheduled\"}") == Some(&0.0)
            && m.get("hookline_queue_depth{state=\"due\"}") == Some(&0.0)
    })
    .await;
    assert_eq!(get(&m, "hookline_queue_depth{state=\"due\"}"), 0.0);
    assert_eq!(get(&m, "hookline_deliveries_in_flight"), 0.0);
    assert_eq!(
        get(&m, "hookline_deliveries_total{outcome=\"succeeded\"}"),
        6.0
    );
    app.stop().await;
}

#[tokio::test]
async fn readiness_checks_the_database() {
    let app = TestApp::spawn().await;
    let res = app.get_public("/readyz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"status": "ready"})
    );

    if !app.dir.is_sqlite() {
        // PostgreSQL's counterpart, a server that goes away, is tested in `postgres.rs`.
        app.stop().await;
        return;
    }
    // Another process holds the write lock: this node cannot take events, so it is not
    // ready (after the probe's 2 s wait), and ready again once the lock is gone.
    use sqlx::Connection;
    let url = format!("sqlite://{}", app.dir.path().join("hookline.db").display());
    let mut other = sqlx::SqliteConnection::connect(&url).await.unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut other)
        .await
        .unwrap();
    let res = app.get_public("/readyz").await;
    expect_error(res, 503, "database.unavailable").await;
    sqlx::query("ROLLBACK").execute(&mut other).await.unwrap();
    let res = app.get_public("/readyz").await;
    assert_eq!(res.status(), 200);
    // Liveness never depended on the database.
    let res = app.get_public("/healthz").await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}

/// Runs a hook's whole life (create, a failing then a successful delivery, key rotation, a
/// refused token) under the real binary at trace level, and returns its logs with the ids and
/// secrets that were in play.
async fn logs_of_a_hook_lifetime(log_format: &str) -> (String, Value, Value, String) {
    let dir = TestDb::new().await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500).body("first try fails")]);
    let args = [
        "--admin-token",
        TOKEN,
        "--allow-private-targets",
        "--retry-schedule",
        "100ms",
        "--log-format",
        log_format,
    ];
    let server = Process::start(&dir, &args).await;
    let client = reqwest::Client::new();
    let res = client
        .post(format!("{}/api/hooks", server.base))
        .bearer_auth(TOKEN)
        .json(&json!({"events": ["User.Created"], "config": {"url": format!("{}?token=url-secret-0001", receiver.url()), "headers": {"authorization": "Bearer header-secret-0002"}}}))
        .send()
        .await
        .unwrap();
    let hook: Value = res.json().await.unwrap();
    let id = hook["id"].as_str().unwrap().to_owned();
    let first_key = hook["signingKey"].as_str().unwrap().to_owned();
    let event = server
        .send_json(
            reqwest::Method::POST,
            "/events",
            json!({"event": "User.Created", "data": {"i": 1}}),
        )
        .await;
    receiver.wait_for(2, Duration::from_secs(10)).await;
    // Users' passwords, set and changed, and one refused for being too short.
    let user = server
        .send_json(
            reqwest::Method::POST,
            "/users",
            json!({"username": "pat", "password": "user-password-0004"}),
        )
        .await;
    let changed = server
        .send_json(
            reqwest::Method::PATCH,
            &format!("/users/{}/password", user["id"].as_str().unwrap()),
            json!({"password": "user-password-0005"}),
        )
        .await;
    assert_eq!(changed["username"], "pat");
    server
        .send_json(
            reqwest::Method::POST,
            "/users",
            json!({"username": "sam", "password": "pw-0006"}),
        )
        .await;
    let rotated = server
        .send_json(
            reqwest::Method::PATCH,
            &format!("/hooks/{id}/signing-key"),
            json!({}),
        )
        .await;
    // A wrong token is refused and not echoed either.
    let res = client
        .get(format!("{}/api/hooks", server.base))
        .bearer_auth("wrong-token-0003-abcdef")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let stderr = server.stderr.clone();
    assert_eq!(server.terminate().await.code(), Some(0));
    // The pipe is read on a thread of its own: wait until it has the last line.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !stderr.lock().unwrap().contains("hookline stopped")
        && std::time::Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let logs = stderr.lock().unwrap().clone();
    assert!(
        logs.contains("hook created"),
        "the logs were captured:\n{logs}"
    );
    let event_id = event["id"].as_str().unwrap().to_owned();
    for secret in [
        TOKEN,
        first_key.as_str(),
        rotated["signingKey"].as_str().unwrap(),
        hook["standardWebhooksSecret"].as_str().unwrap(),
        "url-secret-0001",
        "header-secret-0002",
        "wrong-token-0003-abcdef",
        "user-password-0004",
        "user-password-0005",
        "pw-0006",
    ] {
        assert!(
            !logs.contains(secret),
            "a secret ({secret}) appears in the logs:\n{logs}"
        );
    }
    (logs, hook, rotated, event_id)
}

#[tokio::test]
async fn no_secret_reaches_the_logs_even_at_trace_level() {
    let (logs, hook, _, event_id) = logs_of_a_hook_lifetime("text").await;
    // The text format shows the spans' ids as prefixes.
    let id = hook["id"].as_str().unwrap();
    assert!(
        logs.lines()
            .any(|l| l.contains("attempt failed; will retry")
                && l.contains(&format!("hook_id={id}"))
                && l.contains(&format!("event_id={event_id}"))
                && l.contains("delivery_id=")),
        "{logs}"
    );
}

#[tokio::test]
async fn json_logs_carry_the_ids_of_their_spans_and_no_secret() {
    let (logs, hook, _, event_id) = logs_of_a_hook_lifetime("json").await;
    let id = hook["id"].as_str().unwrap();
    let lines: Vec<Value> = logs
        .lines()
        .filter(|l| !l.is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let in_span = |line: &Value, name: &str, field: &str, value: &str| {
        line["spans"].as_array().is_some_and(|spans| {
            spans
                .iter()
                .any(|s| s["name"] == name && s[field].as_str() == Some(value))
        })
    };
    // A delivery attempt's lines name the hook, the event and the delivery.
    let retry = lines
        .iter()
        .find(|l| l["message"] == "attempt failed; will retry")
        .unwrap_or_else(|| panic!("no retry line in {logs}"));
    assert_eq!(retry["level"], "INFO");
    assert!(in_span(retry, "delivery", "hook_id", id), "{retry}");
    assert!(in_span(retry, "delivery", "event_id", &event_id), "{retry}");
    let delivery_span = retry["spans"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "delivery")
        .unwrap();
    assert_eq!(delivery_span["delivery_id"].as_str().unwrap().len(), 21);
    // Request lines name the route pattern (never the raw URL) and the hook or event.
    assert!(
        lines.iter().any(
            |l| in_span(l, "request", "route", "/api/hooks/{id}/signing-key")
                && in_span(l, "request", "hook_id", id)
        ),
        "{logs}"
    );
    assert!(
        lines
            .iter()
            .any(|l| in_span(l, "request", "route", "/api/events")
                && in_span(l, "request", "event_id", &event_id)),
        "{logs}"
    );
    assert!(lines
        .iter()
        .any(|l| l["message"] == "hook created" && in_span(l, "request", "hook_id", id)));
}

/// After a stall has left work in the queue, new events go through the queue (so as not to
/// overtake it) only until the dispatcher has caught up; then they skip it again although
/// publishing never paused (`hookline_deliveries_taken_total` tells which way each went).
/// The budget reopens only after a claim that no queuing publish overlapped, so this checks
/// that steady ingest at this pace does not keep it closed for good.
#[tokio::test]
async fn new_events_skip_the_queue_again_once_a_stall_is_caught_up_while_ingest_goes_on() {
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    let app = Arc::new(TestApp::spawn().await);
    let receiver = Receiver::start().await;
    app.create_hook(&["User.Created"], &receiver.url()).await;
    receiver.close_gate();
    let stop = Arc::new(AtomicBool::new(false));
    let publishers: Vec<_> = (0..4)
        .map(|_| {
            let (app, stop) = (app.clone(), stop.clone());
            tokio::spawn(async move {
                let mut sent = 0;
                while !stop.load(Ordering::Relaxed) {
                    app.publish(json!({"event": "User.Created"})).await;
                    sent += 1;
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                sent
            })
        })
        .collect();
    // The stall: the hook's sends hang, its slots fill up, and new events queue. (Until well
    // past the hook's 64 slots, however slowly a busy machine lets the publishers go.)
    tokio::time::sleep(Duration::from_millis(500)).await;
    let stalled = scrape_until(&app, |m| {
        m.get("hookline_events_ingested_total")
            .is_some_and(|n| *n >= 128.0)
    })
    .await;
    receiver.open_gate();
    // Caught up within a second (a few hundred deliveries); then a second of steady ingest.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let before = scrape(&app).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after = scrape(&app).await;
    stop.store(true, Ordering::Relaxed);
    let mut published = 0;
    for p in publishers {
        published += p.await.unwrap();
    }
    let taken = |m: &HashMap<String, f64>, by: &str| {
        get(
            m,
            &format!("hookline_deliveries_taken_total{{by=\"{by}\"}}"),
        )
    };
    assert!(
        taken(&stalled, "claim") > 0.0
            || get(&stalled, "hookline_queue_depth{state=\"due\"}") > 0.0,
        "the stall queued work: {stalled:?}"
    );
    let handed = taken(&after, "handover") - taken(&before, "handover");
    let claimed = taken(&after, "claim") - taken(&before, "claim");
    assert!(
        handed > 4.0 * claimed,
        "after catching up, {handed} handed over and {claimed} claimed"
    );
    receiver.wait_for(published, Duration::from_secs(20)).await;
}
