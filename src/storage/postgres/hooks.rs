//! Hooks on PostgreSQL: their rows (signing keys sealed with `--encryption-key`; every
//! update bumps `version`, which the nodes' target caches key on), and the execution stats.

use super::{PostgresStore, CHANNEL};
use crate::domain::hook::{Hook, HookConfig};
use crate::storage::cipher::KeyCipher;
use crate::storage::{ExecutionStats, Page, StoreResult, StoredHook};
use sqlx::postgres::PgRow;
use sqlx::Row;
use std::collections::HashMap;

fn hook_from_row(row: &PgRow, cipher: &KeyCipher) -> StoreResult<Hook> {
    StoredHook {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        event: row.try_get("event")?,
        events: row.try_get("events")?,
        config: row.try_get("config")?,
        signing_key: row.try_get("signing_key")?,
        previous_signing_key: row.try_get("previous_signing_key")?,
        previous_key_expires_at: row.try_get("previous_key_expires_at")?,
        enabled: row.try_get("enabled")?,
        disabled_reason: row.try_get("disabled_reason")?,
        created_at: row.try_get("created_at")?,
    }
    .into_hook(cipher)
}

fn config_text(config: &HookConfig) -> String {
    // Serializing plain data (strings, maps of strings) to a String cannot fail.
    serde_json::to_string(config).unwrap_or_else(|_| "null".into())
}

fn event_names(hook: &Hook) -> Vec<&'static str> {
    hook.events.iter().map(|e| e.name()).collect()
}

impl PostgresStore {
    /// Seals the signing keys stored in the clear once there is an encryption key, and checks
    /// that the sealed ones open (see `KeyCipher::reseal`). Nodes starting at once may both
    /// seal a key; either's value opens.
    pub(super) async fn reseal_signing_keys(&self) -> StoreResult<()> {
        let rows = sqlx::query("SELECT id, signing_key, previous_signing_key FROM hooks")
            .fetch_all(&self.pool)
            .await?;
        for row in rows {
            let id: String = row.try_get("id")?;
            let stored: String = row.try_get("signing_key")?;
            let previous: Option<String> = row.try_get("previous_signing_key")?;
            let key = self.cipher.reseal(&id, &stored)?;
            let previous = previous
                .map(|p| self.cipher.reseal(&id, &p))
                .transpose()?
                .flatten();
            if key.is_some() || previous.is_some() {
                sqlx::query(
                    // Only if the key is still the one read: a rotation another node committed
                    // meanwhile wins (its keys are sealed already).
                    "UPDATE hooks SET signing_key = COALESCE($2, signing_key), \
                     previous_signing_key = COALESCE($3, previous_signing_key), \
                     version = version + 1 WHERE id = $1 AND signing_key = $4",
                )
                .bind(&id)
                .bind(key)
                .bind(previous)
                .bind(&stored)
                .execute(&self.pool)
                .await?;
            }
        }
        Ok(())
    }

    pub(super) async fn insert_hook_here(&self, hook: &Hook) -> StoreResult<()> {
        let (key, previous) = self.cipher.seal_keys(hook)?;
        sqlx::query(
            "INSERT INTO hooks (id, name, event, events, config, signing_key, enabled, created_at, \
             previous_signing_key, previous_key_expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&hook.id)
        .bind(&hook.name)
        .bind(hook.event.map(|e| e.name()))
        .bind(event_names(hook))
        .bind(config_text(&hook.config))
        .bind(key)
        .bind(hook.enabled)
        .bind(hook.created_at)
        .bind(previous)
        .bind(hook.previous_signing_key.as_ref().map(|p| p.expires_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn get_hook_here(&self, id: &str) -> StoreResult<Option<Hook>> {
        sqlx::query("SELECT * FROM hooks WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(|r| hook_from_row(r, &self.cipher))
            .transpose()
    }

    pub(super) async fn list_hooks_here(
        &self,
        page: Option<Page>,
    ) -> StoreResult<(Vec<Hook>, u64)> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM hooks")
            .fetch_one(&self.pool)
            .await?;
        let (limit, offset) = page.map_or((None, 0), |p| (Some(p.limit as i64), p.offset as i64));
        let rows =
            sqlx::query("SELECT * FROM hooks ORDER BY created_at DESC, id DESC LIMIT $1 OFFSET $2")
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.pool)
                .await?;
        let hooks = rows
            .iter()
            .map(|r| hook_from_row(r, &self.cipher))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((hooks, total as u64))
    }

    pub(super) async fn update_hook_here(&self, hook: &Hook) -> StoreResult<bool> {
        let (key, previous) = self.cipher.seal_keys(hook)?;
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query(
            "UPDATE hooks SET name = $1, event = $2, events = $3, config = $4, signing_key = $5, \
             enabled = $6, previous_signing_key = $8, previous_key_expires_at = $9, \
             disabled_reason = $10, \
             failing_since = CASE WHEN $6 AND NOT enabled THEN NULL ELSE failing_since END, \
             version = version + 1 WHERE id = $7",
        )
        .bind(&hook.name)
        .bind(hook.event.map(|e| e.name()))
        .bind(event_names(hook))
        .bind(config_text(&hook.config))
        .bind(key)
        .bind(hook.enabled)
        .bind(&hook.id)
        .bind(previous)
        .bind(hook.previous_signing_key.as_ref().map(|p| p.expires_at))
        .bind(&hook.disabled_reason)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        // A disabled hook's queued deliveries are parked, an enabled one's brought back
        // (`storage::health::PARK_MS`).
        sqlx::query(&crate::storage::health::park_sql(hook.enabled, "$1"))
            .bind(&hook.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        if n == 1 && hook.enabled {
            // Deliveries held back while it was disabled may be due now, on any node.
            sqlx::query("SELECT pg_notify($1, '')")
                .bind(CHANNEL)
                .execute(&self.pool)
                .await?;
        }
        Ok(n == 1)
    }

    pub(super) async fn delete_hook_here(&self, id: &str) -> StoreResult<bool> {
        // Its deliveries (queued ones through the queue index, finished ones through theirs)
        // and its log go with it.
        let mut tx = self.pool.begin().await?;
        let n = sqlx::query("DELETE FROM hooks WHERE id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM deliveries WHERE state = 0 AND hook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM delivery_lines WHERE hook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM deliveries WHERE state <> 0 AND hook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM attempts WHERE hook_id = $1")
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n == 1)
    }

    pub(super) async fn execution_stats_here(
        &self,
        hook_ids: &[String],
        since: i64,
    ) -> StoreResult<HashMap<String, ExecutionStats>> {
        let rows: Vec<(String, i64, i64)> = sqlx::query_as(
            "SELECT hook_id, COUNT(*), COUNT(*) FILTER (WHERE success) FROM attempts \
             WHERE hook_id = ANY($1) AND created_at >= $2 GROUP BY hook_id",
        )
        .bind(hook_ids)
        .bind(since)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(hook, requests, successes)| {
                (
                    hook,
                    ExecutionStats {
                        request_count: requests as u64,
                        success_count: successes as u64,
                    },
                )
            })
            .collect())
    }
}
