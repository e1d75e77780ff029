//! The delivery queue's writes: enqueue, claim, record, release. They run on the writer
//! thread (see [`super::writer`]) inside its batch transaction, one prepared statement per
//! row; with no thread hop per statement, plain prepared statements beat packing rows into
//! JSON for SQLite to unpack, which is what the sqlx version had to do.
//!
//! The writes say `OR FAIL`: a statement that may abort half-way (one that writes a row and
//! its indexes and has a constraint to check) otherwise makes SQLite keep a statement journal,
//! a copy of every page the statement touches, just in case. These statements write one row
//! each and check their constraints before writing, and a job whose statement fails has its
//! whole work rolled back by the writer anyway, so the copy buys nothing.

use super::writer::WriteTx;
use crate::domain::id::new_id;
use crate::domain::payload::{delivery_body, subject_user};
use crate::storage::ordering::{key_for, HELD_MS};
use crate::storage::{
    AttemptRecord, BlockingCallLog, ClaimRequest, Claimed, ClaimedDelivery, Enqueued, Lease,
    NewEvent, NextStep, StoreError, StoreResult,
};
use rusqlite::OptionalExtension;
use std::collections::{HashMap, HashSet};

const STATE_QUEUED: i64 = 0;
const STATE_SUCCEEDED: i64 = 1;
const STATE_FAILED: i64 = 2;
const STATE_SKIPPED: i64 = 3;

/// Rows of busy or disabled hooks a claim passes over, beyond the leased ones, before it
/// stops looking (see [`claim_due`]).
const SKIP_BUDGET: usize = 4096;

/// Stores `events` and their deliveries inside the writer's transaction. Features that change
/// their own rows (the identity core) call this from their own write job, so the change and
/// the events it causes commit together.
///
/// Up to `lease.up_to` of the deliveries are inserted leased (in memory, see
/// [`super::leases`]) and returned ready to send; the rest are left due, and the writer wakes
/// the dispatcher for them once the batch has committed. A delivery whose user's line to its
/// hook has a queued row already is inserted held ([`crate::storage::ordering`]).
pub fn enqueue_events_in(
    w: &mut WriteTx<'_>,
    events: &[&NewEvent],
    lease: Lease,
) -> StoreResult<Vec<Enqueued>> {
    let mut subscribers = Vec::with_capacity(events.len());
    for event in events {
        subscribers.push(w.hooks.subscribers(w.conn, event.event)?);
    }
    let mut grant = lease.up_to;
    let lease_ms = lease.lease_ms;
    let mut insert_event = w.conn.prepare_cached(
        "INSERT OR FAIL INTO events (id, name, payload, created_at, user_id) \
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut insert_delivery = w.conn.prepare_cached(
        "INSERT OR FAIL INTO deliveries (id, event_id, hook_id, event_name, due_at, created_at, \
         updated_at, ordering_key) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6, ?7)",
    )?;
    let mut results = Vec::with_capacity(events.len());
    for (event, hooks) in events.iter().zip(subscribers) {
        let name = event.event.name();
        let payload = serde_json::to_string(&event.payload)
            .map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?;
        let user = subject_user(event.event, &event.payload);
        insert_event.execute((&event.id, name, &payload, event.created_at, user))?;
        let mut enqueued = Enqueued {
            deliveries: hooks.len(),
            leased: Vec::new(),
            waiting: 0,
        };
        for hook in hooks.iter() {
            let id = new_id();
            let ordering_key = key_for(&hook.target.config, user);
            if let Some(key) = &ordering_key {
                if line_is_queued(w, &hook.hook_id, key)? {
                    insert_delivery.execute((
                        &id,
                        &event.id,
                        &hook.hook_id,
                        name,
                        event.created_at + HELD_MS,
                        event.created_at,
                        key,
                    ))?;
                    enqueued.waiting += 1;
                    continue;
                }
            }
            // A paused hook's deliveries are due when the pause ends (`Store::pause_hook`).
            let due_at = match w.hooks.paused_until(&hook.hook_id, event.created_at) {
                Some(until) => until,
                None => event.created_at,
            };
            let leased = grant > 0 && due_at == event.created_at;
            insert_delivery.execute((
                &id,
                &event.id,
                &hook.hook_id,
                name,
                due_at,
                event.created_at,
                &ordering_key,
            ))?;
            if leased {
                grant -= 1;
                w.leases
                    .take(w.conn.last_insert_rowid(), event.created_at + lease_ms);
                enqueued.leased.push(ClaimedDelivery {
                    id,
                    row: w.conn.last_insert_rowid(),
                    event_id: event.id.clone(),
                    hook_id: hook.hook_id.clone(),
                    event_name: name.to_owned(),
                    body: delivery_body(&payload, &hook.hook_id),
                    transformed: false,
                    request_headers: None,
                    attempts: 0,
                    schedule_start: 0,
                    created_at: event.created_at,
                    ordering_key,
                    target: hook.target.clone(),
                });
            } else if due_at == event.created_at {
                w.leases.lower_floor(due_at);
                *w.queued_due = true;
            } else {
                enqueued.waiting += 1;
            }
        }
        results.push(enqueued);
    }
    Ok(results)
}

/// Claims due deliveries in two steps, both on the queue index (named, so that the planner
/// cannot pick the hook_id index and walk a hook's whole history):
/// 1. *pick*: walk due rows in due order, reading only the index (it carries `hook_id` and
///    the rowid), skip leased rows and disabled and busy hooks, keep at most `per_hook` of
///    each hook and stop at `limit`; then look on for one more row this claim could have
///    taken with more room, which says whether the claimer has caught up (`more`);
/// 2. *take*: lease each picked row in memory (see [`super::leases`]) and read what it takes
///    to send (the event's payload) by rowid; the hook's target comes from the writer's
///    cache. Nothing is written.
///
/// The walk starts at the claim floor ([`super::leases::Leases::claim_floor`]): the rows due
/// before it are all leased here, and walking past them again each claim cost more than the
/// claim's own rows under load (6.3 rows walked per row claimed at 3,000 events/s; 1.5 with
/// the floor). The walk is bounded: at most four times `limit` rows it could take (the
/// per-hook cap can leave rows behind), and at most [`SKIP_BUDGET`] rows of busy or disabled
/// hooks beyond the leased ones (a busy hook's backlog at the head of the queue would
/// otherwise be walked at every claim: up to a million rows a second under load,
/// BENCHMARKS.md). A walk cut short says `more`, so the claimer does not take the queue for
/// caught up.
///
/// The per-hook cap is counted here rather than in SQL: a window function over the scanned
/// rows meant sorting them twice per claim, and the walk can stop as soon as it has enough.
pub fn claim_due(w: &mut WriteTx<'_>, req: &ClaimRequest) -> StoreResult<Claimed> {
    let limit = req.limit as usize;
    if limit == 0 {
        return Ok(Claimed::default());
    }
    let scan = limit.saturating_mul(4).max(64);
    // Passing leased rows is bounded by how many there are; the budget is for the others.
    let mut skips_left = SKIP_BUDGET;
    let busy: HashSet<&str> = req.busy_hooks.iter().map(String::as_str).collect();
    let mut picked: Vec<i64> = Vec::with_capacity(limit);
    let mut more = false;
    {
        // The hook filters are applied here rather than in SQL: `IN (SELECT …)` makes
        // SQLite build and drop a temporary b-tree per execution, and each distinct hook is
        // looked up once per claim here.
        let mut pick = w.conn.prepare_cached(
            "SELECT d.rowid, d.hook_id, d.due_at FROM deliveries d \
             INDEXED BY deliveries_queued_due \
             WHERE d.state = 0 AND d.due_at >= ?2 AND d.due_at <= ?1 ORDER BY d.due_at",
        )?;
        let mut rows = pick.query([req.now, w.leases.claim_floor(req.now)])?;
        // How far the floor may move: up to the first row left claimable (passed over for its
        // hook, over its cap, or past where the walk stopped); rows due at the same time are
        // walked again, as the floor is inclusive.
        let (mut reached, mut open_below) = (None, true);
        // Per hook: how many more it may take, or `None` for a disabled, deleted or busy
        // hook, whose rows are passed over.
        let mut room: HashMap<String, Option<u32>> = HashMap::new();
        let mut eligible = 0;
        while let Some(row) = rows.next()? {
            let rowid: i64 = row.get(0)?;
            let due_at: i64 = row.get(2)?;
            if open_below {
                reached = Some(due_at);
            }
            let leased = w.leases.is_held(rowid, req.now);
            let picked_before = picked.len();
            let passed_over = leased || {
                let hook_id = row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
                let left = match room.get_mut(hook_id) {
                    Some(n) => n,
                    None => {
                        let open =
                            !busy.contains(hook_id) && w.hooks.is_enabled(w.conn, hook_id)?;
                        room.entry(hook_id.to_owned())
                            .or_insert(open.then_some(req.per_hook))
                    }
                };
                match left {
                    None => true,
                    Some(left) => {
                        eligible += 1;
                        if eligible > scan {
                            more = true;
                            break;
                        }
                        if *left > 0 {
                            if picked.len() == limit {
                                // One more row this claim could have taken: not caught up.
                                more = true;
                                break;
                            }
                            *left -= 1;
                            picked.push(rowid);
                        }
                        false
                    }
                }
            };
            // Only leased rows (and those just picked, leased now) may be left below the floor.
            open_below &= leased || picked.len() > picked_before;
            if passed_over && !leased {
                if skips_left == 0 {
                    more = true;
                    break;
                }
                skips_left -= 1;
            }
        }
        if let Some(due_at) = reached {
            w.leases.raise_floor(due_at);
        }
    }
    // The lease is taken in memory (see `super::leases`): the row is only read.
    let mut read = w.conn.prepare_cached(
        "SELECT id, event_id, hook_id, event_name, attempts, created_at, \
           CASE WHEN request_body IS NULL THEN (SELECT payload FROM events e WHERE e.id = d.event_id) END, \
           schedule_start, ordering_key, request_body, request_headers \
         FROM deliveries d WHERE rowid = ?1",

    )?;
    let mut out = Vec::with_capacity(picked.len());
    for rowid in picked {
        let mut rows = read.query([rowid])?;
        let Some(row) = rows.next()? else {
            continue;
        };
        let event_id: String = row.get(1)?;
        let hook_id: String = row.get(2)?;
        // What its transform made, once it ran; else the event's payload with `hookId`.
        let stored: Option<String> = row.get(9)?;
        let request_headers: Option<String> = row.get(10)?;
        let transformed = stored.is_some();
        let body = match (stored, row.get_ref(6)?.as_str_or_null()) {
            (Some(body), _) => body,
            (None, Ok(Some(payload))) => delivery_body(payload, &hook_id),
            (None, _) => {
                return Err(StoreError::Corrupt(format!(
                    "event {event_id} of a delivery is missing"
                )))
            }
        };
        let (id, event_name): (String, String) = (row.get(0)?, row.get(3)?);
        let (attempts, created_at): (i64, i64) = (row.get(4)?, row.get(5)?);
        let schedule_start: i64 = row.get(7)?;
        let ordering_key: Option<String> = row.get(8)?;
        drop(rows);
        // The pick only takes deliveries of existing, enabled hooks, and deleting a hook
        // deletes its queued deliveries in the same transaction.
        let Some(target) = w.hooks.target(w.conn, &hook_id)? else {
            continue;
        };
        w.leases.take(rowid, req.now + req.lease_ms);
        out.push(ClaimedDelivery {
            id,
            row: rowid,
            event_id,
            hook_id,
            event_name,
            body,
            transformed,
            request_headers,
            attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
            schedule_start: u32::try_from(schedule_start).unwrap_or(0),
            created_at,
            ordering_key,
            target,
        });
    }
    Ok(Claimed {
        deliveries: out,
        more,
    })
}

/// When the earliest queued, unleased delivery of an enabled hook becomes due, if any.
pub fn next_due_at(w: &mut WriteTx<'_>, now: i64) -> StoreResult<Option<i64>> {
    // Walks the queue index past the leased rows at its head; MIN() would scan every queued
    // row.
    let mut stmt = w.conn.prepare_cached(
        "SELECT rowid, hook_id, due_at FROM deliveries INDEXED BY deliveries_queued_due \
         WHERE state = 0 AND due_at >= ?1 ORDER BY due_at",
    )?;
    // From the claim floor: the rows below it are leased.
    let mut rows = stmt.query([w.leases.claim_floor(now)])?;
    while let Some(row) = rows.next()? {
        if w.leases.is_held(row.get(0)?, now) {
            continue;
        }
        let hook_id = row.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
        if w.hooks.is_enabled(w.conn, hook_id)? {
            return Ok(Some(row.get(2)?));
        }
    }
    Ok(None)
}

/// Records attempts and moves their deliveries on. The hook may have been deleted (with its
/// deliveries) while an attempt ran: then there is nothing to log it against.
pub fn record_attempts(w: &mut WriteTx<'_>, records: &[AttemptRecord]) -> StoreResult<()> {
    let mut update = w.conn.prepare_cached(
        // A hook disabled while its delivery was in flight has parked the row: a retry stays
        // parked (`storage::health::PARK_MS`).
        "UPDATE OR FAIL deliveries SET state = ?1, \
         due_at = CASE WHEN ?1 = 0 AND due_at >= 1125899906842624 THEN ?2 + 1125899906842624 ELSE ?2 END, \
         attempts = ?3, updated_at = ?4, last_status = ?7, last_duration_ms = ?8 \
         WHERE rowid = ?5 AND id = ?6",
    )?;
    let mut insert = w.conn.prepare_cached(
        "INSERT OR FAIL INTO attempts (id, delivery_id, hook_id, event_name, attempt, success, \
         response_status, response_body, error, duration_ms, created_at, script) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    let mut skipped = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let (state, due_at) = match r.next {
            NextStep::Succeeded => (STATE_SUCCEEDED, r.at),
            NextStep::RetryAt(at) => (STATE_QUEUED, at),
            NextStep::GaveUp | NextStep::Gone => (STATE_FAILED, r.at),
            NextStep::Skipped => (STATE_SKIPPED, r.at),
        };
        // By rowid (no walk of the id index); the id is checked too, since a rowid freed by a
        // deleted hook's deliveries may have been given to a new row.
        if update.execute((
            state,
            due_at,
            r.attempt,
            r.at,
            r.delivery_row,
            &r.delivery_id,
            r.response_status,
            r.duration_ms,
        ))? == 0
        {
            // Deleted with its hook, which ended its lease (and the rowid may be another
            // delivery's by now).
            skipped.push(i);
            continue;
        }
        // The lease ends once this commits.
        w.leases.end_after_commit(r.delivery_row);
        if let Some(t) = &r.transformed {
            w.conn
                .prepare_cached(
                    "UPDATE deliveries SET request_body = ?2, request_headers = ?3 \
                     WHERE rowid = ?1 AND request_body IS NULL",
                )?
                .execute((r.delivery_row, &t.body, &t.headers))?;
        }
        match (&r.next, &r.ordering_key) {
            (NextStep::RetryAt(at), _) => w.leases.lower_floor(*at),
            // A head left the queue: the next of its user's line goes.
            (_, Some(key)) => next_in_line(w, &r.hook_id, key, r.at)?,
            _ => {}
        }
        insert.execute((
            &r.id,
            &r.delivery_id,
            &r.hook_id,
            &r.event_name,
            r.attempt,
            r.next.is_success(),
            r.response_status,
            &r.response_body,
            &r.error,
            r.duration_ms,
            r.at,
            &r.script,
        ))?;
    }
    // What the records cause, for those that moved their delivery on.
    if skipped.is_empty() {
        return super::health::after_records(w, records);
    }
    let applied: Vec<AttemptRecord> = records
        .iter()
        .enumerate()
        .filter(|(i, _)| !skipped.contains(i))
        .map(|(_, r)| r.clone())
        .collect();
    super::health::after_records(w, &applied)
}

/// Gives up leases: the deliveries are due again (their rows were never changed), or, for a
/// hook paused meanwhile, when its pause ends.
pub fn release(w: &mut WriteTx<'_>, delivery_ids: &[String], now: i64) -> StoreResult<()> {
    *w.queued_due |= !delivery_ids.is_empty();
    let mut stmt = w.conn.prepare_cached(
        "SELECT rowid, due_at, hook_id FROM deliveries WHERE state = 0 AND id = ?1",
    )?;
    let mut defer = w
        .conn
        .prepare_cached("UPDATE OR FAIL deliveries SET due_at = ?2 WHERE rowid = ?1")?;
    for id in delivery_ids {
        let found = stmt
            .query_row([id], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })
            .optional()?;
        if let Some((rowid, due_at, hook_id)) = found {
            w.leases.end_after_commit(rowid);
            match w.hooks.paused_until(&hook_id, now) {
                Some(until) if due_at < until => {
                    defer.execute((rowid, until))?;
                }
                _ => w.leases.lower_floor(due_at),
            }
        }
    }
    Ok(())
}

/// Logs blocking calls: an event row (the payload, for the log's request body), a delivery
/// row already finished (so that no claim ever sees it) and its one attempt.
pub fn record_blocking_calls(w: &mut WriteTx<'_>, calls: &[BlockingCallLog]) -> StoreResult<()> {
    let mut event = w.conn.prepare_cached(
        "INSERT OR FAIL INTO events (id, name, payload, created_at) VALUES (?1, ?2, ?3, ?4)",
    )?;
    let mut delivery = w.conn.prepare_cached(
        "INSERT OR FAIL INTO deliveries (id, event_id, hook_id, event_name, state, attempts, due_at, \
         created_at, updated_at, last_status, last_duration_ms) \
         VALUES (?1, ?2, ?3, ?4, ?5, 1, ?6, ?6, ?6, ?7, ?8)",
    )?;
    let mut attempt = w.conn.prepare_cached(
        "INSERT OR FAIL INTO attempts (id, delivery_id, hook_id, event_name, attempt, success, \
         response_status, response_body, error, duration_ms, created_at, script) \
         VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?;
    for c in calls {
        let event_id = new_id();
        let name = c.event.name();
        let payload = serde_json::to_string(&c.payload)
            .map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?;
        event.execute((&event_id, name, &payload, c.at))?;
        let state = if c.success {
            STATE_SUCCEEDED
        } else {
            STATE_FAILED
        };
        delivery.execute((
            &c.delivery_id,
            &event_id,
            &c.hook_id,
            name,
            state,
            c.at,
            c.response_status,
            c.duration_ms,
        ))?;
        attempt.execute((
            new_id(),
            &c.delivery_id,
            &c.hook_id,
            name,
            c.success,
            c.response_status,
            &c.response_body,
            &c.error,
            c.duration_ms,
            c.at,
            &c.script,
        ))?;
    }
    Ok(())
}

/// Whether the line of (`hook_id`, `key`) has a queued delivery (held, or its head).
pub(super) fn line_is_queued(w: &mut WriteTx<'_>, hook_id: &str, key: &str) -> StoreResult<bool> {
    Ok(w.conn
        .prepare_cached(
            "SELECT 1 FROM deliveries INDEXED BY deliveries_lines \
             WHERE hook_id = ?1 AND ordering_key = ?2 AND state = 0",
        )?
        .exists((hook_id, key))?)
}

/// Lets the first held delivery of the line of (`hook_id`, `key`) go (the first inserted:
/// the writer commits in insertion order), unless the line has a head (a queued row not
/// held): due at its creation time, so at once, or when its hook's pause ends, or parked if
/// its hook is disabled ([`crate::storage::ordering`]).
pub(super) fn next_in_line(
    w: &mut WriteTx<'_>,
    hook_id: &str,
    key: &str,
    now: i64,
) -> StoreResult<()> {
    let has_head = w
        .conn
        .prepare_cached(
            "SELECT 1 FROM deliveries INDEXED BY deliveries_lines \
             WHERE hook_id = ?1 AND ordering_key = ?2 AND state = 0 AND due_at < ?3",
        )?
        .exists((hook_id, key, HELD_MS))?;
    if has_head {
        return Ok(());
    }
    let park = if w.hooks.is_enabled(w.conn, hook_id)? {
        0
    } else {
        crate::storage::health::PARK_MS
    };
    let paused_until = w.hooks.paused_until(hook_id, now).unwrap_or(0);
    let due: Option<i64> = w
        .conn
        .prepare_cached(
            "UPDATE OR FAIL deliveries SET due_at = max(due_at - ?3, ?5) + ?4 WHERE rowid = \
               (SELECT rowid FROM deliveries INDEXED BY deliveries_lines \
                WHERE hook_id = ?1 AND ordering_key = ?2 AND state = 0 AND due_at >= ?3 \
                ORDER BY rowid LIMIT 1) \
             RETURNING due_at",
        )?
        .query_row((hook_id, key, HELD_MS, park, paused_until), |r| r.get(0))
        .optional()?;
    if let Some(due) = due.filter(|d| *d < crate::storage::health::PARK_MS) {
        w.leases.lower_floor(due);
        *w.queued_due = true;
    }
    Ok(())
}

/// See `Store::pause_hook`: remembered on the writer (enqueues read it) and the hook's due
/// rows moved to `until`, through the queue index (there is no index of queued rows by hook).
/// Rows leased here may be moved too: their lease is in memory, and a record sets `due_at`
/// anyway, while a release leaves it (so one released during the pause waits for its end).
pub fn pause_hook(w: &mut WriteTx<'_>, hook_id: &str, until: i64, now: i64) -> StoreResult<()> {
    w.hooks.pause(hook_id, until);
    w.conn
        .prepare_cached(
            "UPDATE OR FAIL deliveries SET due_at = ?3 WHERE rowid IN \
               (SELECT rowid FROM deliveries INDEXED BY deliveries_queued_due \
                WHERE state = 0 AND due_at <= ?2 AND hook_id = ?1)",
        )?
        .execute((hook_id, now, until))?;
    Ok(())
}
