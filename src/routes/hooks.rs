//! `/api/hooks`: Logto's hooks Management API.

use super::error::ApiError;
use super::extract::{ApiJson, HookId, QueryMap};
use super::pagination::Pagination;
use super::AppState;
use crate::clock::now_ms;
use crate::delivery::http::check_target;
use crate::domain::hook::{parse_test_events, Hook, HookConfig, HookInput, PreviousKey, TENANT_ID};
use crate::domain::id::{new_id, new_secret, SIGNING_KEY_LENGTH};
use crate::domain::payload::test_payload;
use crate::domain::signature::standard_webhooks_secret;
use crate::storage::{DeliveryTarget, ExecutionStats, LogQuery};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};
use time::OffsetDateTime;

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// A hook as the API shows it: Logto's fields in Logto's order, plus the signing key in the
/// `whsec_` form that Standard Webhooks libraries take, and `disabledReason` when hookline
/// disabled the hook (410 Gone, or failing for `--disable-after`).
pub fn hook_json(h: &Hook, stats: Option<ExecutionStats>) -> Value {
    let mut v = json!({
        "tenantId": TENANT_ID,
        "id": h.id,
        "name": h.name,
        "event": h.event,
        "events": h.events,
        "config": h.config,
        "signingKey": h.signing_key,
        "enabled": h.enabled,
        "createdAt": h.created_at,
        "standardWebhooksSecret": standard_webhooks_secret(&h.signing_key),
    });
    if let (Some(reason), Some(obj)) = (&h.disabled_reason, v.as_object_mut()) {
        obj.insert("disabledReason".into(), json!(reason));
    }
    if let (Some(s), Some(obj)) = (stats, v.as_object_mut()) {
        obj.insert(
            "executionStats".into(),
            json!({"requestCount": s.request_count, "successCount": s.success_count}),
        );
    }
    v
}

/// The hook `id`, or a 404 with `code`: Logto answers an unknown hook with a different code
/// per route (`entity.not_exists_with_id` on GET, `entity.not_exists` on PATCH and on
/// `PATCH …/signing-key`).
async fn find(state: &AppState, id: &str, code: &'static str) -> Result<Hook, ApiError> {
    state
        .store
        .get_hook(id)
        .await?
        .ok_or_else(|| missing(id, code))
}

fn missing(id: &str, code: &'static str) -> ApiError {
    let id: String = id.chars().take(64).collect();
    ApiError::new(
        StatusCode::NOT_FOUND,
        code,
        format!("The hook with ID `{id}` does not exist."),
    )
}

/// Logto's `includeExecutionStats` on the list: its `yes()` (`1`, `true`, `y`, `yes`, `yep`,
/// `yeah`, any case).
fn yes(q: &QueryMap, key: &str) -> bool {
    q.0.get(key).is_some_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "y" | "yes" | "yep" | "yeah"
        )
    })
}

async fn stats_for(
    state: &AppState,
    hooks: &[Hook],
) -> Result<std::collections::HashMap<String, ExecutionStats>, ApiError> {
    let ids: Vec<String> = hooks.iter().map(|h| h.id.clone()).collect();
    Ok(state.store.execution_stats(&ids, now_ms() - DAY_MS).await?)
}

/// `GET /api/hooks`: newest first; paginated only when `page` or `page_size` is given.
pub async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> Result<Response, ApiError> {
    let with_stats = yes(&q, "includeExecutionStats");
    let pagination = Pagination::from_query(&q, true)?;
    let (hooks, total) = state
        .store
        .list_hooks(pagination.map(Pagination::as_page))
        .await?;
    let stats = if with_stats {
        Some(stats_for(&state, &hooks).await?)
    } else {
        None
    };
    let body: Vec<Value> = hooks
        .iter()
        .map(|h| {
            hook_json(
                h,
                stats
                    .as_ref()
                    .map(|s| s.get(&h.id).copied().unwrap_or_default()),
            )
        })
        .collect();
    let out = match pagination {
        Some(p) => p.headers(&headers, &uri, total),
        None => HeaderMap::new(),
    };
    Ok((out, Json(body)).into_response())
}

pub async fn get(
    State(state): State<AppState>,
    HookId(id): HookId,
    q: QueryMap,
) -> Result<Json<Value>, ApiError> {
    let hook = find(&state, &id, "entity.not_exists_with_id").await?;
    // On one hook Logto turns the stats on for any non-empty value.
    let stats = if q
        .0
        .get("includeExecutionStats")
        .is_some_and(|v| !v.is_empty())
    {
        Some(
            stats_for(&state, std::slice::from_ref(&hook))
                .await?
                .remove(&hook.id)
                .unwrap_or_default(),
        )
    } else {
        None
    };
    Ok(Json(hook_json(&hook, stats)))
}

/// What parsing a `config` could not check without I/O: its URL after DNS (the SSRF rules)
/// and that its scripts compile (400 `hook.script_invalid`, with the parser's `{line,
/// column}`).
async fn check_config(state: &AppState, config: &HookConfig) -> Result<(), ApiError> {
    if let Some(url) = &config.url {
        check_target(url, &state.targets).await?;
    }
    if let Some(script) = &config.transform {
        super::actions::compile(
            state,
            script,
            crate::domain::transform::ENTRY,
            "hook.script_invalid",
            "config.transform",
        )
        .await?;
    }
    if let Some(script) = &config.script {
        super::actions::compile(
            state,
            script,
            crate::domain::interaction::SCRIPT_ENTRY,
            "hook.script_invalid",
            "config.script",
        )
        .await?;
    }
    Ok(())
}

pub async fn create(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<HookInput>,
) -> Result<Response, ApiError> {
    let hook = create_hook(&state, input).await?;
    Ok((StatusCode::CREATED, Json(hook_json(&hook, None))).into_response())
}

/// Makes and stores a hook from a create body (the API's and the console's): parsed, its
/// target and scripts checked, a new id and signing key.
pub(crate) async fn create_hook(state: &AppState, input: HookInput) -> Result<Hook, ApiError> {
    let hook = input.into_new_hook(
        new_id(),
        new_secret(SIGNING_KEY_LENGTH),
        now_ms(),
        &state.targets,
    )?;
    check_config(state, &hook.config).await?;
    super::record_hook_id(&hook.id);
    state.store.insert_hook(&hook).await?;
    tracing::info!(hook_id = %hook.id, events = ?hook.events, "hook created");
    Ok(hook)
}

pub async fn update(
    State(state): State<AppState>,
    HookId(id): HookId,
    ApiJson(input): ApiJson<HookInput>,
) -> Result<Json<Value>, ApiError> {
    let hook = update_hook(&state, &id, input).await?;
    Ok(Json(hook_json(&hook, None)))
}

/// Changes a hook from an update body (the API's and the console's): the hook as it now is.
pub(crate) async fn update_hook(
    state: &AppState,
    id: &str,
    input: HookInput,
) -> Result<Hook, ApiError> {
    let patch = input.into_patch(&state.targets)?;
    if let Some(config) = &patch.config {
        check_config(state, config).await?;
    }
    let mut hook = find(state, id, "entity.not_exists").await?;
    // A hook stays what it was made: its deliveries, logs and failing streak are those of an
    // endpoint, or of a script.
    if let Some(config) = &patch.config {
        if config.script.is_some() != hook.config.script.is_some() {
            return Err(ApiError::invalid_input(
                "a hook cannot change between config.url and config.script: create a new hook",
            ));
        }
    }
    patch.apply(&mut hook);
    hook.check_scripts()?;
    if !state.store.update_hook(&hook).await? {
        return Err(missing(id, "entity.not_exists"));
    }
    Ok(hook)
}

/// `PATCH /api/hooks/:id/signing-key`: a new signing key, answered with the hook (200) as
/// Logto does. The key it replaces keeps signing for a grace period (`gracePeriodSeconds`,
/// default a day, 0 for none): meanwhile `webhook-signature` carries a signature with each
/// key, and `logto-signature-sha-256` the new key's. A rotation during a grace period drops
/// the older key at once. Errors: 404 `entity.not_exists`; 400 `guard.invalid_input` for
/// another field or a period over 30 days.
pub async fn rotate_signing_key(
    State(state): State<AppState>,
    HookId(id): HookId,
    ApiJson(body): ApiJson<RotateBody>,
) -> Result<Json<Value>, ApiError> {
    let hook = rotate_key(&state, &id, body.grace_period_seconds).await?;
    Ok(Json(hook_json(&hook, None)))
}

/// Gives a hook a new signing key (the API's and the console's), the old one signing on for
/// `grace_period_seconds` (default a day): the hook as it now is.
pub(crate) async fn rotate_key(
    state: &AppState,
    id: &str,
    grace_period_seconds: Option<u64>,
) -> Result<Hook, ApiError> {
    let grace = match grace_period_seconds {
        None => DEFAULT_GRACE_PERIOD_SECONDS,
        Some(s) if s <= MAX_GRACE_PERIOD_SECONDS => s,
        Some(_) => {
            return Err(ApiError::invalid_input(format!(
                "gracePeriodSeconds must be from 0 to {MAX_GRACE_PERIOD_SECONDS} (30 days)"
            )))
        }
    };
    let mut hook = find(state, id, "entity.not_exists").await?;
    let old = std::mem::replace(&mut hook.signing_key, new_secret(SIGNING_KEY_LENGTH));
    hook.previous_signing_key = (grace > 0).then(|| PreviousKey {
        key: old,
        expires_at: now_ms() + grace as i64 * 1000,
    });
    if !state.store.update_hook(&hook).await? {
        return Err(missing(id, "entity.not_exists"));
    }
    tracing::info!(hook_id = %hook.id, "signing key rotated");
    Ok(hook)
}

/// The grace period a rotation gives the previous key when the body names none: a day, so
/// that receivers can switch over (Logto switches at once; README, "Differences from Logto").
pub const DEFAULT_GRACE_PERIOD_SECONDS: u64 = 24 * 60 * 60;
/// The longest grace period: 30 days.
pub const MAX_GRACE_PERIOD_SECONDS: u64 = 30 * 24 * 60 * 60;

/// `PATCH /api/hooks/:id/signing-key`'s optional body (Logto's clients send none):
/// `{"gracePeriodSeconds": N}`, 0 for an immediate switch.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RotateBody {
    grace_period_seconds: Option<u64>,
}

pub async fn delete(
    State(state): State<AppState>,
    HookId(id): HookId,
) -> Result<StatusCode, ApiError> {
    if state.store.delete_hook(&id).await? {
        tracing::info!(hook_id = %id, "hook deleted");
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(missing(&id, "entity.not_found"))
    }
}

#[derive(Deserialize)]
pub struct TestBody {
    #[serde(default)]
    events: Option<Value>,
    #[serde(default)]
    config: Option<Value>,
}

/// `POST /api/hooks/:id/test`: sends a test payload per event to `config.url`, signed with the
/// hook's key. 204 when every send got a 2xx; otherwise 422 as Logto answers.
pub async fn test(
    State(state): State<AppState>,
    HookId(id): HookId,
    ApiJson(body): ApiJson<TestBody>,
) -> Result<StatusCode, ApiError> {
    let events = parse_test_events(body.events)?;
    let config = match body.config {
        Some(c) => HookConfig::parse(c, &state.targets)?,
        None => return Err(ApiError::invalid_input("config is required")),
    };
    let Some(url) = &config.url else {
        return Err(ApiError::invalid_input(
            "config.url is required: a script hook (config.script) has no endpoint to test",
        ));
    };
    check_target(url, &state.targets).await?;
    let hook = find(&state, &id, "entity.not_exists_with_id").await?;
    test_hook(&state, &hook, &events, config).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Sends a test payload per event to `config`'s endpoint, signed with `hook`'s key (the API's
/// test and the console's): `Ok` when every send got a 2xx, else Logto's 422.
pub(crate) async fn test_hook(
    state: &AppState,
    hook: &Hook,
    events: &[crate::domain::event::HookEvent],
    config: HookConfig,
) -> Result<(), ApiError> {
    let target = DeliveryTarget::new(
        config,
        hook.signing_key.clone(),
        hook.previous_signing_key.clone(),
    );
    let now = OffsetDateTime::now_utc();
    let sends = events.iter().map(|event| {
        let body = test_payload(*event, &hook.id, now).to_string();
        let target = &target;
        let sender = &state.sender;
        async move { sender.send(target, &new_id(), body).await }
    });
    for outcome in futures_util::future::join_all(sends).await {
        if outcome.is_success() {
            continue;
        }
        return Err(match outcome.status {
            Some(status) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "hook.endpoint_responded_with_error",
                "Endpoint responded with error.",
            )
            .with_data(
                json!({"responseStatus": status, "responseBody": outcome.body.unwrap_or_default()}),
            ),
            None => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "hook.send_test_payload_failed",
                format!(
                    "Failed to send test payload: {}",
                    outcome.error.unwrap_or_default()
                ),
            ),
        });
    }
    Ok(())
}

/// `GET /api/hooks/:id/recent-logs`: the hook's attempts, newest first, in Logto's log shape,
/// always paginated (Logto's `koaPagination()`). The window is the last 24 h only when
/// neither `start_time` nor `end_time` is given; `start_time > end_time` is 400
/// `log.invalid_time_window`. Like Logto, it does not check that the hook exists: an unknown
/// id answers `[]`.
pub async fn recent_logs(
    State(state): State<AppState>,
    HookId(id): HookId,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> Result<Response, ApiError> {
    let pagination = Pagination::always(&q)?;
    let now = now_ms();
    let start = q.int("start_time", 0..=i64::MAX)?;
    let end = q.int("end_time", 0..=i64::MAX)?;
    let (start, end) = match (start, end) {
        (None, None) => (now - DAY_MS, now),
        (s, e) => (s.unwrap_or(0), e.unwrap_or(i64::MAX)),
    };
    if start > end {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            "log.invalid_time_window",
            "`start_time` must not be after `end_time`.",
        ));
    }
    let event_name = match q.0.get("logKey") {
        None => None,
        Some(key) => match key.strip_prefix("TriggerHook.") {
            Some(name) => Some(name.to_owned()),
            // A key of another kind of log never matches a hook's attempts.
            None => {
                let out = pagination.headers(&headers, &uri, 0);
                return Ok((out, Json(Vec::<Value>::new())).into_response());
            }
        },
    };
    let query = LogQuery {
        hook_id: id,
        event_name,
        start,
        end,
        page: pagination.as_page(),
    };
    let (logs, total) = state.store.recent_logs(&query).await?;
    let body: Vec<Value> = logs
        .into_iter()
        .map(|l| {
            let key = format!("TriggerHook.{}", l.event_name);
            let request_body = l
                .request_body
                .as_deref()
                .and_then(|b| serde_json::from_str::<Value>(b).ok())
                .unwrap_or(Value::Null);
            let mut payload = json!({
                "key": key,
                "result": if l.success { "Success" } else { "Error" },
                "hookId": l.hook_id,
                "hookRequest": {"body": request_body},
            });
            if let Some(obj) = payload.as_object_mut() {
                if let Some(status) = l.response_status {
                    let body = l.response_body.unwrap_or_default();
                    let body = serde_json::from_str::<Value>(&body).unwrap_or(Value::String(body));
                    obj.insert(
                        "response".into(),
                        json!({"statusCode": status, "body": body}),
                    );
                }
                if let Some(e) = l.error {
                    obj.insert("error".into(), Value::String(e));
                }
                obj.insert("deliveryId".into(), Value::String(l.delivery_id));
                obj.insert("attempt".into(), json!(l.attempt));
                obj.insert("durationMs".into(), json!(l.duration_ms));
                if l.script.is_some() {
                    let run = super::deliveries::stored_json(l.script.as_deref());
                    obj.insert("script".into(), run);
                }
            }
            json!({"id": l.id, "key": key, "payload": payload, "createdAt": l.created_at})
        })
        .collect();
    Ok((pagination.headers(&headers, &uri, total), Json(body)).into_response())
}
