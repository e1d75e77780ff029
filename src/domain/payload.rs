//! The JSON bodies hookline sends.
//!
//! Key order matters to receivers that log or diff payloads, so payloads are built as
//! insertion-ordered maps (`serde_json` with `preserve_order`): `event` first, `createdAt`
//! next, the rest as published, `hookId` last, as in Logto.

use super::event::{EventKind, HookEvent};
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

/// `2026-11-27T18:52:32.123Z`: millisecond precision in UTC, like JavaScript's `toISOString()`.
pub fn iso_timestamp(at: OffsetDateTime) -> String {
    let at = at.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

/// The event payload as published through `POST /api/events`, with `createdAt` placed right
/// after `event` and without `hookId`, which is per delivery. A `createdAt` the publisher
/// gave is kept as written if it is an RFC 3339 timestamp (ISO 8601 with a date, a time and
/// an offset, as JavaScript's `toISOString()` writes); anything else is refused with the
/// message returned, never silently replaced. Without one, `created_at` is used.
pub fn event_payload(
    event: HookEvent,
    mut published: Map<String, Value>,
    created_at: &str,
) -> Result<Map<String, Value>, String> {
    published.shift_remove("event");
    published.shift_remove("hookId");
    let created = match published.shift_remove("createdAt") {
        None => Value::String(created_at.to_owned()),
        Some(Value::String(s)) if is_rfc3339(&s) => Value::String(s),
        Some(other) => {
            return Err(format!(
                "`createdAt` must be an ISO 8601 timestamp such as \"2026-01-01T12:00:00.000Z\" (RFC 3339), not {other}"
            ))
        }
    };
    let mut out = Map::with_capacity(published.len() + 3);
    out.insert("event".into(), Value::String(event.name().into()));
    out.insert("createdAt".into(), created);
    out.extend(published);
    Ok(out)
}

/// Whether `s` is an RFC 3339 date-time (`2026-01-01T12:00:00Z`, `…T12:00:00.123+02:00`).
pub fn is_rfc3339(s: &str) -> bool {
    OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).is_ok()
}

/// The user an event is about, for `config.ordering: "perUser"` (the key its deliveries to
/// such a hook are ordered by): the top-level `userId` (interaction events, and any published
/// event that names one), else for a `User.*` event the route's `params.userId`, else its
/// `data.id` (`User.Created`, whose route has no user in its path). `None` for events about
/// no single user (an organization's membership, a role, a lockout of an identifier); their
/// deliveries are not held back. At most [`MAX_SUBJECT_LEN`] bytes; a longer one is no key.
pub fn subject_user(event: HookEvent, payload: &Map<String, Value>) -> Option<&str> {
    fn named(v: Option<&Value>) -> Option<&str> {
        match v {
            Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_SUBJECT_LEN => Some(s),
            _ => None,
        }
    }
    if let Some(user) = named(payload.get("userId")) {
        return Some(user);
    }
    if !event.name().starts_with("User.") {
        return None;
    }
    named(payload.get("params").and_then(|p| p.get("userId")))
        .or_else(|| named(payload.get("data").and_then(|d| d.get("id"))))
}

/// The longest user id [`subject_user`] takes as an ordering key, in bytes.
pub const MAX_SUBJECT_LEN: usize = 256;

/// The exact body of one delivery: the stored event payload (JSON object text) with `hookId`
/// spliced in as the last key. It works on the stored text rather than a parsed value, so
/// every retry sends (and signs) the same bytes, and it costs a copy, not a parse.
pub fn delivery_body(payload_json: &str, hook_id: &str) -> String {
    let hook_id = Value::String(hook_id.to_owned()).to_string(); // quoted and escaped
    let object = payload_json.trim();
    match object.strip_suffix('}') {
        Some(head) if object.starts_with('{') => {
            let sep = if head[1..].trim().is_empty() { "" } else { "," };
            let mut body = String::with_capacity(object.len() + hook_id.len() + 12);
            body.push_str(head);
            body.push_str(sep);
            body.push_str("\"hookId\":");
            body.push_str(&hook_id);
            body.push('}');
            body
        }
        // Not an object: cannot happen for payloads hookline stored; send the id alone.
        _ => format!("{{\"hookId\":{hook_id}}}"),
    }
}

/// A Management API call, as a data event's payload describes it.
#[derive(Debug, Clone)]
pub struct ApiCall {
    pub user_agent: Option<String>,
    pub ip: String,
    /// The request path without the `/api` prefix, e.g. `/users/u1/profile`.
    pub path: String,
    pub method: String,
    /// The route pattern in Logto's form, without `/api`: `/users/:userId/profile`.
    pub matched_route: String,
    /// The route parameters by name, e.g. `{"userId": "u1"}`.
    pub params: Map<String, Value>,
}

impl ApiCall {
    /// A route pattern in axum's form (`/api/users/{userId}`) in Logto's (`/users/:userId`).
    pub fn logto_route(axum_route: &str) -> String {
        let route = axum_route.strip_prefix("/api").unwrap_or(axum_route);
        route
            .split('/')
            .map(
                |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => format!(":{name}"),
                    None => seg.to_owned(),
                },
            )
            .collect::<Vec<_>>()
            .join("/")
    }
}

/// Where a data event's `data` goes. Logto builds the payload as `{event, createdAt,
/// userAgent, ip, ...context}`; a registered route's context ends with `data` (the response
/// body), but `User.Deleted`'s context, appended by the route before the response exists,
/// starts with it (spec: "Data event from a Management API route").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DataAt {
    /// Last, after the route fields and the event's own keys.
    End,
    /// Right after `ip` (`User.Deleted`).
    AfterIp,
}

/// A data event caused by a Management API call, without `hookId`: `event, createdAt,
/// userAgent, ip, path, method, status, params, matchedRoute`, then `extra` (ids an event
/// names besides its data, e.g. `organizationId` and the membership deltas), then `data`
/// (the response body) if there is one, or `data` right after `ip` (see [`DataAt`]).
/// `userAgent` is left out when the caller sent none.
pub fn api_event_payload(
    event: HookEvent,
    call: &ApiCall,
    status: u16,
    extra: Map<String, Value>,
    data: Option<Value>,
    at: DataAt,
    created_at: &str,
) -> Map<String, Value> {
    let mut p = Map::with_capacity(11 + extra.len());
    p.insert("event".into(), json!(event.name()));
    p.insert("createdAt".into(), json!(created_at));
    if let Some(ua) = &call.user_agent {
        p.insert("userAgent".into(), json!(ua));
    }
    p.insert("ip".into(), json!(call.ip));
    let mut data = data;
    if at == DataAt::AfterIp {
        if let Some(d) = data.take() {
            p.insert("data".into(), d);
        }
    }
    p.insert("path".into(), json!(call.path));
    p.insert("method".into(), json!(call.method));
    p.insert("status".into(), json!(status));
    p.insert("params".into(), Value::Object(call.params.clone()));
    p.insert("matchedRoute".into(), json!(call.matched_route));
    p.extend(extra);
    if let Some(data) = data {
        p.insert("data".into(), data);
    }
    p
}

/// Why hookline disabled a hook (`Hook.Disabled`, and the hook's `disabledReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisabledReason {
    /// Its endpoint answered `410 Gone`.
    Gone,
    /// Every delivery failed for `--disable-after`.
    Failing,
}

impl DisabledReason {
    /// The text stored on the hook and sent in the event.
    pub fn message(self) -> &'static str {
        match self {
            DisabledReason::Gone => "The endpoint answered 410 Gone.",
            DisabledReason::Failing => "Every delivery failed for longer than --disable-after.",
        }
    }
}

/// `Hook.Disabled` (hookline's own, without `hookId`, which is the receiving hook's):
/// `{event, createdAt, data: {id, name, reason, failingSince}}`; `failingSince` is the epoch
/// ms of the first failure of the streak, or `null`.
pub fn hook_disabled_payload(
    hook_id: &str,
    name: &str,
    reason: DisabledReason,
    failing_since: Option<i64>,
    created_at: &str,
) -> Map<String, Value> {
    let mut p = Map::with_capacity(3);
    p.insert("event".into(), json!(HookEvent::HOOK_DISABLED.name()));
    p.insert("createdAt".into(), json!(created_at));
    p.insert(
        "data".into(),
        json!({"id": hook_id, "name": name, "reason": reason.message(), "failingSince": failing_since}),
    );
    p
}

/// The last attempt of a delivery whose retry schedule ran out (`Delivery.Exhausted`).
#[derive(Debug, Clone)]
pub struct Exhausted<'a> {
    pub delivery_id: &'a str,
    pub event_id: &'a str,
    pub event_name: &'a str,
    pub hook_id: &'a str,
    pub attempts: u32,
    pub response_status: Option<u16>,
    pub error: Option<&'a str>,
}

/// `Delivery.Exhausted` (hookline's own, without `hookId`): `{event, createdAt, data:
/// {deliveryId, eventId, event, hookId, attempts, responseStatus, error}}`, `hookId` in `data`
/// being the hook the delivery was for.
pub fn delivery_exhausted_payload(e: &Exhausted<'_>, created_at: &str) -> Map<String, Value> {
    let mut p = Map::with_capacity(3);
    p.insert("event".into(), json!(HookEvent::DELIVERY_EXHAUSTED.name()));
    p.insert("createdAt".into(), json!(created_at));
    p.insert(
        "data".into(),
        json!({
            "deliveryId": e.delivery_id,
            "eventId": e.event_id,
            "event": e.event_name,
            "hookId": e.hook_id,
            "attempts": e.attempts,
            "responseStatus": e.response_status,
            "error": e.error,
        }),
    );
    p
}

/// The payload `POST /api/hooks/:id/test` sends: Logto's `generateHookTestPayload`, key for
/// key (spec: "Test payload"): `event, hookId, createdAt, userAgent`, then fake interaction
/// fields (no `interactionEvent`; the user's key order as Logto writes it there) or fake route
/// fields (no `ip`, no `matchedRoute`). Blocking events take the interaction shape.
pub fn test_payload(event: HookEvent, hook_id: &str, now: OffsetDateTime) -> Value {
    let created_at = iso_timestamp(now);
    let now_ms = (now.unix_timestamp_nanos() / 1_000_000) as i64;
    let mut p = Map::new();
    p.insert("event".into(), json!(event.name()));
    p.insert("hookId".into(), json!(hook_id));
    p.insert("createdAt".into(), json!(created_at));
    p.insert("userAgent".into(), json!("fake-user-agent"));
    let context = match event.kind() {
        EventKind::Interaction | EventKind::Blocking => json!({
            "sessionId": "fake-session-id",
            "userIp": "fake-user-ip",
            "userId": "fake-id",
            "user": {
                "id": "fake-id",
                "username": "fake-user",
                "primaryEmail": "fake-user@fake-service.com",
                "primaryPhone": "1234567890",
                "name": "Fake User",
                "avatar": "https://fake-service.com/avatars/fake-user.png",
                "customData": {"theme": "light"},
                "identities": {"google": {"userId": "fake-google-user-id"}},
                "profile": {},
                "applicationId": "fake-application-id",
                "cimdClientId": null,
                "isSuspended": false,
                "lastSignInAt": now_ms,
                "createdAt": now_ms,
                "updatedAt": now_ms
            },
            "application": {
                "id": "fake-spa-application-id",
                "type": "SPA",
                "name": "Fake Application",
                "description": "Fake application data for testing"
            }
        }),
        EventKind::Data | EventKind::Exception => json!({
            "path": "/fake-path/:id",
            "method": "POST",
            "status": 200,
            "params": {"id": "fake-id"},
            "data": {"result": "success"}
        }),
        EventKind::Operational => json!({"data": {"id": "fake-id"}}),
    };
    if let Value::Object(fields) = context {
        p.extend(fields);
    }
    Value::Object(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_keys_come_in_logto_order() {
        let ev = HookEvent::parse("User.Created").unwrap();
        // `event` and `hookId` in the middle: removing them must not reorder the rest.
        let published = json!({"data": {"id": "u1"}, "event": "x", "hookId": "spoofed", "path": "/users", "ip": "1.2.3.4"});
        let p = event_payload(
            ev,
            published.as_object().unwrap().clone(),
            "2026-01-01T00:00:00.000Z",
        )
        .unwrap();
        let body = delivery_body(&Value::Object(p).to_string(), "h1");
        assert_eq!(
            body,
            r#"{"event":"User.Created","createdAt":"2026-01-01T00:00:00.000Z","data":{"id":"u1"},"path":"/users","ip":"1.2.3.4","hookId":"h1"}"#
        );
    }

    #[test]
    fn a_published_created_at_is_kept_if_a_timestamp_and_refused_otherwise() {
        let ev = HookEvent::parse("User.Created").unwrap();
        let with = |c: Value| {
            let published = json!({ "createdAt": c });
            event_payload(ev, published.as_object().unwrap().clone(), "now")
        };
        for kept in [
            "2026-01-01T00:00:00.000Z",
            "2026-01-01T02:00:00+02:00",
            "2026-01-01T00:00:00.123456Z",
        ] {
            assert_eq!(with(json!(kept)).unwrap()["createdAt"], kept);
        }
        for refused in [
            json!("yesterday"),
            json!("2026-01-01"),
            json!(1700000000),
            json!(null),
        ] {
            let err = with(refused.clone()).unwrap_err();
            assert!(err.contains("createdAt"), "{refused}: {err}");
        }
        assert_eq!(
            event_payload(ev, Map::new(), "now").unwrap()["createdAt"],
            "now"
        );
    }

    #[test]
    fn api_event_payloads_come_in_logto_order() {
        assert_eq!(
            ApiCall::logto_route("/api/users/{userId}/roles/{roleId}"),
            "/users/:userId/roles/:roleId"
        );
        let call = ApiCall {
            user_agent: Some("curl/8".into()),
            ip: "10.0.0.1".into(),
            path: "/organizations/o1/users".into(),
            method: "POST".into(),
            matched_route: "/organizations/:id/users".into(),
            params: json!({"id": "o1"}).as_object().unwrap().clone(),
        };
        let extra = json!({"organizationId": "o1", "addedUserIds": ["u1"]});
        let p = api_event_payload(
            HookEvent::parse("Organization.Membership.Updated").unwrap(),
            &call,
            201,
            extra.as_object().unwrap().clone(),
            None,
            DataAt::End,
            "2026-01-01T00:00:00.000Z",
        );
        let keys: Vec<&str> = p.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "event",
                "createdAt",
                "userAgent",
                "ip",
                "path",
                "method",
                "status",
                "params",
                "matchedRoute",
                "organizationId",
                "addedUserIds"
            ]
        );
        let no_ua = ApiCall {
            user_agent: None,
            ..call
        };
        let p = api_event_payload(
            HookEvent::parse("User.Created").unwrap(),
            &no_ua,
            200,
            Map::new(),
            Some(json!({"id": "u1"})),
            DataAt::End,
            "t",
        );
        assert!(!p.contains_key("userAgent"));
        assert_eq!(p.keys().next_back().unwrap(), "data");
        let deleted = api_event_payload(
            HookEvent::parse("User.Deleted").unwrap(),
            &no_ua,
            204,
            Map::new(),
            Some(json!({"id": "u1"})),
            DataAt::AfterIp,
            "t",
        );
        let keys: Vec<&str> = deleted.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "event",
                "createdAt",
                "ip",
                "data",
                "path",
                "method",
                "status",
                "params",
                "matchedRoute"
            ]
        );
    }

    #[test]
    fn hook_id_is_spliced_in_as_valid_json() {
        assert_eq!(delivery_body("{}", "h"), r#"{"hookId":"h"}"#);
        assert_eq!(delivery_body(r#"{"a":1} "#, "h"), r#"{"a":1,"hookId":"h"}"#);
        let odd = delivery_body(r#"{"a":"}"}"#, "q\"x");
        assert_eq!(
            serde_json::from_str::<Value>(&odd).unwrap(),
            json!({"a": "}", "hookId": "q\"x"})
        );
    }

    #[test]
    fn iso_timestamps_look_like_javascript() {
        let t = OffsetDateTime::from_unix_timestamp_nanos(1_700_000_000_123_456_789).unwrap();
        assert_eq!(iso_timestamp(t), "2023-11-14T22:13:20.123Z");
    }

    #[test]
    fn test_payloads_follow_the_kind() {
        let now = OffsetDateTime::now_utc();
        let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        let p = test_payload(HookEvent::parse("PostSignIn").unwrap(), "h", now);
        assert_eq!(
            keys(&p),
            [
                "event",
                "hookId",
                "createdAt",
                "userAgent",
                "sessionId",
                "userIp",
                "userId",
                "user",
                "application"
            ]
        );
        assert_eq!(p["userIp"], "fake-user-ip");
        assert_eq!(p["application"]["type"], "SPA");
        assert_eq!(
            p["user"]["identities"]["google"]["userId"],
            "fake-google-user-id"
        );
        let d = test_payload(HookEvent::parse("Identifier.Lockout").unwrap(), "h", now);
        assert_eq!(
            keys(&d),
            [
                "event",
                "hookId",
                "createdAt",
                "userAgent",
                "path",
                "method",
                "status",
                "params",
                "data"
            ]
        );
    }

    #[test]
    fn the_user_an_event_is_about() {
        let ev = |name: &str| HookEvent::parse(name).unwrap();
        let obj = |v: Value| v.as_object().unwrap().clone();
        let p = obj(json!({"event": "PostSignIn", "userId": "u1", "user": {"id": "u1"}}));
        assert_eq!(subject_user(ev("PostSignIn"), &p), Some("u1"));
        let p = obj(json!({"params": {"userId": "u2"}, "data": {"name": "x"}}));
        assert_eq!(subject_user(ev("User.Data.Updated"), &p), Some("u2"));
        let p = obj(json!({"params": {}, "data": {"id": "u3"}}));
        assert_eq!(subject_user(ev("User.Created"), &p), Some("u3"));
        // Not a user event: its data's id is some other object's.
        let p = obj(json!({"params": {"id": "r1"}, "data": {"id": "r1"}}));
        assert_eq!(subject_user(ev("Role.Created"), &p), None);
        let p = obj(json!({"organizationId": "o1", "addedUserIds": ["u1"]}));
        assert_eq!(
            subject_user(ev("Organization.Membership.Updated"), &p),
            None
        );
        // Not a string, empty, or too long: no key.
        for bad in [json!(7), json!(""), json!("x".repeat(MAX_SUBJECT_LEN + 1))] {
            let p = obj(json!({"userId": bad}));
            assert_eq!(subject_user(ev("PostRegister"), &p), None);
        }
    }
}
