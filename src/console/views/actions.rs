//! Logto's Actions: both types, one action's form with its dry run and recent runs, and the
//! delete confirmation.

use super::{layout, when, Section};
use crate::console::session::Session;
use crate::domain::action::{Action, ActionType, OnExecutionError};
use crate::storage::ActionRun;
use maud::{html, Markup};
use serde_json::{json, Map, Value};

/// What an action type is for, in a sentence.
fn purpose(t: ActionType) -> &'static str {
    match t {
        ActionType::PostFirstFactorVerification => {
            "Runs when a password sign-in fails hookline's own check (unknown identifier or wrong password): it may create or update the user from a legacy store (lazy migration)."
        }
        ActionType::PostSignIn => {
            "Runs after each successful sign-in: it may update the user."
        }
    }
}

/// The script a new action starts from.
fn starter(t: ActionType) -> &'static str {
    match t {
        ActionType::PostFirstFactorVerification => {
            "const runAction = async ({ event, environmentVariables }) => {\n  // event.identifier: { type, value }; event.password; event.user (or null)\n  // Answer { action: \"createUser\" | \"updateUser\", user: { … }, passwordVerified: true },\n  // or nothing to leave the sign-in failed.\n  console.log(\"sign-in attempt for\", event.identifier.value);\n};\n"
        }
        ActionType::PostSignIn => {
            "const runAction = async ({ event, environmentVariables }) => {\n  // event.user is the signed-in user. Answer { action: \"updateUser\", user: { … } },\n  // or nothing to change nothing.\n  console.log(\"signed in:\", event.user.id);\n};\n"
        }
    }
}

/// The sample event a new action's dry run starts from (shaped as the real one).
fn sample(t: ActionType) -> Value {
    let user = json!({"id": "sample-user", "username": "alice",
        "primaryEmail": "alice@example.com", "primaryPhone": null, "name": "Alice",
        "avatar": null, "customData": {}, "profile": {}});
    match t {
        ActionType::PostFirstFactorVerification => json!({
            "key": "PostFirstFactorVerification", "interactionEvent": "SignIn",
            "verificationType": "Password",
            "identifier": {"type": "username", "value": "alice"},
            "user": null, "password": "legacy-password"
        }),
        ActionType::PostSignIn => {
            json!({"key": "PostSignIn", "interactionEvent": "SignIn", "user": user})
        }
    }
}

/// Both action types: set or not, enabled, policy.
pub fn actions(session: &Session, actions: &[(ActionType, Option<Action>)]) -> Markup {
    layout(
        "Actions",
        Some((session, Section::Actions)),
        html! {
            h1 { "Actions" }
            p.muted { "JavaScript run at points of sign-in, as Logto's Actions are (" code { "/api/configs/actions" } ")." }
            @for (t, action) in actions {
                section.card.wide aria-label=(t.name()) {
                    h2 { a href={ "/console/actions/" (t.name()) } { (t.name()) } }
                    p { (purpose(*t)) }
                    @match action {
                        None => p.muted { "Not set. " a href={ "/console/actions/" (t.name()) } { "Set it up" } },
                        Some(a) => p {
                            @if a.enabled { span.ok { "Enabled" } } @else { span.bad { "Disabled" } }
                            " · on an error: " (policy(a.on_execution_error))
                            " · " (a.environment_variables.as_ref().map_or(0, Map::len)) " environment variable(s)"
                        },
                    }
                }
            }
        },
    )
}

fn policy(p: OnExecutionError) -> &'static str {
    match p {
        OnExecutionError::Block => "the sign-in fails (block)",
        OnExecutionError::Allow => "the sign-in goes on (allow)",
    }
}

/// The action form, as typed or as stored.
#[derive(Debug, Default, Clone)]
pub struct ActionForm {
    pub csrf: String,
    /// `save` or `test`: the button pressed.
    pub intent: String,
    pub script: String,
    /// One `NAME=value` a line.
    pub variables: String,
    /// The sample event, JSON.
    pub sample: String,
    pub enabled: bool,
    /// `block` or `allow`.
    pub on_execution_error: String,
}

impl ActionForm {
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut f = ActionForm::default();
        for (k, v) in pairs {
            match k.as_str() {
                "csrf" => f.csrf = v.clone(),
                "intent" => f.intent = v.clone(),
                "script" => f.script = v.clone(),
                "variables" => f.variables = v.clone(),
                "sample" => f.sample = v.clone(),
                "enabled" => f.enabled = v == "true",
                "onExecutionError" => f.on_execution_error = v.clone(),
                _ => {}
            }
        }
        f
    }

    /// The form of the stored action of type `t`, or a starter one.
    pub fn of(t: ActionType, action: Option<&Action>) -> Self {
        let Some(a) = action else {
            return ActionForm {
                script: starter(t).to_owned(),
                sample: serde_json::to_string_pretty(&sample(t)).unwrap_or_default(),
                enabled: true,
                on_execution_error: "block".into(),
                ..Default::default()
            };
        };
        ActionForm {
            script: a.script.clone(),
            variables: a
                .environment_variables
                .iter()
                .flatten()
                .map(|(k, v)| format!("{k}={}\n", v.as_str().unwrap_or_default()))
                .collect(),
            sample: a
                .context_sample
                .as_ref()
                .map_or_else(|| sample(t), Clone::clone)
                .to_string(),
            enabled: a.enabled,
            on_execution_error: match a.on_execution_error {
                OnExecutionError::Block => "block".into(),
                OnExecutionError::Allow => "allow".into(),
            },
            ..Default::default()
        }
        .pretty_sample()
    }

    fn pretty_sample(mut self) -> Self {
        if let Ok(v) = serde_json::from_str::<Value>(&self.sample) {
            self.sample = serde_json::to_string_pretty(&v).unwrap_or(self.sample);
        }
        self
    }

    /// The variables as the API's object; an error names a line without `=`.
    fn variables(&self) -> Result<Value, String> {
        let mut vars = Map::new();
        for line in self.variables.lines().filter(|l| !l.trim().is_empty()) {
            let Some((name, value)) = line.split_once('=') else {
                return Err(format!(
                    "Each environment variable is a line `NAME=value`; this one is not: {}",
                    line.trim()
                ));
            };
            vars.insert(name.trim().to_owned(), json!(value.trim()));
        }
        Ok(if vars.is_empty() {
            Value::Null
        } else {
            Value::Object(vars)
        })
    }

    /// The sample event; an empty field is none.
    fn sample(&self) -> Result<Value, String> {
        if self.sample.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&self.sample).map_err(|e| format!("The sample event is not JSON: {e}"))
    }

    /// The API's `PUT` body for this form.
    pub fn to_put_body(&self) -> Result<Value, String> {
        Ok(json!({
            "script": self.script,
            "environmentVariables": self.variables()?,
            "contextSample": self.sample()?,
            "enabled": self.enabled,
            "onExecutionError": self.on_execution_error,
        }))
    }

    /// The API's dry-run body for this form: what is typed, with the sample as the event.
    pub fn to_test_body(&self, t: ActionType) -> Result<Value, String> {
        let event = match self.sample()? {
            Value::Null => json!({}),
            e @ Value::Object(_) => e,
            _ => return Err("The sample event must be a JSON object.".into()),
        };
        Ok(json!({
            "script": self.script,
            "actionType": t.name(),
            "event": event,
            "environmentVariables": self.variables()?,
        }))
    }
}

/// What an action's page shows.
pub struct ActionPage<'a> {
    pub action_type: ActionType,
    /// Whether the type has a stored action (else the form holds a starter one).
    pub exists: bool,
    pub form: &'a ActionForm,
    /// The newest runs at sign-in.
    pub runs: &'a [ActionRun],
    pub notice: Option<&'a str>,
    pub error: Option<&'a str>,
    /// The dry run's answer: `{result | error, logs, durationMs}`.
    pub dry_run: Option<&'a Value>,
}

/// One action: its form (save, or dry-run what is typed), the dry run's answer, its runs.
pub fn action(session: &Session, page: &ActionPage) -> Markup {
    let t = page.action_type;
    let form = page.form;
    layout(
        t.name(),
        Some((session, Section::Actions)),
        html! {
            h1 { (t.name()) }
            p { (purpose(t)) }
            @if let Some(n) = page.notice { p.notice role="status" { (n) } }
            @if let Some(e) = page.error { p.error role="alert" { (e) } }
            @if !page.exists { p.muted { "Not set yet: this is a starting point. Nothing runs at sign-in until it is saved." } }
            // The fragment brings a test run's answer into view.
            form.card.wide method="post" action={ "/console/actions/" (t.name()) "#test-run" } {
                input type="hidden" name="csrf" value=(session.csrf);
                label for="script" { "Script (defines " code { "runAction" } ")" }
                textarea #script name="script" rows="14" spellcheck="false" required { (form.script) }
                label for="variables" { "Environment variables (one " code { "NAME=value" } " a line; the script reads them as " code { "environmentVariables" } "; shown as stored, and redacted from the runs' logs)" }
                textarea #variables name="variables" rows="3" spellcheck="false" { (form.variables) }
                label for="sample" { "Sample event for the test run (JSON)" }
                textarea #sample name="sample" rows="8" spellcheck="false" { (form.sample) }
                label.check {
                    input type="checkbox" name="enabled" value="true" checked[form.enabled];
                    " Enabled (runs at sign-in)"
                }
                label for="onExecutionError" { "When the script throws, times out or answers something invalid" }
                select #onExecutionError name="onExecutionError" {
                    option value="block" selected[form.on_execution_error == "block"] { "the sign-in fails (block)" }
                    option value="allow" selected[form.on_execution_error == "allow"] { "the sign-in goes on (allow)" }
                }
                div.row {
                    button type="submit" name="intent" value="save" { "Save" }
                    button type="submit" name="intent" value="test" { "Run test" }
                    @if page.exists { a.button.danger href={ "/console/actions/" (t.name()) "/delete" } { "Delete…" } }
                }
            }
            @if let Some(run) = page.dry_run {
                section #test-run aria-label="Test run" {
                    h2 { "Test run" }
                    p.muted { "The script as typed, run once with the sample event; nothing it answered was applied." }
                    (run_report(run.get("result"), run.get("error").and_then(Value::as_str), run.get("logs"), run.get("durationMs").and_then(Value::as_i64)))
                }
            }
            h2 { "Recent runs at sign-in" }
            @if page.runs.is_empty() { p.muted { "None yet." } }
            @for r in page.runs {
                @let result = r.result.as_deref().and_then(|s| serde_json::from_str::<Value>(s).ok());
                @let logs = serde_json::from_str::<Value>(&r.logs).ok();
                details.attempt {
                    summary {
                        @if r.success { span.ok { "success" } } @else { span.bad { "failure" } }
                        " · " (r.duration_ms) " ms · " (when(r.created_at))
                    }
                    (run_report(result.as_ref(), r.error.as_deref(), logs.as_ref(), Some(r.duration_ms)))
                }
            }
        },
    )
}

/// A run's answer or error, and its console output.
fn run_report(
    result: Option<&Value>,
    error: Option<&str>,
    logs: Option<&Value>,
    duration_ms: Option<i64>,
) -> Markup {
    let lines: Vec<&str> = logs
        .and_then(Value::as_array)
        .map(|l| l.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    html! {
        @if let Some(e) = error { p.error { "Error: " (e) } }
        @else {
            p { "Answer" @if let Some(ms) = duration_ms { " (" (ms) " ms)" } ":" }
            pre { (result.map_or_else(|| "null".into(), |r| serde_json::to_string_pretty(r).unwrap_or_default())) }
        }
        p { "Console output:" }
        @if lines.is_empty() { p.muted { "(none)" } } @else { pre { @for l in &lines { (l) "\n" } } }
    }
}

/// Asks before an action is deleted.
pub fn delete_action(session: &Session, t: ActionType) -> Markup {
    layout(
        "Delete action",
        Some((session, Section::Actions)),
        html! {
            h1 { "Delete " (t.name()) "?" }
            p { "Sign-ins go on without it. Its log of runs is kept." }
            form.row method="post" action={ "/console/actions/" (t.name()) "/delete" } {
                input type="hidden" name="csrf" value=(session.csrf);
                button.danger type="submit" { "Delete the action" }
                a href={ "/console/actions/" (t.name()) } { "Keep it" }
            }
        },
    )
}
