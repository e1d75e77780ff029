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
//! Routes, by URL:
//! - `GET /console` → the hooks page;
//! - `GET /console/sign-in`, `POST /console/sign-in {token}`, `POST /console/sign-out {csrf}`;
//! - `GET /console/hooks`: every hook, with its last 24 h of requests and success rate;
//! - `GET /console/hooks/new`, `POST /console/hooks {csrf, name, url, events…, headers}`: a
//!   new hook, through the same checks as `POST /api/hooks`;
//! - `GET /console/hooks/{id}`: one hook, and its changes: `POST /console/hooks/{id}` (the
//!   form), `…/enabled`, `…/signing-key`, `…/test`, `GET`/`POST …/delete` (asks first);
//! - `GET /console/deliveries?hookId=&status=`: the newest 50 deliveries matching, refreshed
//!   live (`/console/deliveries/rows?…`, the table's rows alone, which `console.js` polls);
//! - `GET /console/deliveries/{id}`: one delivery with every attempt, and `POST
//!   /console/deliveries/{id}/retry {csrf}` (as `POST /api/deliveries/{id}/retry`).

mod pages;
pub mod session;

use crate::clock::now_ms;
use crate::routes::AppState;
use crate::storage::deliveries::{DeliveryInfo, DeliveryQuery, DeliveryStatus};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use maud::Markup;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use session::Session;
use subtle::ConstantTimeEq;

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
        .route("/console/sign-in", get(sign_in_page).post(sign_in))
        .route("/console/sign-out", post(sign_out))
        .route("/console/hooks", get(hooks_page).post(create_hook))
        .route("/console/hooks/new", get(new_hook_page))
        .route("/console/hooks/{id}", get(hook_page).post(update_hook))
        .route("/console/hooks/{id}/enabled", post(set_enabled))
        .route("/console/hooks/{id}/signing-key", post(rotate_key))
        .route("/console/hooks/{id}/test", post(test_hook))
        .route(
            "/console/hooks/{id}/delete",
            get(delete_page).post(delete_hook),
        )
        .route("/console/deliveries", get(deliveries_page))
        .route("/console/deliveries/rows", get(delivery_rows))
        .route("/console/deliveries/{id}", get(delivery_page))
        .route("/console/deliveries/{id}/retry", post(retry_delivery))
        .route("/console/assets/console.js", get(script))
        .route("/console/assets/console.css", get(stylesheet))
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

/// A page for an error the store answered (503 when it is unavailable).
fn store_failed(e: crate::storage::StoreError) -> Response {
    tracing::warn!(error = %e, "a console page could not read or write the store");
    let status = match e {
        crate::storage::StoreError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    html(
        status,
        pages::problem("The database did not answer. Try again shortly."),
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
        let Some(id) = session::cookie_id(&parts.headers).map(str::to_owned) else {
            return Err(see_other("/console/sign-in"));
        };
        let token = session::token_fingerprint(&state.admin_token_hash);
        match session::find(&*state.store, &id, now_ms(), &token).await {
            Ok(Some(session)) => Ok(SignedIn { id, session }),
            Ok(None) => Err(see_other("/console/sign-in")),
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
        let bytes = crate::routes::extract::body_bytes(req, state)
            .await
            .map_err(IntoResponse::into_response)?;
        serde_urlencoded::from_bytes(&bytes)
            .map(ConsoleForm)
            .map_err(|e| {
                html(
                    StatusCode::BAD_REQUEST,
                    pages::problem(&format!("The form could not be read: {e}")),
                )
            })
    }
}

async fn sign_in_page() -> Response {
    html(StatusCode::OK, pages::sign_in(None))
}

#[derive(Deserialize)]
struct SignInForm {
    token: String,
}

/// Exchanges the admin token for a session: 303 to the hooks page with the session cookie;
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
            pages::problem("This form was sent from another site."),
        );
    }
    let (ip, _) = crate::routes::client_of(&parts, &state);
    let now = now_ms();
    let throttle = session::Throttle {
        policy: state.interactions.lockout,
    };
    let locked = |until: i64| {
        let minutes = (until - now + 59_999) / 60_000;
        html(
            StatusCode::TOO_MANY_REQUESTS,
            pages::sign_in(Some(&format!(
                "Too many wrong tokens from your address. Try again in {minutes} minute{}.",
                if minutes == 1 { "" } else { "s" }
            ))),
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
                pages::sign_in(Some("That is not the admin token.")),
            ),
            Err(e) => store_failed(e),
        };
    }
    let ttl = state.console.session_ttl_ms;
    let token = session::token_fingerprint(&state.admin_token_hash);
    match session::start(&*state.store, now, ttl, token).await {
        Ok((id, _)) => {
            let mut res = see_other("/console/hooks");
            let cookie = session::set_cookie(&id, ttl / 1000, session::over_https(&parts.headers));
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                res.headers_mut().insert(SET_COOKIE, v);
            }
            res
        }
        Err(e) => store_failed(e),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// Checks a change's CSRF token and origin: `None` when it may go on, else the 403 page.
fn refuse_forgery(parts: &Parts, signed_in: &SignedIn, csrf: &str) -> Option<Response> {
    if session::same_origin(&parts.headers) && signed_in.session.csrf_matches(csrf) {
        return None;
    }
    tracing::warn!("a console change without its session's CSRF token was refused");
    Some(html(
        StatusCode::FORBIDDEN,
        pages::problem("This change did not come from a console page (its CSRF token is missing or wrong). Reload the page and try again."),
    ))
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
    let mut res = see_other("/console/sign-in");
    let cookie = session::set_cookie("", 0, session::over_https(&parts.headers));
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(SET_COOKIE, v);
    }
    res
}

/// Every hook, newest first, with its requests and success rate of the last 24 h.
async fn hooks_page(State(state): State<AppState>, signed_in: SignedIn) -> Response {
    let hooks = match state.store.list_hooks(None).await {
        Ok((hooks, _)) => hooks,
        Err(e) => return store_failed(e),
    };
    let ids: Vec<String> = hooks.iter().map(|h| h.id.clone()).collect();
    let since = now_ms() - 24 * 60 * 60 * 1000;
    let stats = match state.store.execution_stats(&ids, since).await {
        Ok(s) => s,
        Err(e) => return store_failed(e),
    };
    html(
        StatusCode::OK,
        pages::hooks(&signed_in.session, &hooks, &stats),
    )
}

async fn new_hook_page(signed_in: SignedIn) -> Response {
    html(
        StatusCode::OK,
        pages::new_hook(&signed_in.session, &pages::HookForm::default(), None),
    )
}

/// Creates a hook from the form (`events` repeated, `headers` one `Name: value` a line):
/// 303 to the hooks page, or the form again with the API's message (400).
async fn create_hook(
    State(state): State<AppState>,
    signed_in: SignedIn,
    parts: Parts,
    ConsoleForm(pairs): ConsoleForm<Vec<(String, String)>>,
) -> Response {
    let form = pages::HookForm::from_pairs(&pairs);
    if let Some(refused) = refuse_forgery(&parts, &signed_in, &form.csrf) {
        return refused;
    }
    let input = match form.to_input() {
        Ok(input) => input,
        Err(message) => {
            return html(
                StatusCode::BAD_REQUEST,
                pages::new_hook(&signed_in.session, &form, Some(&message)),
            )
        }
    };
    match crate::routes::hooks::create_hook(&state, input).await {
        Ok(hook) => see_other(&format!("/console/hooks/{}?done=created", hook.id)),
        Err(e) => html(
            e.status,
            pages::new_hook(&signed_in.session, &form, Some(&e.message)),
        ),
    }
}

/// The hook `id`, or the page to answer instead (404, or the store's failure).
async fn find_hook(state: &AppState, id: &str) -> Result<crate::domain::hook::Hook, Response> {
    match state.store.get_hook(id).await {
        Ok(Some(h)) => Ok(h),
        Ok(None) => Err(html(
            StatusCode::NOT_FOUND,
            pages::problem("There is no such hook."),
        )),
        Err(e) => Err(store_failed(e)),
    }
}

/// What a redirect back to a hook's page says happened.
#[derive(Deserialize, Default)]
struct Done {
    #[serde(default)]
    done: Option<String>,
}

async fn hook_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    Query(done): Query<Done>,
) -> Response {
    let notice = match done.done.as_deref() {
        Some("saved") => Some("Saved."),
        Some("created") => Some("Created."),
        Some("rotated") => Some("The signing key was rotated. Give receivers the new one."),
        Some("enabled") => Some("Enabled."),
        Some("disabled") => Some("Disabled: it gets no new deliveries."),
        _ => None,
    };
    show_hook(&state, &signed_in, &id, StatusCode::OK, None, notice, None).await
}

/// The hook page; `form` is what was typed (shown again with `error`), else the stored hook.
async fn show_hook(
    state: &AppState,
    signed_in: &SignedIn,
    id: &str,
    status: StatusCode,
    form: Option<&pages::HookForm>,
    notice: Option<&str>,
    error: Option<&str>,
) -> Response {
    let hook = match find_hook(state, id).await {
        Ok(h) => h,
        Err(page) => return page,
    };
    let since = now_ms() - 24 * 60 * 60 * 1000;
    let stats = match state
        .store
        .execution_stats(std::slice::from_ref(&hook.id), since)
        .await
    {
        Ok(s) => s.get(&hook.id).copied().unwrap_or_default(),
        Err(e) => return store_failed(e),
    };
    let stored = pages::HookForm::of(&hook);
    html(
        status,
        pages::hook_page(
            &signed_in.session,
            &hook,
            stats,
            form.unwrap_or(&stored),
            notice,
            error,
        ),
    )
}

/// Saves the hook's form (what it does not show of `config` is kept): 303 back, or the page
/// with the API's reason.
async fn update_hook(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    parts: Parts,
    ConsoleForm(pairs): ConsoleForm<Vec<(String, String)>>,
) -> Response {
    let form = pages::HookForm::from_pairs(&pairs);
    if let Some(refused) = refuse_forgery(&parts, &signed_in, &form.csrf) {
        return refused;
    }
    let stored = match find_hook(&state, &id).await {
        Ok(h) => h,
        Err(page) => return page,
    };
    let input = match form.to_input_over(Some(&stored.config)) {
        Ok(input) => input,
        Err(m) => {
            return show_hook(
                &state,
                &signed_in,
                &id,
                StatusCode::BAD_REQUEST,
                Some(&form),
                None,
                Some(&m),
            )
            .await
        }
    };
    match crate::routes::hooks::update_hook(&state, &id, input).await {
        Ok(_) => see_other(&format!("/console/hooks/{id}?done=saved")),
        Err(e) => {
            show_hook(
                &state,
                &signed_in,
                &id,
                e.status,
                Some(&form),
                None,
                Some(&e.message),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
struct EnabledForm {
    #[serde(default)]
    csrf: String,
    enabled: bool,
}

/// Enables or disables the hook (as `PATCH /api/hooks/{id} {enabled}`).
async fn set_enabled(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    parts: Parts,
    ConsoleForm(form): ConsoleForm<EnabledForm>,
) -> Response {
    if let Some(refused) = refuse_forgery(&parts, &signed_in, &form.csrf) {
        return refused;
    }
    let input = match serde_json::from_value(serde_json::json!({"enabled": form.enabled})) {
        Ok(i) => i,
        Err(e) => return html(StatusCode::BAD_REQUEST, pages::problem(&e.to_string())),
    };
    match crate::routes::hooks::update_hook(&state, &id, input).await {
        Ok(_) => see_other(&format!(
            "/console/hooks/{id}?done={}",
            if form.enabled { "enabled" } else { "disabled" }
        )),
        Err(e) => {
            show_hook(
                &state,
                &signed_in,
                &id,
                e.status,
                None,
                None,
                Some(&e.message),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
struct RotateForm {
    #[serde(default)]
    csrf: String,
    #[serde(rename = "gracePeriodSeconds")]
    grace_period_seconds: Option<u64>,
}

/// Rotates the signing key (as `PATCH /api/hooks/{id}/signing-key`).
async fn rotate_key(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    parts: Parts,
    ConsoleForm(form): ConsoleForm<RotateForm>,
) -> Response {
    if let Some(refused) = refuse_forgery(&parts, &signed_in, &form.csrf) {
        return refused;
    }
    match crate::routes::hooks::rotate_key(&state, &id, form.grace_period_seconds).await {
        Ok(_) => see_other(&format!("/console/hooks/{id}?done=rotated")),
        Err(e) => {
            show_hook(
                &state,
                &signed_in,
                &id,
                e.status,
                None,
                None,
                Some(&e.message),
            )
            .await
        }
    }
}

#[derive(Deserialize)]
struct TestForm {
    #[serde(default)]
    csrf: String,
    event: String,
}

/// Sends a test payload of one event to the hook's endpoint and shows what it answered.
async fn test_hook(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    parts: Parts,
    ConsoleForm(form): ConsoleForm<TestForm>,
) -> Response {
    if let Some(refused) = refuse_forgery(&parts, &signed_in, &form.csrf) {
        return refused;
    }
    let hook = match find_hook(&state, &id).await {
        Ok(h) => h,
        Err(page) => return page,
    };
    let Ok(event) = crate::domain::event::HookEvent::parse(&form.event) else {
        return show_hook(
            &state,
            &signed_in,
            &id,
            StatusCode::BAD_REQUEST,
            None,
            None,
            Some("That is not an event."),
        )
        .await;
    };
    // As the API's test: the target is checked (SSRF rules, after DNS) before anything is sent.
    if let Some(url) = &hook.config.url {
        if let Err(e) = crate::delivery::http::check_target(url, &state.targets).await {
            let message = format!("The endpoint may not be called: {e}");
            return show_hook(
                &state,
                &signed_in,
                &id,
                StatusCode::OK,
                None,
                None,
                Some(&message),
            )
            .await;
        }
    }
    match crate::routes::hooks::test_hook(&state, &hook, &[event], hook.config.clone()).await {
        Ok(()) => {
            let notice = format!(
                "A test {} was sent; the endpoint answered with a 2xx.",
                event.name()
            );
            show_hook(
                &state,
                &signed_in,
                &id,
                StatusCode::OK,
                None,
                Some(&notice),
                None,
            )
            .await
        }
        Err(e) => {
            let detail = e
                .data
                .as_deref()
                .map(|d| format!("{}: {d}", e.message))
                .unwrap_or(e.message);
            show_hook(
                &state,
                &signed_in,
                &id,
                StatusCode::OK,
                None,
                None,
                Some(&detail),
            )
            .await
        }
    }
}

async fn delete_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Response {
    match find_hook(&state, &id).await {
        Ok(h) => html(StatusCode::OK, pages::delete_hook(&signed_in.session, &h)),
        Err(page) => page,
    }
}

/// Deletes the hook with its deliveries (as `DELETE /api/hooks/{id}`).
async fn delete_hook(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    parts: Parts,
    ConsoleForm(form): ConsoleForm<CsrfForm>,
) -> Response {
    if let Some(refused) = refuse_forgery(&parts, &signed_in, &form.csrf) {
        return refused;
    }
    match state.store.delete_hook(&id).await {
        Ok(true) => {
            tracing::info!(hook_id = %id, "hook deleted from the console");
            see_other("/console/hooks")
        }
        Ok(false) => html(
            StatusCode::NOT_FOUND,
            pages::problem("There is no such hook."),
        ),
        Err(e) => store_failed(e),
    }
}

/// What the deliveries page shows: the filter's matches (the newest 50) and the hooks, by
/// name. An unknown status is an error page.
async fn deliveries_of(
    state: &AppState,
    filter: &pages::DeliveryFilter,
) -> Result<(Vec<crate::domain::hook::Hook>, Vec<DeliveryInfo>, u64), Response> {
    let status = match filter.status.as_deref().filter(|s| !s.is_empty()) {
        None => None,
        Some(s) => match DeliveryStatus::parse(s) {
            Some(s) => Some(s),
            None => {
                return Err(html(
                    StatusCode::BAD_REQUEST,
                    pages::problem("That is not a delivery status."),
                ))
            }
        },
    };
    let hooks = state.store.list_hooks(None).await.map_err(store_failed)?.0;
    let query = DeliveryQuery {
        hook_id: filter.hook_id.clone().filter(|h| !h.is_empty()),
        status,
        page: crate::storage::Page {
            limit: 50,
            offset: 0,
        },
        ..Default::default()
    };
    let (list, total) = state
        .store
        .list_deliveries(&query)
        .await
        .map_err(store_failed)?;
    Ok((hooks, list, total))
}

async fn deliveries_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(filter): Query<pages::DeliveryFilter>,
) -> Response {
    match deliveries_of(&state, &filter).await {
        Ok((hooks, list, total)) => html(
            StatusCode::OK,
            pages::deliveries(&signed_in.session, &filter, &hooks, &list, total),
        ),
        Err(page) => page,
    }
}

/// The deliveries table's rows alone, for the page's live refresh.
async fn delivery_rows(
    State(state): State<AppState>,
    _signed_in: SignedIn,
    Query(filter): Query<pages::DeliveryFilter>,
) -> Response {
    match deliveries_of(&state, &filter).await {
        Ok((hooks, list, _)) => html(StatusCode::OK, pages::delivery_rows(&list, &hooks)),
        Err(page) => page,
    }
}

async fn delivery_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Response {
    show_delivery(&state, &signed_in, &id, StatusCode::OK, None).await
}

/// The delivery page, with `notice` above it (what a retry did).
async fn show_delivery(
    state: &AppState,
    signed_in: &SignedIn,
    id: &str,
    status: StatusCode,
    notice: Option<&str>,
) -> Response {
    let detail = match state.store.get_delivery(id).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return html(
                StatusCode::NOT_FOUND,
                pages::problem("There is no such delivery (its hook may have been deleted)."),
            )
        }
        Err(e) => return store_failed(e),
    };
    let hook = match state.store.get_hook(&detail.delivery.hook_id).await {
        Ok(h) => h,
        Err(e) => return store_failed(e),
    };
    html(
        status,
        pages::delivery(&signed_in.session, &detail, hook.as_ref(), notice),
    )
}

/// Sends the delivery again now: 303 back to it, or the page with the API's reason (a
/// disabled hook, a blocking call).
async fn retry_delivery(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
    parts: Parts,
    ConsoleForm(form): ConsoleForm<CsrfForm>,
) -> Response {
    if let Some(refused) = refuse_forgery(&parts, &signed_in, &form.csrf) {
        return refused;
    }
    match crate::routes::deliveries::retry_delivery(&state, &id).await {
        Ok(_) => see_other(&format!("/console/deliveries/{id}")),
        Err(e) => show_delivery(&state, &signed_in, &id, e.status, Some(&e.message)).await,
    }
}

async fn script() -> Response {
    let mut res = pages::SCRIPT.into_response();
    let h = res.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
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

async fn stylesheet() -> Response {
    let mut res = pages::STYLESHEET.into_response();
    let h = res.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/css; charset=utf-8"),
    );
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
