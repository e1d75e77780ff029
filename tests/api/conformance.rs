//! Logto conformance beyond the per-route tests: imported password digests, the legacy
//! `event` field, the caller's address behind a trusted proxy, organization applications,
//! recent-logs windows, bodies with fields hookline would ignore, and the deliberate
//! differences (redirects logged with their location, `config.retries` as a cap). Each drives
//! the real HTTP API against real receivers and a real SQLite file.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

/// An application's HTTP Basic sign-in; the status and body.
async fn sign_in(app: &TestApp, creds: &(String, String), who: &str, pw: &str) -> (u16, Value) {
    let res = app
        .client
        .post(format!("{}/api/interactions/sign-in", app.base))
        .basic_auth(&creds.0, Some(&creds.1))
        .json(&json!({"identifier": who, "password": pw}))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn application(app: &TestApp) -> (String, String) {
    let res = app
        .api(Method::POST, "/applications")
        .json(&json!({"name": "shop", "type": "Traditional"}))
        .send()
        .await
        .unwrap();
    // Logto answers a new application with 200.
    assert_eq!(res.status(), 200);
    let created: Value = res.json().await.unwrap();
    (
        created["id"].as_str().unwrap().to_owned(),
        created["secret"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn imported_digests_sign_in_and_are_rehashed_with_argon2id() {
    let app = TestApp::spawn().await;
    let creds = application(&app).await;
    // Digests of "password" (coreutils), and a bcrypt one made here.
    let bcrypt = bcrypt::hash("password", 4).unwrap();
    let imports = [
        (
            "md5user",
            "MD5",
            "5f4dcc3b5aa765d61d8327deb882cf99".to_owned(),
        ),
        (
            "sha1user",
            "SHA1",
            "5baa61e4c9b93f3f0682250b6cf8331b7ee68fd8".to_owned(),
        ),
        (
            "sha256user",
            "SHA256",
            "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8".to_owned(),
        ),
        ("bcryptuser", "Bcrypt", bcrypt),
    ];
    for (username, alg, digest) in &imports {
        let res = app
            .api(Method::POST, "/users")
            .json(
                &json!({"username": username, "passwordDigest": digest, "passwordAlgorithm": alg}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{alg}");
        let user: Value = res.json().await.unwrap();
        assert_eq!(user["hasPassword"], true, "{alg}");
        assert_eq!(
            sign_in(&app, &creds, username, "wrong").await.0,
            422,
            "{alg}"
        );
        assert_eq!(
            sign_in(&app, &creds, username, "password").await.0,
            200,
            "{alg}"
        );
        // Still signs in after the re-hash.
        assert_eq!(
            sign_in(&app, &creds, username, "password").await.0,
            200,
            "{alg}"
        );
    }
    // The database file no longer holds the imported digests: each was replaced by argon2id.
    let dir = app.stop().await;
    let text = dir.stored_text().await;
    assert!(text.contains("$argon2id$"));
    let app = TestApp::spawn_in(dir, |_| {}).await;
    let users = app.get_json("/users?search=user").await;
    for u in users.as_array().unwrap() {
        let id = u["id"].as_str().unwrap();
        assert_eq!(u["hasPassword"], true, "{id}");
    }
    // Legacy digests are refused with a clear code, not dropped.
    let res = app
        .api(Method::POST, "/users")
        .json(&json!({"username": "old", "passwordDigest": "[\"md5\",\"\",[],\"x\"]", "passwordAlgorithm": "Legacy"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 422, "user.password_algorithm_not_supported").await;
    app.stop().await;
}

#[tokio::test]
async fn fields_logto_acts_on_are_refused_naming_them_and_others_ignored() {
    let app = TestApp::spawn().await;
    for (path, body, field) in [
        (
            "/applications",
            json!({"name": "x", "type": "SPA", "oidcClientMetadata": {"redirectUris": []}}),
            "oidcClientMetadata",
        ),
        (
            "/resources",
            json!({"name": "r", "indicator": "https://r.test", "isDefault": true}),
            "isDefault",
        ),
        (
            "/organization-roles",
            json!({"name": "r", "resourceScopeIds": ["s1"]}),
            "resourceScopeIds",
        ),
    ] {
        let res = app
            .api(Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap();
        let err = expect_error(res, 400, "guard.invalid_input").await;
        assert!(err["details"].as_str().unwrap().contains(field), "{err}");
    }
    // Fields Logto's guards strip are ignored: an object read back and sent again goes through.
    let org = app
        .send_json(
            Method::POST,
            "/organizations",
            json!({"name": "o", "isBig": true}),
        )
        .await;
    assert!(org.get("isBig").is_none());
    let mut again = org.clone();
    again["name"] = json!("o2");
    let res = app
        .api(
            Method::PATCH,
            &format!("/organizations/{}", org["id"].as_str().unwrap()),
        )
        .json(&again)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["name"], "o2");
    // Logto's not-found codes for its schema routes: PATCH `entity.not_exists`, DELETE
    // `entity.not_found`; GET `entity.not_exists_with_id`.
    for base in [
        "/organizations",
        "/organization-roles",
        "/organization-scopes",
    ] {
        let path = format!("{base}/nope");
        let res = app
            .api(Method::PATCH, &path)
            .json(&json!({"name": "n"}))
            .send()
            .await
            .unwrap();
        expect_error(res, 404, "entity.not_exists").await;
        let res = app.api(Method::DELETE, &path).send().await.unwrap();
        expect_error(res, 404, "entity.not_found").await;
        let res = app.api(Method::GET, &path).send().await.unwrap();
        expect_error(res, 404, "entity.not_exists_with_id").await;
    }
    // Adding needs at least one id (Logto's `.nonempty()`); replacing with none is fine.
    let members = format!("/organizations/{}/users", org["id"].as_str().unwrap());
    let res = app
        .api(Method::POST, &members)
        .json(&json!({"userIds": []}))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "guard.invalid_input").await;
    let res = app
        .api(Method::PUT, &members)
        .json(&json!({"userIds": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    // `""` is accepted in PATCH /users/:userId (Logto's guard takes it) and clears the field.
    let user = app
        .send_json(
            Method::POST,
            "/users",
            json!({"username": "ann", "name": "Ann", "primaryEmail": "a@b.co"}),
        )
        .await;
    let path = format!("/users/{}", user["id"].as_str().unwrap());
    let res = app
        .api(Method::PATCH, &path)
        .json(&json!({"name": "", "primaryEmail": "", "avatar": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let patched: Value = res.json().await.unwrap();
    assert_eq!(
        (&patched["name"], &patched["primaryEmail"]),
        (&Value::Null, &Value::Null)
    );
    assert_eq!(patched["hasPassword"], false);
    app.stop().await;
}

#[tokio::test]
async fn the_legacy_event_field_counts_only_while_events_is_empty() {
    let app = TestApp::spawn().await;
    let both = Receiver::start().await;
    let legacy = Receiver::start().await;
    app.send_json(
        Method::POST,
        "/hooks",
        json!({"event": "User.Created", "events": ["Role.Created"], "config": {"url": both.url()}}),
    )
    .await;
    app.send_json(
        Method::POST,
        "/hooks",
        json!({"event": "User.Created", "config": {"url": legacy.url()}}),
    )
    .await;
    app.publish(json!({"event": "User.Created", "data": {"id": "u1"}}))
        .await;
    app.publish(json!({"event": "Role.Created", "data": {"id": "r1"}}))
        .await;
    let got = legacy.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["event"], "User.Created");
    let got = both.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["event"], "Role.Created");
    both.assert_stays_at(1, Duration::from_millis(300)).await;
    legacy.assert_stays_at(1, Duration::from_millis(300)).await;
    app.stop().await;
}

#[tokio::test]
async fn data_events_name_the_caller_behind_a_trusted_proxy() {
    let app = TestApp::spawn_with(|a| a.trusted_proxies = "127.0.0.1".parse().unwrap()).await;
    let events = Receiver::start().await;
    app.create_hook(&["Role.Created"], &events.url()).await;
    let res = app
        .api(Method::POST, "/roles")
        .header("x-forwarded-for", "198.51.100.7")
        .json(&json!({"name": "r", "description": "d"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let got = events.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["ip"], "198.51.100.7");
    app.stop().await;
    // Without the flag the header is not believed.
    let app = TestApp::spawn().await;
    let events = Receiver::start().await;
    app.create_hook(&["Role.Created"], &events.url()).await;
    app.api(Method::POST, "/roles")
        .header("x-forwarded-for", "198.51.100.7")
        .json(&json!({"name": "r", "description": "d"}))
        .send()
        .await
        .unwrap();
    let got = events.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["ip"], "127.0.0.1");
    app.stop().await;
}

#[tokio::test]
async fn organization_applications_fire_membership_events() {
    let app = TestApp::spawn().await;
    let events = Receiver::start().await;
    app.create_hook(&["Organization.Membership.Updated"], &events.url())
        .await;
    let org = app
        .send_json(Method::POST, "/organizations", json!({"name": "Acme"}))
        .await;
    let oid = org["id"].as_str().unwrap();
    let m2m = app
        .send_json(
            Method::POST,
            "/applications",
            json!({"name": "bot", "type": "MachineToMachine"}),
        )
        .await;
    let spa = app
        .send_json(
            Method::POST,
            "/applications",
            json!({"name": "web", "type": "SPA"}),
        )
        .await;
    let path = format!("/organizations/{oid}/applications");
    let res = app
        .api(Method::POST, &path)
        .json(&json!({"applicationIds": [m2m["id"]]}))
        .send()
        .await
        .unwrap();
    // 201 without a body, as Logto answers it.
    assert_eq!(res.status(), 201);
    assert_eq!(res.text().await.unwrap(), "");
    let listed = app.get_json(&path).await;
    assert_eq!(listed[0]["id"], m2m["id"]);
    // Only machine-to-machine applications join organizations.
    let res = app
        .api(Method::POST, &path)
        .json(&json!({"applicationIds": [spa["id"]]}))
        .send()
        .await
        .unwrap();
    expect_error(res, 422, "entity.db_constraint_violated").await;
    let res = app
        .api(Method::PUT, &path)
        .json(&json!({"applicationIds": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = app
        .api(
            Method::DELETE,
            &format!("{path}/{}", m2m["id"].as_str().unwrap()),
        )
        .send()
        .await
        .unwrap();
    expect_error(res, 404, "entity.not_found").await;
    let got: Vec<Value> = events
        .wait_for(2, Duration::from_secs(10))
        .await
        .iter()
        .map(Received::json)
        .collect();
    assert_eq!(got[0]["addedApplicationIds"], json!([m2m["id"]]));
    assert_eq!(got[0]["matchedRoute"], "/organizations/:id/applications");
    assert_eq!(got[1]["removedApplicationIds"], json!([m2m["id"]]));
    assert_eq!(got[1]["organizationId"], oid);
    events.assert_stays_at(2, Duration::from_millis(300)).await;
    app.stop().await;
}

#[tokio::test]
async fn recent_logs_windows_follow_logto() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::start().await;
    let hook = app.create_hook(&["User.Created"], &receiver.url()).await;
    let id = hook["id"].as_str().unwrap();
    app.publish(json!({"event": "User.Created", "data": {}}))
        .await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    let logs = app
        .poll_json(
            &format!("/hooks/{id}/recent-logs"),
            Duration::from_secs(10),
            |v: &Value| v.as_array().is_some_and(|a| !a.is_empty()),
        )
        .await;
    assert_eq!(logs.as_array().unwrap().len(), 1);
    // One bound alone is no 24-hour window: `start_time=0` reaches back to the epoch.
    let all = app
        .get_json(&format!("/hooks/{id}/recent-logs?start_time=0"))
        .await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    let none = app
        .get_json(&format!("/hooks/{id}/recent-logs?end_time=1000"))
        .await;
    assert_eq!(none, json!([]));
    let res = app
        .api(
            Method::GET,
            &format!("/hooks/{id}/recent-logs?start_time=5&end_time=4"),
        )
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "log.invalid_time_window").await;
    // Always paginated, as Logto's recent-logs.
    let res = app
        .api(Method::GET, &format!("/hooks/{id}/recent-logs"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["total-number"], "1");
    app.stop().await;
}

#[tokio::test]
async fn redirects_are_logged_with_their_location_and_retries_cap_a_hook() {
    let app = TestApp::spawn_with(|a| a.retry_schedule = "50ms,50ms,50ms".parse().unwrap()).await;
    let moved = Receiver::start().await;
    moved.set_default(Reply::status(301).header("location", "https://new.example.com/hook"));
    let hook = app
        .send_json(
            Method::POST,
            "/hooks",
            json!({"events": ["User.Created"], "config": {"url": moved.url(), "retries": 1}}),
        )
        .await;
    let id = hook["id"].as_str().unwrap();
    app.publish(json!({"event": "User.Created", "data": {}}))
        .await;
    // `retries: 1`: the first attempt and one retry, though the schedule has three.
    moved.wait_for(2, Duration::from_secs(10)).await;
    moved.assert_stays_at(2, Duration::from_millis(600)).await;
    let logs = app
        .poll_json(
            &format!("/hooks/{id}/recent-logs"),
            Duration::from_secs(10),
            |v: &Value| v.as_array().is_some_and(|a| a.len() == 2),
        )
        .await;
    let error = logs[0]["payload"]["error"].as_str().unwrap();
    assert!(error.contains("https://new.example.com/hook"), "{error}");
    assert_eq!(logs[0]["payload"]["response"]["statusCode"], 301);
    app.stop().await;
}

#[tokio::test]
async fn organization_invitations_add_the_member_with_its_roles_when_accepted() {
    let app = TestApp::spawn().await;
    let events = Receiver::start().await;
    app.create_hook(&["Organization.Membership.Updated"], &events.url())
        .await;
    let org = app
        .send_json(Method::POST, "/organizations", json!({"name": "Acme"}))
        .await;
    let oid = org["id"].as_str().unwrap().to_owned();
    let role = app
        .send_json(
            Method::POST,
            "/organization-roles",
            json!({"name": "editor"}),
        )
        .await;
    let ann = app
        .send_json(
            Method::POST,
            "/users",
            json!({"username": "ann", "primaryEmail": "ann@example.com"}),
        )
        .await;
    let bob = app
        .send_json(
            Method::POST,
            "/users",
            json!({"username": "bob", "primaryEmail": "bob@example.com"}),
        )
        .await;
    let later = hookline::clock::now_ms() + 3_600_000;
    let invite = |invitee: &str, extra: Value| {
        let mut body = json!({
            "inviterId": bob["id"], "invitee": invitee, "organizationId": oid,
            "expiresAt": later, "organizationRoleIds": [role["id"]]
        });
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        app.api(Method::POST, "/organization-invitations")
            .json(&body)
            .send()
    };
    let res = invite("Ann@Example.com", json!({})).await.unwrap();
    assert_eq!(res.status(), 201);
    let inv: Value = res.json().await.unwrap();
    let keys: Vec<&str> = inv
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        [
            "tenantId",
            "id",
            "inviterId",
            "invitee",
            "acceptedUserId",
            "organizationId",
            "status",
            "createdAt",
            "updatedAt",
            "expiresAt",
            "organizationRoles"
        ]
    );
    assert_eq!(inv["status"], "Pending");
    assert_eq!(
        inv["organizationRoles"],
        json!([{"id": role["id"], "name": "editor"}])
    );
    let iid = inv["id"].as_str().unwrap().to_owned();
    // One pending invitation per invitee and organization; no mailer; no past expiry.
    expect_error(
        invite("ann@example.com", json!({})).await.unwrap(),
        422,
        "entity.unique_integrity_violation",
    )
    .await;
    let err = expect_error(
        invite(
            "x@example.com",
            json!({"messagePayload": {"link": "https://x"}}),
        )
        .await
        .unwrap(),
        400,
        "guard.invalid_input",
    )
    .await;
    assert!(err["details"].as_str().unwrap().contains("messagePayload"));
    expect_error(
        invite("x@example.com", json!({"expiresAt": 1}))
            .await
            .unwrap(),
        400,
        "request.invalid_input",
    )
    .await;
    // Listed, filtered, and one by one.
    let listed = app
        .get_json(&format!(
            "/organization-invitations?organizationId={oid}&invitee=ANN@example.com"
        ))
        .await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(
        app.get_json(&format!("/organization-invitations/{iid}"))
            .await,
        inv
    );
    // Accepting needs the invitee's own account.
    let status = format!("/organization-invitations/{iid}/status");
    let res = app
        .api(Method::PUT, &status)
        .json(&json!({"status": "Accepted"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 422, "request.invalid_input").await;
    let res = app
        .api(Method::PUT, &status)
        .json(&json!({"status": "Accepted", "acceptedUserId": bob["id"]}))
        .send()
        .await
        .unwrap();
    expect_error(res, 422, "request.invalid_input").await;
    let res = app
        .api(Method::PUT, &status)
        .json(&json!({"status": "Accepted", "acceptedUserId": ann["id"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(
        (&accepted["status"], &accepted["acceptedUserId"]),
        (&json!("Accepted"), &ann["id"])
    );
    let ev = events.wait_for(1, Duration::from_secs(10)).await[0].json();
    assert_eq!(ev["organizationId"], oid.as_str());
    assert_eq!(ev["addedUserIds"], json!([ann["id"]]));
    assert_eq!((&ev["method"], &ev["status"]), (&json!("PUT"), &json!(200)));
    assert_eq!(ev["matchedRoute"], "/organization-invitations/:id/status");
    let roles = app
        .get_json(&format!(
            "/organizations/{oid}/users/{}/roles",
            ann["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(roles[0]["id"], role["id"]);
    // Members are listed as Logto's `userWithOrganizationRolesGuard`: user-info fields with
    // their organization roles, no `hasPassword`.
    let members = app.get_json(&format!("/organizations/{oid}/users")).await;
    assert_eq!(members[0]["id"], ann["id"]);
    assert_eq!(
        members[0]["organizationRoles"],
        json!([{"id": role["id"], "name": "editor"}])
    );
    assert!(members[0].get("hasPassword").is_none());
    // Settled: no second change; a member is not invited again.
    let res = app
        .api(Method::PUT, &status)
        .json(&json!({"status": "Revoked"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 422, "request.invalid_input").await;
    expect_error(
        invite("ann@example.com", json!({})).await.unwrap(),
        422,
        "request.invalid_input",
    )
    .await;
    // Revoke and delete another.
    let other: Value = invite("cat@example.com", json!({}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = format!(
        "/organization-invitations/{}",
        other["id"].as_str().unwrap()
    );
    let res = app
        .api(Method::PUT, &format!("{path}/status"))
        .json(&json!({"status": "Revoked"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "Revoked");
    assert_eq!(
        app.api(Method::DELETE, &path)
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    expect_error(
        app.api(Method::GET, &path).send().await.unwrap(),
        404,
        "entity.not_exists_with_id",
    )
    .await;
    events.assert_stays_at(1, Duration::from_millis(300)).await;
    app.stop().await;
}

#[tokio::test]
async fn identity_lists_paginate_where_logto_always_does() {
    let app = TestApp::spawn().await;
    for name in ["first", "second", "third"] {
        app.send_json(Method::POST, "/organizations", json!({"name": name}))
            .await;
        app.send_json(Method::POST, "/organization-scopes", json!({"name": name}))
            .await;
    }
    // Organizations: always paginated (20 a page by default), newest first.
    let res = app.api(Method::GET, "/organizations").send().await.unwrap();
    assert_eq!(res.headers()["total-number"], "3");
    assert_eq!(
        res.headers().get_all("link").iter().count(),
        2,
        "first and last"
    );
    let orgs: Value = res.json().await.unwrap();
    let names: Vec<&str> = orgs
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["third", "second", "first"]);
    // Organization scopes: only when asked.
    let res = app
        .api(Method::GET, "/organization-scopes")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("total-number").is_none());
    let res = app
        .api(Method::GET, "/organization-scopes?page=2&page_size=2")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["total-number"], "3");
    let page: Value = res.json().await.unwrap();
    assert_eq!(page.as_array().unwrap().len(), 1);
    assert_eq!(page[0]["name"], "first");
    // A linked list (a user's roles) pages too.
    let user = app
        .send_json(Method::POST, "/users", json!({"username": "u"}))
        .await;
    let mut roles = Vec::new();
    for name in ["a", "b", "c"] {
        let role = app
            .send_json(
                Method::POST,
                "/roles",
                json!({"name": name, "description": name}),
            )
            .await;
        roles.push(role["id"].clone());
    }
    let path = format!("/users/{}/roles", user["id"].as_str().unwrap());
    app.send_json(Method::POST, &path, json!({"roleIds": roles}))
        .await;
    let res = app
        .api(Method::GET, &format!("{path}?page=2&page_size=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["total-number"], "3");
    let page: Value = res.json().await.unwrap();
    assert_eq!(page.as_array().unwrap().len(), 1);
    let res = app
        .api(Method::GET, "/roles?page_size=0")
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "guard.invalid_pagination").await;
    app.stop().await;
}

#[tokio::test]
async fn member_roles_are_named_by_id_or_name_added_or_replaced() {
    let app = TestApp::spawn().await;
    let org = app
        .send_json(Method::POST, "/organizations", json!({"name": "Acme"}))
        .await;
    let oid = org["id"].as_str().unwrap();
    let user = app
        .send_json(Method::POST, "/users", json!({"username": "u"}))
        .await;
    let uid = user["id"].as_str().unwrap();
    let editor = app
        .send_json(
            Method::POST,
            "/organization-roles",
            json!({"name": "editor"}),
        )
        .await;
    let viewer = app
        .send_json(
            Method::POST,
            "/organization-roles",
            json!({"name": "viewer"}),
        )
        .await;
    let path = format!("/organizations/{oid}/users/{uid}/roles");
    // Not a member yet.
    let res = app
        .api(Method::POST, &path)
        .json(&json!({"organizationRoleNames": ["editor"]}))
        .send()
        .await
        .unwrap();
    expect_error(res, 422, "organization.require_membership").await;
    app.send_json(
        Method::POST,
        &format!("/organizations/{oid}/users"),
        json!({"userIds": [uid]}),
    )
    .await;
    let res = app
        .api(Method::POST, &path)
        .json(&json!({"organizationRoleNames": ["editor"], "organizationRoleIds": [editor["id"]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"organizationRoleIds": [editor["id"]]})
    );
    let res = app
        .api(Method::POST, &path)
        .json(&json!({"organizationRoleNames": ["nobody"]}))
        .send()
        .await
        .unwrap();
    expect_error(res, 422, "organization.role_names_not_found").await;
    // PUT: exactly these, no body.
    let res = app
        .api(Method::PUT, &path)
        .json(&json!({"organizationRoleNames": ["viewer"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let held = app.get_json(&path).await;
    assert_eq!(held.as_array().unwrap().len(), 1);
    assert_eq!(held[0]["id"], viewer["id"]);
    app.stop().await;
}
