use axum::Json;
use serde_json::{json, Value};

/// `GET /healthz`: the process is up and serving requests. No auth, no database round trip.
pub async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}
