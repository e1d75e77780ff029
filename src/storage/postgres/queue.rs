//! The delivery queue on PostgreSQL: enqueue, claim, record, release. Rows go in and out in
//! batches through `UNNEST` of arrays, one statement per step, so a batch costs one round trip
//! whatever its size.

use super::{TargetCache, CHANNEL};
use crate::domain::event::HookEvent;
use crate::domain::id::new_id;
use crate::domain::payload::delivery_body;
use crate::storage::{
    AttemptRecord, BlockingCallLog, ClaimRequest, ClaimedDelivery, Enqueued, Lease, NewEvent,
    NextStep, StoreError, StoreResult,
};
use sqlx::{PgConnection, PgPool, Row};
use std::collections::HashMap;

const STATE_QUEUED: i16 = 0;
const STATE_SUCCEEDED: i16 = 1;
const STATE_FAILED: i16 = 2;

/// An enabled hook subscribed to an event, as its row is at this transaction.
struct Subscriber {
    id: String,
    version: i64,
    config: String,
    signing_key: String,
}

/// Stores `events` and their deliveries on `conn`, inside the caller's transaction (an
/// identity change's, so that the change and its events commit together). Up to
/// `lease.up_to` deliveries are inserted leased (`due_at` at the lease's end) and returned,
/// ready to send; if any are left due, the transaction notifies [`CHANNEL`], which every node
/// hears once it commits.
pub(crate) async fn enqueue_in(
    conn: &mut PgConnection,
    targets: &TargetCache,
    events: &[&NewEvent],
    lease: Lease,
) -> StoreResult<Vec<Enqueued>> {
    let mut subscribers: HashMap<HookEvent, Vec<Subscriber>> = HashMap::new();
    for event in events {
        if subscribers.contains_key(&event.event) {
            continue;
        }
        // Logto's rule: `events` when it has any, else the legacy single `event`.
        let rows = sqlx::query(
            "SELECT id, version, config, signing_key FROM hooks WHERE enabled AND \
             CASE WHEN cardinality(events) > 0 THEN $1 = ANY(events) ELSE event = $1 END \
             ORDER BY created_at, id",
        )
        .bind(event.event.name())
        .fetch_all(&mut *conn)
        .await?;
        let found = rows
            .iter()
            .map(|r| {
                Ok(Subscriber {
                    id: r.try_get("id")?,
                    version: r.try_get("version")?,
                    config: r.try_get("config")?,
                    signing_key: r.try_get("signing_key")?,
                })
            })
            .collect::<Result<Vec<_>, sqlx::Error>>()?;
        subscribers.insert(event.event, found);
    }

    let mut grant = lease.up_to;
    let mut queued_due = false;
    let mut ev = EventRows::default();
    let mut dl = DeliveryRows::default();
    let mut results = Vec::with_capacity(events.len());
    for event in events {
        let name = event.event.name();
        let payload = serde_json::to_string(&event.payload)
            .map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?;
        let hooks = subscribers.get(&event.event).map_or(&[][..], Vec::as_slice);
        let mut enqueued = Enqueued {
            deliveries: hooks.len(),
            leased: Vec::new(),
        };
        for hook in hooks {
            let id = new_id();
            let leased = grant > 0;
            dl.ids.push(id.clone());
            dl.event_ids.push(event.id.clone());
            dl.hook_ids.push(hook.id.clone());
            dl.names.push(name);
            dl.due.push(if leased {
                event.created_at + lease.lease_ms
            } else {
                event.created_at
            });
            dl.created.push(event.created_at);
            if leased {
                grant -= 1;
                enqueued.leased.push(ClaimedDelivery {
                    id,
                    row: 0,
                    event_id: event.id.clone(),
                    hook_id: hook.id.clone(),
                    event_name: name.to_owned(),
                    body: delivery_body(&payload, &hook.id),
                    attempts: 0,
                    created_at: event.created_at,
                    target: targets.get(&hook.id, hook.version, &hook.config, &hook.signing_key)?,
                });
            } else {
                queued_due = true;
            }
        }
        ev.ids.push(event.id.clone());
        ev.names.push(name);
        ev.payloads.push(payload);
        ev.created.push(event.created_at);
        results.push(enqueued);
    }

    sqlx::query(
        "INSERT INTO events (id, name, payload, created_at) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[])",
    )
    .bind(&ev.ids)
    .bind(&ev.names)
    .bind(&ev.payloads)
    .bind(&ev.created)
    .execute(&mut *conn)
    .await?;
    if !dl.ids.is_empty() {
        sqlx::query(
            "INSERT INTO deliveries (id, event_id, hook_id, event_name, due_at, created_at, updated_at) \
             SELECT i, e, h, n, d, c, c \
             FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[]) \
               AS t(i, e, h, n, d, c)",
        )
        .bind(&dl.ids)
        .bind(&dl.event_ids)
        .bind(&dl.hook_ids)
        .bind(&dl.names)
        .bind(&dl.due)
        .bind(&dl.created)
        .execute(&mut *conn)
        .await?;
    }
    if queued_due {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(CHANNEL)
            .execute(&mut *conn)
            .await?;
    }
    Ok(results)
}

#[derive(Default)]
struct EventRows {
    ids: Vec<String>,
    names: Vec<&'static str>,
    payloads: Vec<String>,
    created: Vec<i64>,
}

#[derive(Default)]
struct DeliveryRows {
    ids: Vec<String>,
    event_ids: Vec<String>,
    hook_ids: Vec<String>,
    names: Vec<&'static str>,
    due: Vec<i64>,
    created: Vec<i64>,
}

/// Claims due deliveries in one statement: lock up to a scan's worth of due rows of enabled,
/// not busy hooks in due order, skipping rows another node is claiming (`SKIP LOCKED`: no
/// claimer waits for another, none takes the same row), keep at most `per_hook` per hook and
/// `limit` in all, and push their `due_at` to the lease's end (the lease, in the row).
pub(super) async fn claim_due(
    pool: &PgPool,
    targets: &TargetCache,
    req: &ClaimRequest,
) -> StoreResult<Vec<ClaimedDelivery>> {
    if req.limit == 0 {
        return Ok(Vec::new());
    }
    // As on SQLite: how many eligible rows to look at before giving up on filling `limit`
    // (the per-hook cap can leave rows behind).
    let scan = (i64::from(req.limit) * 4).max(64);
    let rows = sqlx::query(
        "WITH candidates AS ( \
           SELECT d.id, d.hook_id, d.due_at, d.seq FROM deliveries d \
           WHERE d.state = 0 AND d.due_at <= $1 AND NOT (d.hook_id = ANY($2)) \
             AND EXISTS (SELECT 1 FROM hooks h WHERE h.id = d.hook_id AND h.enabled) \
           ORDER BY d.due_at, d.seq LIMIT $3 \
           FOR UPDATE SKIP LOCKED \
         ), picked AS ( \
           SELECT id, due_at, seq FROM ( \
             SELECT id, due_at, seq, \
               row_number() OVER (PARTITION BY hook_id ORDER BY due_at, seq) AS n \
             FROM candidates) c \
           WHERE n <= $4 ORDER BY due_at, seq LIMIT $5 \
         ) \
         UPDATE deliveries d SET due_at = $6 \
         FROM picked p, events e, hooks h \
         WHERE d.id = p.id AND e.id = d.event_id AND h.id = d.hook_id \
         RETURNING d.seq, d.id, d.event_id, d.hook_id, d.event_name, d.attempts, d.created_at, \
           e.payload, h.version, h.config, h.signing_key, p.due_at AS was_due",
    )
    .bind(req.now)
    .bind(&req.busy_hooks)
    .bind(scan)
    .bind(i64::from(req.per_hook))
    .bind(i64::from(req.limit))
    .bind(req.now + req.lease_ms)
    .fetch_all(pool)
    .await?;
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let hook_id: String = row.try_get("hook_id")?;
        let payload: String = row.try_get("payload")?;
        let target = targets.get(
            &hook_id,
            row.try_get("version")?,
            row.try_get("config")?,
            row.try_get("signing_key")?,
        )?;
        let was_due: i64 = row.try_get("was_due")?;
        out.push((
            was_due,
            ClaimedDelivery {
                row: row.try_get("seq")?,
                id: row.try_get("id")?,
                event_id: row.try_get("event_id")?,
                event_name: row.try_get("event_name")?,
                body: delivery_body(&payload, &hook_id),
                hook_id,
                attempts: u32::try_from(row.try_get::<i32, _>("attempts")?).unwrap_or(0),
                created_at: row.try_get("created_at")?,
                target,
            },
        ));
    }
    // RETURNING has no order: send in queue order.
    out.sort_by_key(|(due, d)| (*due, d.row));
    Ok(out.into_iter().map(|(_, d)| d).collect())
}

/// Records attempts and moves their deliveries on, in one statement. A delivery deleted with
/// its hook meanwhile gets no log row; one another node finished first (after this node's
/// lease ran out) keeps its state, and the attempt is logged all the same.
pub(super) async fn record_attempts(pool: &PgPool, records: &[AttemptRecord]) -> StoreResult<()> {
    if records.is_empty() {
        return Ok(());
    }
    let n = records.len();
    let mut delivery_ids = Vec::with_capacity(n);
    let mut states = Vec::with_capacity(n);
    let mut due = Vec::with_capacity(n);
    let mut attempt = Vec::with_capacity(n);
    let mut at = Vec::with_capacity(n);
    let mut ids = Vec::with_capacity(n);
    let mut hook_ids = Vec::with_capacity(n);
    let mut names = Vec::with_capacity(n);
    let mut success = Vec::with_capacity(n);
    let mut status = Vec::with_capacity(n);
    let mut body = Vec::with_capacity(n);
    let mut error = Vec::with_capacity(n);
    let mut duration = Vec::with_capacity(n);
    for r in records {
        let (state, due_at) = match r.next {
            NextStep::Succeeded => (STATE_SUCCEEDED, r.at),
            NextStep::RetryAt(t) => (STATE_QUEUED, t),
            NextStep::GaveUp => (STATE_FAILED, r.at),
        };
        delivery_ids.push(r.delivery_id.as_str());
        states.push(state);
        due.push(due_at);
        attempt.push(i32::try_from(r.attempt).unwrap_or(i32::MAX));
        at.push(r.at);
        ids.push(r.id.as_str());
        hook_ids.push(r.hook_id.as_str());
        names.push(r.event_name.as_str());
        success.push(r.next == NextStep::Succeeded);
        status.push(r.response_status.map(i32::from));
        body.push(r.response_body.as_deref());
        error.push(r.error.as_deref());
        duration.push(r.duration_ms);
    }
    sqlx::query(
        "WITH r AS ( \
           SELECT * FROM UNNEST($1::text[], $2::smallint[], $3::bigint[], $4::int[], $5::bigint[]) \
             AS r(id, state, due_at, attempts, at) \
         ), u AS ( \
           UPDATE deliveries d SET state = r.state, due_at = r.due_at, attempts = r.attempts, \
             updated_at = r.at \
           FROM r WHERE d.id = r.id AND d.state = 0 \
         ) \
         INSERT INTO attempts (id, delivery_id, hook_id, event_name, attempt, success, \
           response_status, response_body, error, duration_ms, created_at) \
         SELECT a.id, a.delivery_id, a.hook_id, a.event_name, a.attempt, a.success, a.status, \
           a.body, a.error, a.duration, a.at \
         FROM UNNEST($6::text[], $1::text[], $7::text[], $8::text[], $4::int[], $9::bool[], \
           $10::int[], $11::text[], $12::text[], $13::bigint[], $5::bigint[]) \
           AS a(id, delivery_id, hook_id, event_name, attempt, success, status, body, error, \
             duration, at) \
         WHERE EXISTS (SELECT 1 FROM deliveries x WHERE x.id = a.delivery_id)",
    )
    .bind(&delivery_ids)
    .bind(&states)
    .bind(&due)
    .bind(&attempt)
    .bind(&at)
    .bind(&ids)
    .bind(&hook_ids)
    .bind(&names)
    .bind(&success)
    .bind(&status)
    .bind(&body)
    .bind(&error)
    .bind(&duration)
    .execute(pool)
    .await?;
    Ok(())
}

/// Ends leases early: the deliveries are due at `now`, and every node is told.
pub(super) async fn release(pool: &PgPool, delivery_ids: &[String], now: i64) -> StoreResult<()> {
    if delivery_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH u AS (UPDATE deliveries SET due_at = $2 WHERE id = ANY($1) AND state = 0 RETURNING 1) \
         SELECT pg_notify($3, '') WHERE EXISTS (SELECT 1 FROM u)",
    )
    .bind(delivery_ids)
    .bind(now)
    .bind(CHANNEL)
    .execute(pool)
    .await?;
    Ok(())
}

/// Logs blocking calls: an event row (the payload, for the log's request body), a delivery
/// row already finished (so that no claim ever sees it) and its one attempt.
pub(super) async fn record_blocking_calls(
    pool: &PgPool,
    calls: &[BlockingCallLog],
) -> StoreResult<()> {
    let mut tx = pool.begin().await?;
    for c in calls {
        let event_id = new_id();
        let name = c.event.name();
        let payload = serde_json::to_string(&c.payload)
            .map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?;
        let state = if c.success {
            STATE_SUCCEEDED
        } else {
            STATE_FAILED
        };
        sqlx::query(
            "WITH e AS (INSERT INTO events (id, name, payload, created_at) VALUES ($1, $2, $3, $4)), \
             d AS (INSERT INTO deliveries (id, event_id, hook_id, event_name, state, attempts, due_at, \
               created_at, updated_at) VALUES ($5, $1, $6, $2, $7, 1, $4, $4, $4)) \
             INSERT INTO attempts (id, delivery_id, hook_id, event_name, attempt, success, \
               response_status, response_body, error, duration_ms, created_at) \
             VALUES ($8, $5, $6, $2, 1, $9, $10, $11, $12, $13, $4)",
        )
        .bind(&event_id)
        .bind(name)
        .bind(&payload)
        .bind(c.at)
        .bind(&c.delivery_id)
        .bind(&c.hook_id)
        .bind(state)
        .bind(new_id())
        .bind(c.success)
        .bind(c.response_status.map(i32::from))
        .bind(&c.response_body)
        .bind(&c.error)
        .bind(c.duration_ms)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}
