//! Issue 13: hostile clients, odd input and a failing disk. Slow clients, the connection cap
//! and shutdown are driven here over raw TCP against the real server.

use crate::helpers::*;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn host_port(base: &str) -> &str {
    base.trim_start_matches("http://")
}

/// A connection that sent the start of a request head and then nothing (a slow-loris).
async fn half_sent_request(base: &str) -> TcpStream {
    let mut stream = TcpStream::connect(host_port(base)).await.unwrap();
    stream
        .write_all(b"POST /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bea")
        .await
        .unwrap();
    stream
}

/// Reads until the server closes the connection; what it sent. Fails after `within`.
async fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let mut got = Vec::new();
    let read = tokio::time::timeout(within, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "the server kept the connection open");
    String::from_utf8_lossy(&got).into_owned()
}

#[tokio::test]
async fn a_half_sent_request_does_not_hold_up_shutdown() {
    let db = TestDb::new().await;
    let args = [
        "--admin-token",
        TOKEN,
        "--header-read-timeout",
        "5m",
        "--shutdown-timeout",
        "1s",
    ];
    let server = Process::start(&db, &args).await;
    let _slow = half_sent_request(&server.base).await;
    let mut idle = TcpStream::connect(host_port(&server.base)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(idle.read(&mut buf).await.unwrap() > 0, "answered");
    let started = Instant::now();
    assert_eq!(server.terminate().await.code(), Some(0));
    // The slow client would hold it for 5 minutes; --shutdown-timeout ends it (a loose
    // bound: only a hang fails it).
    assert!(started.elapsed() < Duration::from_secs(25));
    // The lock is released: the next process starts on the same database.
    let next = Process::start(&db, &args).await;
    assert_eq!(next.terminate().await.code(), Some(0));
}

#[tokio::test]
async fn slow_heads_and_idle_keep_alive_connections_are_closed() {
    let app = TestApp::spawn_with(|a| a.header_read_timeout = Duration::from_millis(300)).await;
    let mut slow = half_sent_request(&app.base).await;
    let answer = read_until_closed(&mut slow, Duration::from_secs(10)).await;
    assert!(!answer.contains("202"), "{answer}");

    let mut idle = TcpStream::connect(host_port(&app.base)).await.unwrap();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_until_closed(&mut idle, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn a_body_slower_than_the_body_read_timeout_is_answered_408() {
    let app = TestApp::spawn_with(|a| a.body_read_timeout = Duration::from_millis(300)).await;
    let mut stream = TcpStream::connect(host_port(&app.base)).await.unwrap();
    stream
        .write_all(
            format!(
                "POST /api/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
                 Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"event\":"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let answer = read_until_closed(&mut stream, Duration::from_secs(10)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request.timeout\""), "{answer}");
}

#[tokio::test]
async fn connections_over_the_cap_still_reach_the_health_routes() {
    let app = TestApp::spawn_with(|a| {
        a.max_connections = 4;
        a.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(half_sent_request(&app.base).await);
    }
    // Accepting is asynchronous: wait until the cap is visibly reached.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = reqwest::Client::new()
            .get(format!("{}/api/hooks", app.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        if res.status() == 503 {
            assert_eq!(res.headers()["retry-after"], "1");
            expect_error(res, 503, "server.busy").await;
            break;
        }
        assert!(Instant::now() < deadline, "the cap was never reached");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let health = reqwest::Client::new()
        .get(format!("{}/healthz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let ready = reqwest::Client::new()
        .get(format!("{}/readyz", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(ready.status(), 200);

    // The slots come back when the slow clients go.
    drop(held);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let res = reqwest::Client::new()
            .get(format!("{}/api/hooks", app.base))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        if res.status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "slots were not given back");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ------------------------------------------------------------ input accepted but wrong

/// `{method} /api{path}` with a raw body.
async fn send_raw(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    body: &str,
) -> reqwest::Response {
    app.api(method, path)
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn headers_the_engine_owns_are_refused_at_save_naming_the_header() {
    let app = TestApp::spawn().await;
    for name in [
        "Content-Length",
        "transfer-encoding",
        "Connection",
        "Host",
        "webhook-signature",
    ] {
        let res = app
            .api(reqwest::Method::POST, "/hooks")
            .json(&serde_json::json!({"name": "h", "events": ["User.Created"],
                "config": {"url": "https://example.com/h", "headers": {name: "2"}}}))
            .send()
            .await
            .unwrap();
        let body = expect_error(res, 400, "guard.invalid_input").await;
        assert!(body["message"].as_str().unwrap().contains(name), "{body}");
    }
    let res = app
        .api(reqwest::Method::POST, "/hooks")
        .json(&serde_json::json!({"name": "h", "events": ["User.Created"],
            "config": {"url": "https://example.com/h", "headers": {"X-Tenant": "a", "x-tenant": "b"}}}))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "guard.invalid_input").await;
    assert_eq!(app.get_json("/hooks").await, serde_json::json!([]));
}

#[tokio::test]
async fn headers_the_engine_owns_stored_earlier_are_not_sent() {
    let app = TestApp::spawn().await;
    if !app.dir.is_sqlite() {
        return; // the row is rewritten by hand; the send path is the same on both backends
    }
    let receiver = Receiver::start().await;
    let hook = app.create_hook(&["User.Created"], &receiver.url()).await;
    let id = hook["id"].as_str().unwrap().to_owned();
    let dir = app.stop().await;
    // As a hook saved before the rule.
    let config = serde_json::json!({"url": receiver.url(),
        "headers": {"Content-Length": "2", "Connection": "close", "X-Tenant": "acme"}});
    let conn = rusqlite::Connection::open(dir.path().join("hookline.db")).unwrap();
    let changed = conn
        .execute(
            "UPDATE hooks SET config = ?1 WHERE id = ?2",
            rusqlite::params![config.to_string(), id],
        )
        .unwrap();
    assert_eq!(changed, 1);
    drop(conn);

    let app = TestApp::spawn_in(dir, |_| {}).await;
    assert_eq!(
        app.get_json(&format!("/hooks/{id}")).await["config"],
        config
    );
    app.publish(serde_json::json!({"event": "User.Created", "data": {"n": 1}}))
        .await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["data"]["n"], 1, "the whole body arrived");
    assert_eq!(got[0].header("x-tenant"), "acme");
    assert_eq!(
        got[0].header("content-length"),
        got[0].body.len().to_string()
    );
}

#[tokio::test]
async fn bodies_that_are_not_objects_are_refused() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let hook = app.create_hook(&["User.Created"], &receiver.url()).await;
    let id = hook["id"].as_str().unwrap();
    let positional = r#"["h", ["User.Created"], {"url": "https://example.com/h"}]"#;
    for (method, path, body) in [
        (reqwest::Method::POST, "/hooks".to_owned(), positional),
        (reqwest::Method::PATCH, format!("/hooks/{id}"), "[]"),
        (
            reqwest::Method::POST,
            "/events".to_owned(),
            r#"[{"event": "User.Created"}]"#,
        ),
        (reqwest::Method::POST, "/users".to_owned(), r#""alice""#),
        (reqwest::Method::POST, "/roles".to_owned(), "42"),
    ] {
        let res = send_raw(&app, method.clone(), &path, body).await;
        let err = expect_error(res, 400, "guard.invalid_input").await;
        assert!(
            err["message"]
                .as_str()
                .unwrap()
                .contains("must be a JSON object"),
            "{method} {path}: {err}"
        );
    }
    assert_eq!(app.get_json("/hooks").await.as_array().unwrap().len(), 1);
    assert_eq!(
        app.get_json(&format!("/hooks/{id}")).await["name"],
        hook["name"]
    );
    receiver
        .assert_stays_at(0, Duration::from_millis(300))
        .await;
}

#[tokio::test]
async fn a_created_at_that_is_not_a_timestamp_is_refused() {
    let app = TestApp::spawn().await;
    let res = send_raw(
        &app,
        reqwest::Method::POST,
        "/events",
        r#"{"event": "User.Created", "createdAt": "yesterday"}"#,
    )
    .await;
    let err = expect_error(res, 400, "guard.invalid_input").await;
    assert!(
        err["message"].as_str().unwrap().contains("createdAt"),
        "{err}"
    );
    let res = send_raw(
        &app,
        reqwest::Method::POST,
        "/events",
        r#"{"event": "User.Created", "createdAt": "2026-01-02T03:04:05.678+01:00"}"#,
    )
    .await;
    assert_eq!(res.status(), 202);
}

#[tokio::test]
async fn numbers_reach_receivers_exactly_as_written() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_hook(&["User.Created", "User.Data.Updated"], &receiver.url())
        .await;
    let data = r#"{"id":12345678901234567890123,"price":1.10,"tiny":1e-400,"huge":1E400,"neg":-0.0,"exp":2.50e+3}"#;
    let res = send_raw(
        &app,
        reqwest::Method::POST,
        "/events",
        &format!(r#"{{"event":"User.Created","data":{data}}}"#),
    )
    .await;
    assert_eq!(res.status(), 202);
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    let body = String::from_utf8_lossy(&got[0].body).into_owned();
    // Every digit as written; only an exponent's spelling is made canonical (`E` → `e`, an
    // explicit sign), which RFC 8259 §6 reads as the same number.
    let canonical = data.replace("1E400", "1e+400");
    assert!(body.contains(&format!(r#""data":{canonical}"#)), "{body}");

    // customData keeps them too, in the answer, when read back and in the event.
    let user = app
        .send_json(
            reqwest::Method::POST,
            "/users",
            serde_json::json!({"username": "numbers"}),
        )
        .await;
    let uid = user["id"].as_str().unwrap();
    let custom = r#"{"customData":{"balance":12345678901234567890123.45,"ratio":0.10}}"#;
    let res = send_raw(
        &app,
        reqwest::Method::PATCH,
        &format!("/users/{uid}/custom-data"),
        custom,
    )
    .await;
    assert_eq!(res.status(), 200);
    let answered = res.text().await.unwrap();
    assert!(
        answered.contains("12345678901234567890123.45") && answered.contains("0.10"),
        "{answered}"
    );
    let stored = app
        .api(reqwest::Method::GET, &format!("/users/{uid}/custom-data"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        stored,
        r#"{"balance":12345678901234567890123.45,"ratio":0.10}"#
    );
    let got = receiver.wait_for(3, Duration::from_secs(10)).await;
    let updated = got
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .find(|b| b.contains("User.Data.Updated"))
        .expect("User.Data.Updated arrives");
    assert!(updated.contains("12345678901234567890123.45"), "{updated}");
}

/// The id and secret of a new application, for interaction calls.
async fn new_application(app: &TestApp) -> (String, String) {
    let created = app
        .send_json(
            reqwest::Method::POST,
            "/applications",
            serde_json::json!({"name": "shop", "type": "Traditional"}),
        )
        .await;
    let field = |k: &str| created[k].as_str().unwrap().to_owned();
    (field("id"), field("secret"))
}

/// `POST /api/interactions/sign-in` as `application`; the status.
async fn sign_in_status(
    app: &TestApp,
    (id, secret): &(String, String),
    identifier: &str,
    password: &str,
) -> u16 {
    app.client
        .post(format!("{}/api/interactions/sign-in", app.base))
        .basic_auth(id, Some(secret))
        .json(&serde_json::json!({"identifier": identifier, "password": password}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn authorization_schemes_are_case_insensitive() {
    let app = TestApp::spawn().await;
    for value in [
        format!("BEARER {TOKEN}"),
        format!("bearer {TOKEN}"),
        format!("Bearer   {TOKEN} "),
    ] {
        let res = app
            .client
            .get(format!("{}/api/hooks", app.base))
            .header("authorization", &value)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{value}");
    }
    for value in [
        format!("Basic {TOKEN}"),
        format!("Bearer{TOKEN}"),
        "Bearer".to_owned(),
    ] {
        let res = app
            .client
            .get(format!("{}/api/hooks", app.base))
            .header("authorization", &value)
            .send()
            .await
            .unwrap();
        expect_error(res, 401, "auth.unauthorized").await;
    }
    // HTTP Basic for interactions: the scheme in any case.
    let (id, secret) = new_application(&app).await;
    let credentials = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    };
    for scheme in ["Basic", "basic", "BASIC"] {
        let res = app
            .client
            .post(format!("{}/api/interactions/sign-in", app.base))
            .header("authorization", format!("{scheme} {credentials}"))
            .json(&serde_json::json!({"identifier": "nobody", "password": "some-password"}))
            .send()
            .await
            .unwrap();
        // Authenticated as the application; the end user is unknown.
        expect_error(res, 422, "session.invalid_credentials").await;
    }
}

#[tokio::test]
async fn ipv6_ranges_that_embed_ipv4_and_trailing_dots_are_refused_at_save() {
    let app = TestApp::spawn_with(|a| a.allow_private_targets = false).await;
    for url in [
        "http://[::ffff:0:127.0.0.1]/",
        "http://[::ffff:0:a9fe:a9fe]/latest/meta-data",
        "http://[64:ff9b:1::a00:1]/",
        "http://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/",
        "http://localhost./",
        "http://127.0.0.1./",
    ] {
        let res = app
            .api(reqwest::Method::POST, "/hooks")
            .json(&serde_json::json!({"name": "h", "events": ["User.Created"], "config": {"url": url}}))
            .send()
            .await
            .unwrap();
        expect_error(res, 400, "hook.private_target_refused").await;
    }
}

// ------------------------------------------------------------ a database in trouble

#[tokio::test]
async fn a_write_lock_held_by_another_process_answers_503_and_not_ready() {
    let app = TestApp::spawn_with(|a| a.database_busy_timeout = Duration::from_millis(300)).await;
    if !app.dir.is_sqlite() {
        return; // SQLite's file lock; PostgreSQL's outages are tested in `nodes`.
    }
    let receiver = Receiver::start().await;
    app.create_hook(&["User.Created"], &receiver.url()).await;
    let blocker = rusqlite::Connection::open(app.dir.path().join("hookline.db")).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let started = Instant::now();
    let res = app
        .api(reqwest::Method::POST, "/events")
        .json(&serde_json::json!({"event": "User.Created", "data": {"n": 1}}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()
            .get("retry-after")
            .map(|v| v.to_str().unwrap()),
        Some("1")
    );
    expect_error(res, 503, "database.unavailable").await;
    // Bounded by --database-busy-timeout (a loose bound: only a hang fails it).
    assert!(started.elapsed() < Duration::from_secs(30));
    assert_eq!(app.get_public("/readyz").await.status(), 503);
    // Every kind of write: a hook, an identity change (with its event).
    let res = app
        .api(reqwest::Method::POST, "/hooks")
        .json(&serde_json::json!({"name": "h", "events": ["User.Created"], "config": {"url": receiver.url()}}))
        .send()
        .await
        .unwrap();
    expect_error(res, 503, "database.unavailable").await;
    let res = app
        .api(reqwest::Method::POST, "/users")
        .json(&serde_json::json!({"username": "locked_out"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 503, "database.unavailable").await;

    blocker.execute_batch("ROLLBACK").unwrap();
    let accepted = app
        .publish(serde_json::json!({"event": "User.Created", "data": {"n": 2}}))
        .await;
    assert_eq!(accepted["deliveries"], 1);
    assert_eq!(app.get_public("/readyz").await.status(), 200);
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(
        got[0].json()["data"]["n"],
        2,
        "the refused event was not half-published"
    );
    receiver
        .assert_stays_at(1, Duration::from_millis(300))
        .await;
}

/// Publishes one event through the real binary's API; the status.
async fn publish_status(base: &str, n: u32) -> u16 {
    reqwest::Client::new()
        .post(format!("{base}/api/events"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"event": "User.Created", "data": {"n": n}}))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn ready_status(base: &str) -> u16 {
    reqwest::get(format!("{base}/readyz"))
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn a_database_file_deleted_or_replaced_under_the_process_refuses_writes() {
    let db = TestDb::new().await;
    if !db.is_sqlite() {
        return;
    }
    let file = db.path().join("hookline.db");
    let kept = db.path().join("kept.db");
    let server = Process::start(&db, &["--admin-token", TOKEN]).await;
    assert_eq!(publish_status(&server.base, 1).await, 202);

    // Deleted (a second name keeps the inode, to put it back afterwards).
    std::fs::hard_link(&file, &kept).unwrap();
    std::fs::remove_file(&file).unwrap();
    assert_eq!(publish_status(&server.base, 2).await, 503);
    assert_eq!(ready_status(&server.base).await, 503);
    assert!(server.stderr.lock().unwrap().contains("was deleted"));

    // Put back: the same file, so writes are taken again.
    std::fs::rename(&kept, &file).unwrap();
    assert_eq!(publish_status(&server.base, 3).await, 202);
    assert_eq!(ready_status(&server.base).await, 200);

    // Replaced by another file (a restore over it).
    let other = db.path().join("other.db");
    std::fs::copy(&file, &other).unwrap();
    std::fs::rename(&other, &file).unwrap();
    assert_eq!(publish_status(&server.base, 4).await, 503);
    assert_eq!(ready_status(&server.base).await, 503);
    assert!(server
        .stderr
        .lock()
        .unwrap()
        .contains("was replaced by another file"));
    assert_eq!(server.terminate().await.code(), Some(0));
}

/// Runs `hookline serve` on `url` with `extra` and, if it exits within 20 s, its exit code
/// and stderr; `None` if it is still running then (it is stopped).
fn run_briefly(url: &str, extra: &[&str]) -> Option<(i32, String)> {
    use std::io::Read;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_hookline"))
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--admin-token",
            TOKEN,
            "--database-url",
            url,
        ])
        .args(extra)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().unwrap() {
            let mut err = String::new();
            child
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            return Some((status.code().unwrap_or(-1), err));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

#[tokio::test]
async fn a_missing_database_next_to_an_old_ones_traces_is_refused_at_start() {
    let db = TestDb::new().await;
    if !db.is_sqlite() {
        return;
    }
    let server = Process::start(&db, &["--admin-token", TOKEN]).await;
    assert_eq!(publish_status(&server.base, 1).await, 202);
    assert_eq!(server.terminate().await.code(), Some(0));
    let file = db.path().join("hookline.db");
    std::fs::rename(&file, db.path().join("moved.db")).unwrap();

    let (code, stderr) = run_briefly(db.url(), &[]).expect("hookline refuses to start");
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("is missing") && stderr.contains("--create-database"),
        "{stderr}"
    );
    assert!(!file.exists(), "no empty database was created");

    // The explicit flag starts a new, empty one.
    let server = Process::start(&db, &["--admin-token", TOKEN, "--create-database"]).await;
    assert_eq!(server.get_json("/hooks").await, serde_json::json!([]));
    assert_eq!(server.terminate().await.code(), Some(0));
    // And a first start, with no traces, needs no flag.
    let fresh = TestDb::new().await;
    let server = Process::start(&fresh, &["--admin-token", TOKEN]).await;
    assert_eq!(server.terminate().await.code(), Some(0));
}

#[tokio::test]
async fn merged_custom_data_is_bounded_on_the_result() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    app.create_hook(&["User.Data.Updated"], &receiver.url())
        .await;
    let user = app
        .send_json(
            reqwest::Method::POST,
            "/users",
            serde_json::json!({"username": "growing"}),
        )
        .await;
    let uid = user["id"].as_str().unwrap();
    let piece =
        |i: usize| serde_json::json!({"customData": { format!("k{i}"): "x".repeat(15_000) }});
    let res = app
        .api(reqwest::Method::PATCH, &format!("/users/{uid}/custom-data"))
        .json(&piece(0))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    for i in 1..4 {
        let res = app
            .api(reqwest::Method::PATCH, &format!("/users/{uid}/custom-data"))
            .json(&piece(i))
            .send()
            .await
            .unwrap();
        let err = expect_error(res, 400, "guard.invalid_input").await;
        assert!(
            err["message"].as_str().unwrap().contains("customData"),
            "{err}"
        );
    }
    let stored = app.get_json(&format!("/users/{uid}/custom-data")).await;
    assert_eq!(
        stored.as_object().unwrap().keys().collect::<Vec<_>>(),
        ["k0"]
    );
    // Only the accepted change fired its event.
    receiver.wait_for(1, Duration::from_secs(10)).await;
    receiver
        .assert_stays_at(1, Duration::from_millis(300))
        .await;
}

#[tokio::test]
async fn an_email_has_one_spelling_whatever_its_unicode_form() {
    let app = TestApp::spawn().await;
    let precomposed = "jos\u{e9}@example.com"; // NFC
    let decomposed = "jose\u{301}@example.com"; // NFD: looks the same
    let created = app
        .api(reqwest::Method::POST, "/users")
        .json(&serde_json::json!({"primaryEmail": decomposed, "password": "a-good-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200);
    let user: serde_json::Value = created.json().await.unwrap();
    assert_eq!(user["primaryEmail"], precomposed, "stored in NFC");
    for other in [
        precomposed,
        "JOS\u{c9}@EXAMPLE.COM",
        "JOSE\u{301}@example.com",
    ] {
        let res = app
            .api(reqwest::Method::POST, "/users")
            .json(&serde_json::json!({"primaryEmail": other}))
            .send()
            .await
            .unwrap();
        expect_error(res, 422, "user.email_already_in_use").await;
    }
    // Sign-in with the other spelling finds the account.
    let application = new_application(&app).await;
    assert_eq!(
        sign_in_status(&app, &application, precomposed, "a-good-password").await,
        200
    );
    // Search in either form finds it.
    for term in ["jos\u{e9}", "jose\u{301}"] {
        let found = app
            .api(reqwest::Method::GET, "/users")
            .query(&[("search", term)])
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap();
        assert_eq!(found.as_array().unwrap().len(), 1, "{term}");
    }
}

#[tokio::test]
async fn the_shutdown_timeout_releases_sends_still_in_flight_and_exits_0() {
    let db = TestDb::new().await;
    let receiver = Receiver::start().await;
    receiver.set_default(Reply::status(200).delay(Duration::from_secs(30)));
    let args = [
        "--admin-token",
        TOKEN,
        "--allow-private-targets",
        "--request-timeout",
        "60s",
        "--shutdown-timeout",
        "1s",
    ];
    let server = Process::start(&db, &args).await;
    let hook = server
        .send_json(
            reqwest::Method::POST,
            "/hooks",
            serde_json::json!({"name": "slow", "events": ["User.Created"], "config": {"url": receiver.url()}}),
        )
        .await;
    assert!(hook["id"].is_string(), "{hook}");
    assert_eq!(publish_status(&server.base, 1).await, 202);
    receiver.wait_for(1, Duration::from_secs(10)).await; // held by the receiver
    let started = Instant::now();
    assert_eq!(server.terminate().await.code(), Some(0));
    // The send would hold it for 30 s (the request timeout allows 60 s); the shutdown timeout
    // ends it. A loose bound: only a hang fails it.
    assert!(started.elapsed() < Duration::from_secs(20));
    // Released, not left leased: the next start sends it again at once rather than after
    // the lease (3 × 60 s + 5 s).
    receiver.set_default(Reply::status(200));
    let server = Process::start(&db, &args).await;
    let got = receiver.wait_for(2, Duration::from_secs(15)).await;
    assert_eq!(got[1].json()["data"]["n"], 1);
    assert_eq!(got[0].header("webhook-id"), got[1].header("webhook-id"));
    assert_eq!(server.terminate().await.code(), Some(0));
}

#[tokio::test]
async fn emails_keyed_by_the_old_rule_are_re_keyed_once_at_start() {
    let app = TestApp::spawn().await;
    if !app.dir.is_sqlite() {
        return; // the re-key runs over the storage interface; one backend shows it
    }
    let user = app
        .send_json(
            reqwest::Method::POST,
            "/users",
            serde_json::json!({"primaryEmail": "zoe@example.com", "password": "a-good-password"}),
        )
        .await;
    let uid = user["id"].as_str().unwrap().to_owned();
    let dir = app.stop().await;
    // As a user registered before NFC keys: decomposed, keyed by lowercasing alone.
    let decomposed = "Zoe\u{308}@example.com";
    let conn = rusqlite::Connection::open(dir.path().join("hookline.db")).unwrap();
    conn.execute(
        "UPDATE users SET email_key = ?1, doc = json_set(doc, '$.primaryEmail', ?2) WHERE id = ?3",
        rusqlite::params![decomposed.to_lowercase(), decomposed, uid],
    )
    .unwrap();
    conn.execute("DELETE FROM settings WHERE key = 'email_keys_nfc'", [])
        .unwrap();
    drop(conn);

    let app = TestApp::spawn_in(dir, |_| {}).await;
    let stored = app.get_json(&format!("/users/{uid}")).await;
    assert_eq!(stored["primaryEmail"], "Zo\u{eb}@example.com");
    let application = new_application(&app).await;
    for spelling in ["zo\u{eb}@example.com", "zoe\u{308}@EXAMPLE.com"] {
        let status = sign_in_status(&app, &application, spelling, "a-good-password").await;
        assert_eq!(status, 200, "{spelling:?}");
    }
    let res = app
        .api(reqwest::Method::POST, "/users")
        .json(&serde_json::json!({"primaryEmail": "ZO\u{cb}@example.com"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 422, "user.email_already_in_use").await;
}
