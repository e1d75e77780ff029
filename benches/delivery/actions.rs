//! The actions scenario (issue 16): what running a trivial action costs.
//!
//! Against one hookline process at its default limits:
//! - the dry run `POST /api/configs/actions/test` of a trivial script, one request at a time,
//!   beside `GET /api/configs/actions` (the same route family without a run) for the HTTP and
//!   routing part: the difference is one run (a fresh QuickJS runtime and context, the
//!   script compiled and run, its answer read back);
//! - sign-ins of one user without and with a trivial `action.postSignIn`, one at a time: the
//!   difference is what the action adds to a sign-in (a run and the run's log row).

use crate::harness::*;
use serde_json::json;
use std::time::Instant;

/// Answers `{ok: true}` to the dry run (no user) and nothing (no change) at a sign-in.
const TRIVIAL: &str =
    "const runAction = async ({ event }) => { if (!event.user) return { ok: true }; };";

#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct Actions {
    pub(crate) requests: usize,
    pub(crate) route_p50_ms: f64,
    pub(crate) route_p99_ms: f64,
    pub(crate) dry_run_p50_ms: f64,
    pub(crate) dry_run_p99_ms: f64,
    pub(crate) sign_ins: usize,
    pub(crate) sign_in_p50_ms: f64,
    pub(crate) sign_in_p99_ms: f64,
    pub(crate) sign_in_with_action_p50_ms: f64,
    pub(crate) sign_in_with_action_p99_ms: f64,
    pub(crate) peak_rss_mib: f64,
}

/// Times `n` calls of `call`, one at a time; sorted microseconds.
async fn timed<F, Fut>(n: usize, mut call: F) -> anyhow::Result<Vec<u32>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let mut us = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        call().await?;
        us.push(t.elapsed().as_micros().min(u32::MAX as u128) as u32);
    }
    us.sort_unstable();
    Ok(us)
}

pub(crate) async fn actions(
    client: &reqwest::Client,
    database_url: Option<&str>,
    requests: usize,
    sign_ins: usize,
) -> anyhow::Result<Actions> {
    let hookline = Hookline::start(database_url, Limits::Defaults, &[]).await?;
    let api = |path: &str| format!("{}/api{path}", hookline.base);
    let route = timed(requests, || async {
        let res = client
            .get(api("/configs/actions"))
            .bearer_auth(TOKEN)
            .send()
            .await?;
        anyhow::ensure!(res.status() == 200, "listing actions: {}", res.status());
        res.bytes().await?;
        Ok(())
    })
    .await?;
    let body = json!({"script": TRIVIAL, "actionType": "action.postSignIn", "event": {}});
    let dry = timed(requests, || async {
        let res = client
            .post(api("/configs/actions/test"))
            .bearer_auth(TOKEN)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(res.status() == 200, "dry run: {}", res.status());
        let out: serde_json::Value = res.json().await?;
        anyhow::ensure!(out["result"]["ok"] == true, "dry run answered {out}");
        Ok(())
    })
    .await?;

    // An application and a user to sign in.
    let res = client
        .post(api("/applications"))
        .bearer_auth(TOKEN)
        .json(&json!({"name": "bench", "type": "Traditional"}))
        .send()
        .await?;
    anyhow::ensure!(
        res.status() == 200 || res.status() == 201,
        "application: {}",
        res.status()
    );
    let app: serde_json::Value = res.json().await?;
    let (app_id, secret) = (
        app["id"].as_str().unwrap_or_default().to_owned(),
        app["secret"].as_str().unwrap_or_default().to_owned(),
    );
    let res = client
        .post(api("/interactions/register"))
        .basic_auth(&app_id, Some(&secret))
        .json(&json!({"username": "bench", "password": "bench-password-1"}))
        .send()
        .await?;
    anyhow::ensure!(res.status() == 201, "register: {}", res.status());
    let sign_in = || async {
        let res = client
            .post(api("/interactions/sign-in"))
            .basic_auth(&app_id, Some(&secret))
            .json(&json!({"identifier": "bench", "password": "bench-password-1"}))
            .send()
            .await?;
        let status = res.status();
        let text = res.text().await?;
        anyhow::ensure!(status == 200, "sign-in: {status} {text}");
        Ok(())
    };
    let plain = timed(sign_ins, sign_in).await?;
    let res = client
        .put(api("/configs/actions/action.postSignIn"))
        .bearer_auth(TOKEN)
        .json(&json!({"script": TRIVIAL}))
        .send()
        .await?;
    anyhow::ensure!(res.status() == 201, "setting the action: {}", res.status());
    let with_action = timed(sign_ins, sign_in).await?;
    Ok(Actions {
        requests,
        route_p50_ms: percentile_ms(&route, 0.5),
        route_p99_ms: percentile_ms(&route, 0.99),
        dry_run_p50_ms: percentile_ms(&dry, 0.5),
        dry_run_p99_ms: percentile_ms(&dry, 0.99),
        sign_ins,
        sign_in_p50_ms: percentile_ms(&plain, 0.5),
        sign_in_p99_ms: percentile_ms(&plain, 0.99),
        sign_in_with_action_p50_ms: percentile_ms(&with_action, 0.5),
        sign_in_with_action_p99_ms: percentile_ms(&with_action, 0.99),
        peak_rss_mib: hookline.peak_rss_mib(),
    })
}
