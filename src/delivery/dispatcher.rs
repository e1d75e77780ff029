//! The dispatch loop: keeps up to `max_in_flight` sends running, at most
//! `max_in_flight_per_hook` per hook. Work comes two ways:
//! - **handed over** by the API: deliveries an enqueue inserted already leased, within the
//!   [`LeaseBudget`] this loop gives back to as sends finish (the fast path: no claim query);
//! - **claimed** from the queue: retries, anything enqueued while the budget was used up or
//!   closed, and work another process left behind.
//!
//! It sleeps until work is handed over or committed, a send finishes, or the next retry falls
//! due.

use super::http::WebhookSender;
use super::LeaseBudget;
use super::{EngineSettings, Inbox};
use crate::clock::now_ms;
use crate::domain::id::new_id;
use crate::metrics::{DeliveryOutcome, Metrics};
use crate::storage::{AttemptRecord, ClaimRequest, ClaimedDelivery, NextStep, Store};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Upper bound on one sleep: other processes (a second node, a restarted one) may queue work
/// without being able to wake this one.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Deliveries claimed per round trip to the store.
const CLAIM_BATCH: usize = 256;

pub struct Dispatcher {
    store: Arc<dyn Store>,
    sender: Arc<WebhookSender>,
    settings: EngineSettings,
    wake: Arc<Notify>,
    /// Deliveries leased at enqueue, handed over by the API.
    handoff: UnboundedReceiver<Vec<ClaimedDelivery>>,
    /// One unit per claimed delivery not yet finished, shared with the API's enqueues.
    budget: Arc<LeaseBudget>,
    records: UnboundedSender<AttemptRecord>,
    metrics: Arc<Metrics>,
    /// Sends in flight per hook.
    per_hook: HashMap<String, usize>,
    /// Claimed deliveries not yet finished (running or waiting), to release them if shutdown
    /// cuts them off.
    in_flight: HashSet<String>,
    /// Claimed deliveries waiting for one of the `max_in_flight` sending slots. Claims fill it
    /// up to the budget (twice the slots), so that finished sends start the next one from
    /// memory and claims come in batches of half the slots, not one per finished send.
    ready: VecDeque<ClaimedDelivery>,
    /// Claimed deliveries whose hook is at its limit. Each hook keeps up to about one more round
    /// of deliveries buffered here (inside their lease), so that most completions start the
    /// next send from memory instead of claiming from the store.
    waiting: HashMap<String, VecDeque<ClaimedDelivery>>,
    /// Each send task returns when its delivery is due again, if it failed and will retry.
    tasks: JoinSet<Option<i64>>,
    /// Which delivery each task sends, so a task that panicked still gives its slot back.
    task_deliveries: HashMap<tokio::task::Id, (String, String)>,
    /// Hooks the last claim may have left due work behind for: skipped as busy, or given the
    /// most a claim gives one hook. Only for these does a finished send call for a new claim;
    /// any other hook had everything due claimed already.
    capped: HashSet<String>,
    /// The last claim found no free slot at all.
    global_limited: bool,
    /// The earliest retry that finished sends have scheduled since the loop last slept, so
    /// that it wakes for it without asking the store.
    earliest_retry: Option<i64>,
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
        Self {
            wake: store.wakeups(),
            store,
            sender,
            settings,
            handoff: inbox.handoff,
            budget: inbox.budget,
            records,
            metrics,
            per_hook: HashMap::new(),
            in_flight: HashSet::new(),
            ready: VecDeque::new(),
            waiting: HashMap::new(),
            tasks: JoinSet::new(),
            task_deliveries: HashMap::new(),
            capped: HashSet::new(),
            global_limited: false,
            earliest_retry: None,
        }
    }

    fn finished(&mut self, hook_id: &str, delivery_id: &str) {
        if self.in_flight.remove(delivery_id) {
            self.budget.give_back(1);
        }
        if let Some(n) = self.per_hook.get_mut(hook_id) {
            *n -= 1;
            if *n == 0 {
                self.per_hook.remove(hook_id);
            }
        }
        let next = self.waiting.get_mut(hook_id).and_then(VecDeque::pop_front);
        if self.waiting.get(hook_id).is_some_and(VecDeque::is_empty) {
            self.waiting.remove(hook_id);
        }
        if let Some(d) = next {
            self.start(d);
        }
        self.fill();
    }

    /// Starts ready deliveries while sending slots are free; one whose hook is at its limit
    /// moves to that hook's waiting line.
    fn fill(&mut self) {
        while self.tasks.len() < self.settings.max_in_flight {
            let Some(d) = self.ready.pop_front() else {
                break;
            };
            if self.per_hook.get(&d.hook_id).copied().unwrap_or(0)
                >= self.settings.max_in_flight_per_hook
            {
                self.waiting
                    .entry(d.hook_id.clone())
                    .or_default()
                    .push_back(d);
            } else {
                self.start(d);
            }
        }
    }

    /// Books a finished send task; returns whether that makes a new claim worthwhile.
    fn reap(
        &mut self,
        joined: Result<(tokio::task::Id, Option<i64>), tokio::task::JoinError>,
    ) -> bool {
        let id = match &joined {
            Ok((id, retry_at)) => {
                if let Some(at) = *retry_at {
                    self.earliest_retry = Some(self.earliest_retry.map_or(at, |t| t.min(at)));
                }
                *id
            }
            Err(e) => {
                // A send task does not panic on any input; if one did, its delivery stays
                // claimed and comes back after the lease.
                tracing::error!(error = %e, "a send task failed");
                e.id()
            }
        };
        let Some((hook, delivery)) = self.task_deliveries.remove(&id) else {
            return false;
        };
        self.finished(&hook, &delivery);
        // Claim again when a hook that may have more due work has nothing left waiting (its
        // buffer ran dry), or when the budget (everything claimed: running, ready, waiting or
        // handed over) had run out and a full round of sending slots is free again: the other
        // round is still running or ready meanwhile. Claiming after every completion would
        // cost a write each, and on SQLite every claim is a commit of its own (claiming half a
        // round at a time made twice the commits for ~7 % less throughput, BENCHMARKS.md).
        let buffer_dry = !self.waiting.contains_key(&hook);
        (buffer_dry && self.capped.contains(&hook))
            || (self.global_limited
                && self.budget.available() >= self.settings.max_in_flight.max(1))
    }

    /// Whether a hook holds (running plus waiting) twice its in-flight limit.
    fn is_busy(&self, hook: &str, running: usize) -> bool {
        let waiting = self.waiting.get(hook).map_or(0, VecDeque::len);
        running + waiting >= 2 * self.settings.max_in_flight_per_hook
    }

    /// Hooks that are busy (see [`Self::is_busy`]): a claim skips them.
    fn busy_hooks(&self) -> Vec<String> {
        self.per_hook
            .iter()
            .filter(|(hook, running)| self.is_busy(hook, **running))
            .map(|(hook, _)| hook.clone())
            .collect()
    }

    /// Takes deliveries handed over by the API. One for a hook that already holds all it may
    /// (it would wait in memory past its lease), or that may have due work in the queue (it
    /// would overtake that work), is released to the queue instead, and the hook is marked so
    /// that a finished send claims it back.
    async fn take_handoff(&mut self, batch: Vec<ClaimedDelivery>) {
        let mut released = Vec::new();
        for d in batch {
            let running = self.per_hook.get(&d.hook_id).copied().unwrap_or(0);
            if self.is_busy(&d.hook_id, running) || self.capped.contains(&d.hook_id) {
                self.capped.insert(d.hook_id.clone());
                released.push(d.id);
            } else {
                self.spawn_send(d);
            }
        }
        if !released.is_empty() {
            self.budget.give_back(released.len());
            if let Err(e) = self.store.release(&released, now_ms()).await {
                tracing::warn!(error = %e, "releasing deliveries failed; they come back when their lease ends");
            }
        }
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        let lease_ms = self.settings.lease_ms();
        let mut claim_now = true;
        // When to claim even if nothing wakes us: the next due retry, at most a poll away.
        let mut deadline = tokio::time::Instant::now();
        loop {
            while let Some(joined) = self.tasks.try_join_next_with_id() {
                claim_now |= self.reap(joined);
            }
            if shutdown.is_cancelled() {
                break;
            }
            if claim_now {
                claim_now = false;
                deadline = tokio::time::Instant::now() + POLL_INTERVAL;
                match self.claim(lease_ms).await {
                    Ok(Some(wait)) => deadline = tokio::time::Instant::now() + wait,
                    Ok(None) => {
                        claim_now = true; // a full batch: more may be due right now
                        continue;
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming deliveries failed; trying again shortly")
                    }
                }
            }
            if let Some(at) = self.earliest_retry.take() {
                let wait = Duration::from_millis((at - now_ms()).max(0) as u64);
                deadline = deadline.min(tokio::time::Instant::now() + wait);
            }
            tokio::select! {
                Some(batch) = self.handoff.recv() => self.take_handoff(batch).await,
                _ = self.wake.notified() => claim_now = true,
                Some(joined) = self.tasks.join_next_with_id(), if !self.tasks.is_empty() => {
                    claim_now |= self.reap(joined);
                }
                _ = tokio::time::sleep_until(deadline) => claim_now = true,
                _ = shutdown.cancelled() => {}
            }
        }
        self.drain().await;
    }

    /// Claims what is due and starts it. Returns `None` after a full batch (claim again at
    /// once), else how long to sleep before the next due retry (capped at the poll interval).
    async fn claim(
        &mut self,
        lease_ms: i64,
    ) -> Result<Option<Duration>, crate::storage::StoreError> {
        // Reserve the batch in the budget first, so the API cannot grant the same room.
        let limit = self.budget.take(CLAIM_BATCH);
        self.global_limited = limit == 0;
        if limit == 0 {
            return Ok(Some(POLL_INTERVAL));
        }
        let busy = self.busy_hooks();
        let req = ClaimRequest {
            now: now_ms(),
            limit: limit as u32,
            per_hook: self.settings.max_in_flight_per_hook as u32,
            busy_hooks: busy.clone(),
            lease_ms,
        };
        // Read before the claim: only a claim that began after the last close may reopen.
        let epoch = self.budget.epoch();
        let claimed = match self.store.claim_due(&req).await {
            Ok(c) => c,
            Err(e) => {
                self.budget.give_back(limit);
                return Err(e);
            }
        };
        self.budget.give_back(limit - claimed.len());
        let full = claimed.len() == limit;
        // New events may skip the queue only while it holds no due work this loop has not
        // caught up with: then nothing overtakes anything.
        if full {
            self.budget.close();
        } else {
            self.budget.open_unless_closed_since(epoch);
        }
        let mut per_hook: HashMap<&str, usize> = HashMap::new();
        for d in &claimed {
            *per_hook.entry(d.hook_id.as_str()).or_default() += 1;
        }
        let capped: HashSet<String> = per_hook
            .into_iter()
            .filter(|(_, n)| *n >= self.settings.max_in_flight_per_hook)
            .map(|(h, _)| h.to_owned())
            .chain(busy.iter().cloned())
            .collect();
        self.capped = capped;
        for d in claimed {
            self.spawn_send(d);
        }
        if full {
            return Ok(None);
        }
        let mut sleep_for = POLL_INTERVAL;
        if let Some(at) = self.store.next_due_at().await? {
            let wait = (at - now_ms()).max(0) as u64;
            sleep_for = sleep_for.min(Duration::from_millis(wait));
        }
        // Due work held back only because its hooks are busy waits for sends to finish (a
        // completion triggers the next claim), not for the clock.
        if sleep_for.is_zero() && !busy.is_empty() {
            sleep_for = POLL_INTERVAL;
        }
        Ok(Some(sleep_for))
    }

    /// Takes a claimed delivery: it starts as soon as a sending slot and its hook allow.
    fn spawn_send(&mut self, d: ClaimedDelivery) {
        self.in_flight.insert(d.id.clone());
        self.ready.push_back(d);
        self.fill();
    }

    fn start(&mut self, d: ClaimedDelivery) {
        *self.per_hook.entry(d.hook_id.clone()).or_default() += 1;
        let sender = self.sender.clone();
        let records = self.records.clone();
        let schedule = self.settings.retry_schedule.clone();
        let metrics = self.metrics.clone();
        let ids = (d.hook_id.clone(), d.id.clone());
        // The attempt's span, with its ids. Building one formats its fields (an allocation
        // and ~1 µs per delivery, BENCHMARKS.md), so when nothing inside an attempt can log
        // (hookline's debug level is off) it is built only for the lines an attempt logs when
        // it fails; either way every line an attempt logs carries the span.
        let span_ids = (d.event_id.clone(), d.attempts + 1);
        let span = delivery_span(&d.hook_id, &d.event_id, &d.id, d.attempts + 1, false);
        let handle = self.tasks.spawn(
            async move {
                let ClaimedDelivery { id, row, hook_id, event_name, body, attempts, target, created_at, .. } = d;
                let in_flight = InFlight::new(&metrics);
                let outcome = sender.send(&target, &id, body).await;
                drop(in_flight);
                metrics.attempt(outcome.is_success(), outcome.duration);
                let attempt = attempts + 1;
                let at = now_ms();
                // `config.retries`, when a hook sets it, caps its retries (0: one attempt), as a
                // Logto user who set it meant; otherwise the schedule decides.
                let capped = target.config.retries.is_some_and(|r| attempt > u32::from(r));
                let next = if outcome.is_success() {
                    NextStep::Succeeded
                } else if capped {
                    NextStep::GaveUp
                } else {
                    match schedule.next_delay(attempt, outcome.retry_after) {
                        Some(delay) => NextStep::RetryAt(at + delay.as_millis() as i64),
                        None => NextStep::GaveUp,
                    }
                };
                match next {
                    NextStep::Succeeded => metrics.delivery_finished(
                        DeliveryOutcome::succeeded,
                        Duration::from_millis((at - created_at).max(0) as u64),
                    ),
                    NextStep::GaveUp => metrics.delivery_finished(DeliveryOutcome::failed, Duration::ZERO),
                    NextStep::RetryAt(_) => {}
                }
                if next != NextStep::Succeeded {
                    let (event_id, attempt) = &span_ids;
                    let span = delivery_span(&hook_id, event_id, &id, *attempt, true);
                    let _entered = span.enter();
                    match next {
                        NextStep::RetryAt(_) => tracing::info!(status = ?outcome.status, error = ?outcome.error, "attempt failed; will retry"),
                        _ => tracing::warn!(status = ?outcome.status, error = ?outcome.error, "attempt failed; retry schedule used up, delivery marked failed"),
                    }
                } else {
                    tracing::debug!(status = ?outcome.status, "delivered");
                }
                // Unbounded so that this is not an await point: a result is never lost to
                // cancellation between sending it and returning.
                let _ = records.send(AttemptRecord {
                    id: new_id(),
                    delivery_id: id.clone(),
                    delivery_row: row,
                    hook_id: hook_id.clone(),
                    event_name,
                    attempt,
                    next,
                    response_status: outcome.status,
                    response_body: outcome.body,
                    error: outcome.error,
                    duration_ms: outcome.duration.as_millis() as i64,
                    at,
                });
                match next {
                    NextStep::RetryAt(at) => Some(at),
                    _ => None,
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
        self.waiting.clear();
        self.ready.clear();
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.tasks.join_next_with_id()).await {
                Ok(Some(joined)) => {
                    self.reap(joined);
                }
                Ok(None) => break,
                Err(_) => break,
            }
        }
        self.tasks.abort_all();
        while let Some(joined) = self.tasks.join_next_with_id().await {
            // A send that completed before the abort reached it has its result recorded.
            if let Ok((id, _)) = joined {
                if let Some((_, delivery)) = self.task_deliveries.remove(&id) {
                    self.in_flight.remove(&delivery);
                }
            }
        }
        // Handed over but never started: release them too. After `close`, an API request
        // still finishing releases its own (see `Publisher::publish`).
        self.handoff.close();
        while let Ok(batch) = self.handoff.try_recv() {
            self.in_flight.extend(batch.into_iter().map(|d| d.id));
        }
        if !self.in_flight.is_empty() {
            let ids: Vec<String> = self.in_flight.drain().collect();
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
