//! `/api/organizations…` (organizations, their members and their members' roles, their
//! machine-to-machine applications) and the organization template: `/api/organization-roles…`
//! and `/api/organization-scopes…`.

use super::{get_one, id, linked, linked_page, list, run, ApiResult, Call};
use crate::domain::id::{new_id, new_short_id};
use crate::domain::identity::authz::{
    IdsInput, NamedInput, NamedPatch, NewOrganizationInput, NewOrganizationRoleInput,
    OrganizationPatch,
};
use crate::domain::payload::ApiCall;
use crate::identity::organizations::{self, Members};
use crate::identity::LinkChange;
use crate::routes::error::ApiError;
use crate::routes::extract::{ApiJson, ApiPath, QueryMap};
use crate::routes::AppState;
use crate::storage::identity::{Kind, Link};
use axum::extract::{OriginalUri, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};

/// The one status of every link route (Logto's): adding answers 201, replacing and removing
/// 204.
fn link_status(how: LinkChange) -> StatusCode {
    match how {
        LinkChange::Add => StatusCode::CREATED,
        LinkChange::Replace | LinkChange::Remove => StatusCode::NO_CONTENT,
    }
}

pub async fn create_organization(
    State(state): State<AppState>,
    Call(call): Call,
    ApiJson(input): ApiJson<NewOrganizationInput>,
) -> ApiResult {
    run(&state, call, StatusCode::CREATED, |em, store| async move {
        let org = input.parse(new_short_id(), em.now_ms())?;
        Ok(organizations::create(&*store, em, org).await?)
    })
    .await
}

pub async fn get_organization(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
) -> ApiResult {
    get_one(&state, Kind::Organization, &org_id).await
}

pub async fn list_organizations(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    list(&state, Kind::Organization, (&headers, &uri), &q, None, true).await
}

pub async fn update_organization(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(patch): ApiJson<OrganizationPatch>,
) -> ApiResult {
    let org_id = id(Kind::Organization, &org_id)?;
    patch.check()?;
    run(&state, call, StatusCode::OK, |em, store| async move {
        Ok(organizations::update(&*store, em, org_id, patch).await?)
    })
    .await
}

pub async fn delete_organization(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
    Call(call): Call,
) -> ApiResult {
    let org_id = id(Kind::Organization, &org_id)?;
    run(
        &state,
        call,
        StatusCode::NO_CONTENT,
        |em, store| async move { Ok(organizations::delete(&*store, em, org_id).await?) },
    )
    .await
}

/// `GET /organizations/:id/users`: always paginated, as Logto's; each member is the
/// user-info fields with the member's `organizationRoles` (`[{id, name}]`), Logto's
/// `userWithOrganizationRolesGuard`.
pub async fn organization_users(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    let (link, at) = (Link::OrganizationUsers, (&headers, &uri, &q));
    let (out, Json(mut members)) =
        linked_page(&state, link, Kind::Organization, &org_id, at, true).await?;
    for member in &mut members {
        let Some(obj) = member.as_object_mut() else {
            continue;
        };
        obj.shift_remove("hasPassword");
        let user_id = obj
            .get("id")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned();
        let roles: Vec<Value> = state
            .store
            .linked_docs(Link::OrganizationUserRoles, Some(&org_id), &user_id)
            .await?
            .into_iter()
            .map(|r| json!({"id": r["id"], "name": r["name"]}))
            .collect();
        obj.insert("organizationRoles".into(), Value::Array(roles));
    }
    Ok((out, Json(members)).into_response())
}

/// `GET /organizations/:id/applications`: always paginated, as Logto's.
pub async fn organization_applications(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    let (link, at) = (Link::OrganizationApplications, (&headers, &uri, &q));
    linked(&state, link, Kind::Organization, &org_id, at, true).await
}

/// Every membership route: POST adds (201 with the ids named), PUT replaces (204), DELETE
/// removes one (204); each fires `Organization.Membership.Updated`.
async fn change_members(
    state: AppState,
    call: ApiCall,
    org_id: &str,
    members: Members,
    how: LinkChange,
    ids: Vec<String>,
) -> ApiResult {
    let org_id = id(Kind::Organization, org_id)?;
    let status = link_status(how);
    run(&state, call, status, |em, store| async move {
        let store = &*store;
        Ok(organizations::change_members(store, em, org_id, members, how, ids).await?)
    })
    .await
}

pub async fn add_organization_users(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<IdsInput>,
) -> ApiResult {
    let ids = input.take_nonempty("userIds")?;
    change_members(state, call, &org_id, Members::Users, LinkChange::Add, ids).await
}

pub async fn replace_organization_users(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<IdsInput>,
) -> ApiResult {
    let ids = input.take("userIds")?;
    change_members(
        state,
        call,
        &org_id,
        Members::Users,
        LinkChange::Replace,
        ids,
    )
    .await
}

pub async fn remove_organization_user(
    State(state): State<AppState>,
    ApiPath((org_id, user_id)): ApiPath<(String, String)>,
    Call(call): Call,
) -> ApiResult {
    let ids = vec![id(Kind::User, &user_id)?];
    change_members(
        state,
        call,
        &org_id,
        Members::Users,
        LinkChange::Remove,
        ids,
    )
    .await
}

pub async fn add_organization_applications(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<IdsInput>,
) -> ApiResult {
    let ids = input.take_nonempty("applicationIds")?;
    let how = LinkChange::Add;
    change_members(state, call, &org_id, Members::Applications, how, ids).await
}

pub async fn replace_organization_applications(
    State(state): State<AppState>,
    ApiPath(org_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<IdsInput>,
) -> ApiResult {
    let ids = input.take("applicationIds")?;
    let how = LinkChange::Replace;
    change_members(state, call, &org_id, Members::Applications, how, ids).await
}

pub async fn remove_organization_application(
    State(state): State<AppState>,
    ApiPath((org_id, app_id)): ApiPath<(String, String)>,
    Call(call): Call,
) -> ApiResult {
    let ids = vec![id(Kind::Application, &app_id)?];
    let how = LinkChange::Remove;
    change_members(state, call, &org_id, Members::Applications, how, ids).await
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
            StatusCode::UNPROCESSABLE_ENTITY,
            "organization.require_membership",
            format!("The user `{user_id}` is not a member of the organization."),
        ));
    }
    let roles = state
        .store
        .linked_docs(Link::OrganizationUserRoles, Some(&org_id), &user_id)
        .await?;
    Ok(Json(roles).into_response())
}

/// `POST /organizations/:id/users/:userId/roles` → 201 `{organizationRoleIds}`.
pub async fn assign_member_roles(
    State(state): State<AppState>,
    ApiPath((org_id, user_id)): ApiPath<(String, String)>,
    Call(call): Call,
    ApiJson(input): ApiJson<IdsInput>,
) -> ApiResult {
    set_member_roles(state, call, (&org_id, &user_id), LinkChange::Add, input).await
}

/// `PUT /organizations/:id/users/:userId/roles` → 204: exactly these roles.
pub async fn replace_member_roles(
    State(state): State<AppState>,
    ApiPath((org_id, user_id)): ApiPath<(String, String)>,
    Call(call): Call,
    ApiJson(input): ApiJson<IdsInput>,
) -> ApiResult {
    set_member_roles(state, call, (&org_id, &user_id), LinkChange::Replace, input).await
}

async fn set_member_roles(
    state: AppState,
    call: ApiCall,
    (org_id, user_id): (&str, &str),
    how: LinkChange,
    input: IdsInput,
) -> ApiResult {
    let (org_id, user_id) = (id(Kind::Organization, org_id)?, id(Kind::User, user_id)?);
    let roles = input.member_roles()?;
    let status = link_status(how);
    run(&state, call, status, |_, store| async move {
        let store = &*store;
        Ok(organizations::set_member_roles(store, org_id, user_id, how, roles).await?)
    })
    .await
}

pub async fn remove_member_role(
    State(state): State<AppState>,
    ApiPath((org_id, user_id, role_id)): ApiPath<(String, String, String)>,
    Call(call): Call,
) -> ApiResult {
    let (org_id, user_id) = (id(Kind::Organization, &org_id)?, id(Kind::User, &user_id)?);
    let role_id = id(Kind::OrganizationRole, &role_id)?;
    run(
        &state,
        call,
        StatusCode::NO_CONTENT,
        |_, store| async move {
            let store = &*store;
            Ok(organizations::remove_member_role(store, org_id, user_id, role_id).await?)
        },
    )
    .await
}

pub async fn create_organization_role(
    State(state): State<AppState>,
    Call(call): Call,
    ApiJson(input): ApiJson<NewOrganizationRoleInput>,
) -> ApiResult {
    let (role, scopes) = input.parse(new_id())?;
    run(&state, call, StatusCode::CREATED, |em, store| async move {
        Ok(organizations::create_role(&*store, em, role, scopes).await?)
    })
    .await
}

pub async fn get_organization_role(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
) -> ApiResult {
    get_one(&state, Kind::OrganizationRole, &role_id).await
}

pub async fn list_organization_roles(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    let at = (&headers, &uri);
    list(&state, Kind::OrganizationRole, at, &q, None, true).await
}

pub async fn update_organization_role(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(patch): ApiJson<NamedPatch>,
) -> ApiResult {
    let role_id = id(Kind::OrganizationRole, &role_id)?;
    patch.check()?;
    run(&state, call, StatusCode::OK, |em, store| async move {
        Ok(organizations::update_role(&*store, em, role_id, patch).await?)
    })
    .await
}

pub async fn delete_organization_role(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
    Call(call): Call,
) -> ApiResult {
    let role_id = id(Kind::OrganizationRole, &role_id)?;
    run(
        &state,
        call,
        StatusCode::NO_CONTENT,
        |em, store| async move { Ok(organizations::delete_role(&*store, em, role_id).await?) },
    )
    .await
}

pub async fn organization_role_scopes(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    let (link, at) = (Link::OrganizationRoleScopes, (&headers, &uri, &q));
    linked(&state, link, Kind::OrganizationRole, &role_id, at, false).await
}

/// The organization role scope routes: POST adds (201), PUT replaces (204), DELETE removes
/// one (204); each fires `OrganizationRole.Scopes.Updated`.
async fn change_role_scopes(
    state: AppState,
    call: ApiCall,
    role_id: &str,
    how: LinkChange,
    scopes: Vec<String>,
) -> ApiResult {
    let role_id = id(Kind::OrganizationRole, role_id)?;
    let status = link_status(how);
    run(&state, call, status, |em, store| async move {
        let store = &*store;
        Ok(organizations::change_role_scopes(store, em, role_id, how, scopes).await?)
    })
    .await
}

pub async fn add_organization_role_scopes(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<IdsInput>,
) -> ApiResult {
    let scopes = input.take_nonempty("organizationScopeIds")?;
    change_role_scopes(state, call, &role_id, LinkChange::Add, scopes).await
}

pub async fn replace_organization_role_scopes(
    State(state): State<AppState>,
    ApiPath(role_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<IdsInput>,
) -> ApiResult {
    let scopes = input.take("organizationScopeIds")?;
    change_role_scopes(state, call, &role_id, LinkChange::Replace, scopes).await
}

pub async fn remove_organization_role_scope(
    State(state): State<AppState>,
    ApiPath((role_id, scope_id)): ApiPath<(String, String)>,
    Call(call): Call,
) -> ApiResult {
    let scopes = vec![id(Kind::OrganizationScope, &scope_id)?];
    change_role_scopes(state, call, &role_id, LinkChange::Remove, scopes).await
}

pub async fn create_organization_scope(
    State(state): State<AppState>,
    Call(call): Call,
    ApiJson(input): ApiJson<NamedInput>,
) -> ApiResult {
    let scope = input.into_organization_scope(new_id())?;
    run(&state, call, StatusCode::CREATED, |em, store| async move {
        Ok(organizations::create_scope(&*store, em, scope).await?)
    })
    .await
}

pub async fn get_organization_scope(
    State(state): State<AppState>,
    ApiPath(scope_id): ApiPath<String>,
) -> ApiResult {
    get_one(&state, Kind::OrganizationScope, &scope_id).await
}

pub async fn list_organization_scopes(
    State(state): State<AppState>,
    headers: HeaderMap,
    OriginalUri(uri): OriginalUri,
    q: QueryMap,
) -> ApiResult {
    let at = (&headers, &uri);
    list(&state, Kind::OrganizationScope, at, &q, None, false).await
}

pub async fn update_organization_scope(
    State(state): State<AppState>,
    ApiPath(scope_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(patch): ApiJson<NamedPatch>,
) -> ApiResult {
    let scope_id = id(Kind::OrganizationScope, &scope_id)?;
    patch.check()?;
    run(&state, call, StatusCode::OK, |em, store| async move {
        Ok(organizations::update_scope(&*store, em, scope_id, patch).await?)
    })
    .await
}

pub async fn delete_organization_scope(
    State(state): State<AppState>,
    ApiPath(scope_id): ApiPath<String>,
    Call(call): Call,
) -> ApiResult {
    let scope_id = id(Kind::OrganizationScope, &scope_id)?;
    run(
        &state,
        call,
        StatusCode::NO_CONTENT,
        |em, store| async move { Ok(organizations::delete_scope(&*store, em, scope_id).await?) },
    )
    .await
}
