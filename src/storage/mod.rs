//! Storage: one interface ([`Store`]), one implementation per database.
//!
//! Everything the API and the delivery engine persist goes through [`Store`] (and, for the
//! identity core, [`identity::IdentityStore`]), implemented by [`sqlite::SqliteStore`] (the
//! embedded default, one process per file) and [`postgres::PostgresStore`] (any number of
//! nodes on one database); callers never name either. [`connect`] picks one by the URL's
//! scheme. Nothing here names a driver type: errors are [`StoreError`]s, mapped from the
//! drivers' in `errors.rs`. What both must do is pinned down by the storage conformance suite
//! (`tests/storage.rs`).

pub mod cipher;
pub mod deliveries;
mod errors;
pub mod events;
pub(crate) mod health;
pub mod identity;
pub mod ordering;
pub mod postgres;
mod schema;
pub mod sqlite;

use crate::domain::event::HookEvent;
use crate::domain::hook::{Hook, HookConfig};
use async_trait::async_trait;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Why a store call failed, in terms that name no driver: each implementation maps its
/// driver's errors onto these (see `errors.rs`), so callers decide on meaning (retry later,
/// a bug, bad data) rather than on sqlx or rusqlite types.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached or cannot take the work now: connection refused or
    /// lost, pool exhausted, server shutting down, file locked by another writer, disk full.
    /// The same call may succeed later; the API answers 503 `database.unavailable`.
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The transaction lost a race with a concurrent one on a shared database (PostgreSQL's
    /// serialization failure, deadlock, or a unique key taken in between): running it again
    /// sees the winner's work. The store retries identity changes itself; a caller sees this
    /// only when the retries ran out, and the API answers 503 like `Unavailable`.
    #[error("the database was busy with concurrent changes: {0}")]
    Contention(String),
    /// A statement failed for any other reason (a constraint, a bug, a schema mismatch).
    #[error("database error: {0}")]
    Database(String),
    #[error("database migration failed: {0}")]
    Migration(String),
    #[error("a stored row could not be read: {0}")]
    Corrupt(String),
    /// A SQLite database file is missing where an earlier one left its traces (its WAL, its
    /// lock file): it was moved or deleted, and starting empty would hide that.
    #[error("{0}")]
    Missing(String),
    #[error("unsupported database URL '{0}': use sqlite://PATH (a file; in-memory databases are not supported) or postgres://USER@HOST/DATABASE")]
    UnsupportedUrl(String),
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A published event about to be stored with its deliveries.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub id: String,
    pub event: HookEvent,
    /// The payload without `hookId` (see `domain::payload::event_payload`).
    pub payload: Map<String, Value>,
    pub created_at: i64,
}

/// What [`Store::enqueue_event`] did with one event.
#[derive(Debug, Default)]
pub struct Enqueued {
    /// Deliveries queued for it (one per subscribed, enabled hook).
    pub deliveries: usize,
    /// Those of them leased to the caller at commit, ready to send (see [`Lease`]).
    pub leased: Vec<ClaimedDelivery>,
    /// Those of them that are not due yet: held in their user's line
    /// ([`ordering`]) or due when their hook's pause ends ([`Store::pause_hook`]).
    pub waiting: usize,
}

/// How many of an enqueue's new deliveries the caller wants leased to itself, to send at
/// once, instead of left due in the queue (see `delivery::publish`). The store leases up to
/// `up_to` of them for `lease_ms` and returns them; it knows nothing of why.
#[derive(Debug, Clone, Copy, Default)]
pub struct Lease {
    pub up_to: usize,
    pub lease_ms: i64,
}

/// A hook as both backends store it: its lists and config as text or arrays of names, read
/// back into a [`Hook`] by [`StoredHook::into_hook`], which checks every name and the config.
pub(crate) struct StoredHook {
    pub id: String,
    pub name: String,
    pub event: Option<String>,
    pub events: Vec<String>,
    /// JSON [`HookConfig`].
    pub config: String,
    pub signing_key: String,
    /// The previous key and until when it signs (both or neither).
    pub previous_signing_key: Option<String>,
    pub previous_key_expires_at: Option<i64>,
    pub enabled: bool,
    pub disabled_reason: Option<String>,
    pub created_at: i64,
}

impl StoredHook {
    /// The hook, its signing keys opened with `cipher` (`--encryption-key`).
    pub fn into_hook(self, cipher: &cipher::KeyCipher) -> StoreResult<Hook> {
        let corrupt = |what: &str, e: &dyn std::fmt::Display| {
            StoreError::Corrupt(format!("hook {what}: {e}"))
        };
        let config: HookConfig =
            serde_json::from_str(&self.config).map_err(|e| corrupt("config", &e))?;
        let signing_key = cipher.open(&self.id, &self.signing_key)?;
        let previous = self
            .previous_signing_key
            .map(|k| cipher.open(&self.id, &k))
            .transpose()?;
        Ok(Hook {
            id: self.id,
            name: self.name,
            event: self
                .event
                .map(|e| HookEvent::parse(&e))
                .transpose()
                .map_err(|e| corrupt("event", &e))?,
            events: self
                .events
                .iter()
                .map(|e| HookEvent::parse(e))
                .collect::<Result<_, _>>()
                .map_err(|e| corrupt("events", &e))?,
            config,
            signing_key,
            previous_signing_key: previous_key(previous, self.previous_key_expires_at),
            enabled: self.enabled,
            disabled_reason: self.disabled_reason,
            created_at: self.created_at,
        })
    }
}

/// The previous key of a hook row's two columns (both set, or none).
pub(crate) fn previous_key(
    key: Option<String>,
    expires_at: Option<i64>,
) -> Option<crate::domain::hook::PreviousKey> {
    Some(crate::domain::hook::PreviousKey {
        key: key?,
        expires_at: expires_at?,
    })
}

/// Rows of one page: `limit` rows after skipping `offset`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Page {
    pub limit: u32,
    pub offset: u64,
}

/// One run of an action at sign-in, as its log keeps it (secrets already taken out).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct ActionRun {
    pub id: String,
    pub action_type: String,
    pub success: bool,
    /// The answer, as JSON text (`null` for none); `None` when the run failed.
    pub result: Option<String>,
    pub error: Option<String>,
    /// The console output, a JSON array of strings.
    pub logs: String,
    pub duration_ms: i64,
    pub created_at: i64,
}

/// How many runs of one action type the log keeps (the oldest go first).
pub const ACTION_RUNS_KEPT: i64 = 1_000;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExecutionStats {
    pub request_count: u64,
    pub success_count: u64,
}

/// The queue as the store sees it, for the metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Queued deliveries that may be sent now.
    pub due: u64,
    /// Queued deliveries not due yet: waiting for a retry, or claimed (in flight).
    pub scheduled: u64,
    /// Enabled hooks whose failing streak is open (`hooks.failing_since`): their latest
    /// delivery attempt failed; skips and blocking calls do not count.
    pub failing_hooks: u64,
}

/// What the dispatcher asks for when it claims work.
#[derive(Debug, Clone)]
pub struct ClaimRequest {
    pub now: i64,
    /// At most this many deliveries in all.
    pub limit: u32,
    /// At most this many per hook, so one hook's backlog cannot fill a batch.
    pub per_hook: u32,
    /// Hooks that already have all the requests in flight they may have.
    pub busy_hooks: Vec<String>,
    /// Claimed deliveries are hidden until `now + lease_ms`; if the claimer dies, they come back.
    pub lease_ms: i64,
}

/// What a claim took.
#[derive(Debug, Default)]
pub struct Claimed {
    /// The claimed deliveries, in queue order, leased to the claimer.
    pub deliveries: Vec<ClaimedDelivery>,
    /// Whether the queue may still hold due deliveries this claim could have taken with more
    /// room (of hooks neither busy nor given `per_hook` by this claim). `false` means the
    /// claimer has caught up with the queue: new events may skip it without overtaking
    /// anything. A backend that cannot tell cheaply says `true` whenever the claim filled its
    /// limit, and so does one whose look at the queue was cut short.
    pub more: bool,
}

/// A claimed delivery with everything needed to send it.
#[derive(Debug, Clone)]
pub struct ClaimedDelivery {
    pub id: String,
    /// The store's own key for the delivery's queue row, handed back in the attempt record:
    /// on SQLite its rowid, so that recording the result needs no lookup by `id`; on
    /// PostgreSQL the lease's end that the claim wrote into the row's `due_at`, which fences
    /// the record: a node whose lease ran out cannot undo another node's claim.
    pub row: i64,
    pub event_id: String,
    pub hook_id: String,
    pub event_name: String,
    /// The body to send: the one its transform made, once stored (`transformed`), else the
    /// event's payload with `hookId` (`domain::payload::delivery_body`).
    pub body: String,
    /// Its transform ran at an earlier attempt and `body` is what it made: send that again,
    /// with `request_headers`, and do not run the transform again.
    pub transformed: bool,
    /// The custom headers the transform chose (a JSON object), in place of the hook's;
    /// `None` for the hook's own.
    pub request_headers: Option<String>,
    /// Attempts already made before this one.
    pub attempts: u32,
    /// Of those, the ones made before the current retry schedule began (a retry or a
    /// recovery starts it afresh): the schedule's position is `attempts - schedule_start`.
    pub schedule_start: u32,
    pub created_at: i64,
    /// The user whose deliveries to this hook go one at a time (`config.ordering`), if any:
    /// its record lets the next of them go ([`ordering`]).
    pub ordering_key: Option<String>,
    /// Shared by every delivery to the hook (the writer caches it; see `sqlite::cache`).
    pub target: std::sync::Arc<DeliveryTarget>,
}

/// Where and how to send: the hook's config and key at claim time, and its URL parsed once
/// (not per request: the store shares one target among all of a hook's deliveries).
#[derive(Debug, Clone)]
pub struct DeliveryTarget {
    pub config: HookConfig,
    pub signing_key: String,
    /// The key before the last rotation, signing too until it expires.
    pub previous_key: Option<crate::domain::hook::PreviousKey>,
    /// `config.url`, parsed. Hooks are checked when saved, so this is an error only for a
    /// row written by something else; the delivery then fails with it.
    pub url: Result<url::Url, crate::domain::target::TargetError>,
    /// `url` as the HTTP client takes it (without a fragment, which is never sent).
    pub uri: Option<http::Uri>,
    /// The hook's own headers, parsed once here rather than per request. They were checked
    /// when the hook was saved; one that still does not parse fails the delivery.
    pub headers: Result<http::HeaderMap, String>,
}

impl DeliveryTarget {
    pub fn new(
        config: HookConfig,
        signing_key: String,
        previous_key: Option<crate::domain::hook::PreviousKey>,
    ) -> Self {
        let url = match &config.url {
            Some(url) => crate::domain::target::parse_url(url),
            None => Err(crate::domain::target::TargetError::Invalid(
                "a script hook has no URL".into(),
            )),
        };
        let uri = url.as_ref().ok().and_then(|u| {
            let mut u = u.clone();
            u.set_fragment(None);
            u.as_str().parse().ok()
        });
        let headers = custom_headers(config.headers.as_ref());
        Self {
            config,
            signing_key,
            previous_key,
            url,
            uri,
            headers,
        }
    }
}

/// Custom headers as sent (a hook's own, or those its transform chose): those the engine owns
/// ([`reserved_header`], refused at save since, but possibly stored earlier) are left out.
pub fn custom_headers(
    headers: Option<&crate::domain::hook::HookHeaders>,
) -> Result<http::HeaderMap, String> {
    let mut map = http::HeaderMap::new();
    for (name, value) in headers.iter().flat_map(|h| h.iter()) {
        if crate::domain::hook::reserved_header(name).is_some() {
            continue;
        }
        let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name.as_bytes()),
            http::HeaderValue::from_str(value),
        ) else {
            return Err(format!("invalid custom header '{name}'"));
        };
        map.insert(n, v);
    }
    Ok(map)
}

/// What became of a delivery after one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Succeeded,
    RetryAt(i64),
    /// The schedule is used up; the delivery is kept, marked failed.
    GaveUp,
    /// The endpoint answered `410 Gone`: the delivery is failed, as for `GaveUp`, and its
    /// hook is disabled (issue 15).
    Gone,
    /// Its hook's transform answered `null`: nothing was sent, and the delivery ends as
    /// skipped (issue 16). Neither a success nor a failure of the endpoint: the hook's
    /// failing streak stays where it is.
    Skipped,
}

impl NextStep {
    /// Whether the attempt is logged as a success: the endpoint took it, or the transform
    /// skipped it (nothing failed).
    pub fn is_success(self) -> bool {
        matches!(self, NextStep::Succeeded | NextStep::Skipped)
    }
}

/// What a delivery's transform made of it, stored with the attempt that ran it so that every
/// later attempt sends the same bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransformedRequest {
    pub body: String,
    /// The custom headers it chose (a JSON object), `None` for the hook's own.
    pub headers: Option<String>,
}

/// One HTTP attempt, as recorded.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub id: String,
    pub delivery_id: String,
    /// [`ClaimedDelivery::row`] of the delivery.
    pub delivery_row: i64,
    /// The delivery's event, named in `Delivery.Exhausted` when this attempt was its last.
    pub event_id: String,
    pub hook_id: String,
    pub event_name: String,
    /// [`ClaimedDelivery::ordering_key`] of the delivery.
    pub ordering_key: Option<String>,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub next: NextStep,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub at: i64,
    /// Set when this attempt ran the delivery's transform and it answered a request: stored
    /// on the delivery (whatever the endpoint then answered), for every later attempt.
    pub transformed: Option<TransformedRequest>,
    /// The script run behind this attempt, if any (`{durationMs, logs, skipped?}` as JSON),
    /// shown with the attempt in the delivery's log and in recent-logs.
    pub script: Option<String>,
}

/// One call of a blocking hook, to be logged like a delivery attempt (it never is queued).
#[derive(Debug, Clone)]
pub struct BlockingCallLog {
    /// The call's `webhook-id`.
    pub delivery_id: String,
    pub hook_id: String,
    pub event: HookEvent,
    /// The payload sent, without `hookId`.
    pub payload: Map<String, Value>,
    pub success: bool,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub at: i64,
    /// For a script hook, its run (`{durationMs, logs, answer?}` as JSON), as `AttemptRecord::script`.
    pub script: Option<String>,
}

/// A filter for a hook's attempt log.
#[derive(Debug, Clone)]
pub struct LogQuery {
    pub hook_id: String,
    pub event_name: Option<String>,
    pub start: i64,
    pub end: i64,
    pub page: Page,
}

/// One attempt read back, with the body that was sent.
#[derive(Debug, Clone)]
pub struct AttemptLog {
    pub id: String,
    pub delivery_id: String,
    pub hook_id: String,
    pub event_name: String,
    pub attempt: u32,
    pub success: bool,
    pub request_body: Option<String>,
    pub response_status: Option<u16>,
    pub response_body: Option<String>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub created_at: i64,
    /// The script run behind the attempt, if any (`AttemptRecord::script`), as stored JSON.
    pub script: Option<String>,
}

#[async_trait]
pub trait Store: identity::IdentityStore + Send + Sync + 'static {
    /// Is the database reachable, and does it take writes?
    async fn ping(&self) -> StoreResult<()>;

    async fn setting(&self, key: &str) -> StoreResult<Option<String>>;
    /// The configured action of a type (`domain::action`), as stored: its JSON text.
    async fn action(&self, action_type: &str) -> StoreResult<Option<String>>;
    /// Stores the action of a type, replacing one stored; `true` when there was none.
    async fn put_action(&self, action_type: &str, config: &str, now: i64) -> StoreResult<bool>;
    /// Deletes the action of a type; `false` when there was none.
    async fn delete_action(&self, action_type: &str) -> StoreResult<bool>;
    /// Logs a run, keeping the newest [`ACTION_RUNS_KEPT`] of its type.
    async fn record_action_run(&self, run: &ActionRun) -> StoreResult<()>;
    /// Runs of a type, newest first, and how many are kept.
    async fn action_runs(
        &self,
        action_type: &str,
        page: Page,
    ) -> StoreResult<(Vec<ActionRun>, u64)>;
    /// Stores `value` unless the key is set already; returns whether it was stored.
    async fn set_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool>;

    async fn insert_hook(&self, hook: &Hook) -> StoreResult<()>;
    async fn get_hook(&self, id: &str) -> StoreResult<Option<Hook>>;
    /// Hooks, oldest first, and the total count.
    async fn list_hooks(&self, page: Option<Page>) -> StoreResult<(Vec<Hook>, u64)>;
    /// Replaces a hook's fields; false if it does not exist.
    async fn update_hook(&self, hook: &Hook) -> StoreResult<bool>;
    /// Deletes a hook with its deliveries and attempt log; false if it did not exist.
    async fn delete_hook(&self, id: &str) -> StoreResult<bool>;
    /// Attempts (and successful ones) per hook since `since`.
    async fn execution_stats(
        &self,
        hook_ids: &[String],
        since: i64,
    ) -> StoreResult<HashMap<String, ExecutionStats>>;

    /// Stores the event and one queued delivery per enabled hook subscribed to it, in one
    /// transaction. Once this returns, the event is durable. Up to `lease.up_to` of the
    /// deliveries are inserted leased and returned, for the caller to send.
    async fn enqueue_event(&self, event: &NewEvent, lease: Lease) -> StoreResult<Enqueued>;

    /// Notified (`notify_one`) after every commit that left deliveries due in the queue: an
    /// enqueue, an identity change's events, a release; on a database shared by several
    /// nodes, also when another node committed them. The dispatcher waits on it, so no
    /// publisher has to remember to wake anything: the commit does.
    fn wakeups(&self) -> std::sync::Arc<tokio::sync::Notify>;

    /// Claims due deliveries (see [`ClaimRequest`]), and says whether due work may be left
    /// (see [`Claimed::more`]).
    async fn claim_due(&self, req: &ClaimRequest) -> StoreResult<Claimed>;
    /// Records attempts and moves their deliveries on, all in one transaction, with what they
    /// cause (`storage::health`): each hook's failing streak, a hook disabled by a `410 Gone`
    /// (`NextStep::Gone`) with its `Hook.Disabled`, and a `Delivery.Exhausted` for each
    /// delivery whose schedule ended.
    async fn record_attempts(&self, records: &[AttemptRecord]) -> StoreResult<()>;
    /// Logs calls of blocking hooks so that recent-logs shows them: each as its event, a
    /// finished (never queued) delivery and the one attempt.
    async fn record_blocking_calls(&self, calls: &[BlockingCallLog]) -> StoreResult<()>;
    /// Makes claimed deliveries due again at `now` (used at shutdown for unfinished work).
    async fn release(&self, delivery_ids: &[String], now: i64) -> StoreResult<()>;
    /// Pauses a hook until `until` (epoch ms), as its endpoint asked (a 429 or 503 with
    /// `Retry-After`): its queued deliveries due by `now` and not leased, and those enqueued
    /// for it before `until`, are due at `until`. So a long pause's backlog does not stand at
    /// the head of the queue, where claims would walk past it each round (on SQLite a claim
    /// gives up after a few thousand such rows, and every other hook would wait for the
    /// pause's end). On PostgreSQL the pause is in the hook's row, for every node.
    async fn pause_hook(&self, hook_id: &str, until: i64, now: i64) -> StoreResult<()>;
    /// When the earliest queued delivery becomes due, if any.
    async fn next_due_at(&self) -> StoreResult<Option<i64>>;

    /// Counts for the metrics (see [`QueueStats`]).
    async fn queue_stats(&self, now: i64) -> StoreResult<QueueStats>;

    /// A hook's attempt log, newest first, and the total count.
    async fn recent_logs(&self, q: &LogQuery) -> StoreResult<(Vec<AttemptLog>, u64)>;

    /// Deliveries matching `q`, newest first (by creation, ties in insertion order), and how
    /// many match in all (see `deliveries`).
    async fn list_deliveries(
        &self,
        q: &deliveries::DeliveryQuery,
    ) -> StoreResult<(Vec<deliveries::DeliveryInfo>, u64)>;
    /// One delivery with the body it sends and its attempts, oldest first.
    async fn get_delivery(&self, id: &str) -> StoreResult<Option<deliveries::DeliveryDetail>>;
    /// Published events, newest first, each with its deliveries counted by status
    /// (`storage::events`).
    async fn list_events(&self, q: &events::EventQuery)
        -> StoreResult<Vec<events::PublishedEvent>>;
    /// One published event with its deliveries counted; `None` if there is none (or it was
    /// pruned).
    async fn get_event(&self, id: &str) -> StoreResult<Option<events::PublishedEvent>>;

    /// Makes a delivery due at `now`, whatever its state, with its retry schedule started
    /// afresh (attempt numbers go on). On SQLite a delivery this process is sending right
    /// then is left to that attempt; on PostgreSQL it is due again at once, so it may be sent
    /// a second time. `false` if there is no such delivery.
    async fn retry_delivery(&self, id: &str, now: i64) -> StoreResult<bool>;
    /// How many deliveries `r` would re-queue now.
    async fn count_recoverable(&self, r: &deliveries::Recovery) -> StoreResult<u64>;
    /// Re-queues up to `limit` of `r`'s deliveries, due at `now` with a fresh schedule, in
    /// one transaction; returns how many (0: none are left).
    async fn recover(&self, r: &deliveries::Recovery, limit: u32, now: i64) -> StoreResult<u64>;
    /// How many deliveries `r` would create now.
    async fn count_replayable(&self, r: &deliveries::Replay) -> StoreResult<u64>;
    /// Looks at up to `limit` of `r`'s events after `after` and creates, in one transaction,
    /// a delivery due at `now` for each that still has none to the hook.
    async fn replay(
        &self,
        r: &deliveries::Replay,
        after: Option<&deliveries::ReplayCursor>,
        limit: u32,
        now: i64,
    ) -> StoreResult<deliveries::ReplayStep>;

    /// Disables every enabled hook whose attempts have all failed since `before` or earlier
    /// (`hooks.failing_since`, kept by `record_attempts`), each with its `Hook.Disabled`
    /// event in the same transaction; returns their ids.
    async fn disable_failing_hooks(&self, before: i64, now: i64) -> StoreResult<Vec<String>>;

    /// Deletes, in one transaction, up to `limit` rows of each table that `cutoffs` lets go:
    /// finished deliveries, then events nothing refers to any more, then attempts (hook by
    /// hook, through their `(hook_id, created_at)` index).
    async fn prune(
        &self,
        cutoffs: &deliveries::PruneCutoffs,
        limit: u32,
    ) -> StoreResult<deliveries::Pruned>;
}

/// How to open a store, beyond its URL.
#[derive(Debug, Clone, Copy)]
pub struct ConnectOptions {
    /// PostgreSQL: the main pool's size (`--database-pool-size`).
    pub pool_size: u32,
    /// SQLite: how long a statement waits for a lock another process holds before it fails
    /// as [`StoreError::Unavailable`] (`--database-busy-timeout`).
    pub busy_timeout: std::time::Duration,
    /// SQLite: start a new, empty database even where an earlier one left traces
    /// (`--create-database`; see [`StoreError::Missing`]).
    pub create_database: bool,
    /// Seals signing keys at rest (`--encryption-key`; see [`cipher`]).
    pub encryption_key: Option<[u8; 32]>,
}

impl Default for ConnectOptions {
    /// The flags' defaults.
    fn default() -> Self {
        Self {
            pool_size: 16,
            busy_timeout: std::time::Duration::from_secs(5),
            create_database: false,
            encryption_key: None,
        }
    }
}

/// Opens the store named by `database_url` (`sqlite:`, `postgres:` or `postgresql:`) and
/// brings its schema up to date.
pub async fn connect(
    database_url: &str,
    options: ConnectOptions,
) -> StoreResult<std::sync::Arc<dyn Store>> {
    if database_url.starts_with("sqlite:") {
        Ok(std::sync::Arc::new(
            sqlite::SqliteStore::open_with(database_url, &options).await?,
        ))
    } else if database_url.starts_with("postgres:") || database_url.starts_with("postgresql:") {
        Ok(std::sync::Arc::new(
            postgres::PostgresStore::open_with(database_url, &options).await?,
        ))
    } else {
        Err(StoreError::UnsupportedUrl(redact_url(database_url)))
    }
}

/// A database URL without its password (in the user part or as a `password` query
/// parameter, both of which PostgreSQL URLs allow), for messages and logs. A URL that does
/// not parse is not shown at all: its password could be anywhere in it.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return "<a database URL that does not parse>".to_owned();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    if u.query_pairs().any(|(k, _)| k == "password") {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if k == "password" {
                    "***".into()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    u.to_string()
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn a_redacted_url_shows_no_password() {
        assert_eq!(
            redact_url("postgres://ann:s3cret@db/h"),
            "postgres://ann:***@db/h"
        );
        assert_eq!(
            redact_url("postgres://ann@db/h?sslmode=require&password=s3cret"),
            "postgres://ann@db/h?sslmode=require&password=***"
        );
        assert!(!redact_url("postgres://ann:pa/ss@db/h").contains("ss@"));
        assert!(!redact_url("postgres://ann:s3c ret@[db/h").contains("s3c"));
        assert_eq!(redact_url("sqlite://hookline.db"), "sqlite://hookline.db");
    }
}
