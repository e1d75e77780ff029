//! Retention (`--retention`, issue 15): the background task that deletes what is older than
//! the retention, so that the database stops growing.
//!
//! Every pass deletes in steps of at most [`STEP`] rows per table, one transaction each
//! (`Store::prune`), with a pause between steps, so that the SQLite writer and PostgreSQL
//! take other work between them and no step holds either for long. Queued deliveries are
//! never deleted, nor an event a delivery still refers to, and attempts are kept at least
//! [`ATTEMPTS_KEPT_AT_LEAST`], the window of recent-logs and of the hooks' stats.

use crate::clock::now_ms;
use crate::metrics::Metrics;
use crate::storage::deliveries::PruneCutoffs;
use crate::storage::Store;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// Rows per table one step deletes at most: a few milliseconds of the writer.
pub const STEP: u32 = 500;

/// Between steps of one pass.
const PAUSE: Duration = Duration::from_millis(20);

/// Attempts are kept at least this long: recent-logs shows the last 24 h by default, and the
/// hooks' `executionStats` count them.
pub const ATTEMPTS_KEPT_AT_LEAST: Duration = Duration::from_secs(24 * 60 * 60);

/// How often a pass runs: a tenth of the retention, between 1 s and 1 min.
pub fn pass_interval(retention: Duration) -> Duration {
    (retention / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// What may go at `now` (epoch ms) with `retention`.
pub fn cutoffs(now: i64, retention: Duration) -> PruneCutoffs {
    let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
    PruneCutoffs {
        deliveries_and_events: now.saturating_sub(ms(retention)),
        attempts: now.saturating_sub(ms(retention.max(ATTEMPTS_KEPT_AT_LEAST))),
    }
}

/// Runs passes until `stop` is cancelled.
pub async fn run(
    store: Arc<dyn Store>,
    metrics: Arc<Metrics>,
    retention: Duration,
    stop: CancellationToken,
) {
    let interval = pass_interval(retention);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
        let cut = cutoffs(now_ms(), retention);
        loop {
            match store.prune(&cut, STEP).await {
                Ok(pruned) => {
                    metrics.pruned(&pruned);
                    if !pruned.maybe_more(STEP) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "retention: a step failed; the next pass tries again");
                    break;
                }
            }
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(PAUSE) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempts_are_kept_a_day_whatever_the_retention() {
        let day = 86_400_000;
        let c = cutoffs(10 * day, Duration::from_secs(60));
        assert_eq!(c.deliveries_and_events, 10 * day - 60_000);
        assert_eq!(c.attempts, 9 * day);
        let c = cutoffs(40 * day, Duration::from_secs(30 * 86_400));
        assert_eq!((c.deliveries_and_events, c.attempts), (10 * day, 10 * day));
        assert_eq!(cutoffs(5, Duration::MAX).attempts, 5 - i64::MAX);
    }

    #[test]
    fn passes_run_every_tenth_of_the_retention_within_bounds() {
        assert_eq!(
            pass_interval(Duration::from_secs(5)),
            Duration::from_secs(1)
        );
        assert_eq!(
            pass_interval(Duration::from_secs(100)),
            Duration::from_secs(10)
        );
        assert_eq!(
            pass_interval(Duration::from_secs(86_400 * 30)),
            Duration::from_secs(60)
        );
    }
}
