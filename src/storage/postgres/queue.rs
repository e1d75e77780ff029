//! The delivery queue on PostgreSQL: enqueue, claim, record, release. Rows go in and out in
//! batches through `UNNEST` of arrays, one statement per step, so a batch costs one round trip
//! whatever its size.

use super::{TargetCache, CHANNEL};
use crate::domain::id::new_id;
use crate::domain::payload::{delivery_body, subject_user};
use crate::storage::health::latest_outcomes;
use crate::storage::ordering::HELD_MS;
use crate::storage::previous_key;
use crate::storage::{
    AttemptRecord, BlockingCallLog, ClaimRequest, ClaimedDelivery, Enqueued, Lease, NewEvent,
    NextStep, StoreError, StoreResult,
};
use sqlx::{PgConnection, PgPool, Row};

const STATE_QUEUED: i16 = 0;
const STATE_SUCCEEDED: i16 = 1;
const STATE_FAILED: i16 = 2;
const STATE_SKIPPED: i16 = 3;

/// The enqueue of a batch of events, in one statement (one round trip; in autocommit, one
/// commit): store the events, find for each the enabled hooks subscribed to it (Logto's rule:
/// `events` when it has any, else the legacy `event`) as the rows are now, insert one delivery
/// per pair (an event's first `lease_up_to` leased until `created_at + lease_ms`, the rest due
/// at `created_at`), notify [`CHANNEL`] if any is left due, and return the deliveries, with
/// what sending a leased one takes, in event order.
///
/// The subscribed hooks are read `FOR KEY SHARE`: a hook being deleted meanwhile waits for this
/// statement, and then deletes the deliveries it made too, so none is left for a hook that
/// no longer exists.
///
/// A delivery to a hook that orders per user ([`crate::storage::ordering`]) counts itself
/// into its line's row in `delivery_lines` (`ON CONFLICT DO UPDATE`, which waits for a
/// concurrent change of the row and reads the committed count): it is held unless the line
/// counted nothing before it. The hook's `config` is parsed for `ordering` only when the text
/// names it. A hook paused by its endpoint (`hooks.paused_until`) gets its deliveries due
/// when the pause ends, none leased.
///
/// A delivery's id is its event's time prefix (so rows land at the right edge of the index,
/// as `domain::id` explains) and 12 hex digits of a hash of the event and hook ids: unique
/// per (event, hook) pair, as a delivery is, without a round trip to learn the hooks first.
const ENQUEUE: &str = "\
WITH ev AS ( \
  SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::bigint[], $5::bigint[], $6::bigint[], \
    $8::text[]) \
    WITH ORDINALITY AS ev(id, name, payload, created_at, lease_up_to, lease_ms, user_id, ord) \
), e AS ( \
  INSERT INTO events (id, name, payload, created_at, user_id) \
  SELECT id, name, payload, created_at, user_id FROM ev ORDER BY ord \
), subs AS ( \
  SELECT ev.ord, ev.id AS event_id, ev.name, ev.created_at, ev.lease_up_to, ev.lease_ms, \
    h.id, h.version, h.config, h.signing_key, h.previous_signing_key, \
    h.previous_key_expires_at, h.created_at AS hook_created, \
    GREATEST(ev.created_at, COALESCE(h.paused_until, 0)) AS due, \
    CASE WHEN ev.user_id IS NOT NULL AND strpos(h.config, '\"ordering\"') > 0 \
      AND h.config::jsonb ->> 'ordering' = 'perUser' THEN ev.user_id END AS okey \
  FROM ev JOIN hooks h ON h.enabled AND \
    CASE WHEN cardinality(h.events) > 0 THEN ev.name = ANY(h.events) ELSE h.event = ev.name END \
  FOR KEY SHARE OF h \
), s0 AS ( \
  SELECT subs.*, row_number() OVER (PARTITION BY ord ORDER BY hook_created, id) AS n, \
    row_number() OVER (PARTITION BY id, okey ORDER BY ord) AS kn, \
    count(*) OVER (PARTITION BY id, okey) AS kc \
  FROM subs \
), c AS ( \
  INSERT INTO delivery_lines (hook_id, ordering_key, queued) \
  SELECT id, okey, count(*) FROM s0 WHERE okey IS NOT NULL GROUP BY id, okey ORDER BY id, okey \
  ON CONFLICT (hook_id, ordering_key) DO UPDATE SET queued = delivery_lines.queued + excluded.queued \
  RETURNING hook_id, ordering_key, queued \
), s1 AS ( \
  SELECT s0.*, s0.okey IS NOT NULL AND c.queued - s0.kc + s0.kn > 1 AS held \
  FROM s0 LEFT JOIN c ON c.hook_id = s0.id AND c.ordering_key = s0.okey \
), s AS ( \
  SELECT s1.*, NOT s1.held AND s1.n <= s1.lease_up_to AND s1.due = s1.created_at AS leased \
  FROM s1 \
), d AS ( \
  INSERT INTO deliveries (id, event_id, hook_id, event_name, due_at, created_at, updated_at, \
    ordering_key) \
  SELECT substr(s.event_id, 1, 9) || substr(md5(s.event_id || s.id), 1, 12), s.event_id, s.id, \
    s.name, CASE WHEN s.held THEN s.created_at + $9 \
      WHEN s.leased THEN s.created_at + s.lease_ms ELSE s.due END, \
    s.created_at, s.created_at, s.okey \
  FROM s ORDER BY s.ord, s.n \
  RETURNING id, event_id, hook_id \
), w AS ( \
  SELECT pg_notify($7, '') FROM s \
  WHERE NOT s.leased AND NOT s.held AND s.due = s.created_at LIMIT 1 \
) \
SELECT s.ord, d.id, d.hook_id, s.leased, s.version, s.okey, \
  s.held OR s.due > s.created_at AS waiting, \
  CASE WHEN s.leased THEN s.config END AS config, \
  CASE WHEN s.leased THEN s.signing_key END AS signing_key, \
  s.previous_signing_key, s.previous_key_expires_at \
FROM d JOIN s ON s.event_id = d.event_id AND s.id = d.hook_id \
CROSS JOIN (SELECT count(*) FROM w) AS notified \
ORDER BY s.ord, s.n";

/// Stores `events` and their deliveries on `conn`, in one statement: in autocommit mode it
/// commits by itself, or it runs inside the caller's transaction (an identity change's, so
/// that the change and its events commit together). Each event's `Lease` says how many of
/// its deliveries to insert leased and return, ready to send; if any are left due, every node
/// hears of it once the statement commits.
pub(crate) async fn enqueue_in(
    conn: &mut PgConnection,
    targets: &TargetCache,
    events: &[(&NewEvent, Lease)],
) -> StoreResult<Vec<Enqueued>> {
    let n = events.len();
    let mut payloads = Vec::with_capacity(n);
    for (event, _) in events {
        payloads.push(
            serde_json::to_string(&event.payload)
                .map_err(|e| StoreError::Corrupt(format!("event payload: {e}")))?,
        );
    }
    let ids: Vec<&str> = events.iter().map(|(e, _)| e.id.as_str()).collect();
    let names: Vec<&str> = events.iter().map(|(e, _)| e.event.name()).collect();
    let created: Vec<i64> = events.iter().map(|(e, _)| e.created_at).collect();
    let up_to: Vec<i64> = events
        .iter()
        .map(|(_, l)| i64::try_from(l.up_to).unwrap_or(i64::MAX))
        .collect();
    let lease_ms: Vec<i64> = events.iter().map(|(_, l)| l.lease_ms).collect();
    let users: Vec<Option<&str>> = events
        .iter()
        .map(|(e, _)| subject_user(e.event, &e.payload))
        .collect();
    let rows = sqlx::query(ENQUEUE)
        .bind(&ids)
        .bind(&names)
        .bind(&payloads)
        .bind(&created)
        .bind(&up_to)
        .bind(&lease_ms)
        .bind(CHANNEL)
        .bind(&users)
        .bind(HELD_MS)
        .fetch_all(&mut *conn)
        .await?;
    let mut results: Vec<Enqueued> = (0..n).map(|_| Enqueued::default()).collect();
    for row in rows {
        let ord: i64 = row.try_get("ord")?;
        let i = usize::try_from(ord - 1)
            .ok()
            .filter(|i| *i < n)
            .ok_or_else(|| StoreError::Corrupt(format!("enqueue answered for event {ord}")))?;
        let (event, _) = events[i];
        let enqueued = &mut results[i];
        enqueued.deliveries += 1;
        if row.try_get::<bool, _>("waiting")? {
            enqueued.waiting += 1;
        }
        if !row.try_get::<bool, _>("leased")? {
            continue;
        }
        let hook_id: String = row.try_get("hook_id")?;
        let (config, key): (String, String) = (row.try_get("config")?, row.try_get("signing_key")?);
        enqueued.leased.push(ClaimedDelivery {
            id: row.try_get("id")?,
            // The lease's end, as the row holds it: the record's fence (see `record_attempts`).
            row: event.created_at + events[i].1.lease_ms,
            event_id: event.id.clone(),
            event_name: names[i].to_owned(),
            body: delivery_body(&payloads[i], &hook_id),
            transformed: false,
            request_headers: None,
            attempts: 0,
            schedule_start: 0,
            created_at: event.created_at,
            ordering_key: row.try_get("okey")?,
            target: targets.get(
                &hook_id,
                row.try_get("version")?,
                &config,
                &key,
                previous_key(
                    row.try_get("previous_signing_key")?,
                    row.try_get("previous_key_expires_at")?,
                ),
            )?,
            hook_id,
        });
    }
    Ok(results)
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
           d.schedule_start, d.ordering_key, d.request_body, d.request_headers, \
           e.payload, h.version, h.config, h.signing_key, h.previous_signing_key, \
           h.previous_key_expires_at, p.due_at AS was_due",
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
        // What its transform made, once it ran; else the event's payload with `hookId`.
        let stored: Option<String> = row.try_get("request_body")?;
        let transformed = stored.is_some();
        let body = match stored {
            Some(body) => body,
            None => delivery_body(&row.try_get::<String, _>("payload")?, &hook_id),
        };
        let target = targets.get(
            &hook_id,
            row.try_get("version")?,
            row.try_get("config")?,
            row.try_get("signing_key")?,
            previous_key(
                row.try_get("previous_signing_key")?,
                row.try_get("previous_key_expires_at")?,
            ),
        )?;
        let was_due: i64 = row.try_get("was_due")?;
        let seq: i64 = row.try_get("seq")?;
        out.push((
            (was_due, seq),
            ClaimedDelivery {
                // The lease's end, as the row now holds it: the record's fence.
                row: req.now + req.lease_ms,
                id: row.try_get("id")?,
                event_id: row.try_get("event_id")?,
                event_name: row.try_get("event_name")?,
                body,
                transformed,
                request_headers: row.try_get("request_headers")?,
                hook_id,
                attempts: u32::try_from(row.try_get::<i32, _>("attempts")?).unwrap_or(0),
                schedule_start: u32::try_from(row.try_get::<i32, _>("schedule_start")?)
                    .unwrap_or(0),
                created_at: row.try_get("created_at")?,
                ordering_key: row.try_get("ordering_key")?,
                target,
            },
        ));
    }
    // RETURNING has no order: send in queue order.
    out.sort_by_key(|(order, _)| *order);
    Ok(out.into_iter().map(|(_, d)| d).collect())
}

/// Stores what transforms made (`AttemptRecord::transformed`) on their deliveries, outside
/// the record's fence: the bytes were sent, so they are the delivery's even when a manual
/// retry or another node's takeover moved the row meanwhile. The first stored wins.
async fn store_transformed(conn: &mut PgConnection, records: &[AttemptRecord]) -> StoreResult<()> {
    let made: Vec<_> = records
        .iter()
        .filter_map(|r| Some((r.delivery_id.as_str(), r.transformed.as_ref()?)))
        .collect();
    if made.is_empty() {
        return Ok(());
    }
    let ids: Vec<&str> = made.iter().map(|(id, _)| *id).collect();
    let bodies: Vec<&str> = made.iter().map(|(_, t)| t.body.as_str()).collect();
    let headers: Vec<Option<&str>> = made.iter().map(|(_, t)| t.headers.as_deref()).collect();
    sqlx::query(
        "UPDATE deliveries d SET request_body = t.body, request_headers = t.headers \
         FROM UNNEST($1::text[], $2::text[], $3::text[]) AS t(id, body, headers) \
         WHERE d.id = t.id AND d.request_body IS NULL",
    )
    .bind(&ids)
    .bind(&bodies)
    .bind(&headers)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records attempts and moves their deliveries on, in one statement. Each record is fenced by
/// its lease: it moves the delivery on only if the row still holds the lease its claim wrote
/// (`due_at` = the lease's end, carried as [`AttemptRecord::delivery_row`]). A node whose
/// lease ran out, and whose delivery another node has claimed since, so cannot undo that
/// claim; its attempt is logged all the same. A delivery deleted with its hook meanwhile gets
/// no log row. The same statement keeps each hook's failing streak (`hooks.failing_since`,
/// written only when it changes) and takes the heads that left the queue off their lines'
/// counts; a second statement then lets the next of each line go (`ordering::next_in_line`),
/// so a caller whose records end a head ([`ends_heads`]) runs this in a transaction. What
/// transforms made is stored by a statement of its own, unfenced ([`store_transformed`]), only
/// when a record carries some.
pub(super) async fn record_attempts(
    conn: &mut PgConnection,
    records: &[AttemptRecord],
) -> StoreResult<()> {
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
    let mut lease = Vec::with_capacity(n);
    let mut script = Vec::with_capacity(n);
    for r in records {
        let (state, due_at) = match r.next {
            NextStep::Succeeded => (STATE_SUCCEEDED, r.at),
            NextStep::RetryAt(t) => (STATE_QUEUED, t),
            NextStep::GaveUp | NextStep::Gone => (STATE_FAILED, r.at),
            NextStep::Skipped => (STATE_SKIPPED, r.at),
        };
        delivery_ids.push(r.delivery_id.as_str());
        states.push(state);
        due.push(due_at);
        attempt.push(i32::try_from(r.attempt).unwrap_or(i32::MAX));
        at.push(r.at);
        ids.push(r.id.as_str());
        hook_ids.push(r.hook_id.as_str());
        names.push(r.event_name.as_str());
        success.push(r.next.is_success());
        status.push(r.response_status.map(i32::from));
        body.push(r.response_body.as_deref());
        error.push(r.error.as_deref());
        duration.push(r.duration_ms);
        lease.push(r.delivery_row);
        script.push(r.script.as_deref());
    }
    let (streak_hooks, streak_failed): (Vec<&str>, Vec<Option<i64>>) =
        latest_outcomes(records).into_iter().unzip();
    let (heads, keys): (Vec<&str>, Vec<&str>) = records
        .iter()
        .filter(|r| !matches!(r.next, NextStep::RetryAt(_)))
        .filter_map(|r| Some((r.hook_id.as_str(), r.ordering_key.as_deref()?)))
        .unzip();
    if !heads.is_empty() {
        // The lines' count rows, locked in one order (as enqueues lock them), before the
        // statement below takes them in whatever order its plan has: two transactions that
        // lock the same lines never wait on each other in a circle.
        sqlx::query(
            "SELECT 1 FROM delivery_lines \
             WHERE (hook_id, ordering_key) IN (SELECT * FROM UNNEST($1::text[], $2::text[])) \
             ORDER BY hook_id, ordering_key FOR UPDATE",
        )
        .bind(&heads)
        .bind(&keys)
        .execute(&mut *conn)
        .await?;
    }
    sqlx::query(
        "WITH r AS ( \
           SELECT * FROM UNNEST($1::text[], $2::smallint[], $3::bigint[], $4::int[], $5::bigint[], \
             $14::bigint[], $10::int[], $13::bigint[]) \
             AS r(id, state, due_at, attempts, at, lease_until, status, duration) \
         ), u AS ( \
           UPDATE deliveries d SET state = r.state, \
             due_at = CASE WHEN d.due_at >= $17 AND r.state = 0 THEN r.due_at + $17 \
               ELSE r.due_at END, \
             attempts = r.attempts, updated_at = r.at, last_status = r.status, \
             last_duration_ms = r.duration \
           FROM r WHERE d.id = r.id AND d.state = 0 \
             AND d.due_at IN (r.lease_until, r.lease_until + $17) \
           RETURNING d.hook_id, d.ordering_key, d.state \
         ), l AS ( \
           UPDATE delivery_lines l SET queued = l.queued - x.n \
           FROM (SELECT hook_id, ordering_key, count(*) AS n FROM u \
             WHERE ordering_key IS NOT NULL AND state <> 0 GROUP BY 1, 2) x \
           WHERE l.hook_id = x.hook_id AND l.ordering_key = x.ordering_key \
         ), o AS ( \
           SELECT * FROM UNNEST($15::text[], $16::bigint[]) AS o(hook_id, failed_at) \
         ), f AS ( \
           UPDATE hooks h SET failing_since = \
             CASE WHEN o.failed_at IS NULL THEN NULL ELSE COALESCE(h.failing_since, o.failed_at) END \
           FROM o WHERE h.id = o.hook_id AND h.failing_since IS DISTINCT FROM \
             (CASE WHEN o.failed_at IS NULL THEN NULL ELSE COALESCE(h.failing_since, o.failed_at) END) \
         ) \
         INSERT INTO attempts (id, delivery_id, hook_id, event_name, attempt, success, \
           response_status, response_body, error, duration_ms, created_at, script) \
         SELECT a.id, a.delivery_id, a.hook_id, a.event_name, a.attempt, a.success, a.status, \
           a.body, a.error, a.duration, a.at, a.script \
         FROM UNNEST($6::text[], $1::text[], $7::text[], $8::text[], $4::int[], $9::bool[], \
           $10::int[], $11::text[], $12::text[], $13::bigint[], $5::bigint[], $18::text[]) \
           AS a(id, delivery_id, hook_id, event_name, attempt, success, status, body, error, \
             duration, at, script) \
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
    .bind(&lease)
    .bind(&streak_hooks)
    .bind(&streak_failed)
    // A hook disabled while its delivery was in flight has parked the row (its lease end
    // plus PARK_MS): the record still applies, and a retry stays parked.
    .bind(crate::storage::health::PARK_MS)
    .bind(&script)
    .execute(&mut *conn)
    .await?;
    store_transformed(conn, records).await?;
    super::ordering::next_in_line(conn, &heads, &keys).await
}

/// Whether recording `records` ends the head of a line (a delivery with an ordering key that
/// leaves the queue): then [`record_attempts`] must run in a transaction.
pub(super) fn ends_heads(records: &[AttemptRecord]) -> bool {
    records
        .iter()
        .any(|r| r.ordering_key.is_some() && !matches!(r.next, NextStep::RetryAt(_)))
}

/// Ends leases early: the deliveries are due at `now` (or when their hook's pause ends), and
/// every node is told.
pub(super) async fn release(pool: &PgPool, delivery_ids: &[String], now: i64) -> StoreResult<()> {
    if delivery_ids.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "WITH u AS (UPDATE deliveries d SET due_at = \
           CASE WHEN d.due_at >= $4 THEN $2 + $4 \
             ELSE GREATEST($2, COALESCE(h.paused_until, 0)) END \
           FROM hooks h WHERE d.id = ANY($1) AND d.state = 0 AND h.id = d.hook_id RETURNING 1) \
         SELECT pg_notify($3, '') WHERE EXISTS (SELECT 1 FROM u)",
    )
    .bind(delivery_ids)
    .bind(now)
    .bind(CHANNEL)
    // A parked row (its hook disabled meanwhile) stays parked.
    .bind(crate::storage::health::PARK_MS)
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
               created_at, updated_at, last_status, last_duration_ms) \
               VALUES ($5, $1, $6, $2, $7, 1, $4, $4, $4, $10, $13)) \
             INSERT INTO attempts (id, delivery_id, hook_id, event_name, attempt, success, \
               response_status, response_body, error, duration_ms, created_at, script) \
             VALUES ($8, $5, $6, $2, 1, $9, $10, $11, $12, $13, $4, $14)",
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
        .bind(&c.script)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// See `Store::pause_hook`: the pause goes in the hook's row (enqueues on every node read it)
/// and the hook's due, unleased rows (a leased row's `due_at` is its lease's end, past `now`)
/// are due at `until`.
pub(super) async fn pause_hook(
    pool: &PgPool,
    hook_id: &str,
    until: i64,
    now: i64,
) -> StoreResult<()> {
    sqlx::query(
        "WITH h AS (UPDATE hooks SET paused_until = GREATEST(COALESCE(paused_until, 0), $2) \
           WHERE id = $1) \
         UPDATE deliveries SET due_at = $2 WHERE state = 0 AND hook_id = $1 AND due_at <= $3",
    )
    .bind(hook_id)
    .bind(until)
    .bind(now)
    .execute(pool)
    .await?;
    Ok(())
}
