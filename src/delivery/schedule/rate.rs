//! A hook's `config.rateLimit` as a pacing rule, without I/O: the generic cell rate algorithm
//! (GCRA, the leaky bucket "as a meter" of ITU-T I.371), which keeps one number per hook, the
//! theoretical arrival time of the next send.
//!
//! A limit of `r` deliveries per second spaces sends `1000 / r` ms apart and allows a burst of
//! a tenth of a second's worth (at least one): in any window of `t` seconds at most
//! `r · t + max(1, r / 10)` requests start. The burst lets a fast limit (1,000/s) be kept with
//! a wake-up every few milliseconds rather than one per send.

/// The pacing state of one rate-limited hook (times in epoch milliseconds, as `f64` so that
/// intervals below a millisecond add up exactly enough).
#[derive(Debug, Clone, PartialEq)]
pub struct Pace {
    /// Deliveries per second (`config.rateLimit`, at least 1).
    rate: u32,
    /// Milliseconds between sends at the limit.
    interval: f64,
    /// How far ahead of its theoretical time a send may start: the burst.
    tolerance: f64,
    /// When the next send would start if sends came exactly at the limit.
    tat: f64,
}

impl Pace {
    /// The pace of `rate` deliveries per second (0 is taken as 1).
    pub fn new(rate: u32) -> Self {
        let rate = rate.max(1);
        let interval = 1000.0 / f64::from(rate);
        let burst = (rate / 10).max(1);
        Self {
            rate,
            interval,
            tolerance: interval * f64::from(burst - 1),
            tat: f64::MIN,
        }
    }

    /// The limit it keeps.
    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// When the next send may start (ms), `now` if it may start now.
    pub fn next_allowed(&self, now: i64) -> i64 {
        let at = (self.tat - self.tolerance).ceil();
        if at <= now as f64 {
            now
        } else {
            at as i64
        }
    }

    /// Whether a send may start at `now`.
    pub fn allows(&self, now: i64) -> bool {
        self.next_allowed(now) <= now
    }

    /// Books a send started at `now` (the caller checked [`Self::allows`]).
    pub fn take(&mut self, now: i64) {
        self.tat = self.tat.max(now as f64) + self.interval;
    }

    /// How many deliveries of this hook may wait in memory: as many as start within
    /// `hold_ms` at the limit (at least one), so that none waits past its lease.
    pub fn hold(&self, hold_ms: i64) -> usize {
        ((f64::from(self.rate) * hold_ms.max(0) as f64 / 1000.0) as usize).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Starts as many sends as it allows over `ms`, one check a millisecond; returns their
    /// times.
    fn run(pace: &mut Pace, from: i64, ms: i64) -> Vec<i64> {
        let mut started = Vec::new();
        for now in from..from + ms {
            while pace.allows(now) {
                pace.take(now);
                started.push(now);
            }
        }
        started
    }

    #[test]
    fn a_slow_limit_spaces_sends_evenly_with_no_burst() {
        let mut pace = Pace::new(5);
        let started = run(&mut pace, 1_000, 2_000);
        assert_eq!(
            started,
            [1_000, 1_200, 1_400, 1_600, 1_800, 2_000, 2_200, 2_400, 2_600, 2_800]
        );
        assert_eq!(pace.next_allowed(3_000), 3_000);
        pace.take(3_000);
        assert_eq!(pace.next_allowed(3_000), 3_200);
    }

    #[test]
    fn a_fast_limit_allows_a_tenth_of_a_second_burst_and_keeps_the_rate() {
        let mut pace = Pace::new(1_000);
        let started = run(&mut pace, 0, 1_000);
        // 100 at once, then one a millisecond.
        assert_eq!(started.iter().filter(|&&t| t == 0).count(), 100);
        assert_eq!(started.len(), 100 + 999);
        // In any window of a second: at most r + burst.
        let mut pace = Pace::new(300);
        let started = run(&mut pace, 0, 10_000);
        for (i, &t) in started.iter().enumerate() {
            let in_window = started[i..].iter().take_while(|&&u| u < t + 1_000).count();
            assert!(in_window <= 300 + 30, "{in_window} sends in one second");
        }
        assert!(
            started.len() >= 300 * 10,
            "{} sends in ten seconds",
            started.len()
        );
    }

    #[test]
    fn an_idle_hook_does_not_save_up_more_than_its_burst() {
        let mut pace = Pace::new(20);
        pace.take(0);
        // A minute idle: still two at once (a tenth of a second's worth), then the pace.
        let started = run(&mut pace, 60_000, 101);
        assert_eq!(started, [60_000, 60_000, 60_050, 60_100]);
    }

    #[test]
    fn what_waits_in_memory_starts_within_the_hold() {
        assert_eq!(Pace::new(5).hold(20_000), 100);
        assert_eq!(Pace::new(1).hold(500), 1);
        assert_eq!(Pace::new(1_000).hold(20_000), 20_000);
    }
}
