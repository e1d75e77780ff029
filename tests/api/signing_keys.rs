//! Signing keys (issue 15): rotation with a grace period, and sealing at rest.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

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
