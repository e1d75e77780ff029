//! `POST /api/events` bodies: the payload built from them and the `hookId` splice.
#![no_main]
use hookline::domain::event::HookEvent;
use hookline::domain::payload::{delivery_body, event_payload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(serde_json::Value::Object(published)) = serde_json::from_slice(data) else {
        return;
    };
    let Ok(event) = HookEvent::parse("User.Created") else {
        return;
    };
    if let Ok(payload) = event_payload(event, published, "2026-01-01T00:00:00.000Z") {
        let text = serde_json::Value::Object(payload.clone()).to_string();
        let body = delivery_body(&text, "hook\"id\u{2028}");
        let sent: serde_json::Map<String, serde_json::Value> =
            serde_json::from_str(&body).expect("the spliced body is JSON");
        assert_eq!(sent.len(), payload.len() + 1);
    }
    // The splice also takes whatever text a store might hold.
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = delivery_body(text, "h");
    }
});
