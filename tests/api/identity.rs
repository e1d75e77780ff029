//! The identity core through HTTP: every route of the spec's table fires exactly its Logto
//! data event(s), with the call's fields and the response body as data; failed requests fire
//! nothing; a hook subscribed to other events gets nothing.

use crate::helpers::*;
use reqwest::Method;
use serde_json::{json, Value};
use std::time::Duration;

const UA: &str = "identity-test/1.0";

const DATA_EVENTS: &[&str] = &[
    "User.Created",
    "User.Deleted",
    "User.Data.Updated",
    "User.SuspensionStatus.Updated",
    "Role.Created",
    "Role.Deleted",
    "Role.Data.Updated",
    "Role.Scopes.Updated",
    "Scope.Created",
    "Scope.Deleted",
    "Scope.Data.Updated",
    "Organization.Created",
    "Organization.Deleted",
    "Organization.Data.Updated",
    "Organization.Membership.Updated",
    "OrganizationRole.Created",
    "OrganizationRole.Deleted",
    "OrganizationRole.Data.Updated",
    "OrganizationRole.Scopes.Updated",
    "OrganizationScope.Created",
    "OrganizationScope.Deleted",
    "OrganizationScope.Data.Updated",
];

/// An app with one hook on every data event and one on other events only.
struct World {
    app: TestApp,
    all: Receiver,
    other: Receiver,
    hook_id: String,
    seen: usize,
}

impl World {
    async fn start() -> Self {
        let app = TestApp::spawn().await;
        let all = Receiver::start().await;
        let other = Receiver::start().await;
        let hook = app.create_hook(DATA_EVENTS, &all.url()).await;
        app.create_hook(
            &["PostSignIn", "PostRegister", "Identifier.Lockout"],
            &other.url(),
        )
        .await;
        World {
            app,
            all,
            other,
            hook_id: hook["id"].as_str().unwrap().to_owned(),
            seen: 0,
        }
    }

    /// Calls the API with a user agent; returns the status and the JSON body (null if none).
    async fn call(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.app.api(method, path).header("user-agent", UA);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap()
        };
        (status, body)
    }

    /// Calls and asserts the status; returns the body.
    async fn ok(&self, method: Method, path: &str, body: Option<Value>, status: u16) -> Value {
        let (got, body) = self.call(method.clone(), path, body).await;
        assert_eq!(got, status, "{method} {path}: {body}");
        body
    }

    /// Waits for exactly the events `names` (in any order) after those seen so far, and
    /// returns their payloads in the order of `names`.
    async fn events(&mut self, names: &[&str]) -> Vec<Value> {
        let got = self
            .all
            .wait_for(self.seen + names.len(), Duration::from_secs(10))
            .await;
        let mut new: Vec<Value> = got[self.seen..].iter().map(Received::json).collect();
        self.seen += names.len();
        assert_eq!(new.len(), names.len(), "more events than expected: {new:?}");
        let mut out = Vec::new();
        for name in names {
            let i = new
                .iter()
                .position(|e| e["event"] == *name)
                .unwrap_or_else(|| panic!("no {name} among {new:?}"));
            out.push(new.remove(i));
        }
        out
    }

    async fn event(&mut self, name: &str) -> Value {
        self.events(&[name]).await.remove(0)
    }

    /// Nothing more arrives (a refused request fired nothing).
    async fn quiet(&self) {
        self.all
            .assert_stays_at(self.seen, Duration::from_millis(300))
            .await;
    }

    async fn finish(self) {
        self.quiet().await;
        assert_eq!(
            self.other.count(),
            0,
            "a hook on other events got something"
        );
        self.app.stop().await;
    }
}

/// Asserts a data event's payload: Logto's keys in order and the call's values.
#[allow(clippy::too_many_arguments)]
fn assert_payload(
    ev: &Value,
    hook_id: &str,
    name: &str,
    method: &str,
    path: &str,
    route: &str,
    status: u16,
    params: Value,
    extra: &[(&str, Value)],
    data: Option<&Value>,
) {
    let obj = ev.as_object().unwrap();
    let mut keys = vec![
        "event",
        "createdAt",
        "userAgent",
        "ip",
        "path",
        "method",
        "status",
        "params",
        "matchedRoute",
    ];
    keys.extend(extra.iter().map(|(k, _)| *k));
    if data.is_some() {
        keys.push("data");
    }
    keys.push("hookId");
    let got: Vec<&str> = obj.keys().map(String::as_str).collect();
    assert_eq!(got, keys, "{ev}");
    assert_eq!(ev["event"], name);
    assert!(ev["createdAt"].as_str().unwrap().ends_with('Z'), "{ev}");
    assert_eq!(ev["userAgent"], UA);
    assert_eq!(ev["ip"], "127.0.0.1");
    assert_eq!(ev["path"], path);
    assert_eq!(ev["method"], method);
    assert_eq!(ev["status"], status);
    assert_eq!(ev["params"], params);
    assert_eq!(ev["matchedRoute"], route);
    for (k, v) in extra {
        assert_eq!(&ev[*k], v, "{k} in {ev}");
    }
    if let Some(d) = data {
        assert_eq!(&ev["data"], d);
    }
    assert_eq!(ev["hookId"], hook_id);
}

#[tokio::test]
async fn user_routes_fire_their_events() {
    let mut w = World::start().await;
    let hook = w.hook_id.clone();

    // Create: the response is the user-info object, without the password.
    let user = w
        .ok(
            Method::POST,
            "/users",
            Some(json!({
                "username": "alice", "primaryEmail": "Alice@Example.com",
                "primaryPhone": "4915112345678", "name": "Alice", "password": "correct horse",
                "customData": {"plan": "free", "seats": 1}, "profile": {"nickname": "al"}
            })),
            200,
        )
        .await;
    let id = user["id"].as_str().unwrap().to_owned();
    // Logto's users have 12-character ids.
    assert_eq!(id.len(), 12);
    let fields: Vec<&str> = user
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        [
            "id",
            "username",
            "primaryEmail",
            "primaryPhone",
            "name",
            "avatar",
            "customData",
            "identities",
            "lastSignInAt",
            "createdAt",
            "updatedAt",
            "profile",
            "applicationId",
            "cimdClientId",
            "isSuspended",
            "hasPassword"
        ]
    );
    assert_eq!(user["hasPassword"], true);
    assert_eq!(user["cimdClientId"], Value::Null);
    assert!(!user.to_string().contains("correct horse"));
    let ev = w.event("User.Created").await;
    assert_payload(
        &ev,
        &hook,
        "User.Created",
        "POST",
        "/users",
        "/users",
        200,
        json!({}),
        &[],
        Some(&user),
    );
    assert_eq!(
        w.ok(Method::GET, &format!("/users/{id}"), None, 200).await,
        user
    );

    // PATCH replaces fields (null clears).
    let path = format!("/users/{id}");
    let patched = w
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"name": "Alice A.", "primaryPhone": null})),
            200,
        )
        .await;
    assert_eq!(patched["name"], "Alice A.");
    assert_eq!(patched["primaryPhone"], Value::Null);
    let ev = w.event("User.Data.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "User.Data.Updated",
        "PATCH",
        &path,
        "/users/:userId",
        200,
        json!({"userId": id}),
        &[],
        Some(&patched),
    );

    // custom-data is merged.
    let path = format!("/users/{id}/custom-data");
    let merged = w
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"customData": {"plan": "pro", "team": "a"}})),
            200,
        )
        .await;
    // Logto answers (and the event carries) the merged object alone.
    assert_eq!(merged, json!({"plan": "pro", "seats": 1, "team": "a"}));
    let ev = w.event("User.Data.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "User.Data.Updated",
        "PATCH",
        &path,
        "/users/:userId/custom-data",
        200,
        json!({"userId": id}),
        &[],
        Some(&merged),
    );
    assert_eq!(
        w.ok(Method::GET, &path, None, 200).await,
        json!({"plan": "pro", "seats": 1, "team": "a"})
    );

    // profile is merged.
    let path = format!("/users/{id}/profile");
    let profiled = w
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"profile": {"locale": "de"}})),
            200,
        )
        .await;
    assert_eq!(profiled, json!({"nickname": "al", "locale": "de"}));
    let ev = w.event("User.Data.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "User.Data.Updated",
        "PATCH",
        &path,
        "/users/:userId/profile",
        200,
        json!({"userId": id}),
        &[],
        Some(&profiled),
    );

    // password: the event carries the user, never the password.
    let path = format!("/users/{id}/password");
    let after = w
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"password": "battery staple"})),
            200,
        )
        .await;
    let ev = w.event("User.Data.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "User.Data.Updated",
        "PATCH",
        &path,
        "/users/:userId/password",
        200,
        json!({"userId": id}),
        &[],
        Some(&after),
    );
    assert!(!ev.to_string().contains("battery staple"));

    // is-suspended has its own event.
    let path = format!("/users/{id}/is-suspended");
    let suspended = w
        .ok(
            Method::PATCH,
            &path,
            Some(json!({"isSuspended": true})),
            200,
        )
        .await;
    assert_eq!(suspended["isSuspended"], true);
    let ev = w.event("User.SuspensionStatus.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "User.SuspensionStatus.Updated",
        "PATCH",
        &path,
        "/users/:userId/is-suspended",
        200,
        json!({"userId": id}),
        &[],
        Some(&suspended),
    );

    // Delete: 204, and the event carries the user as it was (user-info fields only, no
    // `hasPassword`), with `data` right after `ip` as Logto's route appends it.
    let path = format!("/users/{id}");
    w.ok(Method::DELETE, &path, None, 204).await;
    let ev = w.event("User.Deleted").await;
    let got: Vec<&str> = ev.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        got,
        [
            "event",
            "createdAt",
            "userAgent",
            "ip",
            "data",
            "path",
            "method",
            "status",
            "params",
            "matchedRoute",
            "hookId"
        ]
    );
    let mut as_was = suspended.clone();
    as_was.as_object_mut().unwrap().remove("hasPassword");
    assert_eq!(ev["data"], as_was);
    assert_eq!((&ev["status"], &ev["path"]), (&json!(204), &json!(path)));
    w.ok(Method::GET, &path, None, 404).await;
    w.finish().await;
}

#[tokio::test]
async fn refused_user_changes_fire_nothing_and_say_why() {
    let mut w = World::start().await;
    let alice = w
        .ok(Method::POST, "/users", Some(json!({"username": "alice", "primaryEmail": "alice@example.com", "primaryPhone": "123"})), 200)
        .await;
    w.event("User.Created").await;
    let bob = w
        .ok(
            Method::POST,
            "/users",
            Some(json!({"username": "bob"})),
            200,
        )
        .await;
    w.event("User.Created").await;
    let bob_path = format!("/users/{}", bob["id"].as_str().unwrap());

    // Conflicts: 422 with a code; emails regardless of case.
    for (body, code) in [
        (json!({"username": "alice"}), "user.username_already_in_use"),
        (
            json!({"primaryEmail": "ALICE@example.COM"}),
            "user.email_already_in_use",
        ),
        (json!({"primaryPhone": "123"}), "user.phone_already_in_use"),
    ] {
        let (status, err) = w.call(Method::POST, "/users", Some(body.clone())).await;
        assert_eq!(
            (status, err["code"].as_str().unwrap()),
            (422, code),
            "{body}"
        );
        let (status, err) = w.call(Method::PATCH, &bob_path, Some(body.clone())).await;
        assert_eq!(
            (status, err["code"].as_str().unwrap()),
            (422, code),
            "{body}"
        );
    }
    // A user may keep their own keys.
    w.ok(
        Method::PATCH,
        &format!("/users/{}", alice["id"].as_str().unwrap()),
        Some(json!({"username": "alice"})),
        200,
    )
    .await;
    w.event("User.Data.Updated").await;

    // Bad input: 400 with {code, message}.
    for body in [
        json!({"username": "9lives"}),
        json!({"primaryEmail": "not-an-email"}),
        json!({"primaryPhone": "+49 151"}),
        json!({"password": ""}),
        json!({"username": 42}),
        json!({"username": "u", "passwordDigest": "5f4dcc3b5aa765d61d8327deb882cf99"}),
        json!({"username": "u", "password": "pw", "passwordDigest": "5f4dcc3b5aa765d61d8327deb882cf99", "passwordAlgorithm": "MD5"}),
        json!({"username": "u", "passwordDigest": "not-hex", "passwordAlgorithm": "MD5"}),
        json!({"name": "x".repeat(129)}),
    ] {
        let (status, err) = w.call(Method::POST, "/users", Some(body.clone())).await;
        assert_eq!(status, 400, "{body}: {err}");
        assert!(
            err["code"].is_string() && err["message"].is_string(),
            "{err}"
        );
    }
    let res = w
        .app
        .api(Method::POST, "/users")
        .header("content-type", "application/json")
        .body("{\"username\": ")
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "request.malformed_json").await;

    // A path parameter that is not UTF-8: a JSON 400.
    let res = w.app.api(Method::GET, "/users/%FF").send().await.unwrap();
    expect_error(res, 400, "guard.invalid_input").await;

    // Unknown and impossible ids: 404.
    for path in ["/users/nope", &format!("/users/{}", "x".repeat(22))] {
        let (status, err) = w
            .call(Method::PATCH, path, Some(json!({"name": "x"})))
            .await;
        assert_eq!(
            (status, err["code"].as_str().unwrap()),
            (404, "entity.not_exists_with_id")
        );
        assert_eq!(w.call(Method::DELETE, path, None).await.0, 404);
        assert_eq!(w.call(Method::GET, path, None).await.0, 404);
    }
    w.finish().await;
}

#[tokio::test]
async fn users_are_listed_with_search_and_pages() {
    let w = World::start().await;
    for i in 0..5 {
        w.ok(
            Method::POST,
            "/users",
            Some(json!({"username": format!("user{i}"), "name": format!("Person {i}")})),
            200,
        )
        .await;
    }
    w.ok(
        Method::POST,
        "/users",
        Some(json!({"username": "zed", "primaryEmail": "Zed@Example.com"})),
        200,
    )
    .await;
    let res = w
        .app
        .api(Method::GET, "/users?page=2&page_size=2")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["total-number"], "6");
    let rels: Vec<String> = res
        .headers()
        .get_all("link")
        .iter()
        .map(|v| {
            v.to_str()
                .unwrap()
                .rsplit("rel=")
                .next()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(rels, ["\"first\"", "\"prev\"", "\"last\"", "\"next\""]);
    let page: Value = res.json().await.unwrap();
    let names: Vec<&str> = page
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["username"].as_str().unwrap())
        .collect();
    // Newest first, as Logto lists users.
    assert_eq!(names, ["user3", "user2"]);
    let found = w
        .ok(Method::GET, "/users?search=example.COM", None, 200)
        .await;
    assert_eq!(found.as_array().unwrap().len(), 1);
    assert_eq!(found[0]["username"], "zed");
    let found = w
        .ok(Method::GET, "/users?search=person%203", None, 200)
        .await;
    assert_eq!(found[0]["username"], "user3");
    // LIKE's wildcards are literal.
    assert_eq!(
        w.ok(Method::GET, "/users?search=%25", None, 200).await,
        json!([])
    );
    w.app.stop().await;
}

#[tokio::test]
async fn resource_scope_and_role_routes_fire_their_events() {
    let mut w = World::start().await;
    let hook = w.hook_id.clone();

    // Resources fire nothing (Logto has no resource events).
    let api = w
        .ok(
            Method::POST,
            "/resources",
            Some(json!({"name": "API", "indicator": "https://api.example.com"})),
            201,
        )
        .await;
    let rid = api["id"].as_str().unwrap().to_owned();
    let (status, err) = w
        .call(
            Method::POST,
            "/resources",
            Some(json!({"name": "Again", "indicator": "https://api.example.com"})),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (422, "resource.resource_identifier_in_use")
    );
    // A new resource answers with its (empty) scopes, as Logto's does.
    assert_eq!(api["scopes"], json!([]));
    w.ok(
        Method::PATCH,
        &format!("/resources/{rid}"),
        Some(json!({"name": "The API"})),
        200,
    )
    .await;
    w.quiet().await;

    // Scopes.
    let path = format!("/resources/{rid}/scopes");
    let read = w
        .ok(
            Method::POST,
            &path,
            Some(json!({"name": "read:users", "description": "Read"})),
            201,
        )
        .await;
    let ev = w.event("Scope.Created").await;
    assert_payload(
        &ev,
        &hook,
        "Scope.Created",
        "POST",
        &path,
        "/resources/:resourceId/scopes",
        201,
        json!({"resourceId": rid}),
        &[],
        Some(&read),
    );
    let write = w
        .ok(
            Method::POST,
            &path,
            Some(json!({"name": "write:users"})),
            201,
        )
        .await;
    w.event("Scope.Created").await;
    let (status, err) = w
        .call(Method::POST, &path, Some(json!({"name": "read:users"})))
        .await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (422, "scope.name_exists")
    );
    let (status, err) = w
        .call(Method::POST, &path, Some(json!({"name": "read users"})))
        .await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (400, "scope.name_with_space")
    );
    // Scope names may be up to 256 characters long.
    let long = "s".repeat(256);
    let (status, _) = w
        .call(Method::POST, &path, Some(json!({"name": long})))
        .await;
    assert_eq!(status, 201);
    w.event("Scope.Created").await;
    let read_id = read["id"].as_str().unwrap().to_owned();
    let write_id = write["id"].as_str().unwrap().to_owned();
    let spath = format!("/resources/{rid}/scopes/{read_id}");
    let renamed = w
        .ok(
            Method::PATCH,
            &spath,
            Some(json!({"description": "Read users"})),
            200,
        )
        .await;
    assert_eq!(renamed["description"], "Read users");
    let ev = w.event("Scope.Data.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "Scope.Data.Updated",
        "PATCH",
        &spath,
        "/resources/:resourceId/scopes/:scopeId",
        200,
        json!({"resourceId": rid, "scopeId": read_id}),
        &[],
        Some(&renamed),
    );
    assert_eq!(
        w.ok(Method::GET, &path, None, 200)
            .await
            .as_array()
            .unwrap()
            .len(),
        3
    );

    // Roles: created with scopeIds fires Role.Created then Role.Scopes.Updated, whose data
    // is the Scope objects assigned.
    let role = w
        .ok(
            Method::POST,
            "/roles",
            Some(json!({"name": "admin", "description": "Admins", "scopeIds": [read_id]})),
            200,
        )
        .await;
    let role_id = role["id"].as_str().unwrap().to_owned();
    let evs = w.events(&["Role.Created", "Role.Scopes.Updated"]).await;
    assert_payload(
        &evs[0],
        &hook,
        "Role.Created",
        "POST",
        "/roles",
        "/roles",
        200,
        json!({}),
        &[],
        Some(&role),
    );
    assert_payload(
        &evs[1],
        &hook,
        "Role.Scopes.Updated",
        "POST",
        "/roles",
        "/roles",
        200,
        json!({}),
        &[("roleId", json!(role_id))],
        Some(&json!([renamed])),
    );
    // `scopeIds: []` still fires, with `data: []`.
    w.ok(
        Method::POST,
        "/roles",
        Some(json!({"name": "nobody", "description": "No scopes", "scopeIds": []})),
        200,
    )
    .await;
    let evs = w.events(&["Role.Created", "Role.Scopes.Updated"]).await;
    assert_eq!(evs[1]["data"], json!([]));
    // Without scopeIds, only Role.Created.
    w.ok(
        Method::POST,
        "/roles",
        Some(json!({"name": "viewer", "description": "Viewers"})),
        200,
    )
    .await;
    w.event("Role.Created").await;
    let (status, err) = w
        .call(
            Method::POST,
            "/roles",
            Some(json!({"name": "admin", "description": "x"})),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (422, "role.name_in_use")
    );
    let (status, _) = w
        .call(
            Method::POST,
            "/roles",
            Some(json!({"name": "r3", "description": "x", "scopeIds": ["missing"]})),
        )
        .await;
    assert_eq!(status, 404, "an unknown scope id");
    w.quiet().await;

    let rpath = format!("/roles/{role_id}");
    let updated = w
        .ok(
            Method::PATCH,
            &rpath,
            Some(json!({"description": "Administrators"})),
            200,
        )
        .await;
    let ev = w.event("Role.Data.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "Role.Data.Updated",
        "PATCH",
        &rpath,
        "/roles/:id",
        200,
        json!({"id": role_id}),
        &[],
        Some(&updated),
    );

    let scopes_path = format!("/roles/{role_id}/scopes");
    let now = w
        .ok(
            Method::POST,
            &scopes_path,
            Some(json!({"scopeIds": [write_id]})),
            201,
        )
        .await;
    assert_eq!(now.as_array().unwrap().len(), 2);
    let ev = w.event("Role.Scopes.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "Role.Scopes.Updated",
        "POST",
        &scopes_path,
        "/roles/:id/scopes",
        201,
        json!({"id": role_id}),
        &[],
        Some(&now),
    );
    let (status, err) = w
        .call(
            Method::POST,
            &scopes_path,
            Some(json!({"scopeIds": [write_id]})),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (422, "role.scope_exists")
    );
    let one = format!("/roles/{role_id}/scopes/{write_id}");
    w.ok(Method::DELETE, &one, None, 204).await;
    let ev = w.event("Role.Scopes.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "Role.Scopes.Updated",
        "DELETE",
        &one,
        "/roles/:id/scopes/:scopeId",
        204,
        json!({"id": role_id, "scopeId": write_id}),
        &[],
        None,
    );
    let left = w.ok(Method::GET, &scopes_path, None, 200).await;
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["id"], read_id.as_str());

    // Roles of users: no events.
    let user = w
        .ok(
            Method::POST,
            "/users",
            Some(json!({"username": "carol"})),
            200,
        )
        .await;
    w.event("User.Created").await;
    let uid = user["id"].as_str().unwrap();
    let assigned = w
        .ok(
            Method::POST,
            &format!("/users/{uid}/roles"),
            Some(json!({"roleIds": [role_id]})),
            201,
        )
        .await;
    assert_eq!(
        assigned,
        json!({"roleIds": [role_id], "addedRoleIds": [role_id]})
    );
    let roles = w
        .ok(Method::GET, &format!("/users/{uid}/roles"), None, 200)
        .await;
    assert_eq!(roles[0]["id"], role_id.as_str());
    let m2m = w
        .ok(
            Method::POST,
            "/roles",
            Some(json!({"name": "m2m", "description": "apps", "type": "MachineToMachine"})),
            200,
        )
        .await;
    w.event("Role.Created").await;
    let (status, err) = w
        .call(
            Method::POST,
            &format!("/users/{uid}/roles"),
            Some(json!({"roleIds": [m2m["id"]]})),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (422, "user.invalid_role_type")
    );
    // Idempotent, as Logto's: a role held already is skipped.
    let again = w
        .ok(
            Method::POST,
            &format!("/users/{uid}/roles"),
            Some(json!({"roleIds": [role_id]})),
            201,
        )
        .await;
    assert_eq!(again, json!({"roleIds": [role_id], "addedRoleIds": []}));
    // PUT replaces the set.
    let viewer = w.ok(Method::GET, "/roles?search=viewer", None, 200).await[0]["id"].clone();
    let replaced = w
        .ok(
            Method::PUT,
            &format!("/users/{uid}/roles"),
            Some(json!({"roleIds": [viewer]})),
            200,
        )
        .await;
    assert_eq!(replaced, json!({"roleIds": [viewer]}));
    let held = w
        .ok(Method::GET, &format!("/users/{uid}/roles"), None, 200)
        .await;
    assert_eq!(held.as_array().unwrap().len(), 1);
    assert_eq!(held[0]["id"], viewer);
    w.ok(
        Method::PUT,
        &format!("/users/{uid}/roles"),
        Some(json!({"roleIds": [role_id]})),
        200,
    )
    .await;
    w.ok(
        Method::DELETE,
        &format!("/users/{uid}/roles/{role_id}"),
        None,
        204,
    )
    .await;
    assert_eq!(
        w.ok(Method::GET, &format!("/users/{uid}/roles"), None, 200)
            .await,
        json!([])
    );
    w.quiet().await;

    // Deleting a scope fires Scope.Deleted and takes it out of its roles.
    w.ok(Method::DELETE, &spath, None, 204).await;
    let ev = w.event("Scope.Deleted").await;
    assert_payload(
        &ev,
        &hook,
        "Scope.Deleted",
        "DELETE",
        &spath,
        "/resources/:resourceId/scopes/:scopeId",
        204,
        json!({"resourceId": rid, "scopeId": read_id}),
        &[],
        None,
    );
    assert_eq!(w.ok(Method::GET, &scopes_path, None, 200).await, json!([]));

    w.ok(Method::DELETE, &rpath, None, 204).await;
    let ev = w.event("Role.Deleted").await;
    assert_payload(
        &ev,
        &hook,
        "Role.Deleted",
        "DELETE",
        &rpath,
        "/roles/:id",
        204,
        json!({"id": role_id}),
        &[],
        None,
    );
    w.ok(Method::GET, &rpath, None, 404).await;

    // Deleting a resource takes its scopes, silently.
    w.ok(Method::DELETE, &format!("/resources/{rid}"), None, 204)
        .await;
    w.ok(Method::GET, &path, None, 404).await;
    w.finish().await;
}

#[tokio::test]
async fn organization_routes_fire_their_events() {
    let mut w = World::start().await;
    let hook = w.hook_id.clone();
    let mut users = Vec::new();
    for name in ["ann", "ben", "cat"] {
        let u = w
            .ok(Method::POST, "/users", Some(json!({"username": name})), 200)
            .await;
        users.push(u["id"].as_str().unwrap().to_owned());
        w.event("User.Created").await;
    }

    let org = w
        .ok(
            Method::POST,
            "/organizations",
            Some(json!({"name": "Acme", "description": "Rockets"})),
            201,
        )
        .await;
    let oid = org["id"].as_str().unwrap().to_owned();
    // Logto's organizations: 12-character ids and every field, in Logto's order.
    assert_eq!(oid.len(), 12);
    let fields: Vec<&str> = org
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        [
            "tenantId",
            "id",
            "name",
            "description",
            "customData",
            "isMfaRequired",
            "isTrustedDeviceAllowed",
            "color",
            "branding",
            "customCss",
            "createdAt"
        ]
    );
    let ev = w.event("Organization.Created").await;
    assert_payload(
        &ev,
        &hook,
        "Organization.Created",
        "POST",
        "/organizations",
        "/organizations",
        201,
        json!({}),
        &[],
        Some(&org),
    );
    let opath = format!("/organizations/{oid}");
    let updated = w
        .ok(
            Method::PATCH,
            &opath,
            Some(json!({
                "description": null, "customData": {"tier": 2},
                "color": {"primaryColor": "#ff0000"}, "branding": {"logoUrl": "https://acme.test/l.png"},
                "customCss": "body { color: red; }"
            })),
            200,
        )
        .await;
    assert_eq!(updated["description"], Value::Null);
    assert_eq!(updated["color"], json!({"primaryColor": "#ff0000"}));
    assert_eq!(
        updated["branding"],
        json!({"logoUrl": "https://acme.test/l.png"})
    );
    assert_eq!(updated["customCss"], "body { color: red; }");
    let ev = w.event("Organization.Data.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "Organization.Data.Updated",
        "PATCH",
        &opath,
        "/organizations/:id",
        200,
        json!({"id": oid}),
        &[],
        Some(&updated),
    );

    // Membership: deltas only, empty arrays left out.
    let mpath = format!("/organizations/{oid}/users");
    let added = w
        .ok(
            Method::POST,
            &mpath,
            Some(json!({"userIds": [users[0], users[1]]})),
            201,
        )
        .await;
    assert_eq!(added, json!({"userIds": [users[0], users[1]]}));
    let ev = w.event("Organization.Membership.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "Organization.Membership.Updated",
        "POST",
        &mpath,
        "/organizations/:id/users",
        201,
        json!({"id": oid}),
        &[
            ("organizationId", json!(oid)),
            ("addedUserIds", json!([users[0], users[1]])),
        ],
        None,
    );
    w.ok(
        Method::PUT,
        &mpath,
        Some(json!({"userIds": [users[1], users[2]]})),
        204,
    )
    .await;
    let ev = w.event("Organization.Membership.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "Organization.Membership.Updated",
        "PUT",
        &mpath,
        "/organizations/:id/users",
        204,
        json!({"id": oid}),
        &[
            ("organizationId", json!(oid)),
            ("addedUserIds", json!([users[2]])),
            ("removedUserIds", json!([users[0]])),
        ],
        None,
    );
    let members: Vec<String> = w
        .ok(Method::GET, &mpath, None, 200)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(members, [users[1].clone(), users[2].clone()]);
    let one = format!("/organizations/{oid}/users/{}", users[1]);
    w.ok(Method::DELETE, &one, None, 204).await;
    let ev = w.event("Organization.Membership.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "Organization.Membership.Updated",
        "DELETE",
        &one,
        "/organizations/:id/users/:userId",
        204,
        json!({"id": oid, "userId": users[1]}),
        &[
            ("organizationId", json!(oid)),
            ("removedUserIds", json!([users[1]])),
        ],
        None,
    );
    let (status, err) = w.call(Method::DELETE, &one, None).await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (404, "entity.not_found"),
        "not a member any more"
    );
    let (status, err) = w
        .call(Method::POST, &mpath, Some(json!({"userIds": ["nobody"]})))
        .await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (404, "entity.relation_foreign_key_not_found")
    );
    w.quiet().await;
    // A call that changes nothing still fires, with `organizationId` only (as Logto's).
    w.ok(
        Method::POST,
        &mpath,
        Some(json!({"userIds": [users[2]]})),
        201,
    )
    .await;
    let ev = w.event("Organization.Membership.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "Organization.Membership.Updated",
        "POST",
        &mpath,
        "/organizations/:id/users",
        201,
        json!({"id": oid}),
        &[("organizationId", json!(oid))],
        None,
    );

    // Organization scopes and roles.
    let s1 = w
        .ok(
            Method::POST,
            "/organization-scopes",
            Some(json!({"name": "read:docs"})),
            201,
        )
        .await;
    let ev = w.event("OrganizationScope.Created").await;
    assert_payload(
        &ev,
        &hook,
        "OrganizationScope.Created",
        "POST",
        "/organization-scopes",
        "/organization-scopes",
        201,
        json!({}),
        &[],
        Some(&s1),
    );
    let s2 = w
        .ok(
            Method::POST,
            "/organization-scopes",
            Some(json!({"name": "write:docs"})),
            201,
        )
        .await;
    w.event("OrganizationScope.Created").await;
    let (s1, s2) = (
        s1["id"].as_str().unwrap().to_owned(),
        s2["id"].as_str().unwrap().to_owned(),
    );
    let (status, err) = w
        .call(
            Method::POST,
            "/organization-scopes",
            Some(json!({"name": "read:docs"})),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (422, "organization_scope.name_in_use")
    );
    let spath = format!("/organization-scopes/{s1}");
    let s1_updated = w
        .ok(
            Method::PATCH,
            &spath,
            Some(json!({"description": "Read documents"})),
            200,
        )
        .await;
    let ev = w.event("OrganizationScope.Data.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "OrganizationScope.Data.Updated",
        "PATCH",
        &spath,
        "/organization-scopes/:id",
        200,
        json!({"id": s1}),
        &[],
        Some(&s1_updated),
    );

    let role = w
        .ok(
            Method::POST,
            "/organization-roles",
            Some(json!({"name": "editor", "organizationScopeIds": [s1]})),
            201,
        )
        .await;
    let role_id = role["id"].as_str().unwrap().to_owned();
    let evs = w
        .events(&[
            "OrganizationRole.Created",
            "OrganizationRole.Scopes.Updated",
        ])
        .await;
    assert_payload(
        &evs[0],
        &hook,
        "OrganizationRole.Created",
        "POST",
        "/organization-roles",
        "/organization-roles",
        201,
        json!({}),
        &[],
        Some(&role),
    );
    assert_payload(
        &evs[1],
        &hook,
        "OrganizationRole.Scopes.Updated",
        "POST",
        "/organization-roles",
        "/organization-roles",
        201,
        json!({}),
        &[("organizationRoleId", json!(role_id))],
        None,
    );
    // An empty `organizationScopeIds` fires no OrganizationRole.Scopes.Updated.
    w.ok(
        Method::POST,
        "/organization-roles",
        Some(json!({"name": "reader", "organizationScopeIds": []})),
        201,
    )
    .await;
    w.event("OrganizationRole.Created").await;
    w.quiet().await;
    let rpath = format!("/organization-roles/{role_id}");
    let role_updated = w
        .ok(Method::PATCH, &rpath, Some(json!({"name": "author"})), 200)
        .await;
    let ev = w.event("OrganizationRole.Data.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "OrganizationRole.Data.Updated",
        "PATCH",
        &rpath,
        "/organization-roles/:id",
        200,
        json!({"id": role_id}),
        &[],
        Some(&role_updated),
    );

    let rs = format!("/organization-roles/{role_id}/scopes");
    let scope_ids = |v: Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| s["id"].as_str().unwrap().to_owned())
            .collect()
    };
    w.ok(
        Method::PUT,
        &rs,
        Some(json!({"organizationScopeIds": [s2]})),
        204,
    )
    .await;
    let ev = w.event("OrganizationRole.Scopes.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "OrganizationRole.Scopes.Updated",
        "PUT",
        &rs,
        "/organization-roles/:id/scopes",
        204,
        json!({"id": role_id}),
        &[],
        None,
    );
    assert_eq!(
        scope_ids(w.ok(Method::GET, &rs, None, 200).await),
        std::slice::from_ref(&s2)
    );
    w.ok(
        Method::POST,
        &rs,
        Some(json!({"organizationScopeIds": [s1]})),
        201,
    )
    .await;
    let ev = w.event("OrganizationRole.Scopes.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "OrganizationRole.Scopes.Updated",
        "POST",
        &rs,
        "/organization-roles/:id/scopes",
        201,
        json!({"id": role_id}),
        &[],
        None,
    );
    assert_eq!(
        scope_ids(w.ok(Method::GET, &rs, None, 200).await),
        [s1.clone(), s2.clone()]
    );
    let one_scope = format!("{rs}/{s2}");
    w.ok(Method::DELETE, &one_scope, None, 204).await;
    let ev = w.event("OrganizationRole.Scopes.Updated").await;
    assert_payload(
        &ev,
        &hook,
        "OrganizationRole.Scopes.Updated",
        "DELETE",
        &one_scope,
        "/organization-roles/:id/scopes/:organizationScopeId",
        204,
        json!({"id": role_id, "organizationScopeId": s2}),
        &[],
        None,
    );

    // A member's organization roles (no events); they go when the membership goes.
    let member = &users[2];
    let mr = format!("/organizations/{oid}/users/{member}/roles");
    let given = w
        .ok(
            Method::POST,
            &mr,
            Some(json!({"organizationRoleIds": [role_id]})),
            201,
        )
        .await;
    assert_eq!(given, json!({"organizationRoleIds": [role_id]}));
    assert_eq!(
        w.ok(Method::GET, &mr, None, 200).await[0]["id"],
        role_id.as_str()
    );
    w.ok(Method::DELETE, &format!("{mr}/{role_id}"), None, 204)
        .await;
    assert_eq!(w.ok(Method::GET, &mr, None, 200).await, json!([]));
    let (status, err) = w
        .call(
            Method::POST,
            &format!("/organizations/{oid}/users/{}/roles", users[0]),
            Some(json!({"organizationRoleIds": [role_id]})),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (422, "organization.require_membership"),
        "not a member"
    );
    let m2m = w
        .ok(
            Method::POST,
            "/organization-roles",
            Some(json!({"name": "bot", "type": "MachineToMachine"})),
            201,
        )
        .await;
    w.event("OrganizationRole.Created").await;
    let (status, err) = w
        .call(
            Method::POST,
            &mr,
            Some(json!({"organizationRoleIds": [m2m["id"]]})),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (422, "organization.role_type_mismatch")
    );
    w.quiet().await;

    // Deletions.
    w.ok(Method::DELETE, &spath, None, 204).await;
    let ev = w.event("OrganizationScope.Deleted").await;
    assert_payload(
        &ev,
        &hook,
        "OrganizationScope.Deleted",
        "DELETE",
        &spath,
        "/organization-scopes/:id",
        204,
        json!({"id": s1}),
        &[],
        None,
    );
    w.ok(Method::DELETE, &rpath, None, 204).await;
    let ev = w.event("OrganizationRole.Deleted").await;
    assert_payload(
        &ev,
        &hook,
        "OrganizationRole.Deleted",
        "DELETE",
        &rpath,
        "/organization-roles/:id",
        204,
        json!({"id": role_id}),
        &[],
        None,
    );
    w.ok(Method::DELETE, &opath, None, 204).await;
    let ev = w.event("Organization.Deleted").await;
    assert_payload(
        &ev,
        &hook,
        "Organization.Deleted",
        "DELETE",
        &opath,
        "/organizations/:id",
        204,
        json!({"id": oid}),
        &[],
        None,
    );
    w.ok(Method::GET, &opath, None, 404).await;
    w.finish().await;
}

/// A change refused half-way (after writing part of its rows) keeps nothing and fires
/// nothing: the refusal rolls back the whole transaction.
#[tokio::test]
async fn a_change_refused_half_way_keeps_nothing() {
    let mut w = World::start().await;
    let api = w
        .ok(
            Method::POST,
            "/resources",
            Some(json!({"name": "API", "indicator": "https://api.example.com"})),
            201,
        )
        .await;
    let rid = api["id"].as_str().unwrap();
    let mut scopes = Vec::new();
    for name in ["a", "b"] {
        let s = w
            .ok(
                Method::POST,
                &format!("/resources/{rid}/scopes"),
                Some(json!({"name": name})),
                201,
            )
            .await;
        scopes.push(s["id"].as_str().unwrap().to_owned());
        w.event("Scope.Created").await;
    }
    let role = w
        .ok(
            Method::POST,
            "/roles",
            Some(json!({"name": "r", "description": "d", "scopeIds": [scopes[0]]})),
            200,
        )
        .await;
    w.events(&["Role.Created", "Role.Scopes.Updated"]).await;
    let path = format!("/roles/{}/scopes", role["id"].as_str().unwrap());
    // `b` is linked first, then `a` is found linked already: 422, and `b` is not kept.
    let (status, err) = w
        .call(
            Method::POST,
            &path,
            Some(json!({"scopeIds": [scopes[1], scopes[0]]})),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (422, "role.scope_exists")
    );
    let linked = w.ok(Method::GET, &path, None, 200).await;
    assert_eq!(linked.as_array().unwrap().len(), 1, "{linked}");
    assert_eq!(linked[0]["id"], scopes[0].as_str());
    // PUT membership naming a missing user changes nobody.
    let user = w
        .ok(Method::POST, "/users", Some(json!({"username": "u"})), 200)
        .await;
    w.event("User.Created").await;
    let org = w
        .ok(
            Method::POST,
            "/organizations",
            Some(json!({"name": "O"})),
            201,
        )
        .await;
    w.event("Organization.Created").await;
    let members = format!("/organizations/{}/users", org["id"].as_str().unwrap());
    w.ok(
        Method::POST,
        &members,
        Some(json!({"userIds": [user["id"]]})),
        201,
    )
    .await;
    w.event("Organization.Membership.Updated").await;
    assert_eq!(
        w.call(Method::PUT, &members, Some(json!({"userIds": ["ghost"]})))
            .await
            .0,
        404
    );
    assert_eq!(
        w.ok(Method::GET, &members, None, 200)
            .await
            .as_array()
            .unwrap()
            .len(),
        1
    );
    w.finish().await;
}

/// The server dies after a change committed and before its event was delivered; the event
/// arrives once the server is back.
#[tokio::test]
async fn an_identity_event_survives_kill_9_between_commit_and_delivery() {
    let dir = TestDb::new().await;
    let receiver = Receiver::start().await;
    // Requests are held: the delivery is in flight, not done, when the process dies.
    receiver.close_gate();
    let args = [
        "--admin-token",
        TOKEN,
        "--allow-private-targets",
        "--request-timeout",
        "2s",
    ];
    let mut server = Process::start(&dir, &args).await;
    server
        .send_json(
            Method::POST,
            "/hooks",
            json!({"events": ["User.Created"], "config": {"url": receiver.url()}}),
        )
        .await;
    let user = server
        .send_json(Method::POST, "/users", json!({"username": "survivor"}))
        .await;
    let id = user["id"].as_str().unwrap().to_owned();
    receiver.wait_for(1, Duration::from_secs(10)).await; // the attempt is at the receiver
    server.kill9();

    receiver.open_gate();
    let server = Process::start(&dir, &args).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        // The held request's connection died with the process; a new attempt arrives.
        let got = receiver.received();
        if got.len() >= 2 {
            let ev = got[1].json();
            assert_eq!(ev["event"], "User.Created");
            assert_eq!(ev["data"]["id"], id.as_str());
            assert_eq!(ev["path"], "/users");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the event did not arrive after restart"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        server.get_json(&format!("/users/{id}")).await["username"],
        "survivor"
    );
}
