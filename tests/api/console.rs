//! The console (issue 17): its sign-in, session cookie, CSRF and throttling through HTTP, and
//! its pages driven in real headless Chromium (Debian's, through playwright-core:
//! `tests/browser/console.mjs`).

use crate::helpers::*;
use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use std::path::PathBuf;

fn browserless() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap()
}

/// Signs in with `token`; the response.
async fn sign_in(app: &TestApp, token: &str) -> reqwest::Response {
    browserless()
        .post(format!("{}/console/sign-in", app.base))
        .form(&[("token", token)])
        .send()
        .await
        .unwrap()
}

/// The session cookie (`name=value`) a sign-in set.
fn session_cookie(res: &reqwest::Response) -> String {
    let set = res.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    set.split(';').next().unwrap().to_owned()
}

/// The CSRF token of a page's sign-out form.
fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    page[at..].split('"').next().unwrap().to_owned()
}

#[tokio::test]
async fn the_admin_token_becomes_a_strict_session_that_sign_out_ends() {
    let app = TestApp::spawn().await;
    let client = browserless();
    app.create_hook(&["User.Created"], "https://example.com/<b>hook</b>")
        .await;
    // No session: every page sends the browser to the sign-in.
    let res = client
        .get(format!("{}/console/hooks", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        res.headers()[LOCATION],
        "/console/sign-in?next=%2Fconsole%2Fhooks",
        "it comes back here after the sign-in"
    );
    let res = client
        .get(format!("{}/console/sign-in", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert!(res.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .contains("frame-ancestors 'none'"));

    // The right token: a session cookie, HttpOnly, SameSite=Strict, expiring, and not the
    // token.
    let res = sign_in(&app, TOKEN).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/console/hooks");
    let set = res.headers()[SET_COOKIE].to_str().unwrap().to_owned();
    for part in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=43200",
    ] {
        assert!(set.contains(part), "{set}");
    }
    assert!(!set.contains("Secure"), "plain http here: {set}");
    assert!(!set.contains(TOKEN));
    let cookie = session_cookie(&res);
    let page = client
        .get(format!("{}/console/hooks", app.base))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<h1>Hooks</h1>"), "{page}");
    // Escaped, not markup.
    assert!(
        page.contains("https://example.com/&lt;b&gt;hook&lt;/b&gt;"),
        "{page}"
    );
    assert!(!page.contains(TOKEN));

    // A change without the page's CSRF token: refused, and nothing made.
    let csrf = csrf_of(&page);
    let res = client
        .post(format!("{}/console/hooks", app.base))
        .header(COOKIE, &cookie)
        .form(&[
            ("name", "forged"),
            ("url", "https://example.com/x"),
            ("events", "User.Created"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get_json("/hooks").await.as_array().unwrap().len(), 1);
    let res = client
        .post(format!(
            "{}/console/deliveries/some-delivery/retry",
            app.base
        ))
        .header(COOKIE, &cookie)
        .form(&[("csrf", "wrong")])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::FORBIDDEN,
        "a retry needs the token too"
    );
    // Sign-out without the page's CSRF token, or from another site: refused.
    for (form, origin) in [
        (vec![], None),
        (vec![("csrf", "wrong")], None),
        (vec![("csrf", csrf.as_str())], Some("https://evil.example")),
    ] {
        let mut req = client
            .post(format!("{}/console/sign-out", app.base))
            .header(COOKIE, &cookie)
            .form(&form);
        if let Some(o) = origin {
            req = req.header("origin", o);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "{form:?} {origin:?}");
    }
    // With it: the session ends, here and for every later request.
    let res = client
        .post(format!("{}/console/sign-out", app.base))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(res.headers()[SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("Max-Age=0"));
    let res = client
        .get(format!("{}/console/hooks", app.base))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        StatusCode::SEE_OTHER,
        "the old cookie is dead"
    );

    // A page asked for before the sign-in is where it goes after; nowhere off the console.
    let res = client
        .get(format!("{}/console/deliveries?status=failed", app.base))
        .send()
        .await
        .unwrap();
    let to = res.headers()[LOCATION].to_str().unwrap().to_owned();
    assert_eq!(
        to,
        "/console/sign-in?next=%2Fconsole%2Fdeliveries%3Fstatus%3Dfailed"
    );
    let (_, form) = self::page(&app, "", &to).await;
    assert!(
        form.contains("name=\"next\" value=\"/console/deliveries?status=failed\""),
        "{form}"
    );
    for (next, lands) in [
        (
            "/console/deliveries?status=failed",
            "/console/deliveries?status=failed",
        ),
        ("//evil.example/console/", "/console/hooks"),
        ("https://evil.example/", "/console/hooks"),
    ] {
        let res = browserless()
            .post(format!("{}/console/sign-in", app.base))
            .form(&[("token", TOKEN), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.headers()[LOCATION], lands, "{next}");
    }
    // Any other console address is a console page; a GET of a change's URL goes back.
    let cookie = session_cookie(&sign_in(&app, TOKEN).await);
    let (status, nope) = self::page(&app, &cookie, "/console/nope").await;
    assert_eq!(status, 404);
    assert!(nope.contains("There is no such console page."), "{nope}");
    let res = client
        .get(format!("{}/console/sign-out", app.base))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()[LOCATION],
        "/console/hooks",
        "a GET never signs out"
    );
    app.stop().await;
}

#[tokio::test]
async fn wrong_tokens_are_refused_then_throttled_per_address() {
    let app = TestApp::spawn_with(|a| a.lockout_failures = 3).await;
    for _ in 0..2 {
        let res = sign_in(&app, "not-the-token").await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert!(res.headers().get(SET_COOKIE).is_none());
        assert!(res
            .text()
            .await
            .unwrap()
            .contains("That is not the admin token."));
    }
    let res = sign_in(&app, "not-the-token").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    // Locked: every wrong token is turned away at once, until the lockout ends ...
    let res = sign_in(&app, "another-guess").await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().get(SET_COOKIE).is_none());
    assert!(res.text().await.unwrap().contains("Too many wrong tokens"));
    // ... but the admin is not locked out by them.
    let res = sign_in(&app, TOKEN).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    app.stop().await;
}

#[tokio::test]
async fn a_new_admin_token_ends_the_old_ones_sessions() {
    let app = TestApp::spawn().await;
    let cookie = session_cookie(&sign_in(&app, TOKEN).await);
    let hooks = |app: &TestApp| {
        browserless()
            .get(format!("{}/console/hooks", app.base))
            .header(COOKIE, &cookie)
            .send()
    };
    assert_eq!(hooks(&app).await.unwrap().status(), StatusCode::OK);
    let dir = app.stop().await;
    // The same database, the same token: the session lives on.
    let app = TestApp::spawn_in(dir, |_| {}).await;
    assert_eq!(hooks(&app).await.unwrap().status(), StatusCode::OK);
    let dir = app.stop().await;
    // Another token (the old one leaked): the session is dead.
    let app = TestApp::spawn_in(dir, |a| {
        a.admin_token = Some("a-new-admin-token-0123456789".into())
    })
    .await;
    assert_eq!(hooks(&app).await.unwrap().status(), StatusCode::SEE_OTHER);
    app.stop().await;
}

fn logto_signature(key: &str, body: &[u8]) -> String {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

fn browser_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Where the browser test leaves its screenshots (test artifacts).
fn screenshots_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots")
}

#[tokio::test]
async fn a_browser_signs_in_sees_the_hooks_and_signs_out() {
    let browser = browser_dir();
    assert!(
        browser.join("node_modules/playwright-core").exists(),
        "run `npm ci --prefix tests/browser` first (the README's test command does)"
    );
    assert!(
        std::path::Path::new("/usr/bin/chromium").exists(),
        "Debian's chromium is needed (apt-get install chromium; .ci/run installs it)"
    );
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_hook(&["User.Created", "PostSignIn"], &receiver.url())
        .await;
    let shots = screenshots_dir();
    std::fs::create_dir_all(&shots).unwrap();
    // On the blocking pool: the app answers the browser on this test's runtime meanwhile.
    let (script, base, dir) = (browser.join("console.mjs"), app.base.clone(), shots.clone());
    let receiver_url = receiver.url();
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new("node")
            .arg(script)
            .arg(base)
            .arg(TOKEN)
            .arg(dir)
            .arg(receiver_url)
            .current_dir(browser_dir())
            .output()
            .expect("node runs")
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser test failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("console ok"), "{stdout}");
    assert!(shots.join("hooks.png").exists());
    // The hook the form made is a real one: its test event, its delivery and the retry the
    // page asked for came with the form's header, signed with the rotated key; the API's hook
    // got its one delivery.
    let got = receiver
        .wait_for(4, std::time::Duration::from_secs(10))
        .await;
    let from_console: Vec<_> = got
        .iter()
        .filter(|r| r.header("x-from") == "console")
        .collect();
    assert_eq!((got.len(), from_console.len()), (4, 3));
    let hooks = app.get_json("/hooks").await;
    let console_hook = hooks
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "From the console")
        .unwrap();
    assert_eq!(console_hook["config"]["timeoutMs"], 2500);
    let key = console_hook["signingKey"].as_str().unwrap();
    for r in &from_console {
        assert_eq!(
            r.header("logto-signature-sha-256"),
            logto_signature(key, &r.body)
        );
    }
    app.stop().await;
}

#[tokio::test]
async fn a_hook_is_disabled_and_deleted_from_its_page() {
    let app = TestApp::spawn().await;
    let client = browserless();
    let hook = app
        .create_hook(&["User.Created"], "https://example.com/hook")
        .await;
    let id = hook["id"].as_str().unwrap();
    let cookie = session_cookie(&sign_in(&app, TOKEN).await);
    let page_url = format!("{}/console/hooks/{id}", app.base);
    let page = client
        .get(&page_url)
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains(hook["signingKey"].as_str().unwrap()));
    let csrf = csrf_of(&page);
    let post = |path: &str, form: Vec<(&str, &str)>| {
        client
            .post(format!("{page_url}{path}"))
            .header(COOKIE, &cookie)
            .form(&form)
            .send()
    };
    // Every change refuses a request without the page's CSRF token, and changes nothing.
    for (path, form) in [
        ("/enabled", vec![("enabled", "false")]),
        ("/signing-key", vec![("gracePeriodSeconds", "0")]),
        ("/test", vec![("event", "User.Created")]),
        (
            "",
            vec![
                ("name", "renamed"),
                ("url", "https://example.com/other"),
                ("events", "User.Deleted"),
            ],
        ),
    ] {
        let mut forged = form.clone();
        forged.push(("csrf", "not-the-token"));
        for form in [form, forged] {
            let res = post(path, form).await.unwrap();
            assert_eq!(res.status(), StatusCode::FORBIDDEN, "{path}");
        }
    }
    // A form over --max-body-bytes: refused with a page that says why.
    let huge = "x".repeat(2 * 1024 * 1024);
    let res = post("", vec![("csrf", &csrf), ("name", &huge)])
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let unchanged = app.get_json(&format!("/hooks/{id}")).await;
    assert_eq!(
        (
            &unchanged["enabled"],
            &unchanged["signingKey"],
            &unchanged["name"]
        ),
        (&serde_json::json!(true), &hook["signingKey"], &hook["name"])
    );

    // A rotation with a grace period: the page says until when the old key signs too.
    let res = post(
        "/signing-key",
        vec![("csrf", &csrf), ("gracePeriodSeconds", "3600")],
    )
    .await
    .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let (_, rotated) = self::page(&app, &cookie, &format!("/console/hooks/{id}")).await;
    assert!(rotated.contains("The previous key also signs"), "{rotated}");
    assert!(
        !rotated.contains(hook["signingKey"].as_str().unwrap()),
        "the old key is not shown"
    );

    let res = post("/enabled", vec![("csrf", &csrf), ("enabled", "false")])
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        app.get_json(&format!("/hooks/{id}")).await["enabled"],
        false
    );
    // Deleting asks first; without the token it is refused.
    let ask = client
        .get(format!("{page_url}/delete"))
        .header(COOKIE, &cookie)
        .send()
        .await
        .unwrap();
    assert!(ask.text().await.unwrap().contains("This cannot be undone."));
    let res = post("/delete", vec![]).await.unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get_json("/hooks").await.as_array().unwrap().len(), 1);
    let res = post("/delete", vec![("csrf", &csrf)]).await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(res.headers()[LOCATION], "/console/hooks?done=deleted");
    assert!(app.get_json("/hooks").await.as_array().unwrap().is_empty());
    app.stop().await;
}

/// A console page's text, through the session `cookie`.
async fn page(app: &TestApp, cookie: &str, path: &str) -> (StatusCode, String) {
    let res = browserless()
        .get(format!("{}{path}", app.base))
        .header(COOKIE, cookie)
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

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
    let res = browserless()
        .post(format!("{}/console/hooks/{down}/test", app.base))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf_of(&list).as_str()), ("event", "User.Created")])
        .send()
        .await
        .unwrap();
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
    let res = browserless()
        .post(format!(
            "{}/console/actions/action.postSignIn/delete",
            app.base
        ))
        .header(COOKIE, &cookie)
        .form(&[("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(app.get_json("/configs/actions").await["action.postSignIn"].is_object());
    let res = browserless()
        .post(format!(
            "{}/console/actions/action.postSignIn/delete",
            app.base
        ))
        .header(COOKIE, &cookie)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
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
    let res = browserless()
        .post(format!("{}/console/hooks", app.base))
        .header(COOKIE, &cookie)
        .form(&[
            ("csrf", csrf.as_str()),
            ("name", "gate"),
            ("url", receiver.url().as_str()),
            ("events", "PreSignIn"),
            ("failurePolicy", "allow"),
        ])
        .send()
        .await
        .unwrap();
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
