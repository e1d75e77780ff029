//! Tests against the real binary: crash recovery, graceful shutdown, the generated admin
//! token, and the command line.

use crate::helpers::*;
use serde_json::{json, Value};
use std::collections::HashSet;
use std::time::Duration;

async fn create_hook(base: &str, token: &str, url: &str) -> Value {
    let res = reqwest::Client::new()
        .post(format!("{base}/api/hooks"))
        .bearer_auth(token)
        .json(&json!({"name": "h", "events": ["User.Created"], "config": {"url": url}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    res.json().await.unwrap()
}

async fn publish(base: &str, token: &str, i: usize) {
    let res = reqwest::Client::new()
        .post(format!("{base}/api/events"))
        .bearer_auth(token)
        .json(&json!({"event": "User.Created", "data": {"i": i}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
}

fn unique_ids(got: &[Received]) -> HashSet<i64> {
    got.iter()
        .map(|r| r.json()["data"]["i"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn every_accepted_event_is_delivered_after_kill_9() {
    let dir = TestDb::new().await;
    let receiver = Receiver::start().await;
    // Slow answers keep deliveries in flight when the process is killed.
    receiver.set_default(Reply::status(200).delay(Duration::from_millis(300)));
    let args = [
        "--admin-token",
        TOKEN,
        "--allow-private-targets",
        "--request-timeout",
        "1s",
        "--retry-schedule",
        "100ms",
        // 16 at a time: when the kill comes, some deliveries are in flight and the rest queued.
        "--max-in-flight-per-hook",
        "16",
    ];
    let mut server = Process::start(&dir, &args).await;
    let hook = create_hook(&server.base, TOKEN, &receiver.url()).await;
    for i in 0..40 {
        publish(&server.base, TOKEN, i).await;
    }
    receiver.wait_for(1, Duration::from_secs(10)).await;
    server.kill9();
    let before = receiver.count();
    assert!(
        before < 40,
        "the kill came mid-delivery ({before} of 40 had arrived)"
    );

    receiver.set_default(Reply::status(200));
    let server = Process::start(&dir, &args).await;
    // What the killed process had leased is due again at once: on SQLite leases live in the
    // process's memory, and died with it.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let got = receiver.received();
        if unique_ids(&got).len() == 40 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "only {} of 40 events arrived",
            unique_ids(&got).len()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // webhook-id lets a receiver de-duplicate the at-least-once re-sends.
    let got = receiver.received();
    let by_id: HashSet<(String, i64)> = got
        .iter()
        .map(|r| {
            (
                r.header("webhook-id").to_owned(),
                r.json()["data"]["i"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        by_id.len(),
        40,
        "each event keeps one webhook-id across re-sends"
    );
    // The deliveries the killed process had claimed are claimed again and then recorded: 40
    // deliveries, each with a successful attempt.
    let path = format!(
        "/hooks/{}/recent-logs?page_size=100",
        hook["id"].as_str().unwrap()
    );
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let logs = server.get_json(&path).await;
        let succeeded: HashSet<&str> = logs
            .as_array()
            .unwrap()
            .iter()
            .filter(|l| l["payload"]["result"] == "Success")
            .map(|l| l["payload"]["deliveryId"].as_str().unwrap())
            .collect();
        if succeeded.len() == 40 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "{} of 40 deliveries recorded as delivered",
            succeeded.len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(server.terminate().await.code(), Some(0));
}

#[tokio::test]
async fn sigterm_finishes_in_flight_deliveries_and_exits_0() {
    let dir = TestDb::new().await;
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::status(200).delay(Duration::from_millis(800)));
    let args = [
        "--admin-token",
        TOKEN,
        "--allow-private-targets",
        "--retry-schedule",
        "100ms",
    ];
    let server = Process::start(&dir, &args).await;
    let hook = create_hook(&server.base, TOKEN, &receiver.url()).await;
    publish(&server.base, TOKEN, 1).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let status = server.terminate().await; // while the receiver is still answering
    assert_eq!(status.code(), Some(0));

    // The finished delivery was recorded: a new start does not send it again.
    receiver.set_default(Reply::status(200));
    let server = Process::start(&dir, &args).await;
    let logs = server
        .get_json(&format!(
            "/hooks/{}/recent-logs",
            hook["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(logs.as_array().unwrap().len(), 1);
    assert_eq!(logs[0]["payload"]["result"], "Success");
    receiver
        .assert_stays_at(1, Duration::from_millis(1500))
        .await;
    drop(server);
}

#[tokio::test]
async fn first_start_generates_and_prints_an_admin_token_once() {
    let dir = TestDb::new().await;
    let server = Process::start(&dir, &[]).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !server
        .stdout
        .lock()
        .unwrap()
        .contains("Authorization: Bearer")
    {
        assert!(std::time::Instant::now() < deadline, "no token printed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let out = server.stdout.lock().unwrap().clone();
    let token = out
        .split_whitespace()
        .find(|w| w.starts_with("hl_"))
        .expect("the token is printed")
        .trim_end_matches(['`', '.'])
        .to_owned();
    assert!(out.contains("Authorization: Bearer"), "{out}");
    let client = reqwest::Client::new();
    let ok = client
        .get(format!("{}/api/hooks", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    assert!(
        !dir.stored_text().await.contains(&token),
        "only a hash is stored"
    );
    assert!(
        !server.stderr.lock().unwrap().contains(&token),
        "the token is printed, never logged"
    );
    assert_eq!(server.terminate().await.code(), Some(0));

    let server = Process::start(&dir, &[]).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !server.stdout.lock().unwrap().contains("hl_"),
        "the token is shown only once"
    );
    let ok = client
        .get(format!("{}/api/hooks", server.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200, "the generated token keeps working");
    drop(server);
}

#[test]
fn help_documents_every_setting_with_its_environment_variable() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(["serve", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for (flag, env) in [
        ("--listen", "HOOKLINE_LISTEN"),
        ("--database-url", "HOOKLINE_DATABASE_URL"),
        ("--admin-token", "HOOKLINE_ADMIN_TOKEN"),
        ("--request-timeout", "HOOKLINE_REQUEST_TIMEOUT"),
        ("--retry-schedule", "HOOKLINE_RETRY_SCHEDULE"),
        ("--allow-private-targets", "HOOKLINE_ALLOW_PRIVATE_TARGETS"),
        ("--max-in-flight", "HOOKLINE_MAX_IN_FLIGHT"),
        (
            "--max-in-flight-per-hook",
            "HOOKLINE_MAX_IN_FLIGHT_PER_HOOK",
        ),
        ("--max-body-bytes", "HOOKLINE_MAX_BODY_BYTES"),
    ] {
        assert!(
            help.contains(flag) && help.contains(env),
            "{flag} / {env} missing from:\n{help}"
        );
    }
    assert!(help.contains("5s,5m,30m,2h,5h,10h,14h,20h,24h"));
    assert!(help.contains("127.0.0.1:3001"));
    let bad = std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(["serve", "--retry-schedule", "5s,soon"])
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("soon"));
}

#[test]
fn a_short_admin_token_is_refused_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-token", "short"])
        .arg("--database-url")
        .arg(format!("sqlite://{}", dir.path().join("h.db").display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 16 characters"));
}

#[tokio::test]
async fn a_second_process_on_the_same_database_is_refused() {
    let dir = TestDb::new().await;
    if !dir.is_sqlite() {
        // One process per SQLite file; PostgreSQL takes any number (the multi-node tests).
        return;
    }
    let args = ["--admin-token", TOKEN];
    let first = Process::start(&dir, &args).await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(["serve", "--listen", "127.0.0.1:0", "--admin-token", TOKEN])
        .arg("--database-url")
        .arg(format!(
            "sqlite://{}",
            dir.path().join("hookline.db").display()
        ))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("in use by another hookline process"),
        "{stderr}"
    );
    // The first one is unaffected, and once it is gone the file can be opened again.
    assert_eq!(first.terminate().await.code(), Some(0));
    let second = Process::start(&dir, &args).await;
    assert_eq!(second.terminate().await.code(), Some(0));
}
