//! Logto's Actions API (issue 16; `../shared/spec/logto-compat.md`, "Actions"):
//! `GET /api/configs/actions` (both types: each action, or `null`), `GET`, `PUT` (201 when
//! new, 200 when replaced), `PATCH` and `DELETE` (204) of `/api/configs/actions/:actionType`
//! for `action.postFirstFactorVerification` and `action.postSignIn`, and the dry run `POST
//! /api/configs/actions/test`.
//!
//! Errors: 400 `guard.invalid_input` for a body that is not an action (unknown fields
//! included) and for an unknown action type; 400 `action.script_invalid` for a script that
//! does not parse or does not define `runAction`, with the parser's message (line and column)
//! and `data: {line, column}`; 404 `entity.not_found` for a type with no action.

use super::error::ApiError;
use super::extract::ApiJson;
use super::AppState;
use crate::clock::now_ms;
use crate::domain::action::{Action, ActionType};
use crate::script::ScriptError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use serde_json::{json, Map, Value};

use crate::identity::actions::ENTRY;

fn action_type(name: &str) -> Result<ActionType, ApiError> {
    ActionType::parse(name).ok_or_else(|| {
        ApiError::invalid_input(format!(
            "actionType must be one of {}",
            ActionType::ALL.map(ActionType::name).join(", ")
        ))
    })
}

fn not_found(t: ActionType) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "entity.not_found",
        format!("No {} action is set.", t.name()),
    )
}

/// The stored action of a type, if any.
async fn load(state: &AppState, t: ActionType) -> Result<Option<Action>, ApiError> {
    Ok(crate::identity::actions::load(&*state.store, t).await?)
}

/// 400 for a script that does not compile, with where.
async fn check_script(state: &AppState, script: &str) -> Result<(), ApiError> {
    compile(state, script, ENTRY, "action.script_invalid", "The script").await
}

/// 400 `code` for a script that does not compile or does not define `entry`, the parser's
/// message with `data: {line, column}` (from 1) when it does not parse. `what` names the
/// script in the message.
pub(super) async fn compile(
    state: &AppState,
    script: &str,
    entry: &str,
    code: &'static str,
    what: &str,
) -> Result<(), ApiError> {
    let checked = state
        .interactions
        .scripts
        .check(script, entry)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server.busy",
                e.to_string(),
            )
            .retry_after(1)
        })?;
    match checked {
        Ok(()) => Ok(()),
        Err(e @ ScriptError::Syntax { line, column, .. }) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            code,
            format!("{what} does not parse: {e}"),
        )
        .with_data(json!({ "line": line, "column": column }))),
        Err(e) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            code,
            format!("{what} cannot run: {e}"),
        )),
    }
}

/// `GET /api/configs/actions`: `{"action.postFirstFactorVerification": action | null,
/// "action.postSignIn": action | null}`.
pub async fn list(State(state): State<AppState>) -> Result<Json<Value>, ApiError> {
    let mut out = Map::new();
    for t in ActionType::ALL {
        let action = load(&state, t).await?;
        out.insert(t.name().into(), json!(action));
    }
    Ok(Json(Value::Object(out)))
}

/// `GET /api/configs/actions/:actionType`.
pub async fn get(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<Json<Action>, ApiError> {
    let t = action_type(&name)?;
    load(&state, t).await?.map(Json).ok_or_else(|| not_found(t))
}

/// `PUT /api/configs/actions/:actionType`: sets the action (201 when new, 200 when replaced).
pub async fn put(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<(StatusCode, Json<Action>), ApiError> {
    let t = action_type(&name)?;
    let (created, action) = put_action(&state, t, body).await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(action)))
}

/// Sets the action of type `t` from a `PUT` body (the API's and the console's): whether it is
/// new, and the action. Errors as [`put`]'s.
pub(crate) async fn put_action(
    state: &AppState,
    t: ActionType,
    body: Value,
) -> Result<(bool, Action), ApiError> {
    let action = Action::parse_put(body).map_err(|e| ApiError::invalid_input(e.0))?;
    check_script(state, &action.script).await?;
    let created = store(state, t, &action).await?;
    Ok((created, action))
}

/// `PATCH /api/configs/actions/:actionType`: changes the fields the body names.
pub async fn patch(
    State(state): State<AppState>,
    Path(name): Path<String>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Action>, ApiError> {
    let t = action_type(&name)?;
    let current = load(&state, t).await?.ok_or_else(|| not_found(t))?;
    let action = current
        .patch(body)
        .map_err(|e| ApiError::invalid_input(e.0))?;
    if action.script != current.script {
        check_script(&state, &action.script).await?;
    }
    store(&state, t, &action).await?;
    Ok(Json(action))
}

/// `DELETE /api/configs/actions/:actionType`: 204.
pub async fn delete(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> Result<StatusCode, ApiError> {
    let t = action_type(&name)?;
    if state.store.delete_action(t.name()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(not_found(t))
    }
}

async fn store(state: &AppState, t: ActionType, action: &Action) -> Result<bool, ApiError> {
    let text = serde_json::to_string(action)
        .map_err(|e| ApiError::from(crate::storage::StoreError::Corrupt(e.to_string())))?;
    Ok(state.store.put_action(t.name(), &text, now_ms()).await?)
}

/// `GET /api/configs/actions/:actionType/runs?page=&page_size=`: the action's runs at
/// sign-in, newest first, always paginated (`Total-Number`, `Link`): `{id, actionType,
/// success, result?, error?, logs, durationMs, createdAt}`. The newest 1,000 a type are kept;
/// environment variables' values and passwords are replaced with `[redacted]`.
pub async fn runs(
    State(state): State<AppState>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    axum::extract::OriginalUri(uri): axum::extract::OriginalUri,
    q: super::extract::QueryMap,
) -> Result<axum::response::Response, ApiError> {
    use axum::response::IntoResponse;
    let t = action_type(&name)?;
    if let Some(other) =
        q.0.keys()
            .find(|k| !matches!(k.as_str(), "page" | "page_size"))
    {
        return Err(ApiError::invalid_input(format!(
            "unknown parameter {other}"
        )));
    }
    let pagination = super::pagination::Pagination::always(&q)?;
    let (runs, total) = state
        .store
        .action_runs(t.name(), pagination.as_page())
        .await?;
    let body: Vec<Value> = runs
        .into_iter()
        .map(|r| {
            let mut o = Map::new();
            o.insert("id".into(), json!(r.id));
            o.insert("actionType".into(), json!(r.action_type));
            o.insert("success".into(), json!(r.success));
            if let Some(result) = r.result {
                let v = serde_json::from_str(&result).unwrap_or(Value::String(result));
                o.insert("result".into(), v);
            }
            if let Some(error) = r.error {
                o.insert("error".into(), json!(error));
            }
            let logs: Value = serde_json::from_str(&r.logs).unwrap_or(json!([]));
            o.insert("logs".into(), logs);
            o.insert("durationMs".into(), json!(r.duration_ms));
            o.insert("createdAt".into(), json!(r.created_at));
            Value::Object(o)
        })
        .collect();
    Ok((pagination.headers(&headers, &uri, total), Json(body)).into_response())
}

/// `POST /api/configs/actions/test` `{script, actionType, event, environmentVariables?}`: runs
/// the script once, as the action would run, and answers 200 with what it did: `{result}`
/// (the script's answer, `null` for none) or `{error}`, with `logs` (its console output) and
/// `durationMs`. Nothing it answers is applied. A script that does not parse is 400, as at
/// `PUT`.
pub async fn test(
    State(state): State<AppState>,
    ApiJson(body): ApiJson<Value>,
) -> Result<Json<Value>, ApiError> {
    Ok(Json(dry_run(&state, body).await?))
}

/// Runs a dry run (the API's and the console's): the body and the answer of [`test`].
pub(crate) async fn dry_run(state: &AppState, body: Value) -> Result<Value, ApiError> {
    let Value::Object(mut obj) = body else {
        return Err(ApiError::invalid_input("the body must be an object"));
    };
    let script = match obj.remove("script") {
        Some(Value::String(s)) => s,
        _ => return Err(ApiError::invalid_input("script must be a string")),
    };
    match obj.remove("actionType") {
        Some(Value::String(name)) => action_type(&name)?,
        _ => return Err(ApiError::invalid_input("actionType is required")),
    };
    let event = obj.remove("event").unwrap_or(Value::Object(Map::new()));
    if !event.is_object() {
        return Err(ApiError::invalid_input("event must be an object"));
    }
    let variables = match obj.remove("environmentVariables") {
        None | Some(Value::Null) => Value::Object(Map::new()),
        Some(Value::Object(vars)) => Value::Object(
            crate::domain::action::check_variables(vars)
                .map_err(|e| ApiError::invalid_input(e.0))?,
        ),
        Some(_) => {
            return Err(ApiError::invalid_input(
                "environmentVariables must be an object of strings",
            ))
        }
    };
    if let Some(other) = obj.keys().next() {
        return Err(ApiError::invalid_input(format!("unknown field {other}")));
    }
    let action =
        Action::parse_put(json!({ "script": script })).map_err(|e| ApiError::invalid_input(e.0))?;
    check_script(state, &action.script).await?;
    let input = json!({ "event": event, "environmentVariables": variables });
    let report = state
        .interactions
        .scripts
        .run(&action.script, ENTRY, input)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server.busy",
                e.to_string(),
            )
            .retry_after(1)
        })?;
    let mut out = Map::new();
    match report.outcome {
        Ok(result) => out.insert("result".into(), result),
        Err(e) => out.insert("error".into(), json!(e.to_string())),
    };
    out.insert("logs".into(), json!(report.console));
    out.insert(
        "durationMs".into(),
        json!(report.duration.as_millis() as u64),
    );
    Ok(Value::Object(out))
}
