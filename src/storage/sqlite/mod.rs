//! The SQLite implementation of [`Store`]: hookline's embedded default.
//!
//! SQLite allows one writer at a time, and WAL mode lets readers run alongside it without
//! waiting. So the store has two sides:
//! - **writes** all go to one connection owned by the writer thread ([`writer`]), which runs
//!   whatever writes are waiting in one transaction (group commit) with prepared statements;
//! - **reads** use a small sqlx pool of read-only connections (hook lists, logs, the queue
//!   gauges), which never wait for the writer and see everything it has committed.
//!
//! Not every write needs an fsync. See [`Durability`].

mod cache;
mod deliveries;
mod health;
mod hooks;
mod identity;
mod leases;
mod queue;
mod requeue;
mod writer;

pub use queue::enqueue_events_in;
pub use writer::WriteTx;

use super::cipher::KeyCipher;
use super::*;
use crate::domain::payload::delivery_body;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{Connection, Row, SqliteConnection, SqlitePool};
use std::str::FromStr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use writer::Writer;

pub struct SqliteStore {
    writer: Writer,
    /// Seals and opens signing keys (`--encryption-key`).
    cipher: KeyCipher,
    reader: SqlitePool,
    /// How many deliveries are leased (in memory, see [`leases`]), for the queue gauges.
    leased: Arc<AtomicUsize>,
    /// Notified by the writer after a commit that left deliveries due (see `Store::wakeups`).
    wakeups: Arc<tokio::sync::Notify>,
    /// Held for as long as the store is open: one process per database file.
    _lock: std::fs::File,
}

/// How far a write must reach before it counts as done. A batch of writes is committed at
/// the strictest level any of its jobs asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// fsync'ed before the commit returns: survives a power cut. For published events (the
    /// promise behind the 202) and for hooks and settings.
    Disk,
    /// In the WAL but not yet fsync'ed: survives a crash of the process, and becomes durable
    /// with the next `Disk` commit or checkpoint. For claims and attempt records: losing the
    /// last few of those to a power cut only means a delivery is sent again, which
    /// at-least-once delivery allows anyway.
    Process,
    /// Writes nothing to the database (a claim: reads, and leases in the writer's memory).
    /// Such jobs run in a read transaction of their own ahead of the waiting writes, and are
    /// answered without waiting for those writes' commit and fsync: a claim does not queue
    /// behind ingest.
    Read,
}

impl Durability {
    fn synchronous(self) -> &'static str {
        match self {
            Durability::Disk => "FULL",
            Durability::Process | Durability::Read => "NORMAL",
        }
    }
}

impl SqliteStore {
    /// [`SqliteStore::open_with`] the default options.
    pub async fn open(url: &str) -> StoreResult<Self> {
        Self::open_with(url, &ConnectOptions::default()).await
    }

    /// Opens (creating if needed, see [`check_traces`]) the database file and runs the
    /// migrations.
    pub async fn open_with(url: &str, settings: &ConnectOptions) -> StoreResult<Self> {
        let busy_timeout = settings.busy_timeout;
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(busy_timeout)
            .foreign_keys(true);
        let path = options.get_filename().to_owned();
        if path.as_os_str().is_empty() || url.contains(":memory:") || url.contains("mode=memory") {
            // The writer thread and the read pool are separate connections: they must share
            // a file.
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        }
        let stale = check_traces(&path, settings.create_database)?;
        let lock = lock_database(&path)?;
        for file in stale {
            std::fs::remove_file(&file).map_err(|e| {
                StoreError::Unavailable(format!("removing {}: {e}", file.display()))
            })?;
        }
        // Migrations over a connection of their own, before the writer opens the file.
        let mut conn = SqliteConnection::connect_with(&options).await?;
        sqlx::migrate!("./migrations/sqlite").run(&mut conn).await?;
        let cipher = KeyCipher::new(settings.encryption_key);
        hooks::reseal_signing_keys(&mut conn, &cipher).await?;
        conn.close().await?;
        let file = DatabaseFile::open(path.clone())?;
        let writer = tokio::task::spawn_blocking(move || open_writer(&path, busy_timeout))
            .await
            .map_err(|e| StoreError::Unavailable(format!("opening the writer: {e}")))??;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options.read_only(true))
            .await?;
        let leases = leases::Leases::default();
        let leased = leases.counter();
        let wakeups = Arc::new(tokio::sync::Notify::new());
        let hooks = cache::HookCache::new(cipher.clone());
        Ok(Self {
            writer: Writer::start(writer, file, leases, hooks, wakeups.clone())?,
            cipher,
            wakeups,
            reader,
            leased,
            _lock: lock,
        })
    }

    /// Runs `work` on the writer thread inside a write transaction, and returns its result
    /// once committed. For features that write their own rows together with the events they
    /// cause ([`enqueue_events_in`]). `work` may run twice (see [`writer`]), so it must change
    /// nothing but the database: lease nothing with `enqueue_events_in` here (the
    /// dispatcher then claims those deliveries from the queue).
    pub async fn write<T, F>(&self, durability: Durability, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnMut(&mut WriteTx<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.writer.run::<T, StoreError, F>(durability, work).await
    }
}

/// The files an open SQLite database has beside it: its WAL and shared-memory index, and
/// hookline's lock file.
const TRACES: [&str; 3] = ["-wal", "-shm", ".lock"];

fn sibling(path: &std::path::Path, suffix: &str) -> std::path::PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    name.into()
}

/// Refuses to start on a missing database file that an earlier database left traces of
/// ([`TRACES`]): the file was moved or deleted, and creating an empty one in its place would
/// hide that every hook, event and queued delivery is gone (issue 13). With `create` (the
/// `--create-database` flag) it returns the stale WAL and index to remove once the lock is
/// held (SQLite would otherwise read the old database's pages into the new one).
fn check_traces(path: &std::path::Path, create: bool) -> StoreResult<Vec<std::path::PathBuf>> {
    if path.exists() {
        return Ok(Vec::new());
    }
    let traces: Vec<(&str, std::path::PathBuf)> = TRACES
        .iter()
        .map(|suffix| (*suffix, sibling(path, suffix)))
        .filter(|(_, p)| p.exists())
        .collect();
    if traces.is_empty() {
        return Ok(Vec::new()); // a first start
    }
    let names = traces
        .iter()
        .map(|(_, p)| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ");
    if !create {
        return Err(StoreError::Missing(format!(
            "the database file {} is missing, but an earlier database left {names}: it was \
             moved or deleted. Put it back, or start with --create-database to begin a new, \
             empty database",
            path.display()
        )));
    }
    tracing::warn!(path = %path.display(), traces = %names, "--create-database: starting a new, empty database where an earlier one was");
    // The lock file stays: it is taken next, by this process.
    Ok(traces
        .into_iter()
        .filter(|(suffix, _)| *suffix != ".lock")
        .map(|(_, p)| p)
        .collect())
}

/// The database file as it was opened: its device and inode, so that a file deleted or
/// replaced under the running process (a restore over it, an `rm`) is noticed instead of
/// taking writes that no file will keep.
pub(super) struct DatabaseFile {
    path: std::path::PathBuf,
    identity: (u64, u64),
    /// What the last check found wrong, so each change is logged once.
    trouble: Option<String>,
}

impl DatabaseFile {
    fn open(path: std::path::PathBuf) -> StoreResult<Self> {
        let identity = file_identity(&path)
            .map_err(|e| StoreError::Unavailable(format!("reading {}: {e}", path.display())))?;
        Ok(Self {
            path,
            identity,
            trouble: None,
        })
    }

    /// `Err` with why, while the path no longer names the file that was opened.
    pub(super) fn check(&mut self) -> Result<(), String> {
        let now = match file_identity(&self.path) {
            Ok(id) if id == self.identity => None,
            Ok(_) => Some(format!(
                "the database file {} was replaced by another file; restart hookline to use it",
                self.path.display()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some(format!(
                "the database file {} was deleted; writes are refused until the same file is put back (renamed or hard-linked; a copy needs a restart)",
                self.path.display()
            )),
            Err(e) => Some(format!("checking {}: {e}", self.path.display())),
        };
        match (&self.trouble, &now) {
            (None, Some(why)) => tracing::error!(reason = %why, "refusing writes"),
            (Some(_), None) => {
                tracing::info!(path = %self.path.display(), "the database file is back; taking writes again")
            }
            _ => {}
        }
        self.trouble = now;
        match &self.trouble {
            Some(why) => Err(why.clone()),
            None => Ok(()),
        }
    }
}

#[cfg(unix)]
fn file_identity(path: &std::path::Path) -> std::io::Result<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::metadata(path)?;
    Ok((m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn file_identity(path: &std::path::Path) -> std::io::Result<(u64, u64)> {
    std::fs::metadata(path).map(|_| (0, 0))
}

/// Takes `<database>.lock` (an advisory lock the OS drops when the process ends), so that a
/// second hookline on the same file stops at once with a clear error: leases live in this
/// process's memory (see [`leases`]), so two processes would send the same deliveries. The
/// lock is on a file of its own because SQLite's POSIX locks on the database file are dropped
/// whenever the process closes any handle to that file.
fn lock_database(path: &std::path::Path) -> StoreResult<std::fs::File> {
    let name = sibling(path, ".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&name)
        .map_err(|e| {
            StoreError::Unavailable(format!(
                "opening {}: {e}",
                std::path::Path::new(&name).display()
            ))
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Unavailable(format!(
            "{} is in use by another hookline process (one process per SQLite file; use PostgreSQL for several nodes)",
            path.display()
        ))),
        Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Unavailable(format!(
            "locking {}: {e}",
            std::path::Path::new(&name).display()
        ))),
    }
}

/// The writer connection and its settings.
fn open_writer(
    path: &std::path::Path,
    busy_timeout: Duration,
) -> StoreResult<rusqlite::Connection> {
    let conn = rusqlite::Connection::open(path)?;
    conn.busy_timeout(busy_timeout)?;
    conn.set_prepared_statement_cache_capacity(64);
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    // Statement journals and sort trees in memory: multi-row statements inside a transaction
    // otherwise write a temporary file each.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // SQLite's default (a checkpoint every ~4 MB of WAL), set on purpose: the checkpoint runs
    // inside the writer's commit, and ten times that (fewer copies of hot pages) gave no more
    // throughput and longer stalls in the latency tail (BENCHMARKS.md).
    conn.pragma_update(None, "wal_autocheckpoint", 1000)?;
    // A 16 MiB page cache (the default is 2 MiB): it keeps the hot index pages of a large
    // queue in memory instead of re-reading them from the OS, which made draining a
    // million-delivery backlog ~13 % faster (BENCHMARKS.md). Readers keep the default, so the
    // whole store stays well under 100 MB.
    conn.pragma_update(None, "cache_size", -16384)?;
    Ok(conn)
}

#[async_trait]
impl Store for SqliteStore {
    async fn ping(&self) -> StoreResult<()> {
        // Ready means able to take events, so the check goes through the writer, whose batch
        // takes the write lock: a database that reads but cannot be written is not ready.
        sqlx::query("SELECT 1").execute(&self.reader).await?;
        self.writer
            .run(Durability::Process, |w| {
                w.conn
                    .prepare_cached("SELECT 1")?
                    .query_row([], |_| Ok(()))?;
                Ok(())
            })
            .await
    }

    async fn setting(&self, key: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT value FROM settings WHERE key = ?")
                .bind(key)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    async fn action(&self, action_type: &str) -> StoreResult<Option<String>> {
        Ok(
            sqlx::query_scalar("SELECT config FROM actions WHERE action_type = ?")
                .bind(action_type)
                .fetch_optional(&self.reader)
                .await?,
        )
    }

    async fn put_action(&self, action_type: &str, config: &str, now: i64) -> StoreResult<bool> {
        let (action_type, config) = (action_type.to_owned(), config.to_owned());
        self.writer
            .run(Durability::Disk, move |w| {
                let existed = w
                    .conn
                    .prepare_cached("SELECT 1 FROM actions WHERE action_type = ?1")?
                    .exists([&action_type])?;
                w.conn.execute(
                    "INSERT INTO actions (action_type, config, updated_at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (action_type) DO UPDATE SET config = ?2, updated_at = ?3",
                    (&action_type, &config, now),
                )?;
                Ok(!existed)
            })
            .await
    }

    async fn delete_action(&self, action_type: &str) -> StoreResult<bool> {
        let action_type = action_type.to_owned();
        self.writer
            .run(Durability::Disk, move |w| {
                Ok(w.conn
                    .execute("DELETE FROM actions WHERE action_type = ?1", [&action_type])?
                    == 1)
            })
            .await
    }

    async fn record_action_run(&self, run: &crate::storage::ActionRun) -> StoreResult<()> {
        let run = run.clone();
        self.writer
            .run(Durability::Process, move |w| {
                w.conn
                    .prepare_cached(
                        "INSERT INTO action_runs (id, action_type, success, result, error, logs, \
                         duration_ms, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                    )?
                    .execute((
                        &run.id,
                        &run.action_type,
                        run.success,
                        &run.result,
                        &run.error,
                        &run.logs,
                        run.duration_ms,
                        run.created_at,
                    ))?;
                w.conn
                    .prepare_cached(
                        "DELETE FROM action_runs WHERE action_type = ?1 AND created_at < \
                         (SELECT created_at FROM action_runs WHERE action_type = ?1 \
                          ORDER BY created_at DESC LIMIT 1 OFFSET ?2)",
                    )?
                    .execute((&run.action_type, crate::storage::ACTION_RUNS_KEPT - 1))?;
                Ok(())
            })
            .await
    }

    async fn action_runs(
        &self,
        action_type: &str,
        page: Page,
    ) -> StoreResult<(Vec<crate::storage::ActionRun>, u64)> {
        let runs = sqlx::query_as(
            "SELECT id, action_type, success, result, error, logs, duration_ms, created_at \
             FROM action_runs WHERE action_type = ? ORDER BY created_at DESC, id DESC \
             LIMIT ? OFFSET ?",
        )
        .bind(action_type)
        .bind(i64::from(page.limit))
        .bind(page.offset as i64)
        .fetch_all(&self.reader)
        .await?;
        let total: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM action_runs WHERE action_type = ?")
                .bind(action_type)
                .fetch_one(&self.reader)
                .await?;
        Ok((runs, total as u64))
    }

    async fn set_setting_if_absent(&self, key: &str, value: &str) -> StoreResult<bool> {
        let (key, value) = (key.to_owned(), value.to_owned());
        self.writer
            .run(Durability::Disk, move |w| {
                let n = w.conn.execute(
                    "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT (key) DO NOTHING",
                    (&key, &value),
                )?;
                Ok(n == 1)
            })
            .await
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
        let event = event.clone();
        self.writer
            .run(Durability::Disk, move |w| {
                enqueue_events_in(w, &[&event], lease).map(|mut r| r.pop().unwrap_or_default())
            })
            .await
    }

    fn wakeups(&self) -> Arc<tokio::sync::Notify> {
        self.wakeups.clone()
    }

    async fn claim_due(&self, req: &ClaimRequest) -> StoreResult<Claimed> {
        let req = req.clone();
        self.writer
            .run(Durability::Read, move |w| queue::claim_due(w, &req))
            .await
    }

    async fn record_attempts(&self, records: &[AttemptRecord]) -> StoreResult<()> {
        let records = records.to_vec();
        self.writer
            .run(Durability::Process, move |w| {
                queue::record_attempts(w, &records)
            })
            .await
    }

    async fn record_blocking_calls(&self, calls: &[BlockingCallLog]) -> StoreResult<()> {
        let calls = calls.to_vec();
        self.writer
            .run(Durability::Process, move |w| {
                queue::record_blocking_calls(w, &calls)
            })
            .await
    }

    async fn release(&self, delivery_ids: &[String], now: i64) -> StoreResult<()> {
        let ids = delivery_ids.to_vec();
        self.writer
            .run(Durability::Process, move |w| queue::release(w, &ids, now))
            .await
    }

    async fn pause_hook(&self, hook_id: &str, until: i64, now: i64) -> StoreResult<()> {
        let hook_id = hook_id.to_owned();
        self.writer
            .run(Durability::Process, move |w| {
                queue::pause_hook(w, &hook_id, until, now)
            })
            .await
    }

    async fn next_due_at(&self) -> StoreResult<Option<i64>> {
        // On the writer: only it knows which queued deliveries are leased.
        self.writer
            .run(Durability::Read, |w| {
                queue::next_due_at(w, crate::clock::now_ms())
            })
            .await
    }

    async fn queue_stats(&self, now: i64) -> StoreResult<QueueStats> {
        // Both counts walk only the queued rows' partial index (finished deliveries are not in
        // it); the failing hooks are those with an open failing streak.
        let (due, scheduled, failing): (i64, i64, i64) = sqlx::query_as(
            "SELECT \
               (SELECT COUNT(*) FROM deliveries INDEXED BY deliveries_queued_due \
                  WHERE state = 0 AND due_at <= ?1), \
               (SELECT COUNT(*) FROM deliveries INDEXED BY deliveries_queued_due \
                  WHERE state = 0 AND due_at > ?1), \
               (SELECT COUNT(*) FROM hooks WHERE enabled = 1 AND failing_since IS NOT NULL)",
        )
        .bind(now)
        .fetch_one(&self.reader)
        .await?;
        let count = |n: i64| u64::try_from(n).unwrap_or_default();
        // Leased deliveries are in flight: their rows look due, but they are counted with
        // the scheduled ones, as a row lease would have them.
        let leased = (self.leased.load(Ordering::Acquire) as u64).min(count(due));
        Ok(QueueStats {
            due: count(due) - leased,
            scheduled: count(scheduled) + leased,
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
        let id = id.to_owned();
        self.writer
            .run(Durability::Disk, move |w| requeue::retry(w, &id, now))
            .await
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
        let r = r.clone();
        self.writer
            .run(Durability::Disk, move |w| {
                requeue::recover(w, &r, limit, now)
            })
            .await
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
        let (r, after) = (r.clone(), after.cloned());
        self.writer
            .run(Durability::Disk, move |w| {
                requeue::replay(w, &r, after.as_ref(), limit, now)
            })
            .await
    }

    async fn prune(
        &self,
        cutoffs: &super::deliveries::PruneCutoffs,
        limit: u32,
    ) -> StoreResult<super::deliveries::Pruned> {
        let cutoffs = *cutoffs;
        self.writer
            .run(Durability::Process, move |w| {
                requeue::prune(w, &cutoffs, limit)
            })
            .await
    }

    async fn disable_failing_hooks(&self, before: i64, now: i64) -> StoreResult<Vec<String>> {
        self.writer
            .run(Durability::Disk, move |w| {
                health::disable_failing(w, before, now)
            })
            .await
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
            "SELECT a.*, e.payload, d.request_body FROM attempts a \
             LEFT JOIN deliveries d ON d.id = a.delivery_id \
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
