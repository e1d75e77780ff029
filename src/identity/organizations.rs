//! Organizations, their members and the members' roles, and the organization template:
//! organization roles and organization scopes.

use super::{
    answer, change_links, create_role_with_scopes, delete_firing, doc, extra, load,
    load_for_update, must_be_free, must_exist, Emitter, LinkChange, RoleKind,
};
use crate::domain::event::HookEvent;
use crate::domain::identity::application::{Application, ApplicationType};
use crate::domain::identity::authz::{
    NamedPatch, Organization, OrganizationPatch, OrganizationRole, OrganizationScope, RoleType,
};
use crate::storage::identity::{
    transact, Doc, IdentityError, IdentityResult, IdentityStore, IdentityTx, Key, Kind, Link,
};
use serde_json::{json, Value};

const ORGANIZATION_ROLE: RoleKind = RoleKind {
    kind: Kind::OrganizationRole,
    scope_kind: Kind::OrganizationScope,
    scopes: Link::OrganizationRoleScopes,
    created: HookEvent::ORGANIZATION_ROLE_CREATED,
    scopes_updated: HookEvent::ORGANIZATION_ROLE_SCOPES_UPDATED,
    id_field: "organizationRoleId",
    name_taken: "organization_role.name_in_use",
    name_what: "organization role name",
    scopes_as_data: false,
};

fn org_doc(o: &Organization) -> IdentityResult<Doc> {
    doc(&o.id, o, vec![], None, o.created_at)
}

fn org_role_doc(r: &OrganizationRole, created_at: i64) -> IdentityResult<Doc> {
    doc(
        &r.id,
        r,
        vec![(Key::Name, Some(r.name.clone()))],
        None,
        created_at,
    )
}

fn org_scope_doc(s: &OrganizationScope, created_at: i64) -> IdentityResult<Doc> {
    doc(
        &s.id,
        s,
        vec![(Key::Name, Some(s.name.clone()))],
        None,
        created_at,
    )
}

/// `POST /organizations` → `Organization.Created`.
pub async fn create(
    store: &dyn IdentityStore,
    em: Emitter,
    org: Organization,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        tx.insert(Kind::Organization, &org_doc(&org)?)?;
        answer(tx, &em, HookEvent::ORGANIZATION_CREATED, &org)
    })
    .await
}

/// `PATCH /organizations/:id` → `Organization.Data.Updated`.
pub async fn update(
    store: &dyn IdentityStore,
    em: Emitter,
    id: String,
    patch: OrganizationPatch,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        let org = patch.apply(load_for_update(tx, Kind::Organization, &id)?);
        tx.update(Kind::Organization, &org_doc(&org)?)?;
        answer(tx, &em, HookEvent::ORGANIZATION_DATA_UPDATED, &org)
    })
    .await
}

/// `DELETE /organizations/:id` → `Organization.Deleted`; memberships go with it.
pub async fn delete(store: &dyn IdentityStore, em: Emitter, id: String) -> IdentityResult<Value> {
    delete_firing(
        store,
        em,
        Kind::Organization,
        id,
        HookEvent::ORGANIZATION_DELETED,
    )
    .await
}

/// What an organization's membership routes manage: its users or its machine-to-machine
/// applications.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Members {
    Users,
    Applications,
}

impl Members {
    fn link(self) -> Link {
        match self {
            Members::Users => Link::OrganizationUsers,
            Members::Applications => Link::OrganizationApplications,
        }
    }

    /// The body field and the event's delta fields.
    fn fields(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Members::Users => ("userIds", "addedUserIds", "removedUserIds"),
            Members::Applications => (
                "applicationIds",
                "addedApplicationIds",
                "removedApplicationIds",
            ),
        }
    }
}

/// The membership routes → `Organization.Membership.Updated` with `organizationId` and the
/// deltas (`addedUserIds`/`removedUserIds` or `addedApplicationIds`/`removedApplicationIds`,
/// each left out when empty). It fires on every successful call, also when nothing changed,
/// as Logto's routes do. Answers `{userIds}` / `{applicationIds}` (the ids the call named).
pub async fn change_members(
    store: &dyn IdentityStore,
    em: Emitter,
    org_id: String,
    members: Members,
    how: LinkChange,
    ids: Vec<String>,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        must_exist(tx, Kind::Organization, std::slice::from_ref(&org_id))?;
        if members == Members::Applications && how != LinkChange::Remove {
            for id in &ids {
                let app: Option<Application> = tx
                    .get(Kind::Application, id)?
                    .and_then(|v| serde_json::from_value(v).ok());
                if app.is_some_and(|a| a.kind != ApplicationType::MachineToMachine) {
                    return Err(IdentityError::Conflict {
                        code: "entity.db_constraint_violated",
                        message: format!(
                            "The application `{id}` is not a machine-to-machine application; only those join organizations."
                        ),
                    });
                }
            }
        }
        let (body_field, added_field, removed_field) = members.fields();
        let missing = match members {
            Members::Users => "organization member",
            Members::Applications => "organization application",
        };
        let (added, removed) = change_links(tx, members.link(), &org_id, how, &ids, missing)?;
        let mut fields = vec![("organizationId", json!(org_id))];
        if !added.is_empty() {
            fields.push((added_field, json!(added)));
        }
        if !removed.is_empty() {
            fields.push((removed_field, json!(removed)));
        }
        tx.emit(&[em.event(
            HookEvent::ORGANIZATION_MEMBERSHIP_UPDATED,
            extra(&fields),
            None,
        )])?;
        // Logto answers adding users with the ids named, and the other calls with no body.
        Ok(if members == Members::Users && how == LinkChange::Add {
            json!({ body_field: ids })
        } else {
            Value::Null
        })
    })
    .await
}

/// The organization roles a member-role body names: its ids, then those of its names (422
/// `organization.role_names_not_found` for a name no role has), deduplicated; each must be a
/// role for users.
fn member_role_ids(
    tx: &mut dyn IdentityTx,
    ids: Vec<String>,
    names: &[String],
) -> IdentityResult<Vec<String>> {
    let mut out = ids;
    let mut missing = Vec::new();
    for name in names {
        match tx.find(Kind::OrganizationRole, Key::Name, name, None)? {
            Some(id) => out.push(id),
            None => missing.push(name.clone()),
        }
    }
    if !missing.is_empty() {
        return Err(IdentityError::Conflict {
            code: "organization.role_names_not_found",
            message: format!("No organization role has the name(s) {missing:?}."),
        });
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|id| seen.insert(id.clone()));
    for role in &out {
        let r: OrganizationRole = load(tx, Kind::OrganizationRole, role)?;
        if r.kind != RoleType::User {
            return Err(IdentityError::Conflict {
                code: "organization.role_type_mismatch",
                message: format!(
                    "The organization role `{role}` is for machine-to-machine apps, not users."
                ),
            });
        }
    }
    Ok(out)
}

/// `POST` (add: answers `{organizationRoleIds}`) or `PUT` (exactly these: no body)
/// `/organizations/:id/users/:userId/roles {organizationRoleIds?, organizationRoleNames?}`
/// (no event, as in Logto). A non-member is 422 `organization.require_membership`.
pub async fn set_member_roles(
    store: &dyn IdentityStore,
    org_id: String,
    user_id: String,
    how: LinkChange,
    (role_ids, role_names): (Vec<String>, Vec<String>),
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        must_be_member(tx, &org_id, &user_id)?;
        let ids = member_role_ids(tx, role_ids.clone(), &role_names)?;
        let link = Link::OrganizationUserRoles;
        if how == LinkChange::Replace {
            for old in tx.linked(link, Some(&org_id), &user_id)? {
                if !ids.contains(&old) {
                    tx.unlink(link, Some(&org_id), &user_id, &old)?;
                }
            }
        }
        for role in &ids {
            tx.link(link, Some(&org_id), &user_id, role)?;
        }
        Ok(match how {
            LinkChange::Add => json!({ "organizationRoleIds": ids }),
            _ => Value::Null,
        })
    })
    .await
}

/// `DELETE /organizations/:id/users/:userId/roles/:organizationRoleId`.
pub async fn remove_member_role(
    store: &dyn IdentityStore,
    org_id: String,
    user_id: String,
    role_id: String,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        must_be_member(tx, &org_id, &user_id)?;
        if !tx.unlink(
            Link::OrganizationUserRoles,
            Some(&org_id),
            &user_id,
            &role_id,
        )? {
            return Err(IdentityError::not_found(Kind::OrganizationRole, &role_id));
        }
        Ok(Value::Null)
    })
    .await
}

fn must_be_member(tx: &mut dyn IdentityTx, org_id: &str, user_id: &str) -> IdentityResult<()> {
    must_exist(tx, Kind::Organization, &[org_id.to_owned()])?;
    if !tx.has_link(Link::OrganizationUsers, None, org_id, user_id)? {
        return Err(IdentityError::Refused {
            status: 422,
            code: "organization.require_membership",
            message: format!(
                "The user `{}` is not a member of the organization.",
                user_id.chars().take(64).collect::<String>()
            ),
        });
    }
    Ok(())
}

/// `POST /organization-roles` → `OrganizationRole.Created` (data = the role), then
/// `OrganizationRole.Scopes.Updated` (with `organizationRoleId`, no data) when
/// `organizationScopeIds` is not empty.
pub async fn create_role(
    store: &dyn IdentityStore,
    em: Emitter,
    role: OrganizationRole,
    scope_ids: Option<Vec<String>>,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        let doc = org_role_doc(&role, em.now_ms())?;
        create_role_with_scopes(
            tx,
            &em,
            &ORGANIZATION_ROLE,
            &role.name,
            (&doc, &role),
            scope_ids.as_deref(),
        )
    })
    .await
}

/// `PATCH /organization-roles/:id` → `OrganizationRole.Data.Updated`.
pub async fn update_role(
    store: &dyn IdentityStore,
    em: Emitter,
    id: String,
    patch: NamedPatch,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        let mut role: OrganizationRole = load_for_update(tx, Kind::OrganizationRole, &id)?;
        patch.apply_to(&mut role.name, &mut role.description);
        must_be_free(
            tx,
            Kind::OrganizationRole,
            Key::Name,
            Some(&role.name),
            None,
            Some(&id),
            "organization_role.name_in_use",
            "organization role name",
        )?;
        tx.update(Kind::OrganizationRole, &org_role_doc(&role, 0)?)?;
        answer(tx, &em, HookEvent::ORGANIZATION_ROLE_DATA_UPDATED, &role)
    })
    .await
}

/// The organization role scope routes → `OrganizationRole.Scopes.Updated` (the route's own
/// payload: no `organizationRoleId`).
pub async fn change_role_scopes(
    store: &dyn IdentityStore,
    em: Emitter,
    role_id: String,
    how: LinkChange,
    scope_ids: Vec<String>,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        must_exist(tx, Kind::OrganizationRole, std::slice::from_ref(&role_id))?;
        change_links(
            tx,
            Link::OrganizationRoleScopes,
            &role_id,
            how,
            &scope_ids,
            Kind::OrganizationScope.entity(),
        )?;
        // The route's own payload: the role is `params.id`, no `organizationRoleId` key.
        tx.emit(&[em.event(
            HookEvent::ORGANIZATION_ROLE_SCOPES_UPDATED,
            serde_json::Map::new(),
            None,
        )])?;
        Ok(Value::Null)
    })
    .await
}

/// `DELETE /organization-roles/:id` → `OrganizationRole.Deleted`.
pub async fn delete_role(
    store: &dyn IdentityStore,
    em: Emitter,
    id: String,
) -> IdentityResult<Value> {
    delete_firing(
        store,
        em,
        Kind::OrganizationRole,
        id,
        HookEvent::ORGANIZATION_ROLE_DELETED,
    )
    .await
}

/// `POST /organization-scopes` → `OrganizationScope.Created`.
pub async fn create_scope(
    store: &dyn IdentityStore,
    em: Emitter,
    scope: OrganizationScope,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        must_be_free(
            tx,
            Kind::OrganizationScope,
            Key::Name,
            Some(&scope.name),
            None,
            None,
            "organization_scope.name_in_use",
            "organization scope name",
        )?;
        tx.insert(
            Kind::OrganizationScope,
            &org_scope_doc(&scope, em.now_ms())?,
        )?;
        answer(tx, &em, HookEvent::ORGANIZATION_SCOPE_CREATED, &scope)
    })
    .await
}

/// `PATCH /organization-scopes/:id` → `OrganizationScope.Data.Updated`.
pub async fn update_scope(
    store: &dyn IdentityStore,
    em: Emitter,
    id: String,
    patch: NamedPatch,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        let mut scope: OrganizationScope = load_for_update(tx, Kind::OrganizationScope, &id)?;
        patch.apply_to(&mut scope.name, &mut scope.description);
        must_be_free(
            tx,
            Kind::OrganizationScope,
            Key::Name,
            Some(&scope.name),
            None,
            Some(&id),
            "organization_scope.name_in_use",
            "organization scope name",
        )?;
        tx.update(Kind::OrganizationScope, &org_scope_doc(&scope, 0)?)?;
        answer(tx, &em, HookEvent::ORGANIZATION_SCOPE_DATA_UPDATED, &scope)
    })
    .await
}

/// `DELETE /organization-scopes/:id` → `OrganizationScope.Deleted`.
pub async fn delete_scope(
    store: &dyn IdentityStore,
    em: Emitter,
    id: String,
) -> IdentityResult<Value> {
    delete_firing(
        store,
        em,
        Kind::OrganizationScope,
        id,
        HookEvent::ORGANIZATION_SCOPE_DELETED,
    )
    .await
}
