//! The HTTP API. Handlers are thin: parse the request into domain types, call the store or the
//! sender, shape the answer. The router and the state they share live here.

pub mod actions;
pub mod auth;
pub mod deliveries;
pub mod error;
pub mod events;
pub mod extract;
pub mod health;
pub mod hooks;
pub mod identity;
pub mod interactions;
pub mod pagination;
pub mod recovery;

use crate::delivery::http::WebhookSender;
use crate::delivery::Publisher;
use crate::metrics::Metrics;
use crate::storage::Store;
use axum::extract::DefaultBodyLimit;
use axum::http::StatusCode;
use axum::routing::{delete, get, patch, post, put};
use axum::Router;
use error::ApiError;
use std::sync::Arc;
use tower_http::trace::TraceLayer;

/// What every route reads, behind one `Arc`: axum clones the state for each `State`
/// extractor and each middleware of every request, and a clone of the fields themselves (six
/// `Arc`s, a channel and more) cost about 16 atomic increments and as many decrements,
/// contended between the runtime's threads (about 0.65 % of hookline's CPU at 3,000
/// events/s, BENCHMARKS.md).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> Self {
        Self(Arc::new(shared))
    }
}

impl std::ops::Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The state's contents (see [`AppState`]).
pub struct Shared {
    pub store: Arc<dyn Store>,
    pub sender: Arc<WebhookSender>,
    /// Hands new deliveries to the delivery engine.
    pub publisher: Publisher,
    /// SHA-256 of the admin token.
    pub admin_token_hash: [u8; 32],
    /// Which non-public targets hooks may reach (`--allow-private-targets`,
    /// `--allowed-targets`).
    pub targets: crate::domain::target::TargetPolicy,
    pub metrics: Arc<Metrics>,
    /// Whose `X-Forwarded-For` names an end user's address in interaction calls.
    pub trusted_proxies: crate::domain::interaction::TrustedProxies,
    pub interactions: crate::identity::interactions::InteractionSettings,
    /// Runs recoveries and replays in the background.
    pub operations: crate::delivery::operations::Operations,
    pub console: crate::console::ConsoleSettings,
}

/// Every route, or (`serve_api` false, a worker node) only the health and metrics ones.
pub fn router(state: AppState, max_body_bytes: usize, serve_api: bool) -> Router {
    let api = Router::new()
        .route("/hooks", get(hooks::list).post(hooks::create))
        .route(
            "/hooks/{id}",
            get(hooks::get).patch(hooks::update).delete(hooks::delete),
        )
        .route("/hooks/{id}/signing-key", patch(hooks::rotate_signing_key))
        .route("/hooks/{id}/test", post(hooks::test))
        .route("/hooks/{id}/recent-logs", get(hooks::recent_logs))
        .route("/deliveries", get(deliveries::list))
        .route("/deliveries/{id}", get(deliveries::get))
        .route("/deliveries/{id}/retry", post(deliveries::retry))
        .route("/hooks/{id}/recover", post(recovery::recover))
        .route("/hooks/{id}/replay", post(recovery::replay))
        .route("/hook-events", get(events::catalog))
        .route("/configs/actions", get(actions::list))
        .route("/configs/actions/test", post(actions::test))
        .route(
            "/configs/actions/{actionType}",
            get(actions::get)
                .put(actions::put)
                .patch(actions::patch)
                .delete(actions::delete),
        )
        .route("/configs/actions/{actionType}/runs", get(actions::runs))
        .route("/events", post(events::publish))
        .merge(identity_routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_admin,
        ))
        // Added after the admin layer, so not behind it: these authenticate the application.
        .route("/interactions/register", post(interactions::register))
        .route("/interactions/sign-in", post(interactions::sign_in))
        .route(
            "/interactions/forgot-password/verification-codes",
            post(interactions::send_reset_code),
        )
        .route(
            "/interactions/reset-password",
            post(interactions::reset_password),
        );
    let routes = Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics));
    let routes = if serve_api {
        routes.nest("/api", api).merge(crate::console::router())
    } else {
        routes
    };
    routes
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body_bytes))
        .layer(TraceLayer::new_for_http().make_span_with(request_span))
        .with_state(state)
}

/// What a connection over `--max-connections` is served (see `crate::server`): the health
/// routes, so probes still get an answer, and 503 `server.busy` for everything else.
pub fn overflow_router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(health::metrics))
        .fallback(busy)
        .with_state(state)
}

async fn busy() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "server.busy",
        "The server has as many connections open as it serves (--max-connections); try again shortly.",
    )
    .retry_after(1)
}

/// The identity core's Management API, shaped like Logto's. (Path parameters at one
/// position carry one name across routes, as the router requires: `/resources/{resourceId}`.)
fn identity_routes() -> Router<AppState> {
    use identity as i;
    Router::new()
        .route(
            "/applications",
            get(i::list_applications).post(i::create_application),
        )
        .route(
            "/applications/{id}",
            get(i::get_application)
                .patch(i::update_application)
                .delete(i::delete_application),
        )
        .route("/users", get(i::list_users).post(i::create_user))
        .route(
            "/users/{userId}",
            get(i::get_user)
                .patch(i::update_user)
                .delete(i::delete_user),
        )
        .route(
            "/users/{userId}/custom-data",
            get(i::get_custom_data).patch(i::update_custom_data),
        )
        .route("/users/{userId}/profile", patch(i::update_profile))
        .route("/users/{userId}/password", patch(i::update_password))
        .route("/users/{userId}/is-suspended", patch(i::update_suspension))
        .route(
            "/users/{userId}/roles",
            get(i::user_roles)
                .post(i::assign_user_roles)
                .put(i::replace_user_roles),
        )
        .route(
            "/users/{userId}/roles/{roleId}",
            delete(i::remove_user_role),
        )
        .route(
            "/resources",
            get(i::list_resources).post(i::create_resource),
        )
        .route(
            "/resources/{resourceId}",
            get(i::get_resource)
                .patch(i::update_resource)
                .delete(i::delete_resource),
        )
        .route(
            "/resources/{resourceId}/scopes",
            get(i::list_scopes).post(i::create_scope),
        )
        .route(
            "/resources/{resourceId}/scopes/{scopeId}",
            patch(i::update_scope).delete(i::delete_scope),
        )
        .route("/roles", get(i::list_roles).post(i::create_role))
        .route(
            "/roles/{id}",
            get(i::get_role)
                .patch(i::update_role)
                .delete(i::delete_role),
        )
        .route(
            "/roles/{id}/scopes",
            get(i::role_scopes).post(i::add_role_scopes),
        )
        .route("/roles/{id}/scopes/{scopeId}", delete(i::remove_role_scope))
        .route(
            "/organizations",
            get(i::list_organizations).post(i::create_organization),
        )
        .route(
            "/organizations/{id}",
            get(i::get_organization)
                .patch(i::update_organization)
                .delete(i::delete_organization),
        )
        .route(
            "/organizations/{id}/users",
            get(i::organization_users)
                .post(i::add_organization_users)
                .put(i::replace_organization_users),
        )
        .route(
            "/organizations/{id}/users/{userId}",
            delete(i::remove_organization_user),
        )
        .route(
            "/organizations/{id}/applications",
            get(i::organization_applications)
                .post(i::add_organization_applications)
                .put(i::replace_organization_applications),
        )
        .route(
            "/organizations/{id}/applications/{applicationId}",
            delete(i::remove_organization_application),
        )
        .route(
            "/organizations/{id}/users/{userId}/roles",
            get(i::member_roles)
                .post(i::assign_member_roles)
                .put(i::replace_member_roles),
        )
        .route(
            "/organizations/{id}/users/{userId}/roles/{organizationRoleId}",
            delete(i::remove_member_role),
        )
        .route(
            "/organization-roles",
            get(i::list_organization_roles).post(i::create_organization_role),
        )
        .route(
            "/organization-roles/{id}",
            get(i::get_organization_role)
                .patch(i::update_organization_role)
                .delete(i::delete_organization_role),
        )
        .route(
            "/organization-roles/{id}/scopes",
            get(i::organization_role_scopes)
                .post(i::add_organization_role_scopes)
                .put(i::replace_organization_role_scopes),
        )
        .route(
            "/organization-roles/{id}/scopes/{organizationScopeId}",
            delete(i::remove_organization_role_scope),
        )
        .route(
            "/organization-invitations",
            get(i::list_invitations).post(i::create_invitation),
        )
        .route(
            "/organization-invitations/{id}",
            get(i::get_invitation).delete(i::delete_invitation),
        )
        .route(
            "/organization-invitations/{id}/status",
            put(i::set_invitation_status),
        )
        .route(
            "/organization-scopes",
            get(i::list_organization_scopes).post(i::create_organization_scope),
        )
        .route(
            "/organization-scopes/{id}",
            get(i::get_organization_scope)
                .patch(i::update_organization_scope)
                .delete(i::delete_organization_scope),
        )
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

/// Who sent a request: its address (the peer's, or from one of `--trusted-proxies` the client
/// `X-Forwarded-For` names: `TrustedProxies::client_ip`) and its `user-agent`, as data events
/// and interactions record them.
pub(crate) fn client_of(
    parts: &axum::http::request::Parts,
    state: &AppState,
) -> (std::net::IpAddr, Option<String>) {
    let peer = parts
        .extensions
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map_or(std::net::IpAddr::from([127, 0, 0, 1]), |c| c.0.ip());
    let forwarded = parts
        .headers
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok());
    let user_agent = parts
        .headers
        .get(axum::http::header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    (state.trusted_proxies.client_ip(peer, forwarded), user_agent)
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
