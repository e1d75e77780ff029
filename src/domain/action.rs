//! Logto's Actions (issue 16; `../shared/spec/logto-compat.md`, "Actions"): JavaScript an
//! administrator sets for a point of sign-in, configured under `/api/configs/actions`. This
//! module has the types and the parsing of request bodies; running them is `crate::script`'s.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The points of sign-in an action runs at, as Logto names them in its routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ActionType {
    /// After a password sign-in failed the local check (unknown identifier, wrong password):
    /// may create or update the user from a legacy store (lazy migration).
    PostFirstFactorVerification,
    /// After a successful sign-in: may update the user.
    PostSignIn,
}

impl ActionType {
    pub const ALL: [ActionType; 2] = [Self::PostFirstFactorVerification, Self::PostSignIn];

    /// The name in routes and listings: `action.postFirstFactorVerification`, `action.postSignIn`.
    pub fn name(self) -> &'static str {
        match self {
            Self::PostFirstFactorVerification => "action.postFirstFactorVerification",
            Self::PostSignIn => "action.postSignIn",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// What a throw, a timeout or an invalid result of the script means for the sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnExecutionError {
    /// The sign-in fails (Logto's default).
    #[default]
    Block,
    /// The sign-in goes on as if the action had answered nothing.
    Allow,
}

/// An action: `{script, environmentVariables?, contextSample?, enabled, onExecutionError}`,
/// in that key order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Action {
    /// Defines `const runAction = async ({ event, environmentVariables }) => { … }`.
    pub script: String,
    /// Handed to the script; secrets belong here, never in the script. Never logged.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub environment_variables: Option<Map<String, Value>>,
    /// An example event for the console's dry run; stored as given.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub context_sample: Option<Value>,
    #[serde(default = "enabled_by_default")]
    pub enabled: bool,
    #[serde(default)]
    pub on_execution_error: OnExecutionError,
}

fn enabled_by_default() -> bool {
    true
}

/// The longest script, in bytes.
pub const MAX_SCRIPT_BYTES: usize = 64 * 1024;
/// The most environment variables, and the longest value of one, in bytes.
pub const MAX_VARIABLES: usize = 100;
pub const MAX_VARIABLE_BYTES: usize = 4 * 1024;
/// The largest `contextSample`, as JSON, in bytes.
pub const MAX_SAMPLE_BYTES: usize = 16 * 1024;

/// Why a body is not an action; the message is the client's to read (400
/// `guard.invalid_input`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ActionInputError(pub String);

fn invalid(m: impl Into<String>) -> ActionInputError {
    ActionInputError(m.into())
}

impl Action {
    /// Parses a `PUT` body: `script` is required, every other field optional, unknown fields
    /// refused (a field the server would ignore is an error, not a silent no-op).
    pub fn parse_put(body: Value) -> Result<Self, ActionInputError> {
        let Value::Object(obj) = body else {
            return Err(invalid("the body must be an object"));
        };
        if !obj.contains_key("script") {
            return Err(invalid("script is required"));
        }
        let mut action = Action {
            script: String::new(),
            environment_variables: None,
            context_sample: None,
            enabled: true,
            on_execution_error: OnExecutionError::Block,
        };
        action.apply(obj)?;
        Ok(action)
    }

    /// Applies a `PATCH` body to this action: the fields it names change.
    pub fn patch(&self, body: Value) -> Result<Self, ActionInputError> {
        let Value::Object(obj) = body else {
            return Err(invalid("the body must be an object"));
        };
        let mut action = self.clone();
        action.apply(obj)?;
        Ok(action)
    }

    fn apply(&mut self, obj: Map<String, Value>) -> Result<(), ActionInputError> {
        for (key, value) in obj {
            match key.as_str() {
                "script" => match value {
                    Value::String(s) if s.len() <= MAX_SCRIPT_BYTES && !s.trim().is_empty() => {
                        self.script = s
                    }
                    _ => {
                        return Err(invalid(format!(
                            "script must be a non-empty string of at most {MAX_SCRIPT_BYTES} bytes"
                        )))
                    }
                },
                "environmentVariables" => {
                    self.environment_variables = match value {
                        Value::Null => None,
                        Value::Object(vars) => Some(check_variables(vars)?),
                        _ => {
                            return Err(invalid(
                                "environmentVariables must be an object of strings",
                            ))
                        }
                    }
                }
                "contextSample" => {
                    if value.to_string().len() > MAX_SAMPLE_BYTES {
                        return Err(invalid(format!(
                            "contextSample must be at most {MAX_SAMPLE_BYTES} bytes of JSON"
                        )));
                    }
                    self.context_sample = (!value.is_null()).then_some(value);
                }
                "enabled" => match value {
                    Value::Bool(b) => self.enabled = b,
                    _ => return Err(invalid("enabled must be a boolean")),
                },
                "onExecutionError" => {
                    self.on_execution_error = serde_json::from_value(value)
                        .map_err(|_| invalid("onExecutionError must be \"block\" or \"allow\""))?
                }
                other => return Err(invalid(format!("unknown field {other}"))),
            }
        }
        Ok(())
    }
}

/// Environment variables: at most [`MAX_VARIABLES`], names of letters, digits and `_`, values
/// strings of at most [`MAX_VARIABLE_BYTES`] (also the dry run's).
pub fn check_variables(vars: Map<String, Value>) -> Result<Map<String, Value>, ActionInputError> {
    if vars.len() > MAX_VARIABLES {
        return Err(invalid(format!(
            "environmentVariables may hold at most {MAX_VARIABLES} variables"
        )));
    }
    for (name, value) in &vars {
        let good_name = !name.is_empty()
            && name.len() <= 128
            && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !good_name {
            return Err(invalid(format!(
                "environment variable names are letters, digits and _ (got {:?})",
                name.chars().take(64).collect::<String>()
            )));
        }
        match value {
            Value::String(s) if s.len() <= MAX_VARIABLE_BYTES => {}
            _ => {
                return Err(invalid(format!(
                    "environment variable {name} must be a string of at most {MAX_VARIABLE_BYTES} bytes"
                )))
            }
        }
    }
    Ok(vars)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn types_have_logtos_names() {
        for t in ActionType::ALL {
            assert_eq!(ActionType::parse(t.name()), Some(t));
        }
        assert_eq!(ActionType::parse("postSignIn"), None);
    }

    #[test]
    fn a_put_body_becomes_an_action_with_logtos_defaults() {
        let a = Action::parse_put(json!({"script": "const runAction = () => {};"})).unwrap();
        assert!(a.enabled);
        assert_eq!(a.on_execution_error, OnExecutionError::Block);
        assert_eq!(
            serde_json::to_value(&a).unwrap(),
            json!({"script": "const runAction = () => {};", "enabled": true,
                "onExecutionError": "block"})
        );
        let full = json!({"script": "x", "environmentVariables": {"API_KEY": "k"},
            "contextSample": {"event": {}}, "enabled": false, "onExecutionError": "allow"});
        let a = Action::parse_put(full.clone()).unwrap();
        assert_eq!(serde_json::to_value(&a).unwrap(), full);
        // PATCH changes what it names.
        let b = a
            .patch(json!({"enabled": true, "environmentVariables": null}))
            .unwrap();
        assert!(b.enabled && b.environment_variables.is_none() && b.script == "x");
    }

    #[test]
    fn bad_bodies_are_refused() {
        for bad in [
            json!([]),
            json!({}),
            json!({"script": ""}),
            json!({"script": 1}),
            json!({"script": "x", "extra": 1}),
            json!({"script": "x", "enabled": "yes"}),
            json!({"script": "x", "onExecutionError": "ignore"}),
            json!({"script": "x", "environmentVariables": {"A": 1}}),
            json!({"script": "x", "environmentVariables": {"A-B": "v"}}),
            json!({"script": "x".repeat(MAX_SCRIPT_BYTES + 1)}),
        ] {
            assert!(Action::parse_put(bad.clone()).is_err(), "{bad}");
        }
    }
}
