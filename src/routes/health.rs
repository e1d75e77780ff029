//! Operational endpoints, outside `/api` and without auth: what a load balancer and a
//! Prometheus server call. None of them shows a hook, an event or a secret.

use super::error::ApiError;
use super::AppState;
use crate::clock::now_ms;
use crate::metrics::CONTENT_TYPE;
use axum::extract::State;
use axum::http::header;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use std::time::Duration;

/// How long a readiness or metrics probe waits for the database before it answers 503.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// `GET /healthz`: the process is up and serving requests. No database round trip, so a slow
/// database does not get a live process restarted.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

fn unavailable(message: String) -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "database.unavailable",
        message,
    )
}

/// `GET /readyz`: the database answers, so this node can take events. 503 otherwise.
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    match tokio::time::timeout(PROBE_TIMEOUT, state.store.ping()).await {
        Ok(Ok(())) => Ok(Json(json!({"status": "ready"}))),
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: the database did not answer");
            Err(unavailable(format!("The database did not answer: {e}")))
        }
        Err(_) => Err(unavailable(format!(
            "The database did not answer within {PROBE_TIMEOUT:?}."
        ))),
    }
}

/// `GET /metrics`: Prometheus metrics. The gauges that describe the queue are read from the
/// database now, so every node reports the same shared queue.
pub async fn metrics(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let stats = tokio::time::timeout(PROBE_TIMEOUT, state.store.queue_stats(now_ms()))
        .await
        .map_err(|_| {
            unavailable(format!(
                "The database did not answer within {PROBE_TIMEOUT:?}."
            ))
        })??;
    state.metrics.set_store_view(&stats);
    Ok((
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.render(),
    ))
}
