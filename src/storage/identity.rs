//! The identity core's storage interface. The core's rows are *documents* (the API objects as
//! JSON) with the keys the database must enforce or find them by, plus *links* between them.
//! Every change runs as one transaction ([`IdentityStore::transact`]) over a small set of
//! primitives ([`IdentityTx`]), and the events it causes are queued inside that same
//! transaction: a change and its events commit together or not at all.
//!
//! The operations themselves (what a request checks, writes and emits) live in
//! `crate::identity`, written once against these primitives.

use super::{NewEvent, Page, StoreError, StoreResult};
use async_trait::async_trait;
use serde_json::Value;
use std::any::Any;

/// The kinds of documents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    User,
    Resource,
    Scope,
    Role,
    Organization,
    OrganizationRole,
    OrganizationScope,
    Application,
    OrganizationInvitation,
}

impl Kind {
    /// The entity's name in messages ("The user with ID … does not exist.").
    pub fn entity(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Resource => "resource",
            Kind::Scope => "scope",
            Kind::Role => "role",
            Kind::Organization => "organization",
            Kind::OrganizationRole => "organization role",
            Kind::OrganizationScope => "organization scope",
            Kind::Application => "application",
            Kind::OrganizationInvitation => "organization invitation",
        }
    }
}

/// A unique key of a document (unique within its parent, for scopes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    Username,
    /// The primary email, lowercased.
    Email,
    Phone,
    Name,
    Indicator,
    /// A pending invitation's invitee (lowercased), unique within its organization.
    PendingInvitee,
}

/// Links between documents: `a` → `b`, optionally within a `scope` (the organization, for a
/// member's organization roles).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    /// role → scope
    RoleScopes,
    /// user → role
    UserRoles,
    /// organization → user
    OrganizationUsers,
    /// organization → (machine-to-machine) application
    OrganizationApplications,
    /// organization role → organization scope
    OrganizationRoleScopes,
    /// (organization) user → organization role
    OrganizationUserRoles,
}

impl Link {
    /// The kind of the documents a link points at.
    pub fn target(self) -> Kind {
        match self {
            Link::RoleScopes => Kind::Scope,
            Link::UserRoles => Kind::Role,
            Link::OrganizationUsers => Kind::User,
            Link::OrganizationApplications => Kind::Application,
            Link::OrganizationRoleScopes => Kind::OrganizationScope,
            Link::OrganizationUserRoles => Kind::OrganizationRole,
        }
    }
}

/// Kinds of short-lived interaction state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StateSpace {
    /// Failed sign-ins and lockouts, per identifier.
    SignInFailures,
    /// The open password-reset code, per recipient.
    ResetCode,
    /// Codes sent per recipient in the current window.
    CodeSends,
    /// Console sessions, by the SHA-256 of their id (`console::session`).
    ConsoleSessions,
    /// Wrong admin tokens at the console's sign-in, per client address.
    ConsoleSignInFailures,
}

impl StateSpace {
    pub fn name(self) -> &'static str {
        match self {
            StateSpace::SignInFailures => "sign_in_failures",
            StateSpace::ResetCode => "reset_code",
            StateSpace::CodeSends => "code_sends",
            StateSpace::ConsoleSessions => "console_sessions",
            StateSpace::ConsoleSignInFailures => "console_sign_in_failures",
        }
    }
}

/// A document to store.
#[derive(Debug, Clone)]
pub struct Doc {
    pub id: String,
    /// The object, serialized (keys in their API order).
    pub json: String,
    /// Its unique keys; `None` for an unset optional one (a user without a phone).
    pub keys: Vec<(Key, Option<String>)>,
    /// The document it belongs to (a scope's resource).
    pub parent: Option<String>,
    pub created_at: i64,
}

/// What a listing asks for.
#[derive(Debug, Clone, Default)]
pub struct DocQuery {
    /// Only the documents of this parent.
    pub parent: Option<String>,
    /// A substring of the id, a key or the name, case-insensitively.
    pub search: Option<String>,
    /// Everything when `None`.
    pub page: Option<Page>,
}
// Listings answer newest first, as Logto's do.

/// Why an identity change did not happen. Everything but `Store` is the caller's doing and
/// answers with a 4xx.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error("The {entity} with ID `{id}` does not exist.")]
    NotFound { entity: &'static str, id: String },
    /// A unique key is taken, or a link exists already.
    #[error("{message}")]
    Conflict { code: &'static str, message: String },
    /// Any other refusal with Logto's status and code for it (`entity.not_found` for a link
    /// that is not there, `organization.require_membership`, …).
    #[error("{message}")]
    Refused {
        status: u16,
        code: &'static str,
        message: String,
    },
    #[error(transparent)]
    Input(#[from] crate::domain::identity::InputError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IdentityError {
    pub fn not_found(kind: Kind, id: &str) -> Self {
        IdentityError::NotFound {
            entity: kind.entity(),
            id: id.chars().take(64).collect(),
        }
    }
}

pub type IdentityResult<T> = Result<T, IdentityError>;

/// The primitives a change runs on, inside one write transaction.
pub trait IdentityTx {
    fn get(&mut self, kind: Kind, id: &str) -> StoreResult<Option<Value>>;
    /// The id of the document of `kind` whose `key` is `value` (within `parent`), if any.
    fn find(
        &mut self,
        kind: Kind,
        key: Key,
        value: &str,
        parent: Option<&str>,
    ) -> StoreResult<Option<String>>;
    fn insert(&mut self, kind: Kind, doc: &Doc) -> StoreResult<()>;
    /// Replaces a document and its keys; false if it does not exist.
    fn update(&mut self, kind: Kind, doc: &Doc) -> StoreResult<bool>;
    /// Deletes a document with its links; false if it did not exist.
    fn delete(&mut self, kind: Kind, id: &str) -> StoreResult<bool>;
    /// The credential of a user (password hash: a PHC string, or an imported digest as
    /// `domain::identity::password` stores it) or an application (secret hash). It leaves the
    /// store only through [`IdentityStore::find_with_credential`] and its kin.
    fn set_credential(&mut self, kind: Kind, id: &str, hash: &str) -> StoreResult<()>;
    /// Short-lived interaction state (see [`StateSpace`]); `None` once expired.
    fn state_get(&mut self, space: StateSpace, key: &str, now: i64) -> StoreResult<Option<Value>>;
    fn state_put(
        &mut self,
        space: StateSpace,
        key: &str,
        value: &Value,
        expires_at: i64,
    ) -> StoreResult<()>;
    fn state_delete(&mut self, space: StateSpace, key: &str) -> StoreResult<()>;
    /// Links `a` to `b`; false if they were linked already.
    fn link(&mut self, link: Link, scope: Option<&str>, a: &str, b: &str) -> StoreResult<bool>;
    /// Unlinks `a` from `b`; false if they were not linked.
    fn unlink(&mut self, link: Link, scope: Option<&str>, a: &str, b: &str) -> StoreResult<bool>;
    fn has_link(&mut self, link: Link, scope: Option<&str>, a: &str, b: &str) -> StoreResult<bool>;
    /// What `a` links to, oldest link first.
    fn linked(&mut self, link: Link, scope: Option<&str>, a: &str) -> StoreResult<Vec<String>>;
    /// Queues `events` and their deliveries in this transaction.
    fn emit(&mut self, events: &[NewEvent]) -> StoreResult<()>;
}

/// A change: it may run more than once (a store may retry a batch), so it must change nothing
/// but what it does through the [`IdentityTx`]. Its outcome is typed by [`transact`], which
/// boxes it for the trait object and unboxes it for the caller.
pub type Change = Box<dyn FnMut(&mut dyn IdentityTx) -> IdentityResult<Box<dyn Any + Send>> + Send>;

/// Runs `change` in one transaction of `store`, durably committed before this returns, and
/// answers with its typed outcome. Nothing of it is kept if it fails (an `Err`, a refusal
/// included); an `Ok` outcome commits, whatever it says (a sign-in refused *and* counted).
pub async fn transact<T, F>(store: &dyn IdentityStore, mut change: F) -> IdentityResult<T>
where
    T: Send + 'static,
    F: FnMut(&mut dyn IdentityTx) -> IdentityResult<T> + Send + 'static,
{
    let boxed = store
        .transact(Box::new(move |tx| {
            change(tx).map(|t| Box::new(t) as Box<dyn Any + Send>)
        }))
        .await?;
    boxed.downcast::<T>().map(|t| *t).map_err(|_| {
        IdentityError::Store(StoreError::Corrupt(
            "a change answered with another type".into(),
        ))
    })
}

#[async_trait]
pub trait IdentityStore: Send + Sync {
    /// Runs `change` in one transaction, durably committed before this returns. Nothing of it
    /// is kept if it fails. Callers use the typed [`transact`].
    async fn transact(&self, change: Change) -> IdentityResult<Box<dyn Any + Send>>;

    async fn get_doc(&self, kind: Kind, id: &str) -> StoreResult<Option<Value>>;
    /// Documents newest first (as Logto lists them), and how many match in all.
    async fn list_docs(&self, kind: Kind, q: &DocQuery) -> StoreResult<(Vec<Value>, u64)>;
    /// Whether `a` links to `b`.
    async fn has_link(
        &self,
        link: Link,
        scope: Option<&str>,
        a: &str,
        b: &str,
    ) -> StoreResult<bool>;
    /// The documents `a` links to, oldest link first.
    async fn linked_docs(
        &self,
        link: Link,
        scope: Option<&str>,
        a: &str,
    ) -> StoreResult<Vec<Value>>;
    /// The document of `kind` whose `key` is `value`, with its credential (see
    /// [`IdentityTx::set_credential`]).
    async fn find_with_credential(
        &self,
        kind: Kind,
        key: Key,
        value: &str,
    ) -> StoreResult<Option<(Value, Option<String>)>>;
    /// The document `id` of `kind` with its credential, in one read.
    async fn get_with_credential(
        &self,
        kind: Kind,
        id: &str,
    ) -> StoreResult<Option<(Value, Option<String>)>>;
    async fn state(&self, space: StateSpace, key: &str, now: i64) -> StoreResult<Option<Value>>;
}
