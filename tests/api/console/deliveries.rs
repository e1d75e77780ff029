//! The deliveries pages: filters, the latest answer, recovery and replay, paging.

use super::*;

#[tokio::test]
async fn failed_deliveries_are_filtered_by_time_recovered_and_replayed() {
    let app = TestApp::spawn_with(|a| a.retry_schedule = "50ms".parse().unwrap()).await;
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::status(503).body("down"));
    let down = app.create_hook(&["User.Created"], &receiver.url()).await;
    let down = down["id"].as_str().unwrap().to_owned();
    let before = hookline::clock::now_ms();
    app.publish(serde_json::json!({"event": "User.Created", "data": {"id": "u1"}}))
        .await;
    let failed = app
        .poll_json(
            &format!("/deliveries?hookId={down}&status=failed"),
            std::time::Duration::from_secs(10),
            |v| v.as_array().unwrap().len() == 1,
        )
        .await[0]
        .clone();
    let cookie = session_cookie(&sign_in(&app, TOKEN).await);

    // The failed delivery, with its last answer; a window that ends before it shows nothing.
    let (status, list) = page(
        &app,
        &cookie,
        &format!("/console/deliveries?hookId={down}&status=failed&since={before}"),
    )
    .await;
    assert_eq!(status, 200);
    assert!(list.contains(failed["id"].as_str().unwrap()), "{list}");
    let duration = failed["lastDurationMs"].as_i64().unwrap();
    assert!(list.contains(&format!("503 · {duration} ms")), "{list}");
    assert!(list.contains("1 delivery matches"), "{list}");
    assert!(list.contains("Recover failed deliveries"), "{list}");
    let (_, earlier) = page(
        &app,
        &cookie,
        &format!("/console/deliveries?hookId={down}&until=2020-01-01T00:00"),
    )
    .await;
    assert!(earlier.contains("No deliveries match."), "{earlier}");
    assert!(
        earlier.contains("value=\"2020-01-01T00:00:59\""),
        "{earlier}"
    );
    // A bad time, or a window ending before it starts: said on the page, filters kept.
    let (status, bad) = page(
        &app,
        &cookie,
        &format!("/console/deliveries?hookId={down}&since=yesterday"),
    )
    .await;
    assert_eq!(status, 400);
    assert!(bad.contains("“From” is not a time"), "{bad}");
    assert!(
        bad.contains("name=\"since\""),
        "the filter form is there: {bad}"
    );
    let (status, backwards) = page(
        &app,
        &cookie,
        "/console/deliveries?since=2026-01-02T00:00&until=2026-01-01T00:00",
    )
    .await;
    assert_eq!(status, 400);
    assert!(backwards.contains("“From” is after “To”"), "{backwards}");

    let csrf = csrf_of(&list);
    let post = |path: &'static str, form: Vec<(&'static str, String)>| {
        browserless()
            .post(format!("{}/console/deliveries/{path}", app.base))
            .header(COOKIE, &cookie)
            .form(&form)
            .send()
    };
    let since = before.to_string();
    // Refused without the page's CSRF token, and without a window's start.
    let res = post(
        "recover",
        vec![("hookId", down.clone()), ("since", since.clone())],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = post(
        "recover",
        vec![("csrf", csrf.clone()), ("hookId", down.clone())],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Choose when the window starts"));
    let future = (hookline::clock::now_ms() + 3_600_000).to_string();
    let res = post(
        "recover",
        vec![
            ("csrf", csrf.clone()),
            ("hookId", down.clone()),
            ("since", future),
        ],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.text().await.unwrap().contains("is in the future"));

    // The receiver is back: recovered from the console, the delivery succeeds.
    receiver.set_default(Reply::status(200));
    let res = post(
        "recover",
        vec![
            ("csrf", csrf.clone()),
            ("hookId", down.clone()),
            ("status", "failed".into()),
            ("since", since.clone()),
        ],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = res.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(to.contains("done=recovered&queued=1"), "{to}");
    assert!(!to.contains("status="), "back to the whole window: {to}");
    let (_, done) = page(&app, &cookie, &to).await;
    assert!(
        done.contains("1 failed delivery was queued again"),
        "{done}"
    );
    receiver
        .wait_for(3, std::time::Duration::from_secs(10))
        .await;
    app.poll_json(
        &format!("/deliveries/{}", failed["id"].as_str().unwrap()),
        std::time::Duration::from_secs(10),
        |d| d["status"] == "succeeded" && d["lastResponseStatus"] == 200,
    )
    .await;
    // The list shows the latest attempt (the 200 after two 503s), on the page too.
    let listed = app.get_json(&format!("/deliveries?hookId={down}")).await;
    assert_eq!(listed[0]["attempts"], 3);
    assert_eq!(listed[0]["lastResponseStatus"], 200);
    let (_, now) = page(&app, &cookie, &format!("/console/deliveries?hookId={down}")).await;
    assert!(now.contains("200 · "), "{now}");

    // A hook added later gets the window's event replayed to it, once.
    let late = app.create_hook(&["User.Created"], &receiver.url()).await;
    let late = late["id"].as_str().unwrap().to_owned();
    let replay = vec![
        ("csrf", csrf.clone()),
        ("hookId", late.clone()),
        ("since", since.clone()),
    ];
    let mut forged = replay.clone();
    forged[0].1 = "forged".into();
    let res = post("replay", forged).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = post("replay", replay.clone()).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = res.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(to.contains("done=replayed&queued=1"), "{to}");
    let got = receiver
        .wait_for(4, std::time::Duration::from_secs(10))
        .await;
    let body: serde_json::Value = serde_json::from_slice(&got[3].body).unwrap();
    assert_eq!(body["hookId"], late.as_str());
    assert_eq!(got[3].header("webhook-id").len(), 21);
    let again = post("replay", replay).await.unwrap();
    assert!(again.headers()[LOCATION]
        .to_str()
        .unwrap()
        .contains("queued=0"));

    // The hook's test send: the endpoint's answer in words.
    receiver.set_default(Reply::status(503).body("down"));
    let res = post_form(
        &app,
        &cookie,
        &format!("/console/hooks/{down}/test"),
        &[("csrf", csrf_of(&list).as_str()), ("event", "User.Created")],
    )
    .await;
    let tested = res.text().await.unwrap();
    assert!(
        tested.contains("The endpoint answered 503: down"),
        "{tested}"
    );
    // A disabled hook: the API's reason, on the page.
    app.send_json(
        reqwest::Method::PATCH,
        &format!("/hooks/{late}"),
        serde_json::json!({"enabled": false}),
    )
    .await;
    let res = post(
        "replay",
        vec![("csrf", csrf), ("hookId", late.clone()), ("since", since)],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::CONFLICT);
    assert!(res.text().await.unwrap().contains("is disabled"));
    app.stop().await;
}

#[tokio::test]
async fn deliveries_are_paged_and_a_blocking_hook_gets_its_failure_policy_from_the_form() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let hook = app.create_hook(&["User.Created"], &receiver.url()).await;
    for i in 0..51 {
        app.publish(serde_json::json!({"event": "User.Created", "data": {"id": format!("u{i}")}}))
            .await;
    }
    receiver
        .wait_for(51, std::time::Duration::from_secs(20))
        .await;
    let cookie = session_cookie(&sign_in(&app, TOKEN).await);
    let rows = |page: &str| page.matches("<span class=\"ok\">succeeded</span>").count();
    let (_, first) = page(&app, &cookie, "/console/deliveries").await;
    assert!(first.contains("51 deliveries match"), "{first}");
    assert_eq!(rows(&first), 50);
    assert!(
        first.contains(">Older<") && !first.contains(">Newer<"),
        "{first}"
    );
    let (_, second) = page(&app, &cookie, "/console/deliveries?page=2").await;
    assert_eq!(rows(&second), 1);
    assert!(
        second.contains(">Newer<") && !second.contains(">Older<"),
        "{second}"
    );
    assert!(second.contains(&format!(
        "href=\"/console/hooks/{}\"",
        hook["id"].as_str().unwrap()
    )));

    // A hook for a blocking event, made through the form with its failure policy.
    let csrf = csrf_of(&first);
    let url = receiver.url();
    let res = post_form(
        &app,
        &cookie,
        "/console/hooks",
        &[
            ("csrf", csrf.as_str()),
            ("name", "gate"),
            ("url", url.as_str()),
            ("events", "PreSignIn"),
            ("failurePolicy", "allow"),
        ],
    )
    .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let hooks = app.get_json("/hooks").await;
    let gate = hooks
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "gate")
        .unwrap();
    assert_eq!(gate["config"]["failurePolicy"], "allow");
    let (_, shown) = page(
        &app,
        &cookie,
        &format!("/console/hooks/{}", gate["id"].as_str().unwrap()),
    )
    .await;
    assert!(
        shown.contains("<option value=\"allow\" selected>"),
        "{shown}"
    );
    assert!(
        shown.contains("it can deny them"),
        "the blocking group says what it does: {shown}"
    );
    app.stop().await;
}
