//! Leases held in memory: which queued deliveries this process has handed to its dispatcher.
//!
//! A lease keeps a claimed delivery from being claimed again while it is being sent. In a
//! shared database (PostgreSQL, several nodes) the lease must be in the row. A SQLite file has
//! exactly one hookline process (the store takes a lock file to make sure), so here the lease
//! lives in the writer thread's memory instead: claiming is a read, with no `UPDATE` of the
//! row, no move in the queue index and no WAL frames, and a process that dies leaves no lease
//! behind, so its deliveries are due again at once when it restarts.
//!
//! A lease still ends after the lease time, as a row lease would: a delivery the dispatcher
//! loses (it never records or releases it) comes back then instead of never.
//!
//! The writer runs many jobs per transaction, and what they do to leases must follow what
//! happens to their rows: a lease taken by a job whose savepoint is rolled back, or in a batch
//! that fails to commit, is dropped (the rowid may be used again by the next insert); a lease
//! given up because a result was recorded is dropped only once that record has committed, so
//! that the delivery cannot be claimed again while its result might still be lost.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Keyed by the delivery's rowid, which the queue index carries, so that a claim can skip
/// leased rows without reading them.
#[derive(Default)]
pub struct Leases {
    /// rowid → when the lease ends (epoch ms).
    held: HashMap<i64, i64>,
    /// Leases taken in the current batch, in order.
    taken: Vec<i64>,
    /// Leases to drop once the current batch has committed.
    ending: Vec<i64>,
    /// How many are held, for the queue gauges (read by other threads).
    count: Arc<AtomicUsize>,
}

/// Where a job's lease changes start, so that they can be undone if the job fails.
#[derive(Clone, Copy)]
pub struct Mark {
    taken: usize,
    ending: usize,
}

impl Leases {
    pub fn counter(&self) -> Arc<AtomicUsize> {
        self.count.clone()
    }

    /// How many leases are held (some may have ended and not been swept yet).
    pub fn len(&self) -> usize {
        self.held.len()
    }

    pub fn is_held(&self, rowid: i64, now: i64) -> bool {
        self.held.get(&rowid).is_some_and(|&until| until > now)
    }

    pub fn take(&mut self, rowid: i64, until: i64) {
        self.held.insert(rowid, until);
        self.taken.push(rowid);
    }

    /// Drops the lease when the current batch commits.
    pub fn end_after_commit(&mut self, rowid: i64) {
        self.ending.push(rowid);
    }

    pub fn mark(&self) -> Mark {
        Mark {
            taken: self.taken.len(),
            ending: self.ending.len(),
        }
    }

    /// A job failed and its savepoint was rolled back: undo what it did to leases.
    pub fn job_failed(&mut self, mark: Mark) {
        for rowid in self.taken.drain(mark.taken..) {
            self.held.remove(&rowid);
        }
        self.ending.truncate(mark.ending);
    }

    pub fn batch_committed(&mut self, now: i64) {
        for rowid in self.ending.drain(..) {
            self.held.remove(&rowid);
        }
        self.taken.clear();
        // Leases the dispatcher lost are dropped when they end; the map stays bounded by
        // what the dispatcher may hold plus what it lost within one lease time.
        if self.held.len() > 4096 {
            self.held.retain(|_, until| *until > now);
        }
        self.count.store(self.held.len(), Ordering::Release);
    }

    pub fn batch_failed(&mut self) {
        for rowid in self.taken.drain(..) {
            self.held.remove(&rowid);
        }
        self.ending.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leases_follow_their_jobs_and_batches() {
        let mut l = Leases::default();
        l.take(1, 1_000);
        l.batch_committed(0);
        assert!(l.is_held(1, 999));
        assert!(!l.is_held(1, 1_000), "a lease ends at its time");

        // A failed job's leases go; the job before it keeps its own.
        l.take(2, 1_000);
        let mark = l.mark();
        l.take(3, 1_000);
        l.end_after_commit(1);
        l.job_failed(mark);
        l.batch_committed(0);
        assert!(l.is_held(2, 0) && !l.is_held(3, 0));
        assert!(l.is_held(1, 0), "the failed job's release did not happen");

        // A release takes effect only with the commit.
        l.end_after_commit(1);
        assert!(l.is_held(1, 0));
        l.batch_failed();
        assert!(l.is_held(1, 0), "the batch that would release it failed");
        l.end_after_commit(1);
        l.batch_committed(0);
        assert!(!l.is_held(1, 0));

        // A failed batch drops the leases taken in it.
        l.take(4, 1_000);
        l.batch_failed();
        assert!(!l.is_held(4, 0));
        l.batch_committed(0);
        assert_eq!(l.counter().load(Ordering::Acquire), 1, "only 2 is left");
    }
}
