//! Delivery: claim due deliveries, send them, record what happened, schedule retries.
//!
//! Three parts, each a task:
//! - the **dispatcher** ([`dispatcher`]) claims batches of due deliveries from the store and
//!   starts one send task per delivery, within a global and a per-hook in-flight limit, so a
//!   slow or dead endpoint can only ever hold its own few slots;
//! - the **send tasks** POST through the shared [`http::WebhookSender`] and hand an
//!   [`crate::storage::AttemptRecord`] to the recorder;
//! - the **recorder** ([`recorder`]) writes attempt records in batches, one transaction each
//!   (group commit), which is what keeps SQLite's single writer from being the bottleneck.
//!
//! Delivery is at least once: a claim hides a delivery for a lease; if the process dies before
//! its result is recorded, the delivery becomes due again when the lease runs out.

pub mod blocking;
pub mod dispatcher;
pub mod http;
pub mod recorder;

use crate::domain::retry::RetrySchedule;
use crate::metrics::Metrics;
use crate::storage::{ClaimedDelivery, Enqueued, LeaseBudget, Store};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Debug, Clone)]
pub struct EngineSettings {
    pub retry_schedule: RetrySchedule,
    pub request_timeout: Duration,
    /// Requests in flight at once, over all hooks.
    pub max_in_flight: usize,
    /// Requests in flight at once to one hook.
    pub max_in_flight_per_hook: usize,
}

impl EngineSettings {
    /// How long a claimed delivery stays hidden from other claimers. A claimed delivery may
    /// wait for a sending slot (at most one round of sends: no more than twice the slots are
    /// claimed at once) and then behind its hook's sends (a hook is not given more while it
    /// holds twice its limit), each round bounded by the request timeout; the margin is for
    /// recording the result.
    pub fn lease_ms(&self) -> i64 {
        (self.request_timeout * 3 + Duration::from_secs(5)).as_millis() as i64
    }
}

/// The API's handle on the delivery engine: hands it the deliveries an enqueue leased (the
/// fast path, see [`LeaseBudget`]) and wakes it for the ones left in the queue. Cheap to clone.
#[derive(Clone)]
pub struct Dispatch {
    notify: Arc<Notify>,
    handoff: UnboundedSender<Vec<ClaimedDelivery>>,
    budget: Arc<LeaseBudget>,
}

/// The engine's end of a [`Dispatch`].
pub struct Inbox {
    notify: Arc<Notify>,
    handoff: UnboundedReceiver<Vec<ClaimedDelivery>>,
    budget: Arc<LeaseBudget>,
}

impl Dispatch {
    pub fn new(settings: &EngineSettings) -> (Dispatch, Inbox) {
        let notify = Arc::new(Notify::new());
        // The dispatcher holds at most twice its in-flight limit (running plus waiting).
        let budget = Arc::new(LeaseBudget::new(
            2 * settings.max_in_flight,
            settings.lease_ms(),
        ));
        // Unbounded, but only ever holding what the budget granted.
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        (
            Dispatch {
                notify: notify.clone(),
                handoff: tx,
                budget: budget.clone(),
            },
            Inbox {
                notify,
                handoff: rx,
                budget,
            },
        )
    }

    /// New due deliveries are in the queue.
    pub fn wake(&self) {
        self.notify.notify_one();
    }

    /// The budget to pass to [`Store::enqueue_event`].
    pub fn budget(&self) -> Arc<LeaseBudget> {
        self.budget.clone()
    }

    /// Takes what an enqueue produced: leased deliveries go to the dispatcher, and it is woken
    /// for any left in the queue. If the engine has stopped, the leased ones are released so
    /// that the next start sends them at once rather than after their lease.
    pub async fn submit(&self, store: &dyn Store, enqueued: Enqueued) {
        let queued = enqueued.deliveries - enqueued.leased.len();
        if !enqueued.leased.is_empty() {
            if let Err(returned) = self.handoff.send(enqueued.leased) {
                let ids: Vec<String> = returned.0.into_iter().map(|d| d.id).collect();
                self.budget.give_back(ids.len());
                if let Err(e) = store.release(&ids, crate::clock::now_ms()).await {
                    tracing::warn!(error = %e, "releasing deliveries failed; they come back when their lease ends");
                }
            }
        }
        if queued > 0 {
            self.wake();
        }
    }
}

/// The running engine.
pub struct DeliveryEngine {
    dispatcher: JoinHandle<()>,
    recorder: JoinHandle<()>,
}

impl DeliveryEngine {
    /// Starts the dispatcher and the recorder. They stop when `shutdown` is cancelled: no new
    /// claims, in-flight requests get up to the request timeout to finish, the rest are
    /// released, and every result is written before [`DeliveryEngine::join`] returns.
    pub fn start(
        store: Arc<dyn Store>,
        sender: Arc<http::WebhookSender>,
        settings: EngineSettings,
        inbox: Inbox,
        metrics: Arc<Metrics>,
        shutdown: CancellationToken,
    ) -> Self {
        let (records_tx, records_rx) = tokio::sync::mpsc::unbounded_channel();
        let recorder = tokio::spawn(recorder::run(store.clone(), records_rx));
        let dispatcher = tokio::spawn(
            dispatcher::Dispatcher::new(store, sender, settings, inbox, records_tx, metrics)
                .run(shutdown),
        );
        Self {
            dispatcher,
            recorder,
        }
    }

    pub async fn join(self) {
        if let Err(e) = self.dispatcher.await {
            tracing::error!(error = %e, "the delivery dispatcher ended abnormally");
        }
        if let Err(e) = self.recorder.await {
            tracing::error!(error = %e, "the attempt recorder ended abnormally");
        }
    }
}
