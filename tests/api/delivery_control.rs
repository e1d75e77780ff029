//! Per-hook delivery control (issue 15, item 6): `config.maxInFlight`, `config.timeoutMs`,
//! `config.rateLimit`, `config.ordering`, and a `Retry-After` that pauses the whole hook.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

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

#[tokio::test]
async fn a_retry_after_pauses_the_whole_hook() {
    let app = TestApp::spawn_with(|a| a.retry_schedule = "5s,5s".parse().unwrap()).await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(429).header("retry-after", "2")]);
    let other = Receiver::start().await;
    // One request at a time, so that the rest wait behind the first.
    let res = app
        .api(Method::POST, "/hooks")
        .json(&json!({"events": ["User.Created"], "config": {"url": receiver.url(), "maxInFlight": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    app.create_hook(&["User.Created"], &other.url()).await;
    for i in 0..4 {
        app.publish(json!({"event": "User.Created", "data": {"n": i}}))
            .await;
    }
    let first = receiver.wait_for(1, Duration::from_secs(5)).await[0].at;
    // The endpoint said "in 2 s": nothing more goes to it meanwhile; the other hook is not held.
    other.wait_for(4, Duration::from_secs(5)).await;
    receiver
        .assert_stays_at(1, Duration::from_millis(1_500))
        .await;
    let got = receiver.wait_for(5, Duration::from_secs(15)).await;
    assert!(got[1].at.duration_since(first) >= Duration::from_millis(1_900));
    let ids: std::collections::HashSet<&str> = got.iter().map(|r| r.header("webhook-id")).collect();
    assert_eq!(ids.len(), 4, "every delivery, the first one twice");
    app.stop().await;
}

#[tokio::test]
async fn a_rate_limit_is_kept_at_the_receiver_and_holds_back_no_other_hook() {
    let app = TestApp::spawn().await;
    let paced = Receiver::start().await;
    let free = Receiver::start().await;
    let res = app
        .api(Method::POST, "/hooks")
        .json(&json!({"events": ["User.Created"], "config": {"url": paced.url(), "rateLimit": 10}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let hook: Value = res.json().await.unwrap();
    assert_eq!(hook["config"]["rateLimit"], 10);
    app.create_hook(&["User.Created"], &free.url()).await;
    const N: usize = 25;
    for i in 0..N {
        app.publish(json!({"event": "User.Created", "data": {"n": i}}))
            .await;
    }
    let got = paced.wait_for(N, Duration::from_secs(20)).await;
    let unpaced = free.wait_for(N, Duration::from_secs(5)).await;
    // 10 a second with no burst: the k-th request starts at least k × 100 ms after the first
    // (the first's own trip through loopback is the slack), and no second holds more than 10.
    let first = got[0].at;
    for (k, r) in got.iter().enumerate() {
        let after = r.at.duration_since(first);
        assert!(
            after + Duration::from_millis(50) >= Duration::from_millis(100 * k as u64),
            "request {k} came {after:?} after the first"
        );
        let in_second = got[k..]
            .iter()
            .take_while(|s| s.at.duration_since(r.at) < Duration::from_secs(1))
            .count();
        assert!(in_second <= 11, "{in_second} requests within a second");
    }
    assert!(
        unpaced[N - 1].at < got[N - 1].at,
        "the hook without a limit was not paced with it"
    );
    let mut seen: Vec<i64> = got
        .iter()
        .map(|r| r.json()["data"]["n"].as_i64().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, (0..N as i64).collect::<Vec<_>>(), "every event, once");

    // Changing it applies to what is sent next; bad values are refused.
    let id = hook["id"].as_str().unwrap();
    let res = app
        .api(Method::PATCH, &format!("/hooks/{id}"))
        .json(&json!({"config": {"url": paced.url(), "rateLimit": 2}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    for i in 0..3 {
        app.publish(json!({"event": "User.Created", "data": {"n": i}}))
            .await;
    }
    let got = paced.wait_for(N + 3, Duration::from_secs(10)).await;
    for pair in got[N..].windows(2) {
        let gap = pair[1].at.duration_since(pair[0].at);
        assert!(
            gap >= Duration::from_millis(450),
            "{gap:?} apart at 2 a second"
        );
    }
    for bad in [json!(0), json!(100_001), json!("5"), json!(2.5), json!(-1)] {
        let res = app
            .api(Method::POST, "/hooks")
            .json(&json!({"events": ["PostSignIn"], "config": {"url": paced.url(), "rateLimit": bad}}))
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "guard.invalid_input").await;
    }
    app.stop().await;
}

#[tokio::test]
async fn a_users_deliveries_go_one_at_a_time_in_order_through_retries() {
    let app = TestApp::spawn_with(|a| a.retry_schedule = "3s".parse().unwrap()).await;
    let receiver = Receiver::start().await;
    // The first request fails: it is retried in about 3 s.
    receiver.script([Reply::status(500)]);
    let res = app
        .api(Method::POST, "/hooks")
        .json(&json!({"events": ["User.Created", "User.Data.Updated"],
            "config": {"url": receiver.url(), "ordering": "perUser"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let hook: Value = res.json().await.unwrap();
    assert_eq!(hook["config"]["ordering"], "perUser");
    let create = |name: &'static str| {
        let app = &app;
        async move {
            let res = app
                .api(Method::POST, "/users")
                .json(&json!({ "username": name }))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned()
        }
    };
    let alice = create("alice").await;
    receiver.wait_for(1, Duration::from_secs(5)).await;
    // Two more about alice while her first waits for its retry: a Management API change and
    // an event published by another system that names her.
    let res = app
        .api(Method::PATCH, &format!("/users/{alice}"))
        .json(&json!({"name": "Alice"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    app.publish(json!({"event": "User.Data.Updated", "userId": alice, "data": {"source": "crm"}}))
        .await;
    // Bob is not held back by alice's line.
    let bob = create("bob").await;
    let got = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(
        got[1].json()["data"]["id"],
        bob.as_str(),
        "bob's went first"
    );
    let got = receiver.wait_for(5, Duration::from_secs(15)).await;
    let seen: Vec<(String, Value)> = got
        .iter()
        .map(|r| {
            let b = r.json();
            (b["event"].as_str().unwrap().to_owned(), b["data"].clone())
        })
        .collect();
    // Alice's, in commit order, the first one twice (its retry) before the others.
    assert_eq!(seen[0].0, "User.Created");
    assert_eq!(seen[0].1["id"], alice.as_str());
    assert_eq!(seen[2], seen[0], "the retry of alice's first");
    assert_eq!(seen[3].0, "User.Data.Updated");
    assert_eq!(seen[3].1["name"], "Alice");
    assert_eq!(seen[4].1["source"], "crm");
    assert_eq!(
        got[2].header("webhook-id"),
        got[0].header("webhook-id"),
        "the same delivery"
    );
    receiver
        .assert_stays_at(5, Duration::from_millis(300))
        .await;

    for bad in [json!("perEvent"), json!(true), json!({})] {
        let res = app
            .api(Method::POST, "/hooks")
            .json(&json!({"events": ["User.Created"], "config": {"url": receiver.url(), "ordering": bad}}))
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "guard.invalid_input").await;
    }
    app.stop().await;
}
