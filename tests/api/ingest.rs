use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn bad_events_are_refused_and_store_nothing() {
    let app = TestApp::spawn_with(|a| a.max_body_bytes = 2048).await;
    let receiver = Receiver::start().await;
    app.create_hook(&["PostSignIn"], &receiver.url()).await;
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            app.api(Method::POST, "/events")
                .json(&json!({"event": "Post.Nothing"})),
            400,
            "event.unknown",
        ),
        (
            app.api(Method::POST, "/events").json(&json!({"data": {}})),
            400,
            "guard.invalid_input",
        ),
        (
            app.api(Method::POST, "/events").json(&json!({"event": 7})),
            400,
            "guard.invalid_input",
        ),
        (
            app.api(Method::POST, "/events")
                .json(&json!(["PostSignIn"])),
            400,
            "guard.invalid_input",
        ),
        (
            app.api(Method::POST, "/events")
                .body("{\"event\": \"PostSignIn\""),
            400,
            "request.malformed_json",
        ),
        (
            app.api(Method::POST, "/events").body(""),
            400,
            "guard.invalid_input",
        ),
        (
            app.api(Method::POST, "/events")
                .json(&json!({"event": "PostSignIn", "data": "x".repeat(4096)})),
            413,
            "request.body_too_large",
        ),
    ];
    for (req, status, code) in cases {
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), status);
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["code"], code, "{err}");
        assert!(err["message"].as_str().is_some());
    }
    receiver
        .assert_stays_at(0, Duration::from_millis(300))
        .await;
    app.stop().await;
}

#[tokio::test]
async fn a_publisher_supplied_created_at_is_kept_and_hook_id_cannot_be_spoofed() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let hook = app.create_hook(&["User.Created"], &receiver.url()).await;
    app.publish(json!({"event": "User.Created", "hookId": "spoofed", "createdAt": "2020-01-01T00:00:00.000Z", "data": {"id": "u"}}))
        .await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    let p = got[0].json();
    assert_eq!(p["hookId"], hook["id"]);
    assert_eq!(p["createdAt"], "2020-01-01T00:00:00.000Z");
    assert_eq!(
        p.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["event", "createdAt", "data", "hookId"]
    );
    app.stop().await;
}
