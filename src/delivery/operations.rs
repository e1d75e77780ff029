//! Recoveries and replays (issue 15), run in the background in paced steps.
//!
//! `POST /api/hooks/{id}/recover` and `…/replay` answer 202 with how many deliveries they
//! will queue, then this runs them: one bounded step at a time (one transaction each, see
//! `Store::recover` and `Store::replay`), at most `--recovery-rate` deliveries a second, so
//! a recovery of a million rows neither holds the SQLite writer for long nor floods the
//! queue ahead of live traffic. Both are idempotent: one cut short (a restart, a database
//! that stayed down) is finished by asking again.

use crate::clock::now_ms;
use crate::storage::deliveries::{Recovery, Replay, ReplayCursor};
use crate::storage::Store;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// The most one step re-queues or looks at: small enough that a step is a few milliseconds
/// of the writer's time.
pub const MAX_STEP: u32 = 500;

/// Store errors in a row after which a run gives up (logged; asking again resumes it).
const MAX_FAILURES: u32 = 10;

/// Starts and stops the background runs.
pub struct Operations {
    store: Arc<dyn Store>,
    /// Deliveries per second (`--recovery-rate`).
    rate: u32,
    runs: Mutex<JoinSet<()>>,
    stop: CancellationToken,
}

/// One run: what to do at each step.
enum Run {
    Recover(Recovery),
    Replay(Replay, Option<ReplayCursor>),
}

impl Operations {
    pub fn new(store: Arc<dyn Store>, rate: u32) -> Self {
        Self {
            store,
            rate: rate.max(1),
            runs: Mutex::new(JoinSet::new()),
            stop: CancellationToken::new(),
        }
    }

    /// Re-queues `r`'s failed deliveries in the background.
    pub fn recover(&self, r: Recovery) {
        self.spawn(Run::Recover(r));
    }

    /// Creates `r`'s missing deliveries in the background.
    pub fn replay(&self, r: Replay) {
        self.spawn(Run::Replay(r, None));
    }

    /// Stops every run between steps and waits for them (at shutdown).
    pub async fn stop(&self) {
        self.stop.cancel();
        let mut runs = match self.runs.lock() {
            Ok(mut runs) => std::mem::take(&mut *runs),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        };
        while runs.join_next().await.is_some() {}
    }

    fn spawn(&self, run: Run) {
        let store = self.store.clone();
        let (rate, stop) = (self.rate, self.stop.clone());
        let mut runs = match self.runs.lock() {
            Ok(runs) => runs,
            Err(poisoned) => poisoned.into_inner(),
        };
        // Reap the runs that ended, so the set does not grow with every request.
        while runs.try_join_next().is_some() {}
        runs.spawn(async move {
            tokio::select! {
                () = execute(store, run, rate) => {}
                () = stop.cancelled() => {}
            }
        });
    }
}

/// Steps of `step` deliveries, each followed by the pause that keeps the rate.
async fn execute(store: Arc<dyn Store>, mut run: Run, rate: u32) {
    let step = (rate / 10).clamp(1, MAX_STEP);
    let period = Duration::from_secs_f64(f64::from(step) / f64::from(rate));
    let (kind, hook_id) = match &run {
        Run::Recover(r) => ("recovery", r.hook_id.clone()),
        Run::Replay(r, _) => ("replay", r.hook_id.clone()),
    };
    let (mut queued, mut failures) = (0u64, 0u32);
    loop {
        let started = tokio::time::Instant::now();
        let done = match &mut run {
            Run::Recover(r) => store.recover(r, step, now_ms()).await.map(|n| {
                queued += n;
                n < u64::from(step)
            }),
            Run::Replay(r, after) => {
                store
                    .replay(r, after.as_ref(), step, now_ms())
                    .await
                    .map(|s| {
                        queued += s.created;
                        *after = s.next;
                        after.is_none()
                    })
            }
        };
        match done {
            Ok(true) => break,
            Ok(false) => failures = 0,
            Err(e) => {
                failures += 1;
                if failures >= MAX_FAILURES {
                    tracing::error!(kind, hook_id, queued, error = %e, "giving up; ask again to resume");
                    return;
                }
                tracing::warn!(kind, hook_id, error = %e, "a step failed; trying again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        }
        tokio::time::sleep_until(started + period).await;
    }
    tracing::info!(kind, hook_id, queued, "done");
}
