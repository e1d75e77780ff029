//! The PostgreSQL implementation of [`Store`]: for several nodes on one database.
//!
//! Every node is stateless; what they share lives in the rows:
//! - **leases** are `due_at` pushed forward by a claim (`FOR UPDATE SKIP LOCKED`, so claimers
//!   never wait for each other or take the same row), and a dead node's deliveries are due
//!   again when their leases end, with nothing to clean up;
//! - **wake-ups** go through `LISTEN`/`NOTIFY` on [`CHANNEL`]: a commit that leaves deliveries
//!   due notifies every node, which claims if it has room (see [`Store::wakeups`]);
//! - **hooks** are read at every enqueue and claim (a node caches only each hook's parsed
//!   target, by the row's `version`), so a change on one node is used by all at once;
//! - **interaction state** (lockouts, code sends) is rows changed in serializable
//!   transactions, so guesses spread over nodes still count together.
//!
//! Two pools: the main one (`--database-pool-size`) for the API, publishing and identity
//! changes, committed durably; and a small one for claims and attempt records with
//! `synchronous_commit = off`. Losing the last of those to a crash of the database server
//! only means a delivery is sent again, which at-least-once delivery allows anyway (the same
//! trade as SQLite's `Durability::Process`).

mod deliveries;
mod health;
mod hooks;
mod identity;
mod ordering;
mod queue;
mod requeue;

use super::*;
use crate::domain::hook::{HookConfig, PreviousKey};
use crate::domain::payload::delivery_body;
use crate::storage::cipher::KeyCipher;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgListener, PgPool, PgPoolOptions};
use sqlx::Connection as _;
use sqlx::Row;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::Notify;

/// The `LISTEN`/`NOTIFY` channel for "deliveries are due".
pub const CHANNEL: &str = "hookline_queue";

/// Connections of the claim-and-record pool: the dispatcher claims one batch at a time and
/// the recorder writes one batch at a time, plus releases.
const FAST_POOL_SIZE: u32 = 4;

/// How long a request waits for a connection before the store reports itself unavailable
/// (the API then answers 503 `database.unavailable`).
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);

/// Publishes waiting to be committed together, at most this many in one statement.
const MAX_ENQUEUE_BATCH: usize = 64;

/// One published event waiting for its batch (see [`enqueue_batches`]).
struct EnqueueJob {
    event: NewEvent,
    lease: Lease,
    reply: tokio::sync::oneshot::Sender<StoreResult<Enqueued>>,
}

pub struct PostgresStore {
    pool: PgPool,
    /// Publishes go to [`enqueue_batches`], which commits those waiting together.
    enqueues: tokio::sync::mpsc::Sender<EnqueueJob>,
    /// `synchronous_commit = off`: claims, records, releases.
    fast: PgPool,
    wakeups: Arc<Notify>,
    targets: Arc<TargetCache>,
    /// Seals and opens signing keys (`--encryption-key`).
    cipher: KeyCipher,
    listener: tokio::task::JoinHandle<()>,
    sweeper: tokio::task::JoinHandle<()>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        self.listener.abort();
        self.sweeper.abort();
    }
}

/// Group commit for publishes, as SQLite's writer does it: every publish waiting when a
/// batch starts goes into one `INSERT` statement and one commit, so the commit rate stops
/// bounding the publish rate (single-delivery events were 1,400–1,700/s with one commit each,
/// BENCHMARKS.md). Up to `concurrency` batches run at once; while all are running, new
/// publishes wait and form the next, larger batch. A batch that fails is run again one event
/// at a time, so that one bad event fails alone.
async fn enqueue_batches(
    pool: PgPool,
    targets: Arc<TargetCache>,
    mut jobs: tokio::sync::mpsc::Receiver<EnqueueJob>,
    concurrency: usize,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(concurrency));
    loop {
        let Ok(permit) = permits.clone().acquire_owned().await else {
            return;
        };
        let Some(first) = jobs.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_ENQUEUE_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let (pool, targets) = (pool.clone(), targets.clone());
        tokio::spawn(async move {
            let result = enqueue_now(&pool, &targets, &batch).await;
            match result {
                Ok(results) => {
                    for (job, r) in batch.into_iter().zip(results) {
                        let _ = job.reply.send(Ok(r));
                    }
                }
                // One event, or a failure that is not about the events (the database is
                // unavailable): every caller gets it, at once.
                Err(e) if batch.len() == 1 || matches!(e, StoreError::Unavailable(_)) => {
                    let message = e.to_string();
                    let mut errors = std::iter::once(e);
                    for job in batch {
                        let e = errors
                            .next()
                            .unwrap_or_else(|| StoreError::Unavailable(message.clone()));
                        let _ = job.reply.send(Err(e));
                    }
                }
                Err(_) => {
                    for job in batch {
                        let alone = enqueue_now(&pool, &targets, std::slice::from_ref(&job))
                            .await
                            .map(|mut r| r.pop().unwrap_or_default());
                        let _ = job.reply.send(alone);
                    }
                }
            }
            drop(permit);
        });
    }
}

/// Deletes expired interaction state (lockouts, codes, send counts) once a minute. Reads
/// ignore expired rows anyway; this only keeps the table as small as what is live. It runs
/// on its own, outside the serializable identity changes, whose range deletes would make
/// unrelated sign-ins conflict. Stopped when the store is dropped.
async fn sweep_interaction_state(pool: PgPool) {
    let mut every = tokio::time::interval(Duration::from_secs(60));
    loop {
        every.tick().await;
        if let Err(e) = sqlx::query("DELETE FROM interaction_state WHERE expires_at <= $1")
            .bind(crate::clock::now_ms())
            .execute(&pool)
            .await
        {
            tracing::debug!(error = %e, "sweeping expired interaction state failed; trying again later");
        }
    }
}

/// Commits `jobs`' events in one statement.
async fn enqueue_now(
    pool: &PgPool,
    targets: &TargetCache,
    jobs: &[EnqueueJob],
) -> StoreResult<Vec<Enqueued>> {
    let events: Vec<(&NewEvent, Lease)> = jobs.iter().map(|j| (&j.event, j.lease)).collect();
    // One statement, so no transaction around it: it commits (durably) by itself.
    let mut conn = pool.acquire().await?;
    queue::enqueue_in(&mut conn, targets, &events).await
}

/// Each hook's parsed target, good while the hook row's `version` is the one it was made from.
#[derive(Default)]
pub(crate) struct TargetCache {
    targets: Mutex<HashMap<String, (i64, Arc<DeliveryTarget>)>>,
    /// Opens the keys of the rows it parses.
    cipher: KeyCipher,
}

impl TargetCache {
    /// The target of hook `id` at `version`, parsed from its row's `config` and key only when
    /// this node has not seen that version yet.
    fn get(
        &self,
        id: &str,
        version: i64,
        config: &str,
        signing_key: &str,
        previous: Option<PreviousKey>,
    ) -> StoreResult<Arc<DeliveryTarget>> {
        let mut targets = self
            .targets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((v, t)) = targets.get(id) {
            if *v == version {
                return Ok(t.clone());
            }
        }
        let config: HookConfig = serde_json::from_str(config)
            .map_err(|e| StoreError::Corrupt(format!("hook config: {e}")))?;
        let key = self.cipher.open(id, signing_key)?;
        let previous = previous
            .map(|p| {
                self.cipher.open(id, &p.key).map(|key| PreviousKey {
                    key,
                    expires_at: p.expires_at,
                })
            })
            .transpose()?;
        let target = Arc::new(DeliveryTarget::new(config, key, previous));
        targets.insert(id.to_owned(), (version, target.clone()));
        Ok(target)
    }
}

impl PostgresStore {
    /// Connects (both pools and the listener), and applies the migrations under
    /// `migrations/postgres/` (sqlx holds an advisory lock while it does, so nodes starting
    /// together apply each migration once).
    pub async fn open_with(url: &str, settings: &ConnectOptions) -> StoreResult<Self> {
        let pool_size = settings.pool_size;
        let cipher = KeyCipher::new(settings.encryption_key);
        let options = PgConnectOptions::from_str(url)
            .map_err(|e| StoreError::UnsupportedUrl(format!("{}: {e}", redact_url(url))))?
            .application_name("hookline");
        // One connection first, on its own: a pool that cannot connect reports only that it
        // timed out, while this says why (refused, unknown host, authentication failed, no
        // such database). sqlx's messages name neither the URL nor the password.
        PgConnection::close(
            tokio::time::timeout(ACQUIRE_TIMEOUT, PgConnection::connect_with(&options))
                .await
                .map_err(|_| {
                    StoreError::Unavailable(format!(
                        "no answer from the server within {ACQUIRE_TIMEOUT:?}"
                    ))
                })??,
        )
        .await?;
        let pool = PgPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        sqlx::migrate!("./migrations/postgres").run(&pool).await?;
        let fast = PgPoolOptions::new()
            .max_connections(FAST_POOL_SIZE)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone().options([("synchronous_commit", "off")]))
            .await?;
        let wakeups = Arc::new(Notify::new());
        // The listener's session connection is a pool of its own: it is held for good, and
        // must not take one of the main pool's.
        let listen_pool = PgPoolOptions::new()
            .max_connections(1)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options.clone())
            .await?;
        let mut listener = PgListener::connect_with(&listen_pool).await?;
        listener.listen(CHANNEL).await?;
        let listener = tokio::spawn(listen(listener, wakeups.clone()));
        let sweeper = tokio::spawn(sweep_interaction_state(pool.clone()));
        let targets = Arc::new(TargetCache {
            targets: Mutex::default(),
            cipher: cipher.clone(),
        });
        let (enqueues, jobs) = tokio::sync::mpsc::channel(4 * MAX_ENQUEUE_BATCH);
        // A quarter of the pool for publishing batches: they are few and large, and the rest
        // stays for the API's reads and identity changes.
        let concurrency = (pool_size as usize / 4).max(1);
        tokio::spawn(enqueue_batches(
            pool.clone(),
            targets.clone(),
            jobs,
            concurrency,
        ));
        let store = Self {
            pool,
            enqueues,
            fast,
            wakeups,
            targets,
            cipher,
            listener,
            sweeper,
        };
        store.reseal_signing_keys().await?;
        Ok(store)
    }
}

/// Wakes the dispatcher on every notification. `PgListener` reconnects by itself after a lost
/// connection; notifications sent meanwhile are lost, and the dispatcher's poll (every
/// second) picks up what they were about. An error it does report wakes the dispatcher too.
async fn listen(mut listener: PgListener, wakeups: Arc<Notify>) {
    loop {
        match listener.recv().await {
            Ok(_) => wakeups.notify_one(),
            Err(e) => {
                tracing::warn!(error = %e, "listening for queue notifications failed; reconnecting");
                wakeups.notify_one();
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
    async fn ping(&self) -> StoreResult<()> {
        // Ready means able to take events: a standby (read-only) server is not.
        let in_recovery: bool = sqlx::query_scalar("SELECT pg_is_in_recovery()")
            .fetch_one(&self.pool)
            .await?;
        if in_recovery {
            return Err(StoreError::Unavailable(
                "the server is a read-only standby".into(),
            ));
        }
        Ok(())
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = $1")
                .bind(key)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn action(&self, action_type: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT config FROM actions WHERE action_type = $1")
                .bind(action_type)
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    async fn put_action(&self, action_type: &str, config: &str, now: i64) -> StoreResult<bool> {
        // `xmax = 0` only for a row this statement inserted.
        let inserted: bool = sqlx::query_scalar(
            "INSERT INTO actions (action_type, config, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (action_type) DO UPDATE SET config = $2, updated_at = $3 \
             RETURNING xmax = 0",
        )
        .bind(action_type)
        .bind(config)
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        Ok(inserted)
    }

    async fn delete_action(&self, action_type: &str) -> StoreResult<bool> {
        let n = sqlx::query("DELETE FROM actions WHERE action_type = $1")
            .bind(action_type)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(n == 1)
    }

    async fn record_action_run(&self, run: &crate::storage::ActionRun) -> StoreResult<()> {
        sqlx::query(
            "WITH i AS (INSERT INTO action_runs (id, action_type, success, result, error, logs, \
               duration_ms, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)) \
             DELETE FROM action_runs WHERE action_type = $2 AND created_at < \
               (SELECT created_at FROM action_runs WHERE action_type = $2 \
                ORDER BY created_at DESC LIMIT 1 OFFSET $9)",
        )
        .bind(&run.id)
        .bind(&run.action_type)
        .bind(run.success)
        .bind(&run.result)
        .bind(&run.error)
        .bind(&run.logs)
        .bind(run.duration_ms)
        .bind(run.created_at)
        // The DELETE does not see the row this statement inserts: keep one fewer of the others.
        .bind(crate::storage::ACTION_RUNS_KEPT - 2)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn action_runs(
        &self,
        action_type: &str,
        page: Page,
    ) -> StoreResult<(Vec<crate::storage::ActionRun>, u64)> {
        let runs = sqlx::query_as(
            "SELECT id, action_type, success, result, error, logs, duration_ms, created_at \
             FROM action_runs WHERE action_type = $1 ORDER BY created_at DESC, id DESC \
             LIMIT $2 OFFSET $3",
        )
        .bind(action_type)
        .bind(i64::from(page.limit))
        .bind(page.offset as i64)
        .fetch_all(&self.pool)
        .await?;
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM action_runs WHERE action_type = $1")
                .bind(action_type)
                .fetch_one(&self.pool)
                .await?;
        Ok((runs, total as u64))
    }

    async fn set_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool> {
        let n = sqlx::query(
            "INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }

    async fn insert_hook(&self, hook: &Hook) -> StoreResult<()> {
        self.insert_hook_here(hook).await
    }

    async fn get_hook(&self, id: &str) -> StoreResult<Option<Hook>> {
        self.get_hook_here(id).await
    }

    async fn list_hooks(&self, page: Option<Page>) -> StoreResult<(Vec<Hook>, u64)> {
        self.list_hooks_here(page).await
    }

    async fn update_hook(&self, hook: &Hook) -> StoreResult<bool> {
        self.update_hook_here(hook).await
    }

    async fn delete_hook(&self, id: &str) -> StoreResult<bool> {
        self.delete_hook_here(id).await
    }

    async fn execution_stats(
        &self,
        hook_ids: &[String],
        since: i64,
    ) -> StoreResult<HashMap<String, ExecutionStats>> {
        self.execution_stats_here(hook_ids, since).await
    }

    async fn enqueue_event(&self, event: &NewEvent, lease: Lease) -> StoreResult<Enqueued> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let stopped = || StoreError::Unavailable("the publishing task has stopped".into());
        self.enqueues
            .send(EnqueueJob {
                event: event.clone(),
                lease,
                reply,
            })
            .await
            .map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    fn wakeups(&self) -> Arc<Notify> {
        self.wakeups.clone()
    }

    async fn claim_due(&self, req: &ClaimRequest) -> StoreResult<Claimed> {
        let deliveries = queue::claim_due(&self.fast, &self.targets, req).await?;
        // Rows beyond the statement's limit are not looked at: a full claim may have left some.
        let more = deliveries.len() >= req.limit as usize;
        Ok(Claimed { deliveries, more })
    }

    async fn record_attempts(&self, records: &[AttemptRecord]) -> StoreResult<()> {
        if records.is_empty() {
            return Ok(());
        }
        if !health::has_consequences(records) && !queue::ends_heads(records) {
            let mut conn = self.fast.acquire().await?;
            return queue::record_attempts(&mut conn, records).await;
        }
        // A schedule ended or an endpoint is gone (the events and the disabled hook commit
        // with the records), or a line's head left the queue (its count and its next row
        // change together).
        let mut tx = self.fast.begin().await?;
        queue::record_attempts(&mut tx, records).await?;
        health::after_records(&mut tx, &self.targets, records).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record_blocking_calls(&self, calls: &[BlockingCallLog]) -> StoreResult<()> {
        queue::record_blocking_calls(&self.fast, calls).await
    }

    async fn release(&self, delivery_ids: &[String], now: i64) -> StoreResult<()> {
        queue::release(&self.fast, delivery_ids, now).await
    }

    async fn pause_hook(&self, hook_id: &str, until: i64, now: i64) -> StoreResult<()> {
        queue::pause_hook(&self.fast, hook_id, until, now).await
    }

    async fn next_due_at(&self) -> StoreResult<Option<i64>> {
        Ok(sqlx::query_scalar(
            "SELECT d.due_at FROM deliveries d WHERE d.state = 0 \
             AND EXISTS (SELECT 1 FROM hooks h WHERE h.id = d.hook_id AND h.enabled) \
             ORDER BY d.due_at LIMIT 1",
        )
        .fetch_optional(&self.fast)
        .await?)
    }

    async fn queue_stats(&self, now: i64) -> StoreResult<QueueStats> {
        // A leased delivery's due_at is its lease's end, so it counts as scheduled (in flight).
        let (due, scheduled, failing): (i64, i64, i64) = sqlx::query_as(
            "SELECT \
               (SELECT COUNT(*) FROM deliveries WHERE state = 0 AND due_at <= $1), \
               (SELECT COUNT(*) FROM deliveries WHERE state = 0 AND due_at > $1), \
               (SELECT COUNT(*) FROM hooks WHERE enabled AND failing_since IS NOT NULL)",
        )
        .bind(now)
        .fetch_one(&self.pool)
        .await?;
        let count = |n: i64| u64::try_from(n).unwrap_or_default();
        Ok(QueueStats {
            due: count(due),
            scheduled: count(scheduled),
            failing_hooks: count(failing),
        })
    }

    async fn list_deliveries(
        &self,
        q: &super::deliveries::DeliveryQuery,
    ) -> StoreResult<(Vec<super::deliveries::DeliveryInfo>, u64)> {
        self.list_deliveries_here(q).await
    }

    async fn get_delivery(
        &self,
        id: &str,
    ) -> StoreResult<Option<super::deliveries::DeliveryDetail>> {
        self.get_delivery_here(id).await
    }

    async fn list_events(
        &self,
        q: &super::events::EventQuery,
    ) -> StoreResult<Vec<super::events::PublishedEvent>> {
        self.list_events_here(q).await
    }

    async fn get_event(&self, id: &str) -> StoreResult<Option<super::events::PublishedEvent>> {
        self.get_event_here(id).await
    }

    async fn retry_delivery(&self, id: &str, now: i64) -> StoreResult<bool> {
        self.retry_here(id, now).await
    }

    async fn count_recoverable(&self, r: &super::deliveries::Recovery) -> StoreResult<u64> {
        self.count_recoverable_here(r).await
    }

    async fn recover(
        &self,
        r: &super::deliveries::Recovery,
        limit: u32,
        now: i64,
    ) -> StoreResult<u64> {
        self.recover_here(r, limit, now).await
    }

    async fn count_replayable(&self, r: &super::deliveries::Replay) -> StoreResult<u64> {
        self.count_replayable_here(r).await
    }

    async fn replay(
        &self,
        r: &super::deliveries::Replay,
        after: Option<&super::deliveries::ReplayCursor>,
        limit: u32,
        now: i64,
    ) -> StoreResult<super::deliveries::ReplayStep> {
        self.replay_here(r, after, limit, now).await
    }

    async fn prune(
        &self,
        cutoffs: &super::deliveries::PruneCutoffs,
        limit: u32,
    ) -> StoreResult<super::deliveries::Pruned> {
        self.prune_here(cutoffs, limit).await
    }

    async fn disable_failing_hooks(&self, before: i64, now: i64) -> StoreResult<Vec<String>> {
        self.disable_failing_here(before, now).await
    }

    async fn recent_logs(&self, q: &LogQuery) -> StoreResult<(Vec<AttemptLog>, u64)> {
        let filter = "a.hook_id = $1 AND a.created_at >= $2 AND a.created_at <= $3 \
                      AND ($4::text IS NULL OR a.event_name = $4)";
        let total: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM attempts a WHERE {filter}"))
                .bind(&q.hook_id)
                .bind(q.start)
                .bind(q.end)
                .bind(&q.event_name)
                .fetch_one(&self.pool)
                .await?;
        let rows = sqlx::query(&format!(
            "SELECT a.*, e.payload, d.request_body FROM attempts a \
             LEFT JOIN deliveries d ON d.id = a.delivery_id \
             LEFT JOIN events e ON e.id = d.event_id \
             WHERE {filter} ORDER BY a.created_at DESC, a.seq DESC LIMIT $5 OFFSET $6"
        ))
        .bind(&q.hook_id)
        .bind(q.start)
        .bind(q.end)
        .bind(&q.event_name)
        .bind(q.page.limit as i64)
        .bind(q.page.offset as i64)
        .fetch_all(&self.pool)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let hook_id: String = row.try_get("hook_id")?;
            // What the delivery's transform made, once it ran; else the event's payload.
            let body = match row.try_get::<Option<String>, _>("request_body")? {
                Some(body) => Some(body),
                None => row
                    .try_get::<Option<String>, _>("payload")?
                    .map(|p| delivery_body(&p, &hook_id)),
            };
            out.push(deliveries::attempt(&row, body)?);
        }
        Ok((out, total as u64))
    }
}
