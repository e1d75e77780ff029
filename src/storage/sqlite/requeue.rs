//! Operators' writes to the queue (issue 15): retry one delivery, recover a hook's failed
//! ones, replay stored events to a hook, and prune what retention lets go. Each runs on the
//! writer thread inside its batch, as one bounded step (the caller paces the steps: see
//! `delivery::operations` and `crate::retention`); those that make deliveries due lower the
//! claim floor to that time.

use super::writer::WriteTx;
use crate::domain::id::new_id;
use crate::storage::deliveries::{
    recovery_filter, PruneCutoffs, Pruned, Recovery, Replay, ReplayCursor, ReplayStep,
};
use crate::storage::ordering::HELD_MS;
use crate::storage::schema::Marks;
use crate::storage::StoreResult;
use rusqlite::OptionalExtension;
use std::collections::BTreeSet;

/// Makes one delivery due at `now` with a fresh schedule; a delivery leased here (being
/// sent) is left to its attempt. A manual retry goes at once: a finished one goes outside
/// its user's line (its ordering key is dropped), a held one becomes a second head of its
/// line (it keeps its key, so its own retries still hold the line's later ones; see
/// [`crate::storage::ordering`]). `false` if there is no such delivery.
pub fn retry(w: &mut WriteTx<'_>, id: &str, now: i64) -> StoreResult<bool> {
    let rowid: Option<i64> = w
        .conn
        .prepare_cached("SELECT rowid FROM deliveries WHERE id = ?1")?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let Some(rowid) = rowid else {
        return Ok(false);
    };
    if w.leases.is_held(rowid, now) {
        return Ok(true);
    }
    w.conn
        .prepare_cached(
            "UPDATE OR FAIL deliveries SET state = 0, due_at = ?1, schedule_start = attempts, \
             updated_at = ?1, \
             ordering_key = CASE WHEN state = 0 THEN ordering_key END WHERE rowid = ?2",
        )?
        .execute((now, rowid))?;
    w.leases.lower_floor(now);
    *w.queued_due = true;
    Ok(true)
}

/// Re-queues up to `limit` of `r`'s failed deliveries (through the finished rows' hook
/// index); returns how many. Those with an ordering key rejoin their user's line, held, in
/// event order.
pub fn recover(w: &mut WriteTx<'_>, r: &Recovery, limit: u32, now: i64) -> StoreResult<u64> {
    let sql = format!(
        "UPDATE OR FAIL deliveries SET state = 0, \
         due_at = CASE WHEN ordering_key IS NULL THEN ?5 ELSE created_at + ?7 END, \
         schedule_start = attempts, updated_at = ?5 \
         WHERE rowid IN (SELECT rowid FROM deliveries WHERE {} LIMIT ?6) \
         RETURNING ordering_key",
        recovery_filter(Marks::Question)
    );
    let keys: Vec<Option<String>> = w
        .conn
        .prepare_cached(&sql)?
        .query_map(
            (
                &r.hook_id,
                r.window.since,
                r.window.until,
                r.before,
                now,
                i64::from(limit),
                HELD_MS,
            ),
            |row| row.get(0),
        )?
        .collect::<Result<_, _>>()?;
    if keys.iter().any(Option::is_none) {
        w.leases.lower_floor(now);
        *w.queued_due = true;
    }
    let lines: BTreeSet<String> = keys.iter().flatten().cloned().collect();
    for key in lines {
        super::queue::next_in_line(w, &r.hook_id, &key, now)?;
    }
    Ok(keys.len() as u64)
}

/// Looks at up to `limit` events of `r`'s window after `after` (by creation time, then id)
/// and creates a delivery due at `now` for each the hook subscribes to and has none of.
pub fn replay(
    w: &mut WriteTx<'_>,
    r: &Replay,
    after: Option<&ReplayCursor>,
    limit: u32,
    now: i64,
) -> StoreResult<ReplayStep> {
    // A hook deleted or disabled meanwhile ends the replay: its deliveries would never go.
    if !w.hooks.is_enabled(w.conn, &r.hook_id)? {
        return Ok(ReplayStep::default());
    }
    let (from_at, from_id) = match after {
        Some(c) => (c.created_at, c.event_id.as_str()),
        None => (r.window.since, ""),
    };
    let mut events = w.conn.prepare_cached(
        "SELECT id, name, created_at, user_id FROM events INDEXED BY events_time \
         WHERE created_at <= ?2 AND (created_at > ?1 OR (created_at = ?1 AND id > ?3)) \
           AND created_at >= ?4 \
         ORDER BY created_at, id LIMIT ?5",
    )?;
    type Looked = (String, String, i64, Option<String>);
    let looked: Vec<Looked> = events
        .query_map(
            (
                from_at,
                r.window.until,
                from_id,
                r.window.since,
                i64::from(limit),
            ),
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )?
        .collect::<Result<_, _>>()?;
    let mut exists = w
        .conn
        .prepare_cached("SELECT 1 FROM deliveries WHERE event_id = ?1 AND hook_id = ?2")?;
    // A delivery that joins its user's line is held, due after the line's earlier rows.
    let mut insert = w.conn.prepare_cached(
        "INSERT OR FAIL INTO deliveries (id, event_id, hook_id, event_name, due_at, created_at, \
         updated_at, ordering_key) \
         VALUES (?1, ?2, ?3, ?4, CASE WHEN ?6 IS NULL THEN ?5 ELSE ?5 + ?7 END, ?5, ?5, ?6)",
    )?;
    let mut step = ReplayStep::default();
    let mut lines = BTreeSet::new();
    let mut free = false;
    for (event_id, name, _, user) in &looked {
        if !r.events.iter().any(|e| e == name) {
            continue;
        }
        if exists.exists((event_id, &r.hook_id))? {
            continue;
        }
        let key = user.as_ref().filter(|_| r.per_user);
        insert.execute((new_id(), event_id, &r.hook_id, name, now, key, HELD_MS))?;
        match key {
            Some(key) => {
                lines.insert(key.clone());
            }
            None => free = true,
        }
        step.created += 1;
    }
    drop((events, exists, insert));
    if free {
        w.leases.lower_floor(now);
        *w.queued_due = true;
    }
    for key in lines {
        super::queue::next_in_line(w, &r.hook_id, &key, now)?;
    }
    if looked.len() == limit as usize {
        step.next = looked.last().map(|(id, _, at, _)| ReplayCursor {
            created_at: *at,
            event_id: id.clone(),
        });
    }
    Ok(step)
}

/// One retention step (see `Store::prune`). Finished rows only: nothing deleted here can be
/// leased, so the claim floor stays as it is.
pub fn prune(w: &mut WriteTx<'_>, c: &PruneCutoffs, limit: u32) -> StoreResult<Pruned> {
    let limit = i64::from(limit);
    let deliveries = w
        .conn
        .prepare_cached(
            "DELETE FROM deliveries WHERE rowid IN (SELECT rowid FROM deliveries \
             INDEXED BY deliveries_finished_time WHERE state <> 0 AND created_at < ?1 LIMIT ?2)",
        )?
        .execute((c.deliveries_and_events, limit))?;
    let events = w
        .conn
        .prepare_cached(
            "DELETE FROM events WHERE rowid IN (SELECT e.rowid FROM events e \
             INDEXED BY events_time WHERE e.created_at < ?1 \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id) LIMIT ?2)",
        )?
        .execute((c.deliveries_and_events, limit))?;
    // Hook by hook: attempts have no index by time alone (one b-tree fewer per attempt), and
    // a deleted hook's attempts went with it.
    let hooks: Vec<String> = w
        .conn
        .prepare_cached("SELECT id FROM hooks")?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut delete = w.conn.prepare_cached(
        "DELETE FROM attempts WHERE rowid IN (SELECT rowid FROM attempts \
         WHERE hook_id = ?1 AND created_at < ?2 LIMIT ?3)",
    )?;
    let mut attempts = 0i64;
    for hook in hooks {
        if attempts >= limit {
            break;
        }
        attempts += delete.execute((hook, c.attempts, limit - attempts))? as i64;
    }
    Ok(Pruned {
        deliveries: deliveries as u64,
        events: events as u64,
        attempts: attempts as u64,
    })
}
