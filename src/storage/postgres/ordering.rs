//! Per-user ordering on PostgreSQL (see [`crate::storage::ordering`] for the rules). Several
//! nodes change one line at once, so each line has a row in `delivery_lines` counting its
//! queued deliveries, and every step that adds to a line or ends its head changes that count
//! first:
//!
//! - an enqueue (and a recovery or replay step) adds with `INSERT … ON CONFLICT DO UPDATE`,
//!   which waits for a transaction that changed the row and then reads the committed count,
//!   in the same statement: a delivery is the head only if the line counted none before it;
//! - the record that ends a head takes one off and then, in a second statement of the same
//!   transaction (a fresh snapshot, taken after any enqueue that held the row committed), lets
//!   the line's oldest held delivery go ([`next_in_line`]).
//!
//! So a line's count and rows change together, and what one transaction decides about a line,
//! the next one to touch it sees.

use super::CHANNEL;
use crate::storage::health::PARK_MS;
use crate::storage::ordering::HELD_MS;
use crate::storage::StoreResult;
use sqlx::PgConnection;

/// For each line of `hook_ids[i]`, `keys[i]` whose head may have ended: drops the line's count
/// row once it is empty, and lets its first held delivery go (the first inserted: inserts
/// into one line take turns on its count row, so `seq` follows their commits) when no queued
/// row is free: due at its creation time, or when its hook's pause ends, or parked if its
/// hook is disabled. Every node hears of it. Run inside the transaction that changed the
/// lines' counts, after that change.
///
/// The hooks are read `FOR SHARE` first, in a statement of their own: an enable or disable
/// committing meanwhile is waited for and seen, so a line's next is never parked on an
/// enabled hook (nor left due on a disabled one) by a stale read.
pub(super) async fn next_in_line(
    conn: &mut PgConnection,
    hook_ids: &[&str],
    keys: &[&str],
) -> StoreResult<()> {
    if hook_ids.is_empty() {
        return Ok(());
    }
    sqlx::query("SELECT 1 FROM hooks WHERE id = ANY($1) ORDER BY id FOR SHARE")
        .bind(hook_ids)
        .execute(&mut *conn)
        .await?;
    sqlx::query(
        "WITH p AS (SELECT DISTINCT * FROM UNNEST($1::text[], $2::text[]) AS p(hook_id, k)), \
         gone AS ( \
           DELETE FROM delivery_lines l USING p \
           WHERE l.hook_id = p.hook_id AND l.ordering_key = p.k AND l.queued <= 0 \
         ), f AS ( \
           SELECT DISTINCT ON (x.hook_id, x.ordering_key) x.id FROM p \
           JOIN deliveries x ON x.hook_id = p.hook_id AND x.ordering_key = p.k \
           WHERE x.state = 0 AND x.due_at >= $3 \
             AND NOT EXISTS (SELECT 1 FROM deliveries y WHERE y.hook_id = x.hook_id \
               AND y.ordering_key = x.ordering_key AND y.state = 0 AND y.due_at < $3) \
           ORDER BY x.hook_id, x.ordering_key, x.seq \
         ), u AS ( \
           UPDATE deliveries d SET due_at = CASE WHEN h.enabled \
             THEN GREATEST(d.due_at - $3, COALESCE(h.paused_until, 0)) ELSE d.due_at - $3 + $4 END \
           FROM f, hooks h WHERE d.id = f.id AND h.id = d.hook_id AND d.state = 0 \
             AND d.due_at >= $3 \
           RETURNING 1 \
         ) \
         SELECT pg_notify($5, '') WHERE EXISTS (SELECT 1 FROM u)",
    )
    .bind(hook_ids)
    .bind(keys)
    .bind(HELD_MS)
    .bind(PARK_MS)
    .bind(CHANNEL)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Counts deliveries just queued held (a recovery or replay step) into their lines: `ids` are
/// the rows, all of hook `hook_id`; returns the lines they joined, to settle with
/// [`next_in_line`] in the same transaction.
pub(super) async fn join_lines(
    conn: &mut PgConnection,
    hook_id: &str,
    ids: &[String],
) -> StoreResult<Vec<String>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_scalar(
        "INSERT INTO delivery_lines (hook_id, ordering_key, queued) \
         SELECT $1, ordering_key, count(*) FROM deliveries \
         WHERE id = ANY($2) AND ordering_key IS NOT NULL GROUP BY ordering_key \
         ORDER BY ordering_key \
         ON CONFLICT (hook_id, ordering_key) \
           DO UPDATE SET queued = delivery_lines.queued + excluded.queued \
         RETURNING ordering_key",
    )
    .bind(hook_id)
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?)
}
