//! `/api/applications…`: the applications whose backends call the interaction API.

use super::{get_one, id, list, run, ApiResult, Call};
use crate::domain::id::{new_id, new_secret};
use crate::domain::identity::application::{ApplicationPatch, NewApplicationInput, SECRET_LENGTH};
use crate::identity::applications;
use crate::routes::extract::{ApiJson, ApiPath, QueryMap};
use crate::routes::AppState;
use crate::storage::identity::Kind;
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};

/// `POST /applications` → 200 (as Logto answers it), with the secret shown this once.
pub async fn create_application(
    State(state): State<AppState>,
    Call(call): Call,
    ApiJson(input): ApiJson<NewApplicationInput>,
) -> ApiResult {
    run(&state, call, StatusCode::OK, |em, store| async move {
        let app = input.parse(new_id(), em.now_ms())?;
        let secret = new_secret(SECRET_LENGTH);
        Ok(applications::create(&*store, app, secret).await?)
    })
    .await
}

pub async fn get_application(
    State(state): State<AppState>,
    ApiPath(app_id): ApiPath<String>,
) -> ApiResult {
    get_one(&state, Kind::Application, &app_id).await
}

pub async fn list_applications(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    list(&state, Kind::Application, (&headers, &uri), &q, None, false).await
}

pub async fn update_application(
    State(state): State<AppState>,
    ApiPath(app_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(patch): ApiJson<ApplicationPatch>,
) -> ApiResult {
    let app_id = id(Kind::Application, &app_id)?;
    run(&state, call, StatusCode::OK, |_, store| async move {
        Ok(applications::update(&*store, app_id, patch).await?)
    })
    .await
}

pub async fn delete_application(
    State(state): State<AppState>,
    ApiPath(app_id): ApiPath<String>,
    Call(call): Call,
) -> ApiResult {
    let app_id = id(Kind::Application, &app_id)?;
    run(
        &state,
        call,
        StatusCode::NO_CONTENT,
        |_, store| async move { Ok(applications::delete(&*store, app_id).await?) },
    )
    .await
}
