//! Interactions (register, sign-in, password reset) as rules without I/O: identifiers, the
//! lockout and code-sending policies, interaction payloads in Logto's key order, blocking
//! hooks' answers, and which proxies may name the end user's address.

use super::event::HookEvent;
use super::identity::application::Application;
use super::identity::user::{email_key, nfc, User};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::net::IpAddr;

/// What an end user signs in with: a username, or an email (it has an `@`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identifier {
    Username(String),
    /// As [`email_key`] spells it (NFC, lowercased): the one spelling lookups, codes and
    /// lockouts go by.
    Email(String),
}

impl Identifier {
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        // Bounded after normalising, which can lengthen it (U+0344 becomes two marks), so
        // that an identifier read back parses as itself (found by `fuzz/`).
        let id = if raw.contains('@') {
            Identifier::Email(email_key(raw))
        } else {
            Identifier::Username(nfc(raw))
        };
        let value = id.value();
        (!value.is_empty() && value.len() <= 128 && value.trim() == value).then_some(id)
    }

    /// Logto's identifier type: `username` or `email`.
    pub fn kind(&self) -> &'static str {
        match self {
            Identifier::Username(_) => "username",
            Identifier::Email(_) => "email",
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Identifier::Username(v) | Identifier::Email(v) => v,
        }
    }

    /// The key its lockout and code state is kept under.
    pub fn state_key(&self) -> String {
        format!("{}:{}", self.kind(), self.value())
    }
}

/// Failed verifications of one identifier: when each failure of the last window happened
/// (oldest first, at most the policy's limit), and until when it is locked.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Failures {
    pub at: Vec<i64>,
    pub locked_until: Option<i64>,
}

/// How far back failures count: Logto's sentinel counts the failed verifications of the last
/// hour, whatever the lockout lasts.
pub const LOCKOUT_WINDOW_MS: i64 = 60 * 60 * 1000;

/// Logto's sentinel (`defaultSentinelPolicy`): `max_failures` failed verifications of one
/// identifier within the last hour ([`LOCKOUT_WINDOW_MS`], a sliding window) lock it for
/// `lock_ms`, during which every attempt is refused, the right password included. A
/// successful sign-in does not clear the count (the sentinel keeps every activity).
#[derive(Debug, Clone, Copy)]
pub struct LockoutPolicy {
    pub max_failures: u32,
    pub lock_ms: i64,
}

impl LockoutPolicy {
    pub fn is_locked(&self, f: Option<&Failures>, now: i64) -> bool {
        f.and_then(|f| f.locked_until)
            .is_some_and(|until| until > now)
    }

    /// The state after one more failure at `now`, and whether it locked the identifier.
    pub fn fail(&self, f: Option<Failures>, now: i64) -> (Failures, bool) {
        let mut f = f.unwrap_or_default();
        f.locked_until = f.locked_until.filter(|until| *until > now);
        f.at.retain(|t| now - t < LOCKOUT_WINDOW_MS);
        f.at.push(now);
        let locks = f.at.len() >= self.max_failures as usize;
        if locks {
            f.locked_until = Some(now + self.lock_ms);
            f.at.clear();
        }
        (f, locks)
    }

    /// How long the state must be kept: until the lock ends and the newest failure leaves
    /// the window.
    pub fn expires_at(&self, f: &Failures) -> i64 {
        let last = f.at.last().map_or(0, |t| t + LOCKOUT_WINDOW_MS);
        f.locked_until.unwrap_or(0).max(last)
    }
}

/// Verification codes sent to one recipient: when each send of the current window happened,
/// oldest first (at most the policy's cap, so the state stays small).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct CodeSends {
    pub sent_at: Vec<i64>,
}

/// Logto's message rate guard (`defaultMessageRateLimitPolicy`): at most `max_sends` codes to
/// one recipient within any `window_ms` (a sliding window); a send past it is refused with 429
/// `request.message_rate_limited` and fires `Message.RateLimited`.
#[derive(Debug, Clone, Copy)]
pub struct CodeSendPolicy {
    pub max_sends: u32,
    pub window_ms: i64,
}

impl CodeSendPolicy {
    /// The state after one more send at `now`, or `None` if that send is over the cap.
    pub fn next_send(&self, sends: Option<CodeSends>, now: i64) -> Option<CodeSends> {
        let mut s = sends.unwrap_or_default();
        s.sent_at.retain(|t| now - t < self.window_ms);
        if s.sent_at.len() >= self.max_sends as usize {
            return None;
        }
        s.sent_at.push(now);
        Some(s)
    }

    /// How long the state must be kept: until its newest send leaves the window.
    pub fn expires_at(&self, s: &CodeSends) -> i64 {
        s.sent_at.last().copied().unwrap_or(0) + self.window_ms
    }
}

pub const CODE_TTL_MS: i64 = 10 * 60 * 1000;
/// Wrong guesses a code takes before it is void.
pub const CODE_MAX_ATTEMPTS: u32 = 5;

/// An open password-reset code: its hash, whose it is, until when, how many wrong guesses.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResetCode {
    pub code_hash: String,
    pub user_id: String,
    pub expires_at: i64,
    pub attempts: u32,
}

/// Who is interacting, as interaction payloads tell it.
#[derive(Debug, Clone)]
pub struct InteractionContext {
    pub session_id: String,
    pub user_agent: Option<String>,
    pub user_ip: String,
    pub application: Application,
}

impl InteractionContext {
    /// `{id, type, name, description}`, as interaction payloads carry the application.
    pub fn application_json(&self) -> Value {
        let a = &self.application;
        json!({"id": a.id, "type": a.kind, "name": a.name, "description": a.description})
    }
}

/// Logto's `interactionEvent` of an interaction or blocking event.
pub fn interaction_event(event: HookEvent) -> &'static str {
    match event.name() {
        "PostRegister" | "PreRegister" => "Register",
        "PostResetPassword" | "PreResetPassword" => "ForgotPassword",
        _ => "SignIn",
    }
}

/// An interaction (or blocking) event's payload without `hookId`: `event, interactionEvent,
/// createdAt, sessionId, userAgent, userId, userIp, user, application`. `userAgent` is left
/// out when unknown.
pub fn interaction_payload(
    event: HookEvent,
    ctx: &InteractionContext,
    user: &User,
    created_at: &str,
) -> Map<String, Value> {
    let mut p = Map::with_capacity(10);
    p.insert("event".into(), json!(event.name()));
    p.insert("interactionEvent".into(), json!(interaction_event(event)));
    p.insert("createdAt".into(), json!(created_at));
    p.insert("sessionId".into(), json!(ctx.session_id));
    if let Some(ua) = &ctx.user_agent {
        p.insert("userAgent".into(), json!(ua));
    }
    p.insert("userId".into(), json!(user.id));
    p.insert("userIp".into(), json!(ctx.user_ip));
    p.insert(
        "user".into(),
        serde_json::to_value(user).unwrap_or(Value::Null),
    );
    p.insert("application".into(), ctx.application_json());
    p
}

/// A data or exception event raised inside an interaction, without `hookId`: `event,
/// createdAt, interactionEvent, userAgent, applicationId, sessionId, ip, application`, then the
/// event's own keys (`type` and `value` of `Identifier.Lockout`, `action` and `recipient` of
/// `Message.RateLimited`), then `data` if any (spec: "Data and exception events raised inside
/// an interaction"). `userAgent` is left out when unknown.
pub fn interaction_data_payload(
    event: HookEvent,
    interaction: HookEvent,
    ctx: &InteractionContext,
    own: Map<String, Value>,
    data: Option<Value>,
    created_at: &str,
) -> Map<String, Value> {
    let mut p = Map::with_capacity(10 + own.len());
    p.insert("event".into(), json!(event.name()));
    p.insert("createdAt".into(), json!(created_at));
    p.insert(
        "interactionEvent".into(),
        json!(interaction_event(interaction)),
    );
    if let Some(ua) = &ctx.user_agent {
        p.insert("userAgent".into(), json!(ua));
    }
    p.insert("applicationId".into(), json!(ctx.application.id));
    p.insert("sessionId".into(), json!(ctx.session_id));
    p.insert("ip".into(), json!(ctx.user_ip));
    p.insert("application".into(), ctx.application_json());
    p.extend(own);
    if let Some(data) = data {
        p.insert("data".into(), data);
    }
    p
}

/// What a blocking hook's answer means.
#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    /// `{"allow": true}` or an empty 2xx; on `PreRegister` it may add custom data.
    Allow {
        custom_data: Option<Map<String, Value>>,
    },
    /// `{"allow": false, "message": ...}`.
    Deny { message: String },
    /// No usable answer (timeout, unreachable, non-2xx, not the expected JSON): the hook's
    /// failure policy decides.
    Failed { reason: String },
}

/// Reads a blocking hook's answer (`status` is `None` when no response came).
pub fn read_verdict(status: Option<u16>, body: &str, error: Option<&str>) -> Verdict {
    let Some(status) = status else {
        return Verdict::Failed {
            reason: error.unwrap_or("no response").to_owned(),
        };
    };
    if !(200..300).contains(&status) {
        return Verdict::Failed {
            reason: format!("the hook answered {status}"),
        };
    }
    if body.trim().is_empty() {
        return Verdict::Allow { custom_data: None };
    }
    match serde_json::from_str::<Value>(body) {
        Ok(answer) => read_answer(&answer),
        Err(_) => Verdict::Failed {
            reason: "the answer is not JSON".into(),
        },
    }
}

/// The function a script blocking hook's `config.script` defines: `decide({event,
/// payload})`, where `payload` is what an endpoint would be sent.
pub const SCRIPT_ENTRY: &str = "decide";

/// Reads a script blocking hook's answer: its result, or its error (a throw, a timeout, …);
/// `undefined` (no answer at all) is a failure, as an endpoint's non-JSON body is.
pub fn read_script_verdict(result: Result<Value, String>, undefined: bool) -> Verdict {
    match result {
        Err(reason) => Verdict::Failed { reason },
        Ok(_) if undefined => Verdict::Failed {
            reason: "the script returned nothing: return {allow: true} or {allow: false, message}"
                .into(),
        },
        Ok(answer) => read_answer(&answer),
    }
}

/// `{"allow": true, "customData"?}` or `{"allow": false, "message"?}`.
fn read_answer(answer: &Value) -> Verdict {
    match answer.get("allow") {
        Some(Value::Bool(true)) => Verdict::Allow {
            custom_data: answer.get("customData").and_then(Value::as_object).cloned(),
        },
        Some(Value::Bool(false)) => Verdict::Deny {
            message: answer
                .get("message")
                .and_then(Value::as_str)
                .map(|m| m.chars().take(500).collect())
                .unwrap_or_else(|| "The interaction was denied by a hook.".into()),
        },
        _ => Verdict::Failed {
            reason: "the answer has no boolean `allow`".into(),
        },
    }
}

/// Which peers may tell the end user's address in `X-Forwarded-For`: addresses and CIDR
/// ranges (`10.0.0.0/8`, `::1`).
#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(crate::domain::target::IpRanges);

impl std::str::FromStr for TrustedProxies {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        s.parse().map(TrustedProxies)
    }
}

impl TrustedProxies {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(ip)
    }

    /// The end user's address: the peer's, or, from a trusted proxy, the last address in
    /// `X-Forwarded-For` that is not itself a trusted proxy.
    pub fn client_ip(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        let peer = peer.to_canonical();
        if !self.contains(peer) {
            return peer;
        }
        let Some(chain) = forwarded_for else {
            return peer;
        };
        let mut ip = peer;
        for hop in chain.rsplit(',') {
            match hop.trim().parse::<IpAddr>() {
                Ok(addr) => {
                    ip = addr.to_canonical();
                    if !self.contains(ip) {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        ip
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_are_bounded_after_normalising() {
        // 64 × U+0344 is 128 bytes as sent and 256 in NFC (found by the `identity` fuzz target).
        let long = "\u{344}".repeat(64);
        assert_eq!(long.len(), 128);
        assert_eq!(Identifier::parse(&long), None);
        let fits = "\u{344}".repeat(32);
        let id = Identifier::parse(&fits).unwrap();
        assert_eq!(Identifier::parse(id.value()), Some(id));
    }

    #[test]
    fn identifiers_are_usernames_or_lowercased_emails() {
        assert_eq!(
            Identifier::parse("Ann@Example.com"),
            Some(Identifier::Email("ann@example.com".into()))
        );
        let u = Identifier::parse("ann").unwrap();
        assert_eq!((u.kind(), u.value()), ("username", "ann"));
        assert_eq!(u.state_key(), "username:ann");
        assert_eq!(Identifier::parse("  "), None);
    }

    #[test]
    fn the_lockout_counts_failures_in_a_sliding_hour_and_expires() {
        let p = LockoutPolicy {
            max_failures: 3,
            lock_ms: 1000,
        };
        let (f, locked) = p.fail(None, 0);
        assert!(!locked && f.at.len() == 1);
        let (f, locked) = p.fail(Some(f), 10);
        assert!(!locked && f.at.len() == 2);
        let (f, locked) = p.fail(Some(f), 20);
        assert!(locked);
        assert!(p.is_locked(Some(&f), 500));
        assert!(!p.is_locked(Some(&f), 1020));
        assert_eq!(p.expires_at(&f), 1020);
        // Failures older than an hour no longer count; the window slides.
        let (f, _) = p.fail(None, 0);
        let (f, _) = p.fail(Some(f), LOCKOUT_WINDOW_MS - 1);
        let (f, locked) = p.fail(Some(f), LOCKOUT_WINDOW_MS);
        assert!(!locked);
        assert_eq!(f.at, [LOCKOUT_WINDOW_MS - 1, LOCKOUT_WINDOW_MS]);
    }

    #[test]
    fn code_sends_are_limited_in_a_sliding_window() {
        let p = CodeSendPolicy {
            max_sends: 2,
            window_ms: 600,
        };
        let s = p.next_send(None, 0).unwrap();
        let s = p.next_send(Some(s), 100).unwrap();
        assert_eq!(p.next_send(Some(s.clone()), 599), None);
        // The first send has left the window; the second has not.
        let s = p.next_send(Some(s), 600).unwrap();
        assert_eq!(s.sent_at, [100, 600]);
        assert_eq!(p.next_send(Some(s.clone()), 699), None);
        assert_eq!(p.expires_at(&s), 1200);
    }

    #[test]
    fn verdicts_follow_the_answer() {
        assert_eq!(
            read_verdict(Some(204), "", None),
            Verdict::Allow { custom_data: None }
        );
        assert_eq!(
            read_verdict(Some(200), r#"{"allow":false,"message":"no"}"#, None),
            Verdict::Deny {
                message: "no".into()
            }
        );
        let Verdict::Allow { custom_data } =
            read_verdict(Some(200), r#"{"allow":true,"customData":{"a":1}}"#, None)
        else {
            panic!()
        };
        assert_eq!(custom_data.unwrap()["a"], 1);
        for (status, body) in [
            (Some(500), ""),
            (Some(200), "ok"),
            (Some(200), "{}"),
            (None, ""),
        ] {
            assert!(matches!(
                read_verdict(status, body, None),
                Verdict::Failed { .. }
            ));
        }
    }

    #[test]
    fn script_verdicts_read_the_answer_and_fail_on_nothing() {
        assert_eq!(
            read_script_verdict(Ok(json!({"allow": false, "message": "no"})), false),
            Verdict::Deny {
                message: "no".into()
            }
        );
        assert_eq!(
            read_script_verdict(Ok(json!({"allow": true})), false),
            Verdict::Allow { custom_data: None }
        );
        for (result, undefined, says) in [
            (Ok(Value::Null), true, "returned nothing"),
            (Ok(Value::Null), false, "no boolean `allow`"),
            (Ok(json!({"allow": "yes"})), false, "no boolean `allow`"),
            (Err("boom".to_owned()), false, "boom"),
        ] {
            match read_script_verdict(result, undefined) {
                Verdict::Failed { reason } => assert!(reason.contains(says), "{reason}"),
                v => panic!("{v:?}"),
            }
        }
    }

    #[test]
    fn forwarded_for_counts_only_from_trusted_proxies() {
        let t: TrustedProxies = "10.0.0.0/8, ::1".parse().unwrap();
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(t.client_ip(ip("1.2.3.4"), Some("9.9.9.9")), ip("1.2.3.4"));
        assert_eq!(t.client_ip(ip("10.1.1.1"), Some("9.9.9.9")), ip("9.9.9.9"));
        assert_eq!(
            t.client_ip(ip("10.1.1.1"), Some("6.6.6.6, 9.9.9.9, 10.2.2.2")),
            ip("9.9.9.9")
        );
        assert_eq!(t.client_ip(ip("::1"), None), ip("::1"));
        assert!("10.0.0.0/33".parse::<TrustedProxies>().is_err());
    }
}
