//! Logto's Actions at their points of sign-in (issue 16; spec "Actions"): which action runs,
//! with what event, and what its answer means. The interactions (`super::interactions`) call
//! these and apply what they return inside their own transaction.

use super::interactions::{InteractionError, InteractionResult};
use crate::domain::action::{Action, ActionType, OnExecutionError};
use crate::domain::id::new_id;
use crate::domain::identity::user::{email_key, NewUserInput, User, UserPatch};
use crate::domain::interaction::Identifier;
use crate::script::ScriptRunner;
use crate::storage::identity::{Key, Kind};
use crate::storage::{ActionRun, Store, StoreError};
use serde_json::{json, Map, Value};

/// The function an action's script defines.
pub const ENTRY: &str = "runAction";

/// The user fields an action's `updateUser` may set (those of `PATCH /api/users/:userId`).
const USER_FIELDS: [&str; 7] = [
    "username",
    "primaryEmail",
    "primaryPhone",
    "name",
    "avatar",
    "customData",
    "profile",
];

/// The stored action of a type, if any.
pub async fn load(store: &dyn Store, t: ActionType) -> Result<Option<Action>, StoreError> {
    let Some(text) = store.action(t.name()).await? else {
        return Ok(None);
    };
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| StoreError::Corrupt(format!("stored action {}: {e}", t.name())))
}

/// What the `PostSignIn` action asks for the user who just signed in: a change to apply with
/// the sign-in, if any. No action (or a disabled one) asks nothing. A throw, a timeout or an
/// answer that is not `undefined`/`null` or `{action: "updateUser", user: {…}}` with valid
/// fields fails the sign-in with its `onExecutionError` `block` (the default), and is passed
/// over with `allow`.
pub async fn post_sign_in(
    store: &dyn Store,
    scripts: &ScriptRunner,
    user: &User,
) -> InteractionResult<Option<UserPatch>> {
    let t = ActionType::PostSignIn;
    let Some(action) = load(store, t).await?.filter(|a| a.enabled) else {
        return Ok(None);
    };
    let event = json!({"key": "PostSignIn", "interactionEvent": "SignIn", "user": user});
    // A change that would take another user's username, email or phone is an invalid answer,
    // under the action's policy like any other (checked again when it commits).
    let read = async |answer| {
        let patch = read_update(answer)?;
        if let Some(p) = &patch {
            keys_free(store, &p.apply(user.clone(), 0)).await?;
        }
        Ok(patch)
    };
    match run(store, scripts, t, &action, event, &[], read).await {
        Ok(patch) => Ok(patch),
        Err(e) => on_error(t, &action, e).map(|()| None),
    }
}

/// What the `PostFirstFactorVerification` action vouched for: the password is right, and the
/// user is to be created, or updated, and signed in.
#[derive(Debug)]
pub enum Migration {
    /// A user the legacy store knows and hookline does not.
    Create(User),
    /// A change to the user the identifier names (possibly none).
    Update(UserPatch),
}

/// Runs the `PostFirstFactorVerification` action after a password sign-in failed the local
/// check: `user` is the user the identifier names, if any. It may answer `{action:
/// "createUser" | "updateUser", user: {…}, passwordVerified: true}` (lazy migration from a
/// legacy store); `createUser` only when no user has the identifier, `updateUser` only when one
/// does. A created user carries the identifier (filled in when the answer leaves it out;
/// another value is an invalid answer). Anything without `passwordVerified: true` verifies
/// nothing: the sign-in fails as it would have. Errors follow the action's
/// `onExecutionError`, as in [`post_sign_in`].
pub async fn post_first_factor(
    store: &dyn Store,
    scripts: &ScriptRunner,
    identifier: &Identifier,
    user: Option<&User>,
    password: &str,
    now: i64,
) -> InteractionResult<Option<Migration>> {
    let t = ActionType::PostFirstFactorVerification;
    let Some(action) = load(store, t).await?.filter(|a| a.enabled) else {
        return Ok(None);
    };
    let event = json!({
        "key": "PostFirstFactorVerification",
        "interactionEvent": "SignIn",
        "verificationType": "Password",
        "identifier": {"type": identifier.kind(), "value": identifier.value()},
        "user": user.map(|u| json!({
            "id": u.id, "username": u.username, "primaryEmail": u.primary_email,
            "primaryPhone": u.primary_phone, "name": u.name, "avatar": u.avatar,
            "customData": u.custom_data, "profile": u.profile,
        })),
        "password": password,
    });
    let read = async |answer| {
        let migration = read_migration(answer, identifier, user.is_some(), now)?;
        match (&migration, user) {
            (Some(Migration::Create(created)), _) => keys_free(store, created).await?,
            (Some(Migration::Update(p)), Some(u)) => {
                keys_free(store, &p.apply(u.clone(), now)).await?
            }
            _ => {}
        }
        Ok(migration)
    };
    match run(store, scripts, t, &action, event, &[password], read).await {
        Ok(m) => Ok(m),
        Err(e) => on_error(t, &action, e).map(|()| None),
    }
}

/// An error when `user`'s username, email or phone is another user's (read outside the
/// sign-in's transaction, which checks again: a key taken in between fails the sign-in).
async fn keys_free(store: &dyn Store, user: &User) -> Result<(), String> {
    let email = user.primary_email.as_deref().map(email_key);
    for (key, value, what) in [
        (Key::Username, user.username.as_deref(), "username"),
        (Key::Email, email.as_deref(), "primaryEmail"),
        (Key::Phone, user.primary_phone.as_deref(), "primaryPhone"),
    ] {
        let Some(value) = value else { continue };
        let holder = store
            .find_with_credential(Kind::User, key, value)
            .await
            .map_err(|e| format!("checking the user's {what}: {e}"))?;
        if holder.is_some_and(|(doc, _)| doc.get("id").and_then(Value::as_str) != Some(&user.id)) {
            return Err(format!("the action's user {what} is another user's"));
        }
    }
    Ok(())
}

/// A first-factor answer: `None` when it verifies nothing.
fn read_migration(
    answer: Value,
    identifier: &Identifier,
    exists: bool,
    now: i64,
) -> Result<Option<Migration>, String> {
    let obj = match answer {
        Value::Null => return Ok(None),
        Value::Object(obj) => obj,
        other => return Err(format!("the action answered {other}, not an object")),
    };
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "action" | "user" | "passwordVerified"))
    {
        return Err(format!("the action's answer has an unknown field {k}"));
    }
    let verified = match obj.get("passwordVerified") {
        None | Some(Value::Bool(false)) => false,
        Some(Value::Bool(true)) => true,
        Some(_) => return Err("passwordVerified must be a boolean".into()),
    };
    let user = match obj.get("user") {
        None => Map::new(),
        Some(Value::Object(u)) => u.clone(),
        Some(_) => return Err("the action's user must be an object".into()),
    };
    if let Some(k) = user.keys().find(|k| !USER_FIELDS.contains(&k.as_str())) {
        return Err(format!("the action may not set the user's {k}"));
    }
    let action = obj.get("action").and_then(Value::as_str);
    match (action, exists) {
        (Some("createUser"), false) => {}
        (Some("updateUser"), true) => {}
        (Some("createUser"), true) => {
            return Err("createUser for an identifier that already has a user".into())
        }
        (Some("updateUser"), false) => {
            return Err("updateUser for an identifier that has no user".into())
        }
        _ => {
            return Err(
                "the action's answer must have action: \"createUser\" or \"updateUser\"".into(),
            )
        }
    }
    if !verified {
        return Ok(None);
    }
    if exists {
        return read_update(json!({"action": "updateUser", "user": user}))
            .map(|p| Some(Migration::Update(p.unwrap_or_default())));
    }
    let mut input: NewUserInput = serde_json::from_value(Value::Object(user))
        .map_err(|e| format!("the action's user is invalid: {e}"))?;
    // The created user carries the identifier it signed in with.
    match identifier {
        Identifier::Username(u) => match &input.username {
            None => input.username = Some(u.clone()),
            Some(given) if given == u => {}
            Some(_) => return Err("the created user's username is not the identifier".into()),
        },
        Identifier::Email(e) => match &input.primary_email {
            None => input.primary_email = Some(e.clone()),
            Some(given) if email_key(given) == *e => {}
            Some(_) => return Err("the created user's primaryEmail is not the identifier".into()),
        },
    }
    let created = input
        .parse(new_id(), now)
        .map_err(|e| format!("the action's user is invalid: {e}"))?;
    Ok(Some(Migration::Create(created.user)))
}

/// Runs `action` with `event`, reads its answer with `read`, and logs the run
/// (`Store::record_action_run`: the answer, and the error of the run or of its reading), with
/// every environment variable's value and `secrets` (the password a first factor carries)
/// taken out of what is logged. What it read, or what went wrong, for the end user to read.
async fn run<T>(
    store: &dyn Store,
    scripts: &ScriptRunner,
    t: ActionType,
    action: &Action,
    event: Value,
    secrets: &[&str],
    read: impl AsyncFnOnce(Value) -> Result<T, String>,
) -> Result<T, RunFailure> {
    let variables = action
        .environment_variables
        .clone()
        .map_or(Value::Object(Map::new()), Value::Object);
    let mut hidden: Vec<&str> = secrets.to_vec();
    if let Value::Object(vars) = &variables {
        hidden.extend(vars.values().filter_map(Value::as_str));
    }
    let input = json!({"event": event, "environmentVariables": variables});
    let (answer, logs, duration) = match scripts.run(&action.script, ENTRY, input).await {
        Ok(report) => (
            report.outcome.map_err(|e| e.to_string()),
            report.console,
            report.duration,
        ),
        Err(crate::script::Busy) => (Err(BUSY.to_owned()), Vec::new(), std::time::Duration::ZERO),
    };
    let result = answer
        .as_ref()
        .ok()
        .map(|v| bounded(redact(&v.to_string(), &hidden)));
    let read = match answer {
        Ok(value) => read(value).await,
        Err(e) => Err(e),
    };
    let logged = ActionRun {
        id: new_id(),
        action_type: t.name().to_owned(),
        success: read.is_ok(),
        result,
        error: read.as_ref().err().map(|e| bounded(redact(e, &hidden))),
        logs: Value::from(logs.iter().map(|l| redact(l, &hidden)).collect::<Vec<_>>()).to_string(),
        duration_ms: duration.as_millis() as i64,
        created_at: crate::clock::now_ms(),
    };
    if let Err(e) = store.record_action_run(&logged).await {
        tracing::warn!(error = %e, action = t.name(), "logging an action's run failed");
    }
    // What goes on (into hookline's log, into the answer) has the secrets taken out too.
    read.map_err(|e| {
        if e == BUSY {
            RunFailure::Busy
        } else {
            RunFailure::Failed(bounded(redact(&e, &hidden)))
        }
    })
}

/// What a run that came to nothing says, for the end user to read.
#[derive(Debug)]
enum RunFailure {
    /// No run slot came free (`--action-concurrency`): no script ran.
    Busy,
    /// The script threw, ran out of time or memory, or answered something invalid; the
    /// message has the action's secrets taken out.
    Failed(String),
}

/// The error a run that never started is logged with.
const BUSY: &str = "no script run slot came free within the run's timeout";

/// `text` with every secret (of three characters or more) replaced, the longest first (so
/// that one inside another does not leave the rest of the other behind).
fn redact(text: &str, secrets: &[&str]) -> String {
    let mut out = text.to_owned();
    let mut secrets: Vec<&str> = secrets.to_vec();
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
    let secrets: Vec<&str> = secrets.into_iter().filter(|s| s.len() >= 3).collect();
    for s in &secrets {
        if out.contains(s) {
            out = out.replace(s, "[redacted]");
        }
    }
    // A console line cut in the middle of a secret ends with the secret's first part: that
    // goes too.
    if let Some(body) = out.strip_suffix(crate::script::CUT_MARK) {
        let tail = secrets
            .iter()
            .filter_map(|s| {
                (1..s.len())
                    .rev()
                    .filter(|&k| s.is_char_boundary(k))
                    .find(|&k| body.ends_with(&s[..k]))
                    .map(|k| body.len() - k)
            })
            .min();
        if let Some(start) = tail {
            out = format!("{}[redacted]{}", &body[..start], crate::script::CUT_MARK);
        }
    }
    out
}

/// The longest result or error a run's log keeps, in bytes.
const MAX_LOGGED_BYTES: usize = 16 * 1024;

fn bounded(mut text: String) -> String {
    if text.len() > MAX_LOGGED_BYTES {
        let mut end = MAX_LOGGED_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("… (truncated)");
    }
    text
}

/// An answer's user change: `undefined`/`null` is none; `{action: "updateUser", user}` is one
/// with `user` checked as a `PATCH /api/users/:userId` body is.
fn read_update(answer: Value) -> Result<Option<UserPatch>, String> {
    let obj = match answer {
        Value::Null => return Ok(None),
        Value::Object(obj) => obj,
        other => return Err(format!("the action answered {other}, not an object")),
    };
    match obj.get("action") {
        Some(Value::String(a)) if a == "updateUser" => {}
        _ => return Err("the action's answer must have action: \"updateUser\"".into()),
    }
    if let Some(k) = obj
        .keys()
        .find(|k| !matches!(k.as_str(), "action" | "user"))
    {
        return Err(format!("the action's answer has an unknown field {k}"));
    }
    let Some(Value::Object(user)) = obj.get("user") else {
        return Err("the action's answer must have a user object".into());
    };
    if let Some(k) = user.keys().find(|k| !USER_FIELDS.contains(&k.as_str())) {
        return Err(format!("the action may not set the user's {k}"));
    }
    let patch: UserPatch = serde_json::from_value(Value::Object(user.clone()))
        .map_err(|e| format!("the action's user is invalid: {e}"))?;
    let patch = patch.normalized();
    patch
        .check()
        .map_err(|e| format!("the action's user is invalid: {e}"))?;
    Ok(Some(patch))
}

/// A failed run under the action's policy: `block` fails the interaction, `allow` goes on.
/// A run that never started (no slot came free) is 503 whatever the policy.
fn on_error(t: ActionType, action: &Action, failure: RunFailure) -> InteractionResult<()> {
    let error = match failure {
        RunFailure::Busy => return Err(InteractionError::ScriptsBusy),
        RunFailure::Failed(e) => e,
    };
    match action.on_execution_error {
        OnExecutionError::Block => {
            tracing::info!(action = t.name(), error = %error, "an action failed; the sign-in is refused (onExecutionError: block)");
            Err(InteractionError::ActionFailed(error))
        }
        OnExecutionError::Allow => {
            tracing::info!(action = t.name(), error = %error, "an action failed; the sign-in goes on (onExecutionError: allow)");
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_taken_out_also_where_the_console_was_cut() {
        let secrets = ["hunter22", "abc"];
        assert_eq!(
            redact("pw hunter22 abc", &secrets),
            "pw [redacted] [redacted]"
        );
        let cut = format!("the password is hun{}", crate::script::CUT_MARK);
        assert_eq!(
            redact(&cut, &secrets),
            format!("the password is [redacted]{}", crate::script::CUT_MARK)
        );
        // Only a cut line loses its tail.
        assert_eq!(redact("ends with hun", &secrets), "ends with hun");
    }

    #[test]
    fn answers_are_read_as_logto_defines_them() {
        assert!(read_update(Value::Null).unwrap().is_none());
        let p = read_update(
            json!({"action": "updateUser", "user": {"customData": {"a": 1}, "name": ""}}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.custom_data.unwrap()["a"], 1);
        assert_eq!(p.name, Some(None), "\"\" clears, as PATCH /users does");
        for bad in [
            json!(1),
            json!({"action": "deleteUser", "user": {}}),
            json!({"action": "updateUser"}),
            json!({"action": "updateUser", "user": {"id": "other"}}),
            json!({"action": "updateUser", "user": {"primaryEmail": "not an email"}}),
            json!({"action": "updateUser", "user": {}, "extra": 1}),
        ] {
            assert!(read_update(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn first_factor_answers_vouch_only_for_what_they_may() {
        let email = Identifier::Email("ann@example.com".into());
        let create = |user: Value, verified: Value| json!({"action": "createUser", "user": user, "passwordVerified": verified});
        // Created with the identifier filled in.
        match read_migration(
            create(json!({"name": "Ann"}), json!(true)),
            &email,
            false,
            1,
        ) {
            Ok(Some(Migration::Create(u))) => {
                assert_eq!(u.primary_email.as_deref(), Some("ann@example.com"));
                assert_eq!(u.name.as_deref(), Some("Ann"));
            }
            other => panic!("{other:?}"),
        }
        // Not verified: nothing vouched for.
        assert!(
            read_migration(create(json!({}), json!(false)), &email, false, 1)
                .unwrap()
                .is_none()
        );
        assert!(read_migration(Value::Null, &email, false, 1)
            .unwrap()
            .is_none());
        for (answer, exists) in [
            (
                create(json!({"primaryEmail": "other@example.com"}), json!(true)),
                false,
            ),
            (create(json!({}), json!(true)), true),
            (
                json!({"action": "updateUser", "user": {}, "passwordVerified": true}),
                false,
            ),
            (create(json!({"password": "x"}), json!(true)), false),
            (create(json!({}), json!("yes")), false),
            (
                json!({"action": "createUser", "passwordVerified": true, "extra": 1}),
                false,
            ),
        ] {
            assert!(
                read_migration(answer.clone(), &email, exists, 1).is_err(),
                "{answer}"
            );
        }
    }
}
