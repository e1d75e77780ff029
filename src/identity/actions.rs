//! Logto's Actions at their points of sign-in (issue 16; spec "Actions"): which action runs,
//! with what event, and what its answer means. The interactions (`super::interactions`) call
//! these and apply what they return inside their own transaction.

use super::interactions::{InteractionError, InteractionResult};
use crate::domain::action::{Action, ActionType, OnExecutionError};
use crate::domain::identity::user::{User, UserPatch};
use crate::script::ScriptRunner;
use crate::storage::{Store, StoreError};
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
    let answer = run(scripts, &action, event).await;
    match answer.and_then(read_update) {
        Ok(patch) => Ok(patch),
        Err(e) => on_error(t, &action, e).map(|()| None),
    }
}

/// Runs `action` with `event`; its answer, or what went wrong, for the end user to read.
async fn run(scripts: &ScriptRunner, action: &Action, event: Value) -> Result<Value, String> {
    let variables = action
        .environment_variables
        .clone()
        .map_or(Value::Object(Map::new()), Value::Object);
    let input = json!({"event": event, "environmentVariables": variables});
    let report = scripts
        .run(&action.script, ENTRY, input)
        .await
        .map_err(|e| e.to_string())?;
    report.outcome.map_err(|e| e.to_string())
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
fn on_error(t: ActionType, action: &Action, error: String) -> InteractionResult<()> {
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
}
