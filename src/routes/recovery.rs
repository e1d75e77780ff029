//! `POST /api/hooks/{id}/recover` and `POST /api/hooks/{id}/replay` (hookline's own, issue
//! 15): queue a window's worth of deliveries again for one hook, in the background.
//!
//! Body: `{"since": T, "until"?: T}`, each `T` epoch milliseconds (a number) or an RFC 3339
//! time (a string); `until` defaults to now, and a later one counts as now. The window is of
//! creation times, both ends inclusive. Both answer 202 `{"queued": N}`, N being what the
//! window holds when asked; the work then runs in steps at `--recovery-rate`
//! (`delivery::operations`). Errors: 404 `entity.not_exists_with_id`; 409 `hook.disabled`
//! (the deliveries would wait until it is enabled: enable it first); 400
//! `guard.invalid_input` for a body without `since`, with another field, or with a window
//! that ends before it starts.

use super::deliveries::parse_time;
use super::error::ApiError;
use super::extract::{ApiJson, HookId};
use super::AppState;
use crate::clock::now_ms;
use crate::domain::event::{EventKind, HookEvent};
use crate::domain::hook::Hook;
use crate::storage::deliveries::{Recovery, Replay, Window};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Value};

/// `POST /api/hooks/{id}/recover`: re-queues every *failed* delivery of the hook created in
/// the window, due now, each with its retry schedule started afresh (same `webhook-id`, same
/// body; attempt numbers go on). A delivery that fails again meanwhile is not taken twice.
pub async fn recover(
    State(state): State<AppState>,
    HookId(id): HookId,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let window = parse_window(&body, now_ms())?;
    let queued = recover_window(&state, &id, window).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "queued": queued }))))
}

/// Starts the recovery of `window` for the hook `id` (the API's and the console's; see
/// [`recover`]): how many deliveries it re-queues.
pub(crate) async fn recover_window(
    state: &AppState,
    id: &str,
    window: Window,
) -> Result<u64, ApiError> {
    let now = now_ms();
    let hook = enabled_hook(state, id).await?;
    let r = Recovery {
        hook_id: hook.id,
        window,
        before: now,
    };
    let queued = state.store.count_recoverable(&r).await?;
    if queued > 0 {
        state.operations.recover(r);
    }
    Ok(queued)
}

/// `POST /api/hooks/{id}/replay`: creates a delivery, due now, for every stored event created
/// in the window that the hook subscribes to (now) and has no delivery of, so that a hook
/// added late can be back-filled. Blocking (`Pre*`) events are answered in their interaction
/// and never replayed: 400 `hook.nothing_to_replay` for a hook of only those.
pub async fn replay(
    State(state): State<AppState>,
    HookId(id): HookId,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let window = parse_window(&body, now_ms())?;
    let queued = replay_window(&state, &id, window).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "queued": queued }))))
}

/// Starts the replay of `window` to the hook `id` (the API's and the console's; see
/// [`replay`]): how many deliveries it creates.
pub(crate) async fn replay_window(
    state: &AppState,
    id: &str,
    window: Window,
) -> Result<u64, ApiError> {
    let hook = enabled_hook(state, id).await?;
    let events: Vec<String> = HookEvent::all()
        .filter(|e| e.kind() != EventKind::Blocking && hook.subscribes_to(*e))
        .map(|e| e.name().to_owned())
        .collect();
    if events.is_empty() {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "hook.nothing_to_replay",
            "The hook subscribes only to blocking events, which are answered in their interaction and never replayed.",
        ));
    }
    let r = Replay {
        per_user: hook.config.ordering.is_some(),
        hook_id: hook.id,
        events,
        window,
    };
    let queued = state.store.count_replayable(&r).await?;
    if queued > 0 {
        state.operations.replay(r);
    }
    Ok(queued)
}

/// The hook `id` if it exists and is enabled: 404 `entity.not_exists_with_id` otherwise,
/// 409 `hook.disabled` when it is disabled.
async fn enabled_hook(state: &AppState, id: &str) -> Result<Hook, ApiError> {
    let Some(hook) = state.store.get_hook(id).await? else {
        let shown: String = id.chars().take(64).collect();
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "entity.not_exists_with_id",
            format!("The hook with ID `{shown}` does not exist."),
        ));
    };
    if !hook.enabled {
        return Err(disabled(&hook.id));
    }
    Ok(hook)
}

/// 409 `hook.disabled`: claims pass over a disabled hook's deliveries, so queuing them would
/// do nothing until it is enabled.
pub(crate) fn disabled(id: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "hook.disabled",
        format!("The hook `{id}` is disabled; enable it first (PATCH {{\"enabled\": true}})."),
    )
}

/// `{since, until?}` as a window ending no later than `now`.
fn parse_window(body: &Value, now: i64) -> Result<Window, ApiError> {
    let Some(obj) = body.as_object() else {
        return Err(ApiError::invalid_input(
            "the body must be an object {since, until?}",
        ));
    };
    if let Some(other) = obj.keys().find(|k| *k != "since" && *k != "until") {
        let other: String = other.chars().take(64).collect();
        return Err(ApiError::invalid_input(format!(
            "unknown field `{other}`; the body is {{since, until?}}"
        )));
    }
    let time = |key: &str| -> Result<Option<i64>, ApiError> {
        let bad = || {
            ApiError::invalid_input(format!(
                "`{key}` must be epoch milliseconds (0 or more) or an RFC 3339 time"
            ))
        };
        match obj.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => n.as_i64().filter(|ms| *ms >= 0).map(Some).ok_or_else(bad),
            Some(Value::String(s)) => parse_time(s).map(Some).ok_or_else(bad),
            Some(_) => Err(bad()),
        }
    };
    window(time("since")?, time("until")?, now)
}

/// The window from `since` (required) to `until` (now when absent; a later one counts as
/// now): 400 `guard.invalid_input` without `since` or when it is after `until`.
pub(crate) fn window(since: Option<i64>, until: Option<i64>, now: i64) -> Result<Window, ApiError> {
    let Some(since) = since else {
        return Err(ApiError::invalid_input("`since` is required"));
    };
    let until = until.unwrap_or(now).min(now);
    if since > until {
        return Err(ApiError::invalid_input(
            "`since` must not be after `until` (or now)",
        ));
    }
    Ok(Window { since, until })
}
