//! When a failed delivery is tried again.
//!
//! The schedule is a list of delays between attempts; the default is the Standard Webhooks
//! recommendation (5s, 5m, 30m, 2h, 5h, 10h, 14h, 20h, 24h), i.e. ten attempts over about
//! three days. Each delay gets ±20 % jitter so that a burst of failures against one endpoint
//! does not come back as one burst. A `Retry-After` answer (429/503) can push the next attempt
//! later, but never beyond the schedule's longest delay, so a hostile or confused receiver
//! cannot park a delivery forever.

use rand::Rng;
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetrySchedule(Vec<Duration>);

/// The longest delay one step of a schedule may have. Bounded so that jitter and due times
/// stay far inside `Duration` and epoch-millisecond arithmetic (a delay of 5.8e11 years
/// overflowed the jitter's multiplication; found by `tests/properties.rs`).
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(30 * 24 * 3600);

pub const DEFAULT_RETRY_SCHEDULE: &str = "5s,5m,30m,2h,5h,10h,14h,20h,24h";

impl RetrySchedule {
    /// Parses a comma list of durations such as `5s,5m,2h` (humantime syntax: `500ms`, `1m 30s`).
    /// An empty string means "never retry".
    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(Self(Vec::new()));
        }
        s.split(',')
            .map(|part| {
                let part = part.trim();
                match humantime::parse_duration(part) {
                    Ok(d) if d <= MAX_RETRY_DELAY => Ok(d),
                    Ok(_) => Err(format!(
                        "'{part}' is longer than the longest delay between attempts, 30 days"
                    )),
                    Err(e) => Err(format!(
                        "'{part}' is not a duration ({e}); use e.g. 5s,5m,30m"
                    )),
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self)
    }

    /// How many attempts a delivery gets in all: the first one plus one per delay.
    pub fn max_attempts(&self) -> u32 {
        self.0.len() as u32 + 1
    }

    pub fn longest(&self) -> Duration {
        self.0.iter().max().copied().unwrap_or_default()
    }

    /// The delay before the next attempt after `attempts_made` failed attempts, jittered, or
    /// `None` when the schedule is used up. `retry_after` is the receiver's own wish.
    pub fn next_delay(
        &self,
        attempts_made: u32,
        retry_after: Option<Duration>,
    ) -> Option<Duration> {
        let base = *self.0.get(attempts_made.checked_sub(1)? as usize)?;
        let jittered = base.mul_f64(rand::thread_rng().gen_range(0.8..=1.2));
        Some(match retry_after {
            Some(wish) => jittered.max(wish.min(self.longest())),
            None => jittered,
        })
    }
}

impl std::str::FromStr for RetrySchedule {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        Self::parse(s)
    }
}

/// Reads a `Retry-After` value: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str, now: std::time::SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = httpdate::parse_http_date(value).ok()?;
    Some(when.duration_since(now).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_schedule_parses_to_ten_attempts() {
        let s = RetrySchedule::parse(DEFAULT_RETRY_SCHEDULE).unwrap();
        assert_eq!(s.max_attempts(), 10);
        assert_eq!(s.longest(), Duration::from_secs(24 * 3600));
        assert!(RetrySchedule::parse("5s,nonsense").is_err());
        assert_eq!(RetrySchedule::parse("").unwrap().max_attempts(), 1);
    }

    #[test]
    fn delays_are_jittered_and_end_with_the_schedule() {
        let s = RetrySchedule::parse("10s,100s").unwrap();
        for _ in 0..100 {
            let d = s.next_delay(1, None).unwrap();
            assert!(
                d >= Duration::from_secs(8) && d <= Duration::from_secs(12),
                "{d:?}"
            );
        }
        assert!(s.next_delay(2, None).unwrap() >= Duration::from_secs(80));
        assert_eq!(s.next_delay(3, None), None);
        assert_eq!(s.next_delay(0, None), None);
    }

    #[test]
    fn retry_after_is_honoured_within_the_longest_delay() {
        let s = RetrySchedule::parse("1s,100s").unwrap();
        let d = s.next_delay(1, Some(Duration::from_secs(30))).unwrap();
        assert_eq!(d, Duration::from_secs(30));
        let capped = s.next_delay(1, Some(Duration::from_secs(10_000))).unwrap();
        assert_eq!(capped, Duration::from_secs(100));
        let now = std::time::SystemTime::now();
        assert_eq!(
            parse_retry_after("120", now),
            Some(Duration::from_secs(120))
        );
        let later = now + Duration::from_secs(60);
        let d = parse_retry_after(&httpdate::fmt_http_date(later), now).unwrap();
        assert!(d <= Duration::from_secs(60) && d >= Duration::from_secs(58));
        assert_eq!(parse_retry_after("soon", now), None);
    }
}
