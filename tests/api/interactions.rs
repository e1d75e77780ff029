//! Interactions through HTTP, as an application's backend calls them: registration, sign-in
//! (with lockout), password reset (with rate-limited codes), their events with every payload
//! field, and blocking hooks that allow, deny, time out and add custom data.

use crate::helpers::*;
use hmac::{Hmac, Mac};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use std::time::Duration;

const POST_EVENTS: &[&str] = &[
    "PostRegister",
    "PostSignIn",
    "PostResetPassword",
    "User.Created",
    "User.Data.Updated",
    "Identifier.Lockout",
    "Message.RateLimited",
];

pub(crate) struct Setup {
    pub(crate) app: TestApp,
    pub(crate) events: Receiver,
    seen: usize,
    app_id: String,
    secret: String,
    application: Value,
}

impl Setup {
    pub(crate) async fn start(
        configure: impl FnOnce(&mut hookline::configuration::ServeArgs),
    ) -> Self {
        let app = TestApp::spawn_with(configure).await;
        let events = Receiver::start().await;
        app.create_hook(POST_EVENTS, &events.url()).await;
        let created = app
            .send_json(
                Method::POST,
                "/applications",
                json!({"name": "Web shop", "type": "Traditional", "description": "the shop's backend"}),
            )
            .await;
        let secret = created["secret"].as_str().unwrap().to_owned();
        let app_id = created["id"].as_str().unwrap().to_owned();
        Setup {
            app,
            events,
            seen: 0,
            app_id,
            secret,
            application: json!({"id": created["id"], "type": "Traditional", "name": "Web shop", "description": "the shop's backend"}),
        }
    }

    /// An interaction call with the application's credentials, from a backend that names
    /// itself in `user-agent`.
    pub(crate) async fn interact(&self, path: &str, body: Value) -> (u16, Value) {
        self.interact_with(path, body, &[("user-agent", "ShopBackend/1")])
            .await
    }

    /// The same with exactly these headers (no user agent unless given).
    pub(crate) async fn interact_with(
        &self,
        path: &str,
        body: Value,
        headers: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut req = self
            .app
            .client
            .post(format!("{}/api/interactions{path}", self.app.base))
            .basic_auth(&self.app_id, Some(&self.secret))
            .json(&body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Exactly `names` (any order) arrive next; their payloads in the order of `names`.
    pub(crate) async fn expect(&mut self, names: &[&str]) -> Vec<Value> {
        let got = self
            .events
            .wait_for(self.seen + names.len(), Duration::from_secs(10))
            .await;
        let mut new: Vec<Value> = got[self.seen..].iter().map(Received::json).collect();
        self.seen += names.len();
        assert_eq!(new.len(), names.len(), "{new:?}");
        names
            .iter()
            .map(|n| {
                let i = new
                    .iter()
                    .position(|e| e["event"] == *n)
                    .unwrap_or_else(|| panic!("no {n} in {new:?}"));
                new.remove(i)
            })
            .collect()
    }

    pub(crate) async fn quiet(&self) {
        self.events
            .assert_stays_at(self.seen, Duration::from_millis(300))
            .await;
    }

    pub(crate) async fn register(&mut self, username: &str, password: &str) -> Value {
        let (status, body) = self
            .interact(
                "/register",
                json!({"username": username, "password": password}),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        self.expect(&["User.Created", "PostRegister"]).await;
        body
    }
}

fn keys(v: &Value) -> Vec<&str> {
    v.as_object().unwrap().keys().map(String::as_str).collect()
}

const INTERACTION_KEYS: [&str; 10] = [
    "event",
    "interactionEvent",
    "createdAt",
    "sessionId",
    "userAgent",
    "userId",
    "userIp",
    "user",
    "application",
    "hookId",
];

/// A data event raised inside an interaction, in Logto's order.
const INTERACTION_DATA_KEYS: [&str; 10] = [
    "event",
    "createdAt",
    "interactionEvent",
    "userAgent",
    "applicationId",
    "sessionId",
    "ip",
    "application",
    "data",
    "hookId",
];

/// An exception event raised inside an interaction: its own keys at the top level, no `data`.
fn exception_keys(own: [&'static str; 2]) -> Vec<&'static str> {
    let mut k = INTERACTION_DATA_KEYS[..8].to_vec();
    k.extend(own);
    k.push("hookId");
    k
}

#[tokio::test]
async fn register_sign_in_and_reset_fire_their_events_with_every_field() {
    let mut s = Setup::start(|_| {}).await;
    // The secret is answered once; the application does not show it again.
    let shown = s.app.get_json(&format!("/applications/{}", s.app_id)).await;
    assert!(shown.get("secret").is_none(), "{shown}");
    assert!(!shown.to_string().contains(&s.secret));

    // Register, with the end user's address and agent passed explicitly.
    let (status, reg) = s
        .interact(
            "/register",
            json!({"username": "ann", "primaryEmail": "Ann@Example.com", "password": "s3cret-pass", "name": "Ann",
                   "profile": {"locale": "en"}, "userIp": "203.0.113.9", "userAgent": "AnnBrowser/1"}),
        )
        .await;
    assert_eq!(status, 201, "{reg}");
    let user_id = reg["userId"].as_str().unwrap().to_owned();
    let session = reg["sessionId"].as_str().unwrap().to_owned();
    assert_eq!((user_id.len(), session.len()), (12, 21));
    let evs = s.expect(&["PostRegister", "User.Created"]).await;
    let post = &evs[0];
    assert_eq!(keys(post), INTERACTION_KEYS);
    assert_eq!(post["interactionEvent"], "Register");
    assert_eq!(post["sessionId"], session.as_str());
    assert_eq!(post["userAgent"], "AnnBrowser/1");
    assert_eq!(post["userIp"], "203.0.113.9");
    assert_eq!(post["userId"], user_id.as_str());
    assert_eq!(post["user"]["id"], user_id.as_str());
    assert_eq!(post["user"]["primaryEmail"], "Ann@Example.com");
    assert_eq!(post["user"]["profile"], json!({"locale": "en"}));
    assert_eq!(post["user"]["applicationId"], s.app_id.as_str());
    assert_eq!(
        keys(&post["user"]),
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
            "isSuspended"
        ]
    );
    assert_eq!(post["application"], s.application);
    assert!(!post.to_string().contains("s3cret-pass"));
    let created = &evs[1];
    assert_eq!(keys(created), INTERACTION_DATA_KEYS);
    assert_eq!(created["interactionEvent"], "Register");
    assert_eq!(created["sessionId"], session.as_str());
    assert_eq!(created["applicationId"], s.app_id.as_str());
    assert_eq!(created["ip"], "203.0.113.9");
    assert_eq!(created["userAgent"], "AnnBrowser/1");
    assert_eq!(created["data"], post["user"]);
    // The user exists, through the Management API too.
    let user = s.app.get_json(&format!("/users/{user_id}")).await;
    assert_eq!(user["username"], "ann");

    // Sign in with the email in another case; address and agent from the request.
    let (status, signed) = s
        .interact_with(
            "/sign-in",
            json!({"identifier": "ANN@example.com", "password": "s3cret-pass"}),
            &[("user-agent", "ShopBackend/2")],
        )
        .await;
    assert_eq!(status, 200, "{signed}");
    assert_eq!(signed["userId"], user_id.as_str());
    let sign_in_session = signed["sessionId"].as_str().unwrap();
    assert_ne!(sign_in_session, session, "a new session per interaction");
    let ev = s.expect(&["PostSignIn"]).await.remove(0);
    assert_eq!(keys(&ev), INTERACTION_KEYS);
    assert_eq!(ev["interactionEvent"], "SignIn");
    assert_eq!(ev["sessionId"], sign_in_session);
    assert_eq!(ev["userIp"], "127.0.0.1");
    assert_eq!(ev["userAgent"], "ShopBackend/2");
    let last = ev["user"]["lastSignInAt"]
        .as_i64()
        .expect("lastSignInAt is set");
    let user = s.app.get_json(&format!("/users/{user_id}")).await;
    assert_eq!(user["lastSignInAt"], last);

    // Password reset: a code, then the new password.
    let (status, code) = s
        .interact(
            "/forgot-password/verification-codes",
            json!({"identifier": "ann"}),
        )
        .await;
    assert_eq!(status, 201, "{code}");
    let code = code["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 6);
    s.quiet().await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    let (status, err) = s
        .interact(
            "/reset-password",
            json!({"identifier": "ann", "code": wrong, "password": "new-pass-123"}),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (422, "verification_code.code_mismatch")
    );
    let (status, reset) = s
        .interact("/reset-password", json!({"identifier": "ann", "code": code, "password": "new-pass-123", "userIp": "2001:db8::7"}))
        .await;
    assert_eq!(status, 200, "{reset}");
    let evs = s.expect(&["PostResetPassword", "User.Data.Updated"]).await;
    assert_eq!(keys(&evs[0]), INTERACTION_KEYS);
    assert_eq!(evs[0]["interactionEvent"], "ForgotPassword");
    assert_eq!(evs[0]["sessionId"], reset["sessionId"]);
    assert_eq!(evs[0]["userIp"], "2001:db8::7");
    assert_eq!(keys(&evs[1]), INTERACTION_DATA_KEYS);
    assert_eq!(evs[1]["interactionEvent"], "ForgotPassword");
    assert_eq!(evs[1]["data"]["id"], user_id.as_str());
    // A code works once.
    let (status, _) = s
        .interact(
            "/reset-password",
            json!({"identifier": "ann", "code": code, "password": "other-pass-1"}),
        )
        .await;
    assert_eq!(status, 422);
    // The old password is gone, the new one works.
    let (status, _) = s
        .interact(
            "/sign-in",
            json!({"identifier": "ann", "password": "s3cret-pass"}),
        )
        .await;
    assert_eq!(status, 422);
    let (status, _) = s
        .interact(
            "/sign-in",
            json!({"identifier": "ann", "password": "new-pass-123"}),
        )
        .await;
    assert_eq!(status, 200);
    s.expect(&["PostSignIn"]).await;
    s.quiet().await;
    s.app.stop().await;
}

#[tokio::test]
async fn applications_authenticate_interactions() {
    let s = Setup::start(|_| {}).await;
    let url = format!("{}/api/interactions/sign-in", s.app.base);
    let body = json!({"identifier": "x", "password": "whatever-123"});
    for req in [
        s.app.client.post(&url),
        s.app.client.post(&url).basic_auth(&s.app_id, Some("wrong")),
        s.app
            .client
            .post(&url)
            .basic_auth("unknown-app", Some(&s.secret)),
        s.app.client.post(&url).bearer_auth(TOKEN),
    ] {
        let res = req.json(&body).send().await.unwrap();
        assert_eq!(
            res.headers()["www-authenticate"],
            "Basic realm=\"hookline\""
        );
        expect_error(res, 401, "application.unauthorized").await;
    }
    // Applications are managed with the admin token; a deleted one cannot call any more.
    let list = s.app.get_json("/applications").await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let patched = s
        .app
        .send_json(
            Method::PATCH,
            &format!("/applications/{}", s.app_id),
            json!({"name": "Shop"}),
        )
        .await;
    assert_eq!(patched["name"], "Shop");
    let res = s
        .app
        .api(Method::DELETE, &format!("/applications/{}", s.app_id))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let (status, _) = s.interact("/sign-in", body).await;
    assert_eq!(status, 401);
    // Neither the secret nor a password is stored in the clear (database file and its WAL).
    let again = s
        .app
        .send_json(
            Method::POST,
            "/applications",
            json!({"name": "Other", "type": "SPA"}),
        )
        .await;
    let other_secret = again["secret"].as_str().unwrap().to_owned();
    s.app
        .send_json(
            Method::POST,
            "/users",
            json!({"username": "kim", "password": "plain-text-pass-77"}),
        )
        .await;
    let dir = s.app.stop().await;
    let bytes = dir.stored_text().await.into_bytes();
    for secret in [
        s.secret.as_str(),
        other_secret.as_str(),
        "plain-text-pass-77",
    ] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
            "{secret} is stored"
        );
    }
}

#[tokio::test]
async fn forwarded_addresses_count_only_from_trusted_proxies() {
    for (trusted, expected) in [("127.0.0.1", "198.51.100.4"), ("", "127.0.0.1")] {
        let mut s = Setup::start(|a| a.trusted_proxies = trusted.parse().unwrap()).await;
        let (status, _) = s
            .interact_with(
                "/register",
                json!({"username": "fwd", "password": "password-1"}),
                &[("x-forwarded-for", "198.51.100.4")],
            )
            .await;
        assert_eq!(status, 201);
        let evs = s.expect(&["PostRegister", "User.Created"]).await;
        assert_eq!(evs[0]["userIp"], expected, "trusted: {trusted:?}");
        assert!(
            evs[0].get("userAgent").is_none(),
            "no agent was sent: {}",
            evs[0]
        );
        s.app.stop().await;
    }
}

#[tokio::test]
async fn repeated_failures_lock_an_identifier_and_fire_identifier_lockout() {
    let mut s = Setup::start(|a| a.lockout_failures = 3).await;
    s.register("bob", "right-password").await;
    let wrong = json!({"identifier": "bob", "password": "wrong-password"});
    let (status, first) = s.interact("/sign-in", wrong.clone()).await;
    assert_eq!(
        (status, first["code"].as_str().unwrap()),
        (422, "session.invalid_credentials")
    );
    // An unknown identifier answers exactly alike.
    let (status, unknown) = s
        .interact(
            "/sign-in",
            json!({"identifier": "nobody", "password": "wrong-password"}),
        )
        .await;
    assert_eq!((status, &unknown), (422, &first));
    // A successful sign-in does not clear the count (Logto's sentinel keeps every failure).
    let (status, _) = s
        .interact(
            "/sign-in",
            json!({"identifier": "bob", "password": "right-password"}),
        )
        .await;
    assert_eq!(status, 200);
    s.expect(&["PostSignIn"]).await;
    s.interact("/sign-in", wrong.clone()).await;
    s.quiet().await;
    // The failure that reaches the limit locks: Logto's sentinel answers it as blocked.
    let (status, third) = s.interact("/sign-in", wrong.clone()).await;
    assert_eq!(
        (status, third["code"].as_str().unwrap()),
        (400, "session.verification_blocked_too_many_attempts")
    );
    let ev = s.expect(&["Identifier.Lockout"]).await.remove(0);
    assert_eq!(keys(&ev), exception_keys(["type", "value"]));
    assert_eq!(
        (&ev["type"], &ev["value"]),
        (&json!("username"), &json!("bob"))
    );
    assert_eq!(ev["interactionEvent"], "SignIn");
    // Locked: every attempt, the right password included, is refused and fires again.
    for password in ["right-password", "wrong-password"] {
        let (status, locked) = s
            .interact(
                "/sign-in",
                json!({"identifier": "bob", "password": password}),
            )
            .await;
        assert_eq!((status, &locked["code"]), (400, &third["code"]));
        let again = s.expect(&["Identifier.Lockout"]).await.remove(0);
        assert_eq!(again["value"], "bob");
    }
    // Unknown identifiers lock the same way (the sentinel counts identifiers, not accounts).
    let ghost = json!({"identifier": "ghost@example.com", "password": "x-password"});
    for _ in 0..2 {
        assert_eq!(s.interact("/sign-in", ghost.clone()).await.0, 422);
    }
    assert_eq!(s.interact("/sign-in", ghost.clone()).await.0, 400);
    let ev = s.expect(&["Identifier.Lockout"]).await.remove(0);
    assert_eq!(
        (&ev["type"], &ev["value"]),
        (&json!("email"), &json!("ghost@example.com"))
    );
    // Another identifier is not affected.
    s.register("carl", "right-password").await;
    let (status, _) = s
        .interact(
            "/sign-in",
            json!({"identifier": "carl", "password": "right-password"}),
        )
        .await;
    assert_eq!(status, 200);
    s.expect(&["PostSignIn"]).await;
    s.app.stop().await;
}

#[tokio::test]
async fn wrong_reset_codes_share_the_lockout_with_passwords() {
    let mut s = Setup::start(|a| a.lockout_failures = 3).await;
    s.register("gus", "right-password").await;
    let (status, sent) = s
        .interact(
            "/forgot-password/verification-codes",
            json!({"identifier": "gus"}),
        )
        .await;
    assert_eq!(status, 201);
    let code = sent["code"].as_str().unwrap().to_owned();
    let wrong_code = if code == "000000" { "111111" } else { "000000" };
    assert_eq!(
        s.interact(
            "/sign-in",
            json!({"identifier": "gus", "password": "nope-nope"})
        )
        .await
        .0,
        422
    );
    let reset = |c: &str| json!({"identifier": "gus", "code": c, "password": "new-password-1"});
    let (status, err) = s.interact("/reset-password", reset(wrong_code)).await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (422, "verification_code.code_mismatch")
    );
    // The third failed verification (a code this time) locks the identifier.
    let (status, err) = s.interact("/reset-password", reset(wrong_code)).await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (400, "session.verification_blocked_too_many_attempts")
    );
    let ev = s.expect(&["Identifier.Lockout"]).await.remove(0);
    assert_eq!(ev["interactionEvent"], "ForgotPassword");
    // Locked: even the right code is refused, and the lockout fires again.
    let (status, _) = s.interact("/reset-password", reset(&code)).await;
    assert_eq!(status, 400);
    s.expect(&["Identifier.Lockout"]).await;
    s.quiet().await;
    s.app.stop().await;
}

#[tokio::test]
async fn the_lockout_and_rate_limit_defaults_are_logtos() {
    let args = hookline::configuration::ServeArgs::defaults();
    assert_eq!(args.lockout_failures, 100);
    assert_eq!(args.lockout_duration, Duration::from_secs(3600));
    assert_eq!(args.code_sends_per_recipient, 10);
    assert_eq!(args.code_send_window, Duration::from_secs(600));
}

#[tokio::test]
async fn suspended_users_are_refused_and_nothing_fires() {
    let mut s = Setup::start(|_| {}).await;
    let reg = s.register("dora", "right-password").await;
    let path = format!("/users/{}/is-suspended", reg["userId"].as_str().unwrap());
    s.app
        .send_json(Method::PATCH, &path, json!({"isSuspended": true}))
        .await;
    let (status, err) = s
        .interact(
            "/sign-in",
            json!({"identifier": "dora", "password": "right-password"}),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (403, "user.suspended")
    );
    s.quiet().await;
    s.app.stop().await;
}

#[tokio::test]
async fn codes_for_one_recipient_are_rate_limited_and_fire_message_rate_limited() {
    let mut s = Setup::start(|a| a.code_sends_per_recipient = 2).await;
    let (status, _) = s
        .interact(
            "/register",
            json!({"username": "erin", "primaryEmail": "Erin@Example.com", "password": "right-password"}),
        )
        .await;
    assert_eq!(status, 201);
    s.expect(&["User.Created", "PostRegister"]).await;
    // By username and by email: one recipient, the user's email, so both count against it.
    for identifier in ["erin", "erin@example.com"] {
        let (status, _) = s
            .interact(
                "/forgot-password/verification-codes",
                json!({"identifier": identifier}),
            )
            .await;
        assert_eq!(status, 201);
    }
    let (status, err) = s
        .interact(
            "/forgot-password/verification-codes",
            json!({"identifier": "erin", "userIp": "192.0.2.1"}),
        )
        .await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (429, "request.message_rate_limited")
    );
    let ev = s.expect(&["Message.RateLimited"]).await.remove(0);
    assert_eq!(keys(&ev), exception_keys(["action", "recipient"]));
    // `recipient` is where the code goes: the email address.
    assert_eq!(
        (&ev["action"], &ev["recipient"]),
        (&json!("VerificationCodeSend"), &json!("erin@example.com"))
    );
    assert_eq!(ev["ip"], "192.0.2.1");
    // An unknown recipient: 404, and its sends count too, up to the same 429.
    let ghost = json!({"identifier": "ghost@example.com"});
    for _ in 0..2 {
        let (status, _) = s
            .interact("/forgot-password/verification-codes", ghost.clone())
            .await;
        assert_eq!(status, 404);
    }
    let (status, _) = s
        .interact("/forgot-password/verification-codes", ghost.clone())
        .await;
    assert_eq!(status, 429);
    let ev = s.expect(&["Message.RateLimited"]).await.remove(0);
    assert_eq!(ev["recipient"], "ghost@example.com");
    s.quiet().await;
    s.app.stop().await;
}

/// A receiver for blocking calls whose answers the test scripts.
async fn blocking_hook(s: &Setup, event: &str, config: Value) -> (Receiver, Value) {
    let receiver = Receiver::start().await;
    let mut config = config;
    config["url"] = json!(receiver.url());
    let hook = s
        .app
        .send_json(
            Method::POST,
            "/hooks",
            json!({"name": "gate", "events": [event], "config": config}),
        )
        .await;
    (receiver, hook)
}

fn logto_signature(key: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(body);
    hex::encode(mac.finalize().into_bytes())
}

#[tokio::test]
async fn blocking_hooks_allow_deny_and_are_logged() {
    let mut s = Setup::start(|_| {}).await;
    s.register("fay", "right-password").await;
    let (gate, hook) = blocking_hook(&s, "PreSignIn", json!({})).await;
    let sign_in =
        json!({"identifier": "fay", "password": "right-password", "userAgent": "FayPhone"});

    // Deny: 403 with the hook's message; nothing is written, nothing fires.
    gate.script([Reply::status(200).body(r#"{"allow": false, "message": "not from there"}"#)]);
    let (status, err) = s.interact("/sign-in", sign_in.clone()).await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (403, "hook.interaction_denied")
    );
    assert_eq!(err["message"], "not from there");
    s.quiet().await;
    let user = s.app.get_json("/users?search=fay").await;
    assert_eq!(user[0]["lastSignInAt"], Value::Null);
    // The call was signed like every webhook and carried the interaction.
    let call = &gate.received()[0];
    assert_eq!(
        call.header("logto-signature-sha-256"),
        logto_signature(hook["signingKey"].as_str().unwrap(), &call.body)
    );
    let payload = call.json();
    assert_eq!(keys(&payload), INTERACTION_KEYS);
    assert_eq!(payload["event"], "PreSignIn");
    assert_eq!(payload["interactionEvent"], "SignIn");
    assert_eq!(payload["userAgent"], "FayPhone");
    assert_eq!(payload["user"]["username"], "fay");
    assert_eq!(payload["hookId"], hook["id"]);

    // Allow, then an empty 2xx: both let the sign-in through.
    gate.script([
        Reply::status(200).body(r#"{"allow": true}"#),
        Reply::status(204).body(""),
    ]);
    for _ in 0..2 {
        let (status, body) = s.interact("/sign-in", sign_in.clone()).await;
        assert_eq!(status, 200, "{body}");
        s.expect(&["PostSignIn"]).await;
    }
    // Every call is in the hook's recent logs, denied one included.
    let logs = s
        .app
        .get_json(&format!(
            "/hooks/{}/recent-logs",
            hook["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(logs.as_array().unwrap().len(), 3, "{logs}");
    assert!(logs
        .as_array()
        .unwrap()
        .iter()
        .all(|l| l["key"] == "TriggerHook.PreSignIn"
            && l["payload"]["result"] == "Success"
            && l["payload"]["hookRequest"]["body"]["event"] == "PreSignIn"));
    s.app.stop().await;
}

#[tokio::test]
async fn blocking_hooks_that_fail_follow_their_failure_policy() {
    let mut s = Setup::start(|_| {}).await;
    s.register("gil", "right-password").await;
    let sign_in = json!({"identifier": "gil", "password": "right-password"});
    // A hook that answers too late, allowing on failure: the sign-in goes through.
    let (slow, hook) = blocking_hook(
        &s,
        "PreSignIn",
        json!({"timeoutMs": 300, "failurePolicy": "allow"}),
    )
    .await;
    assert_eq!(hook["config"]["timeoutMs"], 300);
    slow.set_default(
        Reply::status(200)
            .body(r#"{"allow": false}"#)
            .delay(Duration::from_secs(3)),
    );
    let (status, body) = s.interact("/sign-in", sign_in.clone()).await;
    assert_eq!(status, 200, "{body}");
    s.expect(&["PostSignIn"]).await;
    let logs = s
        .app
        .get_json(&format!(
            "/hooks/{}/recent-logs",
            hook["id"].as_str().unwrap()
        ))
        .await;
    assert_eq!(logs[0]["payload"]["result"], "Error");
    assert!(
        logs[0]["payload"]["error"]
            .as_str()
            .unwrap()
            .contains("timed out"),
        "{logs}"
    );

    // The same with the default policy (deny): refused.
    s.app
        .send_json(
            Method::PATCH,
            &format!("/hooks/{}", hook["id"].as_str().unwrap()),
            json!({"config": {"url": slow.url(), "timeoutMs": 300}}),
        )
        .await;
    let (status, err) = s.interact("/sign-in", sign_in.clone()).await;
    assert_eq!(
        (status, err["code"].as_str().unwrap()),
        (403, "hook.interaction_denied")
    );
    s.quiet().await;

    // An endpoint that answers 500 or nothing at all counts as a failure too.
    slow.set_default(Reply::status(500));
    let (status, _) = s.interact("/sign-in", sign_in.clone()).await;
    assert_eq!(status, 403);
    s.app
        .send_json(
            Method::PATCH,
            &format!("/hooks/{}", hook["id"].as_str().unwrap()),
            json!({"config": {"url": dead_url().await, "failurePolicy": "allow"}}),
        )
        .await;
    let (status, _) = s.interact("/sign-in", sign_in.clone()).await;
    assert_eq!(status, 200);
    s.expect(&["PostSignIn"]).await;
    s.app.stop().await;
}

#[tokio::test]
async fn blocking_hooks_are_called_in_parallel_and_any_deny_wins() {
    let s = Setup::start(|_| {}).await;
    let (a, _) = blocking_hook(&s, "PreRegister", json!({})).await;
    let (b, _) = blocking_hook(&s, "PreRegister", json!({})).await;
    // Both calls are held: the registration waits on both at once, not one after the other.
    a.close_gate();
    b.close_gate();
    a.set_default(Reply::status(200).body(r#"{"allow": true}"#));
    b.set_default(Reply::status(200).body(r#"{"allow": false, "message": "no bots"}"#));
    let pending = {
        let client = s.app.client.clone();
        let url = format!("{}/api/interactions/register", s.app.base);
        let (id, secret) = (s.app_id.clone(), s.secret.clone());
        tokio::spawn(async move {
            client
                .post(url)
                .basic_auth(id, Some(secret))
                .json(&json!({"username": "bot", "password": "password-1"}))
                .send()
                .await
                .unwrap()
        })
    };
    a.wait_for(1, Duration::from_secs(10)).await;
    b.wait_for(1, Duration::from_secs(10)).await;
    a.open_gate();
    b.open_gate();
    let res = pending.await.unwrap();
    let err = expect_error(res, 403, "hook.interaction_denied").await;
    assert_eq!(err["message"], "no bots");
    s.quiet().await;
    assert_eq!(s.app.get_json("/users?search=bot").await, json!([]));
    // The payload of a registration shows the user about to be created, never the password.
    let payload = a.received()[0].json();
    assert_eq!(payload["event"], "PreRegister");
    assert_eq!(payload["interactionEvent"], "Register");
    assert_eq!(payload["user"]["username"], "bot");
    assert!(!payload.to_string().contains("password-1"));
    s.app.stop().await;
}

#[tokio::test]
async fn pre_register_hooks_may_add_custom_data() {
    let mut s = Setup::start(|_| {}).await;
    let (gate, _) = blocking_hook(&s, "PreRegister", json!({})).await;
    gate.set_default(
        Reply::status(200).body(r#"{"allow": true, "customData": {"crmId": "C-42"}}"#),
    );
    let (status, reg) = s
        .interact(
            "/register",
            json!({"username": "hana", "password": "password-1"}),
        )
        .await;
    assert_eq!(status, 201, "{reg}");
    let evs = s.expect(&["PostRegister", "User.Created"]).await;
    assert_eq!(evs[0]["user"]["customData"], json!({"crmId": "C-42"}));
    let user = s
        .app
        .get_json(&format!("/users/{}", reg["userId"].as_str().unwrap()))
        .await;
    assert_eq!(user["customData"], json!({"crmId": "C-42"}));
    s.app.stop().await;
}

#[tokio::test]
async fn blocking_events_cannot_be_published_and_bad_bodies_are_refused() {
    let s = Setup::start(|_| {}).await;
    let res = s
        .app
        .api(Method::POST, "/events")
        .json(&json!({"event": "PreSignIn"}))
        .send()
        .await
        .unwrap();
    expect_error(res, 400, "event.not_publishable").await;
    for (path, body) in [
        ("/register", json!({"password": "password-1"})),
        ("/register", json!({"username": "ivy", "password": "short"})),
        (
            "/register",
            json!({"username": "ivy", "password": "password-1", "userIp": "not-an-ip"}),
        ),
        ("/sign-in", json!({"identifier": "", "password": "x"})),
        ("/sign-in", json!({"identifier": 7, "password": "x"})),
    ] {
        let (status, err) = s.interact(path, body.clone()).await;
        assert_eq!(status, 400, "{path} {body}: {err}");
        assert!(err["code"].is_string() && err["message"].is_string());
    }
    s.app.stop().await;
}

#[tokio::test]
async fn password_checks_beyond_the_concurrency_bound_answer_503_with_retry_after() {
    let s = Setup::start(|a| {
        a.password_hash_concurrency = 1;
        a.password_hash_queue_timeout = Duration::from_millis(1);
    })
    .await;
    let url = format!("{}/api/interactions/sign-in", s.app.base);
    let attempts = (0..12).map(|i| {
        s.app
            .client
            .post(&url)
            .basic_auth(&s.app_id, Some(&s.secret))
            .json(&json!({"identifier": format!("ghost{i}"), "password": "some-password"}))
            .send()
    });
    let answers = futures_util::future::join_all(attempts).await;
    let mut busy = 0;
    for res in answers {
        let res = res.unwrap();
        match res.status().as_u16() {
            422 => {}
            503 => {
                assert_eq!(res.headers()["retry-after"], "1");
                expect_error(res, 503, "server.busy").await;
                busy += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert!(busy > 0, "twelve checks at once never waited past 1 ms");
    // The bound frees up: a check on its own goes through.
    let (status, body) = s
        .interact(
            "/sign-in",
            json!({"identifier": "ghost", "password": "some-password"}),
        )
        .await;
    assert_eq!(
        (status, body["code"].as_str()),
        (422, Some("session.invalid_credentials"))
    );
}
