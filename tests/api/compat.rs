//! Hook objects validated by Logto's own zod guards (`@logto/schemas`) and signatures by the
//! reference `standardwebhooks` npm package, both run with Node.js on what the API returned.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn hooks_pass_logtos_zod_guards_and_signatures_pass_the_reference_library() {
    let compat = compat_dir();
    assert!(
        compat.join("node_modules/@logto/schemas").exists(),
        "run `npm ci --prefix tests/compat` first (the README's test command does)"
    );
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let created = app
        .send_json(
            Method::POST,
            "/hooks",
            json!({"name": "zod", "events": ["PostSignIn", "Organization.Membership.Updated"],
                   "config": {"url": receiver.url(), "headers": {"x-a": "b"}, "retries": 2,
                              // hookline's field: Logto's guards take the hook, its logs too.
                              "transform": "const transform = ({ payload, headers }) => ({ payload, headers });"}}),
        )
        .await;
    let legacy = app
        .send_json(
            Method::POST,
            "/hooks",
            json!({"event": "PostRegister", "config": {"url": receiver.url()}}),
        )
        .await;
    app.publish(json!({"event": "PostSignIn", "userId": "u"}))
        .await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    let id = created["id"].as_str().unwrap();
    app.poll_json(
        &format!("/hooks/{id}/recent-logs"),
        Duration::from_secs(5),
        |v| !v.as_array().unwrap().is_empty(),
    )
    .await;
    let listed = app.get_json("/hooks").await;
    let with_stats = app.get_json("/hooks?includeExecutionStats=true").await;
    // Newest first: the legacy hook, then the one that got the event.
    assert_eq!(with_stats[1]["id"], created["id"]);
    assert_eq!(with_stats[1]["executionStats"]["requestCount"], 1);
    let logs = app.get_json(&format!("/hooks/{id}/recent-logs")).await;
    // Users as the Management API answers them and as interaction/User.Deleted events carry
    // them (the user-info fields), for `userInfoGuard`.
    let user = app
        .send_json(
            Method::POST,
            "/users",
            json!({"username": "zod", "primaryEmail": "zod@example.com", "password": "pw", "customData": {"a": 1}}),
        )
        .await;
    let users = app.get_json("/users").await;
    let org = app
        .send_json(Method::POST, "/organizations", json!({"name": "zod"}))
        .await;
    app.send_json(
        Method::POST,
        &format!("/organizations/{}/users", org["id"].as_str().unwrap()),
        json!({"userIds": [user["id"]]}),
    )
    .await;
    let members = app
        .get_json(&format!(
            "/organizations/{}/users",
            org["id"].as_str().unwrap()
        ))
        .await;
    let invitation = app
        .send_json(
            Method::POST,
            "/organization-invitations",
            json!({"invitee": "inv@example.com", "organizationId": org["id"],
                   "expiresAt": hookline::clock::now_ms() + 60_000}),
        )
        .await;
    let one_with_stats = app
        .get_json(&format!("/hooks/{id}?includeExecutionStats=true"))
        .await;

    receiver.script([Reply::status(500).body("nope")]);
    let err = app
        .send_json(
            Method::POST,
            &format!("/hooks/{id}/test"),
            json!({"events": ["PostSignIn"], "config": {"url": receiver.url()}}),
        )
        .await;
    let catalog: Vec<Value> = app
        .get_json("/hook-events")
        .await
        .as_array()
        .unwrap()
        .iter()
        // hookline's own blocking and operational events are not Logto's, by design.
        .filter(|e| e["kind"] != "blocking" && e["kind"] != "operational")
        .map(|e| e["name"].clone())
        .collect();

    let input = json!({
        "hooks": [created, legacy, listed[0], listed[1]],
        "hooksWithStats": [with_stats[0], with_stats[1], one_with_stats],
        "testErrorData": err["data"],
        "catalog": catalog,
        "users": [user, users[0]],
        "logs": logs,
        "organizations": [org],
        "invitations": [invitation],
        "members": members,
        "signed": [{
            "secret": created["standardWebhooksSecret"],
            "id": got[0].header("webhook-id"),
            "timestamp": got[0].header("webhook-timestamp"),
            "signature": got[0].header("webhook-signature"),
            "body": std::str::from_utf8(&got[0].body).unwrap(),
        }],
    });
    let file = app.dir.path().join("compat-input.json");
    std::fs::write(&file, input.to_string()).unwrap();
    let out = std::process::Command::new("node")
        .arg(compat.join("validate.mjs"))
        .arg(&file)
        .current_dir(&compat)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "compat check failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("compat ok: 44 checks"), "{stdout}");
    app.stop().await;
}
