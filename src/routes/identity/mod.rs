//! The identity core's Management API, shaped like Logto's: users, API resources and scopes,
//! roles, organizations with their members, applications, roles and scopes, applications.
//! Thin: each handler parses the request into domain input and runs one operation of
//! `crate::identity` (which commits the change and its events together) through [`run`],
//! which owns the route's status: the answer and every event the change fires carry the same
//! one, given once per route.
//!
//! The handlers live by URL family, as `crate::identity` has them: `users.rs`, `authz.rs`
//! (resources, scopes, roles), `organizations.rs`, `invitations.rs`, `applications.rs`.

mod applications;
mod authz;
mod invitations;
mod organizations;
mod users;

pub use applications::*;
pub use authz::*;
pub use invitations::*;
pub use organizations::*;
pub use users::*;

use super::error::ApiError;
use super::extract::QueryMap;
use super::pagination::Pagination;
use super::AppState;
use crate::domain::identity::{is_possible_id, InputError};
use crate::domain::payload::ApiCall;
use crate::identity::Emitter;
use crate::storage::identity::{DocQuery, IdentityError, Kind, Link};
use crate::storage::Store;
use axum::extract::{FromRequestParts, MatchedPath, OriginalUri, RawPathParams};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{Map, Value};
use std::future::Future;
use std::sync::Arc;

type ApiResult = Result<Response, ApiError>;

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::NotFound { .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                "entity.not_exists_with_id",
                e.to_string(),
            ),
            IdentityError::Conflict { code, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            IdentityError::Refused {
                status,
                code,
                message,
            } => ApiError::new(
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST),
                code,
                message,
            ),
            IdentityError::Input(i) => i.into(),
            IdentityError::Store(s) => s.into(),
        }
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        if e.code == "guard.invalid_input" {
            ApiError::invalid_input(e.message)
        } else if e.code.starts_with("user.password_algorithm_not") {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code, e.message)
        } else {
            ApiError::new(StatusCode::BAD_REQUEST, e.code, e.message)
        }
    }
}

/// The call as a data event describes it: user agent, the caller's IP (from a trusted proxy,
/// the address `X-Forwarded-For` names: see `TrustedProxies::client_ip`), path and route
/// without `/api`, method and route parameters.
pub struct Call(pub ApiCall);

impl FromRequestParts<AppState> for Call {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let (ip, user_agent) = crate::routes::client_of(parts, state);
        let ip = ip.to_string();
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.path().to_owned(), |u| u.0.path().to_owned());
        let path = path.strip_prefix("/api").unwrap_or(&path).to_owned();
        let matched = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(String::new, |m| ApiCall::logto_route(m.as_str()));
        let params: Map<String, Value> = RawPathParams::from_request_parts(parts, state)
            .await
            .map(|p| {
                p.iter()
                    .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Call(ApiCall {
            user_agent,
            ip,
            path,
            method: parts.method.as_str().to_owned(),
            matched_route: matched,
            params,
        }))
    }
}

/// A path id that cannot name a row (too long) is a 404 without a lookup.
fn id(kind: Kind, raw: &str) -> Result<String, ApiError> {
    if is_possible_id(raw) {
        Ok(raw.to_owned())
    } else {
        Err(IdentityError::not_found(kind, raw).into())
    }
}

/// Runs one change with the route's one `status`: the events the change fires carry it (its
/// [`Emitter`] is made here), and the answer has it, with the change's body (none when the
/// change answers `null`: a 204, or a 201 Logto sends without one).
async fn run<F, Fut>(state: &AppState, call: ApiCall, status: StatusCode, change: F) -> ApiResult
where
    F: FnOnce(Emitter, Arc<dyn Store>) -> Fut,
    Fut: Future<Output = Result<Value, ApiError>>,
{
    let body = change(Emitter::new(call, status.as_u16()), state.store.clone()).await?;
    Ok(if body.is_null() {
        status.into_response()
    } else {
        (status, Json(body)).into_response()
    })
}

async fn get_one(state: &AppState, kind: Kind, raw_id: &str) -> ApiResult {
    let id = id(kind, raw_id)?;
    let doc = state
        .store
        .get_doc(kind, &id)
        .await?
        .ok_or_else(|| ApiError::from(IdentityError::not_found(kind, &id)))?;
    Ok(Json(doc).into_response())
}

/// A listing, newest first, paginated when the query asks, or always where Logto's route
/// always paginates (`koaPagination()` without `isOptional`: users, roles, a resource's
/// scopes, organizations, organization roles).
async fn list(
    state: &AppState,
    kind: Kind,
    (headers, uri): (&HeaderMap, &axum::http::Uri),
    q: &QueryMap,
    parent: Option<String>,
    always_paged: bool,
) -> ApiResult {
    let pagination = Pagination::from_query(q, !always_paged)?;
    // In NFC, as identifiers are stored: a decomposed `é` finds the precomposed one.
    let search =
        q.0.get("search")
            .filter(|s| !s.is_empty())
            .map(|s| crate::domain::identity::user::nfc(s));
    let query = DocQuery {
        parent,
        search,
        page: pagination.map(Pagination::as_page),
    };
    let (docs, total) = state.store.list_docs(kind, &query).await?;
    let out = match pagination {
        Some(p) => p.headers(headers, uri, total),
        None => HeaderMap::new(),
    };
    Ok((out, Json(docs)).into_response())
}

/// What `a` links to (a user's roles, an organization's members, …), oldest link first,
/// paginated like a listing (always where Logto's route always paginates).
async fn linked(
    state: &AppState,
    link: Link,
    owner: Kind,
    a: &str,
    at: (&HeaderMap, &axum::http::Uri, &QueryMap),
    always_paged: bool,
) -> ApiResult {
    Ok(linked_page(state, link, owner, a, at, always_paged)
        .await?
        .into_response())
}

/// [`linked`]'s page and headers, for routes that shape the items further.
async fn linked_page(
    state: &AppState,
    link: Link,
    owner: Kind,
    a: &str,
    (headers, uri, q): (&HeaderMap, &axum::http::Uri, &QueryMap),
    always_paged: bool,
) -> Result<(HeaderMap, Json<Vec<Value>>), ApiError> {
    let pagination = Pagination::from_query(q, !always_paged)?;
    let a = id(owner, a)?;
    if state.store.get_doc(owner, &a).await?.is_none() {
        return Err(IdentityError::not_found(owner, &a).into());
    }
    let docs = state.store.linked_docs(link, None, &a).await?;
    Ok(paged(docs, pagination, headers, uri))
}

/// `docs` cut to the page asked for, with its headers (none without pagination).
fn paged(
    docs: Vec<Value>,
    pagination: Option<Pagination>,
    headers: &HeaderMap,
    uri: &axum::http::Uri,
) -> (HeaderMap, Json<Vec<Value>>) {
    match pagination {
        None => (HeaderMap::new(), Json(docs)),
        Some(p) => {
            let total = docs.len() as u64;
            let page = p.as_page();
            let docs = docs
                .into_iter()
                .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
                .take(page.limit as usize)
                .collect();
            (p.headers(headers, uri, total), Json(docs))
        }
    }
}
