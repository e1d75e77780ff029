//! The identity core's operations: what each Management API change checks, writes and
//! emits. Each runs as one transaction of the store ([`IdentityStore::transact`]), so a row
//! change and the data events it causes commit together, and a refused or failed change
//! emits nothing. The operations are written once, against the store's primitives
//! ([`IdentityTx`]); the routes only parse requests and shape answers.

pub mod authz;
pub mod organizations;
pub mod users;

use crate::domain::event::HookEvent;
use crate::domain::id::new_id;
use crate::domain::payload::{api_event_payload, ApiCall};
use crate::storage::identity::{Doc, IdentityError, IdentityResult, IdentityTx, Key, Kind};
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
        let now = time::OffsetDateTime::now_utc();
        Self {
            call,
            status,
            created_at: crate::domain::payload::iso_timestamp(now),
            now_ms: (now.unix_timestamp_nanos() / 1_000_000) as i64,
        }
    }

    /// The time of the call, in epoch milliseconds (for `createdAt`/`updatedAt` fields).
    pub fn now_ms(&self) -> i64 {
        self.now_ms
    }

    pub fn event(
        &self,
        event: HookEvent,
        extra: Map<String, Value>,
        data: Option<Value>,
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
