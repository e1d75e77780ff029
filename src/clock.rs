//! The wall clock, in the unit the store and the queue use: epoch milliseconds.

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

/// Now, as an event's `createdAt` (JavaScript-style ISO text) and in epoch milliseconds: one
/// instant for both, so that the payload and the row agree.
pub fn now_stamp() -> (String, i64) {
    let now = time::OffsetDateTime::now_utc();
    (
        crate::domain::payload::iso_timestamp(now),
        (now.unix_timestamp_nanos() / 1_000_000) as i64,
    )
}
