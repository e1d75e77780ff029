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

pub mod autodisable;
pub mod blocking;
pub mod dispatcher;
pub mod http;
pub mod operations;
pub mod publish;
pub mod recorder;
pub mod schedule;
pub mod transform;

pub use publish::{Inbox, LeaseBudget, Publisher};

use crate::domain::retry::RetrySchedule;
use crate::metrics::Metrics;
use crate::storage::Store;
use std::sync::Arc;
use std::time::Duration;
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
    /// At shutdown, how long sends in flight get before they are abandoned and released
    /// (`--shutdown-timeout`; never more than the request timeout and a second).
    pub shutdown_timeout: Duration,
    /// Runs hooks' transforms (`--transform-concurrency`, the `--action-*` limits).
    pub transforms: crate::script::ScriptRunner,
}

impl EngineSettings {
    /// How long a claimed delivery stays hidden from other claimers. A claimed delivery may
    /// wait for a sending slot (at most one round of sends: no more than twice the slots are
    /// claimed at once) and then behind its hook's sends (a hook is not given more while it
    /// holds twice its limit), each round bounded by the request timeout (a transform's run
    /// and the request share it: `delivery::transform`); the margin is for recording the
    /// result.
    pub fn lease_ms(&self) -> i64 {
        (self.request_timeout * 3 + Duration::from_secs(5)).as_millis() as i64
    }

    /// How long a delivery may wait in its hook's line and still finish within its lease:
    /// one request timeout (the lease also covers a round of waiting for a sending slot, the
    /// request itself and the margin).
    pub fn hold_ms(&self) -> i64 {
        self.request_timeout.as_millis() as i64
    }
}

/// The running engine.
pub struct DeliveryEngine {
    dispatcher: JoinHandle<()>,
    recorder: JoinHandle<()>,
}

impl DeliveryEngine {
    /// Starts the dispatcher and the recorder. They stop when `shutdown` is cancelled: no new
    /// claims, in-flight requests get up to the request timeout (at most the shutdown timeout)
    /// to finish, the rest are released, and every result is written before
    /// [`DeliveryEngine::join`] returns.
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
