//! Blocking hooks (beyond Logto): hooks subscribed to `PreRegister`, `PreSignIn` or
//! `PreResetPassword` are called synchronously inside the interaction, before anything is
//! written, all at once, each within its own timeout. Any deny wins. A hook that gives no
//! usable answer (timeout, unreachable, non-2xx, not `{"allow": …}`) counts as its
//! `failurePolicy` says. Every call is logged like a delivery attempt, for recent-logs.
//!
//! A script hook (`config.script`, issue 16) is asked in process instead: its `decide({event,
//! payload})` runs in the sandbox within the hook's `timeoutMs` (the wait for a run slot
//! included), with the same payload an endpoint would be sent, and its answer is read as an
//! endpoint's JSON would be (`domain::interaction::read_script_verdict`). Its run (duration,
//! console output) is logged with the call.

use super::http::{SendOutcome, WebhookSender};
use crate::clock::now_ms;
use crate::domain::event::HookEvent;
use crate::domain::hook::FailurePolicy;
use crate::domain::id::new_id;
use crate::domain::interaction::{read_script_verdict, read_verdict, Verdict, SCRIPT_ENTRY};
use crate::domain::payload::delivery_body;
use crate::script::ScriptRunner;
use crate::storage::{BlockingCallLog, DeliveryTarget, Store, StoreResult};
use serde_json::{Map, Value};

/// What the blocking hooks of one interaction decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Go on; `custom_data` is what allowing `PreRegister` hooks added (in hook order).
    Allow {
        custom_data: Map<String, Value>,
    },
    Deny {
        message: String,
    },
}

/// Calls every enabled hook subscribed to `event` with `payload` (without `hookId`).
pub async fn decide(
    store: &dyn Store,
    sender: &WebhookSender,
    scripts: &ScriptRunner,
    event: HookEvent,
    payload: &Map<String, Value>,
) -> StoreResult<Decision> {
    let (hooks, _) = store.list_hooks(None).await?;
    let mut hooks: Vec<_> = hooks
        .into_iter()
        .filter(|h| h.enabled && h.subscribes_to(event))
        .collect();
    // Oldest first: custom data is merged in the order the hooks were made.
    hooks.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    if hooks.is_empty() {
        return Ok(Decision::Allow {
            custom_data: Map::new(),
        });
    }
    let text = Value::Object(payload.clone()).to_string();
    let calls = hooks.iter().map(|hook| {
        let text = &text;
        async move {
            let target = DeliveryTarget::new(
                hook.config.clone(),
                hook.signing_key.clone(),
                hook.previous_signing_key.clone(),
            );
            let id = new_id();
            let body = delivery_body(text, &hook.id);
            let (outcome, verdict, script) = match &hook.config.script {
                Some(script) => {
                    let timeout = hook.config.blocking_timeout();
                    ask_script(scripts, script, event, &body, timeout).await
                }
                None => {
                    let outcome = sender.send_within(&target, &id, body, hook.config.blocking_timeout()).await;
                    let verdict = read_verdict(
                        outcome.status,
                        outcome.body.as_deref().unwrap_or(""),
                        outcome.error.as_deref(),
                    );
                    (outcome, verdict, None)
                }
            };
            let (answered, error) = match &verdict {
                Verdict::Failed { reason } => (false, Some(reason.clone())),
                _ => (true, None),
            };
            let applied = match verdict {
                Verdict::Failed { reason } => {
                    match hook.config.failure_policy.unwrap_or_default() {
                        FailurePolicy::Allow => Verdict::Allow { custom_data: None },
                        FailurePolicy::Deny => Verdict::Deny {
                            message: format!(
                                "A hook that must approve this could not ({reason}), and its failure policy denies."
                            ),
                        },
                    }
                }
                v => v,
            };
            let log = BlockingCallLog {
                delivery_id: id,
                hook_id: hook.id.clone(),
                event,
                payload: payload.clone(),
                success: answered,
                response_status: outcome.status,
                response_body: outcome.body,
                error,
                duration_ms: outcome.duration.as_millis() as i64,
                at: now_ms(),
                script,
            };
            (applied, log)
        }
    });
    let results = futures_util::future::join_all(calls).await;
    let logs: Vec<BlockingCallLog> = results.iter().map(|(_, l)| l.clone()).collect();
    if let Err(e) = store.record_blocking_calls(&logs).await {
        // The decision stands; only its log is missing.
        tracing::warn!(error = %e, "logging blocking hook calls failed");
    }
    let mut custom_data = Map::new();
    for (verdict, log) in results {
        match verdict {
            Verdict::Deny { message } => {
                tracing::info!(hook_id = %log.hook_id, event = %event, "a blocking hook denied an interaction");
                return Ok(Decision::Deny { message });
            }
            Verdict::Allow {
                custom_data: Some(c),
            } => custom_data.extend(c),
            _ => {}
        }
    }
    Ok(Decision::Allow { custom_data })
}

/// Runs a script hook's `decide({event, payload})` (`body`: the payload as an endpoint would
/// be sent it). The outcome stands in for an HTTP one in the call's log: no status, the
/// answer as its body, the run's error as its error; the run itself (`{durationMs, logs}`)
/// comes third.
async fn ask_script(
    scripts: &ScriptRunner,
    script: &str,
    event: HookEvent,
    body: &str,
    timeout: std::time::Duration,
) -> (SendOutcome, Verdict, Option<String>) {
    let payload = serde_json::from_str::<Value>(body).unwrap_or(Value::Null);
    let input = serde_json::json!({"event": event.name(), "payload": payload});
    let started = std::time::Instant::now();
    let report = match scripts.run_for(script, SCRIPT_ENTRY, input, timeout).await {
        Ok(report) => report,
        Err(busy) => {
            let reason = busy.to_string();
            let outcome = SendOutcome {
                error: Some(reason.clone()),
                duration: started.elapsed(),
                ..Default::default()
            };
            return (outcome, Verdict::Failed { reason }, None);
        }
    };
    let answer = report.outcome.map_err(|e| e.to_string());
    // The answer as logged: whole when it is small, as a response body would be, else cut.
    let text = answer.as_ref().ok().map(|v| {
        let mut text = v.to_string();
        let mut cut = text.len().min(super::http::MAX_LOGGED_RESPONSE_BYTES);
        while !text.is_char_boundary(cut) {
            cut -= 1;
        }
        text.truncate(cut);
        text
    });
    let mut run = serde_json::json!({
        "durationMs": report.duration.as_millis() as u64,
        "logs": report.console,
    });
    if let Some(text) = &text {
        run["answer"] = serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.clone()));
    }
    let outcome = SendOutcome {
        body: text,
        error: answer.as_ref().err().cloned(),
        duration: started.elapsed(),
        ..Default::default()
    };
    let verdict = read_script_verdict(answer, report.undefined);
    (outcome, verdict, Some(run.to_string()))
}
