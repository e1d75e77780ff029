//! `/api/events` (ingest) and `/api/hook-events` (the catalog).

use super::error::ApiError;
use super::extract::ApiJson;
use super::AppState;
use crate::clock::now_ms;
use crate::domain::event::{EventKind, HookEvent};
use crate::domain::id::new_id;
use crate::domain::payload::{event_payload, iso_timestamp};
use crate::storage::NewEvent;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};
use time::OffsetDateTime;

/// `POST /api/events`: publishes an event. The event and one delivery per subscribed, enabled
/// hook are committed before the 202, so an accepted event survives a crash.
pub async fn publish(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let Value::Object(published) = body else {
        return Err(ApiError::invalid_input(
            "the body must be a JSON object with an `event` name",
        ));
    };
    let event = match published.get("event") {
        Some(Value::String(name)) => HookEvent::parse(name)
            .map_err(|e| ApiError::new(StatusCode::BAD_REQUEST, "event.unknown", e.to_string()))?,
        Some(_) => return Err(ApiError::invalid_input("`event` must be a string")),
        None => return Err(ApiError::invalid_input("`event` is required")),
    };
    match event.kind() {
        EventKind::Blocking => return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "event.not_publishable",
            format!("{event} is a blocking event: hookline calls it inside interactions, it is not published"),
        )),
        EventKind::Operational => return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "event.not_publishable",
            format!("{event} is one of hookline's operational events: hookline fires it, it is not published"),
        )),
        EventKind::Interaction | EventKind::Data | EventKind::Exception => {}
    }
    let now = OffsetDateTime::now_utc();
    let new_event = NewEvent {
        id: new_id(),
        event,
        payload: event_payload(event, published, &iso_timestamp(now))
            .map_err(ApiError::invalid_input)?,
        created_at: now_ms(),
    };
    let deliveries = state.publisher.publish(&new_event).await?;
    state.metrics.events_ingested.inc();
    tracing::Span::current().record("event_id", new_event.id.as_str());
    tracing::debug!(event_id = %new_event.id, event = %event, deliveries, "event accepted");
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({"id": new_event.id, "deliveries": deliveries})),
    ))
}

/// `GET /api/hook-events`: every event a hook can subscribe to, with its kind.
pub async fn catalog() -> Json<Vec<Map<String, Value>>> {
    Json(
        HookEvent::all()
            .map(|e| {
                let mut m = Map::new();
                m.insert("name".into(), json!(e.name()));
                m.insert("kind".into(), json!(e.kind()));
                m
            })
            .collect(),
    )
}
