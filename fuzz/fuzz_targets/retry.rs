//! `--retry-schedule` values and receivers' `Retry-After` answers.
#![no_main]
use hookline::domain::retry::{parse_retry_after, RetrySchedule};
use libfuzzer_sys::fuzz_target;
use std::time::{Duration, SystemTime};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    let wish = parse_retry_after(raw, SystemTime::now());
    if let Ok(schedule) = RetrySchedule::parse(raw) {
        for attempt in 0..=schedule.max_attempts() {
            let _ = schedule.next_delay(attempt, wish);
            let _ = schedule.next_delay(attempt, Some(Duration::MAX));
        }
    }
});
