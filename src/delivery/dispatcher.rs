//! The claim loop: keeps up to `max_in_flight` sends running, at most
//! `max_in_flight_per_hook` per hook, and sleeps until new work is committed, a send finishes
//! or the next retry falls due.

use super::http::WebhookSender;
use super::EngineSettings;
use crate::domain::id::new_id;
use crate::metrics::{DeliveryOutcome, Metrics};
use crate::storage::{AttemptRecord, ClaimRequest, ClaimedDelivery, NextStep, Store};
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::UnboundedSender;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

/// Upper bound on one sleep: other processes (a second node, a restarted one) may queue work
/// without being able to wake this one.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Deliveries claimed per round trip to the store.
const CLAIM_BATCH: usize = 256;
/// Extra lease time for recording the result.
const LEASE_MARGIN: Duration = Duration::from_secs(5);

pub struct Dispatcher {
    store: Arc<dyn Store>,
    sender: Arc<WebhookSender>,
    settings: EngineSettings,
    wake: Arc<Notify>,
    records: UnboundedSender<AttemptRecord>,
    metrics: Arc<Metrics>,
    /// Sends in flight per hook.
    per_hook: HashMap<String, usize>,
    /// Claimed deliveries not yet finished (running or waiting), to release them if shutdown
    /// cuts them off.
    in_flight: HashSet<String>,
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

pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or_default()
}

impl Dispatcher {
    pub fn new(
        store: Arc<dyn Store>,
        sender: Arc<WebhookSender>,
        settings: EngineSettings,
        wake: Arc<Notify>,
        records: UnboundedSender<AttemptRecord>,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            store,
            sender,
            settings,
            wake,
            records,
            metrics,
            per_hook: HashMap::new(),
            in_flight: HashSet::new(),
            waiting: HashMap::new(),
            tasks: JoinSet::new(),
            task_deliveries: HashMap::new(),
            capped: HashSet::new(),
            global_limited: false,
            earliest_retry: None,
        }
    }

    fn finished(&mut self, hook_id: &str, delivery_id: &str) {
        self.in_flight.remove(delivery_id);
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
    }

    /// How many more deliveries may be claimed: sends running stay within `max_in_flight`,
    /// and buffered ones (claimed, waiting for their hook) within as many again. Buffered
    /// deliveries do not take sending slots, so hooks at their limit cannot starve the others.
    fn free_slots(&self) -> usize {
        let max = self.settings.max_in_flight;
        let running = self.tasks.len();
        let claimed = self.in_flight.len();
        max.saturating_sub(running)
            .min((2 * max).saturating_sub(claimed))
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
        // buffer ran dry), or when the global limit had been reached and a good share of it is
        // free again. Claiming after every completion would cost a write transaction each.
        let buffer_dry = !self.waiting.contains_key(&hook);
        (buffer_dry && self.capped.contains(&hook))
            || (self.global_limited
                && self.free_slots() >= (self.settings.max_in_flight / 8).max(1))
    }

    /// Hooks that hold (running plus waiting) twice their in-flight limit: a claim skips them.
    fn busy_hooks(&self) -> Vec<String> {
        let full = 2 * self.settings.max_in_flight_per_hook;
        let mut busy: Vec<String> = Vec::new();
        for (hook, running) in &self.per_hook {
            let waiting = self.waiting.get(hook).map_or(0, VecDeque::len);
            if running + waiting >= full {
                busy.push(hook.clone());
            }
        }
        busy
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        // A claimed delivery may wait behind up to two rounds of its hook's sends (its hook
        // holds at most three times its limit), each bounded by the request timeout.
        let lease_ms = (self.settings.request_timeout * 3 + LEASE_MARGIN).as_millis() as i64;
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
        let free = self.free_slots();
        self.global_limited = free == 0;
        if free == 0 {
            return Ok(Some(POLL_INTERVAL));
        }
        let limit = free.min(CLAIM_BATCH);
        let busy = self.busy_hooks();
        let req = ClaimRequest {
            now: now_ms(),
            limit: limit as u32,
            per_hook: self.settings.max_in_flight_per_hook as u32,
            busy_hooks: busy.clone(),
            lease_ms,
        };
        let claimed = self.store.claim_due(&req).await?;
        let full = claimed.len() == limit;
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

    /// Takes a claimed delivery: sends it now, or queues it behind its hook's running sends.
    fn spawn_send(&mut self, d: ClaimedDelivery) {
        self.in_flight.insert(d.id.clone());
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

    fn start(&mut self, d: ClaimedDelivery) {
        *self.per_hook.entry(d.hook_id.clone()).or_default() += 1;
        let sender = self.sender.clone();
        let records = self.records.clone();
        let schedule = self.settings.retry_schedule.clone();
        let metrics = self.metrics.clone();
        let ids = (d.hook_id.clone(), d.id.clone());
        let span = tracing::info_span!("delivery", hook_id = %d.hook_id, event_id = %d.event_id, delivery_id = %d.id, attempt = d.attempts + 1);
        let handle = self.tasks.spawn(
            async move {
                let ClaimedDelivery { id, hook_id, event_name, body, attempts, target, created_at, .. } = d;
                let in_flight = InFlight::new(&metrics);
                let outcome = sender.send(&target, &id, body).await;
                drop(in_flight);
                metrics.attempt(outcome.is_success(), outcome.duration);
                let attempt = attempts + 1;
                let at = now_ms();
                let next = if outcome.is_success() {
                    NextStep::Succeeded
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
                match next {
                    NextStep::Succeeded => tracing::debug!(status = ?outcome.status, "delivered"),
                    NextStep::RetryAt(_) => tracing::info!(status = ?outcome.status, error = ?outcome.error, "attempt failed; will retry"),
                    NextStep::GaveUp => tracing::warn!(status = ?outcome.status, error = ?outcome.error, "attempt failed; retry schedule used up, delivery marked failed"),
                }
                // Unbounded so that this is not an await point: a result is never lost to
                // cancellation between sending it and returning.
                let _ = records.send(AttemptRecord {
                    id: new_id(),
                    delivery_id: id.clone(),
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

    /// Lets in-flight sends finish within the request timeout, then releases what is left.
    async fn drain(mut self) {
        let grace = self.settings.request_timeout + Duration::from_secs(1);
        let deadline = tokio::time::Instant::now() + grace;
        self.waiting.clear();
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
