//! Logto's Actions API (issue 16): configuring actions and the dry run, through HTTP, with
//! real script runs.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const SIGN_IN: &str = "/configs/actions/action.postSignIn";

const SCRIPT: &str = r#"const runAction = async ({ event, environmentVariables }) => {
  console.log("user", event.user.id);
  return { action: "updateUser", user: { customData: { tier: environmentVariables.TIER } } };
};"#;

#[tokio::test]
async fn actions_are_set_read_changed_and_deleted_as_logto_has_them() {
    let app = TestApp::spawn().await;
    let put = |body: Value| app.api(Method::PUT, SIGN_IN).json(&body).send();
    let res = put(json!({"script": SCRIPT, "environmentVariables": {"TIER": "gold"}}))
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "new");
    let action: Value = res.json().await.unwrap();
    assert_eq!(
        action,
        json!({"script": SCRIPT, "environmentVariables": {"TIER": "gold"}, "enabled": true,
            "onExecutionError": "block"})
    );
    let res = put(json!({"script": SCRIPT, "onExecutionError": "allow"}))
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "replaced");
    assert_eq!(app.get_json(SIGN_IN).await["onExecutionError"], "allow");
    assert!(app
        .get_json(SIGN_IN)
        .await
        .get("environmentVariables")
        .is_none());
    let all = app.get_json("/configs/actions").await;
    assert_eq!(all["action.postFirstFactorVerification"], Value::Null);
    assert_eq!(all["action.postSignIn"]["script"], SCRIPT);
    let res = app
        .api(Method::PATCH, SIGN_IN)
        .json(&json!({"enabled": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let patched: Value = res.json().await.unwrap();
    assert_eq!(
        (patched["enabled"].clone(), patched["script"].clone()),
        (json!(false), json!(SCRIPT))
    );
    assert_eq!(
        app.api(Method::DELETE, SIGN_IN)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    expect_error(
        app.api(Method::DELETE, SIGN_IN).send().await.unwrap(),
        404,
        "entity.not_found",
    )
    .await;
    expect_error(
        app.api(Method::GET, SIGN_IN).send().await.unwrap(),
        404,
        "entity.not_found",
    )
    .await;
    let res = app
        .api(Method::PATCH, SIGN_IN)
        .json(&json!({"enabled": true}))
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "entity.not_found").await;

    // A script that does not parse is refused with the parser's message and position.
    let res = put(json!({"script": "const runAction = async () => {\n  return {;\n};"}))
        .await
        .unwrap();
    let err = expect_error(res, 400, "action.script_invalid").await;
    assert_eq!(err["data"]["line"], 2, "{err}");
    assert!(err["message"].as_str().unwrap().contains("line 2"), "{err}");
    let res = put(json!({"script": "const notTheEntry = 1;"}))
        .await
        .unwrap();
    let err = expect_error(res, 400, "action.script_invalid").await;
    assert!(
        err["message"].as_str().unwrap().contains("runAction"),
        "{err}"
    );
    // Bad bodies and types.
    for bad in [
        json!({"script": SCRIPT, "extra": 1}),
        json!({"enabled": true}),
        json!({"script": SCRIPT, "onExecutionError": "skip"}),
    ] {
        expect_error(put(bad).await.unwrap(), 400, "guard.invalid_input").await;
    }
    let res = app
        .api(Method::PUT, "/configs/actions/action.preSignIn")
        .json(&json!({"script": SCRIPT}))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "guard.invalid_input").await;
    app.stop().await;
}

#[tokio::test]
async fn the_dry_run_runs_the_script_and_shows_its_answer_logs_and_errors() {
    let app = TestApp::spawn_with(|a| {
        a.action_timeout = Duration::from_millis(500);
        a.action_memory_bytes = 16 * 1024 * 1024;
    })
    .await;
    let test = |script: &str, env: Value| {
        app.api(Method::POST, "/configs/actions/test")
            .json(&json!({"script": script, "actionType": "action.postSignIn",
                "event": {"user": {"id": "u1"}}, "environmentVariables": env}))
            .send()
    };
    let res = test(SCRIPT, json!({"TIER": "gold"})).await.unwrap();
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    assert_eq!(
        out["result"],
        json!({"action": "updateUser", "user": {"customData": {"tier": "gold"}}})
    );
    assert_eq!(out["logs"], json!(["user u1"]));
    assert!(out["durationMs"].is_u64());
    // A throw, an endless loop and a memory bomb are the script's errors; the server goes on.
    let out: Value = test(
        "const runAction = () => { throw new Error('no such user'); };",
        json!({}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(out["error"], "Error: no such user");
    let out: Value = test("const runAction = () => { for (;;) {} };", json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        out["error"].as_str().unwrap().contains("ran longer"),
        "{out}"
    );
    let out: Value = test(
        "const runAction = () => { const a = []; for (;;) a.push('x'.repeat(1 << 20) + a.length); };",
        json!({}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert!(out["error"].as_str().unwrap().contains("memory"), "{out}");
    // fetch goes out through hookline's client: here to a local receiver (private targets
    // are allowed in this app).
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::status(200).body(r#"{"legacy": true}"#));
    let script = format!(
        "const runAction = async () => {{ const r = await fetch({:?}, {{ method: 'POST', body: 'hi' }}); return {{ status: r.status, body: await r.json() }}; }};",
        receiver.url()
    );
    let out: Value = test(&script, json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        out["result"],
        json!({"status": 200, "body": {"legacy": true}}),
        "{out}"
    );
    assert_eq!(
        receiver.wait_for(1, Duration::from_secs(5)).await[0].body,
        "hi"
    );
    let res = test("const runAction = () => {", json!({})).await.unwrap();
    expect_error(res, 400, "action.script_invalid").await;
    app.stop().await;

    // Without --allow-private-targets, fetch to a private address is refused.
    let app = TestApp::spawn_with(|a| a.allow_private_targets = false).await;
    let res = app
        .api(Method::POST, "/configs/actions/test")
        .json(&json!({"script": script, "actionType": "action.postSignIn", "event": {}}))
        .send()
        .await
        .unwrap();
    let out: Value = res.json().await.unwrap();
    assert!(out["error"].as_str().unwrap().contains("refused"), "{out}");
    assert_eq!(receiver.count(), 1, "nothing reached the receiver");
    app.stop().await;
}

/// A sign-in of `username` with `password`: its status and body.
async fn sign_in(s: &crate::interactions::Setup, username: &str, password: &str) -> (u16, Value) {
    s.interact(
        "/sign-in",
        json!({"identifier": username, "password": password}),
    )
    .await
}

#[tokio::test]
async fn post_sign_in_updates_the_user_with_the_sign_in_and_its_errors_follow_the_policy() {
    let mut s = crate::interactions::Setup::start(|a| {
        a.action_timeout = Duration::from_millis(500);
    })
    .await;
    let user = s.register("ada", "correct horse battery").await;
    let user_id = user["userId"].as_str().unwrap().to_owned();
    let put = |app: &TestApp, body: Value| app.api(Method::PUT, SIGN_IN).json(&body).send();
    let res = put(
        &s.app,
        json!({"script": SCRIPT, "environmentVariables": {"TIER": "gold"}}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    let (status, body) = sign_in(&s, "ada", "correct horse battery").await;
    assert_eq!(status, 200, "{body}");
    // The change and its User.Data.Updated commit with the sign-in; PostSignIn shows the
    // updated user.
    let got = s.expect(&["User.Data.Updated", "PostSignIn"]).await;
    assert_eq!(
        got[0]["data"]["customData"],
        json!({"tier": "gold"}),
        "{}",
        got[0]
    );
    assert_eq!(got[0]["data"]["id"], user_id.as_str());
    assert_eq!(got[0]["interactionEvent"], "SignIn");
    assert_eq!(got[1]["user"]["customData"], json!({"tier": "gold"}));
    let stored = s.app.get_json(&format!("/users/{user_id}")).await;
    assert_eq!(stored["customData"], json!({"tier": "gold"}));
    // The run is logged, its environment variables' values taken out.
    let runs = s.app.get_json(&format!("{SIGN_IN}/runs")).await;
    assert_eq!(runs.as_array().unwrap().len(), 1, "{runs}");
    assert_eq!(runs[0]["success"], true);
    assert_eq!(runs[0]["actionType"], "action.postSignIn");
    assert_eq!(
        runs[0]["result"],
        json!({"action": "updateUser", "user": {"customData": {"tier": "[redacted]"}}})
    );
    assert_eq!(runs[0]["logs"], json!([format!("user {user_id}")]));
    assert!(runs[0]["durationMs"].is_i64() && runs[0]["createdAt"].is_i64());

    // A throw, a timeout and an invalid answer refuse the sign-in (onExecutionError: block,
    // the default), and nothing commits or fires.
    for script in [
        "const runAction = async () => { throw new Error('legacy store down'); };",
        "const runAction = async () => { for (;;) {} };",
        "const runAction = async () => ({ action: 'updateUser', user: { id: 'someone-else' } });",
    ] {
        let res = put(&s.app, json!({"script": script})).await.unwrap();
        assert_eq!(res.status(), 200);
        let (status, body) = sign_in(&s, "ada", "correct horse battery").await;
        assert_eq!(status, 400, "{script}: {body}");
        assert_eq!(body["code"], "session.verification_failed", "{body}");
        s.quiet().await;
    }
    // onExecutionError: allow lets the sign-in through, unchanged.
    let res = s
        .app
        .api(Method::PATCH, SIGN_IN)
        .json(&json!({"onExecutionError": "allow"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, body) = sign_in(&s, "ada", "correct horse battery").await;
    assert_eq!(status, 200, "{body}");
    s.expect(&["PostSignIn"]).await;
    // A disabled action does not run.
    let res = s
        .app
        .api(Method::PATCH, SIGN_IN)
        .json(&json!({"enabled": false, "onExecutionError": "block"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, _) = sign_in(&s, "ada", "correct horse battery").await;
    assert_eq!(status, 200);
    s.expect(&["PostSignIn"]).await;
    s.quiet().await;
    // Every run is in the log, newest first (the disabled action did not run).
    let runs = s.app.get_json(&format!("{SIGN_IN}/runs")).await;
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 5, "{runs:?}");
    let error = |i: usize| runs[i]["error"].as_str().unwrap_or_default().to_owned();
    assert!(
        error(0).contains("may not set the user's id"),
        "{}",
        error(0)
    );
    assert!(
        error(1).contains("may not set the user's id"),
        "{}",
        error(1)
    );
    assert!(error(2).contains("ran longer"), "{}", error(2));
    assert!(error(3).contains("legacy store down"), "{}", error(3));
    assert_eq!(runs[4]["success"], true);
    let res = s
        .app
        .api(Method::GET, &format!("{SIGN_IN}/runs?page_size=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["total-number"], "5");
    assert_eq!(
        res.json::<Value>().await.unwrap().as_array().unwrap().len(),
        2
    );
}

#[tokio::test]
async fn a_post_sign_in_change_that_takes_another_users_key_is_an_invalid_answer() {
    let mut s = crate::interactions::Setup::start(|_| {}).await;
    let ada = s.register("ada", "correct horse battery").await;
    s.register("bob", "correct horse battery").await;
    let put = |app: &TestApp, body: Value| app.api(Method::PUT, SIGN_IN).json(&body).send();
    // Its own username again is no conflict.
    let own = "const runAction = async ({ event }) => ({ action: 'updateUser', user: { username: event.user.username, name: 'Ada' } });";
    assert_eq!(
        put(&s.app, json!({"script": own})).await.unwrap().status(),
        201
    );
    let (status, body) = sign_in(&s, "ada", "correct horse battery").await;
    assert_eq!(status, 200, "{body}");
    s.expect(&["User.Data.Updated", "PostSignIn"]).await;
    // Bob's: refused as an invalid answer under block (not a 422 from the commit) ...
    let takes =
        "const runAction = async () => ({ action: 'updateUser', user: { username: 'bob' } });";
    assert_eq!(
        put(&s.app, json!({"script": takes}))
            .await
            .unwrap()
            .status(),
        200
    );
    let (status, body) = sign_in(&s, "ada", "correct horse battery").await;
    assert_eq!(
        (status, body["code"].as_str()),
        (400, Some("session.verification_failed")),
        "{body}"
    );
    s.quiet().await;
    // ... and passed over under allow: the sign-in goes on, unchanged.
    assert_eq!(
        put(
            &s.app,
            json!({"script": takes, "onExecutionError": "allow"})
        )
        .await
        .unwrap()
        .status(),
        200
    );
    let (status, body) = sign_in(&s, "ada", "correct horse battery").await;
    assert_eq!(status, 200, "{body}");
    s.expect(&["PostSignIn"]).await;
    let user = s
        .app
        .get_json(&format!("/users/{}", ada["userId"].as_str().unwrap()))
        .await;
    assert_eq!(
        (&user["username"], &user["name"]),
        (&json!("ada"), &json!("Ada"))
    );
    let runs = s.app.get_json(&format!("{SIGN_IN}/runs")).await;
    for run in &runs.as_array().unwrap()[..2] {
        assert_eq!(run["success"], false);
        assert!(
            run["error"]
                .as_str()
                .unwrap()
                .contains("username is another user's"),
            "{run}"
        );
    }
    s.quiet().await;
    s.app.stop().await;
}

#[tokio::test]
async fn post_first_factor_verification_migrates_users_from_a_legacy_store_lazily() {
    let mut s = crate::interactions::Setup::start(|_| {}).await;
    // The legacy store: knows ann's password once, refuses everything else.
    let legacy = Receiver::start().await;
    legacy.script([Reply::status(200).body(r#"{"name": "Ann Legacy"}"#)]);
    legacy.set_default(Reply::status(401).body("{}"));
    let script = r#"const runAction = async ({ event, environmentVariables }) => {
  const r = await fetch(environmentVariables.LEGACY_URL, { method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ login: event.identifier.value, password: event.password }) });
  console.log("tried", event.password, "and the legacy store answered", r.status);
  if (!r.ok) return;
  const found = await r.json();
  return { action: event.user ? "updateUser" : "createUser",
    user: { name: found.name, customData: { migratedFrom: "legacy" } }, passwordVerified: true };
};"#;
    let res = s
        .app
        .api(
            Method::PUT,
            "/configs/actions/action.postFirstFactorVerification",
        )
        .json(&json!({"script": script, "environmentVariables": {"LEGACY_URL": legacy.url()}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // A PostSignIn action runs on a migrated sign-in too, on the user as migrated.
    let post = "const runAction = async ({ event }) => { if (!event.user.avatar) return { action: 'updateUser', user: { avatar: 'https://example.com/' + event.user.name.split(' ')[0] + '.png' } }; };";
    let res = s
        .app
        .api(Method::PUT, SIGN_IN)
        .json(&json!({"script": post}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // First sign-in: unknown here, known there: created, signed in, events as for any.
    let (status, body) = sign_in(&s, "ann@example.com", "legacy-pass").await;
    assert_eq!(status, 200, "{body}");
    let user_id = body["userId"].as_str().unwrap().to_owned();
    let asked = legacy.wait_for(1, Duration::from_secs(5)).await;
    assert_eq!(
        asked[0].json(),
        json!({"login": "ann@example.com", "password": "legacy-pass"})
    );
    let got = s.expect(&["User.Created", "PostSignIn"]).await;
    assert_eq!(got[0]["data"]["primaryEmail"], "ann@example.com");
    assert_eq!(got[0]["data"]["name"], "Ann Legacy");
    assert_eq!(got[0]["data"]["avatar"], "https://example.com/Ann.png");
    assert_eq!(got[1]["userId"], user_id.as_str());
    let stored = s.app.get_json(&format!("/users/{user_id}")).await;
    assert_eq!(stored["customData"], json!({"migratedFrom": "legacy"}));
    assert_eq!(stored["avatar"], "https://example.com/Ann.png");
    assert_eq!(stored["hasPassword"], true);
    // Second sign-in: local, the legacy store is not asked.
    let (status, body) = sign_in(&s, "ann@example.com", "legacy-pass").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["userId"], user_id.as_str());
    s.expect(&["PostSignIn"]).await;
    assert_eq!(legacy.count(), 1, "the next sign-in is local");
    // A wrong password here is asked of the legacy store, which refuses: still refused.
    let (status, body) = sign_in(&s, "ann@example.com", "wrong").await;
    assert_eq!(status, 422, "{body}");
    let (status, body) = sign_in(&s, "nobody@example.com", "whatever").await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(legacy.count(), 3);
    s.quiet().await;
    // The runs are logged without the passwords.
    let runs = s
        .app
        .get_json("/configs/actions/action.postFirstFactorVerification/runs")
        .await;
    let runs = runs.as_array().unwrap();
    assert_eq!(runs.len(), 3);
    assert_eq!(
        runs[2]["logs"],
        json!(["tried [redacted] and the legacy store answered 200"])
    );
    assert!(!runs.iter().any(|r| r.to_string().contains("legacy-pass")));
}

#[tokio::test]
async fn a_runaway_action_ends_at_its_limit_while_other_sign_ins_go_on() {
    // The default timeout (5 s); a small memory limit, so that the bomb ends soon.
    let mut s = crate::interactions::Setup::start(|a| {
        a.action_memory_bytes = 16 * 1024 * 1024;
    })
    .await;
    s.register("loops", "password-one").await;
    s.register("bombs", "password-two").await;
    s.register("quick", "password-three").await;
    let script = r#"const runAction = async ({ event }) => {
  if (event.user.username === "loops") for (;;) {}
  if (event.user.username === "bombs") { const a = []; for (;;) a.push("x".repeat(1 << 20) + a.length); }
};"#;
    let res = s
        .app
        .api(Method::PUT, SIGN_IN)
        .json(&json!({"script": script, "onExecutionError": "allow"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // Each sign-in notes when it answered; the quick one must not wait for the runaway ones.
    let timed = |user: &'static str, password: &'static str, delay: u64| {
        let s = &s;
        async move {
            tokio::time::sleep(Duration::from_millis(delay)).await;
            let r = sign_in(s, user, password).await;
            (r, std::time::Instant::now())
        }
    };
    let (looping, bombing, quick) = tokio::join!(
        timed("loops", "password-one", 0),
        timed("bombs", "password-two", 0),
        timed("quick", "password-three", 200),
    );
    assert_eq!(quick.0 .0, 200, "{}", quick.0 .1);
    assert_eq!(
        looping.0 .0, 200,
        "allowed past its timeout: {}",
        looping.0 .1
    );
    assert_eq!(
        bombing.0 .0, 200,
        "allowed past its memory limit: {}",
        bombing.0 .1
    );
    assert!(
        quick.1 < looping.1,
        "the quick sign-in answered after the endless loop's timeout"
    );
    let runs = s.app.get_json(&format!("{SIGN_IN}/runs")).await;
    let errors: Vec<&str> = runs
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r["error"].as_str())
        .collect();
    assert!(
        errors.iter().any(|e| e.contains("ran longer than 5s")),
        "{errors:?}"
    );
    assert!(errors.iter().any(|e| e.contains("memory")), "{errors:?}");
    s.expect(&["PostSignIn", "PostSignIn", "PostSignIn"]).await;
}

#[tokio::test]
async fn a_failing_first_factor_action_still_counts_towards_the_lockout() {
    let mut s = crate::interactions::Setup::start(|a| a.lockout_failures = 3).await;
    s.register("eve_target", "the-real-password").await;
    let res = s
        .app
        .api(Method::PUT, "/configs/actions/action.postFirstFactorVerification")
        .json(&json!({"script": "const runAction = async ({ event }) => { throw new Error('legacy store off for ' + event.password); };"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // Guesses fail through the action (400 under block, the password not in the answer) and
    // count: the third locks the identifier, and then even the right password is refused.
    for i in 0..2 {
        let (status, body) = sign_in(&s, "eve_target", &format!("guess-{i}")).await;
        assert_eq!(status, 400, "{body}");
        assert_eq!(body["code"], "session.verification_failed");
        assert!(!body.to_string().contains(&format!("guess-{i}")), "{body}");
    }
    let (status, body) = sign_in(&s, "eve_target", "guess-2").await;
    assert_eq!(
        body["code"], "session.verification_blocked_too_many_attempts",
        "{status} {body}"
    );
    let (_, body) = sign_in(&s, "eve_target", "the-real-password").await;
    assert_eq!(
        body["code"], "session.verification_blocked_too_many_attempts",
        "{body}"
    );
    s.expect(&["Identifier.Lockout", "Identifier.Lockout"])
        .await;
}
