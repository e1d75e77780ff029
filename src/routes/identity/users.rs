//! `/api/users…`: users, their custom data, profile, password, suspension and roles.

use super::{get_one, id, linked, list, run, ApiResult, Call};
use crate::domain::event::HookEvent;
use crate::domain::id::new_short_id;
use crate::domain::identity::authz::IdsInput;
use crate::domain::identity::user::{
    check_api_password, check_object, NewPassword, NewUserInput, UserChange, UserPatch,
};
use crate::identity::users;
use crate::routes::error::ApiError;
use crate::routes::extract::{ApiJson, ApiPath, QueryMap};
use crate::routes::AppState;
use crate::storage::identity::{IdentityError, Kind, Link};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};

/// `POST /users` → 200, as Logto answers it. A `passwordDigest` is imported as given (see
/// `domain::identity::password`), a `password` hashed with argon2id.
pub async fn create_user(
    State(state): State<AppState>,
    Call(call): Call,
    ApiJson(input): ApiJson<NewUserInput>,
) -> ApiResult {
    let passwords = state.interactions.passwords.clone();
    run(&state, call, StatusCode::OK, |em, store| async move {
        let new = input.parse(new_short_id(), em.now_ms())?;
        let credential = match new.password {
            Some(NewPassword::Plain(p)) => Some(passwords.hash(p).await?),
            Some(NewPassword::Imported(digest)) => Some(digest),
            None => None,
        };
        Ok(users::create(&*store, em, new.user, credential).await?)
    })
    .await
}

pub async fn get_user(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
) -> ApiResult {
    get_one(&state, Kind::User, &user_id).await
}

pub async fn list_users(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    list(&state, Kind::User, (&headers, &uri), &q, None, true).await
}

/// The `PATCH /users/:userId…` routes: 200 with the user (or, for custom data and profile,
/// the merged object), firing `event`.
async fn change_user(
    state: AppState,
    call: crate::domain::payload::ApiCall,
    user_id: &str,
    change: UserChange,
    event: HookEvent,
) -> ApiResult {
    let user_id = id(Kind::User, user_id)?;
    run(&state, call, StatusCode::OK, |em, store| async move {
        Ok(users::change(&*store, em, user_id, change, event).await?)
    })
    .await
}

pub async fn update_user(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(patch): ApiJson<UserPatch>,
) -> ApiResult {
    let patch = patch.normalized();
    patch.check()?;
    let change = UserChange::Patch(patch);
    change_user(state, call, &user_id, change, HookEvent::USER_DATA_UPDATED).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CustomDataInput {
    custom_data: Map<String, Value>,
}

pub async fn update_custom_data(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<CustomDataInput>,
) -> ApiResult {
    check_object("customData", &input.custom_data)?;
    let change = UserChange::MergeCustomData(input.custom_data);
    change_user(state, call, &user_id, change, HookEvent::USER_DATA_UPDATED).await
}

pub async fn get_custom_data(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
) -> ApiResult {
    let user_id = id(Kind::User, &user_id)?;
    let doc = state
        .store
        .get_doc(Kind::User, &user_id)
        .await?
        .ok_or_else(|| ApiError::from(IdentityError::not_found(Kind::User, &user_id)))?;
    Ok(Json(doc.get("customData").cloned().unwrap_or_default()).into_response())
}

#[derive(Deserialize)]
pub struct ProfileInput {
    profile: Map<String, Value>,
}

pub async fn update_profile(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<ProfileInput>,
) -> ApiResult {
    check_object("profile", &input.profile)?;
    let change = UserChange::MergeProfile(input.profile);
    change_user(state, call, &user_id, change, HookEvent::USER_DATA_UPDATED).await
}

#[derive(Deserialize)]
pub struct PasswordInput {
    password: String,
}

pub async fn update_password(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<PasswordInput>,
) -> ApiResult {
    check_api_password(&input.password)?;
    let hash = state.interactions.passwords.hash(input.password).await?;
    let change = UserChange::Password(hash);
    change_user(state, call, &user_id, change, HookEvent::USER_DATA_UPDATED).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SuspensionInput {
    is_suspended: bool,
}

pub async fn update_suspension(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<SuspensionInput>,
) -> ApiResult {
    let change = UserChange::Suspended(input.is_suspended);
    let event = HookEvent::USER_SUSPENSION_STATUS_UPDATED;
    change_user(state, call, &user_id, change, event).await
}

pub async fn delete_user(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    Call(call): Call,
) -> ApiResult {
    let user_id = id(Kind::User, &user_id)?;
    run(
        &state,
        call,
        StatusCode::NO_CONTENT,
        |em, store| async move { Ok(users::delete(&*store, em, user_id).await?) },
    )
    .await
}

/// `GET /users/:userId/roles`: always paginated, as Logto's.
pub async fn user_roles(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    let at = (&headers, &uri, &q);
    linked(&state, Link::UserRoles, Kind::User, &user_id, at, true).await
}

/// `POST /users/:userId/roles {roleIds}` → 201 `{roleIds, addedRoleIds}` (idempotent).
pub async fn assign_user_roles(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<IdsInput>,
) -> ApiResult {
    let user_id = id(Kind::User, &user_id)?;
    let roles = input.take("roleIds")?;
    run(&state, call, StatusCode::CREATED, |_, store| async move {
        Ok(users::assign_roles(&*store, user_id, roles).await?)
    })
    .await
}

/// `PUT /users/:userId/roles {roleIds}` → 200 `{roleIds}`: exactly these roles.
pub async fn replace_user_roles(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<IdsInput>,
) -> ApiResult {
    let user_id = id(Kind::User, &user_id)?;
    let roles = input.take("roleIds")?;
    run(&state, call, StatusCode::OK, |_, store| async move {
        Ok(users::replace_roles(&*store, user_id, roles).await?)
    })
    .await
}

pub async fn remove_user_role(
    State(state): State<AppState>,
    ApiPath((user_id, role_id)): ApiPath<(String, String)>,
    Call(call): Call,
) -> ApiResult {
    let (user_id, role_id) = (id(Kind::User, &user_id)?, id(Kind::Role, &role_id)?);
    run(
        &state,
        call,
        StatusCode::NO_CONTENT,
        |_, store| async move { Ok(users::remove_role(&*store, user_id, role_id).await?) },
    )
    .await
}
