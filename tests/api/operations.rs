//! Operating deliveries (issue 15): deliveries as objects, resend and recovery.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

fn ids(list: &Value) -> Vec<&str> {
    list.as_array()
        .unwrap()
        .iter()
        .map(|d| d["id"].as_str().unwrap())
        .collect()
}

async fn list(app: &TestApp, query: &str) -> (Value, String) {
    let res = app
        .api(Method::GET, &format!("/deliveries{query}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "GET /deliveries{query}");
    let total = res.headers()["total-number"].to_str().unwrap().to_owned();
    (res.json().await.unwrap(), total)
}

#[tokio::test]
async fn deliveries_are_listed_newest_first_filtered_and_shown_with_their_attempts() {
    let app = TestApp::spawn_with(|a| a.retry_schedule = "50ms,50ms".parse().unwrap()).await;
    let ok = Receiver::start().await;
    let down = Receiver::start().await;
    down.set_default(Reply::status(503).body("down for maintenance"));
    let held = Receiver::start().await;
    held.close_gate();
    let a = app
        .create_hook(&["PostSignIn", "User.Created"], &ok.url())
        .await;
    let b = app.create_hook(&["PostSignIn"], &down.url()).await;
    let c = app.create_hook(&["PostSignIn"], &held.url()).await;
    let (a, b, c) = (
        a["id"].as_str().unwrap(),
        b["id"].as_str().unwrap(),
        c["id"].as_str().unwrap(),
    );
    let e1 = app.publish(json!({"event": "PostSignIn"})).await;
    let e1 = e1["id"].as_str().unwrap();
    // A later creation time for the second event, so that the order is not a tie.
    tokio::time::sleep(Duration::from_millis(5)).await;
    let e2 = app
        .publish(json!({"event": "User.Created", "data": {"id": "u1"}}))
        .await;
    let e2 = e2["id"].as_str().unwrap();
    ok.wait_for(2, Duration::from_secs(10)).await;
    down.wait_for(3, Duration::from_secs(10)).await;
    held.wait_for(1, Duration::from_secs(10)).await;
    app.poll_json(
        &format!("/deliveries?hookId={b}&status=failed"),
        Duration::from_secs(5),
        |v| v.as_array().unwrap().len() == 1,
    )
    .await;
    app.poll_json(
        &format!("/deliveries?hookId={a}&status=succeeded"),
        Duration::from_secs(5),
        |v| v.as_array().unwrap().len() == 2,
    )
    .await;

    // Everything, newest first: the second event's delivery leads.
    let (all, total) = list(&app, "").await;
    assert_eq!(total, "4");
    let all = all.as_array().unwrap().clone();
    assert_eq!(all.len(), 4);
    assert_eq!(all[0]["eventId"], e2);
    assert_eq!(all[0]["event"], "User.Created");
    assert_eq!(all[0]["hookId"], a);
    assert_eq!(all[0]["status"], "succeeded");
    assert_eq!(all[0]["attempts"], 1);
    assert!(all[0]["nextAttemptAt"].is_null());
    let keys: Vec<&String> = all[0].as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        [
            "id",
            "eventId",
            "hookId",
            "event",
            "status",
            "attempts",
            "nextAttemptAt",
            "createdAt",
            "updatedAt"
        ],
        "the keys, in the documented order"
    );

    // Each filter.
    let (queued, total) = list(&app, "?status=queued").await;
    assert_eq!(total, "1");
    assert_eq!(queued[0]["hookId"], c);
    assert!(queued[0]["nextAttemptAt"].as_i64().is_some());
    assert_eq!(queued[0]["id"], held.received()[0].header("webhook-id"));
    let (of_e1, total) = list(&app, &format!("?eventId={e1}")).await;
    assert_eq!(total, "3");
    let mut hooks: Vec<&str> = of_e1
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["hookId"].as_str().unwrap())
        .collect();
    hooks.sort_unstable();
    let mut expected = vec![a, b, c];
    expected.sort_unstable();
    assert_eq!(hooks, expected);
    let (created, _) = list(&app, "?event=User.Created").await;
    assert_eq!(ids(&created), [all[0]["id"].as_str().unwrap()]);
    let (of_a, total) = list(&app, &format!("?hookId={a}&event=PostSignIn")).await;
    assert_eq!(total, "1");
    assert_eq!(of_a[0]["eventId"], e1);
    let (none, total) = list(&app, &format!("?hookId={c}&status=succeeded")).await;
    assert_eq!((none.as_array().unwrap().len(), total.as_str()), (0, "0"));

    // Time windows, in epoch milliseconds and in RFC 3339.
    let t2 = all[0]["createdAt"].as_i64().unwrap();
    let (since, total) = list(&app, &format!("?since={t2}")).await;
    assert_eq!(
        (ids(&since), total.as_str()),
        (vec![all[0]["id"].as_str().unwrap()], "1")
    );
    let (until, total) = list(&app, &format!("?until={}", t2 - 1)).await;
    assert_eq!(total, "3");
    assert!(!ids(&until).contains(&all[0]["id"].as_str().unwrap()));
    let (old, total) = list(&app, "?until=2020-01-01T00:00:00Z").await;
    assert_eq!((old.as_array().unwrap().len(), total.as_str()), (0, "0"));

    // Pages.
    let (page2, total) = list(&app, "?page=2&page_size=1").await;
    assert_eq!(total, "4");
    assert_eq!(ids(&page2), [all[1]["id"].as_str().unwrap()]);

    // One delivery: the failed one, with every attempt and the body they sent.
    let failed = &list(&app, &format!("?hookId={b}")).await.0[0];
    let id = failed["id"].as_str().unwrap();
    let one = app.get_json(&format!("/deliveries/{id}")).await;
    assert_eq!(one["status"], "failed");
    assert_eq!(one["attempts"].as_array().unwrap().len(), 3);
    assert_eq!(one["requestBody"]["hookId"], b);
    assert_eq!(one["requestBody"]["event"], "PostSignIn");
    assert_eq!(one["requestBody"], down.received()[0].json());
    for (i, attempt) in one["attempts"].as_array().unwrap().iter().enumerate() {
        assert_eq!(attempt["attempt"], i + 1);
        assert_eq!(attempt["success"], false);
        assert_eq!(attempt["responseStatus"], 503);
        assert_eq!(attempt["responseBody"], "down for maintenance");
        assert!(attempt["durationMs"].as_i64().is_some());
    }
    for r in down.received() {
        assert_eq!(r.header("webhook-id"), id);
    }
    held.open_gate();
    app.stop().await;
}

#[tokio::test]
async fn bad_delivery_queries_are_refused() {
    let app = TestApp::spawn().await;
    for (query, code) in [
        ("?status=done", "guard.invalid_input"),
        ("?event=User.Nope", "guard.invalid_input"),
        ("?since=yesterday", "guard.invalid_input"),
        ("?since=-5", "guard.invalid_input"),
        ("?since=20&until=10", "guard.invalid_input"),
        ("?hook_id=x", "guard.invalid_input"),
        ("?hookId=", "guard.invalid_input"),
        ("?page=0", "guard.invalid_pagination"),
        ("?page_size=101", "guard.invalid_pagination"),
    ] {
        let res = app
            .api(Method::GET, &format!("/deliveries{query}"))
            .send()
            .await
            .unwrap();
        expect_error(res, 400, code).await;
    }
    let res = app
        .api(Method::GET, "/deliveries/nope")
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "delivery.not_found").await;
    app.stop().await;
}

async fn delivery(app: &TestApp, id: &str) -> Value {
    app.get_json(&format!("/deliveries/{id}")).await
}

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.api(Method::POST, path)
        .json(&body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn a_retry_sends_the_same_delivery_again_now_with_its_schedule_started_afresh() {
    let app = TestApp::spawn_with(|a| a.retry_schedule = "50ms,50ms".parse().unwrap()).await;
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::status(500));
    let hook = app.create_hook(&["PostSignIn"], &receiver.url()).await;
    let hook_id = hook["id"].as_str().unwrap();
    app.publish(json!({"event": "PostSignIn"})).await;
    receiver.wait_for(3, Duration::from_secs(10)).await;
    let failed = app
        .poll_json(
            &format!("/deliveries?hookId={hook_id}&status=failed"),
            Duration::from_secs(5),
            |v| v.as_array().unwrap().len() == 1,
        )
        .await;
    let id = failed[0]["id"].as_str().unwrap().to_owned();

    // Still down: the retry runs a whole schedule again (three attempts), numbered on.
    let res = post(&app, &format!("/deliveries/{id}/retry"), json!({})).await;
    assert_eq!(res.status(), 202);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["id"], id.as_str());
    receiver.wait_for(6, Duration::from_secs(10)).await;
    receiver
        .assert_stays_at(6, Duration::from_millis(500))
        .await;
    let d = app
        .poll_json(&format!("/deliveries/{id}"), Duration::from_secs(5), |d| {
            d["status"] == "failed" && d["attempts"].as_array().unwrap().len() == 6
        })
        .await;
    let numbers: Vec<i64> = d["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attempt"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, [1, 2, 3, 4, 5, 6]);

    // Back up: one more retry succeeds, with the same webhook-id and the same bytes.
    receiver.set_default(Reply::status(204));
    let res = post(&app, &format!("/deliveries/{id}/retry"), json!({})).await;
    assert_eq!(res.status(), 202);
    let got = receiver.wait_for(7, Duration::from_secs(10)).await;
    for r in &got {
        assert_eq!(r.header("webhook-id"), id);
        assert_eq!(r.body, got[0].body);
    }
    app.poll_json(&format!("/deliveries/{id}"), Duration::from_secs(5), |d| {
        d["status"] == "succeeded" && d["attempts"].as_array().unwrap().len() == 7
    })
    .await;

    // A succeeded delivery can be sent again too.
    let res = post(&app, &format!("/deliveries/{id}/retry"), json!({})).await;
    assert_eq!(res.status(), 202);
    receiver.wait_for(8, Duration::from_secs(10)).await;
    let d = app
        .poll_json(&format!("/deliveries/{id}"), Duration::from_secs(5), |d| {
            d["attempts"].as_array().unwrap().len() == 8
        })
        .await;
    assert_eq!(d["status"], "succeeded");

    // Nothing to retry, or nowhere to send it.
    let res = post(&app, "/deliveries/nope/retry", json!({})).await;
    expect_error(res, 404, "delivery.not_found").await;
    app.send_json(
        Method::PATCH,
        &format!("/hooks/{hook_id}"),
        json!({"enabled": false}),
    )
    .await;
    let res = post(&app, &format!("/deliveries/{id}/retry"), json!({})).await;
    expect_error(res, 409, "hook.disabled").await;
    let res = app
        .api(Method::DELETE, &format!("/hooks/{hook_id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = post(&app, &format!("/deliveries/{id}/retry"), json!({})).await;
    expect_error(res, 404, "delivery.not_found").await;
    let (left, total) = list(&app, &format!("?hookId={hook_id}")).await;
    assert_eq!(
        (left.as_array().unwrap().len(), total.as_str()),
        (0, "0"),
        "its deliveries went with it"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_receiver_down_and_back_gets_every_failed_delivery_on_recover() {
    let app = TestApp::spawn_with(|a| a.retry_schedule = "30ms".parse().unwrap()).await;
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::status(503));
    let other = Receiver::start().await;
    let hook = app.create_hook(&["User.Created"], &receiver.url()).await;
    let hook_id = hook["id"].as_str().unwrap();
    // Another hook's deliveries, succeeded, are not the recovery's business.
    app.create_hook(&["User.Created"], &other.url()).await;
    for i in 0..5 {
        app.publish(json!({"event": "User.Created", "data": {"id": format!("u{i}")}}))
            .await;
    }
    receiver.wait_for(10, Duration::from_secs(10)).await;
    app.poll_json(
        &format!("/deliveries?hookId={hook_id}&status=failed"),
        Duration::from_secs(5),
        |v| v.as_array().unwrap().len() == 5,
    )
    .await;
    let first_ids: std::collections::BTreeSet<String> = receiver
        .received()
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    assert_eq!(first_ids.len(), 5);

    // A window before everything holds nothing.
    let res = post(
        &app,
        &format!("/hooks/{hook_id}/recover"),
        json!({"since": 0, "until": 1}),
    )
    .await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"queued": 0}));

    receiver.set_default(Reply::status(200));
    let res = post(
        &app,
        &format!("/hooks/{hook_id}/recover"),
        json!({"since": "2020-01-01T00:00:00Z"}),
    )
    .await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"queued": 5}));
    let got = receiver.wait_for(15, Duration::from_secs(10)).await;
    let again: std::collections::BTreeSet<String> = got[10..]
        .iter()
        .map(|r| r.header("webhook-id").to_owned())
        .collect();
    assert_eq!(again, first_ids, "the same deliveries, each once");
    app.poll_json(
        &format!("/deliveries?hookId={hook_id}&status=succeeded"),
        Duration::from_secs(5),
        |v| v.as_array().unwrap().len() == 5,
    )
    .await;
    receiver
        .assert_stays_at(15, Duration::from_millis(300))
        .await;
    let res = post(
        &app,
        &format!("/hooks/{hook_id}/recover"),
        json!({"since": 0}),
    )
    .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"queued": 0}));
    assert_eq!(other.count(), 5);
    app.stop().await;
}

#[tokio::test]
async fn replay_back_fills_a_hook_added_after_the_events() {
    let app = TestApp::spawn().await;
    let early = Receiver::start().await;
    let early_hook = app.create_hook(&["User.Created"], &early.url()).await;
    let mut users = Vec::new();
    for i in 0..4 {
        users.push(format!("u{i}"));
        app.publish(json!({"event": "User.Created", "data": {"id": format!("u{i}")}}))
            .await;
    }
    app.publish(json!({"event": "PostSignIn"})).await;
    early.wait_for(4, Duration::from_secs(10)).await;

    let late = Receiver::start().await;
    let hook = app.create_hook(&["User.Created"], &late.url()).await;
    let hook_id = hook["id"].as_str().unwrap();
    // One event after the hook exists: delivered the usual way, and not again by the replay.
    app.publish(json!({"event": "User.Created", "data": {"id": "u4"}}))
        .await;
    users.push("u4".into());
    late.wait_for(1, Duration::from_secs(10)).await;

    let res = post(
        &app,
        &format!("/hooks/{hook_id}/replay"),
        json!({"since": 0}),
    )
    .await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"queued": 4}));
    let got = late.wait_for(5, Duration::from_secs(10)).await;
    late.assert_stays_at(5, Duration::from_millis(300)).await;
    let mut seen: Vec<String> = got
        .iter()
        .map(|r| {
            let body = r.json();
            assert_eq!(body["hookId"], hook_id);
            assert_eq!(body["event"], "User.Created");
            body["data"]["id"].as_str().unwrap().to_owned()
        })
        .collect();
    seen.sort();
    assert_eq!(seen, users);
    let res = post(
        &app,
        &format!("/hooks/{hook_id}/replay"),
        json!({"since": 0}),
    )
    .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"queued": 0}));
    let (of_hook, total) = list(&app, &format!("?hookId={hook_id}")).await;
    assert_eq!(
        (of_hook.as_array().unwrap().len(), total.as_str()),
        (5, "5")
    );
    assert_eq!(early.count(), 5, "the early hook got nothing twice");
    let _ = early_hook;
    app.stop().await;
}

#[tokio::test]
async fn recoveries_and_replays_are_paced_and_refuse_what_they_cannot_do() {
    // Ten deliveries a second: one a step.
    let app = TestApp::spawn_with(|a| a.recovery_rate = 10).await;
    for i in 0..20 {
        app.publish(json!({"event": "User.Created", "data": {"id": format!("u{i}")}}))
            .await;
    }
    let receiver = Receiver::start().await;
    let hook = app.create_hook(&["User.Created"], &receiver.url()).await;
    let hook_id = hook["id"].as_str().unwrap();
    let res = post(
        &app,
        &format!("/hooks/{hook_id}/replay"),
        json!({"since": 0}),
    )
    .await;
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"queued": 20}));
    tokio::time::sleep(Duration::from_millis(600)).await;
    let early = receiver.count();
    assert!(
        early < 20,
        "paced: {early} of 20 after 0.6 s at 10 a second"
    );
    receiver.wait_for(20, Duration::from_secs(15)).await;

    for (body, status, code) in [
        (json!({}), 400, "guard.invalid_input"),
        (json!({"since": -1}), 400, "guard.invalid_input"),
        (json!({"since": "monday"}), 400, "guard.invalid_input"),
        (json!({"since": 0, "limit": 5}), 400, "guard.invalid_input"),
        (json!({"since": 10, "until": 5}), 400, "guard.invalid_input"),
        (json!([0]), 400, "guard.invalid_input"),
    ] {
        for op in ["recover", "replay"] {
            let res = post(&app, &format!("/hooks/{hook_id}/{op}"), body.clone()).await;
            expect_error(res, status, code).await;
        }
    }
    for op in ["recover", "replay"] {
        let res = post(&app, &format!("/hooks/nope/{op}"), json!({"since": 0})).await;
        expect_error(res, 404, "entity.not_exists_with_id").await;
    }
    let blocking = app.create_hook(&["PreSignIn"], &receiver.url()).await;
    let res = post(
        &app,
        &format!("/hooks/{}/replay", blocking["id"].as_str().unwrap()),
        json!({"since": 0}),
    )
    .await;
    expect_error(res, 400, "hook.nothing_to_replay").await;
    app.send_json(
        Method::PATCH,
        &format!("/hooks/{hook_id}"),
        json!({"enabled": false}),
    )
    .await;
    for op in ["recover", "replay"] {
        let res = post(&app, &format!("/hooks/{hook_id}/{op}"), json!({"since": 0})).await;
        expect_error(res, 409, "hook.disabled").await;
    }
    let _ = delivery;
    app.stop().await;
}

#[tokio::test]
async fn retention_stops_the_tables_growing_and_keeps_a_day_of_logs() {
    // Three seconds' retention (passes every second), events for twelve seconds at about
    // 50 a second to one hook.
    let app = TestApp::spawn_with(|a| a.retention = Duration::from_secs(3)).await;
    let receiver = Receiver::start().await;
    let hook = app.create_hook(&["User.Created"], &receiver.url()).await;
    let hook_id = hook["id"].as_str().unwrap().to_owned();
    let started = std::time::Instant::now();
    let mut published = 0;
    let mut samples = Vec::new();
    while started.elapsed() < Duration::from_secs(12) {
        for _ in 0..5 {
            app.publish(json!({"event": "User.Created", "data": {"n": published}}))
                .await;
            published += 1;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        if published % 50 == 0 {
            let events = app.dir.count_rows("events").await;
            let deliveries = app.dir.count_rows("deliveries").await;
            samples.push((started.elapsed(), events, deliveries));
        }
    }
    receiver
        .wait_for(published as usize, Duration::from_secs(10))
        .await;
    // Once the retention has passed, what is kept stays within what arrives in the retention
    // plus a pass and some slack (about 50 × 6), far below what was published.
    let late: Vec<_> = samples
        .iter()
        .filter(|(at, _, _)| *at > Duration::from_secs(7))
        .collect();
    assert!(late.len() >= 3, "{samples:?}");
    for (at, events, deliveries) in &late {
        assert!(
            *events <= 300 && *deliveries <= 300,
            "at {at:?}: {events} events, {deliveries} deliveries kept of {published} published; {samples:?}"
        );
    }
    assert!(published >= 400, "published {published}");
    // Nothing older than the retention and a pass or two is left…
    let old = now_ms() - 6_000;
    let (_, total) = list(&app, &format!("?until={old}")).await;
    assert_eq!(total, "0");
    // …but the day of attempts stays: recent-logs and the stats count every one.
    let logs = app
        .api(
            Method::GET,
            &format!("/hooks/{hook_id}/recent-logs?page_size=1"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(
        logs.headers()["total-number"],
        published.to_string().as_str()
    );
    let stats = app
        .get_json(&format!("/hooks/{hook_id}?includeExecutionStats=true"))
        .await;
    assert_eq!(stats["executionStats"]["requestCount"], published);
    let metrics = app.get_public("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("hookline_pruned_rows_total{table=\"deliveries\"}"),
        "{metrics}"
    );
    app.stop().await;
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The signatures in `webhook-signature` that each secret verifies, with the reference
/// Standard Webhooks library.
fn verifies(r: &Received, secret: &str) -> bool {
    let wh = standardwebhooks::Webhook::new(secret).unwrap();
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(name, r.header(name).parse().unwrap());
    }
    wh.verify(&r.body, &headers).is_ok()
}

async fn rotate(app: &TestApp, id: &str, body: Option<Value>) -> reqwest::Response {
    let req = app.api(Method::PATCH, &format!("/hooks/{id}/signing-key"));
    match body {
        Some(b) => req.json(&b),
        None => req,
    }
    .send()
    .await
    .unwrap()
}

#[tokio::test]
async fn a_rotated_key_keeps_signing_beside_the_new_one_for_its_grace_period() {
    let app = TestApp::spawn_with(|a| a.retry_schedule = "1s".parse().unwrap()).await;
    let receiver = Receiver::start().await;
    let hook = app.create_hook(&["User.Created"], &receiver.url()).await;
    let id = hook["id"].as_str().unwrap();
    let first = hook["standardWebhooksSecret"].as_str().unwrap().to_owned();

    let res = rotate(&app, id, Some(json!({"gracePeriodSeconds": 2}))).await;
    assert_eq!(res.status(), 200);
    let rotated: Value = res.json().await.unwrap();
    let second = rotated["standardWebhooksSecret"]
        .as_str()
        .unwrap()
        .to_owned();
    let second_key = rotated["signingKey"].as_str().unwrap().to_owned();
    assert_ne!(second, first);
    let rotated_at = std::time::Instant::now();
    app.publish(json!({"event": "User.Created"})).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].header("webhook-signature").split(' ').count(), 2);
    assert!(
        verifies(&got[0], &first),
        "the previous key, during the grace period"
    );
    assert!(verifies(&got[0], &second), "the new key");
    assert_eq!(
        got[0].header("logto-signature-sha-256"),
        hookline::domain::signature::logto_signature(&second_key, &got[0].body)
    );

    // After the grace period: the new key only.
    tokio::time::sleep(
        (rotated_at + Duration::from_millis(2_200))
            .saturating_duration_since(std::time::Instant::now()),
    )
    .await;
    app.publish(json!({"event": "User.Created"})).await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].header("webhook-signature").split(' ').count(), 1);
    assert!(!verifies(&got[1], &first));
    assert!(verifies(&got[1], &second));

    // Logto's clients send no body: a day's grace.
    let res = rotate(&app, id, None).await;
    assert_eq!(res.status(), 200);
    let third = res.json::<Value>().await.unwrap()["standardWebhooksSecret"]
        .as_str()
        .unwrap()
        .to_owned();
    app.publish(json!({"event": "User.Created"})).await;
    let got = receiver.wait_for(3, Duration::from_secs(10)).await;
    assert!(verifies(&got[2], &second) && verifies(&got[2], &third));
    assert!(!verifies(&got[2], &first), "one previous key at a time");

    // No grace: the switch is immediate, also for a delivery queued before it (each attempt
    // is signed with the keys current when it is sent).
    receiver.script([Reply::status(500)]);
    app.publish(json!({"event": "User.Created"})).await;
    let got = receiver.wait_for(4, Duration::from_secs(10)).await;
    assert!(verifies(&got[3], &third));
    let res = rotate(&app, id, Some(json!({"gracePeriodSeconds": 0}))).await;
    let fourth = res.json::<Value>().await.unwrap()["standardWebhooksSecret"]
        .as_str()
        .unwrap()
        .to_owned();
    let got = receiver.wait_for(5, Duration::from_secs(10)).await;
    assert_eq!(
        got[4].header("webhook-id"),
        got[3].header("webhook-id"),
        "the retry"
    );
    assert!(verifies(&got[4], &fourth));
    assert!(!verifies(&got[4], &third));
    assert_eq!(got[4].header("webhook-signature").split(' ').count(), 1);

    for body in [
        json!({"gracePeriodSeconds": -1}),
        json!({"gracePeriodSeconds": 2_592_001}),
        json!({"gracePeriodSeconds": "1h"}),
        json!({"grace": 5}),
    ] {
        expect_error(
            rotate(&app, id, Some(body)).await,
            400,
            "guard.invalid_input",
        )
        .await;
    }
    expect_error(rotate(&app, "nope", None).await, 404, "entity.not_exists").await;
    app.stop().await;
}

/// A hook that hears hookline's own operational events.
async fn monitor(app: &TestApp) -> (Receiver, String) {
    let receiver = Receiver::start().await;
    let hook = app
        .create_hook(&["Hook.Disabled", "Delivery.Exhausted"], &receiver.url())
        .await;
    (receiver, hook["id"].as_str().unwrap().to_owned())
}

fn by_event(got: &[Received], event: &str) -> Vec<Value> {
    got.iter()
        .map(Received::json)
        .filter(|b| b["event"] == event)
        .collect()
}

#[tokio::test]
async fn an_endpoint_that_is_gone_disables_its_hook_and_says_so() {
    let app = TestApp::spawn().await;
    let (watch, watch_id) = monitor(&app).await;
    let gone = Receiver::start().await;
    gone.set_default(Reply::status(410).body("no such endpoint"));
    let hook = app.create_hook(&["User.Created"], &gone.url()).await;
    let id = hook["id"].as_str().unwrap();
    app.publish(json!({"event": "User.Created", "data": {"id": "u1"}}))
        .await;
    let sent = gone.wait_for(1, Duration::from_secs(10)).await;
    let got = watch.wait_for(2, Duration::from_secs(10)).await;
    gone.assert_stays_at(1, Duration::from_millis(400)).await;

    let disabled = &by_event(&got, "Hook.Disabled")[0];
    assert_eq!(
        disabled["hookId"],
        watch_id.as_str(),
        "the receiving hook, as always"
    );
    assert_eq!(disabled["data"]["id"], id);
    assert_eq!(disabled["data"]["name"], "test hook");
    assert_eq!(
        disabled["data"]["reason"],
        "The endpoint answered 410 Gone."
    );
    let exhausted = &by_event(&got, "Delivery.Exhausted")[0];
    assert_eq!(exhausted["data"]["hookId"], id);
    assert_eq!(
        exhausted["data"]["deliveryId"],
        sent[0].header("webhook-id")
    );
    assert_eq!(exhausted["data"]["event"], "User.Created");
    assert_eq!(exhausted["data"]["responseStatus"], 410);
    assert_eq!(exhausted["data"]["attempts"], 1);

    let shown = app.get_json(&format!("/hooks/{id}")).await;
    assert_eq!(shown["enabled"], false);
    assert_eq!(shown["disabledReason"], "The endpoint answered 410 Gone.");
    let d = app
        .get_json(&format!("/deliveries/{}", sent[0].header("webhook-id")))
        .await;
    assert_eq!(d["status"], "failed");

    // Disabled: nothing more goes out. Enabled again: the reason goes, deliveries resume.
    app.publish(json!({"event": "User.Created", "data": {"id": "u2"}}))
        .await;
    gone.assert_stays_at(1, Duration::from_millis(300)).await;
    gone.set_default(Reply::status(200));
    let res = app
        .api(Method::PATCH, &format!("/hooks/{id}"))
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    let enabled: Value = res.json().await.unwrap();
    assert_eq!(enabled["enabled"], true);
    assert!(enabled.get("disabledReason").is_none(), "{enabled}");
    app.publish(json!({"event": "User.Created", "data": {"id": "u3"}}))
        .await;
    gone.wait_for(2, Duration::from_secs(10)).await;

    // hookline's own events are subscribable, listed, and never published by others.
    let catalog = app.get_json("/hook-events").await;
    let ours: Vec<&Value> = catalog
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["kind"] == "operational")
        .collect();
    assert_eq!(ours.len(), 2, "{catalog}");
    let res = app
        .api(Method::POST, "/events")
        .json(&json!({"event": "Hook.Disabled", "data": {"id": "forged"}}))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "event.not_publishable").await;
    app.stop().await;
}

#[tokio::test]
async fn a_hook_failing_for_the_whole_window_is_disabled_and_one_that_recovers_is_not() {
    let app = TestApp::spawn_with(|a| {
        a.disable_after = Duration::from_secs(2);
        a.retry_schedule =
            "300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms,300ms"
                .parse()
                .unwrap();
    })
    .await;
    let (watch, _) = monitor(&app).await;
    let down = Receiver::start().await;
    down.set_default(Reply::status(503));
    let flaky = Receiver::start().await;
    flaky.script([Reply::status(500), Reply::status(500)]);
    let failing = app.create_hook(&["User.Created"], &down.url()).await;
    let failing = failing["id"].as_str().unwrap();
    let recovering = app.create_hook(&["User.Created"], &flaky.url()).await;
    let recovering = recovering["id"].as_str().unwrap();
    app.publish(json!({"event": "User.Created", "data": {"id": "u1"}}))
        .await;
    let started = std::time::Instant::now();
    let shown = app
        .poll_json(&format!("/hooks/{failing}"), Duration::from_secs(10), |h| {
            h["enabled"] == false
        })
        .await;
    assert!(
        started.elapsed() >= Duration::from_millis(1_900),
        "not before the window: {:?}",
        started.elapsed()
    );
    assert_eq!(
        shown["disabledReason"],
        "Every delivery failed for longer than --disable-after."
    );
    let got = watch.wait_for(1, Duration::from_secs(10)).await;
    let disabled = &by_event(&got, "Hook.Disabled")[0];
    assert_eq!(disabled["data"]["id"], failing);
    assert!(disabled["data"]["failingSince"].as_i64().is_some());
    // The one whose third attempt succeeded stays enabled past the window.
    flaky.wait_for(3, Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(
        app.get_json(&format!("/hooks/{recovering}")).await["enabled"],
        true
    );
    // Enabled again, a hook starts its window afresh: not disabled by the next pass.
    app.send_json(
        Method::PATCH,
        &format!("/hooks/{failing}"),
        json!({"enabled": true}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    assert_eq!(
        app.get_json(&format!("/hooks/{failing}")).await["enabled"],
        true
    );
    app.stop().await;
}

#[tokio::test]
async fn signing_keys_are_sealed_at_rest_with_an_encryption_key() {
    use base64::Engine;
    let key = base64::engine::general_purpose::STANDARD.encode([42u8; 32]);
    let wrong = base64::engine::general_purpose::STANDARD.encode([43u8; 32]);
    let receiver = Receiver::start().await;
    // Stored in the clear first (no key).
    let app = TestApp::spawn().await;
    let a = app.create_hook(&["User.Created"], &receiver.url()).await;
    let a_key = a["signingKey"].as_str().unwrap().to_owned();
    let dir = app.stop().await;
    assert!(dir.stored_text().await.contains(&a_key));

    // With a key: sealed at start, and every key written since is sealed too.
    let with_key = |k: &str| {
        let k = k.to_owned();
        move |args: &mut hookline::configuration::ServeArgs| {
            args.encryption_key = Some(hookline::configuration::Secret(k))
        }
    };
    let app = TestApp::spawn_in(dir, with_key(&key)).await;
    let b = app.create_hook(&["User.Created"], &receiver.url()).await;
    let b_id = b["id"].as_str().unwrap();
    let b_old = b["signingKey"].as_str().unwrap().to_owned();
    let res = rotate(&app, b_id, None).await;
    let b_new = res.json::<Value>().await.unwrap()["signingKey"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        app.get_json(&format!("/hooks/{}", a["id"].as_str().unwrap()))
            .await["signingKey"],
        a_key.as_str()
    );
    app.publish(json!({"event": "User.Created"})).await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    let mut keys: Vec<String> = got
        .iter()
        .map(|r| r.header("logto-signature-sha-256").to_owned())
        .collect();
    keys.sort();
    let mut expected = vec![
        hookline::domain::signature::logto_signature(&a_key, &got[0].body),
        hookline::domain::signature::logto_signature(&b_new, &got[1].body),
    ];
    if got[0].json()["hookId"] == b_id {
        expected = vec![
            hookline::domain::signature::logto_signature(&b_new, &got[0].body),
            hookline::domain::signature::logto_signature(&a_key, &got[1].body),
        ];
    }
    expected.sort();
    assert_eq!(keys, expected, "signed with the keys the API shows");
    let dir = app.stop().await;
    let stored = dir.stored_text().await;
    for secret in [&a_key, &b_old, &b_new] {
        assert!(
            !stored.contains(secret.as_str()),
            "a signing key stored in the clear: {}",
            if *secret == a_key {
                "a"
            } else if *secret == b_old {
                "b_old"
            } else {
                "b_new"
            }
        );
    }

    // Without the key, or with another, hookline does not start, and says why.
    for (k, says) in [(None, "--encryption-key"), (Some(&wrong), "does not open")] {
        let mut args = test_args(&dir);
        args.encryption_key = k.map(|k| hookline::configuration::Secret(k.clone()));
        let Err(e) = hookline::startup::Application::build(args).await else {
            panic!("started without the right encryption key");
        };
        assert!(format!("{e:#}").contains(says), "{e:#}");
    }
    // With it, everything is as it was.
    let app = TestApp::spawn_in(dir, with_key(&key)).await;
    assert_eq!(
        app.get_json(&format!("/hooks/{b_id}")).await["signingKey"],
        b_new.as_str()
    );
    app.stop().await;
}

#[tokio::test]
async fn a_hooks_own_in_flight_limit_and_timeout_hold() {
    let app = TestApp::spawn_with(|a| a.retry_schedule = "10s".parse().unwrap()).await;
    let slow = Receiver::start().await;
    slow.close_gate();
    let res = app
        .api(Method::POST, "/hooks")
        .json(&json!({"events": ["User.Created"], "config": {"url": slow.url(), "maxInFlight": 2}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let hook: Value = res.json().await.unwrap();
    assert_eq!(hook["config"]["maxInFlight"], 2);
    for i in 0..6 {
        app.publish(json!({"event": "User.Created", "data": {"n": i}}))
            .await;
    }
    slow.wait_for(2, Duration::from_secs(10)).await;
    slow.assert_stays_at(2, Duration::from_millis(400)).await;
    slow.open_gate();
    slow.wait_for(6, Duration::from_secs(10)).await;

    // timeoutMs bounds each request to the hook: an answer after a second fails at 200 ms.
    let late = Receiver::start().await;
    late.set_default(Reply::status(200).delay(Duration::from_secs(1)));
    let res = app
        .api(Method::POST, "/hooks")
        .json(&json!({"events": ["PostSignIn"], "config": {"url": late.url(), "timeoutMs": 200}}))
        .send()
        .await
        .unwrap();
    let hook: Value = res.json().await.unwrap();
    app.publish(json!({"event": "PostSignIn"})).await;
    let logs = app
        .poll_json(
            &format!("/hooks/{}/recent-logs", hook["id"].as_str().unwrap()),
            Duration::from_secs(10),
            |v| !v.as_array().unwrap().is_empty(),
        )
        .await;
    let error = logs[0]["payload"]["error"].as_str().unwrap();
    assert!(error.contains("timed out"), "{error}");
    assert!(
        logs[0]["payload"]["durationMs"].as_i64().unwrap() < 900,
        "{logs}"
    );

    for bad in [json!(0), json!(10_001), json!("2"), json!(1.5)] {
        let res = app
            .api(Method::POST, "/hooks")
            .json(&json!({"events": ["PostSignIn"], "config": {"url": late.url(), "maxInFlight": bad}}))
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "guard.invalid_input").await;
    }
    app.stop().await;
}
