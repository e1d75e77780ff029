//! Organization invitations: created pending (one per invitee and organization), revoked, or
//! accepted, which adds the member with the invitation's organization roles and fires
//! `Organization.Membership.Updated` (with the new member in `addedUserIds`, or with
//! `organizationId` only when the user was a member already, as Logto fires it).

use super::{doc, extra, load, must_exist, to_json, Emitter};
use crate::domain::event::HookEvent;
use crate::domain::identity::authz::OrganizationRole;
use crate::domain::identity::invitation::{Invitation, InvitationStatus, RoleRef, StatusChange};
use crate::domain::identity::user::{email_key, User};
use crate::storage::identity::{
    transact, Doc, IdentityError, IdentityResult, IdentityStore, IdentityTx, Key, Kind, Link,
};
use serde_json::{json, Value};

fn invitation_doc(inv: &Invitation) -> IdentityResult<Doc> {
    doc(
        &inv.id,
        inv,
        vec![(Key::PendingInvitee, inv.pending_key())],
        Some(inv.organization_id.clone()),
        inv.created_at,
    )
}

/// Logto's answer for a request it refuses on its merits (`request.invalid_input`, 422).
fn invalid(details: &str) -> IdentityError {
    IdentityError::Refused {
        status: 422,
        code: "request.invalid_input",
        message: details.to_owned(),
    }
}

/// `POST /organization-invitations` → 201 with the invitation. The organization, the inviter
/// and the roles must exist; an invitee who is a member already, or who has a pending
/// invitation to the organization, is refused (422). A pending invitation past its expiry is
/// marked `Expired` first, so it does not block a new one.
pub async fn create(
    store: &dyn IdentityStore,
    mut inv: Invitation,
    role_ids: Vec<String>,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        let org = inv.organization_id.clone();
        must_exist(tx, Kind::Organization, std::slice::from_ref(&org))?;
        if let Some(inviter) = &inv.inviter_id {
            must_exist(tx, Kind::User, std::slice::from_ref(inviter))?;
        }
        let invitee = email_key(&inv.invitee);
        if let Some(user) = tx.find(Kind::User, Key::Email, &invitee, None)? {
            if tx.has_link(Link::OrganizationUsers, None, &org, &user)? {
                return Err(invalid(
                    "The invitee is already a member of the organization.",
                ));
            }
        }
        if let Some(open) = tx.find(
            Kind::OrganizationInvitation,
            Key::PendingInvitee,
            &invitee,
            Some(&org),
        )? {
            let old: Invitation = load(tx, Kind::OrganizationInvitation, &open)?;
            let old = old.as_of(inv.created_at);
            if old.status == InvitationStatus::Pending {
                return Err(IdentityError::Conflict {
                    code: "entity.unique_integrity_violation",
                    message: "The invitee has a pending invitation to this organization already."
                        .into(),
                });
            }
            tx.update(Kind::OrganizationInvitation, &invitation_doc(&old)?)?;
        }
        inv.organization_roles = role_ids
            .iter()
            .map(|id| {
                let role: OrganizationRole = load(tx, Kind::OrganizationRole, id)?;
                Ok(RoleRef {
                    id: role.id,
                    name: role.name,
                })
            })
            .collect::<IdentityResult<_>>()?;
        tx.insert(Kind::OrganizationInvitation, &invitation_doc(&inv)?)?;
        to_json(&inv)
    })
    .await
}

/// `PUT /organization-invitations/:id/status` → 200 with the invitation. Only a pending one
/// changes (422 otherwise). Accepting needs a user whose primary email is the invitee's; it
/// adds them to the organization with the invitation's roles and fires
/// `Organization.Membership.Updated`.
pub async fn set_status(
    store: &dyn IdentityStore,
    em: Emitter,
    id: String,
    change: StatusChange,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        let now = em.now_ms();
        let inv: Invitation = load(tx, Kind::OrganizationInvitation, &id)?;
        let mut inv = inv.as_of(now);
        if inv.status != InvitationStatus::Pending {
            return Err(invalid(
                "The status of the invitation cannot be changed anymore.",
            ));
        }
        inv.updated_at = now;
        match &change {
            StatusChange::Revoke => inv.status = InvitationStatus::Revoked,
            StatusChange::Accept { user_id } => {
                accept(tx, &em, &inv, user_id)?;
                inv.status = InvitationStatus::Accepted;
                inv.accepted_user_id = Some(user_id.clone());
            }
        }
        tx.update(Kind::OrganizationInvitation, &invitation_doc(&inv)?)?;
        to_json(&inv)
    })
    .await
}

fn accept(
    tx: &mut dyn IdentityTx,
    em: &Emitter,
    inv: &Invitation,
    user_id: &str,
) -> IdentityResult<()> {
    let user: User = load(tx, Kind::User, user_id)?;
    if user.primary_email.as_deref().map(email_key) != Some(email_key(&inv.invitee)) {
        return Err(invalid(
            "The accepted user must have the same email as the invitee.",
        ));
    }
    let org = &inv.organization_id;
    let added = tx.link(Link::OrganizationUsers, None, org, user_id)?;
    for role in &inv.organization_roles {
        // A role deleted since the invitation was made is skipped.
        if tx.get(Kind::OrganizationRole, &role.id)?.is_some() {
            tx.link(Link::OrganizationUserRoles, Some(org), user_id, &role.id)?;
        }
    }
    let mut fields = vec![("organizationId", json!(org))];
    if added {
        fields.push(("addedUserIds", json!([user_id])));
    }
    tx.emit(&[em.event(
        HookEvent::ORGANIZATION_MEMBERSHIP_UPDATED,
        extra(&fields),
        None,
    )])?;
    Ok(())
}

/// `DELETE /organization-invitations/:id` → 204.
pub async fn delete(store: &dyn IdentityStore, id: String) -> IdentityResult<Value> {
    transact(store, move |tx| {
        if !tx.delete(Kind::OrganizationInvitation, &id)? {
            return Err(super::missing(
                "entity.not_found",
                Kind::OrganizationInvitation,
                &id,
            ));
        }
        Ok(Value::Null)
    })
    .await
}
