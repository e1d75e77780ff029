//! Runs scripts for async callers: each run on the blocking pool, at most `concurrency` at
//! once (`--action-concurrency`); a run that cannot start within its own timeout is refused
//! as busy rather than queued without bound.

use super::{check, run_until, Fetcher, Limits, RunReport, ScriptError};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The scripts' limits, their permits and their `fetch`.
#[derive(Clone)]
pub struct ScriptRunner {
    limits: Limits,
    permits: Arc<Semaphore>,
    fetcher: Arc<dyn Fetcher>,
}

impl std::fmt::Debug for ScriptRunner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptRunner")
            .field("limits", &self.limits)
            .field("free", &self.permits.available_permits())
            .finish_non_exhaustive()
    }
}

/// Every run slot stayed taken for a whole run's timeout (answered 503 `server.busy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many scripts are running; try again shortly")]
pub struct Busy;

impl ScriptRunner {
    pub fn new(limits: Limits, concurrency: usize, fetcher: Arc<dyn Fetcher>) -> Self {
        Self {
            limits,
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            fetcher,
        }
    }

    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// Runs `entry(input)` of `script` (see [`super::run`]).
    pub async fn run(&self, script: &str, entry: &str, input: Value) -> Result<RunReport, Busy> {
        self.run_for(script, entry, input, self.limits.timeout)
            .await
    }

    /// [`Self::run`] with its own timeout (a script blocking hook's `timeoutMs`). The wait
    /// for a run slot and the run share it: a run that waited has what is left, so the
    /// caller never waits longer than `timeout` (and a bit to end the run).
    pub async fn run_for(
        &self,
        script: &str,
        entry: &str,
        input: Value,
        timeout: Duration,
    ) -> Result<RunReport, Busy> {
        let deadline = Instant::now() + timeout;
        let permit = self.slot(timeout).await?;
        if Instant::now() >= deadline {
            return Err(Busy);
        }
        Ok(self
            .execute(permit, script, entry, input, timeout, deadline)
            .await)
    }

    /// Runs `entry(input)` of `script` after waiting at most `wait` for a run slot (else
    /// [`Busy`]), for at most `timeout` from when it got one. A delivery's transform waits
    /// apart from its run, so a run that times out had its whole time: contention is told
    /// apart from a slow script.
    pub async fn run_within(
        &self,
        script: &str,
        entry: &str,
        input: Value,
        wait: Duration,
        timeout: Duration,
    ) -> Result<RunReport, Busy> {
        let permit = self.slot(wait).await?;
        let deadline = Instant::now() + timeout;
        Ok(self
            .execute(permit, script, entry, input, timeout, deadline)
            .await)
    }

    /// A run slot, waited for at most `wait`.
    async fn slot(&self, wait: Duration) -> Result<OwnedSemaphorePermit, Busy> {
        tokio::time::timeout(wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)
    }

    /// One run on the blocking pool, holding `permit`, until `deadline` (its timeout error
    /// names `timeout`).
    async fn execute(
        &self,
        permit: OwnedSemaphorePermit,
        script: &str,
        entry: &str,
        input: Value,
        timeout: Duration,
        deadline: Instant,
    ) -> RunReport {
        let (script, entry, limits, fetcher) = (
            script.to_owned(),
            entry.to_owned(),
            Limits {
                timeout,
                ..self.limits
            },
            self.fetcher.clone(),
        );
        let report = tokio::task::spawn_blocking(move || {
            let report = run_until(&script, &entry, &input, &limits, deadline, fetcher);
            drop(permit);
            report
        })
        .await;
        report.unwrap_or_else(|e| RunReport {
            outcome: Err(ScriptError::Engine(format!("the run failed: {e}"))),
            undefined: false,
            console: Vec::new(),
            duration: Duration::ZERO,
        })
    }

    /// Checks `script` (see [`super::check`]: compiled, its top level run, `entry` a function)
    /// within the runs' limits and holding a run slot like a run: a flood of saves cannot
    /// take more of the blocking pool than runs can.
    pub async fn check(&self, script: &str, entry: &str) -> Result<Result<(), ScriptError>, Busy> {
        let permit = self.slot(self.limits.timeout).await?;
        let (script, entry, limits) = (script.to_owned(), entry.to_owned(), self.limits);
        Ok(tokio::task::spawn_blocking(move || {
            let checked = check(&script, &entry, &limits);
            drop(permit);
            checked
        })
        .await
        .unwrap_or_else(|e| Err(ScriptError::Engine(e.to_string()))))
    }
}
