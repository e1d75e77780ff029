//! `POST/PATCH /api/hooks` bodies, and `config` (URL, headers, retries, blocking settings).
#![no_main]
use hookline::domain::hook::{reserved_header, HookConfig, HookInput};
use hookline::domain::target::TargetPolicy;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    if let Ok(input) = serde_json::from_value::<HookInput>(value.clone()) {
        if let Ok(hook) = input.into_new_hook("id".into(), "key".into(), 1, &TargetPolicy::default()) {
            for (name, _) in hook.config.headers.iter().flat_map(|h| h.iter()) {
                assert!(reserved_header(name).is_none(), "{name}");
            }
        }
    }
    if let Ok(input) = serde_json::from_value::<HookInput>(value.clone()) {
        let _ = input.into_patch(&TargetPolicy::default());
    }
    let _ = HookConfig::parse(value, &TargetPolicy::default());
});
