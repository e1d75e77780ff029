//! `/api/organization-invitations…`: invitations to an organization. hookline has no mailer:
//! the answer holds the invitation's id, and the application delivers the link.

use super::{id, run, ApiResult, Call};
use crate::clock::now_ms;
use crate::domain::id::new_id;
use crate::domain::identity::invitation::{Invitation, NewInvitationInput, StatusInput};
use crate::domain::identity::user::email_key;
use crate::identity::invitations;
use crate::routes::error::ApiError;
use crate::routes::extract::{ApiJson, ApiPath, QueryMap};
use crate::routes::AppState;
use crate::storage::identity::{DocQuery, IdentityError, Kind};
use crate::storage::StoreError;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use serde_json::Value;

/// A stored invitation as it stands now (a pending one past its expiry reads `Expired`).
fn current(doc: Value, now: i64) -> Result<Invitation, ApiError> {
    serde_json::from_value::<Invitation>(doc)
        .map(|inv| inv.as_of(now))
        .map_err(|e| StoreError::Corrupt(format!("an invitation: {e}")).into())
}

/// `GET /organization-invitations?organizationId=&inviterId=&invitee=`: newest first, each
/// filter exact (the invitee regardless of case).
pub async fn list_invitations(State(state): State<AppState>, q: QueryMap) -> ApiResult {
    let organization = q.0.get("organizationId").filter(|s| !s.is_empty()).cloned();
    let inviter = q.0.get("inviterId").filter(|s| !s.is_empty());
    let invitee =
        q.0.get("invitee")
            .filter(|s| !s.is_empty())
            .map(|s| email_key(s));
    let query = DocQuery {
        parent: organization,
        ..DocQuery::default()
    };
    let (docs, _) = state
        .store
        .list_docs(Kind::OrganizationInvitation, &query)
        .await?;
    let now = now_ms();
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let inv = current(doc, now)?;
        if inviter.is_some_and(|i| inv.inviter_id.as_ref() != Some(i))
            || invitee
                .as_ref()
                .is_some_and(|i| email_key(&inv.invitee) != *i)
        {
            continue;
        }
        out.push(inv);
    }
    Ok(Json(out).into_response())
}

pub async fn get_invitation(
    State(state): State<AppState>,
    ApiPath(invitation_id): ApiPath<String>,
) -> ApiResult {
    let kind = Kind::OrganizationInvitation;
    let invitation_id = id(kind, &invitation_id)?;
    let doc = state
        .store
        .get_doc(kind, &invitation_id)
        .await?
        .ok_or_else(|| ApiError::from(IdentityError::not_found(kind, &invitation_id)))?;
    Ok(Json(current(doc, now_ms())?).into_response())
}

/// `POST /organization-invitations` → 201 with the invitation.
pub async fn create_invitation(
    State(state): State<AppState>,
    Call(call): Call,
    ApiJson(input): ApiJson<NewInvitationInput>,
) -> ApiResult {
    run(&state, call, StatusCode::CREATED, |em, store| async move {
        let (invitation, roles) = input.parse(new_id(), em.now_ms())?;
        Ok(invitations::create(&*store, invitation, roles).await?)
    })
    .await
}

/// `PUT /organization-invitations/:id/status` → 200 with the invitation; accepting fires
/// `Organization.Membership.Updated`.
pub async fn set_invitation_status(
    State(state): State<AppState>,
    ApiPath(invitation_id): ApiPath<String>,
    Call(call): Call,
    ApiJson(input): ApiJson<StatusInput>,
) -> ApiResult {
    let invitation_id = id(Kind::OrganizationInvitation, &invitation_id)?;
    // Logto answers a missing `acceptedUserId` with 422 `request.invalid_input`.
    let change = input
        .parse()
        .map_err(|e| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, e.code, e.message))?;
    run(&state, call, StatusCode::OK, |em, store| async move {
        Ok(invitations::set_status(&*store, em, invitation_id, change).await?)
    })
    .await
}

pub async fn delete_invitation(
    State(state): State<AppState>,
    ApiPath(invitation_id): ApiPath<String>,
    Call(call): Call,
) -> ApiResult {
    let invitation_id = id(Kind::OrganizationInvitation, &invitation_id)?;
    run(
        &state,
        call,
        StatusCode::NO_CONTENT,
        |_, store| async move { Ok(invitations::delete(&*store, invitation_id).await?) },
    )
    .await
}
