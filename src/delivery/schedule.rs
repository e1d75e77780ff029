//! The dispatcher's decisions, without I/O: which delivery starts next, which handed-over
//! deliveries go back to the queue, when to claim and how much, what a claim's result means
//! for the [`LeaseBudget`], and how long to sleep. The async shell ([`super::dispatcher`])
//! only carries these out: it spawns the sends, calls the store and waits; the rules are
//! unit-tested here with plain values.
//!
//! What it holds, and why:
//! - a **ready line** (FIFO) of deliveries taken but not started, at most the budget's worth
//!   (twice the sending slots), so that a finished send starts the next one from memory and
//!   claims come in batches rather than one per finished send;
//! - a **waiting line per hook** for deliveries whose hook is at its in-flight limit. A hook
//!   holding twice its limit (running plus waiting) is *busy*: claims skip it and deliveries
//!   handed over for it go back to the queue, so that nothing waits in memory past its lease
//!   (see [`super::EngineSettings::lease_ms`]) and a slow endpoint holds only its own slots;
//! - which hooks are *capped*: the last claim may have left due work of theirs in the queue
//!   (it gave them the most a claim gives one hook, or skipped them as busy). A delivery
//!   handed over for such a hook would overtake that work, so it goes back to the queue too,
//!   and a finished send of that hook calls for a claim;
//! - which hooks are *paused*, and until when: an endpoint that answered 429 or 503 with
//!   `Retry-After` gets nothing more until then; what of it was waiting goes back to the queue
//!   (it would outlive its lease in memory), and claims skip it;
//! - the **pace** of hooks that set `config.rateLimit` ([`rate::Pace`]): a delivery of such a
//!   hook waits in its line until the pace allows it, the dispatcher sleeps no longer than the
//!   earliest such moment ([`Schedule::next_paced_start`]), and such a hook keeps in memory no
//!   more than it sends within [`Limits::hold_ms`] (at least one).
//!
//! A hook's waiting line is strictly first in, first out: a delivery leaves it only from its
//! head, to start, and a delivery of a hook with a line joins the line's end.

pub mod rate;

use super::LeaseBudget;
use rate::Pace;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

/// Upper bound on one sleep: other processes (a second node, a restarted one) may queue work
/// without being able to wake this one.
pub const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Deliveries claimed per round trip to the store, at most.
pub const CLAIM_BATCH: usize = 256;

/// What the schedule needs to know of a delivery.
pub trait Work {
    /// The delivery's id (unique).
    fn id(&self) -> &str;
    /// The hook it goes to.
    fn hook(&self) -> &str;
    /// The hook's own in-flight limit (`config.maxInFlight`), if it sets one.
    fn max_in_flight(&self) -> Option<usize> {
        None
    }
    /// The hook's own rate limit (`config.rateLimit`, deliveries per second), if it sets one.
    fn rate_limit(&self) -> Option<u32> {
        None
    }
}

impl Work for crate::storage::ClaimedDelivery {
    fn id(&self) -> &str {
        &self.id
    }
    fn hook(&self) -> &str {
        &self.hook_id
    }
    fn max_in_flight(&self) -> Option<usize> {
        self.target.config.max_in_flight.map(|n| n as usize)
    }
    fn rate_limit(&self) -> Option<u32> {
        self.target.config.rate_limit
    }
}

/// The in-flight limits (`--max-in-flight`, `--max-in-flight-per-hook`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_in_flight: usize,
    pub per_hook: usize,
    /// How long a delivery may wait in its hook's line before it starts and still finish
    /// within its lease: one request timeout (the lease also covers a round in the ready
    /// line, the request itself and a margin)
    /// ([`super::EngineSettings::hold_ms`]). Bounds what a rate-limited hook keeps waiting.
    pub hold_ms: i64,
}

/// A claim to make: how many deliveries at most, which hooks to skip, and the budget's epoch
/// read before it began (see [`LeaseBudget::open_unless_closed_since`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimPlan {
    pub limit: usize,
    pub busy_hooks: Vec<String>,
    pub epoch: u64,
}

/// What to do after a claim came back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterClaim {
    /// It came back full and more may be due right now: claim again at once.
    ClaimAgain,
    /// Due work is left for hooks at their most (capped or busy): wait for a send to finish
    /// (which calls for a claim), a wake-up, or the poll interval.
    WaitForSends,
    /// The queue is caught up; ask the store when the next delivery falls due and sleep
    /// until then ([`Schedule::sleep_until_due`]).
    Sleep,
}

/// The dispatcher's state; see the module doc.
pub struct Schedule<W> {
    limits: Limits,
    budget: Arc<LeaseBudget>,
    /// Sends running, per hook and in all.
    running: HashMap<String, usize>,
    /// The in-flight limit of hooks that set their own, as their latest delivery said.
    hook_limits: HashMap<String, usize>,
    /// The pace of hooks that set a rate limit, as their latest delivery said.
    paces: HashMap<String, Pace>,
    /// Hooks whose line's head may start now (a send of theirs finished), once per freed slot.
    startable: VecDeque<String>,
    /// Hooks whose line waits for their pace.
    paced: HashSet<String>,
    running_total: usize,
    ready: VecDeque<W>,
    waiting: HashMap<String, VecDeque<W>>,
    /// Deliveries taken and not finished (ready, waiting or running): each holds one unit of
    /// the budget, and at shutdown the ones left are released.
    held: HashSet<String>,
    capped: HashSet<String>,
    /// The last claim found the budget used up.
    global_limited: bool,
    /// A finished send made a new claim worthwhile.
    claim_wanted: bool,
    /// The earliest retry that finished sends scheduled since the loop last slept.
    earliest_retry: Option<i64>,
    /// Hooks whose endpoint asked for a pause (a 429 or 503 with `Retry-After`), until when
    /// (epoch ms).
    paused: HashMap<String, i64>,
    /// Deliveries a pause turned away, their budget units given back, for the dispatcher to
    /// release to the queue ([`Self::take_released`]).
    released: Vec<W>,
}

impl<W: Work> Schedule<W> {
    pub fn new(limits: Limits, budget: Arc<LeaseBudget>) -> Self {
        Self {
            limits,
            budget,
            running: HashMap::new(),
            hook_limits: HashMap::new(),
            paces: HashMap::new(),
            startable: VecDeque::new(),
            paced: HashSet::new(),
            running_total: 0,
            ready: VecDeque::new(),
            waiting: HashMap::new(),
            held: HashSet::new(),
            capped: HashSet::new(),
            global_limited: false,
            claim_wanted: true,
            earliest_retry: None,
            paused: HashMap::new(),
            released: Vec::new(),
        }
    }

    fn running(&self, hook: &str) -> usize {
        self.running.get(hook).copied().unwrap_or(0)
    }

    /// A hook's in-flight limit: its own (`config.maxInFlight`, at most the global limit) or
    /// the per-hook default.
    fn limit(&self, hook: &str) -> usize {
        self.hook_limits
            .get(hook)
            .copied()
            .unwrap_or(self.limits.per_hook)
    }

    /// How many deliveries a hook may hold (running plus waiting): twice its in-flight limit,
    /// and for a rate-limited hook no more than it starts within [`Limits::hold_ms`].
    fn hold(&self, hook: &str) -> usize {
        let hold = 2 * self.limit(hook);
        match self.paces.get(hook) {
            Some(pace) => hold.min(pace.hold(self.limits.hold_ms)),
            None => hold,
        }
    }

    /// Learns a hook's own limits from one of its deliveries.
    fn note_limit(&mut self, w: &W) {
        match w.rate_limit() {
            Some(rate) => {
                if self.paces.get(w.hook()).map(Pace::rate) != Some(rate) {
                    self.paces.insert(w.hook().to_owned(), Pace::new(rate));
                }
            }
            None => {
                if self.paces.contains_key(w.hook()) {
                    self.paces.remove(w.hook());
                }
            }
        }
        match w.max_in_flight() {
            Some(n) => {
                let n = n.clamp(1, self.limits.max_in_flight);
                if self.hook_limits.get(w.hook()) != Some(&n) {
                    self.hook_limits.insert(w.hook().to_owned(), n);
                }
            }
            None => {
                if self.hook_limits.contains_key(w.hook()) {
                    self.hook_limits.remove(w.hook());
                }
            }
        }
    }

    /// Whether a hook holds (running plus waiting) all it may ([`Self::hold`]).
    fn is_busy(&self, hook: &str) -> bool {
        let waiting = self.waiting.get(hook).map_or(0, VecDeque::len);
        self.running(hook) + waiting >= self.hold(hook)
    }

    /// Takes a claimed delivery (its budget unit already taken; its hook's limit noted): it
    /// starts as soon as a sending slot and its hook allow.
    fn take(&mut self, w: W) {
        self.held.insert(w.id().to_owned());
        self.ready.push_back(w);
    }

    /// The next delivery to start at `now` (ms), if a sending slot is free and one may start:
    /// first the heads of hooks' lines that a finished send or their pace let go, then the
    /// ready line. A ready delivery whose hook is at its limit, has a line already, or is
    /// ahead of its pace joins that hook's line on the way. The caller starts what this
    /// returns and calls [`Self::finished`] when it ends.
    pub fn next_to_start(&mut self, now: i64) -> Option<W> {
        self.release_paced(now);
        while self.running_total < self.limits.max_in_flight {
            if let Some(hook) = self.startable.pop_front() {
                if self.may_start(&hook, now) {
                    if let Some(w) = self.pop_waiting(&hook) {
                        if self.waiting.contains_key(&hook) {
                            // Its line goes on: the next head is looked at (and, if its pace
                            // holds it, marked paced) in turn.
                            self.startable.push_back(hook);
                        }
                        return Some(self.start(w, now));
                    }
                }
                continue;
            }
            let w = self.ready.pop_front()?;
            let hook = w.hook();
            let has_line = self.waiting.contains_key(hook);
            if !has_line && self.may_start(hook, now) {
                return Some(self.start(w, now));
            }
            let hook = hook.to_owned();
            self.waiting.entry(hook).or_default().push_back(w);
        }
        None
    }

    /// Whether a delivery of `hook` may start at `now` as far as the hook goes (its in-flight
    /// limit and its pace); one held back by its pace marks the hook for
    /// [`Self::release_paced`].
    fn may_start(&mut self, hook: &str, now: i64) -> bool {
        if self.running(hook) >= self.limit(hook) {
            // Its next finished send makes it startable again.
            return false;
        }
        if self.paces.get(hook).is_some_and(|p| !p.allows(now)) {
            if !self.paced.contains(hook) {
                self.paced.insert(hook.to_owned());
            }
            return false;
        }
        true
    }

    /// Makes startable the paced hooks whose pace allows a send at `now`.
    fn release_paced(&mut self, now: i64) {
        if self.paced.is_empty() {
            return;
        }
        let due: Vec<String> = self
            .paced
            .iter()
            .filter(|h| self.paces.get(*h).is_none_or(|p| p.allows(now)))
            .cloned()
            .collect();
        for hook in due {
            self.paced.remove(&hook);
            if self.waiting.contains_key(&hook) {
                self.startable.push_back(hook);
            }
        }
    }

    /// When the pace of a hook with deliveries waiting for it next lets one start (ms): the
    /// dispatcher sleeps no longer than that.
    pub fn next_paced_start(&self, now: i64) -> Option<i64> {
        self.paced
            .iter()
            .filter_map(|h| self.paces.get(h))
            .map(|p| p.next_allowed(now))
            .min()
    }

    /// The head of a hook's line (the line goes when it is empty).
    fn pop_waiting(&mut self, hook: &str) -> Option<W> {
        let line = self.waiting.get_mut(hook)?;
        let w = line.pop_front();
        if line.is_empty() {
            self.waiting.remove(hook);
        }
        w
    }

    fn start(&mut self, w: W, now: i64) -> W {
        if let Some(pace) = self.paces.get_mut(w.hook()) {
            pace.take(now);
        }
        *self.running.entry(w.hook().to_owned()).or_default() += 1;
        self.running_total += 1;
        w
    }

    /// Takes deliveries handed over at enqueue (each holding a budget unit). Returns the ones
    /// to release to the queue, their units already given back: those for a busy hook (they
    /// would wait in memory past their lease) or a capped one (they would overtake its queued
    /// work); either hook is marked capped, so that its next finished send claims them back.
    pub fn handed_over(&mut self, batch: Vec<W>) -> Vec<W> {
        let mut released = Vec::new();
        for w in batch {
            self.note_limit(&w);
            if self.paused.contains_key(w.hook()) {
                // Released like a busy hook's; the pause's end calls for the claim.
                released.push(w);
            } else if self.is_busy(w.hook()) || self.capped.contains(w.hook()) {
                self.capped.insert(w.hook().to_owned());
                released.push(w);
            } else {
                self.take(w);
            }
        }
        self.budget.give_back(released.len());
        released
    }

    /// Books a finished send (`retry_at`: when it is due again, if it failed and will be
    /// retried). The head of its hook's line may start in its place.
    pub fn finished(&mut self, hook: &str, id: &str, retry_at: Option<i64>) {
        if let Some(at) = retry_at {
            self.earliest_retry = Some(self.earliest_retry.map_or(at, |t| t.min(at)));
        }
        if self.held.remove(id) {
            self.budget.give_back(1);
        }
        if let Some(n) = self.running.get_mut(hook) {
            *n -= 1;
            self.running_total -= 1;
            if *n == 0 {
                self.running.remove(hook);
            }
        }
        let buffer_dry = !self.waiting.contains_key(hook);
        if !buffer_dry {
            // Its head was waiting for exactly this slot (or for its pace too).
            self.startable.push_back(hook.to_owned());
        }
        // Claim again when a hook that may have more due work has nothing left waiting, or
        // when the budget had run out and a full round of sending slots is free again (the
        // other round is still running or ready meanwhile). Claiming after every completion
        // would cost a store round trip each (on SQLite a writer job), for ~7 % less
        // throughput when tried (BENCHMARKS.md).
        if (buffer_dry && self.capped.contains(hook))
            || (self.global_limited && self.budget.available() >= self.limits.max_in_flight.max(1))
        {
            self.claim_wanted = true;
        }
    }

    /// Whether a claim is called for (a finished send, a wake-up, a timer); clears the call.
    pub fn take_claim_call(&mut self) -> bool {
        std::mem::take(&mut self.claim_wanted)
    }

    /// Calls for a claim: work was committed, or the sleep ran out.
    pub fn call_claim(&mut self) {
        self.claim_wanted = true;
    }

    /// Plans a claim, taking its room from the budget first (so that the API cannot grant
    /// the same room). `None` when the budget is used up: nothing can be claimed until sends
    /// finish, and the finished send that frees a round calls for the claim.
    pub fn plan_claim(&mut self) -> Option<ClaimPlan> {
        let limit = self.budget.take(CLAIM_BATCH);
        self.global_limited = limit == 0;
        if limit == 0 {
            return None;
        }
        // A busy hook has sends running or a line (a paced one may have a line and none
        // running).
        let busy_hooks = self
            .running
            .keys()
            .chain(
                self.waiting
                    .keys()
                    .filter(|hook| !self.running.contains_key(*hook)),
            )
            .filter(|hook| self.is_busy(hook) && !self.paused.contains_key(*hook))
            .chain(self.paused.keys())
            .cloned()
            .collect();
        Some(ClaimPlan {
            limit,
            busy_hooks,
            // Read before the claim: only a claim that began after the last close may reopen.
            epoch: self.budget.epoch(),
        })
    }

    /// The claim failed: its room goes back.
    pub fn claim_failed(&mut self, plan: &ClaimPlan) {
        self.budget.give_back(plan.limit);
    }

    /// Takes what a claim returned (`more`: whether the store may have left due work it could
    /// have given with more room, [`crate::storage::Claimed::more`]). While it may have, the
    /// budget is closed: new events must not overtake that work. Once a claim has caught up,
    /// the budget opens, unless something closed it since the claim began.
    pub fn claimed(&mut self, plan: &ClaimPlan, claimed: Vec<W>, more: bool) -> AfterClaim {
        self.budget
            .give_back(plan.limit.saturating_sub(claimed.len()));
        let full = claimed.len() >= plan.limit;
        if more {
            self.budget.close();
        } else {
            self.budget.open_unless_closed_since(plan.epoch);
        }
        let mut per_hook: HashMap<&str, usize> = HashMap::new();
        for w in &claimed {
            *per_hook.entry(w.hook()).or_default() += 1;
        }
        let capped: HashSet<String> = per_hook
            .into_iter()
            .filter(|(_, n)| *n >= self.limits.per_hook)
            .map(|(h, _)| h.to_owned())
            .chain(plan.busy_hooks.iter().cloned())
            .collect();
        self.capped = capped;
        // A claim gives a hook up to the global per-hook cap; one with a lower limit of its
        // own or a rate limit keeps what it may hold ([`Self::hold`], as a busy hook would)
        // and turns the rest away, or they would wait past their lease. A paused hook's share (the claim was planned
        // before the pause) is turned away too.
        let mut held: HashMap<String, usize> = HashMap::new();
        for w in &self.ready {
            *held.entry(w.hook().to_owned()).or_default() += 1;
        }
        let (mut away, mut take) = (Vec::new(), Vec::new());
        for w in claimed {
            self.note_limit(&w);
            let hook = w.hook();
            let n = held.get(hook).copied().unwrap_or(0)
                + self.running(hook)
                + self.waiting.get(hook).map_or(0, VecDeque::len);
            if self.paused.contains_key(hook) || n >= self.hold(hook) {
                self.capped.insert(hook.to_owned());
                away.push(w);
            } else {
                *held.entry(hook.to_owned()).or_default() += 1;
                take.push(w);
            }
        }
        self.turn_away(away);
        for w in take {
            self.take(w);
        }
        match (more, full) {
            (true, true) => AfterClaim::ClaimAgain,
            // What is left is for hooks this claim capped or skipped as busy: their finished
            // sends call for the next claim; claiming now would find the same.
            (true, false) => AfterClaim::WaitForSends,
            (false, _) => AfterClaim::Sleep,
        }
    }

    /// How long to sleep after a claim that came back short, given when the next queued
    /// delivery falls due (`next_due`, ms) and the time now: until then, at most
    /// [`POLL_INTERVAL`]. Due work held back only because its hooks were busy waits for a
    /// send to finish (which calls for a claim), not for the clock.
    pub fn sleep_until_due(&self, plan: &ClaimPlan, next_due: Option<i64>, now: i64) -> Duration {
        let mut sleep = POLL_INTERVAL;
        if let Some(at) = next_due {
            sleep = sleep.min(Duration::from_millis((at - now).max(0) as u64));
        }
        if sleep.is_zero() && !plan.busy_hooks.is_empty() {
            sleep = POLL_INTERVAL;
        }
        sleep
    }

    /// How long until the earliest retry a finished send scheduled since the last call
    /// (which clears it), if any.
    pub fn take_retry_wait(&mut self, now: i64) -> Option<Duration> {
        self.earliest_retry
            .take()
            .map(|at| Duration::from_millis((at - now).max(0) as u64))
    }

    /// Pauses `hook` until `until` (ms), as its endpoint asked (a 429 or 503 with
    /// `Retry-After`): what of it has not started is turned away (see
    /// [`Self::take_released`]); until then claims skip it and deliveries handed over for it
    /// go back to the queue; and the retry wait wakes the dispatcher when it ends, to claim.
    pub fn pause(&mut self, hook: &str, until: i64) {
        let end = self.paused.entry(hook.to_owned()).or_insert(until);
        *end = (*end).max(until);
        let (away, keep): (VecDeque<W>, VecDeque<W>) = std::mem::take(&mut self.ready)
            .into_iter()
            .partition(|w| w.hook() == hook);
        self.ready = keep;
        let mut away: Vec<W> = away.into();
        away.extend(self.waiting.remove(hook).unwrap_or_default());
        self.startable.retain(|h| h != hook);
        self.paced.remove(hook);
        self.turn_away(away);
        self.earliest_retry = Some(self.earliest_retry.map_or(until, |t| t.min(until)));
    }

    /// Ends the pauses that are over at `now` (ms).
    pub fn end_pauses(&mut self, now: i64) {
        self.paused.retain(|_, until| *until > now);
    }

    /// Deliveries turned away by a pause, to release to the queue.
    pub fn take_released(&mut self) -> Vec<W> {
        std::mem::take(&mut self.released)
    }

    fn turn_away(&mut self, away: Vec<W>) {
        for w in &away {
            self.held.remove(w.id());
        }
        self.budget.give_back(away.len());
        self.released.extend(away);
    }

    /// At shutdown: forgets what has not started (it stays held, to be released).
    pub fn stop_starting(&mut self) {
        self.ready.clear();
        self.waiting.clear();
        self.startable.clear();
        self.paced.clear();
    }

    /// At shutdown: a send that completed before its abort took effect has its result
    /// recorded; it is no longer to be released.
    pub fn forget(&mut self, id: &str) {
        self.held.remove(id);
    }

    /// At shutdown, once every send is settled: the ids of the deliveries still held, to be
    /// released for the next start.
    pub fn take_held(&mut self) -> HashSet<String> {
        std::mem::take(&mut self.held)
    }

    /// Running sends.
    pub fn running_total(&self) -> usize {
        self.running_total
    }
}

#[cfg(test)]
mod tests;
