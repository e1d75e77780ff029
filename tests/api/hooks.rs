use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn create_get_update_rotate_delete() {
    let app = TestApp::spawn().await;
    let res = app
        .api(Method::POST, "/hooks")
        .json(&json!({
            "name": "crm sync",
            "events": ["User.Created", "PostSignIn", "User.Created"],
            "config": {"url": "https://example.com/hook", "headers": {"x-tenant": "acme"}, "retries": 3}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let hook: Value = res.json().await.unwrap();
    let id = hook["id"].as_str().unwrap().to_owned();
    assert!(!id.is_empty() && id.len() <= 21);
    assert_eq!(hook["tenantId"], "default");
    assert_eq!(hook["name"], "crm sync");
    assert_eq!(hook["event"], Value::Null);
    assert_eq!(
        hook["events"],
        json!(["User.Created", "PostSignIn"]),
        "events are deduplicated"
    );
    assert_eq!(
        hook["config"],
        json!({"url": "https://example.com/hook", "headers": {"x-tenant": "acme"}, "retries": 3})
    );
    assert_eq!(hook["enabled"], true);
    let key = hook["signingKey"].as_str().unwrap().to_owned();
    assert_eq!(key.len(), 32);
    assert!(hook["createdAt"].as_i64().unwrap() > 1_600_000_000_000);
    assert!(hook["standardWebhooksSecret"]
        .as_str()
        .unwrap()
        .starts_with("whsec_"));
    assert!(hook.get("executionStats").is_none());

    let got = app.get_json(&format!("/hooks/{id}")).await;
    assert_eq!(got, hook);
    let with_stats = app
        .get_json(&format!("/hooks/{id}?includeExecutionStats=true"))
        .await;
    assert_eq!(
        with_stats["executionStats"],
        json!({"requestCount": 0, "successCount": 0})
    );

    // Partial update: only the given fields change; config is replaced, not merged.
    let res = app
        .api(Method::PATCH, &format!("/hooks/{id}"))
        .json(&json!({"name": "renamed", "config": {"url": "https://example.org/other"}, "enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let updated: Value = res.json().await.unwrap();
    assert_eq!(updated["name"], "renamed");
    assert_eq!(
        updated["config"],
        json!({"url": "https://example.org/other"})
    );
    assert_eq!(updated["enabled"], false);
    assert_eq!(updated["events"], hook["events"]);
    assert_eq!(updated["signingKey"], key.as_str());
    assert_eq!(app.get_json(&format!("/hooks/{id}")).await, updated);

    // The legacy single event can be set and cleared.
    let res = app
        .api(Method::PATCH, &format!("/hooks/{id}"))
        .json(&json!({"event": "PostRegister"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["event"], "PostRegister");
    let res = app
        .api(Method::PATCH, &format!("/hooks/{id}"))
        .json(&json!({"event": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["event"], Value::Null);

    let res = app
        .api(Method::PATCH, &format!("/hooks/{id}/signing-key"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let rotated: Value = res.json().await.unwrap();
    let new_key = rotated["signingKey"].as_str().unwrap();
    assert_eq!(new_key.len(), 32);
    assert_ne!(new_key, key);
    assert_eq!(
        app.get_json(&format!("/hooks/{id}")).await["signingKey"],
        new_key
    );

    let res = app
        .api(Method::DELETE, &format!("/hooks/{id}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // Each route answers an unknown hook with Logto's own code for it.
    for (method, path, code) in [
        (
            Method::GET,
            format!("/hooks/{id}"),
            "entity.not_exists_with_id",
        ),
        (Method::PATCH, format!("/hooks/{id}"), "entity.not_exists"),
        (Method::DELETE, format!("/hooks/{id}"), "entity.not_found"),
        (
            Method::PATCH,
            format!("/hooks/{id}/signing-key"),
            "entity.not_exists",
        ),
    ] {
        let res = app
            .api(method.clone(), &path)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 404, "{method} {path}");
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["code"], code, "{method} {path}");
    }
    // Recent logs of an unknown hook: 200 `[]`, as Logto (which does not look the hook up).
    let res = app
        .api(Method::GET, &format!("/hooks/{id}/recent-logs"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!([]));
    app.stop().await;
}

#[tokio::test]
async fn legacy_event_field_creates_a_hook() {
    let app = TestApp::spawn().await;
    let res = app
        .api(Method::POST, "/hooks")
        .json(&json!({"event": "PostSignIn", "config": {"url": "https://example.com/h"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let hook: Value = res.json().await.unwrap();
    assert_eq!(hook["event"], "PostSignIn");
    assert_eq!(hook["events"], json!([]));
    assert_eq!(hook["name"], "");
    app.stop().await;
}

#[tokio::test]
async fn list_paginates_with_total_number_and_link() {
    let app = TestApp::spawn().await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(
            app.create_hook(&["PostSignIn"], "https://example.com/h")
                .await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    // Without page parameters: everything, newest first, and no pagination headers.
    ids.reverse();
    let res = app.api(Method::GET, "/hooks").send().await.unwrap();
    assert!(res.headers().get("total-number").is_none());
    assert!(res.headers().get("link").is_none());
    let all: Vec<Value> = res.json().await.unwrap();
    assert_eq!(
        all.iter()
            .map(|h| h["id"].as_str().unwrap())
            .collect::<Vec<_>>(),
        ids
    );

    let res = app
        .api(
            Method::GET,
            "/hooks?page=2&page_size=2&includeExecutionStats=true",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["total-number"], "5");
    // One `Link` line per relation, absolute, the other parameters kept, `page` in place:
    // first, prev, last, next (Logto's `buildLink`).
    let origin = app.base.clone();
    let links: Vec<String> = res
        .headers()
        .get_all("link")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let want = |page: u32, rel: &str| {
        format!("<{origin}/api/hooks?page={page}&page_size=2&includeExecutionStats=true>; rel=\"{rel}\"")
    };
    assert_eq!(
        links,
        [
            want(1, "first"),
            want(1, "prev"),
            want(3, "last"),
            want(3, "next")
        ]
    );
    let page: Vec<Value> = res.json().await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["id"], ids[2].as_str());
    assert_eq!(page[1]["id"], ids[3].as_str());
    assert_eq!(
        page[0]["executionStats"],
        json!({"requestCount": 0, "successCount": 0})
    );

    let res = app
        .api(Method::GET, "/hooks?page_size=20")
        .send()
        .await
        .unwrap();
    let page: Vec<Value> = res.json().await.unwrap();
    assert_eq!(page.len(), 5);

    for bad in ["page=0", "page_size=101", "page_size=abc", "page=-1"] {
        let res = app
            .api(Method::GET, &format!("/hooks?{bad}"))
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "guard.invalid_pagination").await;
    }
    // `includeExecutionStats` as Logto's `yes()` reads it on the list: anything else is off.
    for (value, on) in [
        ("YES", true),
        ("yep", true),
        ("1", true),
        ("maybe", false),
        ("0", false),
    ] {
        let list = app
            .get_json(&format!("/hooks?includeExecutionStats={value}"))
            .await;
        assert_eq!(list[0].get("executionStats").is_some(), on, "{value}");
    }
    // On one hook, any non-empty value turns it on.
    let one = app
        .get_json(&format!("/hooks/{}?includeExecutionStats=no", ids[0]))
        .await;
    assert!(one.get("executionStats").is_some());
    app.stop().await;
}

#[tokio::test]
async fn bad_hook_bodies_get_400_with_a_code() {
    let app = TestApp::spawn_with(|a| {
        a.allow_private_targets = false;
        a.max_body_bytes = 4096;
    })
    .await;
    let url = "https://example.com/h";
    let cases: Vec<(Value, &str)> = vec![
        (
            json!({"name": "x", "config": {"url": url}}),
            "hook.missing_events",
        ),
        // Logto: an empty `events` fails the guard; `hook.missing_events` is for neither field.
        (
            json!({"events": [], "config": {"url": url}}),
            "guard.invalid_input",
        ),
        (json!({"config": {"url": url}}), "hook.missing_events"),
        (
            json!({"events": ["User.Exploded"], "config": {"url": url}}),
            "guard.invalid_input",
        ),
        (
            json!({"event": "NotAnEvent", "config": {"url": url}}),
            "guard.invalid_input",
        ),
        (
            json!({"events": "PostSignIn", "config": {"url": url}}),
            "guard.invalid_input",
        ),
        (json!({"events": ["PostSignIn"]}), "guard.invalid_input"),
        (
            json!({"events": ["PostSignIn"], "config": {}}),
            "guard.invalid_input",
        ),
        (
            json!({"events": ["PostSignIn"], "config": {"url": 5}}),
            "guard.invalid_input",
        ),
        (
            json!({"events": ["PostSignIn"], "config": {"url": url, "headers": {"x": 1}}}),
            "guard.invalid_input",
        ),
        (
            json!({"events": ["PostSignIn"], "config": {"url": url, "headers": {"bad header": "1"}}}),
            "guard.invalid_input",
        ),
        (
            json!({"events": ["PostSignIn"], "config": {"url": url, "retries": 9}}),
            "guard.invalid_input",
        ),
        (
            json!({"events": ["PostSignIn"], "config": {"url": url}, "enabled": "yes"}),
            "guard.invalid_input",
        ),
        (
            json!({"name": "", "events": ["PostSignIn"], "config": {"url": url}}),
            "guard.invalid_input",
        ),
        (
            json!({"name": "n".repeat(257), "events": ["PostSignIn"], "config": {"url": url}}),
            "guard.invalid_input",
        ),
        (
            json!({"events": ["PostSignIn"], "config": {"url": "not a url"}}),
            "hook.invalid_url",
        ),
        (
            json!({"events": ["PostSignIn"], "config": {"url": "ftp://example.com/x"}}),
            "hook.invalid_url",
        ),
        (
            json!({"events": ["PostSignIn"], "config": {"url": "javascript:alert(1)"}}),
            "hook.invalid_url",
        ),
        (
            json!({"events": ["PostSignIn"], "config": {"url": "https://user:pw@example.com/"}}),
            "hook.invalid_url",
        ),
        (json!(["not", "an", "object"]), "guard.invalid_input"),
    ];
    for (body, code) in cases {
        let res = app
            .api(Method::POST, "/hooks")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{body}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["code"], code, "{body}: {err}");
        assert!(!err["message"].as_str().unwrap().is_empty());
        // Input-guard errors say what failed in `details`, as Logto's do.
        if code == "guard.invalid_input" {
            assert!(!err["details"].as_str().unwrap().is_empty(), "{err}");
        }
    }
    // Malformed JSON.
    let res = app
        .api(Method::POST, "/hooks")
        .body("{\"events\": [")
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "request.malformed_json").await;
    // Oversized body: 413 with a JSON error.
    let big = json!({"name": "x".repeat(5000), "events": ["PostSignIn"], "config": {"url": url}});
    let res = app
        .api(Method::POST, "/hooks")
        .json(&big)
        .send()
        .await
        .unwrap();
    expect_error(res, 413, "request.body_too_large").await;
    // The same rules apply to updates.
    let hook = app.create_hook(&["PostSignIn"], url).await;
    let id = hook["id"].as_str().unwrap();
    for (body, code) in [
        (json!({"events": []}), "guard.invalid_input"),
        (json!({"events": ["Nope"]}), "guard.invalid_input"),
        (json!({"config": {"url": "ftp://x"}}), "hook.invalid_url"),
        (
            json!({"config": {"url": "http://127.0.0.1/"}}),
            "hook.private_target_refused",
        ),
    ] {
        let res = app
            .api(Method::PATCH, &format!("/hooks/{id}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        expect_error(res, 400, code).await;
    }
    assert_eq!(
        app.get_json(&format!("/hooks/{id}")).await,
        hook,
        "refused updates change nothing"
    );
    app.stop().await;
}

#[tokio::test]
async fn hook_events_lists_the_catalog_with_kinds() {
    let app = TestApp::spawn().await;
    let events = app.get_json("/hook-events").await;
    let events = events.as_array().unwrap();
    assert_eq!(events.len(), 34);
    assert_eq!(
        events[0],
        json!({"name": "PostRegister", "kind": "interaction"})
    );
    assert!(events.contains(&json!({"name": "Organization.Membership.Updated", "kind": "data"})));
    assert!(events.contains(&json!({"name": "Identifier.Lockout", "kind": "exception"})));
    assert!(events.contains(&json!({"name": "PreSignIn", "kind": "blocking"})));
    assert!(events.contains(&json!({"name": "Delivery.Exhausted", "kind": "operational"})));
    app.stop().await;
}

#[tokio::test]
async fn deleting_a_hook_drops_its_queued_deliveries() {
    let app = TestApp::spawn_with(|a| a.retry_schedule = "1s,1s".parse().unwrap()).await;
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::status(500));
    let hook = app.create_hook(&["PostSignIn"], &receiver.url()).await;
    app.publish(json!({"event": "PostSignIn"})).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let res = app
        .api(
            Method::DELETE,
            &format!("/hooks/{}", hook["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    receiver
        .assert_stays_at(1, Duration::from_millis(1500))
        .await;
    app.stop().await;
}

#[tokio::test]
async fn a_hook_created_disabled_gets_nothing_until_enabled() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let res = app
        .api(Method::POST, "/hooks")
        .json(&json!({"events": ["User.Created"], "config": {"url": receiver.url()}, "enabled": false}))
        .send()
        .await
        .unwrap();
    let hook: Value = res.json().await.unwrap();
    assert_eq!(hook["enabled"], false);
    assert_eq!(
        app.publish(json!({"event": "User.Created"})).await["deliveries"],
        0
    );
    app.api(
        Method::PATCH,
        &format!("/hooks/{}", hook["id"].as_str().unwrap()),
    )
    .json(&json!({"enabled": true}))
    .send()
    .await
    .unwrap();
    assert_eq!(
        app.publish(json!({"event": "User.Created", "data": {"n": 2}}))
            .await["deliveries"],
        1
    );
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["data"]["n"], 2);
    receiver
        .assert_stays_at(1, Duration::from_millis(300))
        .await;
    app.stop().await;
}

#[tokio::test]
async fn deliveries_queued_before_a_hook_is_disabled_wait_until_it_is_enabled() {
    let app = TestApp::spawn_with(|a| a.retry_schedule = "1s".parse().unwrap()).await;
    let receiver = Receiver::start().await;
    // The first attempt fails, so the delivery is queued for a retry 1 s later.
    receiver.script([Reply::status(500)]);
    let hook = app.create_hook(&["PostSignIn"], &receiver.url()).await;
    let path = format!("/hooks/{}", hook["id"].as_str().unwrap());
    app.publish(json!({"event": "PostSignIn"})).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    app.send_json(Method::PATCH, &path, json!({"enabled": false}))
        .await;
    // The retry comes due while the hook is disabled: nothing is sent.
    receiver
        .assert_stays_at(1, Duration::from_millis(2_000))
        .await;
    app.send_json(Method::PATCH, &path, json!({"enabled": true}))
        .await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(
        got[1].header("webhook-id"),
        got[0].header("webhook-id"),
        "the same delivery, retried"
    );
    app.stop().await;
}
