//! Interactions an application's backend runs for its end users: register, sign in, reset a
//! password. Each one reads what it needs, asks the blocking hooks (nothing is written
//! before they answer), then commits its change and its events in one transaction.
//!
//! Password hashing and checking (argon2id, tens of milliseconds of CPU by design) run on the
//! blocking pool, never inside a store transaction.

use super::passwords::PasswordHasher;
use super::{load, to_json};
use crate::delivery::blocking::{self, Decision};
use crate::delivery::http::WebhookSender;
use crate::domain::event::HookEvent;
use crate::domain::id::new_id;
use crate::domain::identity::user::{email_key, User};
use crate::domain::interaction::{
    interaction_data_payload, interaction_payload, CodeSendPolicy, CodeSends, Failures, Identifier,
    InteractionContext, LockoutPolicy, ResetCode, CODE_MAX_ATTEMPTS, CODE_TTL_MS,
};
use crate::storage::identity::{transact, IdentityError, IdentityTx, Key, Kind, StateSpace};
use crate::storage::{NewEvent, Store, StoreError};
use rand::Rng;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Why an interaction did not go through.
#[derive(Debug, thiserror::Error)]
pub enum InteractionError {
    /// Wrong identifier or password: one answer for both, so that it tells nothing about
    /// which.
    #[error("The identifier or the password is wrong.")]
    InvalidCredentials,
    /// The identifier is locked after too many failed verifications (Logto's sentinel): every
    /// attempt is refused until the lockout ends, the right password included.
    #[error("Too many failed attempts; try again in {minutes} minutes.")]
    Blocked { minutes: i64 },
    #[error("This account is suspended.")]
    Suspended,
    #[error("{0}")]
    Denied(String),
    #[error("Too many messages were sent to this recipient; try again later.")]
    RateLimited,
    #[error("The verification code is wrong or has expired.")]
    CodeMismatch,
    /// Password hashing is at its concurrency bound and the wait for a turn ran out
    /// (`identity::passwords`).
    #[error("The server is busy checking other passwords; try again shortly.")]
    Busy,
    /// An action failed (threw, timed out, answered something invalid) and its
    /// `onExecutionError` is `block`. The message has the action's secrets taken out.
    #[error("The sign-in was refused by an action: {0}")]
    ActionFailed(String),
    /// Every script run slot stayed taken for a run's whole timeout (`--action-concurrency`).
    #[error("Too many actions are running; try again shortly.")]
    ScriptsBusy,
    #[error(transparent)]
    Identity(#[from] IdentityError),
}

impl From<StoreError> for InteractionError {
    fn from(e: StoreError) -> Self {
        InteractionError::Identity(IdentityError::Store(e))
    }
}

pub type InteractionResult<T> = Result<T, InteractionError>;

/// The outcome of a transaction that commits even when it refuses: a failed sign-in is counted
/// and a `Identifier.Lockout` fired *and* the caller refused. `Err` here is that refusal; an
/// error of the transaction itself rolls back and comes as the outer `Err`.
type Committed<T> = Result<T, InteractionError>;

/// What an interaction needs from the server's settings.
#[derive(Debug, Clone)]
pub struct InteractionSettings {
    pub lockout: LockoutPolicy,
    pub codes: CodeSendPolicy,
    /// The bounded password hasher (shared with the Management API's password routes).
    pub passwords: PasswordHasher,
    /// Runs the actions (`super::actions`) and their dry runs.
    pub scripts: crate::script::ScriptRunner,
}

/// Builds the events of one interaction: its context and time are the same for all.
#[derive(Debug, Clone)]
struct Events {
    ctx: InteractionContext,
    /// The interaction event these belong to (its `interactionEvent`).
    interaction: HookEvent,
    created_at: String,
    now_ms: i64,
}

impl Events {
    fn new(ctx: InteractionContext, interaction: HookEvent) -> Self {
        let (created_at, now_ms) = crate::clock::now_stamp();
        Self {
            ctx,
            interaction,
            created_at,
            now_ms,
        }
    }

    fn interaction(&self, event: HookEvent, user: &User) -> NewEvent {
        NewEvent {
            id: new_id(),
            event,
            payload: interaction_payload(event, &self.ctx, user, &self.created_at),
            created_at: self.now_ms,
        }
    }

    /// A data or exception event raised by this interaction: `own` keys at the top level
    /// (an exception event's), `data` for a data event.
    fn data(
        &self,
        event: HookEvent,
        interaction: HookEvent,
        own: Map<String, Value>,
        data: Option<Value>,
    ) -> NewEvent {
        NewEvent {
            id: new_id(),
            event,
            payload: interaction_data_payload(
                event,
                interaction,
                &self.ctx,
                own,
                data,
                &self.created_at,
            ),
            created_at: self.now_ms,
        }
    }

    /// `User.Data.Updated` for `user` changed inside this sign-in (an action's change), data =
    /// the user with `hasPassword` (it has one: it signed in with it).
    fn user_updated(&self, user: &User) -> Result<NewEvent, IdentityError> {
        let api = crate::domain::identity::user::ApiUser {
            user,
            has_password: true,
        };
        Ok(self.data(
            HookEvent::USER_DATA_UPDATED,
            self.interaction,
            Map::new(),
            Some(to_json(&api)?),
        ))
    }

    /// `Identifier.Lockout` for `identifier`, with its `type` and `value` at the top level,
    /// raised by the interaction `self.interaction` names.
    fn lockout(&self, identifier: &Identifier) -> NewEvent {
        let own = super::extra(&[
            ("type", json!(identifier.kind())),
            ("value", json!(identifier.value())),
        ]);
        self.data(HookEvent::IDENTIFIER_LOCKOUT, self.interaction, own, None)
    }

    /// Asks the blocking hooks of `event` about `user`.
    async fn ask(
        &self,
        store: &dyn Store,
        sender: &WebhookSender,
        scripts: &crate::script::ScriptRunner,
        event: HookEvent,
        user: &User,
    ) -> InteractionResult<serde_json::Map<String, Value>> {
        let payload = interaction_payload(event, &self.ctx, user, &self.created_at);
        match blocking::decide(store, sender, scripts, event, &payload).await? {
            Decision::Allow { custom_data } => Ok(custom_data),
            Decision::Deny { message } => Err(InteractionError::Denied(message)),
        }
    }
}

fn parse_user(v: Value) -> InteractionResult<User> {
    serde_json::from_value(v).map_err(|e| StoreError::Corrupt(format!("a stored user: {e}")).into())
}

fn key_of(identifier: &Identifier) -> Key {
    match identifier {
        Identifier::Username(_) => Key::Username,
        Identifier::Email(_) => Key::Email,
    }
}

/// The user an identifier names, with their password hash.
async fn find_user(
    store: &dyn Store,
    identifier: &Identifier,
) -> InteractionResult<Option<(User, Option<String>)>> {
    match store
        .find_with_credential(Kind::User, key_of(identifier), identifier.value())
        .await?
    {
        Some((doc, hash)) => Ok(Some((parse_user(doc)?, hash))),
        None => Ok(None),
    }
}

/// `POST /api/interactions/register`: the new user (`user`, with its password hash) is shown
/// to the `PreRegister` hooks, which may add custom data, then created with `User.Created`
/// and `PostRegister`. Answers `{userId, sessionId}`.
pub async fn register(
    store: &dyn Store,
    sender: &WebhookSender,
    scripts: &crate::script::ScriptRunner,
    ctx: InteractionContext,
    mut user: User,
    password_hash: String,
) -> InteractionResult<Value> {
    let ev = Events::new(ctx, HookEvent::POST_REGISTER);
    // Taken keys are refused before the hooks are bothered (and again in the transaction).
    for (key, value, code, what) in [
        (
            Key::Username,
            user.username.clone(),
            "user.username_already_in_use",
            "username",
        ),
        (
            Key::Email,
            user.primary_email.as_deref().map(email_key),
            "user.email_already_in_use",
            "email",
        ),
    ] {
        if let Some(v) = value {
            if store
                .find_with_credential(Kind::User, key, &v)
                .await?
                .is_some()
            {
                return Err(IdentityError::Conflict {
                    code,
                    message: format!("The {what} is already in use."),
                }
                .into());
            }
        }
    }
    let added = ev
        .ask(store, sender, scripts, HookEvent::PRE_REGISTER, &user)
        .await?;
    user.custom_data.extend(added);
    // What the PreRegister hooks added counts toward the bound too.
    user.check_objects().map_err(IdentityError::from)?;
    let session = ev.ctx.session_id.clone();
    let id = user.id.clone();
    transact(store, move |tx| {
        super::users::keys_must_be_free(tx, &user)?;
        tx.insert(Kind::User, &super::users::user_doc(&user, true)?)?;
        tx.set_credential(Kind::User, &user.id, &password_hash)?;
        tx.emit(&[
            ev.data(
                HookEvent::USER_CREATED,
                HookEvent::POST_REGISTER,
                Map::new(),
                Some(to_json(&user)?),
            ),
            ev.interaction(HookEvent::POST_REGISTER, &user),
        ])?;
        Ok(Value::Null)
    })
    .await?;
    Ok(json!({"userId": id, "sessionId": session}))
}

/// The lockout of `identifier` at `ev.now_ms`, inside a transaction: while it holds, the
/// attempt is refused with [`InteractionError::Blocked`] and fires `Identifier.Lockout` again
/// (as Logto's sentinel does on every blocked attempt).
fn refuse_if_locked(
    tx: &mut dyn IdentityTx,
    ev: &Events,
    identifier: &Identifier,
) -> Result<Committed<()>, IdentityError> {
    let now = ev.now_ms;
    let state: Option<Failures> = tx
        .state_get(StateSpace::SignInFailures, &identifier.state_key(), now)?
        .and_then(|v| serde_json::from_value(v).ok());
    match state
        .and_then(|f| f.locked_until)
        .filter(|until| *until > now)
    {
        Some(until) => {
            tx.emit(&[ev.lockout(identifier)])?;
            Ok(Err(InteractionError::Blocked {
                minutes: (until - now + 59_999) / 60_000,
            }))
        }
        None => Ok(Ok(())),
    }
}

/// Refuses (and fires `Identifier.Lockout`) while `identifier` is locked. It reads first and
/// writes only when locked, so an unlocked identifier costs no write here; the change that
/// follows checks again inside its own transaction.
async fn refuse_while_locked(
    store: &dyn Store,
    ev: &Events,
    identifier: &Identifier,
) -> InteractionResult<()> {
    let state: Option<Failures> = store
        .state(
            StateSpace::SignInFailures,
            &identifier.state_key(),
            ev.now_ms,
        )
        .await?
        .and_then(|v| serde_json::from_value(v).ok());
    let locked = state
        .and_then(|f| f.locked_until)
        .is_some_and(|until| until > ev.now_ms);
    if !locked {
        return Ok(());
    }
    let (ev, id) = (ev.clone(), identifier.clone());
    transact(store, move |tx| refuse_if_locked(tx, &ev, &id)).await?
}

/// Counts a failed verification of `identifier`. The one that reaches the policy's limit locks
/// it, fires `Identifier.Lockout` and is refused as blocked; the others as wrong credentials.
fn record_failure(
    tx: &mut dyn IdentityTx,
    ev: &Events,
    policy: &LockoutPolicy,
    identifier: &Identifier,
) -> Result<Committed<()>, IdentityError> {
    if let Err(blocked) = refuse_if_locked(tx, ev, identifier)? {
        return Ok(Err(blocked));
    }
    let key = identifier.state_key();
    let now = ev.now_ms;
    let current: Option<Failures> = tx
        .state_get(StateSpace::SignInFailures, &key, now)?
        .and_then(|v| serde_json::from_value(v).ok());
    let (failures, locked) = policy.fail(current, now);
    tx.state_put(
        StateSpace::SignInFailures,
        &key,
        &to_json(&failures)?,
        policy.expires_at(&failures),
    )?;
    if locked {
        tx.emit(&[ev.lockout(identifier)])?;
        return Ok(Err(InteractionError::Blocked {
            minutes: policy.lock_ms / 60_000,
        }));
    }
    Ok(Err(InteractionError::InvalidCredentials))
}

/// `POST /api/interactions/sign-in`: checks the password (the same answer for a wrong one and
/// an unknown identifier), refuses a suspended user, asks the `PreSignIn` hooks, then sets
/// `lastSignInAt` and fires `PostSignIn`. Failed verifications count per identifier, known
/// or not; at the policy's limit the identifier is locked, and while it is, every attempt
/// (the right password included) is refused and fires `Identifier.Lockout`.
pub async fn sign_in(
    store: &dyn Store,
    sender: &WebhookSender,
    settings: InteractionSettings,
    ctx: InteractionContext,
    identifier: Identifier,
    password: String,
) -> InteractionResult<Value> {
    let ev = Events::new(ctx, HookEvent::POST_SIGN_IN);
    let policy = settings.lockout;
    let found = find_user(store, &identifier).await?;
    let (user, hash) = match found {
        Some((u, h)) => (Some(u), h),
        None => (None, None),
    };
    // The password is checked even for a locked identifier, so the time taken tells nothing.
    let rehash = hash
        .as_deref()
        .is_some_and(crate::domain::identity::password::needs_rehash);
    let matches = settings.passwords.matches(password.clone(), hash).await?;
    if !matches {
        // The local check failed: a PostFirstFactorVerification action may vouch for the
        // password (lazy migration), unless the identifier is locked.
        refuse_while_locked(store, &ev, &identifier).await?;
        let migration = match super::actions::post_first_factor(
            store,
            &settings.scripts,
            &identifier,
            user.as_ref(),
            &password,
            ev.now_ms,
        )
        .await
        {
            Ok(m) => m,
            Err(e) => {
                // The local check failed and nothing vouched for the password: the attempt
                // counts towards the lockout all the same, or a failing action would let
                // guesses go uncounted.
                let (ev2, id2) = (ev.clone(), identifier.clone());
                let counted =
                    transact(store, move |tx| record_failure(tx, &ev2, &policy, &id2)).await?;
                return match counted {
                    Err(blocked @ InteractionError::Blocked { .. }) => Err(blocked),
                    _ => Err(e),
                };
            }
        };
        if let Some(m) = migration {
            let m = Migrated {
                existing: user,
                migration: m,
                password,
            };
            return sign_in_migrated(store, sender, &settings, ev, identifier, m).await;
        }
        let (ev2, id2) = (ev.clone(), identifier.clone());
        return transact(store, move |tx| record_failure(tx, &ev2, &policy, &id2))
            .await?
            .map(|()| Value::Null);
    }
    // A match needs a stored hash, so a user.
    let Some(user) = user else {
        return Err(InteractionError::InvalidCredentials);
    };
    refuse_while_locked(store, &ev, &identifier).await?;
    if user.is_suspended {
        return Err(InteractionError::Suspended);
    }
    ev.ask(
        store,
        sender,
        &settings.scripts,
        HookEvent::PRE_SIGN_IN,
        &user,
    )
    .await?;
    // An imported digest (bcrypt, SHA-256, …) is replaced by argon2id on the first sign-in
    // that proves the password.
    // Busy hashing must not fail a sign-in that has already succeeded: the rehash waits for
    // the next one.
    let new_hash = if rehash {
        match settings.passwords.hash(password).await {
            Ok(hash) => Some(hash),
            Err(InteractionError::Busy) => None,
            Err(e) => return Err(e),
        }
    } else {
        None
    };
    // The PostSignIn action may change the user; the change commits with the sign-in.
    let action_patch = super::actions::post_sign_in(store, &settings.scripts, &user).await?;
    let session = ev.ctx.session_id.clone();
    let user_id = user.id.clone();
    let signed_in = transact(
        store,
        move |tx| -> Result<Committed<String>, IdentityError> {
            // Locked or suspended meanwhile (by calls that raced this one): refused all the same.
            if let Err(blocked) = refuse_if_locked(tx, &ev, &identifier)? {
                return Ok(Err(blocked));
            }
            let mut user: User = load(tx, Kind::User, &user_id)?;
            if user.is_suspended {
                return Ok(Err(InteractionError::Suspended));
            }
            user.last_sign_in_at = Some(ev.now_ms);
            let mut events = Vec::with_capacity(2);
            if let Some(patch) = &action_patch {
                user = patch.apply(user, ev.now_ms);
                super::users::keys_must_be_free(tx, &user)?;
                events.push(ev.user_updated(&user)?);
            }
            tx.update(Kind::User, &super::users::user_doc(&user, true)?)?;
            if let Some(h) = &new_hash {
                tx.set_credential(Kind::User, &user.id, h)?;
            }
            events.push(ev.interaction(HookEvent::POST_SIGN_IN, &user));
            tx.emit(&events)?;
            Ok(Ok(user.id))
        },
    )
    .await??;
    Ok(json!({"userId": signed_in, "sessionId": session}))
}

/// What a `PostFirstFactorVerification` action vouched for, with what it needs to commit.
struct Migrated {
    /// The user the identifier names, if any.
    existing: Option<User>,
    migration: super::actions::Migration,
    /// The password the action verified: stored, hashed, so the next sign-in is local.
    password: String,
}

/// A sign-in whose password a `PostFirstFactorVerification` action verified: the user is
/// created (`User.Created`) or updated (`User.Data.Updated`) with the password hashed, then
/// signed in (`PostSignIn`), all in one transaction, after the suspension and `PreSignIn`
/// checks a local sign-in has and with the `PostSignIn` action's change, if any.
async fn sign_in_migrated(
    store: &dyn Store,
    sender: &WebhookSender,
    settings: &InteractionSettings,
    ev: Events,
    identifier: Identifier,
    m: Migrated,
) -> InteractionResult<Value> {
    use super::actions::Migration;
    let hash = settings.passwords.hash(m.password).await?;
    let preview = match (&m.migration, &m.existing) {
        (Migration::Create(u), _) => u.clone(),
        (Migration::Update(p), Some(u)) => p.apply(u.clone(), ev.now_ms),
        (Migration::Update(_), None) => return Err(InteractionError::InvalidCredentials),
    };
    if preview.is_suspended {
        return Err(InteractionError::Suspended);
    }
    ev.ask(
        store,
        sender,
        &settings.scripts,
        HookEvent::PRE_SIGN_IN,
        &preview,
    )
    .await?;
    // The PostSignIn action runs as for a local sign-in, on the user as migrated; its change
    // commits with the rest.
    let action_patch = super::actions::post_sign_in(store, &settings.scripts, &preview).await?;
    let session = ev.ctx.session_id.clone();
    let migration = m.migration;
    let existing_id = m.existing.map(|u| u.id);
    let signed_in = transact(
        store,
        move |tx| -> Result<Committed<String>, IdentityError> {
            if let Err(blocked) = refuse_if_locked(tx, &ev, &identifier)? {
                return Ok(Err(blocked));
            }
            let now = ev.now_ms;
            let mut events = Vec::with_capacity(2);
            let user = match (&migration, &existing_id) {
                (Migration::Create(u), _) => {
                    // Created as the action left it: `User.Created` shows its change.
                    let mut user = match &action_patch {
                        Some(patch) => patch.apply(u.clone(), now),
                        None => u.clone(),
                    };
                    user.last_sign_in_at = Some(now);
                    super::users::keys_must_be_free(tx, &user)?;
                    tx.insert(Kind::User, &super::users::user_doc(&user, true)?)?;
                    events.push(ev.data(
                        HookEvent::USER_CREATED,
                        HookEvent::POST_SIGN_IN,
                        Map::new(),
                        Some(to_json(&user)?),
                    ));
                    user
                }
                (Migration::Update(patch), Some(id)) => {
                    let current: User = load(tx, Kind::User, id)?;
                    if current.is_suspended {
                        return Ok(Err(InteractionError::Suspended));
                    }
                    let mut user = patch.apply(current, now);
                    if let Some(p) = &action_patch {
                        user = p.apply(user, now);
                    }
                    user.last_sign_in_at = Some(now);
                    super::users::keys_must_be_free(tx, &user)?;
                    tx.update(Kind::User, &super::users::user_doc(&user, true)?)?;
                    events.push(ev.user_updated(&user)?);
                    user
                }
                (Migration::Update(_), None) => {
                    return Ok(Err(InteractionError::InvalidCredentials))
                }
            };
            tx.set_credential(Kind::User, &user.id, &hash)?;
            events.push(ev.interaction(HookEvent::POST_SIGN_IN, &user));
            tx.emit(&events)?;
            Ok(Ok(user.id))
        },
    )
    .await??;
    Ok(json!({"userId": signed_in, "sessionId": session}))
}

fn code_hash(key: &str, code: &str) -> String {
    hex::encode(Sha256::digest(format!("{key}:{code}").as_bytes()))
}

/// `POST /api/interactions/forgot-password/verification-codes`: a six-digit code for the
/// user the identifier names, valid for ten minutes, stored hashed; answered to the
/// application's backend, which delivers it. Every send counts towards its recipient's cap
/// ([`CodeSendPolicy`]), the recipient being where the code goes (the user's email, else phone;
/// for an unknown identifier, the identifier itself), so one inbox is not reached twice as
/// often through a username and an email. A send past the cap is refused and fires
/// `Message.RateLimited`; a send for an unknown identifier counts too, then answers 404.
pub async fn send_reset_code(
    store: &dyn Store,
    settings: InteractionSettings,
    ctx: InteractionContext,
    identifier: Identifier,
) -> InteractionResult<Value> {
    let ev = Events::new(ctx, HookEvent::POST_RESET_PASSWORD);
    let code = format!("{:06}", rand::thread_rng().gen_range(0..1_000_000u32));
    let hash = code_hash(&identifier.state_key(), &code);
    let policy = settings.codes;
    transact(store, move |tx| -> Result<Committed<()>, IdentityError> {
        let now = ev.now_ms;
        let user_id = tx.find(Kind::User, key_of(&identifier), identifier.value(), None)?;
        let user: Option<User> = match &user_id {
            Some(id) => Some(load(tx, Kind::User, id)?),
            None => None,
        };
        let recipient = user
            .as_ref()
            .and_then(|u| {
                u.primary_email
                    .as_deref()
                    .map(email_key)
                    .or_else(|| u.primary_phone.clone())
            })
            .unwrap_or_else(|| identifier.value().to_owned());
        let sends_key = format!("recipient:{recipient}");
        let sends: Option<CodeSends> = tx
            .state_get(StateSpace::CodeSends, &sends_key, now)?
            .and_then(|v| serde_json::from_value(v).ok());
        let Some(sends) = policy.next_send(sends, now) else {
            let own = super::extra(&[
                ("action", json!("VerificationCodeSend")),
                ("recipient", json!(recipient)),
            ]);
            tx.emit(&[ev.data(
                HookEvent::MESSAGE_RATE_LIMITED,
                HookEvent::POST_RESET_PASSWORD,
                own,
                None,
            )])?;
            return Ok(Err(InteractionError::RateLimited));
        };
        tx.state_put(
            StateSpace::CodeSends,
            &sends_key,
            &to_json(&sends)?,
            policy.expires_at(&sends),
        )?;
        let Some(user_id) = user_id else {
            // The send counts (it is committed) all the same.
            let missing = IdentityError::not_found(Kind::User, identifier.value());
            return Ok(Err(missing.into()));
        };
        let open = ResetCode {
            code_hash: hash.clone(),
            user_id,
            expires_at: now + CODE_TTL_MS,
            attempts: 0,
        };
        tx.state_put(
            StateSpace::ResetCode,
            &identifier.state_key(),
            &to_json(&open)?,
            open.expires_at,
        )?;
        Ok(Ok(()))
    })
    .await??;
    Ok(json!({"code": code}))
}

/// `POST /api/interactions/reset-password`: checks the code (five wrong guesses void it; each
/// counts towards the identifier's lockout, and a locked identifier is refused, as Logto's
/// sentinel guards code verifications too), asks the `PreResetPassword` hooks, then sets the
/// new password and fires `User.Data.Updated` and `PostResetPassword`.
pub async fn reset_password(
    store: &dyn Store,
    sender: &WebhookSender,
    settings: InteractionSettings,
    ctx: InteractionContext,
    identifier: Identifier,
    code: String,
    password: String,
) -> InteractionResult<Value> {
    let ev = Events::new(ctx, HookEvent::POST_RESET_PASSWORD);
    let key = identifier.state_key();
    let hash = code_hash(&key, code.trim());
    let open: Option<ResetCode> = store
        .state(StateSpace::ResetCode, &key, ev.now_ms)
        .await?
        .and_then(|v| serde_json::from_value(v).ok());
    // Code verifications share the identifier's sentinel with passwords, as in Logto.
    refuse_while_locked(store, &ev, &identifier).await?;
    let Some(open) = open else {
        return Err(InteractionError::CodeMismatch);
    };
    if !bool::from(open.code_hash.as_bytes().ct_eq(hash.as_bytes())) {
        let (k, ev2, id2, policy) = (
            key.clone(),
            ev.clone(),
            identifier.clone(),
            settings.lockout,
        );
        return transact(
            store,
            move |tx| -> Result<Committed<Value>, IdentityError> {
                let current: Option<ResetCode> = tx
                    .state_get(StateSpace::ResetCode, &k, ev2.now_ms)?
                    .and_then(|v| serde_json::from_value(v).ok());
                if let Some(mut c) = current {
                    c.attempts += 1;
                    if c.attempts >= CODE_MAX_ATTEMPTS {
                        tx.state_delete(StateSpace::ResetCode, &k)?;
                    } else {
                        tx.state_put(StateSpace::ResetCode, &k, &to_json(&c)?, c.expires_at)?;
                    }
                }
                Ok(match record_failure(tx, &ev2, &policy, &id2)? {
                    Err(InteractionError::InvalidCredentials) | Ok(()) => {
                        Err(InteractionError::CodeMismatch)
                    }
                    Err(other) => Err(other),
                })
            },
        )
        .await?;
    }
    let Some(doc) = store.get_doc(Kind::User, &open.user_id).await? else {
        return Err(InteractionError::CodeMismatch);
    };
    let user = parse_user(doc)?;
    // Hashed before the hooks are asked, so a busy hasher (503) has not asked them for nothing.
    let password_hash = settings.passwords.hash(password).await?;
    ev.ask(
        store,
        sender,
        &settings.scripts,
        HookEvent::PRE_RESET_PASSWORD,
        &user,
    )
    .await?;
    let session = ev.ctx.session_id.clone();
    let user_id = transact(
        store,
        move |tx| -> Result<Committed<String>, IdentityError> {
            let now = ev.now_ms;
            // The code must still be the one checked (not used or voided meanwhile).
            let current: Option<ResetCode> = tx
                .state_get(StateSpace::ResetCode, &key, now)?
                .and_then(|v| serde_json::from_value(v).ok());
            if current.as_ref().map(|c| &c.code_hash) != Some(&hash) {
                return Ok(Err(InteractionError::CodeMismatch));
            }
            tx.state_delete(StateSpace::ResetCode, &key)?;
            let mut user: User = load(tx, Kind::User, &open.user_id)?;
            user.updated_at = now;
            tx.update(Kind::User, &super::users::user_doc(&user, true)?)?;
            tx.set_credential(Kind::User, &user.id, &password_hash)?;
            tx.emit(&[
                ev.data(
                    HookEvent::USER_DATA_UPDATED,
                    HookEvent::POST_RESET_PASSWORD,
                    Map::new(),
                    Some(to_json(&user)?),
                ),
                ev.interaction(HookEvent::POST_RESET_PASSWORD, &user),
            ])?;
            Ok(Ok(user.id))
        },
    )
    .await??;
    Ok(json!({"userId": user_id, "sessionId": session}))
}

/// Application secrets are long random strings: SHA-256 is enough to keep them unguessable
/// at rest, and cheap enough to check on every interaction call.
pub fn secret_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `secret` is the one `stored` hashes, in constant time.
pub fn secret_matches(secret: &str, stored: &str) -> bool {
    bool::from(secret_hash(secret).as_bytes().ct_eq(stored.as_bytes()))
}
