//! The identity core's Management API: users, API resources and scopes, roles,
//! organizations with their members, roles and scopes. Thin: each handler parses the request
//! into domain input, runs one operation of `crate::identity` (which commits the change and
//! its events together) and wakes the delivery engine for those events.

use super::error::ApiError;
use super::extract::{ApiJson, ApiPath, QueryMap};
use super::pagination::Pagination;
use super::AppState;
use crate::domain::event::HookEvent;
use crate::domain::id::new_id;
use crate::domain::identity::application::{ApplicationPatch, NewApplicationInput, SECRET_LENGTH};
use crate::domain::identity::authz::{
    IdsInput, NamedInput, NamedPatch, NewOrganizationInput, NewOrganizationRoleInput,
    NewResourceInput, NewRoleInput, OrganizationPatch, ResourcePatch, RolePatch,
};
use crate::domain::identity::user::{check_password, NewUserInput, UserChange, UserPatch};
use crate::domain::identity::{is_possible_id, InputError};
use crate::domain::payload::ApiCall;
use crate::identity::interactions::hash_password;
use crate::identity::{applications, authz, organizations, users, Emitter, LinkChange};
use crate::storage::identity::{DocQuery, IdentityError, IdentityResult, Kind, Link};
use axum::extract::{
    ConnectInfo, FromRequestParts, MatchedPath, OriginalUri, RawPathParams, State,
};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::net::SocketAddr;

type ApiResult = Result<Response, ApiError>;

impl From<IdentityError> for ApiError {
    fn from(e: IdentityError) -> Self {
        match e {
            IdentityError::NotFound { .. } => ApiError::new(
                StatusCode::NOT_FOUND,
                "entity.not_exists_with_id",
                e.to_string(),
            ),
            IdentityError::Conflict { code, message } => {
                ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, code, message)
            }
            IdentityError::Invalid(m) => ApiError::invalid_input(m),
            IdentityError::Store(s) => s.into(),
        }
    }
}

impl From<InputError> for ApiError {
    fn from(e: InputError) -> Self {
        ApiError::invalid_input(e.0)
    }
}

/// The call as a data event describes it: user agent, the caller's IP, path and route
/// without `/api`, method and route parameters.
pub struct Call(pub ApiCall);

impl<S: Send + Sync> FromRequestParts<S> for Call {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let user_agent = parts
            .headers
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let ip = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip().to_canonical().to_string())
            .unwrap_or_default();
        let path = parts
            .extensions
            .get::<OriginalUri>()
            .map_or_else(|| parts.uri.path().to_owned(), |u| u.0.path().to_owned());
        let path = path.strip_prefix("/api").unwrap_or(&path).to_owned();
        let matched = parts
            .extensions
            .get::<MatchedPath>()
            .map_or_else(String::new, |m| ApiCall::logto_route(m.as_str()));
        let params: Map<String, Value> = RawPathParams::from_request_parts(parts, state)
            .await
            .map(|p| {
                p.iter()
                    .map(|(k, v)| (k.to_owned(), Value::String(v.to_owned())))
                    .collect()
            })
            .unwrap_or_default();
        Ok(Call(ApiCall {
            user_agent,
            ip,
            path,
            method: parts.method.as_str().to_owned(),
            matched_route: matched,
            params,
        }))
    }
}

/// A path id that cannot name a row (too long) is a 404 without a lookup.
fn id(kind: Kind, raw: &str) -> Result<String, ApiError> {
    if is_possible_id(raw) {
        Ok(raw.to_owned())
    } else {
        Err(IdentityError::not_found(kind, raw).into())
    }
}

/// Answers a committed change: wakes the engine for its events, then `status` with the body
/// (none for 204).
fn done(state: &AppState, status: StatusCode, body: IdentityResult<Value>) -> ApiResult {
    let body = body?;
    state.dispatch.wake();
    Ok(if status == StatusCode::NO_CONTENT {
        status.into_response()
    } else {
        (status, Json(body)).into_response()
    })
}

async fn get_one(state: &AppState, kind: Kind, raw_id: &str) -> ApiResult {
    let id = id(kind, raw_id)?;
    let doc = state
        .store
        .get_doc(kind, &id)
        .await?
        .ok_or_else(|| ApiError::from(IdentityError::not_found(kind, &id)))?;
    Ok(Json(doc).into_response())
}

/// A listing, paginated when the query asks (always for users, as in Logto).
async fn list(
    state: &AppState,
    kind: Kind,
    uri: &axum::http::Uri,
    q: &QueryMap,
    parent: Option<String>,
    always_paged: bool,
) -> ApiResult {
    let pagination = Pagination::from_query(q, !always_paged)?;
    let search = q.0.get("search").filter(|s| !s.is_empty()).cloned();
    let query = DocQuery {
        parent,
        search,
        page: pagination.map(Pagination::as_page),
    };
    let (docs, total) = state.store.list_docs(kind, &query).await?;
    let mut headers = match pagination {
        Some(p) => p.headers(uri, total),
        None => HeaderMap::new(),
    };
    if pagination.is_none() {
        headers.insert("total-number", total.into());
    }
    Ok((headers, Json(docs)).into_response())
}

async fn linked(
    state: &AppState,
    link: Link,
    scope: Option<&str>,
    owner: Kind,
    a: &str,
) -> ApiResult {
    let a = id(owner, a)?;
    if state.store.get_doc(owner, &a).await?.is_none() {
        return Err(IdentityError::not_found(owner, &a).into());
    }
    Ok(Json(state.store.linked_docs(link, scope, &a).await?).into_response())
}

// ------------------------------------------------------------------------------------- users

pub async fn create_user(
    State(state): State<AppState>,
    Call(call): Call,
    ApiJson(input): ApiJson<NewUserInput>,
) -> ApiResult {
    let em = Emitter::new(call, 200);
    let new = input.parse(new_id(), em.now_ms())?;
    let hash = match new.password {
        Some(p) => Some(hash_password(p).await?),
        None => None,
    };
    done(
        &state,
        StatusCode::OK,
        users::create(&*state.store, em, new.user, hash).await,
    )
}

pub async fn get_user(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
) -> ApiResult {
    get_one(&state, Kind::User, &user_id).await
}

pub async fn list_users(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    list(&state, Kind::User, &uri, &q, None, true).await
}

async fn change_user(
    state: AppState,
    call: ApiCall,
    user_id: &str,
    change: UserChange,
    event: HookEvent,
) -> ApiResult {
    let user_id = id(Kind::User, user_id)?;
    let em = Emitter::new(call, 200);
    done(
        &state,
        StatusCode::OK,
        users::change(&*state.store, em, user_id, change, event).await,
    )
}

pub async fn update_user(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(patch): ApiJson<UserPatch>,
) -> ApiResult {
    patch.check()?;
    change_user(
        state,
        call,
        &user_id,
        UserChange::Patch(patch),
        HookEvent::USER_DATA_UPDATED,
    )
    .await
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
    crate::domain::identity::user::check_object("customData", &input.custom_data)?;
    change_user(
        state,
        call,
        &user_id,
        UserChange::MergeCustomData(input.custom_data),
        HookEvent::USER_DATA_UPDATED,
    )
    .await
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
    crate::domain::identity::user::check_object("profile", &input.profile)?;
    change_user(
        state,
        call,
        &user_id,
        UserChange::MergeProfile(input.profile),
        HookEvent::USER_DATA_UPDATED,
    )
    .await
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
    check_password(&input.password)?;
    let hash = hash_password(input.password).await?;
    change_user(
        state,
        call,
        &user_id,
        UserChange::Password(hash),
        HookEvent::USER_DATA_UPDATED,
    )
    .await
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
    change_user(
        state,
        call,
        &user_id,
        UserChange::Suspended(input.is_suspended),
        HookEvent::USER_SUSPENSION_STATUS_UPDATED,
    )
    .await
}

pub async fn delete_user(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    Call(call): Call,
) -> ApiResult {
    let user_id = id(Kind::User, &user_id)?;
    let em = Emitter::new(call, 204);
    done(
        &state,
        StatusCode::NO_CONTENT,
        users::delete(&*state.store, em, user_id).await,
    )
}

pub async fn user_roles(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
) -> ApiResult {
    linked(&state, Link::UserRoles, None, Kind::User, &user_id).await
}

pub async fn assign_user_roles(
    State(state): State<AppState>,
    ApiPath(user_id): ApiPath<String>,
    ApiJson(input): ApiJson<IdsInput>,
) -> ApiResult {
    let user_id = id(Kind::User, &user_id)?;
    let roles = input.take("roleIds")?;
    done(
        &state,
        StatusCode::CREATED,
        users::assign_roles(&*state.store, user_id, roles).await,
    )
}

pub async fn remove_user_role(
    State(state): State<AppState>,
    ApiPath((user_id, role_id)): ApiPath<(String, String)>,
) -> ApiResult {
    let (user_id, role_id) = (id(Kind::User, &user_id)?, id(Kind::Role, &role_id)?);
    done(
        &state,
        StatusCode::NO_CONTENT,
        users::remove_role(&*state.store, user_id, role_id).await,
    )
}

// ------------------------------------------------------------------------ resources, scopes

pub async fn create_resource(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewResourceInput>,
) -> ApiResult {
    let r = input.parse(new_id())?;
    done(
        &state,
        StatusCode::CREATED,
        authz::create_resource(&*state.store, r, crate::clock::now_ms()).await,
    )
}

pub async fn get_resource(
    State(state): State<AppState>,
    ApiPath(resource_id): ApiPath<String>,
) -> ApiResult {
    get_one(&state, Kind::Resource, &resource_id).await
}

pub async fn list_resources(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    list(&state, Kind::Resource, &uri, &q, None, false).await
}

pub async fn update_resource(
    State(state): State<AppState>,
    ApiPath(resource_id): ApiPath<String>,
    ApiJson(patch): ApiJson<ResourcePatch>,
) -> ApiResult {
    let resource_id = id(Kind::Resource, &resource_id)?;
    done(
        &state,
        StatusCode::OK,
        authz::update_resource(&*state.store, resource_id, patch).await,
    )
}

pub async fn delete_resource(
    State(state): State<AppState>,
    ApiPath(resource_id): ApiPath<String>,
) -> ApiResult {
    let resource_id = id(Kind::Resource, &resource_id)?;
    done(
        &state,
        StatusCode::NO_CONTENT,
        authz::delete_resource(&*state.store, resource_id).await,
    )
}

pub async fn list_scopes(
    State(state): State<AppState>,
    ApiPath(resource_id): ApiPath<String>,
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
    list(&state, Kind::Scope, &uri, &q, Some(resource_id), false).await
}

pub async fn create_scope(
    State(state): State<AppState>,
    ApiPath(resource_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<NamedInput>,
) -> ApiResult {
    let resource_id = id(Kind::Resource, &resource_id)?;
    let em = Emitter::new(call, 201);
    let scope = input.into_scope(new_id(), resource_id, em.now_ms())?;
    done(
        &state,
        StatusCode::CREATED,
        authz::create_scope(&*state.store, em, scope).await,
    )
}

pub async fn update_scope(
    State(state): State<AppState>,
    ApiPath((resource_id, scope_id)): ApiPath<(String, String)>,
    Call(call): Call,
    ApiJson(patch): ApiJson<NamedPatch>,
) -> ApiResult {
    let (resource_id, scope_id) = (
        id(Kind::Resource, &resource_id)?,
        id(Kind::Scope, &scope_id)?,
    );
    patch.check()?;
    let em = Emitter::new(call, 200);
    done(
        &state,
        StatusCode::OK,
        authz::update_scope(&*state.store, em, resource_id, scope_id, patch).await,
    )
}

pub async fn delete_scope(
    State(state): State<AppState>,
    ApiPath((resource_id, scope_id)): ApiPath<(String, String)>,
    Call(call): Call,
) -> ApiResult {
    let (resource_id, scope_id) = (
        id(Kind::Resource, &resource_id)?,
        id(Kind::Scope, &scope_id)?,
    );
    let em = Emitter::new(call, 204);
    done(
        &state,
        StatusCode::NO_CONTENT,
        authz::delete_scope(&*state.store, em, resource_id, scope_id).await,
    )
}

// ------------------------------------------------------------------------------------- roles

pub async fn create_role(
    State(state): State<AppState>,
    Call(call): Call,
    ApiJson(input): ApiJson<NewRoleInput>,
) -> ApiResult {
    let (role, scopes) = input.parse(new_id())?;
    let em = Emitter::new(call, 200);
    done(
        &state,
        StatusCode::OK,
        authz::create_role(&*state.store, em, role, scopes).await,
    )
}

pub async fn get_role(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
) -> ApiResult {
    get_one(&state, Kind::Role, &role_id).await
}

pub async fn list_roles(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    list(&state, Kind::Role, &uri, &q, None, false).await
}

pub async fn update_role(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(patch): ApiJson<RolePatch>,
) -> ApiResult {
    let role_id = id(Kind::Role, &role_id)?;
    patch.check()?;
    let em = Emitter::new(call, 200);
    done(
        &state,
        StatusCode::OK,
        authz::update_role(&*state.store, em, role_id, patch).await,
    )
}

pub async fn delete_role(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
    Call(call): Call,
) -> ApiResult {
    let role_id = id(Kind::Role, &role_id)?;
    let em = Emitter::new(call, 204);
    done(
        &state,
        StatusCode::NO_CONTENT,
        authz::delete_role(&*state.store, em, role_id).await,
    )
}

pub async fn role_scopes(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
) -> ApiResult {
    linked(&state, Link::RoleScopes, None, Kind::Role, &role_id).await
}

pub async fn add_role_scopes(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<IdsInput>,
) -> ApiResult {
    let role_id = id(Kind::Role, &role_id)?;
    let scopes = input.take("scopeIds")?;
    let em = Emitter::new(call, 201);
    done(
        &state,
        StatusCode::CREATED,
        authz::add_role_scopes(&*state.store, em, role_id, scopes).await,
    )
}

pub async fn remove_role_scope(
    State(state): State<AppState>,
    ApiPath((role_id, scope_id)): ApiPath<(String, String)>,
    Call(call): Call,
) -> ApiResult {
    let (role_id, scope_id) = (id(Kind::Role, &role_id)?, id(Kind::Scope, &scope_id)?);
    let em = Emitter::new(call, 204);
    done(
        &state,
        StatusCode::NO_CONTENT,
        authz::remove_role_scope(&*state.store, em, role_id, scope_id).await,
    )
}

// ----------------------------------------------------------------------------- organizations

pub async fn create_organization(
    State(state): State<AppState>,
    Call(call): Call,
    ApiJson(input): ApiJson<NewOrganizationInput>,
) -> ApiResult {
    let em = Emitter::new(call, 201);
    let org = input.parse(new_id(), em.now_ms())?;
    done(
        &state,
        StatusCode::CREATED,
        organizations::create(&*state.store, em, org).await,
    )
}

pub async fn get_organization(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
) -> ApiResult {
    get_one(&state, Kind::Organization, &org_id).await
}

pub async fn list_organizations(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    list(&state, Kind::Organization, &uri, &q, None, false).await
}

pub async fn update_organization(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(patch): ApiJson<OrganizationPatch>,
) -> ApiResult {
    let org_id = id(Kind::Organization, &org_id)?;
    patch.check()?;
    let em = Emitter::new(call, 200);
    done(
        &state,
        StatusCode::OK,
        organizations::update(&*state.store, em, org_id, patch).await,
    )
}

pub async fn delete_organization(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
    Call(call): Call,
) -> ApiResult {
    let org_id = id(Kind::Organization, &org_id)?;
    let em = Emitter::new(call, 204);
    done(
        &state,
        StatusCode::NO_CONTENT,
        organizations::delete(&*state.store, em, org_id).await,
    )
}

pub async fn organization_users(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
) -> ApiResult {
    linked(
        &state,
        Link::OrganizationUsers,
        None,
        Kind::Organization,
        &org_id,
    )
    .await
}

pub async fn add_organization_users(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<IdsInput>,
) -> ApiResult {
    let org_id = id(Kind::Organization, &org_id)?;
    let users = input.take("userIds")?;
    let em = Emitter::new(call, 201);
    done(
        &state,
        StatusCode::CREATED,
        organizations::change_members(&*state.store, em, org_id, LinkChange::Add, users).await,
    )
}

pub async fn replace_organization_users(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<IdsInput>,
) -> ApiResult {
    let org_id = id(Kind::Organization, &org_id)?;
    let users = input.take("userIds")?;
    let em = Emitter::new(call, 204);
    done(
        &state,
        StatusCode::NO_CONTENT,
        organizations::change_members(&*state.store, em, org_id, LinkChange::Replace, users).await,
    )
}

pub async fn remove_organization_user(
    State(state): State<AppState>,
    ApiPath((org_id, user_id)): ApiPath<(String, String)>,
    Call(call): Call,
) -> ApiResult {
    let (org_id, user_id) = (id(Kind::Organization, &org_id)?, id(Kind::User, &user_id)?);
    let em = Emitter::new(call, 204);
    done(
        &state,
        StatusCode::NO_CONTENT,
        organizations::change_members(&*state.store, em, org_id, LinkChange::Remove, vec![user_id])
            .await,
    )
}

pub async fn member_roles(
    State(state): State<AppState>,
    ApiPath((org_id, user_id)): ApiPath<(String, String)>,
) -> ApiResult {
    let (org_id, user_id) = (id(Kind::Organization, &org_id)?, id(Kind::User, &user_id)?);
    if !state
        .store
        .has_link(Link::OrganizationUsers, None, &org_id, &user_id)
        .await?
    {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "entity.not_exists_with_id",
            format!("The organization member with ID `{user_id}` does not exist."),
        ));
    }
    Ok(Json(
        state
            .store
            .linked_docs(Link::OrganizationUserRoles, Some(&org_id), &user_id)
            .await?,
    )
    .into_response())
}

pub async fn assign_member_roles(
    State(state): State<AppState>,
    ApiPath((org_id, user_id)): ApiPath<(String, String)>,
    ApiJson(input): ApiJson<IdsInput>,
) -> ApiResult {
    let (org_id, user_id) = (id(Kind::Organization, &org_id)?, id(Kind::User, &user_id)?);
    let roles = input.take("organizationRoleIds")?;
    done(
        &state,
        StatusCode::CREATED,
        organizations::assign_member_roles(&*state.store, org_id, user_id, roles).await,
    )
}

pub async fn remove_member_role(
    State(state): State<AppState>,
    ApiPath((org_id, user_id, role_id)): ApiPath<(String, String, String)>,
) -> ApiResult {
    let (org_id, user_id, role_id) = (
        id(Kind::Organization, &org_id)?,
        id(Kind::User, &user_id)?,
        id(Kind::OrganizationRole, &role_id)?,
    );
    done(
        &state,
        StatusCode::NO_CONTENT,
        organizations::remove_member_role(&*state.store, org_id, user_id, role_id).await,
    )
}

// ------------------------------------------------------------- organization roles and scopes

pub async fn create_organization_role(
    State(state): State<AppState>,
    Call(call): Call,
    ApiJson(input): ApiJson<NewOrganizationRoleInput>,
) -> ApiResult {
    let (role, scopes) = input.parse(new_id())?;
    let em = Emitter::new(call, 201);
    done(
        &state,
        StatusCode::CREATED,
        organizations::create_role(&*state.store, em, role, scopes).await,
    )
}

pub async fn get_organization_role(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
) -> ApiResult {
    get_one(&state, Kind::OrganizationRole, &role_id).await
}

pub async fn list_organization_roles(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    list(&state, Kind::OrganizationRole, &uri, &q, None, false).await
}

pub async fn update_organization_role(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(patch): ApiJson<NamedPatch>,
) -> ApiResult {
    let role_id = id(Kind::OrganizationRole, &role_id)?;
    patch.check()?;
    let em = Emitter::new(call, 200);
    done(
        &state,
        StatusCode::OK,
        organizations::update_role(&*state.store, em, role_id, patch).await,
    )
}

pub async fn delete_organization_role(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
    Call(call): Call,
) -> ApiResult {
    let role_id = id(Kind::OrganizationRole, &role_id)?;
    let em = Emitter::new(call, 204);
    done(
        &state,
        StatusCode::NO_CONTENT,
        organizations::delete_role(&*state.store, em, role_id).await,
    )
}

pub async fn organization_role_scopes(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
) -> ApiResult {
    linked(
        &state,
        Link::OrganizationRoleScopes,
        None,
        Kind::OrganizationRole,
        &role_id,
    )
    .await
}

async fn change_organization_role_scopes(
    state: AppState,
    call: ApiCall,
    role_id: &str,
    how: LinkChange,
    scopes: Vec<String>,
    status: StatusCode,
) -> ApiResult {
    let role_id = id(Kind::OrganizationRole, role_id)?;
    let em = Emitter::new(call, status.as_u16());
    done(
        &state,
        status,
        organizations::change_role_scopes(&*state.store, em, role_id, how, scopes).await,
    )
}

pub async fn add_organization_role_scopes(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<IdsInput>,
) -> ApiResult {
    let scopes = input.take("organizationScopeIds")?;
    change_organization_role_scopes(
        state,
        call,
        &role_id,
        LinkChange::Add,
        scopes,
        StatusCode::CREATED,
    )
    .await
}

pub async fn replace_organization_role_scopes(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<IdsInput>,
) -> ApiResult {
    let scopes = input.take("organizationScopeIds")?;
    change_organization_role_scopes(
        state,
        call,
        &role_id,
        LinkChange::Replace,
        scopes,
        StatusCode::NO_CONTENT,
    )
    .await
}

pub async fn remove_organization_role_scope(
    State(state): State<AppState>,
    ApiPath((role_id, scope_id)): ApiPath<(String, String)>,
    Call(call): Call,
) -> ApiResult {
    let scope_id = id(Kind::OrganizationScope, &scope_id)?;
    change_organization_role_scopes(
        state,
        call,
        &role_id,
        LinkChange::Remove,
        vec![scope_id],
        StatusCode::NO_CONTENT,
    )
    .await
}

pub async fn create_organization_scope(
    State(state): State<AppState>,
    Call(call): Call,
    ApiJson(input): ApiJson<NamedInput>,
) -> ApiResult {
    let scope = input.into_organization_scope(new_id())?;
    let em = Emitter::new(call, 201);
    done(
        &state,
        StatusCode::CREATED,
        organizations::create_scope(&*state.store, em, scope).await,
    )
}

pub async fn get_organization_scope(
    State(state): State<AppState>,
    ApiPath(scope_id): ApiPath<String>,
) -> ApiResult {
    get_one(&state, Kind::OrganizationScope, &scope_id).await
}

pub async fn list_organization_scopes(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    list(&state, Kind::OrganizationScope, &uri, &q, None, false).await
}

pub async fn update_organization_scope(
    State(state): State<AppState>,
    ApiPath(scope_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(patch): ApiJson<NamedPatch>,
) -> ApiResult {
    let scope_id = id(Kind::OrganizationScope, &scope_id)?;
    patch.check()?;
    let em = Emitter::new(call, 200);
    done(
        &state,
        StatusCode::OK,
        organizations::update_scope(&*state.store, em, scope_id, patch).await,
    )
}

pub async fn delete_organization_scope(
    State(state): State<AppState>,
    ApiPath(scope_id): ApiPath<String>,
    Call(call): Call,
) -> ApiResult {
    let scope_id = id(Kind::OrganizationScope, &scope_id)?;
    let em = Emitter::new(call, 204);
    done(
        &state,
        StatusCode::NO_CONTENT,
        organizations::delete_scope(&*state.store, em, scope_id).await,
    )
}

// ------------------------------------------------------------------------------ applications

pub async fn create_application(
    State(state): State<AppState>,
    ApiJson(input): ApiJson<NewApplicationInput>,
) -> ApiResult {
    let app = input.parse(new_id(), crate::clock::now_ms())?;
    let secret = crate::domain::id::new_secret(SECRET_LENGTH);
    done(
        &state,
        StatusCode::CREATED,
        applications::create(&*state.store, app, secret).await,
    )
}

pub async fn get_application(
    State(state): State<AppState>,
    ApiPath(app_id): ApiPath<String>,
) -> ApiResult {
    get_one(&state, Kind::Application, &app_id).await
}

pub async fn list_applications(
    State(state): State<AppState>,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    list(&state, Kind::Application, &uri, &q, None, false).await
}

pub async fn update_application(
    State(state): State<AppState>,
    ApiPath(app_id): ApiPath<String>,
    ApiJson(patch): ApiJson<ApplicationPatch>,
) -> ApiResult {
    let app_id = id(Kind::Application, &app_id)?;
    done(
        &state,
        StatusCode::OK,
        applications::update(&*state.store, app_id, patch).await,
    )
}

pub async fn delete_application(
    State(state): State<AppState>,
    ApiPath(app_id): ApiPath<String>,
) -> ApiResult {
    let app_id = id(Kind::Application, &app_id)?;
    done(
        &state,
        StatusCode::NO_CONTENT,
        applications::delete(&*state.store, app_id).await,
    )
}
