//! Hook URLs and targets: the save-time SSRF check.
#![no_main]
use hookline::domain::target::{check_url, TargetPolicy};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(raw) = std::str::from_utf8(data) {
        let _ = check_url(raw, &TargetPolicy::default());
        let _ = check_url(&format!("http://{raw}/"), &TargetPolicy::default());
        let _ = check_url(&format!("http://[{raw}]/"), &TargetPolicy::default());
    }
});
