//! `/console/hooks…`: the hooks list, a new hook, one hook and its changes. Every change goes
//! through the API's own code (`routes::hooks`), so it is checked as the API checks it.

use super::{
    html, refuse_forgery, said, see_item, see_other, store_failed, views, ConsoleForm, CsrfForm,
    SignedIn,
};
use crate::clock::now_ms;
use crate::routes::AppState;
use axum::extract::{Path, Query, State};
use axum::http::request::Parts;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::Deserialize;

/// The routes this file serves.
pub(super) fn router() -> Router<AppState> {
    Router::new()
        .route("/console/hooks", get(hooks_page).post(create_hook))
        .route("/console/hooks/new", get(new_hook_page))
        .route("/console/hooks/{id}", get(hook_page).post(update_hook))
        // A GET of a change's URL (Enter in the address bar after a result shown there) goes
        // to the hook's page.
        .route(
            "/console/hooks/{id}/enabled",
            get(back_to_hook).post(set_enabled),
        )
        .route(
            "/console/hooks/{id}/signing-key",
            get(back_to_hook).post(rotate_key),
        )
        .route(
            "/console/hooks/{id}/test",
            get(back_to_hook).post(test_hook),
        )
        .route(
            "/console/hooks/{id}/delete",
            get(delete_page).post(delete_hook),
        )
}

/// Every hook, newest first, with its requests and success rate of the last 24 h.
async fn hooks_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Query(done): Query<Done>,
) -> Response {
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
        views::hooks(
            &signed_in.session,
            &hooks,
            &stats,
            (done.done.as_deref() == Some("deleted")).then_some("The hook was deleted."),
        ),
    )
}

async fn back_to_hook(Path(id): Path<String>) -> Response {
    see_item("/console/hooks", &id)
}

async fn new_hook_page(signed_in: SignedIn) -> Response {
    html(
        StatusCode::OK,
        views::new_hook(&signed_in.session, &views::HookForm::default(), None),
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
    let form = views::HookForm::from_pairs(&pairs);
    if let Some(refused) = refuse_forgery(&parts, &signed_in, &form.csrf) {
        return refused;
    }
    let input = match form.to_input() {
        Ok(input) => input,
        Err(message) => {
            return html(
                StatusCode::BAD_REQUEST,
                views::new_hook(&signed_in.session, &form, Some(&message)),
            )
        }
    };
    match crate::routes::hooks::create_hook(&state, input).await {
        Ok(hook) => see_other(&format!("/console/hooks/{}?done=created", hook.id)),
        Err(e) => html(
            e.status,
            views::new_hook(&signed_in.session, &form, Some(&said(&e))),
        ),
    }
}

/// The hook `id`, or the page to answer instead (404, or the store's failure).
async fn find_hook(state: &AppState, id: &str) -> Result<crate::domain::hook::Hook, Response> {
    match state.store.get_hook(id).await {
        Ok(Some(h)) => Ok(h),
        Ok(None) => Err(html(
            StatusCode::NOT_FOUND,
            views::problem("There is no such hook."),
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
    form: Option<&views::HookForm>,
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
    let stored = views::HookForm::of(&hook);
    html(
        status,
        views::hook_page(
            &signed_in.session,
            &hook,
            stats,
            form.unwrap_or(&stored),
            notice,
            error,
        ),
    )
}

/// The hook page with `error` above it, and the `form` as typed when there is one.
async fn hook_error(
    state: &AppState,
    signed_in: &SignedIn,
    id: &str,
    status: StatusCode,
    form: Option<&views::HookForm>,
    error: &str,
) -> Response {
    show_hook(state, signed_in, id, status, form, None, Some(error)).await
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
    let form = views::HookForm::from_pairs(&pairs);
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
            return hook_error(
                &state,
                &signed_in,
                &id,
                StatusCode::BAD_REQUEST,
                Some(&form),
                &m,
            )
            .await
        }
    };
    match crate::routes::hooks::update_hook(&state, &id, input).await {
        Ok(_) => see_other(&format!("/console/hooks/{id}?done=saved")),
        Err(e) => hook_error(&state, &signed_in, &id, e.status, Some(&form), &said(&e)).await,
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
        Err(e) => return html(StatusCode::BAD_REQUEST, views::problem(&e.to_string())),
    };
    match crate::routes::hooks::update_hook(&state, &id, input).await {
        Ok(_) => see_other(&format!(
            "/console/hooks/{id}?done={}",
            if form.enabled { "enabled" } else { "disabled" }
        )),
        Err(e) => hook_error(&state, &signed_in, &id, e.status, None, &said(&e)).await,
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
        Err(e) => hook_error(&state, &signed_in, &id, e.status, None, &said(&e)).await,
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
        return hook_error(
            &state,
            &signed_in,
            &id,
            StatusCode::BAD_REQUEST,
            None,
            "That is not an event.",
        )
        .await;
    };
    // As the API's test: the target is checked (SSRF rules, after DNS) before anything is sent.
    if let Some(url) = &hook.config.url {
        if let Err(e) = crate::delivery::http::check_target(url, &state.targets).await {
            let message = format!("The endpoint may not be called: {e}");
            return hook_error(&state, &signed_in, &id, StatusCode::OK, None, &message).await;
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
            // The endpoint's answer in words, when it gave one.
            let answered = e.data.as_deref().and_then(|d| {
                let status = d.get("responseStatus")?.as_u64()?;
                let body: String = d
                    .get("responseBody")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .chars()
                    .take(500)
                    .collect();
                Some(if body.is_empty() {
                    format!("The endpoint answered {status}.")
                } else {
                    format!("The endpoint answered {status}: {body}")
                })
            });
            let detail = match (answered, e.data.as_deref()) {
                (Some(a), _) => a,
                (None, Some(d)) => format!("{} {d}", e.message),
                (None, None) => e.message,
            };
            hook_error(&state, &signed_in, &id, StatusCode::OK, None, &detail).await
        }
    }
}

async fn delete_page(
    State(state): State<AppState>,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Response {
    match find_hook(&state, &id).await {
        Ok(h) => html(StatusCode::OK, views::delete_hook(&signed_in.session, &h)),
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
            see_other("/console/hooks?done=deleted")
        }
        Ok(false) => html(
            StatusCode::NOT_FOUND,
            views::problem("There is no such hook."),
        ),
        Err(e) => store_failed(e),
    }
}
