//! Hook health on PostgreSQL (see `storage::health`): disabling a hook with its
//! `Hook.Disabled` event, and the events a record batch fires, in the transaction that
//! causes them. (Failing streaks are kept by the record statement itself, `queue.rs`.)

use super::queue::enqueue_in;
use super::{PostgresStore, TargetCache};
use crate::domain::payload::DisabledReason;
use crate::storage::health::{disabled_event, exhausted_events, gone_hooks};
use crate::storage::{AttemptRecord, Lease, NewEvent, NextStep, StoreResult};
use sqlx::{PgConnection, Row};

/// Whether a batch needs more than its record statement: a delivery's schedule ended (its
/// `Delivery.Exhausted`), or an endpoint is gone (its hook disabled).
pub(super) fn has_consequences(records: &[AttemptRecord]) -> bool {
    records
        .iter()
        .any(|r| matches!(r.next, NextStep::GaveUp | NextStep::Gone))
}

/// The hooks a batch disables and the events it fires, inside the caller's transaction.
pub(super) async fn after_records(
    conn: &mut PgConnection,
    targets: &TargetCache,
    records: &[AttemptRecord],
) -> StoreResult<()> {
    // Only the records that moved their delivery on: one fenced out (its lease ended, a
    // retry moved it, another node took it) did not end anything.
    let ended: Vec<&str> = records
        .iter()
        .filter(|r| matches!(r.next, NextStep::GaveUp | NextStep::Gone))
        .map(|r| r.delivery_id.as_str())
        .collect();
    let failed: Vec<String> =
        sqlx::query_scalar("SELECT id FROM deliveries WHERE id = ANY($1) AND state = 2")
            .bind(&ended)
            .fetch_all(&mut *conn)
            .await?;
    let records: Vec<AttemptRecord> = records
        .iter()
        .filter(|r| failed.contains(&r.delivery_id))
        .cloned()
        .collect();
    let records = records.as_slice();
    let now = crate::clock::now_ms();
    let mut events = exhausted_events(records, now);
    for hook in gone_hooks(records) {
        events.extend(disable(conn, hook, DisabledReason::Gone, now).await?);
    }
    queue_events(conn, targets, &events).await
}

async fn queue_events(
    conn: &mut PgConnection,
    targets: &TargetCache,
    events: &[NewEvent],
) -> StoreResult<()> {
    if events.is_empty() {
        return Ok(());
    }
    let with_leases: Vec<(&NewEvent, Lease)> =
        events.iter().map(|e| (e, Lease::default())).collect();
    enqueue_in(conn, targets, &with_leases).await?;
    Ok(())
}

/// Disables `hook_id` if it is enabled, storing why; its `Hook.Disabled` event, for the
/// caller to queue in the same transaction.
async fn disable(
    conn: &mut PgConnection,
    hook_id: &str,
    reason: DisabledReason,
    now: i64,
) -> StoreResult<Option<NewEvent>> {
    let row = sqlx::query(
        "UPDATE hooks SET enabled = false, disabled_reason = $2, version = version + 1 \
         WHERE id = $1 AND enabled RETURNING name, failing_since",
    )
    .bind(hook_id)
    .bind(reason.message())
    .fetch_optional(&mut *conn)
    .await?;
    let Some(row) = row else {
        return Ok(None);
    };
    sqlx::query(&crate::storage::health::park_sql(false, "$1"))
        .bind(hook_id)
        .execute(&mut *conn)
        .await?;
    tracing::warn!(hook_id, reason = reason.message(), "hook disabled");
    Ok(Some(disabled_event(
        hook_id,
        &row.try_get::<String, _>("name")?,
        reason,
        row.try_get("failing_since")?,
        now,
    )))
}

impl PostgresStore {
    /// See `Store::disable_failing_hooks`. `SKIP LOCKED`: nodes running the pass at once
    /// disable different hooks, each once.
    pub(super) async fn disable_failing_here(
        &self,
        before: i64,
        now: i64,
    ) -> StoreResult<Vec<String>> {
        let mut tx = self.pool.begin().await?;
        let ids: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM hooks WHERE enabled AND failing_since <= $1 FOR UPDATE SKIP LOCKED",
        )
        .bind(before)
        .fetch_all(&mut *tx)
        .await?;
        let mut events = Vec::new();
        for id in &ids {
            events.extend(disable(&mut tx, id, DisabledReason::Failing, now).await?);
        }
        queue_events(&mut tx, &self.targets, &events).await?;
        tx.commit().await?;
        Ok(ids)
    }
}
