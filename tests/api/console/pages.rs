//! The events, actions and identity pages.

use super::*;

#[tokio::test]
async fn published_events_are_listed_newest_first_with_where_they_went() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let hook = app.create_hook(&["User.Created"], &receiver.url()).await;
    let cookie = session_cookie(&sign_in(&app, TOKEN).await);
    let (_, empty) = page(&app, &cookie, "/console/events").await;
    assert!(empty.contains("No events yet."), "{empty}");

    let created = app
        .publish(serde_json::json!({"event": "User.Created", "data": {"id": "u-<1>"}}))
        .await;
    let created = created["id"].as_str().unwrap().to_owned();
    receiver
        .wait_for(1, std::time::Duration::from_secs(10))
        .await;
    // 51 more that no hook takes: the first page holds 50, the oldest go to the next.
    for i in 0..51 {
        app.publish(serde_json::json!({"event": "Role.Created", "data": {"id": format!("r{i}")}}))
            .await;
    }
    let (status, first) = page(&app, &cookie, "/console/events").await;
    assert_eq!(status, 200);
    assert_eq!(first.matches("href=\"/console/events/").count(), 50);
    assert!(first.contains(">Older<"), "{first}");
    assert!(!first.contains(&created), "the oldest is on page 2");
    let (_, second) = page(&app, &cookie, "/console/events?page=2").await;
    assert_eq!(second.matches("href=\"/console/events/").count(), 2);
    assert!(second.contains(&created));
    assert!(second.contains("1 hook: 1 succeeded"), "{second}");
    assert!(second.contains("no hook"), "{second}");
    assert!(second.contains(">Newer<") && !second.contains(">Older<"));
    let (_, only) = page(&app, &cookie, "/console/events?event=User.Created").await;
    assert_eq!(only.matches("href=\"/console/events/").count(), 1);
    assert!(only.contains(&created));
    let (status, _) = page(&app, &cookie, "/console/events?event=Nope").await;
    assert_eq!(status, 400);

    // One event: its payload, escaped, and its delivery with the hook's answer.
    let (status, one) = page(&app, &cookie, &format!("/console/events/{created}")).await;
    assert_eq!(status, 200);
    assert!(one.contains("u-&lt;1&gt;"), "{one}");
    assert!(one.contains("succeeded"), "{one}");
    assert!(one.contains("200 · "), "{one}");
    assert!(one.contains(hook["name"].as_str().unwrap()), "{one}");
    let (status, _) = page(&app, &cookie, "/console/events/nope").await;
    assert_eq!(status, 404);
    app.stop().await;
}

#[tokio::test]
async fn an_action_is_tested_saved_run_at_sign_in_and_deleted_from_its_page() {
    let mut s = crate::interactions::Setup::start(|_| {}).await;
    s.register("ada", "correct horse battery").await;
    let app = &s.app;
    let cookie = session_cookie(&sign_in(app, TOKEN).await);
    let (_, list) = page(app, &cookie, "/console/actions").await;
    assert!(
        list.contains("action.postSignIn") && list.contains("Not set."),
        "{list}"
    );
    let (status, starter) = page(app, &cookie, "/console/actions/action.postSignIn").await;
    assert_eq!(status, 200);
    assert!(
        starter.contains("const runAction"),
        "a starter script: {starter}"
    );
    let csrf = csrf_of(&starter);
    let script = "const runAction = async ({ event, environmentVariables }) => {\n  console.log('hi', event.user.username, environmentVariables.TIER);\n  return { action: 'updateUser', user: { customData: { tier: environmentVariables.TIER } } };\n};";
    let post = |form: Vec<(&'static str, String)>| {
        browserless()
            .post(format!("{}/console/actions/action.postSignIn", app.base))
            .header(COOKIE, &cookie)
            .form(&form)
            .send()
    };
    let form = |intent: &str, script: &str, csrf: &str| {
        vec![
            ("csrf", csrf.to_owned()),
            ("intent", intent.to_owned()),
            ("script", script.to_owned()),
            ("variables", "TIER=gold\n".to_owned()),
            (
                "sample",
                r#"{"key": "PostSignIn", "user": {"id": "u1", "username": "<sample>"}}"#.to_owned(),
            ),
            ("enabled", "true".to_owned()),
            ("onExecutionError", "block".to_owned()),
        ]
    };

    // The dry run: what is typed, run with the sample; its answer and console, escaped.
    let res = post(form("test", script, &csrf)).await.unwrap();
    assert_eq!(res.status(), 200);
    let ran = res.text().await.unwrap();
    assert!(ran.contains("Test run"), "{ran}");
    assert!(ran.contains("hi &lt;sample&gt; gold"), "{ran}");
    assert!(
        ran.contains("&quot;tier&quot;: &quot;gold&quot;") || ran.contains("\"tier\": \"gold\""),
        "{ran}"
    );
    assert_eq!(
        app.get_json("/configs/actions").await["action.postSignIn"],
        serde_json::Value::Null,
        "a test saves nothing"
    );
    // A script that does not parse: the API's reason, and the typed form again.
    let res = post(form("save", "const runAction = (", &csrf))
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let refused = res.text().await.unwrap();
    assert!(refused.contains("does not parse"), "{refused}");
    assert!(refused.contains("const runAction = ("), "{refused}");
    // Without the CSRF token: refused.
    let res = post(form("save", script, "")).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let res = post(form("save", script, &csrf)).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let stored = app.get_json("/configs/actions/action.postSignIn").await;
    assert_eq!(stored["script"], script);
    assert_eq!(stored["environmentVariables"]["TIER"], "gold");
    assert_eq!(stored["contextSample"]["user"]["username"], "<sample>");

    // It runs at sign-in, and the run shows on its page.
    let (status, body) = s
        .interact(
            "/sign-in",
            serde_json::json!({"identifier": "ada", "password": "correct horse battery"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let app = &s.app;
    let (_, after) = page(app, &cookie, "/console/actions/action.postSignIn").await;
    assert!(
        after.contains("hi ada [redacted]"),
        "the run's console, secrets out: {after}"
    );
    assert!(after.contains("TIER=gold"), "{after}");

    // Deleted, after asking.
    let (_, ask) = page(app, &cookie, "/console/actions/action.postSignIn/delete").await;
    assert!(ask.contains("Sign-ins go on without it."));
    let delete = "/console/actions/action.postSignIn/delete";
    let res = post_form(app, &cookie, delete, &[("csrf", "forged")]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(app.get_json("/configs/actions").await["action.postSignIn"].is_object());
    let res = post_form(app, &cookie, delete, &[("csrf", csrf.as_str())]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.get_json("/configs/actions").await["action.postSignIn"],
        serde_json::Value::Null
    );
    let (status, _) = page(app, &cookie, "/console/actions/action.nope").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn identity_data_is_listed_and_searched_read_only() {
    let app = TestApp::spawn().await;
    let post = |path: &'static str, body: serde_json::Value| {
        app.send_json(reqwest::Method::POST, path, body)
    };
    post(
        "/users",
        serde_json::json!({"username": "alice", "primaryEmail": "alice@example.com", "name": "<Alice>"}),
    )
    .await;
    post("/users", serde_json::json!({"username": "bob"})).await;
    post(
        "/roles",
        serde_json::json!({"name": "editor", "description": "Edits things"}),
    )
    .await;
    post("/organizations", serde_json::json!({"name": "Acme"})).await;
    let app_made = post(
        "/applications",
        serde_json::json!({"name": "Billing", "type": "MachineToMachine"}),
    )
    .await;
    let cookie = session_cookie(&sign_in(&app, TOKEN).await);

    let (status, users) = page(&app, &cookie, "/console/users").await;
    assert_eq!(status, 200);
    assert!(users.contains("2 match"), "{users}");
    assert!(
        users.contains("&lt;Alice&gt;") && users.contains("bob"),
        "{users}"
    );
    let (_, found) = page(&app, &cookie, "/console/users?search=ALICE%40exa").await;
    assert!(
        found.contains("1 match") && found.contains("alice@example.com"),
        "{found}"
    );
    assert!(!found.contains(">bob<"), "{found}");
    let (_, none) = page(&app, &cookie, "/console/users?search=carol").await;
    assert!(none.contains("Nothing matches “carol”."), "{none}");
    let (_, roles) = page(&app, &cookie, "/console/roles").await;
    assert!(
        roles.contains("editor") && roles.contains("Edits things"),
        "{roles}"
    );
    let (_, orgs) = page(&app, &cookie, "/console/organizations?search=acm").await;
    assert!(orgs.contains("Acme"), "{orgs}");
    let (_, apps) = page(&app, &cookie, "/console/applications").await;
    assert!(
        apps.contains("Billing") && apps.contains("MachineToMachine"),
        "{apps}"
    );
    if let Some(secret) = app_made["secret"].as_str() {
        assert!(!apps.contains(secret), "the secret is never shown again");
    }
    // Read-only: the one form that posts is the sign-out.
    for p in [&users, &roles, &orgs, &apps] {
        assert_eq!(p.matches("method=\"post\"").count(), 1, "{p}");
        assert!(
            p.contains("method=\"post\" action=\"/console/sign-out\""),
            "{p}"
        );
    }
    app.stop().await;
}
