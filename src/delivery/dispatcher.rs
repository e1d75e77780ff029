//! The dispatch loop: keeps up to `max_in_flight` sends running, at most
//! `max_in_flight_per_hook` per hook. Work comes two ways:
//! - **handed over** by the API: deliveries an enqueue inserted already leased, within the
//!   [`super::LeaseBudget`] this loop gives back to as sends finish (the fast path: no claim query);
//! - **claimed** from the queue: retries, anything enqueued while the budget was used up or
//!   closed, and work another process left behind.
//!
//! Every decision (what starts, what goes back to the queue, when to claim, how long to sleep)
//! is [`super::schedule`]'s, without I/O; this shell carries them out. It sleeps until work
//! is handed over or committed, a send finishes, or the next retry falls
//! due.

use super::http::{SendOutcome, WebhookSender};
use super::schedule::{AfterClaim, Limits, Schedule, POLL_INTERVAL};
use super::transform::{self, Prepared, Step};
use super::{EngineSettings, Inbox};
use crate::clock::now_ms;
use crate::domain::id::new_id;
use crate::metrics::{DeliveryOutcome, Metrics, TakenBy};
use crate::storage::{AttemptRecord, ClaimRequest, ClaimedDelivery, NextStep, Store};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// The async shell around [`Schedule`]: it spawns the sends the schedule picks, calls the
/// store for the claims it plans, and sleeps until something happens.
/// What a send task tells the dispatcher when it ends.
#[derive(Debug, Default)]
struct Finished {
    /// When its delivery is due again, if it failed and will be retried.
    retry_at: Option<i64>,
    /// Until when its hook is paused, if the endpoint asked (429 or 503 with `Retry-After`).
    pause_until: Option<i64>,
    /// Nothing was attempted (its transform found no run slot): the delivery goes back to
    /// the queue unrecorded.
    put_back: bool,
}

pub struct Dispatcher {
    store: Arc<dyn Store>,
    sender: Arc<WebhookSender>,
    settings: EngineSettings,
    wake: Arc<Notify>,
    /// Deliveries leased at enqueue, handed over by the API.
    handoff: UnboundedReceiver<Vec<ClaimedDelivery>>,
    records: UnboundedSender<AttemptRecord>,
    metrics: Arc<Metrics>,
    schedule: Schedule<ClaimedDelivery>,
    /// Each send task returns when its delivery is due again, if it failed and will retry.
    tasks: JoinSet<Finished>,
    /// Which delivery each task sends (hook, delivery), so a task that panicked still gives
    /// its slot back.
    task_deliveries: HashMap<tokio::task::Id, (String, String)>,
    /// Pauses an endpoint asked for (hook, until), for the store to hear of
    /// (`Store::pause_hook`) once what the pause turned away is released.
    pauses: Vec<(String, i64)>,
    /// Deliveries whose send task attempted nothing, to give back to the queue.
    put_back: Vec<String>,
}

/// The span of one delivery attempt. `failing`: for the lines of a failed attempt, which
/// need it also when the whole attempt is not spanned (see `Dispatcher::start`).
fn delivery_span(
    hook_id: &str,
    event_id: &str,
    delivery_id: &str,
    attempt: u32,
    failing: bool,
) -> tracing::Span {
    // Already inside the attempt's span: nothing to add.
    if failing && !tracing::Span::current().is_none() {
        return tracing::Span::none();
    }
    if !failing && !tracing::enabled!(tracing::Level::DEBUG) {
        return tracing::Span::none();
    }
    tracing::info_span!("delivery", hook_id = %hook_id, event_id = %event_id, delivery_id = %delivery_id, attempt = attempt)
}

/// Counts a send in the in-flight gauge for as long as it lives, also when its task is aborted
/// at shutdown.
struct InFlight<'a>(&'a Metrics);

impl<'a> InFlight<'a> {
    fn new(metrics: &'a Metrics) -> Self {
        metrics.in_flight.inc();
        Self(metrics)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.dec();
    }
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        sender: Arc<WebhookSender>,
        settings: EngineSettings,
        inbox: Inbox,
        records: UnboundedSender<AttemptRecord>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let limits = Limits {
            max_in_flight: settings.max_in_flight,
            per_hook: settings.max_in_flight_per_hook,
            hold_ms: settings.hold_ms(),
        };
        Self {
            wake: store.wakeups(),
            store,
            sender,
            settings,
            handoff: inbox.handoff,
            records,
            metrics,
            schedule: Schedule::new(limits, inbox.budget),
            tasks: JoinSet::new(),
            task_deliveries: HashMap::new(),
            pauses: Vec::new(),
            put_back: Vec::new(),
        }
    }

    /// Starts every delivery the schedule lets start now.
    fn start_what_may(&mut self) {
        let now = now_ms();
        while let Some(d) = self.schedule.next_to_start(now) {
            self.start(d);
        }
    }

    /// Books a finished send task.
    fn reap(&mut self, joined: Result<(tokio::task::Id, Finished), tokio::task::JoinError>) {
        let (id, finished) = match joined {
            Ok((id, finished)) => (id, finished),
            Err(e) => {
                // A send task does not panic on any input; if one did, its delivery stays
                // claimed and comes back after the lease.
                tracing::error!(error = %e, "a send task failed");
                (e.id(), Finished::default())
            }
        };
        if let Some((hook, delivery)) = self.task_deliveries.remove(&id) {
            self.schedule.finished(&hook, &delivery, finished.retry_at);
            if finished.put_back {
                self.put_back.push(delivery.clone());
            }
            if let Some(until) = finished.pause_until {
                tracing::info!(hook_id = %hook, until, "the endpoint asked for a pause (Retry-After); its deliveries wait");
                self.schedule.pause(&hook, until);
                self.pauses.push((hook, until));
            }
        }
    }

    /// Gives the deliveries a pause turned away back to the queue, then has the store pause
    /// their hooks (which makes what was just released wait for the pause's end too).
    async fn release_turned_away(&mut self) {
        let mut released: Vec<String> = self
            .schedule
            .take_released()
            .into_iter()
            .map(|d| d.id)
            .collect();
        released.append(&mut self.put_back);
        self.release(&released).await;
        for (hook, until) in std::mem::take(&mut self.pauses) {
            if let Err(e) = self.store.pause_hook(&hook, until, now_ms()).await {
                tracing::warn!(error = %e, hook_id = %hook, "pausing the hook's queued deliveries failed; claims skip them until the pause ends");
            }
        }
    }

    /// Takes deliveries handed over by the API; those the schedule turns away go back to the
    /// queue.
    async fn take_handoff(&mut self, batch: Vec<ClaimedDelivery>) {
        let offered = batch.len();
        let released: Vec<String> = self
            .schedule
            .handed_over(batch)
            .into_iter()
            .map(|d| d.id)
            .collect();
        self.metrics
            .taken(TakenBy::handover, offered - released.len());
        self.release(&released).await;
    }

    /// Gives deliveries the schedule turned away back to the queue.
    async fn release(&self, ids: &[String]) {
        if ids.is_empty() {
            return;
        }
        if let Err(e) = self.store.release(ids, now_ms()).await {
            tracing::warn!(error = %e, "releasing deliveries failed; they come back when their lease ends");
        }
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        let lease_ms = self.settings.lease_ms();
        // When to claim even if nothing wakes us: the next due retry, at most a poll away.
        let mut deadline = tokio::time::Instant::now();
        loop {
            while let Some(joined) = self.tasks.try_join_next_with_id() {
                self.reap(joined);
            }
            self.schedule.end_pauses(now_ms());
            self.start_what_may();
            self.release_turned_away().await;
            if shutdown.is_cancelled() {
                break;
            }
            if self.schedule.take_claim_call() {
                deadline = tokio::time::Instant::now() + POLL_INTERVAL;
                match self.claim(lease_ms).await {
                    Ok(Some(wait)) => deadline = tokio::time::Instant::now() + wait,
                    Ok(None) => {
                        self.schedule.call_claim();
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming deliveries failed; trying again shortly")
                    }
                }
            }
            let now = now_ms();
            if let Some(wait) = self.schedule.take_retry_wait(now) {
                deadline = deadline.min(tokio::time::Instant::now() + wait);
            }
            // A rate-limited hook's next send: only a start, no claim.
            let paced = self.schedule.next_paced_start(now).map(|at| {
                tokio::time::Instant::now() + Duration::from_millis((at - now).max(0) as u64)
            });
            tokio::select! {
                Some(batch) = self.handoff.recv() => self.take_handoff(batch).await,
                _ = self.wake.notified() => self.schedule.call_claim(),
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    self.reap(joined);
                }
                _ = tokio::time::sleep_until(deadline) => self.schedule.call_claim(),
                _ = tokio::time::sleep_until(paced.unwrap_or(deadline)), if paced.is_some() => {}
                _ = shutdown.cancelled() => {}
            }
        }
        self.drain().await;
    }

    /// Claims what the schedule plans and takes it. Returns `None` after a full batch (claim
    /// again at once), else how long to sleep before the next due retry.
    async fn claim(
        &mut self,
        lease_ms: i64,
    ) -> Result<Option<Duration>, crate::storage::StoreError> {
        let Some(plan) = self.schedule.plan_claim() else {
            return Ok(Some(POLL_INTERVAL));
        };
        let req = ClaimRequest {
            now: now_ms(),
            limit: plan.limit as u32,
            per_hook: self.settings.max_in_flight_per_hook as u32,
            busy_hooks: plan.busy_hooks.clone(),
            lease_ms,
        };
        let claimed = match self.store.claim_due(&req).await {
            Ok(c) => c,
            Err(e) => {
                self.schedule.claim_failed(&plan);
                return Err(e);
            }
        };
        self.metrics.taken(TakenBy::claim, claimed.deliveries.len());
        let after = self
            .schedule
            .claimed(&plan, claimed.deliveries, claimed.more);
        self.start_what_may();
        match after {
            AfterClaim::ClaimAgain => Ok(None),
            AfterClaim::WaitForSends => Ok(Some(POLL_INTERVAL)),
            AfterClaim::Sleep => {
                let next_due = self.store.next_due_at().await?;
                Ok(Some(self.schedule.sleep_until_due(
                    &plan,
                    next_due,
                    now_ms(),
                )))
            }
        }
    }

    fn start(&mut self, d: ClaimedDelivery) {
        let sender = self.sender.clone();
        let transforms = self.settings.transforms.clone();
        let records = self.records.clone();
        let schedule = self.settings.retry_schedule.clone();
        let metrics = self.metrics.clone();
        let ids = (d.hook_id.clone(), d.id.clone());
        // The attempt's span, with its ids. Building one formats its fields (an allocation
        // and ~1 µs per delivery, BENCHMARKS.md), so when nothing inside an attempt can log
        // (hookline's debug level is off) it is built only for the lines an attempt logs when
        // it fails; either way every line an attempt logs carries the span.
        let span = delivery_span(&d.hook_id, &d.event_id, &d.id, d.attempts + 1, false);
        let handle = self.tasks.spawn(
            async move {
                let mut d = d;
                // The transform and the request share the request timeout, which the claim's
                // lease is reckoned from.
                let started = std::time::Instant::now();
                let Prepared { step, script } =
                    transform::prepare(&transforms, &mut d, sender.request_timeout()).await;
                let ClaimedDelivery { id, row, event_id, hook_id, event_name, attempts, schedule_start, target, created_at, ordering_key, .. } = d;
                let (outcome, transformed, skipped) = match step {
                    Step::Send { body, headers, store } => {
                        let in_flight = InFlight::new(&metrics);
                        let left = sender.request_timeout().saturating_sub(started.elapsed());
                        let outcome = sender.send_as(&target, &id, body, headers.as_ref(), left).await;
                        drop(in_flight);
                        metrics.attempt(outcome.is_success(), outcome.duration);
                        (outcome, store, false)
                    }
                    Step::Skip => (SendOutcome { duration: started.elapsed(), ..Default::default() }, None, true),
                    Step::Fail(error) => (SendOutcome { error: Some(error), duration: started.elapsed(), ..Default::default() }, None, false),
                    Step::Busy => {
                        tracing::warn!(delivery_id = %id, "no transform run slot came free within the timeout (--transform-concurrency); the delivery goes back to the queue, no attempt counted");
                        return Finished { put_back: true, ..Default::default() };
                    }
                };
                let attempt = attempts + 1;
                // The attempt's place in the current schedule (a retry or recovery restarts it).
                let in_schedule = attempt.saturating_sub(schedule_start).max(1);
                let at = now_ms();
                // `config.retries`, when a hook sets it, caps its retries (0: one attempt), as a
                // Logto user who set it meant; otherwise the schedule decides.
                let capped = target.config.retries.is_some_and(|r| in_schedule > u32::from(r));
                let next = if skipped {
                    NextStep::Skipped
                } else if outcome.is_success() {
                    NextStep::Succeeded
                } else if outcome.status == Some(410) {
                    // Gone for good: no retry, and the store disables the hook.
                    NextStep::Gone
                } else if capped {
                    NextStep::GaveUp
                } else {
                    match schedule.next_delay(in_schedule, outcome.retry_after) {
                        Some(delay) => NextStep::RetryAt(at + delay.as_millis() as i64),
                        None => NextStep::GaveUp,
                    }
                };
                match next {
                    NextStep::Succeeded => metrics.delivery_finished(
                        DeliveryOutcome::succeeded,
                        Duration::from_millis((at - created_at).max(0) as u64),
                    ),
                    NextStep::GaveUp | NextStep::Gone => metrics.delivery_finished(DeliveryOutcome::failed, Duration::ZERO),
                    NextStep::Skipped => metrics.delivery_finished(DeliveryOutcome::skipped, Duration::ZERO),
                    NextStep::RetryAt(_) => {}
                }
                if !next.is_success() {
                    let span = delivery_span(&hook_id, &event_id, &id, attempt, true);
                    let _entered = span.enter();
                    match next {
                        NextStep::RetryAt(_) => tracing::info!(status = ?outcome.status, error = ?outcome.error, "attempt failed; will retry"),
                        NextStep::Gone => tracing::warn!(status = ?outcome.status, "the endpoint answered 410 Gone; delivery marked failed and the hook disabled"),
                        _ => tracing::warn!(status = ?outcome.status, error = ?outcome.error, "attempt failed; retry schedule used up, delivery marked failed"),
                    }
                } else if skipped {
                    tracing::debug!("skipped: its hook's transform answered null");
                } else {
                    tracing::debug!(status = ?outcome.status, "delivered");
                }
                // Unbounded so that this is not an await point: a result is never lost to
                // cancellation between sending it and returning.
                let _ = records.send(AttemptRecord {
                    id: new_id(),
                    delivery_id: id,
                    delivery_row: row,
                    event_id,
                    hook_id,
                    event_name,
                    ordering_key,
                    attempt,
                    next,
                    response_status: outcome.status,
                    response_body: outcome.body,
                    error: outcome.error,
                    duration_ms: outcome.duration.as_millis() as i64,
                    at,
                    transformed,
                    script,
                });
                // A 429 or 503 with `Retry-After` pauses the hook, not only this delivery (for
                // at most the schedule's longest delay).
                let pause_until = match (outcome.status, outcome.retry_after) {
                    (Some(429 | 503), Some(wait)) => {
                        let wait = wait.min(schedule.longest());
                        (!wait.is_zero()).then(|| at + wait.as_millis() as i64)
                    }
                    _ => None,
                };
                Finished {
                    retry_at: match next {
                        NextStep::RetryAt(at) => Some(at),
                        _ => None,
                    },
                    pause_until,
                    put_back: false,
                }
            }
            .instrument(span),
        );
        self.task_deliveries.insert(handle.id(), ids);
    }

    /// Lets in-flight sends finish within the request timeout and the shutdown timeout, then
    /// releases what is left.
    async fn drain(mut self) {
        let grace = (self.settings.request_timeout + Duration::from_secs(1))
            .min(self.settings.shutdown_timeout);
        let deadline = tokio::time::Instant::now() + grace;
        self.schedule.stop_starting();
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.tasks.join_next_with_id()).await {
                Ok(Some(joined)) => self.reap(joined),
                Ok(None) | Err(_) => break,
            }
        }
        self.tasks.abort_all();
        while let Some(joined) = self.tasks.join_next_with_id().await {
            // A send that completed before the abort reached it has its result recorded.
            if let Ok((id, _)) = joined {
                if let Some((_, delivery)) = self.task_deliveries.remove(&id) {
                    self.schedule.forget(&delivery);
                }
            }
        }
        let mut unfinished = self.schedule.take_held();
        // Handed over but never started: release them too. After `close`, an API request
        // still finishing releases its own (see `Publisher::publish`).
        self.handoff.close();
        while let Ok(batch) = self.handoff.try_recv() {
            unfinished.extend(batch.into_iter().map(|d| d.id));
        }
        if !unfinished.is_empty() {
            let ids: Vec<String> = unfinished.into_iter().collect();
            tracing::info!(
                count = ids.len(),
                "releasing unfinished deliveries for the next start"
            );
            if let Err(e) = self.store.release(&ids, now_ms()).await {
                tracing::warn!(error = %e, "releasing deliveries failed; they come back when their lease ends");
            }
        }
    }
}
