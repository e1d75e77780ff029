//! The console (issue 17): server-rendered pages at `/console` for operators, embedded in the
//! binary (no build step, no CDN, no Node.js). HTML comes from `maud` templates, which
//! escape every value they interpolate; the one stylesheet is `console.css`, served from
//! memory. Pages work without JavaScript.
//!
//! Authentication is the admin token exchanged for a session ([`session`]); every page but
//! the sign-in needs one, and every change carries the session's CSRF token. Responses are
//! `Cache-Control: no-store` with a strict `Content-Security-Policy` (scripts and styles from
//! this origin only, no framing).
//!
//! Routes, by URL (each file of handlers has its own; `views/` has their pages):
//! - `GET /console` → the hooks page;
//! - `GET /console/sign-in`, `POST /console/sign-in {token}`, `POST /console/sign-out {csrf}`;
//! - `GET /console/hooks`: every hook, with its last 24 h of requests and success rate;
//! - `GET /console/hooks/new`, `POST /console/hooks {csrf, name, url, events…, headers}`: a
//!   new hook, through the same checks as `POST /api/hooks`;
//! - `GET /console/hooks/{id}`: one hook, and its changes: `POST /console/hooks/{id}` (the
//!   form), `…/enabled`, `…/signing-key`, `…/test`, `GET`/`POST …/delete` (asks first);
//! - `GET /console/deliveries?hookId=&status=&since=&until=`: the newest 50 deliveries
//!   matching, refreshed live (`/console/deliveries/live?…`, the table alone, which
//!   `console.js` polls); `POST /console/deliveries/recover` and `…/replay` (one hook's
//!   window, as `POST /api/hooks/{id}/recover` and `…/replay`);
//! - `GET /console/deliveries/{id}`: one delivery with every attempt, and `POST
//!   /console/deliveries/{id}/retry {csrf}` (as `POST /api/deliveries/{id}/retry`);
//! - `GET /console/events?event=&page=`, `GET /console/events/{id}`: published events and
//!   where each went;
//! - `GET /console/actions`, `GET`/`POST /console/actions/{type}` (save, or dry-run what is
//!   typed), `GET`/`POST …/delete`: Logto's Actions;
//! - `GET /console/users`, `…/roles`, `…/organizations`, `…/applications` `?search=&page=`:
//!   the identity core's data, read-only.

mod actions;
mod deliveries;
mod events;
mod hooks;
mod identity;
pub mod session;
mod sign_in;
mod views;

use crate::clock::now_ms;
use crate::routes::AppState;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::Markup;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use session::Session;

/// The console's settings (`--console-session-ttl`).
#[derive(Debug, Clone, Copy)]
pub struct ConsoleSettings {
    /// How long a session lasts from its sign-in, in ms.
    pub session_ttl_ms: i64,
}

/// The console's routes, to merge into the app's router.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(|| async { see_other("/console/hooks") }))
        .route("/console/", get(|| async { see_other("/console/hooks") }))
        .route(
            "/console/assets/console.js",
            get(|| async { asset(views::SCRIPT, "text/javascript; charset=utf-8") }),
        )
        .route(
            "/console/assets/console.css",
            get(|| async { asset(views::STYLESHEET, "text/css; charset=utf-8") }),
        )
        .merge(sign_in::router())
        .merge(hooks::router())
        .merge(deliveries::router())
        .merge(events::router())
        .merge(actions::router())
        .merge(identity::router())
        // Any other console address: a console page that says so, not the API's JSON.
        .route(
            "/console/{*rest}",
            get(|| async {
                html(
                    StatusCode::NOT_FOUND,
                    views::problem("There is no such console page."),
                )
            }),
        )
}

/// A page, with the headers every console page has.
fn html(status: StatusCode, markup: Markup) -> Response {
    let mut res = (status, markup.into_string()).into_response();
    let h = res.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        "content-security-policy",
        HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
        ),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    h.insert("referrer-policy", HeaderValue::from_static("same-origin"));
    res
}

/// 303 See Other to `to` (after a form post, the browser GETs the next page).
fn see_other(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(LOCATION, v);
    }
    res.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// 303 to the item `id` of the list at `list` (`/console/hooks` → `/console/hooks/{id}`), or
/// to the list for what cannot be an id (ids are letters and digits).
fn see_item(list: &str, id: &str) -> Response {
    if !id.is_empty() && id.chars().all(|c| c.is_ascii_alphanumeric()) {
        see_other(&format!("{list}/{id}"))
    } else {
        see_other(list)
    }
}

/// What the API's refusal `e` means, said for the console (whose pages have buttons where
/// the API's messages name requests).
fn said(e: &crate::routes::error::ApiError) -> String {
    match e.code {
        "hook.disabled" => "The hook is disabled: enable it on its page first.".into(),
        _ => e.message.clone(),
    }
}

/// A page for an error the store answered (503 when it is unavailable).
fn store_failed(e: crate::storage::StoreError) -> Response {
    tracing::warn!(error = %e, "a console page could not read or write the store");
    let status = match e {
        crate::storage::StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    html(
        status,
        views::problem("The database did not answer. Try again shortly."),
    )
}

/// A signed-in request: its session id and session. Without a live session, the request is
/// sent to the sign-in page.
pub struct SignedIn {
    pub id: String,
    pub session: Session,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        // A page asked for without a session comes back after the sign-in (`next`); the live
        // table's polls and changes do not.
        let to_sign_in = || {
            let path = parts.uri.path_and_query().map_or("", |p| p.as_str());
            let come_back = parts.method == axum::http::Method::GET
                && !parts.uri.path().starts_with("/console/deliveries/live");
            match (come_back, session::safe_next(path)) {
                (true, Some(next)) => see_other(&format!(
                    "/console/sign-in?{}",
                    serde_urlencoded::to_string([("next", next)]).unwrap_or_default()
                )),
                _ => see_other("/console/sign-in"),
            }
        };
        let Some(id) = session::cookie_id(&parts.headers).map(str::to_owned) else {
            return Err(to_sign_in());
        };
        let token = session::token_fingerprint(&state.admin_token_hash);
        match session::find(&*state.store, &id, now_ms(), &token).await {
            Ok(Some(session)) => Ok(SignedIn { id, session }),
            Ok(None) => Err(to_sign_in()),
            Err(e) => Err(store_failed(e)),
        }
    }
}

/// A form body (`application/x-www-form-urlencoded`), read within the request's body
/// deadline and size limit as every body is.
pub struct ConsoleForm<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for ConsoleForm<T> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        // A body over the limit or too slow: the API's reason, as a page.
        let bytes = crate::routes::extract::body_bytes(req, state)
            .await
            .map_err(|e| html(e.status, views::problem(&e.message)))?;
        serde_urlencoded::from_bytes(&bytes)
            .map(ConsoleForm)
            .map_err(|e| {
                html(
                    StatusCode::BAD_REQUEST,
                    views::problem(&format!("The form could not be read: {e}")),
                )
            })
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Checks a change's CSRF token and origin: `None` when it may go on, else the 403 page.
fn refuse_forgery(parts: &Parts, signed_in: &SignedIn, csrf: &str) -> Option<Response> {
    if !session::same_origin(&parts.headers) {
        tracing::warn!("a console change sent from another site's page was refused");
        return Some(html(
            StatusCode::FORBIDDEN,
            views::problem("This change was sent from another site's page, so it was refused."),
        ));
    }
    if signed_in.session.csrf_matches(csrf) {
        return None;
    }
    tracing::warn!("a console change without its session's CSRF token was refused");
    Some(html(
        StatusCode::FORBIDDEN,
        views::problem("This change did not come from a console page (its CSRF token is missing or wrong). Reload the page and try again."),
    ))
}

/// An embedded asset (`content_type`), cacheable for an hour.
fn asset(body: &'static str, content_type: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    res
}
