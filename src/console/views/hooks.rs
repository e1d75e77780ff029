//! The hooks list, the hook form, one hook, and the delete confirmation.

use super::{layout, Section};
use crate::console::session::Session;
use crate::domain::event::HookEvent;
use crate::domain::hook::{Hook, HookInput};
use crate::storage::ExecutionStats;
use maud::{html, Markup};
use serde_json::json;
use std::collections::HashMap;

/// What the new-hook form holds, as typed (shown again with an error).
#[derive(Debug, Default)]
pub struct HookForm {
    pub csrf: String,
    pub name: String,
    pub url: String,
    pub events: Vec<String>,
    /// One `Name: value` a line.
    pub headers: String,
    /// Per-hook delivery settings, as typed (empty: unset).
    pub max_in_flight: String,
    pub timeout_ms: String,
    pub rate_limit: String,
    /// For blocking events: `deny`, `allow`, or empty (hookline's default, deny).
    pub failure_policy: String,
}

impl HookForm {
    pub fn from_pairs(pairs: &[(String, String)]) -> Self {
        let mut f = HookForm::default();
        for (k, v) in pairs {
            match k.as_str() {
                "csrf" => f.csrf = v.clone(),
                "name" => f.name = v.clone(),
                "url" => f.url = v.clone(),
                "events" => f.events.push(v.clone()),
                "headers" => f.headers = v.clone(),
                "maxInFlight" => f.max_in_flight = v.clone(),
                "timeoutMs" => f.timeout_ms = v.clone(),
                "rateLimit" => f.rate_limit = v.clone(),
                "failurePolicy" => f.failure_policy = v.clone(),
                _ => {}
            }
        }
        f
    }

    /// The form of a stored hook, to edit it.
    pub fn of(hook: &Hook) -> Self {
        let events = hook.subscribed();
        let number = |n: Option<u64>| n.map(|n| n.to_string()).unwrap_or_default();
        HookForm {
            csrf: String::new(),
            name: hook.name.clone(),
            url: hook.config.url.clone().unwrap_or_default(),
            events: events.iter().map(|e| e.name().to_owned()).collect(),
            headers: hook
                .config
                .headers
                .iter()
                .flat_map(|h| h.iter())
                .map(|(k, v)| format!("{k}: {v}\n"))
                .collect(),
            max_in_flight: number(hook.config.max_in_flight.map(u64::from)),
            timeout_ms: number(hook.config.timeout_ms),
            rate_limit: number(hook.config.rate_limit.map(u64::from)),
            failure_policy: hook
                .config
                .failure_policy
                .and_then(|p| serde_json::to_value(p).ok())
                .and_then(|v| v.as_str().map(str::to_owned))
                .unwrap_or_default(),
        }
    }

    /// The API's create body for this form; an error for a header line without a colon.
    pub fn to_input(&self) -> Result<HookInput, String> {
        self.to_input_over(None)
    }

    /// The API's body for this form; `over` is the stored config an edit keeps the fields
    /// of that the form does not show (a transform, ordering, retries, …).
    pub fn to_input_over(
        &self,
        over: Option<&crate::domain::hook::HookConfig>,
    ) -> Result<HookInput, String> {
        let mut headers = serde_json::Map::new();
        for line in self
            .headers
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
        {
            let Some((name, value)) = line.split_once(':') else {
                return Err(format!(
                    "Each header line is `Name: value`; this one is not: {line}"
                ));
            };
            headers.insert(name.trim().to_owned(), json!(value.trim()));
        }
        let mut config = over
            .and_then(|c| serde_json::to_value(c).ok())
            .unwrap_or_else(|| json!({}));
        config["url"] = json!(self.url.trim());
        config["headers"] = if headers.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::Value::Object(headers)
        };
        config["failurePolicy"] = match self.failure_policy.trim() {
            "" => serde_json::Value::Null,
            p => json!(p),
        };
        for (key, typed) in [
            ("maxInFlight", &self.max_in_flight),
            ("timeoutMs", &self.timeout_ms),
            ("rateLimit", &self.rate_limit),
        ] {
            config[key] = match typed.trim() {
                "" => serde_json::Value::Null,
                t => match t.parse::<u64>() {
                    Ok(n) => json!(n),
                    Err(_) => return Err(format!("{key} must be a whole number")),
                },
            };
        }
        if self.events.is_empty() {
            return Err("Choose at least one event.".into());
        }
        serde_json::from_value(
            json!({"name": self.name.trim(), "events": self.events, "config": config}),
        )
        .map_err(|e| e.to_string())
    }
}

/// The form that creates a hook: events grouped as Logto's console groups them.
pub fn new_hook(session: &Session, form: &HookForm, error: Option<&str>) -> Markup {
    layout(
        "New hook",
        Some((session, Section::Hooks)),
        html! {
            h1 { "New hook" }
            @if let Some(e) = error {
                p.error role="alert" { (e) }
            }
            (hook_fields(session, form, "/console/hooks", "Create hook"))
        },
    )
}

/// A hook's form: name, URL, events by group, headers, delivery settings.
fn hook_fields(session: &Session, form: &HookForm, action: &str, submit: &str) -> Markup {
    let mut groups: Vec<(&str, Vec<HookEvent>)> = Vec::new();
    for e in HookEvent::all() {
        match groups.iter_mut().find(|(g, _)| *g == e.group()) {
            Some((_, list)) => list.push(e),
            None => groups.push((e.group(), vec![e])),
        }
    }
    html! {
            form.card.wide method="post" action=(action) {
                input type="hidden" name="csrf" value=(session.csrf);
                label for="name" { "Name" }
                input #name type="text" name="name" value=(form.name) maxlength="256";
                label for="url" { "Endpoint URL" }
                input #url type="url" name="url" value=(form.url) placeholder="https://example.com/webhooks" required;
                fieldset {
                    legend { "Events" }
                    @for (group, events) in &groups {
                        fieldset.group {
                            legend { (group) }
                            @if *group == "Blocking" {
                                p.muted.wide-note { "Called inside registration, sign-in and password reset, which wait for the endpoint's answer " code { "{\"allow\": true|false}" } ": it can deny them. Only for an endpoint built to answer so." }
                            }
                            @for e in events {
                                label.check {
                                    input type="checkbox" name="events" value=(e.name()) checked[form.events.iter().any(|n| n == e.name())];
                                    " " (e.name())
                                }
                            }
                        }
                    }
                }
                label for="failurePolicy" { "When a blocking event's endpoint does not answer as it should (down, too slow, not JSON)" }
                select #failurePolicy name="failurePolicy" {
                    option value="" selected[form.failure_policy.is_empty()] { "deny the interaction (the default)" }
                    option value="deny" selected[form.failure_policy == "deny"] { "deny the interaction" }
                    option value="allow" selected[form.failure_policy == "allow"] { "let the interaction go on" }
                }
                label for="headers" { "Custom headers (one " code { "Name: value" } " a line)" }
                textarea #headers name="headers" rows="3" { (form.headers) }
                fieldset {
                    legend { "Delivery settings (empty: hookline's defaults)" }
                    label for="maxInFlight" { "Requests in flight at once (1 to 10,000)" }
                    input #maxInFlight type="number" name="maxInFlight" min="1" max="10000" value=(form.max_in_flight);
                    label for="timeoutMs" { "Request timeout, ms (100 to 30,000)" }
                    input #timeoutMs type="number" name="timeoutMs" min="100" max="30000" value=(form.timeout_ms);
                    label for="rateLimit" { "Requests a second at most (1 to 100,000)" }
                    input #rateLimit type="number" name="rateLimit" min="1" max="100000" value=(form.rate_limit);
                }
                button type="submit" { (submit) }
            }
    }
}

/// One hook: its state, its signing key (both forms), a test send, enable or disable, delete,
/// and its form.
pub fn hook_page(
    session: &Session,
    hook: &Hook,
    stats: ExecutionStats,
    form: &HookForm,
    notice: Option<&str>,
    error: Option<&str>,
) -> Markup {
    let base = format!("/console/hooks/{}", hook.id);
    let events = hook.subscribed();
    layout(
        "Hook",
        Some((session, Section::Hooks)),
        html! {
            h1 { @if hook.name.is_empty() { "Hook " code { (hook.id) } } @else { (hook.name) } }
            @if let Some(n) = notice { p.notice role="status" { (n) } }
            @if let Some(e) = error { p.error role="alert" { (e) } }
            dl.facts {
                dt { "ID" } dd { code { (hook.id) } }
                dt { "State" } dd {
                    @if hook.enabled { span.ok { "Enabled" } } @else {
                        span.bad { "Disabled" }
                        @if let Some(r) = &hook.disabled_reason { " — " (r) }
                    }
                }
                dt { "Last 24 h" } dd { (stats.request_count) " requests, " (stats.success_count) " succeeded" }
            }
            div.row {
                form method="post" action={ (base) "/enabled" } {
                    input type="hidden" name="csrf" value=(session.csrf);
                    input type="hidden" name="enabled" value=(if hook.enabled { "false" } else { "true" });
                    button type="submit" { @if hook.enabled { "Disable" } @else { "Enable" } }
                }
                a.button href={ "/console/deliveries?hookId=" (hook.id) } { "Deliveries" }
                a.button.danger href={ (base) "/delete" } { "Delete…" }
            }
            @if hook.config.url.is_some() {
                h2 { "Send a test event" }
                form.row method="post" action={ (base) "/test" } {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label for="test-event" { "Event" }
                    select #test-event name="event" {
                        @for e in events { option value=(e.name()) { (e.name()) } }
                    }
                    button type="submit" { "Send test" }
                }
            }
            h2 { "Signing key" }
            div.card.wide {
                label for="key-logto" { "Signing key (" code { "logto-signature-sha-256" } " is the body's HMAC-SHA256 with it, in hex)" }
                div.row {
                    input #key-logto type="text" readonly value=(hook.signing_key);
                    button type="button" data-copy="#key-logto" hidden { "Copy" }
                }
                label for="key-whsec" { "Standard Webhooks secret (webhook-signature)" }
                div.row {
                    input #key-whsec type="text" readonly value=(crate::domain::signature::standard_webhooks_secret(&hook.signing_key));
                    button type="button" data-copy="#key-whsec" hidden { "Copy" }
                }
                @if let Some(until) = hook.previous_signing_key.as_ref().filter(|p| p.valid_at(crate::clock::now_ms()).is_some()).map(|p| p.expires_at) {
                    p.notice role="note" { "The previous key also signs every request (in " code { "webhook-signature" } ") until " (super::when(until)) "." }
                }
                form.row method="post" action={ (base) "/signing-key" } {
                    input type="hidden" name="csrf" value=(session.csrf);
                    label for="grace" { "The old key keeps signing for" }
                    select #grace name="gracePeriodSeconds" {
                        option value="86400" { "a day" }
                        option value="3600" { "an hour" }
                        option value="0" { "no time: switch at once" }
                    }
                    button type="submit" { "Rotate key" }
                }
            }
            @if hook.config.retries.is_some() || hook.config.ordering.is_some() || hook.config.transform.is_some() {
                h2 { "Set through the API" }
                p.muted { "Kept as they are when the form below is saved; change them with " code { "PATCH /api/hooks/" (hook.id) } "." }
                dl.facts {
                    @if let Some(r) = hook.config.retries { dt { "Retries" } dd { (r) " (" code { "config.retries" } ")" } }
                    @if hook.config.ordering.is_some() { dt { "Ordering" } dd { "per user (" code { "config.ordering" } ")" } }
                }
                @if let Some(t) = &hook.config.transform { details { summary { "Transform (" code { "config.transform" } ")" } pre { (t) } } }
            }
            h2 { "Edit" }
            @if hook.config.script.is_some() {
                p.muted { "A script hook is edited through " code { "PATCH /api/hooks/" (hook.id) } "." }
            } @else {
                (hook_fields(session, form, &base, "Save"))
            }
        },
    )
}

/// Asks before a hook is deleted, with its deliveries.
pub fn delete_hook(session: &Session, hook: &Hook) -> Markup {
    layout(
        "Delete hook",
        Some((session, Section::Hooks)),
        html! {
            h1 { "Delete " (super::hook_name(hook)) "?" }
            p { "The hook is deleted with all its deliveries (queued ones and the history) and their logs. This cannot be undone." }
            form.row method="post" action={ "/console/hooks/" (hook.id) "/delete" } {
                input type="hidden" name="csrf" value=(session.csrf);
                button.danger type="submit" { "Delete the hook" }
                a href={ "/console/hooks/" (hook.id) } { "Keep it" }
            }
        },
    )
}

/// Every hook: name, endpoint (or script), events, state, last 24 h of requests.
pub fn hooks(
    session: &Session,
    hooks: &[Hook],
    stats: &HashMap<String, ExecutionStats>,
    notice: Option<&str>,
) -> Markup {
    layout(
        "Hooks",
        Some((session, Section::Hooks)),
        html! {
            h1 { "Hooks" }
            @if let Some(n) = notice { p.notice role="status" { (n) } }
            p { a.button href="/console/hooks/new" { "New hook" } }
            @if hooks.is_empty() {
                p.empty { "No hooks yet. Create one with the button above, or with " code { "POST /api/hooks" } "." }
            } @else {
                div.scroll {
                    table {
                        caption { (hooks.len()) " hook" @if hooks.len() != 1 { "s" } ", newest first; requests of the last 24 hours" }
                        thead {
                            tr {
                                th scope="col" { "Name" }
                                th scope="col" { "Endpoint" }
                                th scope="col" { "Events" }
                                th scope="col" { "State" }
                                th scope="col" { "Requests (24 h)" }
                                th scope="col" { "Success rate" }
                            }
                        }
                        tbody {
                            @for h in hooks {
                                @let s = stats.get(&h.id).copied().unwrap_or_default();
                                tr {
                                    td { a href={ "/console/hooks/" (h.id) } { @if h.name.is_empty() { "(no name)" } @else { (h.name) } } br; small.muted { (h.id) } }
                                    td.url { @match (&h.config.url, &h.config.script) {
                                        (Some(url), _) => (url),
                                        (None, Some(_)) => span.muted { "script (in process)" },
                                        (None, None) => span.muted { "none" },
                                    } }
                                    td { (events(h)) }
                                    td {
                                        @if h.enabled { span.ok { "Enabled" } } @else {
                                            span.bad { "Disabled" }
                                            @if let Some(reason) = &h.disabled_reason { br; small { (reason) } }
                                        }
                                    }
                                    td.num { (s.request_count) }
                                    td.num { @if s.request_count == 0 { span.muted { "–" } } @else {
                                        (format!("{:.1} %", s.success_count as f64 * 100.0 / s.request_count as f64))
                                    } }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

fn events(h: &Hook) -> String {
    let names: Vec<&str> = h.subscribed().iter().map(|e| e.name()).collect();
    names.join(", ")
}
