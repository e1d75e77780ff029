//! Operating deliveries (issue 15): deliveries as objects, retry, recover, replay (paced),
//! and retention.

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
            "updatedAt",
            "lastResponseStatus",
            "lastDurationMs"
        ],
        "the keys, in the documented order"
    );
    // The latest attempt's answer: a 2xx here, the third 503 there, none while held.
    assert_eq!(all[0]["lastResponseStatus"], 200);
    assert!(all[0]["lastDurationMs"].as_i64().is_some());
    let (of_b, _) = list(&app, &format!("?hookId={b}")).await;
    assert_eq!(of_b[0]["attempts"], 3);
    assert_eq!(of_b[0]["lastResponseStatus"], 503);
    let one = app
        .get_json(&format!("/deliveries/{}", of_b[0]["id"].as_str().unwrap()))
        .await;
    assert_eq!(one["lastResponseStatus"], 503);
    assert_eq!(one["lastDurationMs"], one["attempts"][2]["durationMs"]);

    // Each filter.
    let (queued, total) = list(&app, "?status=queued").await;
    assert_eq!(total, "1");
    assert_eq!(queued[0]["hookId"], c);
    assert!(queued[0]["nextAttemptAt"].as_i64().is_some());
    assert!(queued[0]["lastResponseStatus"].is_null());
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
    app.create_hook(&["User.Created"], &early.url()).await;
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
