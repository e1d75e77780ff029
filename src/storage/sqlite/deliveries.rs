//! Deliveries as objects, on SQLite: the queries of `storage::deliveries`, run on the read
//! pool (WAL readers never wait for the writer).

use super::SqliteStore;
use crate::domain::payload::delivery_body;
use crate::storage::deliveries::{
    attempts_sql, get_sql, list_sql, recovery_filter, replay_filter, Arg, DeliveryDetail,
    DeliveryInfo, DeliveryQuery, DeliveryStatus, Recovery, Replay,
};
use crate::storage::events::{self, DeliveryCounts, EventQuery, PublishedEvent};
use crate::storage::schema::Marks;
use crate::storage::{AttemptLog, StoreError, StoreResult};
use sqlx::sqlite::SqliteRow;
use sqlx::Row;

/// SQLite's insertion order: rowids grow with every insert (nothing here sets them).
const TIE: &str = "rowid";

fn bind<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    args: &'q [Arg],
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    for a in args {
        query = match a {
            Arg::Text(s) => query.bind(s.as_str()),
            Arg::Int(i) => query.bind(*i),
        };
    }
    query
}

fn delivery(row: &SqliteRow) -> StoreResult<DeliveryInfo> {
    let state: i64 = row.try_get("state")?;
    let status = DeliveryStatus::from_state(state)
        .ok_or_else(|| StoreError::Corrupt(format!("delivery state {state}")))?;
    Ok(DeliveryInfo {
        id: row.try_get("id")?,
        event_id: row.try_get("event_id")?,
        hook_id: row.try_get("hook_id")?,
        event_name: row.try_get("event_name")?,
        status,
        attempts: row.try_get::<i64, _>("attempts")? as u32,
        // A parked delivery (its hook disabled) has no next attempt until it is enabled.
        next_attempt_at: (status == DeliveryStatus::Queued)
            .then(|| row.try_get::<i64, _>("due_at"))
            .transpose()?
            .filter(|due| *due < crate::storage::health::PARK_MS),
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
        last_response_status: row
            .try_get::<Option<i64>, _>("last_status")?
            .map(|s| s as u16),
        last_duration_ms: row.try_get("last_duration_ms")?,
    })
}

/// One row of the attempt log; `request_body` is the delivery's (every attempt sends it).
pub(super) fn attempt(row: &SqliteRow, request_body: Option<String>) -> StoreResult<AttemptLog> {
    Ok(AttemptLog {
        id: row.try_get("id")?,
        delivery_id: row.try_get("delivery_id")?,
        hook_id: row.try_get("hook_id")?,
        event_name: row.try_get("event_name")?,
        attempt: row.try_get::<i64, _>("attempt")? as u32,
        success: row.try_get::<i64, _>("success")? != 0,
        request_body,
        response_status: row
            .try_get::<Option<i64>, _>("response_status")?
            .map(|s| s as u16),
        response_body: row.try_get("response_body")?,
        error: row.try_get("error")?,
        duration_ms: row.try_get("duration_ms")?,
        created_at: row.try_get("created_at")?,
        script: row.try_get("script")?,
    })
}

impl SqliteStore {
    pub(super) async fn list_deliveries_here(
        &self,
        q: &DeliveryQuery,
    ) -> StoreResult<(Vec<DeliveryInfo>, u64)> {
        let (count, page, mut args) = list_sql(q, Marks::Question, TIE);
        let total: i64 = bind(sqlx::query(&count), &args)
            .fetch_one(&self.reader)
            .await?
            .try_get(0)?;
        args.push(Arg::Int(i64::from(q.page.limit)));
        args.push(Arg::Int(q.page.offset.min(i64::MAX as u64) as i64));
        let rows = bind(sqlx::query(&page), &args)
            .fetch_all(&self.reader)
            .await?;
        let list = rows.iter().map(delivery).collect::<StoreResult<_>>()?;
        Ok((list, total as u64))
    }

    pub(super) async fn get_delivery_here(&self, id: &str) -> StoreResult<Option<DeliveryDetail>> {
        let Some(row) = sqlx::query(&get_sql(Marks::Question, TIE))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
        else {
            return Ok(None);
        };
        let d = delivery(&row)?;
        // What its transform made, once it ran; else the event's payload with `hookId`.
        let body = match row.try_get::<Option<String>, _>("request_body")? {
            Some(body) => Some(body),
            None => row
                .try_get::<Option<String>, _>("payload")?
                .map(|p| delivery_body(&p, &d.hook_id)),
        };
        let attempts = sqlx::query(&attempts_sql(Marks::Question, TIE))
            .bind(&d.hook_id)
            .bind(&d.id)
            .bind(d.created_at)
            .bind(d.updated_at)
            .fetch_all(&self.reader)
            .await?
            .iter()
            .map(|r| attempt(r, body.clone()))
            .collect::<StoreResult<_>>()?;
        Ok(Some(DeliveryDetail {
            delivery: d,
            request_body: body,
            request_headers: row.try_get("request_headers")?,
            attempts,
        }))
    }

    pub(super) async fn count_recoverable_here(&self, r: &Recovery) -> StoreResult<u64> {
        let sql = format!(
            "SELECT COUNT(*) FROM deliveries WHERE {}",
            recovery_filter(Marks::Question)
        );
        let n: i64 = sqlx::query_scalar(&sql)
            .bind(&r.hook_id)
            .bind(r.window.since)
            .bind(r.window.until)
            .bind(r.before)
            .fetch_one(&self.reader)
            .await?;
        Ok(n as u64)
    }

    pub(super) async fn count_replayable_here(&self, r: &Replay) -> StoreResult<u64> {
        let names = serde_json::to_string(&r.events)
            .map_err(|e| StoreError::Database(format!("event names: {e}")))?;
        let sql = format!(
            "SELECT COUNT(*) FROM events e WHERE {}",
            replay_filter(
                Marks::Question,
                "e.name IN (SELECT value FROM json_each(?3))"
            )
        );
        let n: i64 = sqlx::query_scalar(&sql)
            .bind(r.window.since)
            .bind(r.window.until)
            .bind(names)
            .bind(&r.hook_id)
            .fetch_one(&self.reader)
            .await?;
        Ok(n as u64)
    }
}

/// An event row (`storage::events` columns), its deliveries not counted yet.
fn event(row: &SqliteRow) -> StoreResult<PublishedEvent> {
    Ok(PublishedEvent {
        id: row.try_get("id")?,
        name: row.try_get("name")?,
        payload: row.try_get("payload")?,
        created_at: row.try_get("created_at")?,
        deliveries: DeliveryCounts::default(),
    })
}

impl SqliteStore {
    pub(super) async fn list_events_here(
        &self,
        q: &EventQuery,
    ) -> StoreResult<Vec<PublishedEvent>> {
        let (sql, mut args) = events::list_sql(q, Marks::Question);
        args.push(Arg::Int(i64::from(q.page.limit)));
        args.push(Arg::Int(q.page.offset.min(i64::MAX as u64) as i64));
        let rows = bind(sqlx::query(&sql), &args)
            .fetch_all(&self.reader)
            .await?;
        let mut list = rows.iter().map(event).collect::<StoreResult<Vec<_>>>()?;
        self.count_deliveries(&mut list).await?;
        Ok(list)
    }

    pub(super) async fn get_event_here(&self, id: &str) -> StoreResult<Option<PublishedEvent>> {
        let Some(row) = sqlx::query(&events::get_sql(Marks::Question))
            .bind(id)
            .fetch_optional(&self.reader)
            .await?
        else {
            return Ok(None);
        };
        let mut list = vec![event(&row)?];
        self.count_deliveries(&mut list).await?;
        Ok(list.pop())
    }

    /// Fills in each event's delivery counts, in one query.
    async fn count_deliveries(&self, list: &mut [PublishedEvent]) -> StoreResult<()> {
        if list.is_empty() {
            return Ok(());
        }
        let sql = events::counts_sql(list.len(), Marks::Question);
        let mut query = sqlx::query(&sql);
        for e in list.iter() {
            query = query.bind(e.id.as_str());
        }
        for row in query.fetch_all(&self.reader).await? {
            let id: String = row.try_get("event_id")?;
            let state: i64 = row.try_get("state")?;
            let n: i64 = row.try_get::<i64, _>("n")?;
            if let Some(e) = list.iter_mut().find(|e| e.id == id) {
                e.deliveries.add(state, n.max(0) as u64);
            }
        }
        Ok(())
    }
}
