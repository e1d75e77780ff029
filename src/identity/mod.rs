//! The identity core's operations: what each Management API change checks, writes and
//! emits. Each runs as one transaction of the store ([`IdentityStore::transact`]), so a row
//! change and the data events it causes commit together, and a refused or failed change
//! emits nothing. The operations are written once, against the store's primitives
//! ([`IdentityTx`]); the routes only parse requests and shape answers.

pub mod actions;
pub mod applications;
pub mod authz;
pub mod interactions;
pub mod invitations;
pub mod organizations;
pub mod passwords;
pub mod users;

use crate::domain::event::HookEvent;
use crate::domain::id::new_id;
use crate::domain::payload::{api_event_payload, ApiCall, DataAt};
use crate::storage::identity::{
    transact, Doc, IdentityError, IdentityResult, IdentityStore, IdentityTx, Key, Kind, Link,
};
use crate::storage::{NewEvent, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{Map, Value};

/// Builds the data events of one API call: the call, its status and its time are the same for
/// every event it fires.
#[derive(Debug, Clone)]
pub struct Emitter {
    call: ApiCall,
    status: u16,
    created_at: String,
    now_ms: i64,
}

impl Emitter {
    pub fn new(call: ApiCall, status: u16) -> Self {
        let (created_at, now_ms) = crate::clock::now_stamp();
        Self {
            call,
            status,
            created_at,
            now_ms,
        }
    }

    /// The time of the call, in epoch milliseconds (for `createdAt`/`updatedAt` fields).
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    /// A data event of this call: the route fields, then `extra`, then `data`.
    pub fn event(
        &self,
        event: HookEvent,
        extra: Map<String, Value>,
        data: Option<Value>,
    ) -> NewEvent {
        self.build(event, extra, data, DataAt::End)
    }

    /// `User.Deleted`, whose `data` (the user as it was) comes right after `ip`.
    pub fn deleted(&self, event: HookEvent, data: Value) -> NewEvent {
        self.build(event, Map::new(), Some(data), DataAt::AfterIp)
    }

    fn build(
        &self,
        event: HookEvent,
        extra: Map<String, Value>,
        data: Option<Value>,
        at: DataAt,
    ) -> NewEvent {
        NewEvent {
            id: new_id(),
            event,
            payload: api_event_payload(
                event,
                &self.call,
                self.status,
                extra,
                data,
                at,
                &self.created_at,
            ),
            created_at: self.now_ms,
        }
    }
}

/// A document of `obj` for the store.
pub(crate) fn doc<T: Serialize>(
    id: &str,
    obj: &T,
    keys: Vec<(Key, Option<String>)>,
    parent: Option<String>,
    created_at: i64,
) -> IdentityResult<Doc> {
    Ok(Doc {
        id: id.to_owned(),
        json: to_json(obj)?.to_string(),
        keys,
        parent,
        created_at,
    })
}

pub(crate) fn to_json<T: Serialize>(obj: &T) -> IdentityResult<Value> {
    serde_json::to_value(obj)
        .map_err(|e| IdentityError::Store(StoreError::Corrupt(format!("serializing: {e}"))))
}

/// The document `id` of `kind`, or a 404.
pub(crate) fn load<T: DeserializeOwned>(
    tx: &mut dyn IdentityTx,
    kind: Kind,
    id: &str,
) -> IdentityResult<T> {
    let v = tx
        .get(kind, id)?
        .ok_or_else(|| IdentityError::not_found(kind, id))?;
    serde_json::from_value(v).map_err(|e| {
        IdentityError::Store(StoreError::Corrupt(format!(
            "a stored {}: {e}",
            kind.entity()
        )))
    })
}

/// A 404 with Logto's `code` for the route: `entity.not_found` where Logto deletes a row or a
/// link that is not there, `entity.not_exists` where it updates one (its `DeletionError` and
/// `UpdateError`); lookups by id answer `entity.not_exists_with_id` ([`IdentityError::not_found`]).
pub(crate) fn missing(code: &'static str, kind: Kind, id: &str) -> IdentityError {
    IdentityError::Refused {
        status: 404,
        code,
        message: format!(
            "The {} with ID `{}` does not exist.",
            kind.entity(),
            id.chars().take(64).collect::<String>()
        ),
    }
}

/// The document `id` of `kind` that a `PATCH` changes, or Logto's 404 for an update of a row
/// that is not there (`entity.not_exists`, for the kinds Logto's `SchemaRouter` serves).
pub(crate) fn load_for_update<T: DeserializeOwned>(
    tx: &mut dyn IdentityTx,
    kind: Kind,
    id: &str,
) -> IdentityResult<T> {
    match load(tx, kind, id) {
        Err(IdentityError::NotFound { .. }) => Err(missing("entity.not_exists", kind, id)),
        other => other,
    }
}

/// Every id exists as a document of `kind`, or a 404 naming the first that does not.
pub(crate) fn must_exist(
    tx: &mut dyn IdentityTx,
    kind: Kind,
    ids: &[String],
) -> IdentityResult<()> {
    for id in ids {
        if tx.get(kind, id)?.is_none() {
            return Err(IdentityError::not_found(kind, id));
        }
    }
    Ok(())
}

/// A 422 unless `value` is free as `key` of `kind` (within `parent`), or held by `except`.
// Eight plain arguments read better at the call sites than a struct built for one call.
#[allow(clippy::too_many_arguments)]
pub(crate) fn must_be_free(
    tx: &mut dyn IdentityTx,
    kind: Kind,
    key: Key,
    value: Option<&str>,
    parent: Option<&str>,
    except: Option<&str>,
    code: &'static str,
    what: &str,
) -> IdentityResult<()> {
    let Some(value) = value else { return Ok(()) };
    match tx.find(kind, key, value, parent)? {
        Some(holder) if Some(holder.as_str()) != except => Err(IdentityError::Conflict {
            code,
            message: format!("The {what} is already in use."),
        }),
        _ => Ok(()),
    }
}

/// `{"<name>": <value>}`, for an event's extra fields.
pub(crate) fn extra(pairs: &[(&str, Value)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Fires `event` with `obj` as its data, and answers with `obj`: the end of most changes.
pub(crate) fn answer<T: Serialize>(
    tx: &mut dyn IdentityTx,
    em: &Emitter,
    event: HookEvent,
    obj: &T,
) -> IdentityResult<Value> {
    let data = to_json(obj)?;
    tx.emit(&[em.event(event, Map::new(), Some(data.clone()))])?;
    Ok(data)
}

/// `DELETE` of a document that fires `event` (no data: the answer is a 204); its links go
/// with it.
pub(crate) async fn delete_firing(
    store: &dyn IdentityStore,
    em: Emitter,
    kind: Kind,
    id: String,
    event: HookEvent,
) -> IdentityResult<Value> {
    transact(store, move |tx| {
        if !tx.delete(kind, &id)? {
            // Logto's `SchemaRouter` deletes without a lookup first: its `DeletionError`.
            return Err(match kind {
                Kind::Organization | Kind::OrganizationRole | Kind::OrganizationScope => {
                    missing("entity.not_found", kind, &id)
                }
                _ => IdentityError::not_found(kind, &id),
            });
        }
        tx.emit(&[em.event(event, Map::new(), None)])?;
        Ok(Value::Null)
    })
    .await
}

/// What differs between a role and an organization role when one is created with scopes.
pub(crate) struct RoleKind {
    pub kind: Kind,
    pub scope_kind: Kind,
    pub scopes: Link,
    pub created: HookEvent,
    pub scopes_updated: HookEvent,
    /// The role's id field in the scopes event (`roleId`, `organizationRoleId`).
    pub id_field: &'static str,
    /// Whether the scopes event of a creation carries the assigned scopes as `data` and fires
    /// for an empty list too (roles), or carries no data and fires only for a non-empty one
    /// (organization roles), as Logto's two routes do.
    pub scopes_as_data: bool,
    pub name_taken: &'static str,
    pub name_what: &'static str,
}

/// Creates a role (`doc` of `obj`) with its first scopes: `created` with the role as data,
/// then `scopes_updated` naming the role when `scope_ids` were given, as Logto fires them.
pub(crate) fn create_role_with_scopes<T: Serialize>(
    tx: &mut dyn IdentityTx,
    em: &Emitter,
    rk: &RoleKind,
    name: &str,
    role: (&Doc, &T),
    scope_ids: Option<&[String]>,
) -> IdentityResult<Value> {
    let (doc, obj) = role;
    must_be_free(
        tx,
        rk.kind,
        Key::Name,
        Some(name),
        None,
        None,
        rk.name_taken,
        rk.name_what,
    )?;
    if let Some(ids) = scope_ids {
        must_exist(tx, rk.scope_kind, ids)?;
    }
    tx.insert(rk.kind, doc)?;
    let data = to_json(obj)?;
    let mut events = vec![em.event(rk.created, Map::new(), Some(data.clone()))];
    if let Some(ids) = scope_ids {
        let mut scopes = Vec::with_capacity(ids.len());
        for id in ids {
            tx.link(rk.scopes, None, &doc.id, id)?;
            if rk.scopes_as_data {
                scopes.extend(tx.get(rk.scope_kind, id)?);
            }
        }
        let own = extra(&[(rk.id_field, Value::String(doc.id.clone()))]);
        if rk.scopes_as_data {
            events.push(em.event(rk.scopes_updated, own, Some(Value::Array(scopes))));
        } else if !ids.is_empty() {
            events.push(em.event(rk.scopes_updated, own, None));
        }
    }
    tx.emit(&events)?;
    Ok(data)
}

/// How a request changes what one document links to (members of an organization, scopes of
/// an organization role).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkChange {
    /// `POST`: adds these (links that exist are kept).
    Add,
    /// `PUT`: exactly these.
    Replace,
    /// `DELETE …/:id`: removes these; a missing link is a 404 naming `missing`.
    Remove,
}

/// Applies `how` to the links of `owner` through `link`; the targets added and removed.
pub(crate) fn change_links(
    tx: &mut dyn IdentityTx,
    link: Link,
    owner: &str,
    how: LinkChange,
    ids: &[String],
    missing: &'static str,
) -> IdentityResult<(Vec<String>, Vec<String>)> {
    let (mut added, mut removed) = (Vec::new(), Vec::new());
    if how == LinkChange::Remove {
        for id in ids {
            if !tx.unlink(link, None, owner, id)? {
                return Err(IdentityError::Refused {
                    status: 404,
                    code: "entity.not_found",
                    message: format!(
                        "The {missing} `{}` is not there.",
                        id.chars().take(64).collect::<String>()
                    ),
                });
            }
            removed.push(id.clone());
        }
        return Ok((added, removed));
    }
    for id in ids {
        if tx.get(link.target(), id)?.is_none() {
            return Err(IdentityError::Refused {
                status: 404,
                code: "entity.relation_foreign_key_not_found",
                message: format!(
                    "The {} `{}` does not exist.",
                    link.target().entity(),
                    id.chars().take(64).collect::<String>()
                ),
            });
        }
    }
    if how == LinkChange::Replace {
        for old in tx.linked(link, None, owner)? {
            if !ids.contains(&old) {
                tx.unlink(link, None, owner, &old)?;
                removed.push(old);
            }
        }
    }
    for id in ids {
        if tx.link(link, None, owner, id)? {
            added.push(id.clone());
        }
    }
    Ok((added, removed))
}
