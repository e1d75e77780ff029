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
pub struct Leases {
    /// rowid → when the lease ends (epoch ms).
    held: HashMap<i64, i64>,
    /// Leases taken in the current batch, in order.
    taken: Vec<i64>,
    /// Leases to drop once the current batch has committed, each with how many leases the
    /// batch had taken before: a lease taken after it for the same rowid (a row deleted and
    /// its rowid given to a new delivery in the same batch) is the new row's, and stays.
    ending: Vec<(i64, usize)>,
    /// How many are held, for the queue gauges (read by other threads).
    count: Arc<AtomicUsize>,
    /// Where the next claim starts its walk of the queue index (a `due_at`, epoch ms): every
    /// queued row due before it is leased here. Leased rows stay at the head of the index until
    /// their results are recorded (hundreds of them under load), and without this every claim
    /// walked past all of them again: 6.3 rows walked per row claimed at 3,000 events/s.
    /// A claim moves it up to the first row it could not take; anything that puts a row back
    /// in the queue below it lowers it (an enqueue with an earlier time, a release, a retry);
    /// a lease that runs out, and once a second for safety, reset it.
    floor: i64,
    /// No lease ends before this (epoch ms): until then none can have run out.
    earliest_end: i64,
    /// When the floor was last reset (epoch ms).
    floor_since: i64,
}

impl Default for Leases {
    fn default() -> Self {
        Self {
            held: HashMap::new(),
            taken: Vec::new(),
            ending: Vec::new(),
            count: Arc::default(),
            floor: i64::MIN,
            earliest_end: i64::MAX,
            floor_since: i64::MIN,
        }
    }
}

/// How often the claim floor goes back to the start regardless: a bound on how long a row put
/// back below it by a path that forgot to lower it would wait.
const FLOOR_RESET_MS: i64 = 1_000;

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

    pub fn is_held(&self, rowid: i64, now: i64) -> bool {
        self.held.get(&rowid).is_some_and(|&until| until > now)
    }

    pub fn take(&mut self, rowid: i64, until: i64) {
        self.earliest_end = self.earliest_end.min(until);
        self.held.insert(rowid, until);
        self.taken.push(rowid);
    }

    /// Drops the lease when the current batch commits.
    pub fn end_after_commit(&mut self, rowid: i64) {
        self.ending.push((rowid, self.taken.len()));
    }

    /// Where a claim at `now` starts its walk (see the field). Leases that ran out are dropped
    /// here, and put the floor back to the start: their rows are due again where they were.
    pub fn claim_floor(&mut self, now: i64) -> i64 {
        if now >= self.earliest_end {
            self.drop_ended(now);
        }
        // (Also when the clock went back.)
        if now < self.floor_since || now.saturating_sub(self.floor_since) >= FLOOR_RESET_MS {
            self.floor = i64::MIN;
            self.floor_since = now;
        }
        self.floor
    }

    /// Drops the leases that ended by `now`. Their rows are due again, perhaps below the
    /// floor, which then goes back to the start.
    fn drop_ended(&mut self, now: i64) {
        let before = self.held.len();
        self.held.retain(|_, until| *until > now);
        if self.held.len() < before {
            self.floor = i64::MIN;
        }
        self.earliest_end = self.held.values().copied().min().unwrap_or(i64::MAX);
    }

    /// A claim walked up to `due_at` leaving nothing claimable before it.
    pub fn raise_floor(&mut self, due_at: i64) {
        self.floor = self.floor.max(due_at);
    }

    /// A row was put in the queue due at `due_at` (inserted unleased, released, or given a
    /// retry time): the next claim must walk from there.
    pub fn lower_floor(&mut self, due_at: i64) {
        self.floor = self.floor.min(due_at);
    }

    pub fn mark(&self) -> Mark {
        Mark {
            taken: self.taken.len(),
            ending: self.ending.len(),
        }
    }

    /// A job failed and its savepoint was rolled back: undo what it did to leases.
    pub fn job_failed(&mut self, mark: Mark) {
        // A claim that failed may have raised the floor past rows it then did not lease.
        self.floor = i64::MIN;
        for rowid in self.taken.drain(mark.taken..) {
            self.held.remove(&rowid);
        }
        self.ending.truncate(mark.ending);
    }

    pub fn batch_committed(&mut self, now: i64) {
        // Where each rowid was last leased in this batch.
        let last_taken: HashMap<i64, usize> = self
            .taken
            .iter()
            .enumerate()
            .map(|(i, r)| (*r, i))
            .collect();
        for (rowid, taken_before) in self.ending.drain(..) {
            if last_taken.get(&rowid).is_some_and(|&i| i >= taken_before) {
                continue; // leased again since, by a new row with the same rowid
            }
            self.held.remove(&rowid);
        }
        self.taken.clear();
        // Leases the dispatcher lost are dropped when they end; the map stays bounded by
        // what the dispatcher may hold plus what it lost within one lease time.
        if self.held.len() > 4096 {
            self.drop_ended(now);
        }
        self.count.store(self.held.len(), Ordering::Release);
    }

    pub fn batch_failed(&mut self) {
        self.floor = i64::MIN;
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

        // A rowid freed and given to a new leased row in the same batch keeps the new lease;
        // one leased and then ended in the same batch does not.
        l.end_after_commit(2);
        l.take(2, 2_000);
        l.take(6, 1_000);
        l.end_after_commit(6);
        l.batch_committed(0);
        assert!(l.is_held(2, 1_500) && !l.is_held(6, 0));
    }

    #[test]
    fn the_claim_floor_goes_back_whenever_a_row_may_be_due_below_it() {
        let mut l = Leases::default();
        assert_eq!(l.claim_floor(0), i64::MIN);
        let raised = |l: &mut Leases| {
            l.raise_floor(100);
            assert_eq!(l.claim_floor(10), 100);
        };
        raised(&mut l);
        l.lower_floor(40);
        assert_eq!(l.claim_floor(10), 40, "a row put back at 40");
        // A failed job (a claim may have raised it past rows it then did not lease), a failed
        // batch, a lease that ran out, the once-a-second reset and a clock gone back.
        raised(&mut l);
        l.job_failed(l.mark());
        assert_eq!(l.claim_floor(10), i64::MIN);
        raised(&mut l);
        l.batch_failed();
        assert_eq!(l.claim_floor(10), i64::MIN);
        l.take(1, 500);
        l.batch_committed(10);
        raised(&mut l);
        assert_eq!(l.claim_floor(499), 100, "the lease still runs");
        assert_eq!(
            l.claim_floor(500),
            i64::MIN,
            "it ran out: its row is due again"
        );
        assert!(!l.is_held(1, 0));
        raised(&mut l);
        assert_eq!(l.claim_floor(FLOOR_RESET_MS), i64::MIN);
        l.raise_floor(100);
        assert_eq!(l.claim_floor(FLOOR_RESET_MS + 10), 100);
        assert_eq!(l.claim_floor(5), i64::MIN, "the clock went back");
    }
}
