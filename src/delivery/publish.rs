//! Publishing: the one way an event from the ingest API enters the queue, and the budget
//! that lets it skip the queue.
//!
//! [`Publisher::publish`] owns every step after the route has parsed the event: it takes room
//! from the dispatcher's [`LeaseBudget`], has the store commit the event with its deliveries
//! (leasing up to that room to this node), hands the leased ones to the dispatcher in memory,
//! and gives back what it did not use. The wake-up for deliveries left in the queue is the
//! commit's own doing (`Store::wakeups`), so identity changes, whose events are queued inside
//! their own transactions, need nothing from here, and no route has a step to forget.

use super::EngineSettings;
use crate::domain::event::HookEvent;
use crate::storage::{ClaimedDelivery, Lease, NewEvent, Store, StoreError, StoreResult};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};

/// How many new deliveries a publish may lease to this node instead of leaving them due.
///
/// The dispatcher can take only so much work at once. A delivery it would claim from the queue
/// right after the commit anyway can be inserted already leased (claimed) and handed over in
/// memory: no claim query, no second write of the row, and no trip through the queue for the
/// latency. The budget is the dispatcher's free capacity, so handed-over work never piles up
/// in memory past its lease. It is *closed* while the queue holds due work the dispatcher has
/// not caught up with, so that new events do not overtake older ones: then everything goes
/// through the queue in order.
///
/// Closing wins over a claim that was already under way: a claim opens the budget only if
/// nothing closed it since the claim began ([`LeaseBudget::epoch`],
/// [`LeaseBudget::open_unless_closed_since`]). Otherwise a claim whose snapshot missed an
/// event committed to the queue meanwhile would open the budget, and the next event, handed
/// over, would overtake it.
#[derive(Debug)]
pub struct LeaseBudget {
    available: AtomicUsize,
    /// `closes << 1 | open`: how many times it was closed, and whether it is open.
    state: AtomicU64,
    /// How long a lease lasts; a leased delivery whose process dies comes back after it.
    pub lease_ms: i64,
}

impl LeaseBudget {
    /// A closed budget of `capacity` deliveries.
    pub fn new(capacity: usize, lease_ms: i64) -> Self {
        Self {
            available: AtomicUsize::new(capacity),
            state: AtomicU64::new(0),
            lease_ms,
        }
    }

    /// Takes up to `want` for new deliveries; none while closed. Granting less than `want`
    /// closes the budget: the rest go to the queue, and until the dispatcher has caught up
    /// with it, the next events queue behind them instead of overtaking them.
    pub fn take_for_new(&self, want: usize) -> usize {
        if !self.is_open() {
            return 0;
        }
        let granted = self.take(want);
        if granted < want {
            self.close();
        }
        granted
    }

    pub fn is_open(&self) -> bool {
        self.state.load(Ordering::Acquire) & 1 == 1
    }

    /// Closes the budget: the queue holds due work the dispatcher has not caught up with.
    pub fn close(&self) {
        let _ = self
            .state
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                Some(((s >> 1) + 1) << 1)
            });
    }

    /// How many times the budget was closed so far; read before a claim, for
    /// [`Self::open_unless_closed_since`].
    pub fn epoch(&self) -> u64 {
        self.state.load(Ordering::Acquire) >> 1
    }

    /// Opens the budget after a claim that found the queue caught up, unless it was closed
    /// since `epoch` (read before that claim began): then the claim may have missed work.
    pub fn open_unless_closed_since(&self, epoch: u64) -> bool {
        self.state
            .compare_exchange(
                epoch << 1,
                (epoch << 1) | 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            )
            .is_ok()
            || self.state.load(Ordering::Acquire) == ((epoch << 1) | 1)
    }

    /// Takes up to `want`, open or not (the dispatcher's own claims).
    pub fn take(&self, want: usize) -> usize {
        let mut taken = 0;
        let _ = self
            .available
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |free| {
                taken = free.min(want);
                Some(free - taken)
            });
        taken
    }

    pub fn give_back(&self, n: usize) {
        if n > 0 {
            self.available.fetch_add(n, Ordering::AcqRel);
        }
    }

    pub fn available(&self) -> usize {
        self.available.load(Ordering::Acquire)
    }
}

/// The API's end of the delivery engine (cheap to clone): see the module doc.
#[derive(Clone)]
pub struct Publisher {
    store: Arc<dyn Store>,
    handoff: UnboundedSender<Vec<ClaimedDelivery>>,
    budget: Arc<LeaseBudget>,
    /// Per event (catalog index): how many deliveries its last publish made, the room asked of
    /// the budget for the next one. A guess: unused room goes back right after the commit,
    /// and a short one only sends the rest through the queue.
    expected: Arc<[AtomicUsize]>,
}

/// The engine's end of a [`Publisher`]: the deliveries handed over, and the shared budget.
pub struct Inbox {
    pub(super) handoff: UnboundedReceiver<Vec<ClaimedDelivery>>,
    pub(super) budget: Arc<LeaseBudget>,
}

impl Publisher {
    pub fn new(store: Arc<dyn Store>, settings: &EngineSettings) -> (Publisher, Inbox) {
        // The dispatcher holds at most twice its in-flight limit (running plus waiting).
        let budget = Arc::new(LeaseBudget::new(
            2 * settings.max_in_flight,
            settings.lease_ms(),
        ));
        // Unbounded, but only ever holding what the budget granted.
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let expected = HookEvent::all().map(|_| AtomicUsize::new(1)).collect();
        (
            Publisher {
                store,
                handoff: tx,
                budget: budget.clone(),
                expected,
            },
            Inbox {
                handoff: rx,
                budget,
            },
        )
    }

    /// Commits `event` with one delivery per subscribed, enabled hook, and starts sending
    /// what it may at once. Returns the number of deliveries; once it returns, the event is
    /// durable. If the engine has stopped, the leased deliveries are released so that the
    /// next start sends them at once rather than after their lease.
    ///
    /// The work runs in a task of its own, so that a caller that goes away (a client that
    /// disconnects mid-request drops the route's future) cannot leave the budget's room taken
    /// or leased deliveries unsent: once started, a publish finishes.
    pub async fn publish(&self, event: &NewEvent) -> StoreResult<usize> {
        let (this, event) = (self.clone(), event.clone());
        tokio::spawn(async move { this.publish_now(&event).await })
            .await
            .map_err(|e| StoreError::Unavailable(format!("publishing did not finish: {e}")))?
    }

    async fn publish_now(&self, event: &NewEvent) -> StoreResult<usize> {
        let expected = &self.expected[event.event.index()];
        let granted = self.budget.take_for_new(expected.load(Ordering::Relaxed));
        let lease = Lease {
            up_to: granted,
            lease_ms: self.budget.lease_ms,
        };
        let enqueued = match self.store.enqueue_event(event, lease).await {
            Ok(e) => e,
            Err(e) => {
                self.budget.give_back(granted);
                return Err(e);
            }
        };
        expected.store(enqueued.deliveries, Ordering::Relaxed);
        let leased = enqueued.leased.len();
        self.budget.give_back(granted - leased);
        if enqueued.deliveries > leased + enqueued.waiting {
            // Some went to the queue, due: until the dispatcher has caught up with it, new
            // events queue behind them rather than overtake them. (Those not due yet, held in
            // a line or paused, leave nothing for it to catch up with.)
            self.budget.close();
        }
        if leased > 0 {
            if let Err(returned) = self.handoff.send(enqueued.leased) {
                let ids: Vec<String> = returned.0.into_iter().map(|d| d.id).collect();
                self.budget.give_back(ids.len());
                if let Err(e) = self.store.release(&ids, crate::clock::now_ms()).await {
                    tracing::warn!(error = %e, "releasing deliveries failed; they come back when their lease ends");
                }
            }
        }
        Ok(enqueued.deliveries)
    }
}

#[cfg(test)]
mod tests {
    use super::LeaseBudget;

    #[test]
    fn a_lease_budget_grants_new_work_only_while_open_and_never_more_than_it_has() {
        let b = LeaseBudget::new(10, 1_000);
        assert_eq!(b.take_for_new(3), 0, "closed until the dispatcher opens it");
        assert!(b.open_unless_closed_since(b.epoch()));
        assert_eq!(b.take_for_new(3), 3);
        assert_eq!(b.take(4), 4, "claims take from the same room");
        assert_eq!(b.take_for_new(5), 3, "only what is left");
        assert_eq!(b.available(), 0);
        assert_eq!(b.take(1), 0);
        b.give_back(2);
        assert_eq!(b.available(), 2);
        b.close();
        assert_eq!(b.take_for_new(1), 0);
        assert_eq!(b.take(5), 2, "claims take room while closed");
        // A claim that began before a close cannot open the budget; a later one can.
        let before = b.epoch();
        b.close();
        assert!(!b.open_unless_closed_since(before));
        assert!(!b.is_open());
        assert!(b.open_unless_closed_since(b.epoch()));
        assert!(b.is_open());
    }
}
