//! Prometheus metrics, served at `GET /metrics` in the OpenMetrics text format.
//!
//! One [`Metrics`] per application, with its own registry (not a process-global recorder), so
//! that two apps in one process (the tests) each count only their own work. The hot-path
//! handles (counters, histograms, the in-flight gauge) are created once here and cloned into
//! the code that moves them: updating one is an atomic add, with no label lookup.
//!
//! Labels are low-cardinality on purpose: no hook or event ids (a tenant with thousands of
//! hooks must not get thousands of series), and nothing that could carry a secret.
//!
//! The queue gauges and the failing-endpoint gauge describe the database, not this process, so
//! they are read from the store when scraped (see `routes::health::metrics`).

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::time::Duration;

/// How a delivery ended.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)] // label values are lower case in Prometheus
pub enum DeliveryOutcome {
    /// A 2xx answer.
    succeeded,
    /// The retry schedule was used up.
    failed,
    /// Its transform answered `null`: nothing was sent.
    skipped,
}

/// How one HTTP attempt went.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum AttemptResult {
    success,
    failure,
}

/// How the dispatcher got a delivery to send.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
#[allow(non_camel_case_types)]
pub enum TakenBy {
    /// Leased at enqueue and handed over in memory: no claim query (`delivery::publish`).
    handover,
    /// Claimed from the queue: retries, and new events while the queue held work.
    claim,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TakenLabel {
    by: TakenBy,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: DeliveryOutcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: AttemptResult,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TableLabel {
    table: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabel {
    state: &'static str,
}

pub struct Metrics {
    registry: Registry,
    pub events_ingested: Counter,
    deliveries_succeeded: Counter,
    deliveries_failed: Counter,
    deliveries_skipped: Counter,
    attempts_success: Counter,
    attempts_failure: Counter,
    /// From an event's commit to its successful delivery, retries included.
    pub delivery_latency: Histogram,
    /// One HTTP attempt, from sending the request to reading the (capped) answer.
    pub attempt_duration: Histogram,
    /// Sends running in this process.
    pub in_flight: Gauge,
    taken_handover: Counter,
    taken_claim: Counter,
    queue_due: Gauge,
    queue_scheduled: Gauge,
    endpoints_failing: Gauge,
    /// Rows retention deleted, by table.
    pruned: Family<TableLabel, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("hookline");

        let events_ingested = Counter::default();
        registry.register(
            "events_ingested",
            "Events committed (with their deliveries)",
            events_ingested.clone(),
        );

        let deliveries = Family::<OutcomeLabel, Counter>::default();
        registry.register(
            "deliveries",
            "Deliveries finished, by outcome: succeeded (2xx), failed (retries used up) or skipped (the hook's transform answered null)",
            deliveries.clone(),
        );
        let deliveries_succeeded = deliveries
            .get_or_create(&OutcomeLabel {
                outcome: DeliveryOutcome::succeeded,
            })
            .clone();
        let deliveries_failed = deliveries
            .get_or_create(&OutcomeLabel {
                outcome: DeliveryOutcome::failed,
            })
            .clone();
        let deliveries_skipped = deliveries
            .get_or_create(&OutcomeLabel {
                outcome: DeliveryOutcome::skipped,
            })
            .clone();

        let attempts = Family::<ResultLabel, Counter>::default();
        registry.register(
            "delivery_attempts",
            "HTTP attempts, by result: success (2xx) or failure (anything else, or no answer)",
            attempts.clone(),
        );
        let attempts_success = attempts
            .get_or_create(&ResultLabel {
                result: AttemptResult::success,
            })
            .clone();
        let attempts_failure = attempts
            .get_or_create(&ResultLabel {
                result: AttemptResult::failure,
            })
            .clone();

        // 1 ms to about 2.3 hours: the first attempt of a healthy endpoint lands in the low
        // buckets, a delivery that needed the retry schedule in the high ones.
        let delivery_latency = Histogram::new(exponential_buckets(0.001, 2.0, 24));
        registry.register(
            "delivery_latency_seconds",
            "Time from an event's commit to its successful delivery, retries included",
            delivery_latency.clone(),
        );
        // 0.25 ms to about 16 s, past the default request timeout.
        let attempt_duration = Histogram::new(exponential_buckets(0.00025, 2.0, 17));
        registry.register(
            "attempt_duration_seconds",
            "Duration of one HTTP attempt, until the answer was read",
            attempt_duration.clone(),
        );

        let taken = Family::<TakenLabel, Counter>::default();
        registry.register(
            "deliveries_taken",
            "Deliveries this process took to send, by how: handover (leased at enqueue, the fast \
             path) or claim (from the queue)",
            taken.clone(),
        );
        let taken_handover = taken
            .get_or_create(&TakenLabel {
                by: TakenBy::handover,
            })
            .clone();
        let taken_claim = taken
            .get_or_create(&TakenLabel { by: TakenBy::claim })
            .clone();

        let in_flight = Gauge::default();
        registry.register(
            "deliveries_in_flight",
            "Webhook requests this process is sending now",
            in_flight.clone(),
        );
        let queue = Family::<StateLabel, Gauge>::default();
        registry.register(
            "queue_depth",
            "Queued deliveries: due (may be sent now) or scheduled (waiting for a retry, or claimed)",
            queue.clone(),
        );
        let queue_due = queue.get_or_create(&StateLabel { state: "due" }).clone();
        let queue_scheduled = queue
            .get_or_create(&StateLabel { state: "scheduled" })
            .clone();
        let endpoints_failing = Gauge::default();
        registry.register(
            "endpoints_failing",
            "Enabled hooks whose latest delivery attempt failed (skips and blocking calls do not count)",
            endpoints_failing.clone(),
        );

        let pruned = Family::<TableLabel, Counter>::default();
        registry.register(
            "pruned_rows",
            "Rows deleted by retention (--retention), by table: deliveries, events, attempts",
            pruned.clone(),
        );

        Self {
            pruned,
            registry,
            events_ingested,
            deliveries_succeeded,
            deliveries_failed,
            deliveries_skipped,
            attempts_success,
            attempts_failure,
            delivery_latency,
            attempt_duration,
            in_flight,
            taken_handover,
            taken_claim,
            queue_due,
            queue_scheduled,
            endpoints_failing,
        }
    }

    /// Books one HTTP attempt.
    pub fn attempt(&self, success: bool, took: Duration) {
        self.attempt_duration.observe(took.as_secs_f64());
        if success {
            self.attempts_success.inc();
        } else {
            self.attempts_failure.inc();
        }
    }

    /// Books one retention step.
    pub fn pruned(&self, p: &crate::storage::deliveries::Pruned) {
        for (table, n) in [
            ("deliveries", p.deliveries),
            ("events", p.events),
            ("attempts", p.attempts),
        ] {
            self.pruned.get_or_create(&TableLabel { table }).inc_by(n);
        }
    }

    /// Books `n` deliveries the dispatcher took to send.
    pub fn taken(&self, by: TakenBy, n: usize) {
        let c = match by {
            TakenBy::handover => &self.taken_handover,
            TakenBy::claim => &self.taken_claim,
        };
        c.inc_by(n as u64);
    }

    /// Books a finished delivery; `latency` counts only for successful ones.
    pub fn delivery_finished(&self, outcome: DeliveryOutcome, latency: Duration) {
        match outcome {
            DeliveryOutcome::succeeded => {
                self.deliveries_succeeded.inc();
                self.delivery_latency.observe(latency.as_secs_f64());
            }
            DeliveryOutcome::failed => {
                self.deliveries_failed.inc();
            }
            DeliveryOutcome::skipped => {
                self.deliveries_skipped.inc();
            }
        }
    }

    /// Sets the gauges that describe the database rather than this process.
    pub fn set_store_view(&self, view: &crate::storage::QueueStats) {
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.queue_due.set(clamp(view.due));
        self.queue_scheduled.set(clamp(view.scheduled));
        self.endpoints_failing.set(clamp(view.failing_hooks));
    }

    /// The OpenMetrics text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing into a String cannot fail; an error here would be a bug in the encoder,
        // and an empty scrape is the honest answer to it.
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

/// The content type of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_its_labels() {
        let m = Metrics::new();
        m.events_ingested.inc();
        m.attempt(true, Duration::from_millis(3));
        m.attempt(false, Duration::from_millis(3));
        m.delivery_finished(DeliveryOutcome::succeeded, Duration::from_millis(20));
        m.taken(TakenBy::handover, 3);
        m.set_store_view(&crate::storage::QueueStats {
            due: 7,
            scheduled: 2,
            failing_hooks: 1,
        });
        let text = m.render();
        for line in [
            "hookline_events_ingested_total 1",
            "hookline_deliveries_total{outcome=\"succeeded\"} 1",
            "hookline_deliveries_total{outcome=\"failed\"} 0",
            "hookline_delivery_attempts_total{result=\"success\"} 1",
            "hookline_delivery_attempts_total{result=\"failure\"} 1",
            "hookline_delivery_latency_seconds_count 1",
            "hookline_attempt_duration_seconds_count 2",
            "hookline_queue_depth{state=\"due\"} 7",
            "hookline_queue_depth{state=\"scheduled\"} 2",
            "hookline_deliveries_in_flight 0",
            "hookline_deliveries_taken_total{by=\"handover\"} 3",
            "hookline_deliveries_taken_total{by=\"claim\"} 0",
            "hookline_endpoints_failing 1",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "{line} missing in:\n{text}"
            );
        }
        assert!(text.ends_with("# EOF\n"));
    }
}
