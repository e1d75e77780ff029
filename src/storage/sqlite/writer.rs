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
//!   each inside a savepoint of its own so that a job that fails is undone without undoing
//!   the others, commits once, and only then answers each caller;
//! - statements are prepared once and cached on the connection (`prepare_cached`), so the
//!   hot ones (ingest, claim, record) are compiled once per process.
//!
//! Group commit falls out of this: a batch's one commit (and its one fsync, if any job asked
//! for [`Durability::Disk`]) covers every event, claim and record in it.
//!
//! Reads do not come here: they use the store's sqlx read pool, which in WAL mode never waits
//! for the writer and always sees what the writer has committed.

use super::cache::HookCache;
use super::Durability;
use crate::storage::{StoreError, StoreResult};
use rusqlite::Connection;
use std::panic::AssertUnwindSafe;
use tokio::sync::{mpsc, oneshot};

/// Jobs per transaction at most: bounds how long one commit keeps callers waiting.
const MAX_JOBS: usize = 1024;

/// What a job sees: the connection, inside the batch's transaction, and the caches that live
/// on the writer thread (which only this thread can keep true, since only it writes).
pub struct WriteTx<'a> {
    pub(super) conn: &'a Connection,
    pub(super) hooks: &'a mut HookCache,
}

/// One unit of work for the writer thread.
pub(super) trait Job: Send {
    fn durability(&self) -> Durability;
    /// Runs inside the batch's transaction. On `false` its savepoint is rolled back.
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
    pub fn start(conn: Connection) -> StoreResult<Self> {
        let (jobs, rx) = mpsc::channel(4 * MAX_JOBS);
        std::thread::Builder::new()
            .name("hookline-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|e| StoreError::Unavailable(format!("starting the writer thread: {e}")))?;
        Ok(Self { jobs })
    }

    pub async fn submit(&self, job: Box<dyn Job>) -> StoreResult<()> {
        self.jobs.send(job).await.map_err(|_| stopped())
    }

    /// Runs `work` in the next batch and returns its result once that batch has committed.
    pub async fn run<T, F>(&self, durability: Durability, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteTx<'_>) -> StoreResult<T> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        self.submit(Box::new(Closure {
            durability,
            work: Some(work),
            result: None,
            reply,
        }))
        .await?;
        answer.await.map_err(|_| stopped())?
    }
}

/// A job made of a closure, answering through a oneshot channel.
struct Closure<F, T> {
    durability: Durability,
    work: Option<F>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Closure<F, T>
where
    T: Send + 'static,
    F: FnOnce(&mut WriteTx<'_>) -> StoreResult<T> + Send + 'static,
{
    fn durability(&self) -> Durability {
        self.durability
    }

    fn run(&mut self, w: &mut WriteTx<'_>) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(w);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, committed: StoreResult<()>) {
        let answer = match (committed, self.result) {
            (Err(e), _) => Err(e),
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::Unavailable(
                "a write stopped unexpectedly".into(),
            )),
        };
        // The caller may have gone away (a cancelled request); the write stands regardless.
        let _ = self.reply.send(answer);
    }
}

fn run(conn: Connection, mut rx: mpsc::Receiver<Box<dyn Job>>) {
    let mut hooks = HookCache::default();
    // `synchronous` is per connection; set it only when a batch needs another level.
    let mut synchronous: Option<Durability> = None;
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_JOBS);
    while let Some(first) = rx.blocking_recv() {
        batch.push(first);
        while batch.len() < MAX_JOBS {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let durability = if batch.iter().any(|j| j.durability() == Durability::Disk) {
            Durability::Disk
        } else {
            Durability::Process
        };
        let outcome = run_batch(&conn, &mut hooks, &mut synchronous, durability, &mut batch);
        if let Err(e) = &outcome {
            tracing::error!(error = %e, jobs = batch.len(), "a write transaction failed");
            // What the caches learnt inside the rolled-back transaction may not be true.
            hooks.clear();
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

fn run_batch(
    conn: &Connection,
    hooks: &mut HookCache,
    synchronous: &mut Option<Durability>,
    durability: Durability,
    batch: &mut [Box<dyn Job>],
) -> rusqlite::Result<()> {
    if *synchronous != Some(durability) {
        *synchronous = None;
        conn.pragma_update(None, "synchronous", durability.synchronous())?;
        *synchronous = Some(durability);
    }
    conn.prepare_cached("BEGIN IMMEDIATE")?.execute([])?;
    let ran = (|| {
        let mut w = WriteTx { conn, hooks };
        for job in batch.iter_mut() {
            conn.prepare_cached("SAVEPOINT job")?.execute([])?;
            // A panicking job counts as a failed one; the others still commit.
            let ok =
                std::panic::catch_unwind(AssertUnwindSafe(|| job.run(&mut w))).unwrap_or(false);
            if !ok {
                conn.prepare_cached("ROLLBACK TO job")?.execute([])?;
            }
            conn.prepare_cached("RELEASE job")?.execute([])?;
        }
        conn.prepare_cached("COMMIT")?.execute([])?;
        Ok(())
    })();
    if ran.is_err() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    ran
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
        let hold = store.write(Durability::Process, |_| {
            std::thread::sleep(Duration::from_millis(200));
            Ok(())
        });
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
        assert!(matches!(failing, Err(StoreError::Sqlite(_))), "{failing:?}");
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
