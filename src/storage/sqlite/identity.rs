//! The identity core on SQLite (see [`crate::storage::identity`]): changes run as jobs on the
//! writer thread, reads on the read-only pool. Table and column names live only here.

use super::writer::WriteTx;
use super::Durability;
use super::{enqueue_events_in, SqliteStore};
use crate::storage::identity::{
    Change, Doc, DocQuery, IdentityResult, IdentityStore, IdentityTx, Key, Kind, Link, StateSpace,
};
use crate::storage::schema::{
    column, credential_column, like_pattern, link_row, parse_doc, table, Marks,
};
use crate::storage::{Lease, NewEvent, StoreResult};
use async_trait::async_trait;
use rusqlite::OptionalExtension;
use serde_json::Value;
use sqlx::Row;
use std::any::Any;

/// A row of `SELECT doc, <credential> AS credential`; an empty credential is none.
fn doc_and_credential(r: &sqlx::sqlite::SqliteRow) -> StoreResult<(Value, Option<String>)> {
    let doc = parse_doc(r.try_get::<&str, _>("doc")?)?;
    let cred: Option<String> = r.try_get("credential")?;
    Ok((doc, cred.filter(|c| !c.is_empty())))
}

/// The primitives on the writer's transaction.
struct Tx<'a, 'b> {
    w: &'a mut WriteTx<'b>,
}

impl IdentityTx for Tx<'_, '_> {
    fn get(&mut self, kind: Kind, id: &str) -> StoreResult<Option<Value>> {
        let t = table(kind);
        let doc: Option<String> = self
            .w
            .conn
            .prepare_cached(&format!("SELECT doc FROM {} WHERE id = ?1", t.name))?
            .query_row([id], |r| r.get(0))
            .optional()?;
        doc.as_deref().map(parse_doc).transpose()
    }

    fn find(
        &mut self,
        kind: Kind,
        key: Key,
        value: &str,
        parent: Option<&str>,
    ) -> StoreResult<Option<String>> {
        let t = table(kind);
        let col = column(t, key)?;
        let id = match (t.parent, parent) {
            (Some(p), Some(parent)) => self
                .w
                .conn
                .prepare_cached(&format!(
                    "SELECT id FROM {} WHERE {col} = ?1 AND {p} = ?2",
                    t.name
                ))?
                .query_row([value, parent], |r| r.get(0))
                .optional()?,
            _ => self
                .w
                .conn
                .prepare_cached(&format!("SELECT id FROM {} WHERE {col} = ?1", t.name))?
                .query_row([value], |r| r.get(0))
                .optional()?,
        };
        Ok(id)
    }

    fn insert(&mut self, kind: Kind, doc: &Doc) -> StoreResult<()> {
        let t = table(kind);
        let mut cols = vec!["id", "doc", "created_at"];
        let mut values: Vec<rusqlite::types::Value> = vec![
            doc.id.clone().into(),
            doc.json.clone().into(),
            doc.created_at.into(),
        ];
        for (key, value) in &doc.keys {
            cols.push(column(t, *key)?);
            values.push(value.clone().into());
        }
        if let (Some(p), Some(parent)) = (t.parent, &doc.parent) {
            cols.push(p);
            values.push(parent.clone().into());
        }
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
        self.w
            .conn
            .prepare_cached(&format!(
                "INSERT INTO {} ({}) VALUES ({})",
                t.name,
                cols.join(", "),
                marks.join(", ")
            ))?
            .execute(rusqlite::params_from_iter(values))?;
        Ok(())
    }

    fn update(&mut self, kind: Kind, doc: &Doc) -> StoreResult<bool> {
        let t = table(kind);
        let mut sets = vec!["doc = ?1".to_owned()];
        let mut values: Vec<rusqlite::types::Value> = vec![doc.json.clone().into()];
        for (key, value) in &doc.keys {
            values.push(value.clone().into());
            sets.push(format!("{} = ?{}", column(t, *key)?, values.len()));
        }
        values.push(doc.id.clone().into());
        let n = self
            .w
            .conn
            .prepare_cached(&format!(
                "UPDATE {} SET {} WHERE id = ?{}",
                t.name,
                sets.join(", "),
                values.len()
            ))?
            .execute(rusqlite::params_from_iter(values))?;
        Ok(n == 1)
    }

    fn delete(&mut self, kind: Kind, id: &str) -> StoreResult<bool> {
        let t = table(kind);
        let n = self
            .w
            .conn
            .prepare_cached(&format!("DELETE FROM {} WHERE id = ?1", t.name))?
            .execute([id])?;
        Ok(n == 1)
    }

    fn set_credential(&mut self, kind: Kind, id: &str, hash: &str) -> StoreResult<()> {
        let col = credential_column(kind)?;
        self.w
            .conn
            .prepare_cached(&format!(
                "UPDATE {} SET {col} = ?1 WHERE id = ?2",
                table(kind).name
            ))?
            .execute([hash, id])?;
        Ok(())
    }

    fn state_get(&mut self, space: StateSpace, key: &str, now: i64) -> StoreResult<Option<Value>> {
        let value: Option<String> = self
            .w
            .conn
            .prepare_cached(
                "SELECT value FROM interaction_state WHERE space = ?1 AND key = ?2 AND expires_at > ?3",
            )?
            .query_row((space.name(), key, now), |r| r.get(0))
            .optional()?;
        value.as_deref().map(parse_doc).transpose()
    }

    fn state_put(
        &mut self,
        space: StateSpace,
        key: &str,
        value: &Value,
        expires_at: i64,
    ) -> StoreResult<()> {
        self.w
            .conn
            .prepare_cached(
                "INSERT INTO interaction_state (space, key, value, expires_at) VALUES (?1, ?2, ?3, ?4) \
                 ON CONFLICT (space, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
            )?
            .execute((space.name(), key, value.to_string(), expires_at))?;
        // Expired rows of any key go while we are here; the table stays as small as what is live.
        self.w
            .conn
            .prepare_cached("DELETE FROM interaction_state WHERE expires_at <= ?1")?
            .execute([crate::clock::now_ms()])?;
        Ok(())
    }

    fn state_delete(&mut self, space: StateSpace, key: &str) -> StoreResult<()> {
        self.w
            .conn
            .prepare_cached("DELETE FROM interaction_state WHERE space = ?1 AND key = ?2")?
            .execute([space.name(), key])?;
        Ok(())
    }

    fn link(&mut self, link: Link, scope: Option<&str>, a: &str, b: &str) -> StoreResult<bool> {
        let (table, cols, args) = link_row(link, scope, a, b)?;
        let marks: Vec<String> = (1..=cols.len()).map(|i| format!("?{i}")).collect();
        let n = self
            .w
            .conn
            .prepare_cached(&format!(
                "INSERT OR IGNORE INTO {table} ({}) VALUES ({})",
                cols.join(", "),
                marks.join(", ")
            ))?
            .execute(rusqlite::params_from_iter(args))?;
        Ok(n == 1)
    }

    fn unlink(&mut self, link: Link, scope: Option<&str>, a: &str, b: &str) -> StoreResult<bool> {
        let (table, cols, args) = link_row(link, scope, a, b)?;
        let n = self
            .w
            .conn
            .prepare_cached(&format!(
                "DELETE FROM {table} WHERE {}",
                Marks::Question.row_filter(&cols)
            ))?
            .execute(rusqlite::params_from_iter(args))?;
        Ok(n == 1)
    }

    fn has_link(&mut self, link: Link, scope: Option<&str>, a: &str, b: &str) -> StoreResult<bool> {
        let (table, cols, args) = link_row(link, scope, a, b)?;
        let found: Option<i64> = self
            .w
            .conn
            .prepare_cached(&format!(
                "SELECT 1 FROM {table} WHERE {}",
                Marks::Question.row_filter(&cols)
            ))?
            .query_row(rusqlite::params_from_iter(args), |r| r.get(0))
            .optional()?;
        Ok(found.is_some())
    }

    fn linked(&mut self, link: Link, scope: Option<&str>, a: &str) -> StoreResult<Vec<String>> {
        let (sql, args) = Marks::Question.linked_sql(link, scope, a, "t.id")?;
        let mut stmt = self.w.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(rusqlite::params_from_iter(args), |r| r.get(0))?;
        Ok(rows.collect::<Result<_, _>>()?)
    }

    fn emit(&mut self, events: &[NewEvent]) -> StoreResult<()> {
        let refs: Vec<&NewEvent> = events.iter().collect();
        // Nothing leased: the dispatcher claims these deliveries from the queue, woken by
        // the commit.
        enqueue_events_in(self.w, &refs, Lease::default())?;
        Ok(())
    }
}

#[async_trait]
impl IdentityStore for SqliteStore {
    async fn transact(&self, mut change: Change) -> IdentityResult<Box<dyn Any + Send>> {
        // A refused change fails its job, so the writer rolls it back like a failed one and
        // answers with the change's own error.
        self.writer
            .run(Durability::Disk, move |w| change(&mut Tx { w }))
            .await
    }

    async fn get_doc(&self, kind: Kind, id: &str) -> StoreResult<Option<Value>> {
        let t = table(kind);
        let doc: Option<String> =
            sqlx::query_scalar(&format!("SELECT doc FROM {} WHERE id = ?", t.name))
                .bind(id)
                .fetch_optional(&self.reader)
                .await?;
        doc.as_deref().map(parse_doc).transpose()
    }

    async fn list_docs(&self, kind: Kind, q: &DocQuery) -> StoreResult<(Vec<Value>, u64)> {
        let t = table(kind);
        // Every query binds ?1 (the parent) and ?2 (the search pattern); NULL means "any".
        let mut filter = match t.parent {
            Some(p) => format!("(?1 IS NULL OR {p} = ?1)"),
            None => "(?1 IS NULL OR 1 = 1)".to_owned(),
        };
        let pattern = q.search.as_deref().map(like_pattern);
        let doc_field = t.search_doc.map(|f| format!("json_extract(doc, '$.{f}')"));
        let any: Vec<String> = t
            .search
            .iter()
            .map(|c| c.to_string())
            .chain(doc_field)
            .map(|c| format!("{c} LIKE ?2 ESCAPE '\\'"))
            .collect();
        filter.push_str(&format!(" AND (?2 IS NULL OR {})", any.join(" OR ")));
        let total: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {} WHERE {filter}", t.name))
                .bind(&q.parent)
                .bind(&pattern)
                .fetch_one(&self.reader)
                .await?;
        let (limit, offset) = q
            .page
            .map_or((-1, 0), |p| (i64::from(p.limit), p.offset as i64));
        let rows = sqlx::query(&format!(
            "SELECT doc FROM {} WHERE {filter} ORDER BY created_at DESC, rowid DESC LIMIT ?3 OFFSET ?4",
            t.name
        ))
        .bind(&q.parent)
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.reader)
        .await?;
        let docs = rows
            .iter()
            .map(|r| parse_doc(r.try_get::<&str, _>("doc")?))
            .collect::<StoreResult<_>>()?;
        Ok((docs, total as u64))
    }

    async fn has_link(
        &self,
        link: Link,
        scope: Option<&str>,
        a: &str,
        b: &str,
    ) -> StoreResult<bool> {
        let (table, cols, args) = link_row(link, scope, a, b)?;
        let sql = format!(
            "SELECT 1 FROM {table} WHERE {}",
            Marks::Question.row_filter(&cols)
        );
        let mut query = sqlx::query_scalar::<_, i64>(&sql);
        for arg in args {
            query = query.bind(arg);
        }
        Ok(query.fetch_optional(&self.reader).await?.is_some())
    }

    async fn linked_docs(
        &self,
        link: Link,
        scope: Option<&str>,
        a: &str,
    ) -> StoreResult<Vec<Value>> {
        let (sql, args) = Marks::Question.linked_sql(link, scope, a, "t.doc")?;
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for arg in args {
            query = query.bind(arg);
        }
        let docs = query.fetch_all(&self.reader).await?;
        docs.iter().map(|d| parse_doc(d)).collect()
    }

    async fn find_with_credential(
        &self,
        kind: Kind,
        key: Key,
        value: &str,
    ) -> StoreResult<Option<(Value, Option<String>)>> {
        let t = table(kind);
        let (col, cred) = (column(t, key)?, credential_column(kind)?);
        let row = sqlx::query(&format!(
            "SELECT doc, {cred} AS credential FROM {} WHERE {col} = ?",
            t.name
        ))
        .bind(value)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| doc_and_credential(&r)).transpose()
    }

    async fn get_with_credential(
        &self,
        kind: Kind,
        id: &str,
    ) -> StoreResult<Option<(Value, Option<String>)>> {
        let cred = credential_column(kind)?;
        let row = sqlx::query(&format!(
            "SELECT doc, {cred} AS credential FROM {} WHERE id = ?",
            table(kind).name
        ))
        .bind(id)
        .fetch_optional(&self.reader)
        .await?;
        row.map(|r| doc_and_credential(&r)).transpose()
    }

    async fn state(&self, space: StateSpace, key: &str, now: i64) -> StoreResult<Option<Value>> {
        let value: Option<String> = sqlx::query_scalar(
            "SELECT value FROM interaction_state WHERE space = ? AND key = ? AND expires_at > ?",
        )
        .bind(space.name())
        .bind(key)
        .bind(now)
        .fetch_optional(&self.reader)
        .await?;
        value.as_deref().map(parse_doc).transpose()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    /// Documents written before migration 0007 read as Logto's objects afterwards, keys in
    /// Logto's order.
    #[test]
    fn migration_0007_brings_old_documents_up_to_logtos_fields() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        for sql in [
            include_str!("../../../migrations/sqlite/0001_initial.sql"),
            include_str!("../../../migrations/sqlite/0002_queue_index_covers_hook.sql"),
            include_str!("../../../migrations/sqlite/0003_attempts_without_id_index.sql"),
            include_str!("../../../migrations/sqlite/0004_no_hook_index_on_deliveries.sql"),
            include_str!("../../../migrations/sqlite/0005_identity.sql"),
            include_str!("../../../migrations/sqlite/0006_applications_and_interactions.sql"),
        ] {
            conn.execute_batch(sql).unwrap();
        }
        let old_user = json!({"id": "u1", "username": "ann", "primaryEmail": null, "primaryPhone": null,
            "name": null, "avatar": null, "customData": {}, "identities": {}, "lastSignInAt": null,
            "createdAt": 1, "updatedAt": 1, "profile": {}, "applicationId": null, "isSuspended": true});
        conn.execute(
            "INSERT INTO users (id, username, password_hash, doc, created_at) VALUES ('u1', 'ann', '$argon2id$x', ?1, 1)",
            [old_user.to_string()],
        )
        .unwrap();
        let old_org = json!({"tenantId": "default", "id": "o1", "name": "Acme", "description": null,
            "customData": {}, "isMfaRequired": false, "createdAt": 5});
        conn.execute(
            "INSERT INTO organizations (id, doc, created_at) VALUES ('o1', ?1, 5)",
            [old_org.to_string()],
        )
        .unwrap();
        conn.execute_batch(include_str!(
            "../../../migrations/sqlite/0007_organization_applications_and_invitations.sql"
        ))
        .unwrap();
        let read = |sql: &str| -> Value {
            let text: String = conn.query_row(sql, [], |r| r.get(0)).unwrap();
            serde_json::from_str(&text).unwrap()
        };
        let keys = |v: &Value| -> Vec<String> { v.as_object().unwrap().keys().cloned().collect() };
        let user = read("SELECT doc FROM users");
        assert_eq!(
            keys(&user)[12..],
            [
                "applicationId",
                "cimdClientId",
                "isSuspended",
                "hasPassword"
            ]
        );
        assert_eq!(
            (&user["isSuspended"], &user["hasPassword"]),
            (&json!(true), &json!(true))
        );
        let org = read("SELECT doc FROM organizations");
        assert_eq!(
            keys(&org),
            [
                "tenantId",
                "id",
                "name",
                "description",
                "customData",
                "isMfaRequired",
                "isTrustedDeviceAllowed",
                "color",
                "branding",
                "customCss",
                "createdAt"
            ]
        );
        assert_eq!((&org["color"], &org["createdAt"]), (&json!({}), &json!(5)));
    }
}
