//! The SQLite implementation of [`Store`]: hookline's embedded default.
//!
//! SQLite allows one writer at a time. Rather than let several pooled connections fight over
//! the write lock (and fail with `SQLITE_BUSY` when a read transaction tries to upgrade), all
//! writes go through a pool of exactly one connection; reads use a separate pool and, thanks
//! to WAL mode, never wait for the writer. Throughput comes from doing more per write
//! transaction, not from more writers:
//! - published events are group-committed: concurrent `enqueue_event` calls queue up for an
//!   ingest task that commits whatever has gathered in one transaction, and each caller gets
//!   its answer only after that commit;
//! - claims and attempt records are written in batches by the delivery engine.
//!
//! Not every write needs an fsync. See [`Durability`].

use super::*;
use crate::domain::hook::HookConfig;
use crate::domain::id::new_id;
use crate::domain::payload::delivery_body;
use sqlx::pool::PoolConnection;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, Sqlite, SqlitePool, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

pub struct SqliteStore {
    writer: SqlitePool,
    /// The writer connection's current `synchronous` setting.
    writer_mode: WriterMode,
    reader: SqlitePool,
    /// Feeds the ingest task (see [`ingest_loop`]).
    ingest: mpsc::Sender<IngestRequest>,
}

struct IngestRequest {
    event: NewEvent,
    budget: Option<Arc<LeaseBudget>>,
    reply: oneshot::Sender<StoreResult<Enqueued>>,
}

/// Events committed per ingest transaction at most.
const INGEST_BATCH: usize = 512;

/// How far a write must reach before it counts as done. Set per transaction (SQLite's
/// `synchronous` is per connection, and there is exactly one writer connection).
#[derive(Debug, Clone, Copy)]
enum Durability {
    /// fsync'ed before the commit returns: survives a power cut. For published events (the
    /// promise behind the 202) and for hooks and settings.
    Disk,
    /// In the WAL but not yet fsync'ed: survives a crash of the process, and becomes durable
    /// with the next `Disk` commit or checkpoint. For claims and attempt records: losing the
    /// last few of those to a power cut only means a delivery is sent again, which
    /// at-least-once delivery allows anyway.
    Process,
}

impl SqliteStore {
    /// The writer connection, set to `durability`.
    async fn writer(&self, durability: Durability) -> StoreResult<PoolConnection<Sqlite>> {
        self.writer_mode.acquire(&self.writer, durability).await
    }
}

/// What the single writer connection's `synchronous` is set to, so that the PRAGMA is sent
/// only when it changes (each statement is a round trip to the connection's thread). Only
/// the holder of the one writer connection reads or sets it. It is "unknown" while a PRAGMA
/// is on its way (a cancelled caller leaves it so, and the next one sends it again); a
/// connection the pool opens anew starts at FULL, and `after_connect` records that.
#[derive(Clone, Default)]
struct WriterMode(Arc<std::sync::atomic::AtomicU8>);

const MODE_UNKNOWN: u8 = 0;
const MODE_NORMAL: u8 = 1;
const MODE_FULL: u8 = 2;

impl WriterMode {
    fn set(&self, mode: u8) {
        self.0.store(mode, std::sync::atomic::Ordering::Release);
    }

    async fn acquire(
        &self,
        pool: &SqlitePool,
        durability: Durability,
    ) -> StoreResult<PoolConnection<Sqlite>> {
        let mut conn = pool.acquire().await?;
        let (mode, pragma) = match durability {
            Durability::Disk => (MODE_FULL, "PRAGMA synchronous = FULL"),
            Durability::Process => (MODE_NORMAL, "PRAGMA synchronous = NORMAL"),
        };
        if self.0.load(std::sync::atomic::Ordering::Acquire) != mode {
            self.set(MODE_UNKNOWN);
            sqlx::query(pragma).execute(&mut *conn).await?;
            self.set(mode);
        }
        Ok(conn)
    }
}

/// Commits published events in groups: waits for the first, takes whatever else is queued
/// (up to [`INGEST_BATCH`]), stores them all in one `Disk` transaction and answers each
/// caller. Under load one fsync covers hundreds of events; at rest an event is committed
/// alone, at once.
async fn ingest_loop(writer: SqlitePool, mode: WriterMode, mut rx: mpsc::Receiver<IngestRequest>) {
    let mut batch: Vec<IngestRequest> = Vec::with_capacity(INGEST_BATCH);
    while rx.recv_many(&mut batch, INGEST_BATCH).await > 0 {
        let events: Vec<&NewEvent> = batch.iter().map(|r| &r.event).collect();
        // Every caller passes the same budget (the dispatcher's), or none.
        let budget = batch.iter().find_map(|r| r.budget.clone());
        match commit_events(&writer, &mode, &events, budget.as_deref()).await {
            Ok(results) => {
                for (req, enqueued) in batch.drain(..).zip(results) {
                    let _ = req.reply.send(Ok(enqueued));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, events = batch.len(), "committing published events failed");
                for req in batch.drain(..) {
                    let _ = req.reply.send(Err(StoreError::Unavailable(format!(
                        "the event was not stored: {e}"
                    ))));
                }
            }
        }
    }
}

async fn commit_events(
    writer: &SqlitePool,
    mode: &WriterMode,
    events: &[&NewEvent],
    budget: Option<&LeaseBudget>,
) -> StoreResult<Vec<Enqueued>> {
    let mut conn = mode.acquire(writer, Durability::Disk).await?;
    let mut tx = conn.begin().await?;
    let results = enqueue_events_in(&mut tx, events, budget).await?;
    if let Err(e) = tx.commit().await {
        // Nothing was stored, so nothing was leased.
        if let Some(b) = budget {
            b.give_back(results.iter().map(|r| r.leased.len()).sum());
        }
        return Err(e.into());
    }
    Ok(results)
}

const STATE_QUEUED: i64 = 0;
const STATE_SUCCEEDED: i64 = 1;
const STATE_FAILED: i64 = 2;

impl SqliteStore {
    /// Opens (creating if needed) the database file and runs the migrations.
    pub async fn open(url: &str) -> StoreResult<Self> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // The default for every connection; writes pick theirs (see `Durability`).
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(Duration::from_secs(10))
            .foreign_keys(true)
            // Statement journals and sort trees in memory: multi-row statements inside a
            // transaction otherwise write a temporary file each.
            .pragma("temp_store", "memory")
            // Checkpoint every ~40 MB of WAL instead of every 4 MB: a page rewritten many times
            // between two checkpoints (the queue index's hot pages are) is copied back once.
            .pragma("wal_autocheckpoint", "10000");
        let writer_mode = WriterMode::default();
        let on_connect = writer_mode.clone();
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .min_connections(1)
            .after_connect(move |_, _| {
                on_connect.set(MODE_FULL); // the connect options' default
                Box::pin(async { Ok(()) })
            })
            .acquire_timeout(Duration::from_secs(30))
            // A 16 MiB page cache (the default is 2 MiB) for the writer only: it keeps the hot
            // index pages of a large queue in memory instead of re-reading them from the OS,
            // which made draining a million-delivery backlog ~13 % faster and kept ingest from
            // slowing as the queue grew (BENCHMARKS.md). Readers keep the default, so the
            // whole store stays well under 100 MB.
            .connect_with(options.clone().pragma("cache_size", "-16384"))
            .await?;
        sqlx::migrate!("./migrations/sqlite").run(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await?;
        let (ingest, rx) = mpsc::channel(4 * INGEST_BATCH);
        tokio::spawn(ingest_loop(writer.clone(), writer_mode.clone(), rx));
        Ok(Self {
            writer,
            writer_mode,
            reader,
            ingest,
        })
    }
}

fn hook_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<Hook> {
    let corrupt =
        |what: &str, e: &dyn std::fmt::Display| StoreError::Corrupt(format!("hook {what}: {e}"));
    let event: Option<String> = row.try_get("event")?;
    let events: String = row.try_get("events")?;
    let events: Vec<String> = serde_json::from_str(&events).map_err(|e| corrupt("events", &e))?;
    let config: String = row.try_get("config")?;
    let config: HookConfig = serde_json::from_str(&config).map_err(|e| corrupt("config", &e))?;
    Ok(Hook {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        event: event
            .map(|e| HookEvent::parse(&e))
            .transpose()
            .map_err(|e| corrupt("event", &e))?,
        events: events
            .iter()
            .map(|e| HookEvent::parse(e))
            .collect::<Result<_, _>>()
            .map_err(|e| corrupt("events", &e))?,
        config,
        signing_key: row.try_get("signing_key")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        created_at: row.try_get("created_at")?,
    })
}

/// A batch of rows as the JSON array that `json_each` unpacks. Unlike [`json_text`], a failure
/// is an error: a batch that silently became `null` would store nothing.
fn rows_json<T: serde::Serialize>(rows: &T) -> StoreResult<String> {
    serde_json::to_string(rows).map_err(|e| StoreError::Corrupt(format!("a row batch: {e}")))
}

fn json_text<T: serde::Serialize>(v: &T) -> String {
    // Serializing plain data (strings, maps of strings) to a String cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn event_names(hook: &Hook) -> String {
    json_text(&hook.events.iter().map(|e| e.name()).collect::<Vec<_>>())
}

/// Stores `events` and their deliveries inside an open write transaction. Features that
/// change their own rows (the identity core) call this in the same transaction, so the change
/// and the events it causes commit together.
///
/// With a `budget`, as many deliveries as it grants are inserted leased and returned ready to
/// send (see [`LeaseBudget`]). If the transaction then fails to commit, the caller gives the
/// grant back.
///
/// A whole batch costs a handful of statements, not a few per event: the rows travel as one
/// JSON array each and are unpacked by SQLite (`json_each`). With sqlx every statement is a
/// round trip to the connection's thread, and that, not SQLite, was the cost per event.
pub async fn enqueue_events_in(
    tx: &mut Transaction<'_, Sqlite>,
    events: &[&NewEvent],
    budget: Option<&LeaseBudget>,
) -> StoreResult<Vec<Enqueued>> {
    // Subscribers with what it takes to send to them, looked up once per distinct event name.
    let mut subscribers: HashMap<HookEvent, Vec<(String, DeliveryTarget)>> = HashMap::new();
    for event in events {
        if subscribers.contains_key(&event.event) {
            continue;
        }
        let rows = sqlx::query(
            "SELECT id, config, signing_key FROM hooks WHERE enabled = 1 \
             AND (event = ?1 OR EXISTS (SELECT 1 FROM json_each(hooks.events) WHERE value = ?1)) \
             ORDER BY created_at, id",
        )
        .bind(event.event.name())
        .fetch_all(&mut **tx)
        .await?;
        let mut hooks = Vec::with_capacity(rows.len());
        for row in rows {
            hooks.push((row.try_get("id")?, target_from_row(&row)?));
        }
        subscribers.insert(event.event, hooks);
    }
    let total: usize = events
        .iter()
        .map(|e| subscribers.get(&e.event).map_or(0, Vec::len))
        .sum();
    let mut grant = budget.map_or(0, |b| b.take_for_new(total));
    let lease_until = |created_at: i64| created_at + budget.map_or(0, |b| b.lease_ms);

    let mut event_rows = Vec::with_capacity(events.len());
    let mut delivery_rows = Vec::with_capacity(total);
    let mut results = Vec::with_capacity(events.len());
    for event in events {
        let name = event.event.name();
        let payload = serde_json::to_string(&event.payload)
            .map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?;
        let hooks = subscribers
            .get(&event.event)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut enqueued = Enqueued {
            deliveries: hooks.len(),
            leased: Vec::new(),
        };
        for (hook_id, target) in hooks {
            let id = new_id();
            let leased = grant > 0;
            let due_at = if leased {
                grant -= 1;
                lease_until(event.created_at)
            } else {
                event.created_at
            };
            if leased {
                enqueued.leased.push(ClaimedDelivery {
                    id: id.clone(),
                    event_id: event.id.clone(),
                    hook_id: hook_id.clone(),
                    event_name: name.to_owned(),
                    body: delivery_body(&payload, hook_id),
                    attempts: 0,
                    created_at: event.created_at,
                    target: target.clone(),
                });
            }
            delivery_rows.push((
                id,
                event.id.as_str(),
                hook_id.as_str(),
                name,
                event.created_at,
                due_at,
            ));
        }
        event_rows.push((event.id.as_str(), name, payload, event.created_at));
        results.push(enqueued);
    }
    let inserted = async {
        sqlx::query(
            "INSERT INTO events (id, name, payload, created_at) \
             SELECT value->>0, value->>1, value->>2, value->>3 FROM json_each(?)",
        )
        .bind(rows_json(&event_rows)?)
        .execute(&mut **tx)
        .await?;
        if !delivery_rows.is_empty() {
            sqlx::query(
                "INSERT INTO deliveries (id, event_id, hook_id, event_name, due_at, created_at, updated_at) \
                 SELECT value->>0, value->>1, value->>2, value->>3, value->>5, value->>4, value->>4 \
                 FROM json_each(?)",
            )
            .bind(rows_json(&delivery_rows)?)
            .execute(&mut **tx)
            .await?;
        }
        StoreResult::Ok(())
    }
    .await;
    if let Err(e) = inserted {
        if let Some(b) = budget {
            b.give_back(results.iter().map(|r| r.leased.len()).sum());
        }
        return Err(e);
    }
    Ok(results)
}

/// A hook's sending details from a row with `config` and `signing_key`.
fn target_from_row(row: &sqlx::sqlite::SqliteRow) -> StoreResult<DeliveryTarget> {
    let config: String = row.try_get("config")?;
    let config: HookConfig = serde_json::from_str(&config)
        .map_err(|e| StoreError::Corrupt(format!("hook config: {e}")))?;
    Ok(DeliveryTarget {
        config,
        signing_key: row.try_get("signing_key")?,
    })
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        // Ready means able to take events, so the check takes the write lock (and gives it
        // back at once): a database that reads but cannot be written is not ready.
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        let mut conn = self.writer(Durability::Process).await?;
        let mut tx = conn.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query("SELECT 1").execute(&mut *tx).await?;
        tx.rollback().await?;
        Ok(())
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.writer)
                .await?,
        )
    }

    async fn set_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool> {
        let r = sqlx::query(
            "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .execute(&mut *self.writer(Durability::Disk).await?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn insert_hook(&self, hook: &Hook) -> StoreResult<()> {
        sqlx::query(
            "INSERT INTO hooks (id, name, event, events, config, signing_key, enabled, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(&hook.id)
        .bind(&hook.name)
        .bind(hook.event.map(|e| e.name()))
        .bind(event_names(hook))
        .bind(json_text(&hook.config))
        .bind(&hook.signing_key)
        .bind(hook.enabled as i64)
        .bind(hook.created_at)
        .execute(&mut *self.writer(Durability::Disk).await?)
        .await?;
        Ok(())
    }

    async fn get_hook(&self, id: &str) -> StoreResult<Option<Hook>> {
        // Read from the writer: a client that just wrote a hook must read its own write.
        sqlx::query("SELECT * FROM hooks WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.writer)
            .await?
            .as_ref()
            .map(hook_from_row)
            .transpose()
    }

    async fn list_hooks(&self, page: Option<Page>) -> StoreResult<(Vec<Hook>, u64)> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hooks")
            .fetch_one(&self.reader)
            .await?;
        let (limit, offset) = page.map_or((-1, 0), |p| (p.limit as i64, p.offset as i64));
        let rows = sqlx::query("SELECT * FROM hooks ORDER BY created_at, id LIMIT ? OFFSET ?")
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.reader)
            .await?;
        let hooks = rows
            .iter()
            .map(hook_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((hooks, total as u64))
    }

    async fn update_hook(&self, hook: &Hook) -> StoreResult<bool> {
        let r = sqlx::query(
            "UPDATE hooks SET name = ?, event = ?, events = ?, config = ?, signing_key = ?, enabled = ? WHERE id = ?",
        )
        .bind(&hook.name)
        .bind(hook.event.map(|e| e.name()))
        .bind(event_names(hook))
        .bind(json_text(&hook.config))
        .bind(&hook.signing_key)
        .bind(hook.enabled as i64)
        .bind(&hook.id)
        .execute(&mut *self.writer(Durability::Disk).await?)
        .await?;
        Ok(r.rows_affected() == 1)
    }

    async fn delete_hook(&self, id: &str) -> StoreResult<bool> {
        let mut conn = self.writer(Durability::Disk).await?;
        let mut tx = conn.begin().await?;
        let r = sqlx::query("DELETE FROM hooks WHERE id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM deliveries WHERE hook_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM attempts WHERE hook_id = ?")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    async fn execution_stats(
        &self,
        hook_ids: &[String],
        since: i64,
    ) -> StoreResult<HashMap<String, ExecutionStats>> {
        let rows = sqlx::query(
            "SELECT hook_id, COUNT(*) AS requests, COALESCE(SUM(success), 0) AS successes FROM attempts \
             WHERE hook_id IN (SELECT value FROM json_each(?)) AND created_at >= ? GROUP BY hook_id",
        )
        .bind(json_text(&hook_ids))
        .bind(since)
        .fetch_all(&self.reader)
        .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            out.insert(
                row.try_get("hook_id")?,
                ExecutionStats {
                    request_count: row.try_get::<i64, _>("requests")? as u64,
                    success_count: row.try_get::<i64, _>("successes")? as u64,
                },
            );
        }
        Ok(out)
    }

    async fn enqueue_event(
        &self,
        event: &NewEvent,
        budget: Option<Arc<LeaseBudget>>,
    ) -> StoreResult<Enqueued> {
        let (reply, answer) = oneshot::channel();
        let gone = || StoreError::Unavailable("the ingest task has stopped".into());
        self.ingest
            .send(IngestRequest {
                event: event.clone(),
                budget,
                reply,
            })
            .await
            .map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }

    async fn claim_due(&self, req: &ClaimRequest) -> StoreResult<Vec<ClaimedDelivery>> {
        // Look at the first `scan` due rows in the order of the queue index (named, so that the
        // planner cannot pick the hook_id index and walk a hook's whole history), keep at most
        // `per_hook` of each hook and `limit` in all, and push them out of sight for the lease.
        // One statement, so it is atomic without an explicit transaction, and it returns all
        // it takes to send (the event's payload, the hook's current config and key): every
        // statement is a round trip to the connection's thread, which under load costs more
        // than the statement.
        let scan = (req.limit as i64).saturating_mul(4).max(64);
        let mut conn = self.writer(Durability::Process).await?;
        let rows = sqlx::query(
            "WITH due AS ( \
                SELECT d.id, d.hook_id, d.due_at FROM deliveries d INDEXED BY deliveries_queued_due \
                WHERE d.state = 0 AND d.due_at <= ?1 \
                  AND d.hook_id IN (SELECT id FROM hooks WHERE enabled = 1) \
                  AND d.hook_id NOT IN (SELECT value FROM json_each(?2)) \
                ORDER BY d.due_at LIMIT ?3 \
             ), ranked AS ( \
                SELECT id, due_at, ROW_NUMBER() OVER (PARTITION BY hook_id ORDER BY due_at) AS rn FROM due \
             ) \
             UPDATE deliveries SET due_at = ?4, updated_at = ?1 \
             WHERE id IN (SELECT id FROM ranked WHERE rn <= ?5 ORDER BY due_at LIMIT ?6) \
             RETURNING id, event_id, hook_id, event_name, attempts, created_at, \
               (SELECT payload FROM events e WHERE e.id = deliveries.event_id) AS payload, \
               (SELECT config FROM hooks h WHERE h.id = deliveries.hook_id) AS config, \
               (SELECT signing_key FROM hooks h WHERE h.id = deliveries.hook_id) AS signing_key",
        )
        .bind(req.now)
        .bind(json_text(&req.busy_hooks))
        .bind(scan)
        .bind(req.now + req.lease_ms)
        .bind(req.per_hook as i64)
        .bind(req.limit as i64)
        .fetch_all(&mut *conn)
        .await?;
        drop(conn);
        let mut out = Vec::with_capacity(rows.len());
        // Hooks' configs parsed once per claim, not once per delivery.
        let mut targets: HashMap<String, DeliveryTarget> = HashMap::new();
        for row in rows {
            let hook_id: String = row.try_get("hook_id")?;
            let event_id: String = row.try_get("event_id")?;
            let Some(payload) = row.try_get::<Option<String>, _>("payload")? else {
                return Err(StoreError::Corrupt(format!(
                    "event {event_id} of a delivery is missing"
                )));
            };
            let target = match targets.get(&hook_id) {
                Some(t) => t.clone(),
                None => {
                    // A hook deleted since the claim takes its deliveries with it.
                    if row.try_get::<Option<String>, _>("config")?.is_none() {
                        continue;
                    }
                    let t = target_from_row(&row)?;
                    targets.insert(hook_id.clone(), t.clone());
                    t
                }
            };
            out.push(ClaimedDelivery {
                id: row.try_get("id")?,
                body: delivery_body(&payload, &hook_id),
                event_id,
                hook_id,
                event_name: row.try_get("event_name")?,
                attempts: row.try_get::<i64, _>("attempts")? as u32,
                created_at: row.try_get("created_at")?,
                target,
            });
        }
        Ok(out)
    }

    async fn record_attempts(&self, records: &[AttemptRecord]) -> StoreResult<()> {
        // Tuples of references serialize straight to JSON arrays: no `Value` tree, no copies
        // of the response bodies.
        let rows: Vec<_> = records
            .iter()
            .map(|r| {
                let (state, due_at) = match r.next {
                    NextStep::Succeeded => (STATE_SUCCEEDED, r.at),
                    NextStep::RetryAt(at) => (STATE_QUEUED, at),
                    NextStep::GaveUp => (STATE_FAILED, r.at),
                };
                (
                    &r.id,
                    &r.delivery_id,
                    &r.hook_id,
                    &r.event_name,
                    r.attempt,
                    (r.next == NextStep::Succeeded) as i64,
                    r.response_status,
                    &r.response_body,
                    &r.error,
                    r.duration_ms,
                    r.at,
                    state,
                    due_at,
                )
            })
            .collect();
        let rows = rows_json(&rows)?;
        let mut conn = self.writer(Durability::Process).await?;
        let mut tx = conn.begin().await?;
        // The hook may have been deleted (with its deliveries) while an attempt ran: then
        // there is nothing to log it against.
        sqlx::query(
            "INSERT INTO attempts (id, delivery_id, hook_id, event_name, attempt, success, response_status, \
             response_body, error, duration_ms, created_at) \
             SELECT value->>0, value->>1, value->>2, value->>3, value->>4, value->>5, value->>6, \
                    value->>7, value->>8, value->>9, value->>10 \
             FROM json_each(?1) WHERE EXISTS (SELECT 1 FROM deliveries WHERE id = value->>1)",
        )
        .bind(&rows)
        .execute(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE deliveries SET state = r.value->>11, due_at = r.value->>12, attempts = r.value->>4, \
             updated_at = r.value->>10 FROM json_each(?1) AS r WHERE deliveries.id = r.value->>1",
        )
        .bind(&rows)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn release(&self, delivery_ids: &[String], now: i64) -> StoreResult<()> {
        sqlx::query("UPDATE deliveries SET due_at = ? WHERE state = 0 AND id IN (SELECT value FROM json_each(?))")
            .bind(now)
            .bind(json_text(&delivery_ids))
            .execute(&mut *self.writer(Durability::Process).await?)
            .await?;
        Ok(())
    }

    async fn next_due_at(&self) -> StoreResult<Option<i64>> {
        // ORDER BY + LIMIT walks the partial index from its start and stops at the first row
        // of an enabled hook; MIN() with this filter would scan every queued row.
        Ok(sqlx::query_scalar(
            "SELECT due_at FROM deliveries INDEXED BY deliveries_queued_due WHERE state = 0 \
             AND hook_id IN (SELECT id FROM hooks WHERE enabled = 1) ORDER BY due_at LIMIT 1",
        )
        .fetch_optional(&self.reader)
        .await?)
    }

    async fn queue_stats(&self, now: i64) -> StoreResult<QueueStats> {
        // Both counts walk only the queued rows' partial index (finished deliveries are not in
        // it); the failing-hook count looks up one index entry per hook.
        let (due, scheduled, failing): (i64, i64, i64) = sqlx::query_as(
            "SELECT \
               (SELECT COUNT(*) FROM deliveries INDEXED BY deliveries_queued_due \
                  WHERE state = 0 AND due_at <= ?1), \
               (SELECT COUNT(*) FROM deliveries INDEXED BY deliveries_queued_due \
                  WHERE state = 0 AND due_at > ?1), \
               (SELECT COUNT(*) FROM hooks h WHERE h.enabled = 1 AND \
                  (SELECT a.success FROM attempts a WHERE a.hook_id = h.id \
                     ORDER BY a.created_at DESC LIMIT 1) = 0)",
        )
        .bind(now)
        .fetch_one(&self.reader)
        .await?;
        let count = |n: i64| u64::try_from(n).unwrap_or_default();
        Ok(QueueStats {
            due: count(due),
            scheduled: count(scheduled),
            failing_hooks: count(failing),
        })
    }

    async fn recent_logs(&self, q: &LogQuery) -> StoreResult<(Vec<AttemptLog>, u64)> {
        let filter = "a.hook_id = ?1 AND a.created_at >= ?2 AND a.created_at <= ?3 AND (?4 IS NULL OR a.event_name = ?4)";
        let total: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM attempts a WHERE {filter}"))
                .bind(&q.hook_id)
                .bind(q.start)
                .bind(q.end)
                .bind(&q.event_name)
                .fetch_one(&self.reader)
                .await?;
        let rows = sqlx::query(&format!(
            "SELECT a.*, e.payload FROM attempts a LEFT JOIN deliveries d ON d.id = a.delivery_id \
             LEFT JOIN events e ON e.id = d.event_id \
             WHERE {filter} ORDER BY a.created_at DESC, a.rowid DESC LIMIT ?5 OFFSET ?6"
        ))
        .bind(&q.hook_id)
        .bind(q.start)
        .bind(q.end)
        .bind(&q.event_name)
        .bind(q.page.limit as i64)
        .bind(q.page.offset as i64)
        .fetch_all(&self.reader)
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let hook_id: String = row.try_get("hook_id")?;
            out.push(AttemptLog {
                id: row.try_get("id")?,
                delivery_id: row.try_get("delivery_id")?,
                event_name: row.try_get("event_name")?,
                attempt: row.try_get::<i64, _>("attempt")? as u32,
                success: row.try_get::<i64, _>("success")? != 0,
                request_body: row
                    .try_get::<Option<String>, _>("payload")?
                    .map(|p| delivery_body(&p, &hook_id)),
                hook_id,
                response_status: row
                    .try_get::<Option<i64>, _>("response_status")?
                    .map(|s| s as u16),
                response_body: row.try_get("response_body")?,
                error: row.try_get("error")?,
                duration_ms: row.try_get("duration_ms")?,
                created_at: row.try_get("created_at")?,
            });
        }
        Ok((out, total as u64))
    }
}
