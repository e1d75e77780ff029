//! Several nodes on one database (PostgreSQL runs only: SQLite allows one process per file,
//! which `lifecycle.rs` tests). Nodes are the real binary where a test kills one, in-process
//! apps otherwise.

use super::helpers::*;
use hookline::configuration::Role;
use reqwest::Method;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};

#[tokio::test]
async fn api_and_worker_nodes_split_the_work_and_see_each_others_changes() {
    if !postgres_run() {
        return;
    }
    let db = TestDb::new().await;
    let api = TestApp::spawn_in(db.clone(), |a| a.role = Role::Api).await;
    let worker = TestApp::spawn_in(db.clone(), |a| a.role = Role::Worker).await;
    let both = TestApp::spawn_in(db.clone(), |_| {}).await;

    // A worker serves health and metrics only: no API, no console.
    let res = worker.api(Method::GET, "/hooks").send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(worker.get_public("/console/sign-in").await.status(), 404);
    assert_eq!(api.get_public("/console/sign-in").await.status(), 200);
    assert_eq!(worker.get_public("/readyz").await.status(), 200);
    assert_eq!(worker.get_public("/metrics").await.status(), 200);

    // A hook made on the API node is used by the others: an event published on the API node
    // (which never delivers) arrives, sent by another node.
    let receiver = Receiver::start().await;
    let hook = api.create_hook(&["User.Created"], &receiver.url()).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    for i in 0..20 {
        api.publish(json!({"event": "User.Created", "data": {"i": i}}))
            .await;
    }
    receiver.wait_for(20, Duration::from_secs(15)).await;

    // An identity change on any node fires its event.
    both.send_json(Method::POST, "/users", json!({"username": "ann"}))
        .await;
    let got = receiver.wait_for(21, Duration::from_secs(15)).await;
    assert!(got.iter().any(|r| r.json()["data"]["username"] == "ann"));

    // Disabled on one node, the hook gets nothing published through another.
    both.send_json(
        Method::PATCH,
        &format!("/hooks/{id}"),
        json!({"enabled": false}),
    )
    .await;
    api.publish(json!({"event": "User.Created", "data": {"i": "late"}}))
        .await;
    receiver
        .assert_stays_at(21, Duration::from_millis(1_500))
        .await;
    // Enabled again on the API node, the next event arrives (a disabled hook is given no
    // deliveries at all, as in Logto: nothing was held back).
    api.send_json(
        Method::PATCH,
        &format!("/hooks/{id}"),
        json!({"enabled": true}),
    )
    .await;
    api.publish(json!({"event": "User.Created", "data": {"i": "again"}}))
        .await;
    let got = receiver.wait_for(22, Duration::from_secs(15)).await;
    assert_eq!(got[21].json()["data"]["i"], "again");

    // The API node sent none of them: it never delivers.
    let metrics = api.get_public("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("hookline_deliveries_total{outcome=\"succeeded\"} 0"),
        "{metrics}"
    );
    // The attempt log (written by whichever node sent) is read the same on any node.
    api.poll_json(
        &format!("/hooks/{id}/recent-logs?page_size=100"),
        Duration::from_secs(10),
        |v| v.as_array().is_some_and(|a| a.len() == 22),
    )
    .await;

    for app in [api, worker, both] {
        app.stop().await;
    }
}

#[tokio::test]
async fn three_nodes_deliver_everything_when_one_is_killed_mid_stream() {
    if !postgres_run() {
        return;
    }
    let db = TestDb::new().await;
    let receiver = Receiver::start().await;
    // Slow answers keep deliveries in flight on every node when one is killed.
    receiver.set_default(Reply::status(200).delay(Duration::from_millis(700)));
    // A 1 s request timeout makes a lease 8 s (3 × timeout + 5 s): what the killed node
    // held comes back that soon. At most 2 × 8 deliveries are held by a node (its lease
    // budget), which bounds the duplicates.
    let args = [
        "--admin-token",
        TOKEN,
        "--allow-private-targets",
        "--request-timeout",
        "1s",
        "--max-in-flight",
        "8",
    ];
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes.push(Process::start(&db, &args).await);
    }
    let hook = nodes[0]
        .send_json(
            Method::POST,
            "/hooks",
            json!({"events": ["User.Created"], "config": {"url": receiver.url()}}),
        )
        .await;
    assert!(hook["id"].is_string(), "{hook}");

    // Publish to every live node in turn; kill the second one a third of the way in.
    let total = 300;
    let mut killed_at = None;
    for i in 0..total {
        if i == total / 3 {
            nodes[1].kill9();
            killed_at = Some(Instant::now());
        }
        let node = if killed_at.is_some() && i % 3 == 1 {
            &nodes[0]
        } else {
            &nodes[i % 3]
        };
        let res = node
            .send_json(
                Method::POST,
                "/events",
                json!({"event": "User.Created", "data": {"i": i}}),
            )
            .await;
        assert_eq!(res["deliveries"], 1, "{res}");
    }
    let killed_at = killed_at.unwrap();
    assert!(receiver.count() < total, "the kill came mid-stream");
    // The killed node comes back and joins in.
    nodes[1] = Process::start(&db, &args).await;

    // Every accepted event arrives (what the killed node held, once its leases end).
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut by_id: HashMap<String, Vec<Instant>> = HashMap::new();
    loop {
        by_id.clear();
        for r in receiver.received() {
            by_id
                .entry(r.header("webhook-id").to_owned())
                .or_default()
                .push(r.at);
        }
        if by_id.len() >= total || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let events: std::collections::HashSet<i64> = receiver
        .received()
        .iter()
        .map(|r| r.json()["data"]["i"].as_i64().unwrap())
        .collect();
    assert_eq!(events.len(), total, "every accepted event was delivered");
    assert_eq!(by_id.len(), total, "one delivery per event");
    // Duplicates: only deliveries the killed node had on the wire, sent again by another
    // node after their lease ended. So each was first received by the kill (give or take
    // what was in the socket then), and there are no more than the killed node could hold.
    let duplicates: Vec<_> = by_id.values().filter(|times| times.len() > 1).collect();
    for times in &duplicates {
        assert!(
            *times.iter().min().unwrap() <= killed_at + Duration::from_millis(500),
            "a delivery sent twice by live nodes"
        );
    }
    assert!(duplicates.len() <= 16, "{} duplicates", duplicates.len());
    eprintln!(
        "three nodes, one killed: {total} events, {} duplicates (deliveries the killed node held)",
        duplicates.len()
    );
    for node in nodes {
        assert_eq!(node.terminate().await.code(), Some(0));
    }
}

#[tokio::test]
async fn split_roles_are_refused_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(["serve", "--listen", "127.0.0.1:0", "--role", "worker"])
        .arg("--database-url")
        .arg(format!("sqlite://{}", dir.path().join("h.db").display()))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--role worker needs a database that several processes share"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_lost_database_answers_503_and_the_node_recovers_on_its_own() {
    if !postgres_run() {
        return;
    }
    let cluster = PrivateCluster::start();
    let db = cluster.database().await;
    let receiver = Receiver::start().await;
    let app = TestApp::spawn_in(db.clone(), |_| {}).await;
    app.create_hook(&["User.Created"], &receiver.url()).await;
    for i in 0..5 {
        app.publish(json!({"event": "User.Created", "data": {"i": i}}))
            .await;
    }
    receiver.wait_for(5, Duration::from_secs(10)).await;

    cluster.ctl("stop -m fast");
    // Not ready, and writes are refused with 503 (not hung, not 500): nothing is accepted
    // that could not be stored.
    expect_error(app.get_public("/readyz").await, 503, "database.unavailable").await;
    let res = app
        .api(Method::POST, "/events")
        .json(&json!({"event": "User.Created", "data": {"i": -1}}))
        .send()
        .await
        .unwrap();
    expect_error(res, 503, "database.unavailable").await;
    let res = app
        .api(Method::POST, "/users")
        .json(&json!({"username": "ann"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 503, "database.unavailable").await;
    // Liveness does not depend on the database.
    assert_eq!(app.get_public("/healthz").await.status(), 200);

    // The database comes back: the node recovers by itself, delivery included.
    cluster.ctl("start -w");
    let deadline = Instant::now() + Duration::from_secs(30);
    while app.get_public("/readyz").await.status() != 200 {
        assert!(
            Instant::now() < deadline,
            "ready again once the database is back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for i in 5..10 {
        app.publish(json!({"event": "User.Created", "data": {"i": i}}))
            .await;
    }
    let got = receiver.wait_for(10, Duration::from_secs(15)).await;
    let seen: std::collections::BTreeSet<i64> = got
        .iter()
        .map(|r| r.json()["data"]["i"].as_i64().unwrap())
        .collect();
    // Everything accepted, and nothing refused (the -1) stored behind the 503.
    assert_eq!(seen, (0..10).collect());
    app.stop().await;
}

#[tokio::test]
async fn a_database_that_cannot_be_reached_at_start_is_a_one_line_error() {
    let port = free_port();
    for (url, says) in [
        (
            format!("postgres://hookline:pw-0123456789@127.0.0.1:{port}/db"),
            "Connection refused",
        ),
        (
            "postgresql://hookline:pw-0123456789@no-such-host.invalid/db?sslmode=require".into(),
            // The resolver's answer, or our own timeout where lookups hang.
            "lookup|no answer",
        ),
    ] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
            .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &url])
            .env("RUST_BACKTRACE", "1")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let lines: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(says.split('|').any(|s| lines[0].contains(s)), "{stderr}");
        assert!(
            !stderr.contains("pw-0123456789"),
            "the password is never shown"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!stderr.contains("backtrace"), "{stderr}");
    }
}

#[tokio::test]
async fn wrong_credentials_are_named_without_the_password() {
    if !postgres_run() {
        return;
    }
    let cluster = PrivateCluster::start();
    {
        use sqlx::Connection;
        let mut conn = sqlx::PgConnection::connect(&cluster.url).await.unwrap();
        sqlx::query("CREATE ROLE guarded LOGIN PASSWORD 'right-password-1'")
            .execute(&mut conn)
            .await
            .unwrap();
    }
    cluster.hba_first("host all guarded 127.0.0.1/32 scram-sha-256");
    let mut url = url::Url::parse(&cluster.url).unwrap();
    url.set_username("guarded").unwrap();
    url.set_password(Some("wrong-password-2")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--database-url",
            url.as_str(),
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let errors: Vec<&str> = stderr.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{stderr}");
    assert!(
        stderr.contains("password authentication failed for user \"guarded\""),
        "{stderr}"
    );
    assert!(!stderr.contains("wrong-password-2"), "{stderr}");
    assert!(
        stderr.contains("guarded:***@"),
        "the URL, redacted: {stderr}"
    );
}

#[tokio::test]
async fn sslmode_require_connects_over_tls() {
    if !postgres_run() {
        return;
    }
    let cluster = PrivateCluster::start();
    let db = cluster.database().await;
    cluster.enable_tls();
    // Plain connections over TCP are refused from now on: only TLS gets in.
    cluster.hba_first("hostnossl all all 127.0.0.1/32 reject");
    let plain = format!("{}?sslmode=disable", db.url());
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args(["serve", "--listen", "127.0.0.1:0", "--database-url", &plain])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("no encryption"), "{stderr}");

    let receiver = Receiver::start().await;
    let tls = format!("{}?sslmode=require", db.url());
    let app = TestApp::spawn_with(|a| a.database_url = tls).await;
    app.create_hook(&["User.Created"], &receiver.url()).await;
    app.publish(json!({"event": "User.Created", "data": {"over": "tls"}}))
        .await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["data"]["over"], "tls");
    app.stop().await;
}

#[tokio::test]
async fn guesses_spread_over_nodes_count_toward_one_lockout() {
    if !postgres_run() {
        return;
    }
    let db = TestDb::new().await;
    let a = TestApp::spawn_in(db.clone(), |a| a.lockout_failures = 4).await;
    let b = TestApp::spawn_in(db.clone(), |a| a.lockout_failures = 4).await;
    let created = a
        .send_json(
            Method::POST,
            "/applications",
            json!({"name": "Shop", "type": "Traditional"}),
        )
        .await;
    let (id, secret) = (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    );
    let interact = |app: &TestApp, path: &str, body: serde_json::Value| {
        app.client
            .post(format!("{}/api/interactions{path}", app.base))
            .basic_auth(&id, Some(&secret))
            .json(&body)
            .send()
    };
    let res = interact(
        &a,
        "/register",
        json!({"username": "bob", "password": "right-password"}),
    )
    .await
    .unwrap();
    assert_eq!(res.status(), 201);
    let wrong = json!({"identifier": "bob", "password": "wrong-password"});
    // Three failures, spread over both nodes, are each refused as wrong...
    for app in [&a, &b, &a] {
        let res = interact(app, "/sign-in", wrong.clone()).await.unwrap();
        expect_error(res, 422, "session.invalid_credentials").await;
    }
    // ...and the fourth, on the other node, reaches the shared limit: locked everywhere,
    // the right password included.
    let res = interact(&b, "/sign-in", wrong.clone()).await.unwrap();
    expect_error(res, 400, "session.verification_blocked_too_many_attempts").await;
    let right = json!({"identifier": "bob", "password": "right-password"});
    let res = interact(&a, "/sign-in", right).await.unwrap();
    expect_error(res, 400, "session.verification_blocked_too_many_attempts").await;
    a.stop().await;
    b.stop().await;
}
