//! `/console/sign-in` and `/console/sign-out`: the admin token exchanged for a session, and
//! the session ended ([`super::session`]).

use super::{
    html, refuse_forgery, see_other, session, store_failed, views, ConsoleForm, CsrfForm, SignedIn,
};
use crate::clock::now_ms;
use crate::routes::AppState;
use axum::extract::{Query, State};
use axum::http::header::SET_COOKIE;
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// The routes this file serves.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        // A GET never signs out (it carries no CSRF token): back to the console.
        .route(
            "/console/sign-out",
            get(|| async { see_other("/console/hooks") }).post(sign_out),
        )
}

/// Where to go after the sign-in (`?next=`, a console page), and whether the last session
/// was just signed out.
#[derive(Deserialize, Default)]
struct SignInQuery {
    #[serde(default)]
    next: Option<String>,
    #[serde(default, rename = "signedOut")]
    signed_out: Option<String>,
}

async fn sign_in_page(Query(q): Query<SignInQuery>) -> Response {
    let next = q.next.as_deref().and_then(session::safe_next);
    let notice = q.signed_out.is_some().then_some("Signed out.");
    html(StatusCode::OK, views::sign_in(None, notice, next))
}

#[derive(Deserialize)]
struct SignInForm {
    token: String,
    /// The console page asked for before the sign-in.
    #[serde(default)]
    next: Option<String>,
}

/// Exchanges the admin token for a session: 303 to the page asked for before (`next`, a
/// console page) or the hooks page, with the session cookie;
/// 401 with the form again for a wrong token, 429 once the client's address is locked out
/// (its wrong tokens are then not even counted; the right one still signs in, so that a
/// stranger cannot lock the admin out); 403 from another site's page.
async fn sign_in(
    State(state): State<AppState>,
    parts: Parts,
    ConsoleForm(form): ConsoleForm<SignInForm>,
) -> Response {
    if !session::same_origin(&parts.headers) {
        return html(
            StatusCode::FORBIDDEN,
            views::problem("This form was sent from another site."),
        );
    }
    let next = form.next.as_deref().and_then(session::safe_next);
    let (ip, _) = crate::routes::client_of(&parts, &state);
    let now = now_ms();
    let throttle = session::Throttle {
        policy: state.interactions.lockout,
    };
    let locked = |until: i64| {
        let minutes = (until - now + 59_999) / 60_000;
        html(
            StatusCode::TOO_MANY_REQUESTS,
            views::sign_in(
                Some(&format!(
                    "Too many wrong tokens from your address. Try again in {minutes} minute{}.",
                    if minutes == 1 { "" } else { "s" }
                )),
                None,
                next,
            ),
        )
    };
    let hash = crate::routes::auth::token_hash(form.token.trim());
    if !bool::from(hash.ct_eq(&state.admin_token_hash)) {
        match throttle.locked_until(&*state.store, ip, now).await {
            Ok(Some(until)) => return locked(until),
            Ok(None) => {}
            Err(e) => return store_failed(e),
        }
        tracing::info!(client_ip = %ip, "a wrong admin token at the console's sign-in");
        return match throttle.fail(&*state.store, ip, now).await {
            Ok(true) => locked(now + state.interactions.lockout.lock_ms),
            Ok(false) => html(
                StatusCode::UNAUTHORIZED,
                views::sign_in(Some("That is not the admin token."), None, next),
            ),
            Err(e) => store_failed(e),
        };
    }
    let ttl = state.console.session_ttl_ms;
    let token = session::token_fingerprint(&state.admin_token_hash);
    match session::start(&*state.store, now, ttl, token).await {
        Ok((id, _)) => {
            let mut res = see_other(next.unwrap_or("/console/hooks"));
            let cookie = session::set_cookie(&id, ttl / 1000, session::over_https(&parts.headers));
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                res.headers_mut().insert(SET_COOKIE, v);
            }
            res
        }
        Err(e) => store_failed(e),
    }
}

/// Ends the session (on every node) and clears the cookie: 303 to the sign-in page.
async fn sign_out(
    State(state): State<AppState>,
    signed_in: SignedIn,
    parts: Parts,
    ConsoleForm(form): ConsoleForm<CsrfForm>,
) -> Response {
    if let Some(refused) = refuse_forgery(&parts, &signed_in, &form.csrf) {
        return refused;
    }
    if let Err(e) = session::end(&*state.store, &signed_in.id).await {
        return store_failed(e);
    }
    let mut res = see_other("/console/sign-in?signedOut=1");
    let cookie = session::set_cookie("", 0, session::over_https(&parts.headers));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(SET_COOKIE, v);
    }
    res
}
