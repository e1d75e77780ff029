//! Property tests for every parser of outside input (issue 13): whatever comes in, they never
//! panic, and what they accept has the shape the rest of hookline relies on. The same
//! parsers are fuzzed by `fuzz/` (see the README, "Fuzzing").
//!
//! `PROPTEST_CASES` raises the number of cases (256 by default) for a longer run.

use hookline::domain::authorization::Authorization;
use hookline::domain::event::HookEvent;
use hookline::domain::hook::{reserved_header, HookConfig, HookInput};
use hookline::domain::identity::user::{email_key, nfc};
use hookline::domain::interaction::{read_verdict, Identifier};
use hookline::domain::payload::{delivery_body, event_payload};
use hookline::domain::retry::{parse_retry_after, RetrySchedule};
use hookline::domain::target::{check_url, is_forbidden_ip, TargetPolicy};
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime};

/// Any JSON value, numbers as written in all their forms, strings with any characters.
fn json_value() -> impl Strategy<Value = Value> {
    let number = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| f.to_string()),
        "-?(0|[1-9][0-9]{0,40})(\\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?",
    ]
    .prop_map(|text| serde_json::from_str::<Value>(&text).unwrap_or(Value::Null));
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number,
        any::<String>().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((any::<String>(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((any::<String>(), json_value()), 0..8)
        .prop_map(|kv| kv.into_iter().collect())
}

/// Header names: ones hookline owns in any case, ordinary tokens, and anything at all.
fn header_name() -> impl Strategy<Value = String> {
    let owned = prop::sample::select(vec![
        "content-length",
        "transfer-encoding",
        "te",
        "connection",
        "host",
        "upgrade",
        "expect",
        "keep-alive",
        "webhook-signature",
        "logto-signature-sha-256",
        "content-type",
        "x-tenant",
    ]);
    prop_oneof![
        (owned, prop::collection::vec(any::<bool>(), 32)).prop_map(|(name, upper)| name
            .chars()
            .zip(upper)
            .map(|(c, u)| if u { c.to_ascii_uppercase() } else { c })
            .collect()),
        "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,20}",
        any::<String>(),
    ]
}

/// Names from the event catalog.
fn event_name() -> impl Strategy<Value = String> {
    prop::sample::select(
        HookEvent::all()
            .map(|e| e.name().to_owned())
            .collect::<Vec<_>>(),
    )
}

/// A publisher's `createdAt`: absent, an RFC 3339 timestamp in several spellings, or anything.
fn created_at() -> impl Strategy<Value = Option<Value>> {
    let stamp = (0i64..4_102_444_800, 0u32..1000, -12i32..=14).prop_map(|(secs, ms, hours)| {
        let at = time::OffsetDateTime::from_unix_timestamp(secs).unwrap()
            + time::Duration::milliseconds(i64::from(ms));
        let offset = time::UtcOffset::from_hms(hours as i8, 0, 0).unwrap();
        at.to_offset(offset)
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap()
    });
    prop_oneof![
        Just(None),
        stamp.prop_map(|s| Some(Value::String(s))),
        json_value().prop_map(Some),
    ]
}

fn forbidden_v4() -> impl Strategy<Value = Ipv4Addr> {
    any::<u32>()
        .prop_map(Ipv4Addr::from)
        .prop_filter("forbidden", |ip| is_forbidden_ip(IpAddr::V4(*ip)))
}

/// Every IPv6 form that carries `v4` in its last 32 bits or (6to4) bits 16–47.
fn v6_embeddings(v4: Ipv4Addr) -> Vec<Ipv6Addr> {
    let [a, b, c, d] = v4.octets();
    let (hi, lo) = (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d]));
    vec![
        Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, hi, lo), // mapped
        Ipv6Addr::new(0, 0, 0, 0, 0xffff, 0, hi, lo), // translated
        Ipv6Addr::new(0, 0, 0, 0, 0, 0, hi, lo),      // compatible
        Ipv6Addr::new(0x64, 0xff9b, 0, 0, 0, 0, hi, lo), // NAT64
        Ipv6Addr::new(0x2002, hi, lo, 0, 0, 0, 0, 1), // 6to4
        Ipv6Addr::new(0x2606, 0x4700, 0, 0, 0, 0x5efe, hi, lo), // ISATAP
    ]
}

proptest! {
    #[test]
    fn hook_bodies_never_panic_and_what_they_accept_is_well_formed(body in json_value(), allow in any::<bool>()) {
        if let Ok(input) = serde_json::from_value::<HookInput>(body) {
            let _ = input.into_new_hook("id".into(), "key".into(), 1, &TargetPolicy::all_private(allow));
        }
    }

    #[test]
    fn hook_shaped_bodies_parse_into_well_formed_hooks(
        // Mostly valid parts, so that most cases parse and the assertions below run.
        name in prop::option::of(prop_oneof![3 => "[ -~]{1,30}", 1 => any::<String>()]),
        events in prop::collection::vec(prop_oneof![4 => event_name(), 1 => any::<String>()], 0..4),
        url in prop_oneof![
            3 => Just("https://example.com/hook".to_owned()),
            1 => Just("http://93.184.215.14:8080/x?y=1".to_owned()),
            1 => "https?://[a-z0-9.-]{1,20}(:[0-9]{1,5})?/[ -~]{0,20}",
            1 => any::<String>(),
        ],
        headers in prop::collection::vec(
            (prop_oneof![3 => "x-[a-z0-9-]{1,15}", 1 => header_name()],
             prop_oneof![3 => "[ -~]{0,20}", 1 => any::<String>()]),
            0..3,
        ),
        retries in prop_oneof![2 => Just(Value::Null), 2 => (0u8..=3).prop_map(Value::from), 1 => json_value()],
        enabled in prop_oneof![3 => any::<bool>().prop_map(Value::Bool), 1 => json_value()],
    ) {
        let headers: Map<String, Value> = headers.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        let body = serde_json::json!({"name": name, "events": events, "enabled": enabled,
            "config": {"url": url, "headers": headers, "retries": retries}});
        let input: HookInput = serde_json::from_value(body).expect("an object reads as a HookInput");
        if let Ok(hook) = input.into_new_hook("id".into(), "key".into(), 1, &TargetPolicy::default()) {
            prop_assert!(!hook.events.is_empty());
            for e in &hook.events {
                prop_assert!(events.contains(&e.name().to_owned()));
            }
            let url = hook.config.url.as_deref().unwrap_or_default();
            prop_assert!(check_url(url, &TargetPolicy::default()).is_ok(), "{}", url);
            prop_assert!(hook.config.retries.is_none_or(|r| r <= 3));
            for (name, value) in hook.config.headers.iter().flat_map(|h| h.iter()) {
                prop_assert!(reserved_header(name).is_none(), "{name}");
                prop_assert!(http::HeaderValue::from_str(value).is_ok());
            }
        }
    }

    #[test]
    fn accepted_header_maps_hold_no_owned_header_and_no_case_twins(
        headers in prop::collection::vec((header_name(), any::<String>()), 0..6)
    ) {
        let map: Map<String, Value> = headers.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
        let config = serde_json::json!({"url": "https://example.com/h", "headers": map});
        if let Ok(parsed) = HookConfig::parse(config, &TargetPolicy::default()) {
            let names: Vec<&str> = parsed.headers.iter().flat_map(|h| h.iter()).map(|(k, _)| k).collect();
            for (i, name) in names.iter().enumerate() {
                prop_assert!(reserved_header(name).is_none(), "{name}");
                prop_assert!(http::HeaderName::from_bytes(name.as_bytes()).is_ok());
                prop_assert!(!names[..i].iter().any(|o| o.eq_ignore_ascii_case(name)));
            }
        }
    }

    #[test]
    fn event_payloads_keep_every_value_and_splice_to_valid_json(
        published in json_object(), created in created_at(), hook_id in any::<String>()
    ) {
        let event = HookEvent::parse("User.Created").unwrap();
        let mut published = published;
        published.shift_remove("createdAt");
        if let Some(c) = &created {
            published.insert("createdAt".into(), c.clone());
        }
        let valid = match &created {
            None => true,
            Some(Value::String(s)) => hookline::domain::payload::is_rfc3339(s),
            Some(_) => false,
        };
        let result = event_payload(event, published.clone(), "2026-01-01T00:00:00.000Z");
        prop_assert_eq!(result.is_ok(), valid, "createdAt {:?}", created);
        if let Ok(payload) = result {
            let keys: Vec<&String> = payload.keys().collect();
            prop_assert_eq!(keys[0], "event");
            prop_assert_eq!(keys[1], "createdAt");
            if let Some(c) = &created {
                prop_assert_eq!(&payload["createdAt"], c, "kept as written");
            }
            prop_assert!(!payload.contains_key("hookId"));
            for (k, v) in &published {
                if !matches!(k.as_str(), "event" | "createdAt" | "hookId") {
                    prop_assert_eq!(&payload[k], v);
                }
            }
            let body = delivery_body(&Value::Object(payload.clone()).to_string(), &hook_id);
            let sent: Map<String, Value> = serde_json::from_str(&body).expect("valid JSON");
            prop_assert_eq!(sent.keys().next_back().map(String::as_str), Some("hookId"));
            prop_assert_eq!(&sent["hookId"], &Value::String(hook_id));
            prop_assert_eq!(sent.len(), payload.len() + 1);
        }
    }

    #[test]
    fn the_hook_id_splice_takes_any_object_text(object in json_object(), pretty in any::<bool>(), hook_id in any::<String>()) {
        let text = if pretty {
            serde_json::to_string_pretty(&object).unwrap()
        } else {
            serde_json::to_string(&object).unwrap()
        };
        let body = delivery_body(&text, &hook_id);
        let mut sent: Map<String, Value> = serde_json::from_str(&body).expect("valid JSON");
        prop_assert_eq!(sent.shift_remove("hookId"), Some(Value::String(hook_id)));
        let mut expected = object;
        expected.shift_remove("hookId");
        prop_assert_eq!(sent, expected);
    }

    #[test]
    fn url_checks_never_panic(raw in any::<String>(), allow in any::<bool>()) {
        let _ = check_url(&raw, &TargetPolicy::all_private(allow));
        let _ = check_url(&format!("http://{raw}/"), &TargetPolicy::all_private(allow));
    }

    #[test]
    fn literal_addresses_are_judged_as_the_resolver_judges_them(v4 in any::<u32>(), v6 in any::<u128>(), dot in any::<bool>()) {
        let v4 = Ipv4Addr::from(v4);
        let dot = if dot { "." } else { "" };
        let refused = check_url(&format!("http://{v4}{dot}/"), &TargetPolicy::default()).is_err();
        prop_assert_eq!(refused, is_forbidden_ip(IpAddr::V4(v4)));
        let v6 = Ipv6Addr::from(v6);
        let refused = check_url(&format!("http://[{v6}]/"), &TargetPolicy::default()).is_err();
        prop_assert_eq!(refused, is_forbidden_ip(IpAddr::V6(v6)));
    }

    #[test]
    fn every_ipv6_embedding_of_a_forbidden_ipv4_is_forbidden(v4 in forbidden_v4()) {
        for v6 in v6_embeddings(v4) {
            prop_assert!(is_forbidden_ip(IpAddr::V6(v6)), "{v6} embeds {v4}");
        }
    }

    #[test]
    fn retry_schedules_and_retry_after_never_panic(raw in any::<String>(), attempt in 0u32..20, wish in any::<u64>()) {
        if let Ok(schedule) = RetrySchedule::parse(&raw) {
            let _ = schedule.next_delay(attempt, Some(Duration::from_secs(wish)));
        }
        let _ = parse_retry_after(&raw, SystemTime::now());
    }

    #[test]
    fn any_delay_humantime_takes_is_safe(secs in any::<u64>(), attempt in 1u32..3) {
        if let Ok(schedule) = RetrySchedule::parse(&format!("{secs}s,1s")) {
            let _ = schedule.next_delay(attempt, Some(Duration::from_secs(secs)));
        }
    }

    #[test]
    fn written_schedules_parse_back(delays in prop::collection::vec(1u64..=30 * 24 * 3600, 0..10)) {
        let text = delays.iter().map(|s| format!("{s}s")).collect::<Vec<_>>().join(",");
        let schedule = RetrySchedule::parse(&text).unwrap();
        prop_assert_eq!(schedule.max_attempts() as usize, delays.len() + 1);
        for (i, s) in delays.iter().enumerate() {
            let d = schedule.next_delay(i as u32 + 1, None).unwrap();
            prop_assert!(d >= Duration::from_secs(*s).mul_f64(0.8) && d <= Duration::from_secs(*s).mul_f64(1.2));
        }
    }

    #[test]
    fn retry_after_seconds_and_dates_parse(secs in 0u64..10_000_000) {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        prop_assert_eq!(parse_retry_after(&secs.to_string(), now), Some(Duration::from_secs(secs)));
        let date = httpdate::fmt_http_date(now + Duration::from_secs(secs));
        prop_assert_eq!(parse_retry_after(&date, now), Some(Duration::from_secs(secs)));
    }

    #[test]
    fn identifiers_have_one_spelling(raw in any::<String>()) {
        if let Some(id) = Identifier::parse(&raw) {
            prop_assert_eq!(Identifier::parse(id.value()), Some(id.clone()));
        }
        let key = email_key(&raw);
        prop_assert_eq!(email_key(&key), key.clone());
        use unicode_normalization::UnicodeNormalization;
        let decomposed: String = raw.nfd().collect();
        prop_assert_eq!(email_key(&decomposed), key);
        prop_assert_eq!(nfc(&decomposed), nfc(&raw));
    }

    #[test]
    fn authorization_headers_parse_once(raw in any::<String>(), token in "[A-Za-z0-9._~+/-]{1,40}=*", upper in prop::collection::vec(any::<bool>(), 6)) {
        let _ = Authorization::parse(&raw).map(|a| (a.bearer(), a.basic()));
        let scheme: String = "bearer".chars().zip(upper).map(|(c, u)| if u { c.to_ascii_uppercase() } else { c }).collect();
        let header = format!("{scheme} {token}");
        let parsed = Authorization::parse(&header);
        prop_assert_eq!(parsed.and_then(Authorization::bearer), Some(token.as_str()));
    }

    #[test]
    fn blocking_hook_answers_never_panic(status in prop::option::of(any::<u16>()), body in any::<String>(), json in json_value()) {
        let _ = read_verdict(status, &body, None);
        let _ = read_verdict(status, &json.to_string(), None);
    }
}
