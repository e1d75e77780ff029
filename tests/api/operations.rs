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
