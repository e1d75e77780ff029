//! Sign-in, sign-out, the session cookie, CSRF, throttling and where a sign-in goes next.

use super::*;

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
