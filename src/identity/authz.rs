//! API resources, their scopes, and roles. Resources fire no events (Logto has none for
//! them); scopes and roles fire theirs.

use super::{
    answer, create_role_with_scopes, delete_firing, doc, load, must_be_free, must_exist, to_json,
    Emitter, RoleKind,
};
use crate::domain::event::HookEvent;
use crate::domain::identity::authz::{NamedPatch, Resource, ResourcePatch, Role, RolePatch, Scope};
use crate::storage::identity::{
    transact, Doc, IdentityError, IdentityResult, IdentityStore, IdentityTx, Key, Kind, Link,
};
use serde_json::{Map, Value};

const ROLE: RoleKind = RoleKind {
    kind: Kind::Role,
    scope_kind: Kind::Scope,
    scopes: Link::RoleScopes,
    created: HookEvent::ROLE_CREATED,
    scopes_updated: HookEvent::ROLE_SCOPES_UPDATED,
    id_field: "roleId",
    name_taken: "role.name_in_use",
    name_what: "role name",
    scopes_as_data: true,
};

fn resource_doc(r: &Resource, created_at: i64) -> IdentityResult<Doc> {
    doc(
        &r.id,
        r,
        vec![(Key::Indicator, Some(r.indicator.clone()))],
        None,
        created_at,
    )
}

fn scope_doc(s: &Scope) -> IdentityResult<Doc> {
    doc(
        &s.id,
        s,
        vec![(Key::Name, Some(s.name.clone()))],
        Some(s.resource_id.clone()),
        s.created_at,
    )
}

fn role_doc(r: &Role, created_at: i64) -> IdentityResult<Doc> {
    doc(
        &r.id,
        r,
        vec![(Key::Name, Some(r.name.clone()))],
        None,
        created_at,
    )
}

/// `POST /resources`.
pub async fn create_resource(
    store: &dyn IdentityStore,
    r: Resource,
    now: i64,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        must_be_free(
            tx,
            Kind::Resource,
            Key::Indicator,
            Some(&r.indicator),
            None,
            None,
            "resource.resource_identifier_in_use",
            "resource indicator",
        )?;
        tx.insert(Kind::Resource, &resource_doc(&r, now)?)?;
        // Logto answers a new resource with its (empty) scopes.
        let mut answer = to_json(&r)?;
        if let Some(obj) = answer.as_object_mut() {
            obj.insert("scopes".into(), Value::Array(Vec::new()));
        }
        Ok(answer)
    })
    .await
}

/// `PATCH /resources/:id`.
pub async fn update_resource(
    store: &dyn IdentityStore,
    id: String,
    patch: ResourcePatch,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        let current: Resource = load(tx, Kind::Resource, &id)?;
        let r = patch.apply(current).map_err(IdentityError::Input)?;
        tx.update(Kind::Resource, &resource_doc(&r, 0)?)?;
        to_json(&r)
    })
    .await
}

/// `DELETE /resources/:id`: its scopes go with it (and with them their place in roles).
pub async fn delete_resource(store: &dyn IdentityStore, id: String) -> IdentityResult<Value> {
    transact(store, move |tx| {
        if !tx.delete(Kind::Resource, &id)? {
            return Err(IdentityError::not_found(Kind::Resource, &id));
        }
        Ok(Value::Null)
    })
    .await
}

/// `POST /resources/:resourceId/scopes` → `Scope.Created`, data = the scope.
pub async fn create_scope(
    store: &dyn IdentityStore,
    em: Emitter,
    scope: Scope,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        must_exist(tx, Kind::Resource, std::slice::from_ref(&scope.resource_id))?;
        must_be_free(
            tx,
            Kind::Scope,
            Key::Name,
            Some(&scope.name),
            Some(&scope.resource_id),
            None,
            "scope.name_exists",
            "scope name",
        )?;
        tx.insert(Kind::Scope, &scope_doc(&scope)?)?;
        answer(tx, &em, HookEvent::SCOPE_CREATED, &scope)
    })
    .await
}

/// The scope `scope_id` of `resource_id`, or a 404.
fn load_scope(tx: &mut dyn IdentityTx, resource_id: &str, scope_id: &str) -> IdentityResult<Scope> {
    must_exist(tx, Kind::Resource, &[resource_id.to_owned()])?;
    let scope: Scope = load(tx, Kind::Scope, scope_id)?;
    if scope.resource_id != resource_id {
        return Err(IdentityError::not_found(Kind::Scope, scope_id));
    }
    Ok(scope)
}

/// `PATCH /resources/:resourceId/scopes/:scopeId` → `Scope.Data.Updated`.
pub async fn update_scope(
    store: &dyn IdentityStore,
    em: Emitter,
    resource_id: String,
    scope_id: String,
    patch: NamedPatch,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        let mut scope = load_scope(tx, &resource_id, &scope_id)?;
        patch.apply_to(&mut scope.name, &mut scope.description);
        must_be_free(
            tx,
            Kind::Scope,
            Key::Name,
            Some(&scope.name),
            Some(&resource_id),
            Some(&scope.id),
            "scope.name_exists",
            "scope name",
        )?;
        tx.update(Kind::Scope, &scope_doc(&scope)?)?;
        answer(tx, &em, HookEvent::SCOPE_DATA_UPDATED, &scope)
    })
    .await
}

/// `DELETE /resources/:resourceId/scopes/:scopeId` → `Scope.Deleted` (no body, so no data).
pub async fn delete_scope(
    store: &dyn IdentityStore,
    em: Emitter,
    resource_id: String,
    scope_id: String,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        load_scope(tx, &resource_id, &scope_id)?;
        tx.delete(Kind::Scope, &scope_id)?;
        tx.emit(&[em.event(HookEvent::SCOPE_DELETED, Map::new(), None)])?;
        Ok(Value::Null)
    })
    .await
}

/// The scopes a role has, as objects.
fn role_scopes(tx: &mut dyn IdentityTx, role_id: &str) -> IdentityResult<Value> {
    let ids = tx.linked(Link::RoleScopes, None, role_id)?;
    let mut scopes = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(s) = tx.get(Kind::Scope, &id)? {
            scopes.push(s);
        }
    }
    Ok(Value::Array(scopes))
}

/// `POST /roles` → `Role.Created` (data = the role), then `Role.Scopes.Updated` (with
/// `roleId`, data = the Scope objects assigned) when `scopeIds` were given, even `[]`.
pub async fn create_role(
    store: &dyn IdentityStore,
    em: Emitter,
    role: Role,
    scope_ids: Option<Vec<String>>,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        let doc = role_doc(&role, em.now_ms())?;
        create_role_with_scopes(
            tx,
            &em,
            &ROLE,
            &role.name,
            (&doc, &role),
            scope_ids.as_deref(),
        )
    })
    .await
}

/// `PATCH /roles/:id` → `Role.Data.Updated`.
pub async fn update_role(
    store: &dyn IdentityStore,
    em: Emitter,
    id: String,
    patch: RolePatch,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        let role = patch.apply(load(tx, Kind::Role, &id)?);
        must_be_free(
            tx,
            Kind::Role,
            Key::Name,
            Some(&role.name),
            None,
            Some(&id),
            "role.name_in_use",
            "role name",
        )?;
        tx.update(Kind::Role, &role_doc(&role, 0)?)?;
        answer(tx, &em, HookEvent::ROLE_DATA_UPDATED, &role)
    })
    .await
}

/// `DELETE /roles/:id` → `Role.Deleted`; its scope links and assignments go with it.
pub async fn delete_role(
    store: &dyn IdentityStore,
    em: Emitter,
    id: String,
) -> IdentityResult<Value> {
    delete_firing(store, em, Kind::Role, id, HookEvent::ROLE_DELETED).await
}

/// `POST /roles/:id/scopes {scopeIds}` → `Role.Scopes.Updated` (the route's payload, no
/// `roleId`), data = the role's scopes now. A scope the role has already is a 422.
pub async fn add_role_scopes(
    store: &dyn IdentityStore,
    em: Emitter,
    role_id: String,
    scope_ids: Vec<String>,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        must_exist(tx, Kind::Role, std::slice::from_ref(&role_id))?;
        must_exist(tx, Kind::Scope, &scope_ids)?;
        for id in &scope_ids {
            if !tx.link(Link::RoleScopes, None, &role_id, id)? {
                return Err(IdentityError::Conflict {
                    code: "role.scope_exists",
                    message: format!("The role already has the scope `{id}`."),
                });
            }
        }
        let data = role_scopes(tx, &role_id)?;
        // The route's own payload: the role is `params.id`, no `roleId` key.
        tx.emit(&[em.event(
            HookEvent::ROLE_SCOPES_UPDATED,
            Map::new(),
            Some(data.clone()),
        )])?;
        Ok(data)
    })
    .await
}

/// `DELETE /roles/:id/scopes/:scopeId` → `Role.Scopes.Updated` (no `roleId`, no data).
pub async fn remove_role_scope(
    store: &dyn IdentityStore,
    em: Emitter,
    role_id: String,
    scope_id: String,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        must_exist(tx, Kind::Role, std::slice::from_ref(&role_id))?;
        if !tx.unlink(Link::RoleScopes, None, &role_id, &scope_id)? {
            return Err(IdentityError::not_found(Kind::Scope, &scope_id));
        }
        tx.emit(&[em.event(HookEvent::ROLE_SCOPES_UPDATED, Map::new(), None)])?;
        Ok(Value::Null)
    })
    .await
}
