//! One hook's page: its changes, their CSRF checks, the key's grace period, delete.

use super::*;

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
