//! The HTTP API. Handlers are thin: parse the request into domain types, call the store or the
//! sender, shape the answer. The router and the state they share live here.

pub mod auth;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod hooks;
pub mod pagination;

use crate::delivery::http::WebhookSender;
use crate::delivery::Dispatch;
use crate::metrics::Metrics;
use crate::storage::Store;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{get, patch, post};
use axum::Router;
use error::ApiError;
use std::sync::Arc;
use tower_http::trace::TraceLayer;

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub sender: Arc<WebhookSender>,
    /// Hands new deliveries to the delivery engine.
    pub dispatch: Dispatch,
    /// SHA-256 of the admin token.
    pub admin_token_hash: [u8; 32],
    pub allow_private: bool,
    pub metrics: Arc<Metrics>,
}

pub fn router(state: AppState, max_body_bytes: usize) -> Router {
    let api = Router::new()
        .route("/hooks", get(hooks::list).post(hooks::create))
        .route(
            "/hooks/{id}",
            get(hooks::get).patch(hooks::update).delete(hooks::delete),
        )
        .route("/hooks/{id}/signing-key", patch(hooks::rotate_signing_key))
        .route("/hooks/{id}/test", post(hooks::test))
        .route("/hooks/{id}/recent-logs", get(hooks::recent_logs))
        .route("/hook-events", get(events::catalog))
        .route("/events", post(events::publish))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ));
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .nest("/api", api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// The span every request runs in. It names the route pattern, not the path, so no id or
/// query value of a URL reaches the logs by way of the span; handlers fill in `hook_id` and
/// `event_id` when they know them (see [`record_hook_id`]).
fn request_span(req: &axum::http::Request<axum::body::Body>) -> tracing::Span {
    let route = req
        .extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or("unmatched", |p| p.as_str());
    tracing::info_span!(
        "request",
        method = %req.method(),
        route,
        hook_id = tracing::field::Empty,
        event_id = tracing::field::Empty,
    )
}

/// Adds the hook a request is about to its span.
pub fn record_hook_id(id: &str) {
    tracing::Span::current().record("hook_id", id);
}

async fn not_found() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "route.not_found",
        "There is no such route.",
    )
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "route.method_not_allowed",
        "This route does not take that method.",
    )
}
