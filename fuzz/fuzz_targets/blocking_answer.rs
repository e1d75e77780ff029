//! What a blocking hook answers (status and body), read into a verdict.
#![no_main]
use hookline::domain::interaction::read_verdict;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (status, body) = match data.split_first() {
        Some((s, rest)) => (Some(u16::from(*s) * 3), rest),
        None => (None, data),
    };
    let _ = read_verdict(status, &String::from_utf8_lossy(body), None);
});
