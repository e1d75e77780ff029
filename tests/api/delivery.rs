use crate::helpers::*;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;

/// Logto's signature computed here, from the HMAC primitives, not with hookline's code.
fn expected_logto_signature(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn a_published_event_arrives_signed_both_ways() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let res = app
        .api(Method::POST, "/hooks")
        .json(&json!({
            "name": "signed",
            "events": ["PostSignIn"],
            "config": {"url": receiver.url(), "headers": {"x-tenant": "acme", "user-agent": "custom-agent"}}
        }))
        .send()
        .await
        .unwrap();
    let hook: Value = res.json().await.unwrap();
    let hook_id = hook["id"].as_str().unwrap();
    let key = hook["signingKey"].as_str().unwrap();

    let accepted = app
        .publish(json!({"event": "PostSignIn", "userId": "u1", "userIp": "203.0.113.9", "data": {"n": 1}}))
        .await;
    assert_eq!(accepted["deliveries"], 1);
    assert_eq!(accepted["id"].as_str().unwrap().len(), 21);

    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    let req = &got[0];
    // The payload: the published object plus createdAt (second) and hookId (last).
    let text = std::str::from_utf8(&req.body).unwrap();
    let payload: Value = req.json();
    let keys: Vec<&String> = payload.as_object().unwrap().keys().collect();
    assert_eq!(
        keys,
        ["event", "createdAt", "userId", "userIp", "data", "hookId"]
    );
    assert_eq!(payload["event"], "PostSignIn");
    assert_eq!(payload["hookId"], hook_id);
    assert_eq!(payload["data"], json!({"n": 1}));
    let created = payload["createdAt"].as_str().unwrap();
    assert!(
        time::OffsetDateTime::parse(created, &time::format_description::well_known::Rfc3339)
            .is_ok(),
        "{created}"
    );
    assert!(created.ends_with('Z') && created.len() == 24, "{created}");

    // Headers: JSON, the custom headers (user-agent may be overridden), and signatures that
    // the hook's own headers cannot replace.
    assert_eq!(req.header("content-type"), "application/json");
    assert_eq!(req.header("x-tenant"), "acme");
    assert_eq!(req.header("user-agent"), "custom-agent");
    assert_eq!(
        req.header("logto-signature-sha-256"),
        expected_logto_signature(key, text.as_bytes())
    );

    // Standard Webhooks, checked with the reference library and the whsec_ secret the API shows.
    let wh =
        standardwebhooks::Webhook::new(hook["standardWebhooksSecret"].as_str().unwrap()).unwrap();
    let mut headers = http::HeaderMap::new();
    for name in ["webhook-id", "webhook-timestamp", "webhook-signature"] {
        headers.insert(name, req.header(name).parse().unwrap());
    }
    wh.verify(&req.body, &headers)
        .expect("the Standard Webhooks signature verifies");
    let mut tampered = req.body.to_vec();
    tampered[2] ^= 1;
    assert!(
        wh.verify(&tampered, &headers).is_err(),
        "a changed body fails verification"
    );
    let ts: i64 = req.header("webhook-timestamp").parse().unwrap();
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    assert!((now - ts).abs() < 60);
    app.stop().await;
}

#[tokio::test]
async fn only_enabled_subscribed_hooks_get_the_event() {
    let app = TestApp::spawn().await;
    let (a, b, c, d) = (
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
        Receiver::start().await,
    );
    app.create_hook(&["User.Created", "User.Deleted"], &a.url())
        .await;
    app.create_hook(&["PostSignIn"], &b.url()).await;
    let disabled = app.create_hook(&["User.Created"], &c.url()).await;
    app.api(
        Method::PATCH,
        &format!("/hooks/{}", disabled["id"].as_str().unwrap()),
    )
    .json(&json!({"enabled": false}))
    .send()
    .await
    .unwrap();
    // A hook subscribed through Logto's legacy `event` field.
    app.api(Method::POST, "/hooks")
        .json(&json!({"event": "User.Created", "config": {"url": d.url()}}))
        .send()
        .await
        .unwrap();
    let accepted = app
        .publish(json!({"event": "User.Created", "data": {"id": "u1"}}))
        .await;
    assert_eq!(accepted["deliveries"], 2);
    assert_eq!(
        a.wait_for(1, Duration::from_secs(10)).await[0].json()["event"],
        "User.Created"
    );
    assert_eq!(
        d.wait_for(1, Duration::from_secs(10)).await[0].json()["event"],
        "User.Created"
    );
    let accepted = app
        .publish(json!({"event": "Role.Created", "data": {}}))
        .await;
    assert_eq!(accepted["deliveries"], 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(a.count(), 1);
    assert_eq!(b.count(), 0);
    assert_eq!(c.count(), 0);
    app.stop().await;
}

#[tokio::test]
async fn a_slow_endpoint_does_not_hold_up_a_healthy_one() {
    let app = TestApp::spawn_with(|a| {
        a.max_in_flight = 8;
        a.max_in_flight_per_hook = 2;
        a.request_timeout = Duration::from_secs(20);
    })
    .await;
    let stuck = Receiver::start().await;
    stuck.close_gate(); // answers nothing until the test opens it
    let healthy = Receiver::start().await;
    app.create_hook(&["User.Created"], &stuck.url()).await;
    app.create_hook(&["User.Created"], &healthy.url()).await;
    for i in 0..30 {
        app.publish(json!({"event": "User.Created", "data": {"i": i}}))
            .await;
    }
    // Every delivery to the healthy endpoint arrives while the stuck one holds its requests.
    healthy.wait_for(30, Duration::from_secs(15)).await;
    assert_eq!(
        stuck.count(),
        2,
        "the stuck endpoint holds exactly its per-hook limit"
    );
    stuck.open_gate();
    let got = stuck.wait_for(30, Duration::from_secs(15)).await;
    let mut seen: Vec<i64> = got
        .iter()
        .map(|r| r.json()["data"]["i"].as_i64().unwrap())
        .collect();
    seen.sort();
    assert_eq!(seen, (0..30).collect::<Vec<_>>());
    app.stop().await;
}

#[tokio::test]
async fn test_route_sends_a_signed_sample_and_reports_failures() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let hook = app
        .create_hook(&["PostSignIn"], "https://example.com/unused")
        .await;
    let id = hook["id"].as_str().unwrap();
    let key = hook["signingKey"].as_str().unwrap();

    let res = app
        .api(Method::POST, &format!("/hooks/{id}/test"))
        .json(&json!({"events": ["PostSignIn", "Role.Created"], "config": {"url": receiver.url()}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let got = receiver.wait_for(2, Duration::from_secs(5)).await;
    let mut by_event = std::collections::HashMap::new();
    for r in &got {
        assert_eq!(
            r.header("logto-signature-sha-256"),
            expected_logto_signature(key, &r.body)
        );
        by_event.insert(r.json()["event"].as_str().unwrap().to_owned(), r.json());
    }
    // Logto's test payloads: `hookId` second; the interaction kind without
    // `interactionEvent`, with Logto's fake values; the data kind without `ip`/`matchedRoute`.
    let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
    let sign_in = &by_event["PostSignIn"];
    assert_eq!(
        keys(sign_in),
        [
            "event",
            "hookId",
            "createdAt",
            "userAgent",
            "sessionId",
            "userIp",
            "userId",
            "user",
            "application"
        ]
    );
    assert_eq!(sign_in["sessionId"], "fake-session-id");
    assert_eq!(sign_in["userIp"], "fake-user-ip");
    assert_eq!(sign_in["hookId"], id);
    assert_eq!(
        sign_in["user"]["identities"],
        json!({"google": {"userId": "fake-google-user-id"}})
    );
    assert_eq!(sign_in["application"]["id"], "fake-spa-application-id");
    assert_eq!(sign_in["application"]["type"], "SPA");
    let role = &by_event["Role.Created"];
    assert_eq!(
        keys(role),
        [
            "event",
            "hookId",
            "createdAt",
            "userAgent",
            "path",
            "method",
            "status",
            "params",
            "data"
        ]
    );
    assert_eq!(role["path"], "/fake-path/:id");
    assert_eq!(role["method"], "POST");
    assert_eq!(role["status"], 200);
    assert_eq!(role["params"], json!({"id": "fake-id"}));
    assert_eq!(role["data"], json!({"result": "success"}));

    // The endpoint answers with an error: 422 with its status and body.
    receiver.script([Reply::status(500).body("database down")]);
    let res = app
        .api(Method::POST, &format!("/hooks/{id}/test"))
        .json(&json!({"events": ["PostSignIn"], "config": {"url": receiver.url()}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["code"], "hook.endpoint_responded_with_error");
    assert_eq!(
        err["data"],
        json!({"responseStatus": 500, "responseBody": "database down"})
    );

    // Nothing listens: 422 send_test_payload_failed.
    let res = app
        .api(Method::POST, &format!("/hooks/{id}/test"))
        .json(&json!({"events": ["PostSignIn"], "config": {"url": dead_url().await}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["code"], "hook.send_test_payload_failed");

    // Bad bodies and unknown hooks.
    for (body, status, code) in [
        // The test route's body guard requires a non-empty `events` (Logto's zod guard).
        (
            json!({"config": {"url": receiver.url()}}),
            400,
            "guard.invalid_input",
        ),
        (
            json!({"events": [], "config": {"url": receiver.url()}}),
            400,
            "guard.invalid_input",
        ),
        (
            json!({"events": ["PostSignIn"]}),
            400,
            "guard.invalid_input",
        ),
        (
            json!({"events": ["Nope"], "config": {"url": receiver.url()}}),
            400,
            "guard.invalid_input",
        ),
    ] {
        let res = app
            .api(Method::POST, &format!("/hooks/{id}/test"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), status, "{body}");
        assert_eq!(res.json::<Value>().await.unwrap()["code"], code);
    }
    let res = app
        .api(Method::POST, "/hooks/nope/test")
        .json(&json!({"events": ["PostSignIn"], "config": {"url": receiver.url()}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    app.stop().await;
}

#[tokio::test]
async fn recent_logs_show_every_attempt_in_logto_shape() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.script([Reply::status(500).body("{\"error\":\"try later\"}")]);
    receiver.set_default(Reply::status(200).body("thanks"));
    let hook = app
        .create_hook(&["PostSignIn", "User.Created"], &receiver.url())
        .await;
    let id = hook["id"].as_str().unwrap();
    app.publish(json!({"event": "PostSignIn", "userId": "u1"}))
        .await;
    receiver.wait_for(2, Duration::from_secs(10)).await; // one failure, one retry
    app.publish(json!({"event": "User.Created", "data": {"id": "u2"}}))
        .await;
    receiver.wait_for(3, Duration::from_secs(10)).await;
    let path = format!("/hooks/{id}/recent-logs");
    let logs = app
        .poll_json(&path, Duration::from_secs(10), |v| {
            v.as_array().unwrap().len() == 3
        })
        .await;
    let logs = logs.as_array().unwrap();
    // Newest first.
    assert_eq!(logs[0]["key"], "TriggerHook.User.Created");
    let ok = &logs[1];
    let failed = &logs[2];
    assert_eq!(ok["key"], "TriggerHook.PostSignIn");
    assert_eq!(ok["payload"]["key"], "TriggerHook.PostSignIn");
    assert_eq!(ok["payload"]["result"], "Success");
    assert_eq!(ok["payload"]["hookId"], id);
    assert_eq!(ok["payload"]["hookRequest"]["body"]["userId"], "u1");
    assert_eq!(ok["payload"]["hookRequest"]["body"]["hookId"], id);
    assert_eq!(
        ok["payload"]["response"],
        json!({"statusCode": 200, "body": "thanks"})
    );
    assert_eq!(ok["payload"]["attempt"], 2);
    assert_eq!(failed["payload"]["result"], "Error");
    assert_eq!(
        failed["payload"]["response"],
        json!({"statusCode": 500, "body": {"error": "try later"}})
    );
    assert_eq!(failed["payload"]["attempt"], 1);
    assert_eq!(failed["payload"]["deliveryId"], ok["payload"]["deliveryId"]);
    assert!(failed["createdAt"].as_i64().unwrap() <= ok["createdAt"].as_i64().unwrap());

    // Filters: logKey, time window, pagination.
    let only = app
        .get_json(&format!("{path}?logKey=TriggerHook.User.Created"))
        .await;
    assert_eq!(only.as_array().unwrap().len(), 1);
    assert_eq!(
        app.get_json(&format!("{path}?logKey=Other.Key")).await,
        json!([])
    );
    let future = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 + 60_000;
    assert_eq!(
        app.get_json(&format!("{path}?start_time={future}")).await,
        json!([])
    );
    assert_eq!(app.get_json(&format!("{path}?end_time=1")).await, json!([]));
    let res = app
        .api(Method::GET, &format!("{path}?page=2&page_size=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["total-number"], "3");
    assert_eq!(
        res.json::<Value>().await.unwrap().as_array().unwrap().len(),
        1
    );
    let res = app
        .api(Method::GET, &format!("{path}?start_time=abc"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // executionStats counts these attempts.
    let h = app
        .get_json(&format!("/hooks/{id}?includeExecutionStats=true"))
        .await;
    assert_eq!(
        h["executionStats"],
        json!({"requestCount": 3, "successCount": 2})
    );
    app.stop().await;
}

#[tokio::test]
async fn large_response_bodies_are_logged_up_to_20kb() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::status(200).body(&"x".repeat(50_000)));
    let hook = app.create_hook(&["PostSignIn"], &receiver.url()).await;
    app.publish(json!({"event": "PostSignIn"})).await;
    let path = format!("/hooks/{}/recent-logs", hook["id"].as_str().unwrap());
    let logs = app
        .poll_json(&path, Duration::from_secs(10), |v| {
            !v.as_array().unwrap().is_empty()
        })
        .await;
    assert_eq!(
        logs[0]["payload"]["response"]["body"]
            .as_str()
            .unwrap()
            .len(),
        20 * 1024
    );
    assert_eq!(logs[0]["payload"]["result"], "Success");
    app.stop().await;
}

#[tokio::test]
async fn a_hook_sent_one_request_at_a_time_gets_events_in_publish_order() {
    // One request at a time and a slow receiver: most events find the hook busy and go
    // through the queue, some are handed over in memory; none may overtake another.
    let app = TestApp::spawn_with(|a| a.max_in_flight_per_hook = 1).await;
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::status(200).delay(Duration::from_millis(5)));
    app.create_hook(&["User.Created"], &receiver.url()).await;
    for i in 0..40 {
        app.publish(json!({"event": "User.Created", "data": {"i": i}}))
            .await;
    }
    let got = receiver.wait_for(40, Duration::from_secs(20)).await;
    let order: Vec<i64> = got
        .iter()
        .map(|r| r.json()["data"]["i"].as_i64().unwrap())
        .collect();
    assert_eq!(order, (0..40).collect::<Vec<i64>>());
}

/// An `https://` target is spoken to in TLS: the first bytes on the wire are a TLS handshake
/// record whose ClientHello names the host (SNI), not a plaintext request. The listener here
/// has no certificate, so the attempt then fails, and that failure is logged like any other.
#[tokio::test]
async fn https_targets_are_sent_over_tls() {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = TestApp::spawn().await;
    // A name, not an IP address: SNI carries only names.
    let hook = app
        .create_hook(&["PostSignIn"], &format!("https://localhost:{port}/hook"))
        .await;
    app.publish(json!({"event": "PostSignIn"})).await;

    let (mut conn, _) = tokio::time::timeout(Duration::from_secs(10), listener.accept())
        .await
        .expect("hookline connects")
        .unwrap();
    let mut hello = Vec::new();
    let mut buf = [0u8; 2048];
    while !hello.windows(9).any(|w| w == b"localhost") {
        let n = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut buf))
            .await
            .expect("the client speaks first")
            .unwrap();
        assert!(n > 0, "closed after {hello:?}");
        hello.extend_from_slice(&buf[..n]);
        assert!(hello.len() < 16 * 1024, "no server name in {hello:?}");
    }
    assert_eq!(hello[0], 0x16, "a TLS handshake record");
    assert_eq!(hello[1], 0x03, "TLS version major");
    assert_eq!(hello[5], 0x01, "a ClientHello");
    assert!(!hello.windows(4).any(|w| w == b"POST"), "no plaintext");
    drop(conn);

    let path = format!("/hooks/{}/recent-logs", hook["id"].as_str().unwrap());
    let logs = app
        .poll_json(&path, Duration::from_secs(10), |v| {
            v.as_array().is_some_and(|a| !a.is_empty())
        })
        .await;
    assert_eq!(logs[0]["payload"]["result"], "Error");
    assert!(logs[0]["payload"]["error"].as_str().is_some());
    app.stop().await;
}
