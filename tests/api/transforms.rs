//! Code on hooks (issue 16, beyond Logto): a webhook's `config.transform`, and blocking hooks
//! answered by a `config.script`, through HTTP, with real script runs and real receivers.

use crate::helpers::*;
use crate::interactions::Setup;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;

/// Rewrites every delivery: a new shape with values that differ at every run (the time and
/// a random number), so a retry that ran it again would send other bytes.
const REWRITE: &str = r#"const transform = ({ event, payload, headers }) => {
  console.log("rewriting", event, "for", payload.hookId);
  return {
    payload: { type: event, user: payload.data.id, at: Date.now(), nonce: Math.random() },
    headers: { ...headers, "x-tenant": "t1" },
  };
};"#;

async fn hook_with(app: &TestApp, events: &[&str], config: Value) -> Value {
    let res = app
        .api(Method::POST, "/hooks")
        .json(&json!({"name": "coded", "events": events, "config": config}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "creating a hook");
    res.json().await.unwrap()
}

fn logto_signature(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn a_transform_rewrites_a_delivery_once_and_its_retries_send_the_same_bytes() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    // The first attempt fails: the retry must send what the first one sent.
    receiver.script([Reply::status(500)]);
    let hook = hook_with(
        &app,
        &["User.Created"],
        json!({"url": receiver.url(), "headers": {"x-hook": "own"}, "transform": REWRITE}),
    )
    .await;
    assert_eq!(hook["config"]["transform"], REWRITE);
    let id = hook["id"].as_str().unwrap();
    app.publish(json!({"event": "User.Created", "data": {"id": "u1"}}))
        .await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[0].body, got[1].body, "a retry sends the same bytes");
    let body = got[0].json();
    assert_eq!(
        (&body["type"], &body["user"]),
        (&json!("User.Created"), &json!("u1"))
    );
    assert!(body.get("hookId").is_none(), "the transform's body, whole");
    for r in &got {
        assert_eq!(r.header("x-tenant"), "t1");
        assert_eq!(
            r.header("x-hook"),
            "own",
            "the hook's headers, as it passed them on"
        );
        // Signed after the transform: the signature covers what was sent.
        assert_eq!(
            r.header("logto-signature-sha-256"),
            logto_signature(hook["signingKey"].as_str().unwrap(), &r.body)
        );
    }
    let delivery = app
        .poll_json(
            &format!("/deliveries?hookId={id}"),
            Duration::from_secs(5),
            |v| v[0]["status"] == "succeeded",
        )
        .await;
    let detail = app
        .get_json(&format!(
            "/deliveries/{}",
            delivery[0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(detail["requestBody"], body);
    assert_eq!(
        detail["requestHeaders"],
        json!({"x-hook": "own", "x-tenant": "t1"})
    );
    let attempts = detail["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2);
    let run = &attempts[0]["script"];
    assert_eq!(
        run["logs"],
        json!([format!("rewriting User.Created for {id}")])
    );
    assert!(run["durationMs"].is_u64());
    assert_eq!(attempts[1]["script"], Value::Null, "the transform ran once");
    // The run is in the hook's logs too.
    let logs = app.get_json(&format!("/hooks/{id}/recent-logs")).await;
    let first = logs
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["payload"]["attempt"] == 1)
        .unwrap();
    assert_eq!(first["payload"]["script"]["logs"], run["logs"]);
    assert_eq!(first["payload"]["hookRequest"]["body"], body);
    // A manual retry sends the same bytes again, and runs nothing.
    let res = app
        .api(
            Method::POST,
            &format!("/deliveries/{}/retry", delivery[0]["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let got = receiver.wait_for(3, Duration::from_secs(10)).await;
    assert_eq!(got[2].body, got[0].body);
    app.stop().await;
}

#[tokio::test]
async fn a_transform_that_answers_null_skips_and_one_that_fails_fails_its_attempts() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let script = r#"const transform = async ({ payload }) => {
  if (payload.data.skip) return null;
  if (payload.data.boom) throw new Error("no tenant for " + payload.data.id);
  if (payload.data.forgot) return;
  return { payload: { id: payload.data.id } };
};"#;
    let hook = hook_with(
        &app,
        &["User.Created"],
        json!({"url": receiver.url(), "transform": script}),
    )
    .await;
    let id = hook["id"].as_str().unwrap();
    for data in [
        json!({"id": "skipped", "skip": true}),
        json!({"id": "broken", "boom": true}),
        json!({"id": "forgotten", "forgot": true}),
        json!({"id": "sent"}),
    ] {
        app.publish(json!({"event": "User.Created", "data": data}))
            .await;
    }
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json(), json!({"id": "sent"}));
    // The failing ones use up the schedule (three attempts), each logged with its error.
    let list = app
        .poll_json(
            &format!("/deliveries?hookId={id}"),
            Duration::from_secs(10),
            |v| {
                v.as_array()
                    .is_some_and(|a| a.len() == 4 && a.iter().all(|d| d["status"] != "queued"))
            },
        )
        .await;
    receiver
        .assert_stays_at(1, Duration::from_millis(300))
        .await;
    let mut statuses: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["status"].as_str().unwrap())
        .collect();
    statuses.sort();
    assert_eq!(statuses, ["failed", "failed", "skipped", "succeeded"]);
    let skipped = app
        .get_json(&format!("/deliveries?hookId={id}&status=skipped"))
        .await;
    let detail = app
        .get_json(&format!(
            "/deliveries/{}",
            skipped[0]["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(detail["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(detail["attempts"][0]["success"], true);
    assert_eq!(detail["attempts"][0]["responseStatus"], Value::Null);
    assert_eq!(detail["attempts"][0]["script"]["skipped"], true);
    let failed = app
        .get_json(&format!("/deliveries?hookId={id}&status=failed"))
        .await;
    let mut errors = Vec::new();
    for d in failed.as_array().unwrap() {
        let detail = app
            .get_json(&format!("/deliveries/{}", d["id"].as_str().unwrap()))
            .await;
        let attempts = detail["attempts"].as_array().unwrap();
        assert_eq!(attempts.len(), 3, "{detail}");
        assert!(
            attempts.iter().all(|a| a["script"].is_object()),
            "it ran every time"
        );
        errors.push(attempts[0]["error"].as_str().unwrap().to_owned());
    }
    errors.sort();
    assert!(
        errors[0].starts_with("transform: ") && errors[0].contains("no tenant for broken"),
        "{errors:?}"
    );
    assert!(errors[1].contains("returned nothing"), "{errors:?}");
    app.stop().await;
}

#[tokio::test]
async fn scripts_on_hooks_are_checked_when_saved() {
    let app = TestApp::spawn().await;
    let post = |config: Value, events: Value| {
        app.api(Method::POST, "/hooks")
            .json(&json!({"name": "h", "events": events, "config": config}))
            .send()
    };
    let url = "https://example.com/hook";
    // Does not parse: the parser's message and where.
    let res = post(
        json!({"url": url, "transform": "const transform = ({ payload }) => {\n  return { payload: ;\n};"}),
        json!(["User.Created"]),
    )
    .await
    .unwrap();
    let err = expect_error(res, 400, "hook.script_invalid").await;
    assert_eq!(err["data"]["line"], 2, "{err}");
    assert!(err["message"]
        .as_str()
        .unwrap()
        .starts_with("config.transform does not parse"));
    // Parses, but defines no `transform` (or `decide`, for a script hook).
    let res = post(
        json!({"url": url, "transform": "const runAction = () => null;"}),
        json!(["User.Created"]),
    )
    .await
    .unwrap();
    expect_error(res, 400, "hook.script_invalid").await;
    let res = post(
        json!({"script": "const allow = () => ({allow: true});"}),
        json!(["PreSignIn"]),
    )
    .await
    .unwrap();
    expect_error(res, 400, "hook.script_invalid").await;
    // A script that ends too soon does not parse, at its end; one whose `transform` is no
    // function, or whose top level throws, cannot run.
    for (script, says) in [
        ("const decide = ({ payload }) => {", "does not parse"),
        ("const transform = 5;", "is not a function"),
        (
            "const transform = () => null;\nthrow new Error('not yet');",
            "not yet",
        ),
    ] {
        let entry_is_transform = !script.contains("decide");
        let config = if entry_is_transform {
            json!({"url": url, "transform": script})
        } else {
            json!({"script": script})
        };
        let events = if entry_is_transform {
            json!(["User.Created"])
        } else {
            json!(["PreSignIn"])
        };
        let err = expect_error(
            post(config, events).await.unwrap(),
            400,
            "hook.script_invalid",
        )
        .await;
        assert!(
            err["message"].as_str().unwrap().contains(says),
            "{script}: {err}"
        );
        if says == "does not parse" {
            assert_eq!(
                err["data"],
                json!({"line": 1, "column": 34}),
                "just past its end: {err}"
            );
        }
    }
    // A script may export its function itself.
    let res = post(
        json!({"url": url, "transform": "export const transform = ({ payload }) => ({ payload });"}),
        json!(["User.Created"]),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    // Combinations that mean nothing are refused.
    let decide = "const decide = () => ({ allow: true });";
    for (config, events) in [
        (json!({"url": url, "script": decide}), json!(["PreSignIn"])),
        (
            json!({"script": decide}),
            json!(["PreSignIn", "User.Created"]),
        ),
        (
            json!({"script": decide, "transform": REWRITE}),
            json!(["PreSignIn"]),
        ),
        (
            json!({"script": decide, "headers": {"x-a": "1"}}),
            json!(["PreSignIn"]),
        ),
        (json!({"script": ""}), json!(["PreSignIn"])),
        (json!({"url": url, "transform": 3}), json!(["User.Created"])),
        // Blocking calls are not transformed: a transform there would be ignored.
        (
            json!({"url": url, "transform": REWRITE}),
            json!(["User.Created", "PreSignIn"]),
        ),
    ] {
        let res = post(config.clone(), events).await.unwrap();
        expect_error(res, 400, "guard.invalid_input").await;
    }
    // A script hook: no URL, and it stays on blocking events.
    let res = post(
        json!({"script": decide, "timeoutMs": 500, "failurePolicy": "allow"}),
        json!(["PreSignIn"]),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    let hook: Value = res.json().await.unwrap();
    assert_eq!(
        hook["config"],
        json!({"timeoutMs": 500, "failurePolicy": "allow", "script": decide})
    );
    let path = format!("/hooks/{}", hook["id"].as_str().unwrap());
    let res = app
        .api(Method::PATCH, &path)
        .json(&json!({"events": ["PostSignIn"]}))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "guard.invalid_input").await;
    assert_eq!(app.get_json(&path).await["events"], json!(["PreSignIn"]));
    // It stays a script hook (and a hook with a URL stays one).
    let res = app
        .api(Method::PATCH, &path)
        .json(&json!({"config": {"url": url}}))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "guard.invalid_input").await;
    let plain = app.create_hook(&["PreSignIn"], url).await;
    let res = app
        .api(
            Method::PATCH,
            &format!("/hooks/{}", plain["id"].as_str().unwrap()),
        )
        .json(&json!({"config": {"script": decide}}))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "guard.invalid_input").await;
    // A null url is an absent one.
    let res = post(
        json!({"script": decide, "url": null}),
        json!(["PreRegister"]),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    let res = app
        .api(Method::POST, &format!("{path}/test"))
        .json(&json!({"events": ["PreSignIn"], "config": {"script": decide}}))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "guard.invalid_input").await;
    app.stop().await;
}

#[tokio::test]
async fn a_script_blocking_hook_decides_in_process_within_its_timeout() {
    let mut s = Setup::start(|_| {}).await;
    s.register("good_guy", "right-password").await;
    s.register("bad_guy", "right-password").await;
    let gate = hook_with(
        &s.app,
        &["PreSignIn", "PreRegister"],
        json!({"script": r#"const decide = ({ event, payload }) => {
  console.log(event, payload.user.username);
  if (event === "PreRegister") return { allow: true, customData: { source: "script" } };
  if (payload.user.username.startsWith("bad")) return { allow: false, message: "not on the list" };
  return { allow: true };
};"#}),
    )
    .await;
    let sign_in = |name: &str| json!({"identifier": name, "password": "right-password"});
    let (status, err) = s.interact("/sign-in", sign_in("bad_guy")).await;
    assert_eq!(
        (status, err["code"].as_str()),
        (403, Some("hook.interaction_denied"))
    );
    assert_eq!(err["message"], "not on the list");
    let (status, body) = s.interact("/sign-in", sign_in("good_guy")).await;
    assert_eq!(status, 200, "{body}");
    s.expect(&["PostSignIn"]).await;
    // On PreRegister it adds custom data to the new user.
    let answer = s.register("new_guy", "right-password").await;
    let user = s
        .app
        .get_json(&format!("/users/{}", answer["userId"].as_str().unwrap()))
        .await;
    assert_eq!(user["customData"], json!({"source": "script"}), "{user}");
    let logs = s
        .app
        .get_json(&format!(
            "/hooks/{}/recent-logs",
            gate["id"].as_str().unwrap()
        ))
        .await;
    let logs = logs.as_array().unwrap();
    assert_eq!(logs.len(), 3);
    let denied = logs
        .iter()
        .find(|l| l["payload"]["script"]["logs"] == json!(["PreSignIn bad_guy"]))
        .expect("the denied call, with its console output");
    assert_eq!(denied["payload"]["result"], "Success", "it answered");
    assert_eq!(
        denied["payload"]["script"]["answer"],
        json!({"allow": false, "message": "not on the list"})
    );
    assert_eq!(
        denied["payload"]["hookRequest"]["body"]["user"]["username"],
        "bad_guy"
    );

    // A script that never answers ends at the hook's timeoutMs; its failure policy decides.
    let path = format!("/hooks/{}", gate["id"].as_str().unwrap());
    let looping = "const decide = () => { for (;;) {} };";
    for (policy, status) in [("deny", 403), ("allow", 200)] {
        let res = s
            .app
            .api(Method::PATCH, &path)
            .json(
                &json!({"config": {"script": looping, "timeoutMs": 300, "failurePolicy": policy}}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let started = std::time::Instant::now();
        let (got, body) = s.interact("/sign-in", sign_in("good_guy")).await;
        assert_eq!(got, status, "{policy}: {body}");
        assert!(
            started.elapsed() < Duration::from_millis(2_500),
            "ended by the hook's timeoutMs, not the 3 s default or the 5 s of actions"
        );
        if status == 200 {
            s.expect(&["PostSignIn"]).await;
        }
    }
    // Its failed calls are not deliveries to recover: they were answered in the interaction.
    let res = s
        .app
        .api(Method::POST, &format!("{path}/recover"))
        .json(&json!({"since": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>().await.unwrap()["queued"], 0);
    let logs = s.app.get_json(&format!("{path}/recent-logs")).await;
    assert!(
        logs[0]["payload"]["error"]
            .as_str()
            .unwrap()
            .contains("ran longer than"),
        "{}",
        logs[0]
    );
    s.quiet().await;
    s.app.stop().await;
}
