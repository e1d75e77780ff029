//! Hooks on SQLite: their rows (signing keys sealed with `--encryption-key`), reads on the
//! read pool, writes on the writer thread (each clears the writer's hook cache, which so
//! cannot go stale), and the execution stats.

use super::{Durability, SqliteStore};
use crate::domain::hook::Hook;
use crate::storage::cipher::KeyCipher;
use crate::storage::{ExecutionStats, Page, StoreError, StoreResult, StoredHook};
use sqlx::{Row, SqliteConnection};
use std::collections::HashMap;

/// Seals the signing keys stored in the clear once there is an encryption key, and checks
/// that the sealed ones open (see `KeyCipher::reseal`), before anything else uses the file.
/// The keys it seals leave no copy behind: `secure_delete` zeroes the old cells, and the WAL,
/// which still holds the old pages, is checkpointed and truncated.
pub(super) async fn reseal_signing_keys(
    conn: &mut SqliteConnection,
    cipher: &KeyCipher,
) -> StoreResult<()> {
    let rows = sqlx::query("SELECT id, signing_key, previous_signing_key FROM hooks")
        .fetch_all(&mut *conn)
        .await?;
    let mut sealed_any = false;
    for row in rows {
        let id: String = row.try_get("id")?;
        let key = cipher.reseal(&id, &row.try_get::<String, _>("signing_key")?)?;
        let previous = row
            .try_get::<Option<String>, _>("previous_signing_key")?
            .map(|p| cipher.reseal(&id, &p))
            .transpose()?
            .flatten();
        if key.is_none() && previous.is_none() {
            continue;
        }
        if !sealed_any {
            sqlx::query("PRAGMA secure_delete = ON")
                .execute(&mut *conn)
                .await?;
            sealed_any = true;
        }
        sqlx::query(
            "UPDATE hooks SET signing_key = COALESCE(?1, signing_key), \
             previous_signing_key = COALESCE(?2, previous_signing_key) WHERE id = ?3",
        )
        .bind(key)
        .bind(previous)
        .bind(&id)
        .execute(&mut *conn)
        .await?;
    }
    if sealed_any {
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)")
            .execute(&mut *conn)
            .await?;
    }
    Ok(())
}

fn hook_from_row(row: &sqlx::sqlite::SqliteRow, cipher: &KeyCipher) -> StoreResult<Hook> {
    let events: String = row.try_get("events")?;
    StoredHook {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        event: row.try_get("event")?,
        events: serde_json::from_str(&events)
            .map_err(|e| StoreError::Corrupt(format!("hook events: {e}")))?,
        config: row.try_get("config")?,
        signing_key: row.try_get("signing_key")?,
        previous_signing_key: row.try_get("previous_signing_key")?,
        previous_key_expires_at: row.try_get("previous_key_expires_at")?,
        enabled: row.try_get::<i64, _>("enabled")? != 0,
        disabled_reason: row.try_get("disabled_reason")?,
        created_at: row.try_get("created_at")?,
    }
    .into_hook(cipher)
}

/// A batch of rows as the JSON array that `json_each` unpacks. Unlike [`json_text`], a failure
pub(super) fn json_text<T: serde::Serialize>(v: &T) -> String {
    // Serializing plain data (strings, maps of strings) to a String cannot fail.
    serde_json::to_string(v).unwrap_or_else(|_| "null".into())
}

fn event_names(hook: &Hook) -> String {
    json_text(&hook.events.iter().map(|e| e.name()).collect::<Vec<_>>())
}

/// A hook as its row stores it (JSON text for the lists and the config), owned so that it
/// can travel to the writer thread.
struct HookRow {
    id: String,
    name: String,
    event: Option<&'static str>,
    events: String,
    config: String,
    signing_key: String,
    previous_signing_key: Option<String>,
    previous_key_expires_at: Option<i64>,
    enabled: bool,
    disabled_reason: Option<String>,
    created_at: i64,
}

impl HookRow {
    /// The row of `hook`, its signing keys sealed by `cipher`.
    fn of(hook: &Hook, cipher: &KeyCipher) -> StoreResult<Self> {
        let (signing_key, previous_signing_key) = cipher.seal_keys(hook)?;
        Ok(Self {
            id: hook.id.clone(),
            name: hook.name.clone(),
            event: hook.event.map(|e| e.name()),
            events: event_names(hook),
            config: json_text(&hook.config),
            signing_key,
            previous_signing_key,
            previous_key_expires_at: hook.previous_signing_key.as_ref().map(|p| p.expires_at),
            enabled: hook.enabled,
            disabled_reason: hook.disabled_reason.clone(),
            created_at: hook.created_at,
        })
    }
}

impl SqliteStore {
    pub(super) async fn insert_hook_here(&self, hook: &Hook) -> StoreResult<()> {
        let row = HookRow::of(hook, &self.cipher)?;
        self.writer
            .run(Durability::Disk, move |w| {
                w.hooks.clear();
                w.conn.execute(
                    "INSERT INTO hooks (id, name, event, events, config, signing_key, enabled, created_at, \
                     previous_signing_key, previous_key_expires_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    (&row.id, &row.name, row.event, &row.events, &row.config, &row.signing_key, row.enabled, row.created_at,
                     &row.previous_signing_key, row.previous_key_expires_at),
                )?;
                Ok(())
            })
            .await
    }

    pub(super) async fn get_hook_here(&self, id: &str) -> StoreResult<Option<Hook>> {
        // A client reads its own writes here too: the writer answers only after its commit,
        // and a WAL reader's next transaction sees every commit made before it began.
        sqlx::query("SELECT * FROM hooks WHERE id = ?")
            .bind(id)
            .fetch_optional(&self.reader)
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
            .fetch_one(&self.reader)
            .await?;
        let (limit, offset) = page.map_or((-1, 0), |p| (p.limit as i64, p.offset as i64));
        let rows =
            sqlx::query("SELECT * FROM hooks ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?")
                .bind(limit)
                .bind(offset)
                .fetch_all(&self.reader)
                .await?;
        let hooks = rows
            .iter()
            .map(|r| hook_from_row(r, &self.cipher))
            .collect::<StoreResult<Vec<_>>>()?;
        Ok((hooks, total as u64))
    }

    pub(super) async fn update_hook_here(&self, hook: &Hook) -> StoreResult<bool> {
        let row = HookRow::of(hook, &self.cipher)?;
        self.writer
            .run(Durability::Disk, move |w| {
                w.hooks.clear();
                let n = w.conn.execute(
                    // Enabling a disabled hook starts its failing streak afresh (old values on the
                    // right-hand side), or the next auto-disable pass would disable it again.
                    "UPDATE hooks SET name = ?1, event = ?2, events = ?3, config = ?4, signing_key = ?5, enabled = ?6, \
                     previous_signing_key = ?8, previous_key_expires_at = ?9, disabled_reason = ?10, \
                     failing_since = CASE WHEN ?6 AND NOT enabled THEN NULL ELSE failing_since END WHERE id = ?7",
                    (&row.name, row.event, &row.events, &row.config, &row.signing_key, row.enabled, &row.id,
                     &row.previous_signing_key, row.previous_key_expires_at, &row.disabled_reason),
                )?;
                park(w, &row.id, row.enabled)?;
                Ok(n == 1)
            })
            .await
    }

    pub(super) async fn delete_hook_here(&self, id: &str) -> StoreResult<bool> {
        let id = id.to_owned();
        self.writer
            .run(Durability::Disk, move |w| {
                w.hooks.clear();
                let n = w.conn.execute("DELETE FROM hooks WHERE id = ?1", [&id])?;
                // Its queued deliveries, found through the queue index (which carries hook_id),
                // and its finished ones, through theirs (migration 0008). The leases end too: a
                // rowid freed here may be given to a new delivery.
                let mut deleted = w.conn.prepare(
                    "DELETE FROM deliveries WHERE rowid IN \
                     (SELECT rowid FROM deliveries INDEXED BY deliveries_queued_due \
                      WHERE state = 0 AND hook_id = ?1) RETURNING rowid",
                )?;
                let mut rows = deleted.query([&id])?;
                while let Some(row) = rows.next()? {
                    w.leases.end_after_commit(row.get(0)?);
                }
                drop(rows);
                drop(deleted);
                w.conn.execute(
                    "DELETE FROM deliveries WHERE state <> 0 AND hook_id = ?1",
                    [&id],
                )?;
                w.conn
                    .execute("DELETE FROM attempts WHERE hook_id = ?1", [&id])?;
                Ok(n == 1)
            })
            .await
    }

    pub(super) async fn execution_stats_here(
        &self,
        hook_ids: &[String],
        since: i64,
    ) -> StoreResult<HashMap<String, ExecutionStats>> {
        let rows = sqlx::query(
            "SELECT hook_id, COUNT(*) AS requests, COALESCE(SUM(success), 0) AS successes FROM attempts \
             WHERE hook_id IN (SELECT value FROM json_each(?)) AND created_at >= ? GROUP BY hook_id",
        )
        .bind(json_text(&hook_ids))
        .bind(since)
        .fetch_all(&self.reader)
        .await?;
        let mut out = HashMap::with_capacity(rows.len());
        for row in rows {
            out.insert(
                row.try_get("hook_id")?,
                ExecutionStats {
                    request_count: row.try_get::<i64, _>("requests")? as u64,
                    success_count: row.try_get::<i64, _>("successes")? as u64,
                },
            );
        }
        Ok(out)
    }
}

/// Parks a disabled hook's queued deliveries or brings an enabled one's back (see
/// `storage::health::PARK_MS`); leases end as their records land, as before.
pub(super) fn park(
    w: &mut super::writer::WriteTx<'_>,
    hook_id: &str,
    enabled: bool,
) -> StoreResult<()> {
    let n = w
        .conn
        .prepare_cached(&crate::storage::health::park_sql(enabled, "?1"))?
        .execute([hook_id])?;
    if enabled && n > 0 {
        // Back where they were, possibly below the floor, and due.
        w.leases.lower_floor(i64::MIN);
        *w.queued_due = true;
    }
    Ok(())
}
