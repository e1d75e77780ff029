use crate::helpers::*;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn failures_are_retried_with_the_same_id_and_body_until_success() {
    let app =
        TestApp::spawn_with(|a| a.retry_schedule = "100ms,100ms,100ms".parse().unwrap()).await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500), Reply::status(404)]);
    let hook = app.create_hook(&["PostSignIn"], &receiver.url()).await;
    app.publish(json!({"event": "PostSignIn"})).await;
    let got = receiver.wait_for(3, Duration::from_secs(10)).await;
    receiver
        .assert_stays_at(3, Duration::from_millis(600))
        .await;
    let id = got[0].header("webhook-id");
    assert!(!id.is_empty());
    for r in &got {
        assert_eq!(
            r.header("webhook-id"),
            id,
            "webhook-id is stable across retries"
        );
        assert_eq!(r.body, got[0].body, "every retry sends the same bytes");
    }
    let path = format!("/hooks/{}/recent-logs", hook["id"].as_str().unwrap());
    let logs = app
        .poll_json(&path, Duration::from_secs(5), |v| {
            v.as_array().unwrap().len() == 3
        })
        .await;
    let results: Vec<&str> = logs
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["payload"]["result"].as_str().unwrap())
        .collect();
    assert_eq!(results, ["Success", "Error", "Error"]);
    app.stop().await;
}

#[tokio::test]
async fn a_delivery_is_marked_failed_when_the_schedule_is_used_up() {
    let app = TestApp::spawn_with(|a| a.retry_schedule = "50ms,50ms".parse().unwrap()).await;
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::status(503).body("down"));
    let hook = app.create_hook(&["PostSignIn"], &receiver.url()).await;
    app.publish(json!({"event": "PostSignIn"})).await;
    receiver.wait_for(3, Duration::from_secs(10)).await;
    receiver
        .assert_stays_at(3, Duration::from_millis(800))
        .await;
    let path = format!("/hooks/{}/recent-logs", hook["id"].as_str().unwrap());
    let logs = app
        .poll_json(&path, Duration::from_secs(5), |v| {
            v.as_array().unwrap().len() == 3
        })
        .await;
    assert!(logs
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["payload"]["result"] == "Error"));
    // The failed delivery is kept: its attempts stay readable and counted.
    let h = app
        .get_json(&format!(
            "/hooks/{}?includeExecutionStats=true",
            hook["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(
        h["executionStats"],
        json!({"requestCount": 3, "successCount": 0})
    );
    app.stop().await;
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let app = TestApp::spawn_with(|a| a.retry_schedule = "50ms,3s".parse().unwrap()).await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(429).header("retry-after", "1")]);
    app.create_hook(&["PostSignIn"], &receiver.url()).await;
    app.publish(json!({"event": "PostSignIn"})).await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    let gap = got[1].at - got[0].at;
    assert!(
        gap >= Duration::from_millis(950),
        "the retry waited for Retry-After (gap {gap:?})"
    );
    app.stop().await;
}

#[tokio::test]
async fn timeouts_redirects_and_dead_endpoints_count_as_failures() {
    let app = TestApp::spawn_with(|a| {
        a.retry_schedule = "50ms".parse().unwrap();
        a.request_timeout = Duration::from_millis(300);
    })
    .await;
    let slow = Receiver::start().await;
    slow.set_default(Reply::status(200).delay(Duration::from_secs(2)));
    let redirecting = Receiver::start().await;
    let target = Receiver::start().await;
    redirecting.set_default(Reply::status(302).header("location", &target.url()));
    let dead = dead_url().await;
    let hooks: Vec<Value> = vec![
        app.create_hook(&["PostSignIn"], &slow.url()).await,
        app.create_hook(&["PostSignIn"], &redirecting.url()).await,
        app.create_hook(&["PostSignIn"], &dead).await,
    ];
    app.publish(json!({"event": "PostSignIn"})).await;
    for hook in &hooks {
        let path = format!("/hooks/{}/recent-logs", hook["id"].as_str().unwrap());
        let logs = app
            .poll_json(&path, Duration::from_secs(10), |v| {
                v.as_array().unwrap().len() == 2
            })
            .await;
        for l in logs.as_array().unwrap() {
            assert_eq!(l["payload"]["result"], "Error", "{l}");
        }
    }
    let slow_logs = app
        .get_json(&format!(
            "/hooks/{}/recent-logs",
            hooks[0]["id"].as_str().unwrap()
        ))
        .await;
    assert!(
        slow_logs[0]["payload"]["error"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{slow_logs}"
    );
    let redirect_logs = app
        .get_json(&format!(
            "/hooks/{}/recent-logs",
            hooks[1]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(redirect_logs[0]["payload"]["response"]["statusCode"], 302);
    assert_eq!(target.count(), 0, "redirects are not followed");
    let dead_logs = app
        .get_json(&format!(
            "/hooks/{}/recent-logs",
            hooks[2]["id"].as_str().unwrap()
        ))
        .await;
    assert!(dead_logs[0]["payload"].get("response").is_none());
    assert!(!dead_logs[0]["payload"]["error"]
        .as_str()
        .unwrap()
        .is_empty());
    app.stop().await;
}

#[tokio::test]
async fn shutdown_releases_claimed_but_unsent_deliveries_for_the_next_start() {
    // One request at a time to the hook: the first is in flight when shutdown comes, the
    // other two are claimed and buffered behind it. The first is let finish; the two are
    // released, so the next start sends them at once instead of after their lease
    // (3 x 3 s + 5 s = 14 s).
    let configure = |a: &mut hookline::configuration::ServeArgs| {
        a.max_in_flight_per_hook = 1;
        a.request_timeout = Duration::from_secs(3);
    };
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(200).delay(Duration::from_millis(1500))]);
    let app = TestApp::spawn_with(configure).await;
    let hook = app.create_hook(&["PostSignIn"], &receiver.url()).await;
    for i in 0..3 {
        app.publish(json!({"event": "PostSignIn", "i": i})).await;
    }
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let dir = app.stop().await;
    assert_eq!(receiver.count(), 1, "nothing new is sent during shutdown");

    let app = TestApp::spawn_in(dir, configure).await;
    let got = receiver.wait_for(3, Duration::from_secs(8)).await;
    let mut seen: Vec<i64> = got
        .iter()
        .map(|r| r.json()["i"].as_i64().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, [0, 1, 2]);
    let path = format!("/hooks/{}/recent-logs", hook["id"].as_str().unwrap());
    let logs = app
        .poll_json(&path, Duration::from_secs(5), |v| {
            v.as_array().unwrap().len() == 3
        })
        .await;
    assert!(
        logs.as_array()
            .unwrap()
            .iter()
            .all(|l| l["payload"]["result"] == "Success"),
        "{logs}"
    );
    app.stop().await;
}
