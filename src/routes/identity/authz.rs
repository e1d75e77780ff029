//! `/api/resources…` (API resources and their scopes) and `/api/roles…`.

use super::{get_one, id, linked, list, run, ApiResult, Call};
use crate::domain::id::new_id;
use crate::domain::identity::authz::{
    check_scope_name, IdsInput, NamedInput, NamedPatch, NewResourceInput, NewRoleInput,
    ResourcePatch, RolePatch,
};
use crate::identity::authz;
use crate::routes::extract::{ApiJson, ApiPath, QueryMap};
use crate::routes::AppState;
use crate::storage::identity::{IdentityError, Kind, Link};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};

/// `POST /resources` → 201, the resource with `scopes: []`.
pub async fn create_resource(
    State(state): State<AppState>,
    Call(call): Call,
    ApiJson(input): ApiJson<NewResourceInput>,
) -> ApiResult {
    let r = input.parse(new_id())?;
    run(&state, call, StatusCode::CREATED, |em, store| async move {
        Ok(authz::create_resource(&*store, r, em.now_ms()).await?)
    })
    .await
}

pub async fn get_resource(
    State(state): State<AppState>,
    ApiPath(resource_id): ApiPath<String>,
) -> ApiResult {
    get_one(&state, Kind::Resource, &resource_id).await
}

pub async fn list_resources(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    list(&state, Kind::Resource, (&headers, &uri), &q, None, false).await
}

pub async fn update_resource(
    State(state): State<AppState>,
    ApiPath(resource_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(patch): ApiJson<ResourcePatch>,
) -> ApiResult {
    let resource_id = id(Kind::Resource, &resource_id)?;
    run(&state, call, StatusCode::OK, |_, store| async move {
        Ok(authz::update_resource(&*store, resource_id, patch).await?)
    })
    .await
}

pub async fn delete_resource(
    State(state): State<AppState>,
    ApiPath(resource_id): ApiPath<String>,
    Call(call): Call,
) -> ApiResult {
    let resource_id = id(Kind::Resource, &resource_id)?;
    run(
        &state,
        call,
        StatusCode::NO_CONTENT,
        |_, store| async move { Ok(authz::delete_resource(&*store, resource_id).await?) },
    )
    .await
}

pub async fn list_scopes(
    State(state): State<AppState>,
    ApiPath(resource_id): ApiPath<String>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    let resource_id = id(Kind::Resource, &resource_id)?;
    if state
        .store
        .get_doc(Kind::Resource, &resource_id)
        .await?
        .is_none()
    {
        return Err(IdentityError::not_found(Kind::Resource, &resource_id).into());
    }
    let at = (&headers, &uri);
    list(&state, Kind::Scope, at, &q, Some(resource_id), true).await
}

pub async fn create_scope(
    State(state): State<AppState>,
    ApiPath(resource_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<NamedInput>,
) -> ApiResult {
    let resource_id = id(Kind::Resource, &resource_id)?;
    run(&state, call, StatusCode::CREATED, |em, store| async move {
        let scope = input.into_scope(new_id(), resource_id, em.now_ms())?;
        Ok(authz::create_scope(&*store, em, scope).await?)
    })
    .await
}

pub async fn update_scope(
    State(state): State<AppState>,
    ApiPath((resource_id, scope_id)): ApiPath<(String, String)>,
    Call(call): Call,
    ApiJson(patch): ApiJson<NamedPatch>,
) -> ApiResult {
    let resource_id = id(Kind::Resource, &resource_id)?;
    let scope_id = id(Kind::Scope, &scope_id)?;
    patch.check()?;
    if let Some(name) = &patch.name {
        check_scope_name(name)?;
    }
    run(&state, call, StatusCode::OK, |em, store| async move {
        Ok(authz::update_scope(&*store, em, resource_id, scope_id, patch).await?)
    })
    .await
}

pub async fn delete_scope(
    State(state): State<AppState>,
    ApiPath((resource_id, scope_id)): ApiPath<(String, String)>,
    Call(call): Call,
) -> ApiResult {
    let resource_id = id(Kind::Resource, &resource_id)?;
    let scope_id = id(Kind::Scope, &scope_id)?;
    run(&state, call, StatusCode::NO_CONTENT, |em, store| async move {
        Ok(authz::delete_scope(&*store, em, resource_id, scope_id).await?)
    })
    .await
}

/// `POST /roles` → 200, as Logto answers it.
pub async fn create_role(
    State(state): State<AppState>,
    Call(call): Call,
    ApiJson(input): ApiJson<NewRoleInput>,
) -> ApiResult {
    let (role, scopes) = input.parse(new_id())?;
    run(&state, call, StatusCode::OK, |em, store| async move {
        Ok(authz::create_role(&*store, em, role, scopes).await?)
    })
    .await
}

pub async fn get_role(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
) -> ApiResult {
    get_one(&state, Kind::Role, &role_id).await
}

pub async fn list_roles(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    list(&state, Kind::Role, (&headers, &uri), &q, None, true).await
}

pub async fn update_role(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(patch): ApiJson<RolePatch>,
) -> ApiResult {
    let role_id = id(Kind::Role, &role_id)?;
    patch.check()?;
    run(&state, call, StatusCode::OK, |em, store| async move {
        Ok(authz::update_role(&*store, em, role_id, patch).await?)
    })
    .await
}

pub async fn delete_role(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
    Call(call): Call,
) -> ApiResult {
    let role_id = id(Kind::Role, &role_id)?;
    run(
        &state,
        call,
        StatusCode::NO_CONTENT,
        |em, store| async move { Ok(authz::delete_role(&*store, em, role_id).await?) },
    )
    .await
}

pub async fn role_scopes(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    let at = (&headers, &uri, &q);
    linked(&state, Link::RoleScopes, Kind::Role, &role_id, at, false).await
}

pub async fn add_role_scopes(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<IdsInput>,
) -> ApiResult {
    let role_id = id(Kind::Role, &role_id)?;
    let scopes = input.take_nonempty("scopeIds")?;
    run(&state, call, StatusCode::CREATED, |em, store| async move {
        Ok(authz::add_role_scopes(&*store, em, role_id, scopes).await?)
    })
    .await
}

pub async fn remove_role_scope(
    State(state): State<AppState>,
    ApiPath((role_id, scope_id)): ApiPath<(String, String)>,
    Call(call): Call,
) -> ApiResult {
    let (role_id, scope_id) = (id(Kind::Role, &role_id)?, id(Kind::Scope, &scope_id)?);
    run(&state, call, StatusCode::NO_CONTENT, |em, store| async move {
        Ok(authz::remove_role_scope(&*store, em, role_id, scope_id).await?)
    })
    .await
}
