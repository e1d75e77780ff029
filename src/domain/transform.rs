//! A webhook's transform (issue 16, beyond Logto): `config.transform` is a script that defines
//! `transform({ event, payload, headers })`, run once per delivery before it is signed. This
//! module is its contract without I/O: the input a run gets ([`input`]) and what its answer
//! means ([`read`]).
//!
//! The answer is `{payload, headers?}` (send this JSON body, with these custom headers in
//! place of the hook's) or `null` (skip this delivery). Anything else, `undefined` included,
//! is an error: a transform that forgot its `return` should fail loudly in the delivery's
//! log rather than skip or send every event unchanged.

use super::hook::{HookHeaders, HookInputError};
use serde_json::{json, Map, Value};

/// The function a transform script defines.
pub const ENTRY: &str = "transform";

/// The largest transformed body, in bytes (a webhook body is at most this much either way:
/// a script's whole result is capped at 1 MiB of JSON).
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// What the transform decided for one delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transformed {
    /// Send `body` (JSON text), with `headers` as the custom headers when `Some` (the hook's
    /// own otherwise).
    Send {
        body: String,
        headers: Option<HookHeaders>,
    },
    /// Do not send this delivery: it ends as `skipped`.
    Skip,
}

/// The run's argument: `{event, payload, headers}`, where `payload` is the body hookline
/// would send (`body`, JSON text, `hookId` included) and `headers` the hook's custom headers
/// as they would be sent (names in lower case, those the engine owns left out; `{}` when
/// there are none), so that passing them on as they are is always valid.
pub fn input<'a>(
    event: &str,
    body: &str,
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Value {
    let payload = serde_json::from_str::<Value>(body).unwrap_or(Value::Null);
    let headers: Map<String, Value> = headers
        .into_iter()
        .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
        .collect();
    json!({"event": event, "payload": payload, "headers": headers})
}

/// Reads a transform's answer (its result as JSON, `Null` for both `null` and `undefined`:
/// `defined` tells them apart). The error is the message the delivery's log shows.
pub fn read(answer: Value, defined: bool) -> Result<Transformed, String> {
    let mut obj = match answer {
        Value::Null if defined => return Ok(Transformed::Skip),
        Value::Null => return Err(
            "the transform returned nothing: return {payload, headers?} to send, or null to skip"
                .into(),
        ),
        Value::Object(obj) => obj,
        other => {
            return Err(format!(
                "the transform returned {}: return {{payload, headers?}} to send, or null to skip",
                kind(&other)
            ))
        }
    };
    let payload = obj
        .shift_remove("payload")
        .ok_or("the transform's answer has no `payload`")?;
    if payload.is_null() {
        return Err("the transform's `payload` is null: return null itself to skip".into());
    }
    let headers = match obj.shift_remove("headers") {
        None | Some(Value::Null) => None,
        Some(Value::Object(map)) => {
            Some(HookHeaders::parse_input(map).map_err(|e: HookInputError| {
                // The rules are the hook's headers'; the fault is the transform's.
                format!(
                    "the transform's {}",
                    e.to_string().replacen("config.headers", "headers", 1)
                )
            })?)
        }
        Some(other) => {
            return Err(format!(
                "the transform's `headers` is {}, not an object of strings",
                kind(&other)
            ))
        }
    };
    if let Some(key) = obj.keys().next() {
        return Err(format!(
            "the transform's answer has `{key}`: only `payload` and `headers` are read"
        ));
    }
    let body = payload.to_string();
    if body.len() > MAX_BODY_BYTES {
        return Err(format!(
            "the transformed body is {} bytes, more than {MAX_BODY_BYTES}",
            body.len()
        ));
    }
    Ok(Transformed::Send { body, headers })
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_has_the_body_as_an_object_and_the_hooks_headers() {
        let v = input(
            "User.Created",
            r#"{"event":"User.Created","hookId":"h"}"#,
            [("x-a", "1")],
        );
        assert_eq!(
            v,
            json!({"event": "User.Created", "payload": {"event": "User.Created", "hookId": "h"}, "headers": {"x-a": "1"}})
        );
        assert_eq!(input("E", "{}", [])["headers"], json!({}));
    }

    #[test]
    fn null_skips_and_undefined_is_an_error() {
        assert_eq!(read(Value::Null, true), Ok(Transformed::Skip));
        assert!(read(Value::Null, false)
            .unwrap_err()
            .contains("returned nothing"));
    }

    #[test]
    fn payload_and_headers_are_read_in_order() {
        let t = read(
            json!({"payload": {"b": 1, "a": [true]}, "headers": {"X-Tenant": "t1"}}),
            true,
        )
        .unwrap();
        let Transformed::Send { body, headers } = t else {
            panic!("not a send: {t:?}")
        };
        assert_eq!(body, r#"{"b":1,"a":[true]}"#);
        assert_eq!(
            serde_json::to_value(headers.unwrap()).unwrap(),
            json!({"X-Tenant": "t1"})
        );
        // Without headers, the hook's own are sent.
        assert_eq!(
            read(json!({"payload": "text"}), true),
            Ok(Transformed::Send {
                body: "\"text\"".into(),
                headers: None
            })
        );
    }

    #[test]
    fn other_answers_are_errors_that_say_why() {
        for (answer, says) in [
            (json!(1), "returned a number"),
            (json!([]), "returned an array"),
            (json!({}), "no `payload`"),
            (json!({"payload": null}), "return null itself"),
            (json!({"payload": 1, "header": {}}), "has `header`"),
            (json!({"payload": 1, "headers": "x"}), "is a string"),
            (
                json!({"payload": 1, "headers": {"x": 1}}),
                "must be a string",
            ),
            (
                json!({"payload": 1, "headers": {"webhook-signature": "v1,x"}}),
                "cannot be set",
            ),
            (
                json!({"payload": 1, "headers": {"bad name": "x"}}),
                "not a valid header name",
            ),
        ] {
            let e = read(answer.clone(), true).unwrap_err();
            assert!(e.contains(says), "{answer}: {e}");
        }
        let big = "x".repeat(MAX_BODY_BYTES);
        assert!(read(json!({"payload": big}), true)
            .unwrap_err()
            .contains("more than"));
    }
}
