//! A delivery's transform step (issue 16): before an attempt is signed, what its hook's
//! `config.transform` makes of it (`domain::transform` says what the script gets and what its
//! answer means). The transform runs once per delivery: what it makes is recorded with the
//! attempt that ran it and stored on the delivery (`AttemptRecord::transformed`), so every
//! later attempt, a manual retry included, sends the same bytes and runs no script. Only a
//! run that failed (nothing stored) runs again at the next attempt.
//!
//! Runs go through their own [`ScriptRunner`] (`--transform-concurrency`), so a burst of
//! deliveries cannot take the run slots sign-ins need for their actions.

use crate::domain::hook::HookHeaders;
use crate::domain::transform::{self, Transformed, ENTRY};
use crate::script::ScriptRunner;
use crate::storage::{custom_headers, ClaimedDelivery, TransformedRequest};
use http::HeaderMap;
use serde_json::json;
use std::time::Duration;

/// What an attempt does, and the script run behind it.
#[derive(Debug)]
pub struct Prepared {
    pub step: Step,
    /// The transform's run (`{durationMs, logs, skipped?}` as JSON), when it ran at this
    /// attempt: the attempt's `script` in the log.
    pub script: Option<String>,
}

#[derive(Debug)]
pub enum Step {
    /// Send `body`, with `headers` in place of the hook's own when `Some`. `store` is set
    /// when the transform made them at this attempt: the record stores it.
    Send {
        body: String,
        headers: Option<HeaderMap>,
        store: Option<TransformedRequest>,
    },
    /// The transform answered `null`: send nothing, the delivery is skipped.
    Skip,
    /// The transform failed (threw, timed out, answered something else): the attempt fails
    /// with this error and is retried as any failed attempt is.
    Fail(String),
    /// No run slot came free in time (`--transform-concurrency`): hookline's contention, not
    /// the hook's failure, so no attempt is made or counted; the delivery goes back to the
    /// queue.
    Busy,
}

/// The step for `d`'s next attempt. Takes `d.body` (the attempt sends it or what the
/// transform made of it). The transform's run (its wait for a slot included) takes at most
/// the script timeout and at most `budget` (the attempt's request timeout, which the
/// request gets what is left of).
pub async fn prepare(runner: &ScriptRunner, d: &mut ClaimedDelivery, budget: Duration) -> Prepared {
    let body = std::mem::take(&mut d.body);
    let as_is = |body, headers| Prepared {
        step: Step::Send {
            body,
            headers,
            store: None,
        },
        script: None,
    };
    if d.transformed {
        // Made at an earlier attempt: the same bytes again.
        return match stored_headers(d.request_headers.as_deref()) {
            Ok(headers) => as_is(body, headers),
            Err(e) => Prepared {
                step: Step::Fail(e),
                script: None,
            },
        };
    }
    let Some(script) = d.target.config.transform.as_deref() else {
        return as_is(body, None);
    };
    // The hook's headers as they would be sent (a hook whose headers do not parse fails its
    // sends either way).
    let sent = d.target.headers.as_ref().ok();
    let headers = sent
        .into_iter()
        .flat_map(|h| h.iter())
        .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?)));
    let input = transform::input(&d.event_name, &body, headers);
    // Half the budget at most to wait for a slot, half at most to run (and never more than
    // the scripts' timeout): a run that times out had its whole time, so it is the script's
    // failure, not hookline's contention.
    let half = runner.limits().timeout.min(budget / 2);
    let report = match runner.run_within(script, ENTRY, input, half, half).await {
        Ok(report) => report,
        Err(_) => {
            return Prepared {
                step: Step::Busy,
                script: None,
            }
        }
    };
    let answer = report
        .outcome
        .map_err(|e| e.to_string())
        .and_then(|v| transform::read(v, !report.undefined));
    let mut run = json!({
        "durationMs": report.duration.as_millis() as u64,
        "logs": report.console,
    });
    let step = match answer {
        Ok(Transformed::Skip) => {
            run["skipped"] = json!(true);
            Step::Skip
        }
        Ok(Transformed::Send { body, headers }) => match custom_headers(headers.as_ref()) {
            Ok(map) => Step::Send {
                store: Some(TransformedRequest {
                    body: body.clone(),
                    headers: headers.as_ref().map(|h| json!(h).to_string()),
                }),
                body,
                headers: headers.is_some().then_some(map),
            },
            Err(e) => Step::Fail(format!("transform: {e}")),
        },
        Err(e) => Step::Fail(format!("transform: {e}")),
    };
    Prepared {
        step,
        script: Some(run.to_string()),
    }
}

/// The headers a transform chose, as stored (`None`: the hook's own).
fn stored_headers(json: Option<&str>) -> Result<Option<HeaderMap>, String> {
    let Some(json) = json else {
        return Ok(None);
    };
    let headers: HookHeaders = serde_json::from_str(json)
        .map_err(|e| format!("the stored transformed headers do not parse: {e}"))?;
    custom_headers(Some(&headers)).map(Some)
}
