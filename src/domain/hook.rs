//! A hook (a webhook subscription) and the parsing of the bodies that create and change one.
//!
//! Bodies arrive as loosely typed JSON ([`HookInput`]) and are parsed once into a [`Hook`] or
//! [`HookPatch`]; from then on a hook's events are catalog events, its URL is http(s), its
//! headers are valid header names and values, and its name and key have Logto's lengths.

use super::event::HookEvent;
use super::target::{check_url, TargetError, TargetPolicy};
use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

pub const MAX_NAME_LENGTH: usize = 256;
pub const MAX_URL_LENGTH: usize = 2048;
pub const MAX_HEADERS: usize = 50;
/// The tenant every hook belongs to; hookline is single-tenant like Logto OSS.
pub const TENANT_ID: &str = "default";

/// Why a hook body was refused. Each maps to a 400 with its own code.
#[derive(Debug, thiserror::Error)]
pub enum HookInputError {
    #[error("either `events` (non-empty) or `event` must be given")]
    MissingEvents,
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Target(#[from] TargetError),
}

/// Custom request headers, in the order the user gave them (order is kept so that a hook read
/// back looks the way it was written).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HookHeaders(Vec<(String, String)>);

/// Why a header name cannot be a hook's custom header, if it cannot: the engine owns it.
/// Case-insensitive (RFC 9110 §5.1).
///
/// - framing (RFC 9112 §6, RFC 9110 §8.4): `Content-Length`, `Transfer-Encoding`,
///   `Content-Encoding`, `TE`, `Trailer`: a wrong one truncates or garbles the body the
///   receiver reads (`content-length: 2` delivered the two bytes `{"`);
/// - connection-specific (hop-by-hop, RFC 9110 §7.6.1): `Connection`, `Keep-Alive`,
///   `Proxy-Connection`, `Upgrade`, `Expect`, `Host` (taken from the URL), and the proxy
///   credentials `Proxy-Authorization`, `Proxy-Authenticate`;
/// - the signatures: `logto-signature-sha-256` and Standard Webhooks' `webhook-id`,
///   `webhook-timestamp`, `webhook-signature`.
///
/// `Content-Type` and `User-Agent` stay settable, as in Logto.
pub fn reserved_header(name: &str) -> Option<&'static str> {
    const FRAMING: [&str; 5] = [
        "content-length",
        "transfer-encoding",
        "content-encoding",
        "te",
        "trailer",
    ];
    const HOP_BY_HOP: [&str; 8] = [
        "connection",
        "keep-alive",
        "proxy-connection",
        "upgrade",
        "expect",
        "host",
        "proxy-authorization",
        "proxy-authenticate",
    ];
    const SIGNATURE: [&str; 4] = [
        "logto-signature-sha-256",
        "webhook-id",
        "webhook-timestamp",
        "webhook-signature",
    ];
    let is = |list: &[&str]| list.iter().any(|r| r.eq_ignore_ascii_case(name));
    if is(&FRAMING) {
        Some("it frames the request body, which hookline sets")
    } else if is(&HOP_BY_HOP) {
        Some("it is about the connection, which hookline manages")
    } else if is(&SIGNATURE) {
        Some("it carries hookline's signature")
    } else {
        None
    }
}

impl HookHeaders {
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Headers from a request body: [`HookHeaders::parse`], and none the engine owns
    /// ([`reserved_header`]) and no two names that differ only in case.
    pub(crate) fn parse_input(map: serde_json::Map<String, Value>) -> Result<Self, HookInputError> {
        let headers = Self::parse(map)?;
        for (i, (name, _)) in headers.0.iter().enumerate() {
            if let Some(why) = reserved_header(name) {
                return Err(HookInputError::Invalid(format!(
                    "config.headers: '{name}' cannot be set: {why}"
                )));
            }
            if let Some((earlier, _)) = headers.0[..i]
                .iter()
                .find(|(other, _)| other.eq_ignore_ascii_case(name))
            {
                return Err(HookInputError::Invalid(format!(
                    "config.headers: '{earlier}' and '{name}' are the same header (names are case-insensitive)"
                )));
            }
        }
        Ok(headers)
    }

    /// Names and values that HTTP allows. Stored hooks are read with this alone, so a hook
    /// saved before a rule was added still loads (its reserved headers are dropped at send).
    fn parse(map: serde_json::Map<String, Value>) -> Result<Self, HookInputError> {
        if map.len() > MAX_HEADERS {
            return Err(HookInputError::Invalid(format!(
                "config.headers may hold at most {MAX_HEADERS} headers"
            )));
        }
        let mut out = Vec::with_capacity(map.len());
        for (name, value) in map {
            let Value::String(value) = value else {
                return Err(HookInputError::Invalid(format!(
                    "config.headers.{name} must be a string"
                )));
            };
            if http::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
                return Err(HookInputError::Invalid(format!(
                    "config.headers: '{name}' is not a valid header name"
                )));
            }
            if http::header::HeaderValue::from_str(&value).is_err() {
                return Err(HookInputError::Invalid(format!(
                    "config.headers.{name}: the value is not a valid header value"
                )));
            }
            out.push((name, value));
        }
        Ok(Self(out))
    }
}

impl Serialize for HookHeaders {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            m.serialize_entry(k, v)?;
        }
        m.end()
    }
}

impl<'de> Deserialize<'de> for HookHeaders {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::deserialize(d)?;
        HookHeaders::parse(map).map_err(D::Error::custom)
    }
}

/// `config` as Logto has it: `{url, headers?, retries?}`. `retries` (0..=3, deprecated in
/// Logto) caps the retries of this hook's deliveries when set (0: a single attempt), since that
/// is what a Logto user who set it meant; unset, the retry schedule alone decides.
///
/// Beyond Logto: `timeoutMs`, how long one request to this hook may take (100 ms to 30 s;
/// for deliveries it can only shorten `--request-timeout`; for the answer of a blocking
/// (`Pre*`) call it defaults to [`DEFAULT_BLOCKING_TIMEOUT_MS`]), `maxInFlight` (below), and for blocking events `failurePolicy`, what a
/// timeout, a non-2xx answer or an unreachable endpoint means (default `deny`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookConfig {
    /// The endpoint. `None` only for a script blocking hook (`script`), which answers in
    /// process: every other hook has one.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub headers: Option<HookHeaders>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub retries: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timeout_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub failure_policy: Option<FailurePolicy>,
    /// Requests in flight to this hook at once (1 to [`MAX_HOOK_IN_FLIGHT`]), in place of
    /// `--max-in-flight-per-hook` (and never above `--max-in-flight`).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub max_in_flight: Option<u32>,
    /// Deliveries per second to this hook at most (1 to [`MAX_HOOK_RATE_LIMIT`]), every
    /// attempt counted, with a burst of a tenth of a second's worth
    /// (`delivery::schedule::rate`). Kept by each delivering node, as `maxInFlight` is.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub rate_limit: Option<u32>,
    /// `"perUser"`: deliveries about one user ([`crate::domain::payload::subject_user`]) go to
    /// this hook one at a time, in commit order, retries included; others are not held back.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub ordering: Option<Ordering>,
    /// A script defining `transform({event, payload, headers})` (`domain::transform`), run
    /// once per delivery before it is signed; only on a hook with a `url`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub transform: Option<String>,
    /// A script defining `decide({event, payload})` that answers a blocking (`Pre*`) event in
    /// process, as a blocking hook's endpoint would (`{allow, message?, customData?}`), in
    /// place of a `url`. Such a hook subscribes to blocking events only.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub script: Option<String>,
}

/// `config.ordering`: which deliveries to a hook must not overtake one another.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Ordering {
    /// Those about the same user.
    #[serde(rename = "perUser")]
    PerUser,
}

/// The highest `config.maxInFlight`.
pub const MAX_HOOK_IN_FLIGHT: u64 = 10_000;
/// The highest `config.rateLimit` (deliveries per second).
pub const MAX_HOOK_RATE_LIMIT: u64 = 100_000;

pub const DEFAULT_BLOCKING_TIMEOUT_MS: u64 = 3_000;
pub const MAX_BLOCKING_TIMEOUT_MS: u64 = 30_000;

/// What a blocking hook's failure to answer means for the interaction. The default is `deny`
/// (fail closed): a hook that vetoes sign-ins is a security control, and an outage of it
/// should not silently let everything through. Set `allow` for hooks that only enrich.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum FailurePolicy {
    Allow,
    #[default]
    Deny,
}

impl HookConfig {
    /// The blocking-call timeout in effect.
    pub fn blocking_timeout(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.timeout_ms.unwrap_or(DEFAULT_BLOCKING_TIMEOUT_MS))
    }
}

impl HookConfig {
    /// Parses `config` from a request body. Host names are not resolved here; the caller
    /// resolves them (I/O) and checks the addresses.
    pub fn parse(value: Value, policy: &TargetPolicy) -> Result<Self, HookInputError> {
        let Value::Object(mut obj) = value else {
            return Err(HookInputError::Invalid("config must be an object".into()));
        };
        let transform = parse_script(&mut obj, "transform")?;
        let script = parse_script(&mut obj, "script")?;
        // `null` is absent, as for every other field.
        let url = obj.shift_remove("url").filter(|v| !v.is_null());
        let url = match (url, &script) {
            (Some(Value::String(u)), None) => u,
            (Some(_), None) => {
                return Err(HookInputError::Invalid(
                    "config.url must be a string".into(),
                ))
            }
            (None, None) => {
                return Err(HookInputError::Invalid(
                    "config.url is required (or config.script, for a blocking hook)".into(),
                ))
            }
            (Some(_), Some(_)) => return Err(HookInputError::Invalid(
                "config.url and config.script exclude each other: a script hook answers in process"
                    .into(),
            )),
            (None, Some(_)) if transform.is_some() => {
                return Err(HookInputError::Invalid(
                    "config.transform applies to a hook with a url, not to a script hook".into(),
                ))
            }
            (None, Some(_)) => return Self::parse_script_hook(obj, script),
        };
        if url.len() > MAX_URL_LENGTH {
            return Err(HookInputError::Invalid(format!(
                "config.url is longer than {MAX_URL_LENGTH} characters"
            )));
        }
        check_url(&url, policy)?;
        let headers = match obj.shift_remove("headers") {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(HookHeaders::parse_input(m)?),
            Some(_) => {
                return Err(HookInputError::Invalid(
                    "config.headers must be an object of strings".into(),
                ))
            }
        };
        let retries = match obj.shift_remove("retries") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) => match n.as_u64() {
                Some(r @ 0..=3) => Some(r as u8),
                _ => {
                    return Err(HookInputError::Invalid(
                        "config.retries must be an integer from 0 to 3".into(),
                    ))
                }
            },
            Some(_) => {
                return Err(HookInputError::Invalid(
                    "config.retries must be an integer from 0 to 3".into(),
                ))
            }
        };
        let (timeout_ms, failure_policy) = parse_blocking_fields(&mut obj)?;
        let max_in_flight = match obj.shift_remove("maxInFlight") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n @ 1..=MAX_HOOK_IN_FLIGHT) => Some(n as u32),
                _ => {
                    return Err(HookInputError::Invalid(format!(
                        "config.maxInFlight must be an integer from 1 to {MAX_HOOK_IN_FLIGHT}"
                    )))
                }
            },
        };
        let rate_limit = match obj.shift_remove("rateLimit") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64() {
                Some(n @ 1..=MAX_HOOK_RATE_LIMIT) => Some(n as u32),
                _ => {
                    return Err(HookInputError::Invalid(format!(
                        "config.rateLimit must be an integer from 1 to {MAX_HOOK_RATE_LIMIT} (deliveries per second)"
                    )))
                }
            },
        };
        let ordering = match obj.shift_remove("ordering") {
            None | Some(Value::Null) => None,
            Some(v) => Some(serde_json::from_value(v).map_err(|_| {
                HookInputError::Invalid("config.ordering must be \"perUser\" or null".into())
            })?),
        };
        Ok(Self {
            url: Some(url),
            headers,
            retries,
            timeout_ms,
            failure_policy,
            max_in_flight,
            rate_limit,
            ordering,
            transform,
            script: None,
        })
    }

    /// The rest of a script hook's `config`: `timeoutMs` and `failurePolicy`, which a script
    /// answer honours; the delivery fields mean nothing without an endpoint and are refused.
    fn parse_script_hook(
        mut obj: serde_json::Map<String, Value>,
        script: Option<String>,
    ) -> Result<Self, HookInputError> {
        let (timeout_ms, failure_policy) = parse_blocking_fields(&mut obj)?;
        if let Some((key, _)) = obj.iter().find(|(_, v)| !v.is_null()) {
            return Err(HookInputError::Invalid(format!(
                "config.{key} does not apply to a script hook (config.script): it sends no requests"
            )));
        }
        Ok(Self {
            url: None,
            headers: None,
            retries: None,
            timeout_ms,
            failure_policy,
            max_in_flight: None,
            rate_limit: None,
            ordering: None,
            transform: None,
            script,
        })
    }
}

/// `timeoutMs` and `failurePolicy`.
fn parse_blocking_fields(
    obj: &mut serde_json::Map<String, Value>,
) -> Result<(Option<u64>, Option<FailurePolicy>), HookInputError> {
    let timeout_ms = match obj.shift_remove("timeoutMs") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(t @ 100..=MAX_BLOCKING_TIMEOUT_MS) => Some(t),
            _ => {
                return Err(HookInputError::Invalid(format!(
                    "config.timeoutMs must be an integer from 100 to {MAX_BLOCKING_TIMEOUT_MS}"
                )))
            }
        },
    };
    let failure_policy = match obj.shift_remove("failurePolicy") {
        None | Some(Value::Null) => None,
        Some(v) => Some(serde_json::from_value(v).map_err(|_| {
            HookInputError::Invalid("config.failurePolicy must be \"allow\" or \"deny\"".into())
        })?),
    };
    Ok((timeout_ms, failure_policy))
}

/// A script field of `config` (`transform`, `script`): a non-empty string of at most
/// [`super::action::MAX_SCRIPT_BYTES`]. Whether it compiles is checked by the caller, which
/// has the engine.
fn parse_script(
    obj: &mut serde_json::Map<String, Value>,
    key: &str,
) -> Result<Option<String>, HookInputError> {
    match obj.shift_remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s))
            if !s.trim().is_empty() && s.len() <= super::action::MAX_SCRIPT_BYTES =>
        {
            Ok(Some(s))
        }
        Some(_) => Err(HookInputError::Invalid(format!(
            "config.{key} must be a non-empty string of at most {} bytes",
            super::action::MAX_SCRIPT_BYTES
        ))),
    }
}

/// A stored hook.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    pub id: String,
    pub name: String,
    /// Logto's legacy single-event field; new clients use `events`.
    pub event: Option<HookEvent>,
    pub events: Vec<HookEvent>,
    pub config: HookConfig,
    pub signing_key: String,
    /// The key before the last rotation, while deliveries are still signed with it too
    /// (`PATCH /api/hooks/:id/signing-key` with a grace period). Never shown.
    pub previous_signing_key: Option<PreviousKey>,
    pub enabled: bool,
    /// Why hookline disabled the hook (410 Gone, or failing for `--disable-after`), shown as
    /// `disabledReason`; `None` while enabled or when a user disabled it. Enabling it again
    /// clears it.
    pub disabled_reason: Option<String>,
    /// Epoch milliseconds, as Logto returns it.
    pub created_at: i64,
}

/// A signing key kept after a rotation so that receivers can switch over: until
/// `expires_at` (epoch ms), `webhook-signature` carries a signature with it beside the new
/// key's (Standard Webhooks: several space-separated signatures, any one of which verifies).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreviousKey {
    pub key: String,
    pub expires_at: i64,
}

impl PreviousKey {
    /// The key if it still signs at `now`.
    pub fn valid_at(&self, now: i64) -> Option<&str> {
        (now < self.expires_at).then_some(self.key.as_str())
    }
}

impl Hook {
    /// Whether the hook gets `event`: its `events` decide when not empty, the legacy `event`
    /// only when they are (Logto: `events.length > 0 ? events.includes(e) : event === e`).
    /// The stores' subscriber queries say the same in SQL (`sqlite/cache.rs`,
    /// `postgres/queue.rs`).
    pub fn subscribes_to(&self, event: HookEvent) -> bool {
        self.subscribed().contains(&event)
    }

    /// The events the hook gets: its `events`, or the legacy `event` while they are empty.
    pub fn subscribed(&self) -> &[HookEvent] {
        if self.events.is_empty() {
            self.event.as_slice()
        } else {
            &self.events
        }
    }

    /// A hook's scripts and events must agree: a script hook (`config.script`) answers
    /// blocking events in process and has nowhere to deliver anything else, so it subscribes
    /// to blocking events only; a transform (`config.transform`) reshapes deliveries, and a
    /// blocking call is not one, so a hook with a transform subscribes to no blocking event
    /// (it would be refused rather than called untransformed). Checked on create and after
    /// every update.
    pub fn check_scripts(&self) -> Result<(), HookInputError> {
        let events = self.subscribed();
        let blocking = |e: &&HookEvent| e.kind() == super::event::EventKind::Blocking;
        if self.config.script.is_some() {
            if let Some(e) = events.iter().find(|e| !blocking(e)) {
                return Err(HookInputError::Invalid(format!(
                    "a script hook (config.script) answers blocking events only (PreRegister, PreSignIn, PreResetPassword), not {}",
                    e.name()
                )));
            }
        }
        if self.config.transform.is_some() {
            if let Some(e) = events.iter().find(blocking) {
                return Err(HookInputError::Invalid(format!(
                    "config.transform reshapes deliveries, and {} is a blocking call, which is not transformed: subscribe to it with another hook",
                    e.name()
                )));
            }
        }
        Ok(())
    }
}

/// Hook fields of a create or update body, each still as loosely typed JSON.
/// Unknown fields are ignored, as Logto's zod guards strip them.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HookInput {
    #[serde(default)]
    pub name: Option<Value>,
    /// `None`: absent; `Some(Value::Null)`: explicitly null (clears the legacy field on update).
    #[serde(default, deserialize_with = "present")]
    pub event: Option<Value>,
    #[serde(default)]
    pub events: Option<Value>,
    #[serde(default)]
    pub config: Option<Value>,
    #[serde(default)]
    pub enabled: Option<Value>,
}

/// Keeps an explicit `null` apart from an absent field.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Value>, D::Error> {
    Value::deserialize(d).map(Some)
}

/// The parsed changes of `PATCH /api/hooks/:id`; `None` leaves a field alone.
#[derive(Debug, Default)]
pub struct HookPatch {
    pub name: Option<String>,
    pub event: Option<Option<HookEvent>>,
    pub events: Option<Vec<HookEvent>>,
    pub config: Option<HookConfig>,
    pub enabled: Option<bool>,
}

fn parse_name(v: Value) -> Result<String, HookInputError> {
    match v {
        Value::String(s) if s.chars().count() > MAX_NAME_LENGTH => Err(HookInputError::Invalid(
            format!("name is longer than {MAX_NAME_LENGTH} characters"),
        )),
        Value::String(s) if s.is_empty() => {
            Err(HookInputError::Invalid("name must not be empty".into()))
        }
        Value::String(s) => Ok(s),
        _ => Err(HookInputError::Invalid("name must be a string".into())),
    }
}

fn parse_event(v: Value) -> Result<Option<HookEvent>, HookInputError> {
    match v {
        Value::Null => Ok(None),
        Value::String(s) => HookEvent::parse(&s)
            .map(Some)
            .map_err(|e| HookInputError::Invalid(e.to_string())),
        _ => Err(HookInputError::Invalid("event must be a string".into())),
    }
}

/// `events`: a non-empty array of catalog events; repeats are dropped (first one kept), as
/// Logto's `nonemptyUniqueHookEventsGuard` does.
fn parse_events(v: Value) -> Result<Vec<HookEvent>, HookInputError> {
    let Value::Array(items) = v else {
        return Err(HookInputError::Invalid(
            "events must be an array of event names".into(),
        ));
    };
    if items.is_empty() {
        // Logto's `nonemptyUniqueHookEventsGuard`: a guard error, not `hook.missing_events`
        // (which is for a body with neither field).
        return Err(HookInputError::Invalid(
            "events must not be empty: name at least one event".into(),
        ));
    }
    let mut out: Vec<HookEvent> = Vec::with_capacity(items.len());
    for item in items {
        let Value::String(s) = item else {
            return Err(HookInputError::Invalid(
                "events must be an array of event names".into(),
            ));
        };
        let e = HookEvent::parse(&s).map_err(|e| HookInputError::Invalid(e.to_string()))?;
        if !out.contains(&e) {
            out.push(e);
        }
    }
    Ok(out)
}

fn parse_enabled(v: Value) -> Result<bool, HookInputError> {
    v.as_bool()
        .ok_or_else(|| HookInputError::Invalid("enabled must be a boolean".into()))
}

impl HookInput {
    /// Parses a create body into a new hook with the given id, key and creation time.
    pub fn into_new_hook(
        self,
        id: String,
        signing_key: String,
        created_at: i64,
        policy: &TargetPolicy,
    ) -> Result<Hook, HookInputError> {
        let name = self.name.map(parse_name).transpose()?.unwrap_or_default();
        let event = self.event.map(parse_event).transpose()?.flatten();
        let events = match self.events {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => parse_events(v)?,
        };
        if event.is_none() && events.is_empty() {
            return Err(HookInputError::MissingEvents);
        }
        let config = match self.config {
            Some(v) => HookConfig::parse(v, policy)?,
            None => return Err(HookInputError::Invalid("config is required".into())),
        };
        let enabled = self.enabled.map(parse_enabled).transpose()?.unwrap_or(true);
        let hook = Hook {
            id,
            name,
            event,
            events,
            config,
            signing_key,
            previous_signing_key: None,
            enabled,
            disabled_reason: None,
            created_at,
        };
        hook.check_scripts()?;
        Ok(hook)
    }

    /// Parses an update body. Fields given replace the stored ones whole (JSON fields such
    /// as `config` are replaced, not merged), as in Logto.
    pub fn into_patch(self, policy: &TargetPolicy) -> Result<HookPatch, HookInputError> {
        Ok(HookPatch {
            name: self.name.map(parse_name).transpose()?,
            event: self.event.map(parse_event).transpose()?,
            events: self.events.map(parse_events).transpose()?,
            config: self
                .config
                .map(|c| HookConfig::parse(c, policy))
                .transpose()?,
            enabled: self.enabled.map(parse_enabled).transpose()?,
        })
    }
}

impl HookPatch {
    pub fn apply(self, hook: &mut Hook) {
        if let Some(n) = self.name {
            hook.name = n;
        }
        if let Some(e) = self.event {
            hook.event = e;
        }
        if let Some(e) = self.events {
            hook.events = e;
        }
        if let Some(c) = self.config {
            hook.config = c;
        }
        if let Some(e) = self.enabled {
            // Enabled again, or disabled by a user: hookline's reason no longer holds.
            hook.enabled = e;
            hook.disabled_reason = None;
        }
    }
}

/// Parses the `events` of `POST /api/hooks/:id/test`.
pub fn parse_test_events(v: Option<Value>) -> Result<Vec<HookEvent>, HookInputError> {
    match v {
        None | Some(Value::Null) => Err(HookInputError::Invalid("events is required".into())),
        Some(v) => parse_events(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(v: Value) -> HookInput {
        serde_json::from_value(v).unwrap()
    }

    fn with_headers(headers: Value) -> Result<HookConfig, HookInputError> {
        HookConfig::parse(
            json!({"url": "https://e.com", "headers": headers}),
            &TargetPolicy::default(),
        )
    }

    #[test]
    fn headers_the_engine_owns_are_refused_in_any_case() {
        for name in [
            "Content-Length",
            "transfer-encoding",
            "CONTENT-ENCODING",
            "TE",
            "Trailer",
            "Connection",
            "upgrade",
            "Expect",
            "Host",
            "Keep-Alive",
            "Proxy-Connection",
            "Logto-Signature-Sha-256",
            "webhook-ID",
            "Webhook-Timestamp",
            "webhook-signature",
        ] {
            let err = with_headers(json!({ name: "2" })).unwrap_err().to_string();
            assert!(err.contains(&format!("'{name}'")), "{name}: {err}");
        }
        for name in [
            "Content-Type",
            "User-Agent",
            "Authorization",
            "X-Te",
            "Hosted-By",
        ] {
            assert!(with_headers(json!({ name: "x" })).is_ok(), "{name}");
        }
    }

    #[test]
    fn two_headers_that_differ_only_in_case_are_refused() {
        let err = with_headers(json!({"X-Tenant": "a", "x-tenant": "b"}))
            .unwrap_err()
            .to_string();
        assert!(err.contains("'X-Tenant' and 'x-tenant'"), "{err}");
    }

    #[test]
    fn stored_hooks_with_reserved_headers_still_load() {
        // Saved before the rule: reading it back must not fail (the sender drops them).
        let stored: HookConfig = serde_json::from_value(
            json!({"url": "https://e.com", "headers": {"content-length": "2", "x-a": "1"}}),
        )
        .unwrap();
        assert_eq!(stored.headers.unwrap().iter().count(), 2);
    }

    #[test]
    fn create_body_parses_and_dedupes_events() {
        let hook = input(json!({
            "name": "crm", "events": ["PostSignIn", "User.Created", "PostSignIn"],
            "config": {"url": "https://example.com/h", "headers": {"x-a": "1"}}, "unknown": 1
        }))
        .into_new_hook("id".into(), "key".into(), 1, &TargetPolicy::default())
        .unwrap();
        assert!(hook.enabled);
        let names: Vec<&str> = hook.events.iter().map(|e| e.name()).collect();
        assert_eq!(names, ["PostSignIn", "User.Created"]);
    }

    #[test]
    fn create_body_errors_are_specific() {
        let new = |v| input(v).into_new_hook("id".into(), "k".into(), 1, &TargetPolicy::default());
        let cfg = json!({"url": "https://example.com"});
        assert!(matches!(
            new(json!({"config": cfg})),
            Err(HookInputError::MissingEvents)
        ));
        assert!(matches!(
            new(json!({"events": [], "config": cfg})),
            Err(HookInputError::Invalid(_))
        ));
        assert!(matches!(
            new(json!({"events": ["Nope"], "config": cfg})),
            Err(HookInputError::Invalid(_))
        ));
        assert!(matches!(
            new(json!({"events": ["PostSignIn"]})),
            Err(HookInputError::Invalid(_))
        ));
        assert!(matches!(
            new(json!({"events": ["PostSignIn"], "config": {"url": "http://10.0.0.1/"}})),
            Err(HookInputError::Target(TargetError::Private(_)))
        ));
        assert!(matches!(
            new(
                json!({"events": ["PostSignIn"], "config": {"url": "https://e.com", "headers": {"bad name": "x"}}})
            ),
            Err(HookInputError::Invalid(_))
        ));
        assert!(matches!(
            new(
                json!({"events": ["PostSignIn"], "config": {"url": "https://e.com", "retries": 4}})
            ),
            Err(HookInputError::Invalid(_))
        ));
        assert!(matches!(
            new(json!({"name": "x".repeat(257), "events": ["PostSignIn"], "config": cfg})),
            Err(HookInputError::Invalid(_))
        ));
        let legacy = new(json!({"event": "PostSignIn", "config": cfg})).unwrap();
        assert_eq!(legacy.event, Some(HookEvent::parse("PostSignIn").unwrap()));
        assert!(legacy.events.is_empty());
    }

    #[test]
    fn the_legacy_event_counts_only_while_events_is_empty() {
        let cfg = json!({"url": "https://e.com"});
        let sign_in = HookEvent::parse("PostSignIn").unwrap();
        let register = HookEvent::parse("PostRegister").unwrap();
        let both = input(json!({"event": "PostSignIn", "events": ["PostRegister"], "config": cfg}))
            .into_new_hook("id".into(), "k".into(), 1, &TargetPolicy::default())
            .unwrap();
        assert!(both.subscribes_to(register) && !both.subscribes_to(sign_in));
        let legacy = input(json!({"event": "PostSignIn", "config": cfg}))
            .into_new_hook("id".into(), "k".into(), 1, &TargetPolicy::default())
            .unwrap();
        assert!(legacy.subscribes_to(sign_in) && !legacy.subscribes_to(register));
    }

    #[test]
    fn patch_keeps_null_apart_from_absent() {
        let mut hook = input(json!({"event": "PostSignIn", "config": {"url": "https://e.com"}}))
            .into_new_hook("id".into(), "k".into(), 1, &TargetPolicy::default())
            .unwrap();
        input(json!({"name": "n"}))
            .into_patch(&TargetPolicy::default())
            .unwrap()
            .apply(&mut hook);
        assert_eq!(hook.event, Some(HookEvent::parse("PostSignIn").unwrap()));
        input(json!({"event": null, "enabled": false}))
            .into_patch(&TargetPolicy::default())
            .unwrap()
            .apply(&mut hook);
        assert_eq!(hook.event, None);
        assert!(!hook.enabled);
        assert_eq!(hook.name, "n");
    }

    #[test]
    fn headers_keep_their_order_through_json() {
        let c = HookConfig::parse(
            json!({"url": "https://e.com", "headers": {"b": "1", "a": "2"}}),
            &TargetPolicy::default(),
        )
        .unwrap();
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(
            text,
            r#"{"url":"https://e.com","headers":{"b":"1","a":"2"}}"#
        );
        let back: HookConfig = serde_json::from_str(&text).unwrap();
        assert_eq!(back, c);
    }
}
