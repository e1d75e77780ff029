use crate::helpers::*;
use reqwest::Method;

#[tokio::test]
async fn healthz_answers_without_auth() {
    let app = TestApp::spawn().await;
    let res = app.get_public("/healthz").await;
    assert_eq!(res.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn every_api_route_needs_the_admin_token() {
    let app = TestApp::spawn().await;
    let routes = [
        (Method::GET, "/hooks"),
        (Method::POST, "/hooks"),
        (Method::GET, "/hooks/x"),
        (Method::PATCH, "/hooks/x"),
        (Method::DELETE, "/hooks/x"),
        (Method::PATCH, "/hooks/x/signing-key"),
        (Method::POST, "/hooks/x/test"),
        (Method::GET, "/hooks/x/recent-logs"),
        (Method::GET, "/hook-events"),
        (Method::GET, "/deliveries"),
        (Method::GET, "/deliveries/x"),
        (Method::POST, "/deliveries/x/retry"),
        (Method::POST, "/hooks/x/recover"),
        (Method::POST, "/hooks/x/replay"),
        (Method::POST, "/events"),
        (Method::GET, "/no-such-route"),
    ];
    for (method, path) in routes {
        let url = format!("{}/api{path}", app.base);
        for auth in [
            None,
            Some("Bearer wrong-token-wrong-token"),
            Some("Basic dGVzdDp0ZXN0"),
            Some(TOKEN),
        ] {
            let mut req = app.client.request(method.clone(), &url);
            if let Some(a) = auth {
                req = req.header("authorization", a);
            }
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 401, "{method} {path} with {auth:?}");
            assert_eq!(res.headers()["www-authenticate"], "Bearer");
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["code"], "auth.unauthorized");
            assert!(body["message"].as_str().unwrap().contains("Bearer"));
        }
    }
    let res = app.api(Method::GET, "/hooks").send().await.unwrap();
    assert_eq!(res.status(), 200);
    app.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_get_json_errors() {
    let app = TestApp::spawn().await;
    let res = app.api(Method::GET, "/nothing-here").send().await.unwrap();
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "route.not_found");
    let res = app.api(Method::PUT, "/hooks").send().await.unwrap();
    assert_eq!(res.status(), 405);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["code"], "route.method_not_allowed");
    app.stop().await;
}
