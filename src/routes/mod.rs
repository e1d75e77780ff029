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
use crate::delivery::Waker;
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
    pub waker: Waker,
    /// SHA-256 of the admin token.
    pub admin_token_hash: [u8; 32],
    pub allow_private: bool,
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
        .nest("/api", api)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(TraceLayer::new_for_http())
        .with_state(state)
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
