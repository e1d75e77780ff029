//! What the writer thread remembers about hooks between writes.
//!
//! Every published event needs its subscribers and every claimed delivery its hook's target
//! (URL, headers, key). Both change only when a hook is written, and every hook write runs on
//! the writer thread, which clears this cache as it does so: the cache cannot go stale, and
//! the hot path neither re-reads hook rows nor re-parses their JSON per event or delivery.

use crate::domain::event::HookEvent;
use crate::domain::hook::HookConfig;
use crate::storage::cipher::KeyCipher;
use crate::storage::{previous_key, DeliveryTarget, StoreError, StoreResult};
use rusqlite::{Connection, OptionalExtension};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

/// An enabled hook subscribed to an event.
pub struct Subscriber {
    pub hook_id: String,
    pub target: Arc<DeliveryTarget>,
}

#[derive(Default)]
pub struct HookCache {
    subscribers: HashMap<HookEvent, Arc<[Subscriber]>>,
    targets: HashMap<String, Arc<DeliveryTarget>>,
    /// The ids of enabled hooks, once asked for.
    enabled: Option<HashSet<String>>,
    /// Each hook's `failing_since` as last read or written here (`super::health`).
    failing_since: HashMap<String, Option<i64>>,
    /// Opens the signing keys of the rows it reads (`--encryption-key`).
    cipher: KeyCipher,
    /// Hooks paused until then (epoch ms; `Store::pause_hook`). Not a copy of a row (one
    /// process owns the file, so a pause lives here alone) and so kept by [`Self::clear`].
    paused: HashMap<String, i64>,
}

impl HookCache {
    pub fn new(cipher: KeyCipher) -> Self {
        Self {
            cipher,
            ..Self::default()
        }
    }

    /// Forget everything: a hook was written, or a transaction that read hooks rolled back.
    pub fn clear(&mut self) {
        self.subscribers.clear();
        self.targets.clear();
        self.enabled = None;
        self.failing_since.clear();
    }

    /// Pauses `hook_id` until `until` (ms), or longer if it already is.
    pub fn pause(&mut self, hook_id: &str, until: i64) {
        let end = self.paused.entry(hook_id.to_owned()).or_insert(until);
        *end = (*end).max(until);
    }

    /// Until when `hook_id` is paused, if it is at `now`; pauses that ended are forgotten.
    pub fn paused_until(&mut self, hook_id: &str, now: i64) -> Option<i64> {
        if self.paused.is_empty() {
            return None;
        }
        self.paused.retain(|_, until| *until > now);
        self.paused.get(hook_id).copied()
    }

    /// The hook's `failing_since`, `None` if the hook does not exist.
    pub fn failing_since(
        &mut self,
        conn: &Connection,
        hook_id: &str,
    ) -> StoreResult<Option<Option<i64>>> {
        if let Some(f) = self.failing_since.get(hook_id) {
            return Ok(Some(*f));
        }
        let found: Option<Option<i64>> = conn
            .prepare_cached("SELECT failing_since FROM hooks WHERE id = ?1")?
            .query_row([hook_id], |r| r.get(0))
            .optional()?;
        if let Some(f) = found {
            self.failing_since.insert(hook_id.to_owned(), f);
        }
        Ok(found)
    }

    /// Remembers a `failing_since` just written.
    pub fn set_failing_since(&mut self, hook_id: &str, value: Option<i64>) {
        self.failing_since.insert(hook_id.to_owned(), value);
    }

    /// Does the hook exist, and is it enabled?
    pub fn is_enabled(&mut self, conn: &Connection, hook_id: &str) -> StoreResult<bool> {
        if let Some(enabled) = &self.enabled {
            return Ok(enabled.contains(hook_id));
        }
        let mut stmt = conn.prepare_cached("SELECT id FROM hooks WHERE enabled = 1")?;
        let enabled = stmt
            .query_map([], |r| r.get::<_, String>(0))?
            .collect::<Result<HashSet<String>, _>>()?;
        let answer = enabled.contains(hook_id);
        self.enabled = Some(enabled);
        Ok(answer)
    }

    /// The enabled hooks subscribed to `event`, oldest first.
    pub fn subscribers(
        &mut self,
        conn: &Connection,
        event: HookEvent,
    ) -> StoreResult<Arc<[Subscriber]>> {
        if let Some(s) = self.subscribers.get(&event) {
            return Ok(s.clone());
        }
        let mut stmt = conn.prepare_cached(
            "SELECT id, config, signing_key, previous_signing_key, previous_key_expires_at \
             FROM hooks WHERE enabled = 1 \
             AND CASE WHEN json_array_length(hooks.events) > 0 \
                 THEN EXISTS (SELECT 1 FROM json_each(hooks.events) WHERE value = ?1) \
                 ELSE event IS ?1 END \
             ORDER BY created_at, id",
        )?;
        let mut rows = stmt.query([event.name()])?;
        let mut found = Vec::new();
        while let Some(row) = rows.next()? {
            let hook_id: String = row.get(0)?;
            let target = match self.targets.get(&hook_id) {
                Some(t) => t.clone(),
                None => {
                    let t = Arc::new(self.parse_target(
                        &hook_id,
                        row.get(1)?,
                        row.get(2)?,
                        row.get(3)?,
                        row.get(4)?,
                    )?);
                    self.targets.insert(hook_id.clone(), t.clone());
                    t
                }
            };
            found.push(Subscriber { hook_id, target });
        }
        let found: Arc<[Subscriber]> = found.into();
        self.subscribers.insert(event, found.clone());
        Ok(found)
    }

    /// A hook's target, or `None` if the hook does not exist.
    pub fn target(
        &mut self,
        conn: &Connection,
        hook_id: &str,
    ) -> StoreResult<Option<Arc<DeliveryTarget>>> {
        if let Some(t) = self.targets.get(hook_id) {
            return Ok(Some(t.clone()));
        }
        let row = conn
            .prepare_cached(
                "SELECT config, signing_key, previous_signing_key, previous_key_expires_at \
                 FROM hooks WHERE id = ?1",
            )?
            .query_row([hook_id], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
            })
            .optional()?;
        let Some((config, key, previous, expires)) = row else {
            return Ok(None);
        };
        let t = Arc::new(self.parse_target(hook_id, config, key, previous, expires)?);
        self.targets.insert(hook_id.to_owned(), t.clone());
        Ok(Some(t))
    }
}

impl HookCache {
    /// A hook row's target, its keys opened.
    fn parse_target(
        &self,
        hook_id: &str,
        config: String,
        signing_key: String,
        previous: Option<String>,
        expires_at: Option<i64>,
    ) -> StoreResult<DeliveryTarget> {
        let config: HookConfig = serde_json::from_str(&config)
            .map_err(|e| StoreError::Corrupt(format!("hook config: {e}")))?;
        let key = self.cipher.open(hook_id, &signing_key)?;
        let previous = previous
            .map(|p| self.cipher.open(hook_id, &p))
            .transpose()?;
        Ok(DeliveryTarget::new(
            config,
            key,
            previous_key(previous, expires_at),
        ))
    }
}
