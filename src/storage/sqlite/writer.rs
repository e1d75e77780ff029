//! The writer: the one connection that writes to the SQLite file, owned by one OS thread.
//!
//! SQLite takes one writer at a time, so hookline has exactly one writing connection. It
//! lives on a thread of its own and uses rusqlite rather than a pooled sqlx connection
//! because of what a write costs around the SQL: sqlx runs each connection on a worker thread
//! and every statement (`BEGIN` and `COMMIT` included) is a message there and back, with a
//! context switch each way, and rows travel as owned values. Under load that overhead, not
//! SQLite, was most of the cost of a write (BENCHMARKS.md). Here a whole batch of writes is
//! one trip:
//! - callers queue *jobs* (a closure over the connection, plus what to do once it committed);
//! - the thread takes every job waiting, up to [`MAX_JOBS`], runs them in one transaction,
//!   commits once, and only then answers each caller;
//! - a job that fails must not undo the others. Savepoints would do that, but a savepoint
//!   makes SQLite copy every page a job touches first into a sub-journal, which was a tenth of
//!   the writer's work. So the batch runs without them, and only if a job fails (rare: a
//!   constraint, a corrupt row) is the transaction rolled back and the batch run again with a
//!   savepoint per job. Jobs are therefore written to be run more than once;
//! - statements are prepared once and cached on the connection (`prepare_cached`), so the
//!   hot ones (ingest, claim, record) are compiled once per process.
//!
//! - jobs that write nothing ([`Durability::Read`]: claims, the next due time) are taken out
//!   of the batch and run first, in a transaction of their own, and answered at once: a claim
//!   waits for neither the batch's writes nor its commit and fsync, so deliveries keep being
//!   claimed while ingest goes on (BENCHMARKS.md, "Sustained load").
//!
//! Group commit falls out of this: a batch's one commit (and its one fsync, if any job asked
//! for [`Durability::Disk`]) covers every event, claim and record in it.
//!
//! Reads do not come here: they use the store's sqlx read pool, which in WAL mode never waits
//! for the writer and always sees what the writer has committed.

use super::cache::HookCache;
use super::leases::Leases;
use super::{DatabaseFile, Durability};
use crate::storage::{StoreError, StoreResult};
use rusqlite::Connection;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot, Notify};

/// Jobs per transaction at most: bounds how long one commit keeps callers waiting.
const MAX_JOBS: usize = 1024;

/// What a job sees: the connection, inside the batch's transaction, and the caches that live
/// on the writer thread (which only this thread can keep true, since only it writes).
pub struct WriteTx<'a> {
    pub(super) conn: &'a Connection,
    pub(super) hooks: &'a mut HookCache,
    pub(super) leases: &'a mut Leases,
    /// Set by a job that left deliveries due: the writer wakes the dispatcher after the
    /// commit (`Store::wakeups`).
    pub(super) queued_due: &'a mut bool,
}

/// One unit of work for the writer thread.
pub(super) trait Job: Send {
    fn durability(&self) -> Durability;
    /// Runs inside the batch's transaction. On `false` its work is rolled back. It may run
    /// a second time (after a rollback, when another job of its batch failed): it must undo
    /// what the first run did outside the database before running again.
    fn run(&mut self, w: &mut WriteTx<'_>) -> bool;
    /// Called once the batch has committed (`Ok`) or failed (`Err`); answers the caller.
    /// A job whose `run` never ran (the batch could not begin) gets the error here too.
    fn finish(self: Box<Self>, committed: StoreResult<()>);
}

/// The handle the store keeps. The thread ends when every handle is gone and the queued jobs
/// are done.
#[derive(Clone)]
pub(super) struct Writer {
    jobs: mpsc::Sender<Box<dyn Job>>,
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the database writer has stopped".into())
}

impl Writer {
    pub fn start(
        conn: Connection,
        file: DatabaseFile,
        leases: Leases,
        hooks: HookCache,
        wakeups: Arc<Notify>,
    ) -> StoreResult<Self> {
        let (jobs, rx) = mpsc::channel(4 * MAX_JOBS);
        std::thread::Builder::new()
            .name("hookline-writer".into())
            .spawn(move || run(conn, file, leases, hooks, wakeups, rx))
            .map_err(|e| StoreError::Unavailable(format!("starting the writer thread: {e}")))?;
        Ok(Self { jobs })
    }

    pub async fn submit(&self, job: Box<dyn Job>) -> StoreResult<()> {
        self.jobs.send(job).await.map_err(|_| stopped())
    }

    /// Runs `work` in the next batch and returns its result once that batch has committed.
    /// `work` may be called twice (see the module doc), so it changes nothing but the database.
    ///
    /// `work` may fail with any error that a store error converts into: a change that refuses
    /// itself (a conflict, a missing row) fails its job, so it is rolled back like a failed
    /// one, and its own error, not a store error, is what the caller gets.
    pub async fn run<T, E, F>(&self, durability: Durability, work: F) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut WriteTx<'_>) -> Result<T, E> + Send + 'static,
    {
        self.run_with_undo(durability, work, |_: &T| {}).await
    }

    /// [`Self::run`] for work that also changes something outside the database: `undo` takes
    /// back what a successful run did there when that run does not count (the batch is run
    /// again, or fails to commit).
    pub async fn run_with_undo<T, E, F, U>(
        &self,
        durability: Durability,
        work: F,
        undo: U,
    ) -> Result<T, E>
    where
        T: Send + 'static,
        E: From<StoreError> + Send + 'static,
        F: FnMut(&mut WriteTx<'_>) -> Result<T, E> + Send + 'static,
        U: Fn(&T) + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.submit(Box::new(Closure {
            durability,
            work,
            undo,
            result: None,
            reply,
        }))
        .await?;
        answer.await.map_err(|_| stopped())?
    }
}

/// A job made of a closure, answering through a oneshot channel.
struct Closure<F, U, T, E> {
    durability: Durability,
    work: F,
    undo: U,
    result: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<T, E, F, U> Job for Closure<F, U, T, E>
where
    T: Send + 'static,
    E: From<StoreError> + Send + 'static,
    F: FnMut(&mut WriteTx<'_>) -> Result<T, E> + Send + 'static,
    U: Fn(&T) + Send + 'static,
{
    fn durability(&self) -> Durability {
        self.durability
    }

    fn run(&mut self, w: &mut WriteTx<'_>) -> bool {
        // A second run replaces the first, whose effects outside the database are void.
        if let Some(Ok(earlier)) = self.result.take() {
            (self.undo)(&earlier);
        }
        let result = (self.work)(w);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, committed: StoreResult<()>) {
        let answer = match (committed, self.result) {
            (Err(e), result) => {
                if let Some(Ok(t)) = &result {
                    (self.undo)(t);
                }
                Err(e.into())
            }
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => {
                Err(StoreError::Unavailable("a write stopped unexpectedly".into()).into())
            }
        };
        // The caller may have gone away (a cancelled request); the write stands regardless.
        let _ = self.reply.send(answer);
    }
}

fn run(
    conn: Connection,
    mut file: DatabaseFile,
    mut leases: Leases,
    mut hooks: HookCache,
    wakeups: Arc<Notify>,
    mut rx: mpsc::Receiver<Box<dyn Job>>,
) {
    let mut synchronous: Option<Durability> = None;
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_JOBS);
    let mut reads: Vec<Box<dyn Job>> = Vec::new();
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_JOBS {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        // Jobs that write nothing (claims) go first, in a transaction of their own, and are
        // answered before the writes' commit and fsync.
        reads.extend(batch.extract_if(.., |j| j.durability() == Durability::Read));
        let mut writer = Thread {
            conn: &conn,
            file: &mut file,
            hooks: &mut hooks,
            leases: &mut leases,
            synchronous: &mut synchronous,
            wakeups: &wakeups,
            rx: &mut rx,
        };
        if !reads.is_empty() {
            writer.run_and_answer(Durability::Read, &mut reads);
        }
        if !batch.is_empty() {
            let durability = if batch.iter().any(|j| j.durability() == Durability::Disk) {
                Durability::Disk
            } else {
                Durability::Process
            };
            writer.run_and_answer(durability, &mut batch);
        }
    }
}

/// The writer thread's connection and what it keeps between batches.
struct Thread<'a> {
    conn: &'a Connection,
    file: &'a mut DatabaseFile,
    hooks: &'a mut HookCache,
    leases: &'a mut Leases,
    /// `synchronous` is per connection; set only when a batch needs another level.
    synchronous: &'a mut Option<Durability>,
    wakeups: &'a Notify,
    rx: &'a mut mpsc::Receiver<Box<dyn Job>>,
}

impl Thread<'_> {
    /// Runs `batch` in one transaction, commits it, and answers each job.
    fn run_and_answer(&mut self, durability: Durability, batch: &mut Vec<Box<dyn Job>>) {
        let mut queued_due = false;
        let mut state = State {
            hooks: self.hooks,
            leases: self.leases,
            queued_due: &mut queued_due,
        };
        // A stat per batch (about a microsecond): a write to a deleted or replaced file
        // would be acknowledged and then lost with it.
        let outcome = match self.file.check() {
            Ok(()) => run_batch(self.conn, &mut state, self.synchronous, durability, batch)
                .map_err(|e| e.to_string()),
            Err(why) => Err(why),
        };
        match &outcome {
            Ok(()) => {
                self.leases.batch_committed(crate::clock::now_ms());
                if queued_due {
                    self.wakeups.notify_one();
                }
            }
            Err(e) => {
                tracing::error!(error = %e, jobs = batch.len(), "a write transaction failed");
                // What the caches learnt inside the rolled-back transaction may not be true.
                self.hooks.clear();
                self.leases.batch_failed();
                // The jobs that queued while this batch waited (for another process's lock,
                // up to the busy timeout) fail with it rather than wait as long again: a
                // write's answer comes within about one busy timeout.
                while let Ok(job) = self.rx.try_recv() {
                    batch.push(job);
                }
            }
        }
        for job in batch.drain(..) {
            let committed = match &outcome {
                Ok(()) => Ok(()),
                Err(e) => Err(StoreError::Unavailable(format!("the write failed: {e}"))),
            };
            job.finish(committed);
        }
    }
}

/// What the writer thread keeps between batches.
struct State<'a> {
    hooks: &'a mut HookCache,
    leases: &'a mut Leases,
    queued_due: &'a mut bool,
}

fn run_batch(
    conn: &Connection,
    state: &mut State<'_>,
    synchronous: &mut Option<Durability>,
    durability: Durability,
    batch: &mut [Box<dyn Job>],
) -> rusqlite::Result<()> {
    // A read-only batch commits nothing to sync: keep whatever level is set.
    if durability != Durability::Read && *synchronous != Some(durability) {
        *synchronous = None;
        conn.pragma_update(None, "synchronous", durability.synchronous())?;
        *synchronous = Some(durability);
    }
    // The fast path: the whole batch in one transaction, no savepoints.
    match run_jobs(conn, state, batch, false) {
        Ok(()) => Ok(()),
        Err(Ran::Sqlite(e)) => Err(e),
        Err(Ran::JobFailed) => {
            // Roll back, and run the batch again with a savepoint per job, so that the
            // failing one is undone alone. What the cache read inside the rolled-back
            // transaction may not be true, and the leases its jobs took are void.
            conn.execute_batch("ROLLBACK")?;
            state.hooks.clear();
            state.leases.batch_failed();
            match run_jobs(conn, state, batch, true) {
                Ok(()) => Ok(()),
                Err(Ran::Sqlite(e)) => Err(e),
                // Not returned with savepoints; handled as a failed batch all the same.
                Err(Ran::JobFailed) => {
                    let _ = conn.execute_batch("ROLLBACK");
                    Err(rusqlite::Error::InvalidQuery)
                }
            }
        }
    }
}

/// Runs the batch in one transaction and commits it. Without `savepoints` it stops at the
/// first job that fails and returns [`Ran::JobFailed`] with the transaction still open; with
/// them, a failing job's savepoint is rolled back (and its lease changes undone) and the
/// others commit. On any other error the transaction is rolled back.
fn run_jobs(
    conn: &Connection,
    state: &mut State<'_>,
    batch: &mut [Box<dyn Job>],
    savepoints: bool,
) -> Result<(), Ran> {
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let ran = (|| {
        let mut w = WriteTx {
            conn,
            hooks: state.hooks,
            leases: state.leases,
            queued_due: state.queued_due,
        };
        for job in batch.iter_mut() {
            if savepoints {
                conn.prepare_cached("SAVEPOINT job")?.execute([])?;
            }
            let mark = w.leases.mark();
            // A panicking job counts as a failed one.
            let ok =
                std::panic::catch_unwind(AssertUnwindSafe(|| job.run(&mut w))).unwrap_or(false);
            if savepoints {
                if !ok {
                    conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
                    w.leases.job_failed(mark);
                    // What the cache learnt inside the job (a failing streak it wrote) is void.
                    w.hooks.clear();
                }
                conn.prepare_cached("RELEASE job")?.execute([])?;
            } else if !ok {
                return Err(Ran::JobFailed);
            }
        }
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    })();
    if let Err(Ran::Sqlite(_)) = &ran {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
    }
    ran
}

/// How a run of a batch ended early.
enum Ran {
    /// A job failed (the fast path stops there).
    JobFailed,
    /// A statement of the batch itself (`BEGIN`, `SAVEPOINT`, `COMMIT`…) failed.
    Sqlite(rusqlite::Error),
}

impl From<rusqlite::Error> for Ran {
    fn from(e: rusqlite::Error) -> Self {
        Ran::Sqlite(e)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Durability, SqliteStore};
    use crate::storage::StoreError;
    use std::time::Duration;

    async fn store() -> (SqliteStore, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        (SqliteStore::open(&url).await.unwrap(), dir)
    }

    /// Holds the writer for 200 ms, so that the jobs queued meanwhile are taken together.
    fn hold(store: &SqliteStore) -> impl std::future::Future<Output = Result<(), StoreError>> + '_ {
        store.write(Durability::Process, |_| {
            std::thread::sleep(Duration::from_millis(200));
            Ok(())
        })
    }

    fn count(w: &super::WriteTx<'_>, key: &str) -> i64 {
        w.conn
            .query_row("SELECT COUNT(*) FROM settings WHERE key = ?1", [key], |r| {
                r.get(0)
            })
            .unwrap()
    }

    #[tokio::test]
    async fn a_failing_job_is_undone_without_undoing_the_rest_of_its_batch() {
        let (store, _dir) = store().await;
        // Hold the writer so that the next three jobs queue up and run as one batch.
        let hold = hold(&store);
        let before = store.write(Durability::Process, |w| {
            w.conn
                .execute("INSERT INTO settings (key, value) VALUES ('a', '1')", [])?;
            Ok(())
        });
        let failing = store.write(Durability::Disk, |w| {
            w.conn
                .execute("INSERT INTO settings (key, value) VALUES ('b', '1')", [])?;
            // Fails after a write of its own, which must not survive.
            w.conn.execute("INSERT INTO no_such_table VALUES (1)", [])?;
            Ok(())
        });
        let after = store.write(Durability::Process, |w| {
            w.conn
                .execute("INSERT INTO settings (key, value) VALUES ('c', '1')", [])?;
            Ok(())
        });
        let (hold, before, failing, after) = tokio::join!(hold, before, failing, after);
        hold.unwrap();
        before.unwrap();
        assert!(
            matches!(failing, Err(StoreError::Database(_))),
            "{failing:?}"
        );
        after.unwrap();
        let counts = store
            .write(Durability::Process, |w| {
                Ok((count(w, "a"), count(w, "b"), count(w, "c")))
            })
            .await
            .unwrap();
        assert_eq!(counts, (1, 0, 1));
    }

    #[tokio::test]
    async fn jobs_that_write_nothing_run_ahead_of_the_writes_queued_with_them() {
        let (store, _dir) = store().await;
        // Hold the writer so that the next two jobs are taken together.
        let hold = hold(&store);
        let write = store.write(Durability::Disk, |w| {
            w.conn
                .execute("INSERT INTO settings (key, value) VALUES ('x', '1')", [])?;
            Ok(())
        });
        // Queued after the write, but run (and answered) before it: a claim does not wait for
        // ingest's commit.
        let read = store.write(Durability::Read, |w| Ok(count(w, "x")));
        let (hold, write, read) = tokio::join!(hold, write, read);
        hold.unwrap();
        write.unwrap();
        assert_eq!(read.unwrap(), 0, "the read ran ahead of the write");
        let after = store
            .write(Durability::Read, |w| Ok(count(w, "x")))
            .await
            .unwrap();
        assert_eq!(after, 1);
    }

    #[tokio::test]
    async fn an_enqueue_run_again_after_a_rollback_does_not_lease_twice() {
        use crate::domain::event::HookEvent;
        use crate::domain::hook::{Hook, HookConfig};
        use crate::storage::{Lease, NewEvent, Store};

        let (store, _dir) = store().await;
        let event = HookEvent::parse("PostRegister").unwrap();
        store
            .insert_hook(&Hook {
                id: "hook1".into(),
                name: "h".into(),
                event: None,
                events: vec![event],
                config: HookConfig {
                    url: Some("http://127.0.0.1:9/".into()),
                    headers: None,
                    retries: None,
                    timeout_ms: None,
                    failure_policy: None,
                    max_in_flight: None,
                    rate_limit: None,
                    ordering: None,
                    transform: None,
                    script: None,
                },
                signing_key: "key".into(),
                previous_signing_key: None,
                disabled_reason: None,
                enabled: true,
                created_at: 1,
            })
            .await
            .unwrap();
        let hold = hold(&store);
        let new_event = NewEvent {
            id: "event1".into(),
            event,
            payload: serde_json::Map::new(),
            created_at: 2,
        };
        // The enqueue runs first in its batch, then the failing job rolls the batch back and
        // the enqueue runs again.
        let lease = Lease {
            up_to: 10,
            lease_ms: 1_000,
        };
        let enqueue = store.enqueue_event(&new_event, lease);
        let failing = store.write(Durability::Process, |w| {
            w.conn.execute("INSERT INTO no_such_table VALUES (1)", [])?;
            Ok(())
        });
        let (hold, enqueued, failing) = tokio::join!(hold, enqueue, failing);
        hold.unwrap();
        assert!(failing.is_err());
        let enqueued = enqueued.unwrap();
        assert_eq!(enqueued.leased.len(), 1);
        assert_eq!(
            store.leased.load(std::sync::atomic::Ordering::Relaxed),
            1,
            "one lease taken, not two"
        );
        let rows = store
            .write(Durability::Process, |w| {
                Ok(w.conn
                    .query_row("SELECT COUNT(*) FROM deliveries", [], |r| {
                        r.get::<_, i64>(0)
                    })?)
            })
            .await
            .unwrap();
        assert_eq!(rows, 1, "one delivery stored");
    }

    #[tokio::test]
    async fn a_panicking_job_fails_alone_and_the_writer_goes_on() {
        let (store, _dir) = store().await;
        let panicked = store
            .write(Durability::Process, |w| -> Result<(), StoreError> {
                w.conn
                    .execute("INSERT INTO settings (key, value) VALUES ('p', '1')", [])?;
                panic!("a bug in a job");
            })
            .await;
        assert!(panicked.is_err());
        let left = store
            .write(Durability::Process, |w| Ok(count(w, "p")))
            .await
            .unwrap();
        assert_eq!(left, 0, "the panicking job's write was rolled back");
    }

    #[tokio::test]
    async fn a_database_file_is_open_in_one_store_at_a_time() {
        let (first, dir) = store().await;
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        match SqliteStore::open(&url).await {
            Err(StoreError::Unavailable(m)) => {
                assert!(m.contains("in use by another hookline process"), "{m}")
            }
            Err(e) => panic!("unexpected error {e}"),
            Ok(_) => panic!("a second store opened the same file"),
        }
        drop(first);
        SqliteStore::open(&url).await.unwrap();
    }

    #[tokio::test]
    async fn an_in_memory_database_is_refused_with_a_clear_error() {
        for url in ["sqlite::memory:", "sqlite://:memory:"] {
            match SqliteStore::open(url).await {
                Err(StoreError::UnsupportedUrl(u)) => assert_eq!(u, url),
                Err(e) => panic!("{url}: unexpected error {e}"),
                Ok(_) => panic!("{url}: opened"),
            }
        }
    }
}
