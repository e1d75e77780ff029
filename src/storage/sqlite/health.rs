//! Hook health on SQLite (see `storage::health`): failing streaks kept on the hook rows as
//! attempts are recorded, disabling a hook with its `Hook.Disabled` event, and the
//! `Delivery.Exhausted` events of a record batch, all inside the writer's transaction that
//! causes them.

use super::queue::enqueue_events_in;
use super::writer::WriteTx;
use crate::domain::payload::DisabledReason;
use crate::storage::health::{
    disabled_event, exhausted_events, gone_hooks, latest_outcomes, next_failing_since,
};
use crate::storage::{AttemptRecord, Lease, NewEvent, StoreResult};
use rusqlite::OptionalExtension;

/// What a batch of records changes beyond the deliveries: failing streaks (written only when
/// they change, which a steady hook's batches never do), hooks gone (410), and the events.
pub fn after_records(w: &mut WriteTx<'_>, records: &[AttemptRecord]) -> StoreResult<()> {
    for (hook, latest) in latest_outcomes(records) {
        let Some(current) = w.hooks.failing_since(w.conn, hook)? else {
            continue; // deleted meanwhile
        };
        let next = next_failing_since(current, latest);
        if next != current {
            w.conn
                .prepare_cached("UPDATE hooks SET failing_since = ?1 WHERE id = ?2")?
                .execute((next, hook))?;
            w.hooks.set_failing_since(hook, next);
        }
    }
    let now = crate::clock::now_ms();
    for hook in gone_hooks(records) {
        disable(w, hook, DisabledReason::Gone, now)?;
    }
    let events = exhausted_events(records, now);
    if !events.is_empty() {
        let refs: Vec<&NewEvent> = events.iter().collect();
        enqueue_events_in(w, &refs, Lease::default())?;
    }
    Ok(())
}

/// Disables `hook_id` if it is enabled, storing why, and queues its `Hook.Disabled` in the
/// same transaction. Returns whether it did.
pub fn disable(
    w: &mut WriteTx<'_>,
    hook_id: &str,
    reason: DisabledReason,
    now: i64,
) -> StoreResult<bool> {
    let found: Option<(String, Option<i64>)> = w
        .conn
        .prepare_cached("SELECT name, failing_since FROM hooks WHERE id = ?1 AND enabled = 1")?
        .query_row([hook_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    let Some((name, failing_since)) = found else {
        return Ok(false);
    };
    w.conn
        .prepare_cached("UPDATE hooks SET enabled = 0, disabled_reason = ?1 WHERE id = ?2")?
        .execute((reason.message(), hook_id))?;
    super::hooks::park(w, hook_id, false)?;
    w.hooks.clear();
    let event = disabled_event(hook_id, &name, reason, failing_since, now);
    enqueue_events_in(w, &[&event], Lease::default())?;
    tracing::warn!(hook_id, reason = reason.message(), "hook disabled");
    Ok(true)
}

/// Disables every enabled hook failing since `before` or earlier; returns their ids.
pub fn disable_failing(w: &mut WriteTx<'_>, before: i64, now: i64) -> StoreResult<Vec<String>> {
    let ids: Vec<String> = w
        .conn
        .prepare_cached("SELECT id FROM hooks WHERE enabled = 1 AND failing_since <= ?1")?
        .query_map([before], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in &ids {
        disable(w, id, DisabledReason::Failing, now)?;
    }
    Ok(ids)
}
