//! Deliveries as objects (hookline's own routes, issue 15): `GET /api/deliveries` and
//! `GET /api/deliveries/{id}`. Logto has nothing like them; its `recent-logs` stays as it is.
//!
//! A delivery is one (event, hook) pair: its `id` is the `webhook-id` every attempt sends.
//! Shapes:
//! - list item: `{id, eventId, hookId, event, status, attempts, nextAttemptAt, createdAt,
//!   updatedAt, lastResponseStatus, lastDurationMs}`; `status` is `queued`, `succeeded`,
//!   `failed` or `skipped` (its hook's transform answered `null`), times are epoch ms,
//!   `nextAttemptAt` is `null` unless queued; the `last…` pair is the latest attempt's
//!   response status (`null` before the first attempt or without a response) and duration.
//! - one delivery: the same, plus `requestBody` (the JSON every attempt sends: what the
//!   hook's transform made, once it ran; `null` if its event is gone), `requestHeaders` (the
//!   custom headers a transform chose, only when it chose some) and `attempts`, oldest first:
//!   `{id, attempt, success, responseStatus, responseBody, durationMs, error, createdAt,
//!   script}` (`responseBody` as received, at most 20 KB; `script`: the transform's run at
//!   that attempt, `{durationMs, logs, skipped?}`, or `null`).

use super::error::ApiError;
use super::extract::{ApiPath, QueryMap};
use super::pagination::Pagination;
use super::AppState;
use crate::clock::now_ms;
use crate::domain::event::{EventKind, HookEvent};
use crate::storage::deliveries::{DeliveryInfo, DeliveryQuery, DeliveryStatus};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// The query parameters the list takes; any other is refused rather than ignored.
const LIST_PARAMETERS: [&str; 8] = [
    "hookId",
    "eventId",
    "event",
    "status",
    "since",
    "until",
    "page",
    "page_size",
];

/// Ids are 21 characters; anything much longer cannot match and is refused.
const MAX_ID_LENGTH: usize = 128;

/// `GET /api/deliveries?hookId=&eventId=&event=&status=&since=&until=&page=&page_size=`:
/// newest first, always paginated (`Total-Number`, `Link`; 20 a page by default). `since`
/// and `until` bound the creation time, inclusive, as epoch milliseconds or RFC 3339 times.
/// Errors: 400 `guard.invalid_input` for an unknown parameter, an unknown event or status, a
/// bad time, or `since` after `until`; 400 `guard.invalid_pagination`.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> Result<Response, ApiError> {
    let pagination = Pagination::always(&q)?;
    let query = parse_query(&q, pagination)?;
    let (list, total) = state.store.list_deliveries(&query).await?;
    let body: Vec<Value> = list.iter().map(delivery_json).collect();
    Ok((pagination.headers(&headers, &uri, total), Json(body)).into_response())
}

/// `GET /api/deliveries/{id}`: the delivery with its request body and attempts; 404
/// `delivery.not_found` if there is none.
pub async fn get(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<Value>, ApiError> {
    let detail = match state.store.get_delivery(&id).await? {
        Some(d) => d,
        None => return Err(not_found(&id)),
    };
    let mut body = delivery_json(&detail.delivery);
    let request_body = detail
        .request_body
        .as_deref()
        .and_then(|b| serde_json::from_str::<Value>(b).ok())
        .unwrap_or(Value::Null);
    let attempts: Vec<Value> = detail
        .attempts
        .into_iter()
        .map(|a| {
            json!({
                "id": a.id,
                "attempt": a.attempt,
                "success": a.success,
                "responseStatus": a.response_status,
                "responseBody": a.response_body,
                "durationMs": a.duration_ms,
                "error": a.error,
                "createdAt": a.created_at,
                "script": stored_json(a.script.as_deref()),
            })
        })
        .collect();
    if let Some(obj) = body.as_object_mut() {
        obj.insert("requestBody".into(), request_body);
        if let Some(headers) = detail.request_headers.as_deref() {
            obj.insert("requestHeaders".into(), stored_json(Some(headers)));
        }
        obj.insert("attempts".into(), Value::Array(attempts));
    }
    Ok(Json(body))
}

/// `POST /api/deliveries/{id}/retry`: sends the delivery again now, whatever its state, with
/// the same `webhook-id` and body, and its retry schedule started afresh (attempt numbers go
/// on; see `Store::retry_delivery` for one being sent at that moment). Answers 202 with the
/// delivery as it now is. Errors: 404 `delivery.not_found` (also once its hook is deleted,
/// which deletes its deliveries); 409 `hook.disabled` (it would wait until the hook is
/// enabled); 409 `delivery.not_retryable` for the
/// logged call of a blocking hook (those are answered in the interaction, never queued).
pub async fn retry(
    State(state): State<AppState>,
    ApiPath(id): ApiPath<String>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let d = retry_delivery(&state, &id).await?;
    Ok((StatusCode::ACCEPTED, Json(delivery_json(&d))))
}

/// Retries a delivery (the API's and the console's): see [`retry`] for the rules and errors.
/// The delivery as it now is.
pub(crate) async fn retry_delivery(state: &AppState, id: &str) -> Result<DeliveryInfo, ApiError> {
    let id = id.to_owned();
    let Some(found) = state.store.get_delivery(&id).await? else {
        return Err(not_found(&id));
    };
    let d = found.delivery;
    if HookEvent::parse(&d.event_name).is_ok_and(|e| e.kind() == EventKind::Blocking) {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            "delivery.not_retryable",
            "This is the logged call of a blocking hook: it was answered in its interaction and is never queued.",
        ));
    }
    // A hook's deliveries go with it; one left by a version that kept them has nowhere to go.
    match state.store.get_hook(&d.hook_id).await? {
        None => {
            return Err(ApiError::new(
                StatusCode::CONFLICT,
                "delivery.hook_deleted",
                "The delivery's hook was deleted; there is nowhere to send it.",
            ))
        }
        Some(h) if !h.enabled => return Err(super::recovery::disabled(&h.id)),
        Some(_) => {}
    }
    if !state.store.retry_delivery(&id, now_ms()).await? {
        return Err(not_found(&id));
    }
    let now = state.store.get_delivery(&id).await?;
    Ok(now.map_or(d, |n| n.delivery))
}

/// 404 `delivery.not_found` naming (the start of) `id`.
pub(crate) fn not_found(id: &str) -> ApiError {
    let id: String = id.chars().take(64).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        "delivery.not_found",
        format!("The delivery with ID `{id}` does not exist."),
    )
}

/// A stored JSON column (a script run, a transform's headers) as JSON; `null` when absent.
pub(super) fn stored_json(stored: Option<&str>) -> Value {
    stored
        .and_then(|s| serde_json::from_str(s).ok())
        .unwrap_or(Value::Null)
}

fn delivery_json(d: &DeliveryInfo) -> Value {
    json!({
        "id": d.id,
        "eventId": d.event_id,
        "hookId": d.hook_id,
        "event": d.event_name,
        "status": d.status.as_str(),
        "attempts": d.attempts,
        "nextAttemptAt": d.next_attempt_at,
        "createdAt": d.created_at,
        "updatedAt": d.updated_at,
        "lastResponseStatus": d.last_response_status,
        "lastDurationMs": d.last_duration_ms,
    })
}

fn parse_query(q: &QueryMap, pagination: Pagination) -> Result<DeliveryQuery, ApiError> {
    if let Some(unknown) = q.0.keys().find(|k| !LIST_PARAMETERS.contains(&k.as_str())) {
        let unknown: String = unknown.chars().take(64).collect();
        return Err(ApiError::invalid_input(format!(
            "unknown query parameter `{unknown}`; the list takes {}",
            LIST_PARAMETERS.join(", ")
        )));
    }
    let id = |key: &str| -> Result<Option<String>, ApiError> {
        match q.0.get(key) {
            None => Ok(None),
            Some(v) if v.is_empty() || v.len() > MAX_ID_LENGTH => Err(ApiError::invalid_input(
                format!("query parameter `{key}` must be an id of 1 to {MAX_ID_LENGTH} bytes"),
            )),
            Some(v) => Ok(Some(v.clone())),
        }
    };
    let event_name = match q.0.get("event") {
        None => None,
        Some(name) => Some(
            HookEvent::parse(name)
                .map_err(|e| ApiError::invalid_input(format!("query parameter `event`: {e}")))?
                .name()
                .to_owned(),
        ),
    };
    let status = match q.0.get("status") {
        None => None,
        Some(s) => Some(DeliveryStatus::parse(s).ok_or_else(|| {
            ApiError::invalid_input(
                "query parameter `status` must be `queued`, `succeeded`, `failed` or `skipped`",
            )
        })?),
    };
    let since = time_parameter(q, "since")?;
    let until = time_parameter(q, "until")?;
    if let (Some(s), Some(u)) = (since, until) {
        if s > u {
            return Err(ApiError::invalid_input("`since` must not be after `until`"));
        }
    }
    Ok(DeliveryQuery {
        hook_id: id("hookId")?,
        event_id: id("eventId")?,
        event_name,
        status,
        since,
        until,
        page: pagination.as_page(),
    })
}

/// A time parameter: epoch milliseconds, or an RFC 3339 time (`2026-12-01T05:00:00Z`).
pub(crate) fn time_parameter(q: &QueryMap, key: &str) -> Result<Option<i64>, ApiError> {
    let Some(raw) = q.0.get(key) else {
        return Ok(None);
    };
    parse_time(raw).map(Some).ok_or_else(|| {
        ApiError::invalid_input(format!(
            "`{key}` must be epoch milliseconds (0 or more) or an RFC 3339 time"
        ))
    })
}

/// Epoch milliseconds from `raw`: a non-negative integer, or an RFC 3339 time at or after
/// 1970.
pub(crate) fn parse_time(raw: &str) -> Option<i64> {
    let raw = raw.trim();
    if let Ok(ms) = raw.parse::<i64>() {
        return (ms >= 0).then_some(ms);
    }
    let t =
        time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).ok()?;
    let ms = i64::try_from(t.unix_timestamp_nanos() / 1_000_000).ok()?;
    (ms >= 0).then_some(ms)
}

#[cfg(test)]
mod tests {
    use super::parse_time;

    #[test]
    fn times_are_epoch_milliseconds_or_rfc_3339() {
        assert_eq!(parse_time("1764565200000"), Some(1_764_565_200_000));
        assert_eq!(parse_time("2025-12-01T05:00:00Z"), Some(1_764_565_200_000));
        assert_eq!(
            parse_time("2025-12-01T06:00:00.5+01:00"),
            Some(1_764_565_200_500)
        );
        assert_eq!(parse_time("-1"), None);
        assert_eq!(parse_time("1969-12-31T23:59:59Z"), None);
        assert_eq!(parse_time("yesterday"), None);
    }
}
