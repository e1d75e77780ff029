//! Organization invitations (Logto's `organization_invitations`, RFC 0003): an invitee's email,
//! the organization and the organization roles they will get, a status, an expiry. hookline
//! has no mailer: creating an invitation answers its id, and the application delivers the link;
//! accepting it (`PUT …/status`) adds the member with the invitation's roles.

use super::user::{check_email, email_key};
use super::{check_ids, InputError, InputResult};
use crate::domain::hook::TENANT_ID;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Logto's `OrganizationInvitationStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InvitationStatus {
    Pending,
    Accepted,
    Expired,
    Revoked,
}

/// An organization role as an invitation names it (Logto's `OrganizationRoleEntity`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoleRef {
    pub id: String,
    pub name: String,
}

/// An invitation, with Logto's fields in Logto's order (`organizationInvitationEntityGuard`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Invitation {
    pub tenant_id: String,
    pub id: String,
    pub inviter_id: Option<String>,
    pub invitee: String,
    pub accepted_user_id: Option<String>,
    pub organization_id: String,
    pub status: InvitationStatus,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: i64,
    pub organization_roles: Vec<RoleRef>,
}

impl Invitation {
    /// The invitation as it stands at `now`: a pending one past its expiry is `Expired` (as
    /// Logto's `findEntities` reports it, whatever the stored row says).
    pub fn as_of(mut self, now: i64) -> Self {
        if self.status == InvitationStatus::Pending && self.expires_at <= now {
            self.status = InvitationStatus::Expired;
        }
        self
    }

    /// The key that keeps one pending invitation per invitee and organization: the invitee's
    /// email, lowercased, while the invitation is pending; none otherwise.
    pub fn pending_key(&self) -> Option<String> {
        (self.status == InvitationStatus::Pending).then(|| email_key(&self.invitee))
    }
}

/// `POST /api/organization-invitations`. `messagePayload` is Logto's request to email the
/// invitee; hookline has no mailer, so anything but `false` is refused rather than ignored.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewInvitationInput {
    pub inviter_id: Option<String>,
    pub invitee: String,
    pub organization_id: String,
    /// Epoch milliseconds; must be in the future.
    pub expires_at: i64,
    pub organization_role_ids: Option<Vec<String>>,
    pub message_payload: Option<Value>,
}

impl NewInvitationInput {
    /// The new pending invitation (roles still to be named) and the role ids it gives.
    pub fn parse(self, id: String, now: i64) -> InputResult<(Invitation, Vec<String>)> {
        check_email(Some(&self.invitee))
            .map_err(|_| InputError::new("`invitee` must be an email address"))?;
        if self.expires_at <= now {
            return Err(InputError::with_code(
                "request.invalid_input",
                "The value of `expiresAt` must be in the future.",
            ));
        }
        if !matches!(self.message_payload, None | Some(Value::Bool(false))) {
            return Err(InputError::new(
                "`messagePayload`: hookline sends no email; create the invitation without it and \
                 deliver the link yourself",
            ));
        }
        let roles = check_ids(
            "organizationRoleIds",
            self.organization_role_ids.unwrap_or_default(),
        )?;
        if let Some(inviter) = &self.inviter_id {
            check_ids("inviterId", vec![inviter.clone()])?;
        }
        check_ids("organizationId", vec![self.organization_id.clone()])?;
        Ok((
            Invitation {
                tenant_id: TENANT_ID.into(),
                id,
                inviter_id: self.inviter_id,
                invitee: super::user::nfc(&self.invitee),
                accepted_user_id: None,
                organization_id: self.organization_id,
                status: InvitationStatus::Pending,
                created_at: now,
                updated_at: now,
                expires_at: self.expires_at,
                organization_roles: Vec::new(),
            },
            roles,
        ))
    }
}

/// `PUT /api/organization-invitations/:id/status`: `Accepted` (with the user who accepts) or
/// `Revoked`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusInput {
    pub status: InvitationStatus,
    pub accepted_user_id: Option<String>,
}

/// What a status change asks for, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusChange {
    Accept { user_id: String },
    Revoke,
}

impl StatusInput {
    pub fn parse(self) -> InputResult<StatusChange> {
        match (self.status, self.accepted_user_id) {
            (InvitationStatus::Accepted, Some(user_id)) => Ok(StatusChange::Accept { user_id }),
            (InvitationStatus::Accepted, None) => Err(InputError::with_code(
                "request.invalid_input",
                "The `acceptedUserId` is required when accepting an invitation.",
            )),
            (InvitationStatus::Revoked, _) => Ok(StatusChange::Revoke),
            _ => Err(InputError::new(
                "`status` must be \"Accepted\" or \"Revoked\"",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn input(v: Value) -> NewInvitationInput {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn invitations_expire_as_they_are_read() {
        let (inv, roles) = input(json!({"invitee": "A@b.co", "organizationId": "o1", "expiresAt": 100, "organizationRoleIds": ["r1", "r1"]}))
            .parse("i1".into(), 10)
            .unwrap();
        assert_eq!(roles, ["r1"]);
        assert_eq!(inv.pending_key().as_deref(), Some("a@b.co"));
        assert_eq!(inv.clone().as_of(99).status, InvitationStatus::Pending);
        let expired = inv.as_of(100);
        assert_eq!(expired.status, InvitationStatus::Expired);
        assert_eq!(expired.pending_key(), None);
        let keys: Vec<String> = serde_json::to_value(&expired)
            .unwrap()
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect();
        assert_eq!(
            keys,
            [
                "tenantId",
                "id",
                "inviterId",
                "invitee",
                "acceptedUserId",
                "organizationId",
                "status",
                "createdAt",
                "updatedAt",
                "expiresAt",
                "organizationRoles"
            ]
        );
    }

    #[test]
    fn bodies_are_checked() {
        let past = input(json!({"invitee": "a@b.co", "organizationId": "o1", "expiresAt": 5}));
        assert!(past.parse("i".into(), 10).is_err());
        let mail = input(
            json!({"invitee": "a@b.co", "organizationId": "o1", "expiresAt": 50, "messagePayload": {"link": "x"}}),
        );
        assert!(mail.parse("i".into(), 10).is_err());
        let no_mail = input(
            json!({"invitee": "a@b.co", "organizationId": "o1", "expiresAt": 50, "messagePayload": false}),
        );
        assert!(no_mail.parse("i".into(), 10).is_ok());
        let bad = input(json!({"invitee": "nope", "organizationId": "o1", "expiresAt": 50}));
        assert!(bad.parse("i".into(), 10).is_err());
        let accept: StatusInput = serde_json::from_value(json!({"status": "Accepted"})).unwrap();
        assert!(accept.parse().is_err());
        let pending: StatusInput = serde_json::from_value(json!({"status": "Pending"})).unwrap();
        assert!(pending.parse().is_err());
    }
}
