//! Per-user ordering (`config.ordering: "perUser"`, issue 15), as both backends keep it.
//!
//! A delivery to such a hook about a user ([`crate::domain::payload::subject_user`]) carries
//! that user as its *ordering key*. The deliveries of one (hook, key) that are queued form a
//! *line*, and at most one of them is free to be claimed, the head; the others are *held*:
//! their `due_at` is raised by [`HELD_MS`] (as parking raises a disabled hook's, see
//! [`super::health::PARK_MS`]), so claims never see them and the queue's head stays clear,
//! however long a line grows while its head retries for days. The rules:
//!
//! - a new delivery (enqueue, replay, recovery) whose line already has a queued row is held;
//!   otherwise it is the head and goes as usual (it may be leased at once);
//! - when the head leaves the queue (succeeded, or failed for good), the line's first held
//!   row by insertion, which is commit order within a line, becomes the head: due at its own
//!   creation time, so at once (or when its hook's pause ends; parked if its hook is
//!   disabled); a retry keeps the head in place, so nothing of the user's overtakes it. A
//!   recovered row keeps its place; a replayed one is new, so it joins the end;
//! - a manual retry (`POST /api/deliveries/:id/retry`) goes at once: an operator who asks
//!   for one delivery now gets it now. A finished one goes outside its line; a held one
//!   becomes a second head until one of the two leaves the queue.
//!
//! Which rows are queued is the only state on SQLite, where the writer thread serializes every
//! step. PostgreSQL nodes run steps at once, so there each line also has a row in
//! `delivery_lines` counting its queued deliveries: an enqueue adds to it with
//! `INSERT … ON CONFLICT DO UPDATE`, which waits for any transaction that changed the count and
//! then sees the committed one, so two enqueues, or an enqueue and the record that ends a
//! head, never both take a line for empty (see `postgres::ordering`).

use crate::domain::hook::{HookConfig, Ordering};

/// Added to a held delivery's `due_at` (about 71,000 years in ms): above any real time and
/// above a parked row's ([`super::health::PARK_MS`], 2^50), so the two never mix up. A held
/// row is never parked (it is not due anyway); a head released while its hook is disabled
/// is parked instead.
pub const HELD_MS: i64 = 1 << 51;

/// The ordering key of a delivery of `user`'s event to a hook with `config`.
pub fn key_for(config: &HookConfig, user: Option<&str>) -> Option<String> {
    match config.ordering {
        Some(Ordering::PerUser) => user.map(str::to_owned),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_rows_sort_after_every_parked_and_real_time() {
        let year_3000_ms: i64 = 32_503_680_000_000;
        assert!(HELD_MS > super::super::health::PARK_MS + year_3000_ms);
        assert!(HELD_MS
            .checked_add(super::super::health::PARK_MS + year_3000_ms)
            .is_some());
    }
}
