//! The identity core on PostgreSQL (see [`crate::storage::identity`]).
//!
//! The operations in `crate::identity` are written once, as synchronous code over
//! [`IdentityTx`], because SQLite's writer is a thread that runs them inside its batch. Here a
//! change runs on tokio's blocking pool, inside one `SERIALIZABLE` transaction, and each
//! primitive runs its statement with `Handle::block_on`. Serializable isolation is what makes
//! the read-then-write changes (a lockout counter, a unique name checked then taken) correct
//! with several nodes writing at once: a change that lost a race fails with a serialization
//! failure and is run again from the start, up to [`MAX_TRIES`] times, seeing the winner's
//! work. Changes may run more than once anyway (SQLite's writer retries batches), so this
//! costs them nothing.

use super::queue::enqueue_in;
use super::{PostgresStore, TargetCache};
use crate::storage::identity::{
    Change, Doc, DocQuery, IdentityError, IdentityResult, IdentityStore, IdentityTx, Key, Kind,
    Link, StateSpace,
};
use crate::storage::schema::{
    column, credential_column, like_pattern, link_row, parse_doc, table, Marks,
};
use crate::storage::{Lease, NewEvent, StoreError, StoreResult};
use async_trait::async_trait;
use serde_json::Value;
use sqlx::postgres::{PgPool, PgRow};
use sqlx::{PgConnection, Row};
use std::any::Any;
use std::future::Future;
use std::time::Duration;
use tokio::runtime::Handle;

/// How many times a change that lost a race is run before the caller gets
/// [`StoreError::Contention`] (answered 503). Every round of a race has a winner, so this
/// bounds how many concurrent changes of one row (one identifier's lockout counter, hit from
/// every node at once) are all sure to land: the storage suite runs 40 at once.
const MAX_TRIES: u32 = 50;

/// `$1, $2, …, $n`
fn marks(n: usize) -> String {
    (1..=n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn doc_and_credential(r: &PgRow) -> StoreResult<(Value, Option<String>)> {
    let doc = parse_doc(r.try_get::<&str, _>("doc")?)?;
    let cred: Option<String> = r.try_get("credential")?;
    Ok((doc, cred.filter(|c| !c.is_empty())))
}

/// The primitives on one transaction's connection, run from a blocking-pool thread.
struct Tx<'a> {
    rt: &'a Handle,
    conn: &'a mut PgConnection,
    targets: &'a TargetCache,
}

/// Runs one statement's future to its end on this (blocking-pool) thread.
fn block<T>(rt: &Handle, f: impl Future<Output = Result<T, sqlx::Error>>) -> StoreResult<T> {
    rt.block_on(f).map_err(StoreError::from)
}

impl IdentityTx for Tx<'_> {
    fn get(&mut self, kind: Kind, id: &str) -> StoreResult<Option<Value>> {
        let sql = format!("SELECT doc FROM {} WHERE id = $1", table(kind).name);
        let doc: Option<String> = block(
            self.rt,
            sqlx::query_scalar(&sql)
                .bind(id)
                .fetch_optional(&mut *self.conn),
        )?;
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
        match (t.parent, parent) {
            (Some(p), Some(parent)) => {
                let sql = format!("SELECT id FROM {} WHERE {col} = $1 AND {p} = $2", t.name);
                block(
                    self.rt,
                    sqlx::query_scalar(&sql)
                        .bind(value)
                        .bind(parent)
                        .fetch_optional(&mut *self.conn),
                )
            }
            _ => {
                let sql = format!("SELECT id FROM {} WHERE {col} = $1", t.name);
                block(
                    self.rt,
                    sqlx::query_scalar(&sql)
                        .bind(value)
                        .fetch_optional(&mut *self.conn),
                )
            }
        }
    }

    fn insert(&mut self, kind: Kind, doc: &Doc) -> StoreResult<()> {
        let t = table(kind);
        let mut cols = vec!["id", "doc"];
        let mut values: Vec<Option<String>> = vec![Some(doc.id.clone()), Some(doc.json.clone())];
        for (key, value) in &doc.keys {
            cols.push(column(t, *key)?);
            values.push(value.clone());
        }
        if let (Some(p), Some(parent)) = (t.parent, &doc.parent) {
            cols.push(p);
            values.push(Some(parent.clone()));
        }
        let sql = format!(
            "INSERT INTO {} ({}, created_at) VALUES ({}, ${})",
            t.name,
            cols.join(", "),
            marks(cols.len()),
            cols.len() + 1
        );
        let mut q = sqlx::query(&sql);
        for v in values {
            q = q.bind(v);
        }
        block(self.rt, q.bind(doc.created_at).execute(&mut *self.conn))?;
        Ok(())
    }

    fn update(&mut self, kind: Kind, doc: &Doc) -> StoreResult<bool> {
        let t = table(kind);
        let mut sets = vec!["doc = $1".to_owned()];
        let mut values: Vec<Option<String>> = vec![Some(doc.json.clone())];
        for (key, value) in &doc.keys {
            values.push(value.clone());
            sets.push(format!("{} = ${}", column(t, *key)?, values.len()));
        }
        values.push(Some(doc.id.clone()));
        let sql = format!(
            "UPDATE {} SET {} WHERE id = ${}",
            t.name,
            sets.join(", "),
            values.len()
        );
        let mut q = sqlx::query(&sql);
        for v in values {
            q = q.bind(v);
        }
        Ok(block(self.rt, q.execute(&mut *self.conn))?.rows_affected() == 1)
    }

    fn delete(&mut self, kind: Kind, id: &str) -> StoreResult<bool> {
        let sql = format!("DELETE FROM {} WHERE id = $1", table(kind).name);
        Ok(
            block(self.rt, sqlx::query(&sql).bind(id).execute(&mut *self.conn))?.rows_affected()
                == 1,
        )
    }

    fn set_credential(&mut self, kind: Kind, id: &str, hash: &str) -> StoreResult<()> {
        let col = credential_column(kind)?;
        let sql = format!("UPDATE {} SET {col} = $1 WHERE id = $2", table(kind).name);
        block(
            self.rt,
            sqlx::query(&sql)
                .bind(hash)
                .bind(id)
                .execute(&mut *self.conn),
        )?;
        Ok(())
    }

    fn state_get(&mut self, space: StateSpace, key: &str, now: i64) -> StoreResult<Option<Value>> {
        let value: Option<String> = block(
            self.rt,
            sqlx::query_scalar(
                "SELECT value FROM interaction_state WHERE space = $1 AND key = $2 AND expires_at > $3",
            )
            .bind(space.name())
            .bind(key)
            .bind(now)
            .fetch_optional(&mut *self.conn),
        )?;
        value.as_deref().map(parse_doc).transpose()
    }

    fn state_put(
        &mut self,
        space: StateSpace,
        key: &str,
        value: &Value,
        expires_at: i64,
    ) -> StoreResult<()> {
        block(
            self.rt,
            sqlx::query(
                "INSERT INTO interaction_state (space, key, value, expires_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (space, key) DO UPDATE SET value = excluded.value, expires_at = excluded.expires_at",
            )
            .bind(space.name())
            .bind(key)
            .bind(value.to_string())
            .bind(expires_at)
            .execute(&mut *self.conn),
        )?;
        // Expired rows are deleted by `PostgresStore`'s sweeper, outside any serializable
        // transaction: a range delete here would take predicate locks that make unrelated
        // sign-ins conflict.
        Ok(())
    }

    fn state_delete(&mut self, space: StateSpace, key: &str) -> StoreResult<()> {
        block(
            self.rt,
            sqlx::query("DELETE FROM interaction_state WHERE space = $1 AND key = $2")
                .bind(space.name())
                .bind(key)
                .execute(&mut *self.conn),
        )?;
        Ok(())
    }

    fn link(&mut self, link: Link, scope: Option<&str>, a: &str, b: &str) -> StoreResult<bool> {
        let (table, cols, args) = link_row(link, scope, a, b)?;
        let sql = format!(
            "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
            cols.join(", "),
            marks(cols.len())
        );
        let mut q = sqlx::query(&sql);
        for arg in args {
            q = q.bind(arg);
        }
        Ok(block(self.rt, q.execute(&mut *self.conn))?.rows_affected() == 1)
    }

    fn unlink(&mut self, link: Link, scope: Option<&str>, a: &str, b: &str) -> StoreResult<bool> {
        let (table, cols, args) = link_row(link, scope, a, b)?;
        let sql = format!(
            "DELETE FROM {table} WHERE {}",
            Marks::Dollar.row_filter(&cols)
        );
        let mut q = sqlx::query(&sql);
        for arg in args {
            q = q.bind(arg);
        }
        Ok(block(self.rt, q.execute(&mut *self.conn))?.rows_affected() == 1)
    }

    fn has_link(&mut self, link: Link, scope: Option<&str>, a: &str, b: &str) -> StoreResult<bool> {
        let (table, cols, args) = link_row(link, scope, a, b)?;
        let sql = format!(
            "SELECT 1 FROM {table} WHERE {}",
            Marks::Dollar.row_filter(&cols)
        );
        let mut q = sqlx::query_scalar::<_, i32>(&sql);
        for arg in args {
            q = q.bind(arg);
        }
        Ok(block(self.rt, q.fetch_optional(&mut *self.conn))?.is_some())
    }

    fn linked(&mut self, link: Link, scope: Option<&str>, a: &str) -> StoreResult<Vec<String>> {
        let (sql, args) = Marks::Dollar.linked_sql(link, scope, a, "t.id")?;
        let mut q = sqlx::query_scalar::<_, String>(&sql);
        for arg in args {
            q = q.bind(arg);
        }
        block(self.rt, q.fetch_all(&mut *self.conn))
    }

    fn emit(&mut self, events: &[NewEvent]) -> StoreResult<()> {
        // Nothing leased: the commit notifies every node, whose dispatchers claim them.
        let batch: Vec<(&NewEvent, Lease)> = events.iter().map(|e| (e, Lease::default())).collect();
        self.rt
            .block_on(enqueue_in(&mut *self.conn, self.targets, &batch))?;
        Ok(())
    }
}

/// Runs `change` once in a serializable transaction and commits it if it succeeds.
fn run_once(
    pool: &PgPool,
    targets: &TargetCache,
    rt: &Handle,
    change: &mut Change,
) -> IdentityResult<Box<dyn Any + Send>> {
    let mut tx = rt
        .block_on(async {
            let mut tx = pool.begin().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL SERIALIZABLE")
                .execute(&mut *tx)
                .await?;
            Ok::<_, sqlx::Error>(tx)
        })
        .map_err(StoreError::from)?;
    let outcome = change(&mut Tx {
        rt,
        conn: &mut tx,
        targets,
    });
    match outcome {
        Ok(value) => {
            rt.block_on(tx.commit()).map_err(StoreError::from)?;
            Ok(value)
        }
        Err(e) => {
            // Dropping the transaction would roll it back too, but only once the connection
            // is next used; roll back now so that its locks go at once.
            let _ = rt.block_on(tx.rollback());
            Err(e)
        }
    }
}

#[async_trait]
impl IdentityStore for PostgresStore {
    async fn transact(&self, mut change: Change) -> IdentityResult<Box<dyn Any + Send>> {
        let (pool, targets) = (self.pool.clone(), self.targets.clone());
        let rt = Handle::current();
        tokio::task::spawn_blocking(move || {
            let mut tries = 0;
            loop {
                tries += 1;
                match run_once(&pool, &targets, &rt, &mut change) {
                    Err(IdentityError::Store(StoreError::Contention(m))) if tries < MAX_TRIES => {
                        tracing::debug!(tries, reason = %m, "an identity change lost a race; running it again");
                        // Random, growing backoff (up to 50 ms), so that changes that keep
                        // colliding part.
                        let cap = 1u64 << tries.min(6);
                        let ms = rand::random::<u64>() % cap.min(50) + 1;
                        std::thread::sleep(Duration::from_millis(ms));
                    }
                    other => return other,
                }
            }
        })
        .await
        .map_err(|e| {
            IdentityError::Store(StoreError::Unavailable(format!(
                "an identity change did not finish: {e}"
            )))
        })?
    }

    async fn get_doc(&self, kind: Kind, id: &str) -> StoreResult<Option<Value>> {
        let sql = format!("SELECT doc FROM {} WHERE id = $1", table(kind).name);
        let doc: Option<String> = sqlx::query_scalar(&sql)
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        doc.as_deref().map(parse_doc).transpose()
    }

    async fn list_docs(&self, kind: Kind, q: &DocQuery) -> StoreResult<(Vec<Value>, u64)> {
        let t = table(kind);
        // Every query binds $1 (the parent) and $2 (the search pattern); NULL means "any".
        let mut filter = match t.parent {
            Some(p) => format!("($1::text IS NULL OR {p} = $1)"),
            None => "($1::text IS NULL OR TRUE)".to_owned(),
        };
        let pattern = q.search.as_deref().map(like_pattern);
        let doc_field = t.search_doc.map(|f| format!("(doc::json ->> '{f}')"));
        let any: Vec<String> = t
            .search
            .iter()
            .map(|c| c.to_string())
            .chain(doc_field)
            .map(|c| format!("{c} ILIKE $2 ESCAPE '\\'"))
            .collect();
        filter.push_str(&format!(" AND ($2::text IS NULL OR {})", any.join(" OR ")));
        let total: i64 =
            sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {} WHERE {filter}", t.name))
                .bind(&q.parent)
                .bind(&pattern)
                .fetch_one(&self.pool)
                .await?;
        let (limit, offset) = q
            .page
            .map_or((None, 0), |p| (Some(i64::from(p.limit)), p.offset as i64));
        let docs: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT doc FROM {} WHERE {filter} ORDER BY created_at DESC, seq DESC LIMIT $3 OFFSET $4",
            t.name
        ))
        .bind(&q.parent)
        .bind(&pattern)
        .bind(limit)
        .bind(offset)
        .fetch_all(&self.pool)
        .await?;
        let docs = docs
            .iter()
            .map(|d| parse_doc(d))
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
            Marks::Dollar.row_filter(&cols)
        );
        let mut query = sqlx::query_scalar::<_, i32>(&sql);
        for arg in args {
            query = query.bind(arg);
        }
        Ok(query.fetch_optional(&self.pool).await?.is_some())
    }

    async fn linked_docs(
        &self,
        link: Link,
        scope: Option<&str>,
        a: &str,
    ) -> StoreResult<Vec<Value>> {
        let (sql, args) = Marks::Dollar.linked_sql(link, scope, a, "t.doc")?;
        let mut query = sqlx::query_scalar::<_, String>(&sql);
        for arg in args {
            query = query.bind(arg);
        }
        let docs = query.fetch_all(&self.pool).await?;
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
            "SELECT doc, {cred} AS credential FROM {} WHERE {col} = $1",
            t.name
        ))
        .bind(value)
        .fetch_optional(&self.pool)
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
            "SELECT doc, {cred} AS credential FROM {} WHERE id = $1",
            table(kind).name
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| doc_and_credential(&r)).transpose()
    }

    async fn state(&self, space: StateSpace, key: &str, now: i64) -> StoreResult<Option<Value>> {
        let value: Option<String> = sqlx::query_scalar(
            "SELECT value FROM interaction_state WHERE space = $1 AND key = $2 AND expires_at > $3",
        )
        .bind(space.name())
        .bind(key)
        .bind(now)
        .fetch_optional(&self.pool)
        .await?;
        value.as_deref().map(parse_doc).transpose()
    }
}
