//! A hook's health (issue 15): auto-disable (410 Gone, a failing window) and hookline's
//! operational events.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

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
