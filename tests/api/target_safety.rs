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
    expect_error(res, 400, "hook.private_target_refused").await;
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

/// A host name other than `localhost` that this machine's hosts file maps to loopback, so the
/// DNS half of the checks can be driven without a DNS server.
fn loopback_alias() -> Option<String> {
    let hosts = std::fs::read_to_string("/etc/hosts").ok()?;
    hosts.lines().find_map(|line| {
        let mut parts = line.split('#').next()?.split_whitespace();
        let ip: std::net::IpAddr = parts.next()?.parse().ok()?;
        if !ip.is_loopback() {
            return None;
        }
        parts
            .find(|n| !n.eq_ignore_ascii_case("localhost") && !n.ends_with(".localhost"))
            .map(str::to_owned)
    })
}

#[tokio::test]
async fn names_that_resolve_to_private_addresses_are_refused_at_save_and_at_connect() {
    let Some(alias) = loopback_alias() else {
        eprintln!("SKIPPED: no loopback alias in /etc/hosts on this machine");
        return;
    };
    let receiver = Receiver::start().await;
    let url = format!("http://{alias}:{}/hook", receiver.addr.port());

    // At save time: the name is resolved and its loopback address refused.
    let strict = TestApp::spawn_with(|a| a.allow_private_targets = false).await;
    let res = strict
        .api(Method::POST, "/hooks")
        .json(&json!({"events": ["PostSignIn"], "config": {"url": url}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400, "{alias}");
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["code"], "hook.private_target_refused");
    assert!(
        err["message"].as_str().unwrap().contains("127.0.0.1")
            || err["message"].as_str().unwrap().contains("::1")
    );
    strict.stop().await;

    // At connect time: a hook saved while allowed is resolved again, and refused.
    let app = TestApp::spawn().await;
    let hook = app.create_hook(&["PostSignIn"], &url).await;
    app.publish(json!({"event": "PostSignIn"})).await;
    receiver.wait_for(1, Duration::from_secs(10)).await; // allowed: it arrives
    let dir = app.stop().await;
    let app = TestApp::spawn_in(dir, |a| a.allow_private_targets = false).await;
    app.publish(json!({"event": "PostSignIn"})).await;
    let path = format!("/hooks/{}/recent-logs", hook["id"].as_str().unwrap());
    let logs = app
        .poll_json(&path, Duration::from_secs(10), |v| {
            v.as_array()
                .unwrap()
                .iter()
                .any(|l| l["payload"]["result"] == "Error")
        })
        .await;
    let error = logs[0]["payload"]["error"].as_str().unwrap();
    assert!(error.contains("non-public"), "{error}");
    assert_eq!(
        receiver.count(),
        1,
        "nothing more reached the loopback address"
    );
    app.stop().await;
}

#[tokio::test]
async fn allowed_targets_open_only_what_they_list() {
    let receiver = Receiver::start().await;
    let port = receiver.addr.port();
    // Saved while every private target was allowed: one address the list will not name.
    let open = TestApp::spawn().await;
    let other = open
        .create_hook(&["PostSignIn"], &format!("http://127.0.0.2:{port}/hook"))
        .await;
    let dir = open.stop().await;

    let app = TestApp::spawn_in(dir, |a| {
        a.allow_private_targets = false;
        a.allowed_targets = "127.0.0.1/32, *.example.internal".parse().unwrap();
    })
    .await;
    // The listed range: saved and delivered.
    let allowed = app
        .create_hook(&["PostSignIn"], &format!("http://127.0.0.1:{port}/hook"))
        .await;
    // Another private address, a local name: refused at save, naming the flag.
    for url in [
        format!("http://127.0.0.2:{port}/hook"),
        format!("http://localhost:{port}/hook"),
        format!("http://10.0.0.1:{port}/hook"),
    ] {
        let res = app
            .api(Method::POST, "/hooks")
            .json(&json!({"events": ["PostSignIn"], "config": {"url": url}}))
            .send()
            .await
            .unwrap();
        let body = expect_error(res, 400, "hook.private_target_refused").await;
        assert!(
            body["message"]
                .as_str()
                .unwrap()
                .contains("--allowed-targets"),
            "{body}"
        );
    }
    app.publish(json!({"event": "PostSignIn"})).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["hookId"], allowed["id"]);
    // The stored hook to the unlisted address fails every attempt, each saying why.
    let path = format!("/hooks/{}/recent-logs", other["id"].as_str().unwrap());
    let logs = app
        .poll_json(&path, Duration::from_secs(10), |v| {
            v.as_array().unwrap().len() == 3
        })
        .await;
    for l in logs.as_array().unwrap() {
        let error = l["payload"]["error"].as_str().unwrap();
        assert!(
            error.contains("refused") && error.contains("127.0.0.2"),
            "{error}"
        );
    }
    receiver
        .assert_stays_at(1, Duration::from_millis(300))
        .await;
    app.stop().await;

    // A listed name may resolve to any address; the addresses it resolves to are not
    // thereby opened to other names or to literal URLs.
    let app = TestApp::spawn_with(|a| {
        a.allow_private_targets = false;
        a.allowed_targets = "localhost".parse().unwrap();
    })
    .await;
    let named = app
        .create_hook(&["PostSignIn"], &format!("http://localhost:{port}/hook"))
        .await;
    let res = app
        .api(Method::POST, "/hooks")
        .json(&json!({"events": ["PostSignIn"], "config": {"url": format!("http://127.0.0.1:{port}/hook")}}))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "hook.private_target_refused").await;
    app.publish(json!({"event": "PostSignIn"})).await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    assert_eq!(got[1].json()["hookId"], named["id"]);
    app.stop().await;
}
