//! Operators' writes to the queue (issue 15), on PostgreSQL: retry one delivery, recover a
//! hook's failed ones, replay stored events to a hook, prune what retention lets go. Each is
//! one bounded step in one transaction (the caller paces the steps: `delivery::operations`,
//! `crate::retention`); those that leave deliveries due tell every node through `NOTIFY`.

use super::{ordering, PostgresStore, CHANNEL};
use crate::domain::id::new_id;
use crate::storage::deliveries::{
    recovery_filter, PruneCutoffs, Pruned, Recovery, Replay, ReplayCursor, ReplayStep,
};
use crate::storage::ordering::HELD_MS;
use crate::storage::schema::Marks;
use crate::storage::StoreResult;
use sqlx::Row;

impl PostgresStore {
    /// See `Store::retry_delivery`. A delivery in flight is due again at once: its lease is
    /// in the row, and moving `due_at` ends it (the attempt's own record then finds its fence
    /// gone and logs the attempt without moving the delivery). A finished one goes outside its
    /// user's line (its ordering key is dropped; it was counted out of the line when it
    /// finished), a held one becomes a second head of its line (it keeps its key and stays
    /// counted in, as it is still queued).
    pub(super) async fn retry_here(&self, id: &str, now: i64) -> StoreResult<bool> {
        let found: i64 = sqlx::query_scalar(
            "WITH u AS (UPDATE deliveries SET state = 0, due_at = $2, \
               schedule_start = attempts, updated_at = $2, \
               ordering_key = CASE WHEN state = 0 THEN ordering_key END \
               WHERE id = $1 RETURNING 1), \
             n AS (SELECT pg_notify($3, '') FROM u) \
             SELECT (SELECT COUNT(*) FROM u) + 0 * (SELECT COUNT(*) FROM n)",
        )
        .bind(id)
        .bind(now)
        .bind(CHANNEL)
        .fetch_one(&self.pool)
        .await?;
        Ok(found > 0)
    }

    /// See `Store::recover`: rows locked with `SKIP LOCKED`, so two recoveries at once (on
    /// two nodes) take different rows. Those with an ordering key rejoin their user's line,
    /// held, counted in, and the line's next goes if it has no head.
    pub(super) async fn recover_here(
        &self,
        r: &Recovery,
        limit: u32,
        now: i64,
    ) -> StoreResult<u64> {
        let sql = format!(
            "WITH u AS (UPDATE deliveries SET state = 0, \
               due_at = CASE WHEN ordering_key IS NULL THEN $5 ELSE created_at + $8 END, \
               schedule_start = attempts, updated_at = $5 \
               WHERE id IN (SELECT id FROM deliveries WHERE {} LIMIT $6 FOR UPDATE SKIP LOCKED) \
               RETURNING id, ordering_key), \
             n AS (SELECT pg_notify($7, '') \
               WHERE EXISTS (SELECT 1 FROM u WHERE ordering_key IS NULL)) \
             SELECT u.id, u.ordering_key FROM u LEFT JOIN (SELECT count(*) FROM n) x ON true",
            recovery_filter(Marks::Dollar)
        );
        let mut tx = self.pool.begin().await?;
        let rows = sqlx::query(&sql)
            .bind(&r.hook_id)
            .bind(r.window.since)
            .bind(r.window.until)
            .bind(r.before)
            .bind(now)
            .bind(i64::from(limit))
            .bind(CHANNEL)
            .bind(HELD_MS)
            .fetch_all(&mut *tx)
            .await?;
        let mut in_lines = Vec::new();
        for row in &rows {
            if row.try_get::<Option<String>, _>("ordering_key")?.is_some() {
                in_lines.push(row.try_get::<String, _>("id")?);
            }
        }
        self.settle_joined(&mut tx, &r.hook_id, &in_lines).await?;
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    /// Counts deliveries just queued held into their lines and lets each line's next go if it
    /// has no head (see `ordering`).
    async fn settle_joined(
        &self,
        tx: &mut sqlx::PgConnection,
        hook_id: &str,
        ids: &[String],
    ) -> StoreResult<()> {
        let keys = ordering::join_lines(&mut *tx, hook_id, ids).await?;
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let hooks = vec![hook_id; keys.len()];
        ordering::next_in_line(tx, &hooks, &keys).await
    }

    /// See `Store::replay`. A transaction-scoped advisory lock per hook makes two replays of
    /// one hook (two requests, two nodes) take turns, so neither creates what the other just
    /// did.
    pub(super) async fn replay_here(
        &self,
        r: &Replay,
        after: Option<&ReplayCursor>,
        limit: u32,
        now: i64,
    ) -> StoreResult<ReplayStep> {
        let (from_at, from_id) = match after {
            Some(c) => (c.created_at, c.event_id.as_str()),
            None => (r.window.since, ""),
        };
        let mut tx = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext('hookline.replay'), hashtext($1))")
            .bind(&r.hook_id)
            .execute(&mut *tx)
            .await?;
        // A hook deleted or disabled meanwhile ends the replay (its deliveries would never
        // go); the lock keeps it from being deleted before this step commits.
        let enabled: Option<bool> =
            sqlx::query_scalar("SELECT enabled FROM hooks WHERE id = $1 FOR KEY SHARE")
                .bind(&r.hook_id)
                .fetch_optional(&mut *tx)
                .await?;
        if enabled != Some(true) {
            return Ok(ReplayStep::default());
        }
        let looked = sqlx::query(
            // Locked (`FOR KEY SHARE`) against retention, which locks an event before it
            // deletes it: an event pruned meanwhile is not looked at, and one looked at is not
            // pruned before this step's deliveries of it commit.
            "SELECT id, name, created_at, user_id FROM events \
             WHERE (created_at, id) > ($1, $3) AND created_at <= $2 AND created_at >= $4 \
             ORDER BY created_at, id LIMIT $5 FOR KEY SHARE",
        )
        .bind(from_at)
        .bind(r.window.until)
        .bind(from_id)
        .bind(r.window.since)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut candidates = Vec::new();
        let mut names = Vec::new();
        let mut keys: Vec<Option<String>> = Vec::new();
        for row in &looked {
            let name: String = row.try_get("name")?;
            if r.events.contains(&name) {
                candidates.push(row.try_get::<String, _>("id")?);
                names.push(name);
                let user: Option<String> = row.try_get("user_id")?;
                keys.push(user.filter(|_| r.per_user));
            }
        }
        let mut step = ReplayStep::default();
        if !candidates.is_empty() {
            let ids: Vec<String> = candidates.iter().map(|_| new_id()).collect();
            // Whether a delivery exists is asked of the finished rows (their event index) and
            // the queued ones (the queue) apart, so that each can use its index.
            // One that joins its user's line is held, due after the line's earlier rows.
            let created: Vec<(String, Option<String>)> = sqlx::query_as(
                "WITH c AS (SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $6::text[]) \
                   AS c(id, event_id, event_name, okey)) \
                 INSERT INTO deliveries (id, event_id, hook_id, event_name, due_at, created_at, \
                   updated_at, ordering_key) \
                 SELECT c.id, c.event_id, $4, c.event_name, \
                   CASE WHEN c.okey IS NULL THEN $5 ELSE $5 + $7 END, $5, $5, c.okey FROM c \
                 WHERE NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.state <> 0 \
                     AND d.event_id = c.event_id AND d.hook_id = $4) \
                   AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.state = 0 \
                     AND d.event_id = c.event_id AND d.hook_id = $4) \
                 RETURNING id, ordering_key",
            )
            .bind(&ids)
            .bind(&candidates)
            .bind(&names)
            .bind(&r.hook_id)
            .bind(now)
            .bind(&keys)
            .bind(HELD_MS)
            .fetch_all(&mut *tx)
            .await?;
            step.created = created.len() as u64;
            if created.iter().any(|(_, key)| key.is_none()) {
                sqlx::query("SELECT pg_notify($1, '')")
                    .bind(CHANNEL)
                    .execute(&mut *tx)
                    .await?;
            }
            let in_lines: Vec<String> = created
                .into_iter()
                .filter(|(_, key)| key.is_some())
                .map(|(id, _)| id)
                .collect();
            self.settle_joined(&mut tx, &r.hook_id, &in_lines).await?;
        }
        tx.commit().await?;
        if looked.len() == limit as usize {
            if let Some(last) = looked.last() {
                step.next = Some(ReplayCursor {
                    created_at: last.try_get("created_at")?,
                    event_id: last.try_get("id")?,
                });
            }
        }
        Ok(step)
    }
}

impl PostgresStore {
    /// See `Store::prune`. Nodes that prune at once delete different rows or wait for one
    /// another on the same ones; either way nothing is deleted twice or kept wrongly.
    pub(super) async fn prune_here(&self, c: &PruneCutoffs, limit: u32) -> StoreResult<Pruned> {
        let limit = i64::from(limit);
        let mut tx = self.pool.begin().await?;
        let deliveries = sqlx::query(
            // Locked and checked again: a retry or recovery may put a row back in the queue
            // meanwhile, and a queued row is never deleted.
            "DELETE FROM deliveries WHERE id IN (SELECT id FROM deliveries \
             WHERE state <> 0 AND created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED) \
             AND state <> 0 AND created_at < $1",
        )
        .bind(c.deliveries_and_events)
        .bind(limit)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // Whether a delivery still refers to an event is asked of the finished rows (their
        // event index) and the queued ones (the queue) apart, so that each can use its index.
        // Candidates are locked first (a replay that holds one is skipped) and asked again in
        // a statement of their own, whose snapshot sees every replay that locked them before
        // and has committed since.
        let unreferenced = "NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.state <> 0 \
             AND d.event_id = e.id) \
             AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.state = 0 AND d.event_id = e.id)";
        let candidates: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT e.id FROM events e WHERE e.created_at < $1 AND {unreferenced} \
             LIMIT $2 FOR UPDATE SKIP LOCKED"
        ))
        .bind(c.deliveries_and_events)
        .bind(limit)
        .fetch_all(&mut *tx)
        .await?;
        let events = sqlx::query(&format!(
            "DELETE FROM events e WHERE e.id = ANY($1) AND {unreferenced}"
        ))
        .bind(&candidates)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // Hook by hook, through the attempts' (hook_id, created_at) index.
        let hooks: Vec<String> = sqlx::query_scalar("SELECT id FROM hooks")
            .fetch_all(&mut *tx)
            .await?;
        let mut attempts = 0u64;
        for hook in hooks {
            if attempts >= limit as u64 {
                break;
            }
            attempts += sqlx::query(
                "DELETE FROM attempts WHERE ctid IN (SELECT ctid FROM attempts \
                 WHERE hook_id = $1 AND created_at < $2 LIMIT $3)",
            )
            .bind(&hook)
            .bind(c.attempts)
            .bind(limit - attempts as i64)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        }
        tx.commit().await?;
        Ok(Pruned {
            deliveries,
            events,
            attempts,
        })
    }
}
