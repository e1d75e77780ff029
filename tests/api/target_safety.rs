use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

#[tokio::test]
async fn private_targets_are_refused_at_create_update_and_test() {
    let app = TestApp::spawn_with(|a| a.allow_private_targets = false).await;
    let private = [
        "http://127.0.0.1:8080/hook",
        "http://localhost/hook",
        "http://LOCALHOST./hook",
        "http://api.localhost/hook",
        "http://10.1.2.3/hook",
        "http://172.16.0.1/hook",
        "http://192.168.0.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/",
        "http://0.0.0.0/",
        "http://224.0.0.1/",
        "http://[::1]/hook",
        "http://[fe80::1]/hook",
        "http://[fd00::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://2130706433/",
    ];
    for url in private {
        let res = app
            .api(Method::POST, "/hooks")
            .json(&json!({"events": ["PostSignIn"], "config": {"url": url}}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{url}");
        let err: Value = res.json().await.unwrap();
        assert_eq!(err["code"], "hook.private_target_refused", "{url}");
        assert!(err["message"]
            .as_str()
            .unwrap()
            .contains("--allow-private-targets"));
    }
    let hook = app
        .create_hook(&["PostSignIn"], "https://example.com/hook")
        .await;
    let id = hook["id"].as_str().unwrap();
    let res = app
        .api(Method::PATCH, &format!("/hooks/{id}"))
        .json(&json!({"config": {"url": "http://127.0.0.1/"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = app
        .api(Method::POST, &format!("/hooks/{id}/test"))
        .json(&json!({"events": ["PostSignIn"], "config": {"url": "http://127.0.0.1:9/"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<Value>().await.unwrap()["code"],
        "hook.private_target_refused"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_stored_private_target_is_refused_again_at_send_time() {
    // A hook saved while private targets were allowed (think: a name that resolved to a public
    // address then) must not be called once they are not.
    let receiver = Receiver::start().await;
    let app = TestApp::spawn().await;
    let hook = app.create_hook(&["PostSignIn"], &receiver.url()).await;
    let localhost_hook = app
        .create_hook(
            &["PostSignIn"],
            &format!("http://localhost:{}/hook", receiver.addr.port()),
        )
        .await;
    let dir = app.stop().await;

    let app = TestApp::spawn_in(dir, |a| a.allow_private_targets = false).await;
    app.publish(json!({"event": "PostSignIn"})).await;
    for h in [&hook, &localhost_hook] {
        let path = format!("/hooks/{}/recent-logs", h["id"].as_str().unwrap());
        let logs = app
            .poll_json(&path, Duration::from_secs(10), |v| {
                v.as_array().unwrap().len() == 3
            })
            .await;
        for l in logs.as_array().unwrap() {
            assert_eq!(l["payload"]["result"], "Error");
            let error = l["payload"]["error"].as_str().unwrap();
            assert!(error.contains("refused"), "{error}");
        }
    }
    assert_eq!(receiver.count(), 0, "nothing reached the private address");
    app.stop().await;
}
