//! The sandbox's rules, each on a real QuickJS run.

use super::*;
use serde_json::json;

fn quick() -> Limits {
    Limits {
        timeout: Duration::from_millis(500),
        memory_bytes: 32 * 1024 * 1024,
        ..Limits::default()
    }
}

fn go(script: &str, input: Value) -> RunReport {
    run(script, "runAction", &input, &quick(), Arc::new(NoFetch))
}

#[test]
fn a_logto_action_runs_unchanged_and_its_console_is_captured() {
    let script = r#"
const runAction = async ({ event, environmentVariables }) => {
  console.log("checking", event.identifier.value, { n: 1 });
  console.warn("careful");
  if (event.identifier.value !== "legacy@example.com") return;
  return { action: "createUser", user: { primaryEmail: event.identifier.value,
    name: environmentVariables.PREFIX + "x" }, passwordVerified: true };
};"#;
    let input = json!({"event": {"identifier": {"type": "email", "value": "legacy@example.com"}},
        "environmentVariables": {"PREFIX": "legacy-"}});
    let report = go(script, input);
    assert_eq!(
        report.outcome.unwrap(),
        json!({"action": "createUser", "user": {"primaryEmail": "legacy@example.com",
            "name": "legacy-x"}, "passwordVerified": true})
    );
    assert_eq!(
        report.console,
        ["checking legacy@example.com {\"n\":1}", "[warn] careful"]
    );
    // Nothing returned: no change.
    let input = json!({"event": {"identifier": {"value": "other"}}, "environmentVariables": {}});
    let r = go(script, input);
    assert_eq!(r.outcome.unwrap(), Value::Null);
    assert!(r.undefined);
    // `null` is told apart from `undefined` (a transform's `null` skips).
    let r = go("const runAction = async () => null;", json!({}));
    assert_eq!((r.outcome.unwrap(), r.undefined), (Value::Null, false));
}

#[test]
fn a_script_that_does_not_parse_is_refused_with_its_position() {
    let err = check(
        "const runAction = async () => {\n  return 1 +;\n};",
        "runAction",
        &quick(),
    )
    .unwrap_err();
    match err {
        ScriptError::Syntax {
            line,
            column,
            ref message,
        } => {
            assert_eq!(line, 2, "{err}");
            assert!(column > 1, "{err}");
            assert!(message.contains("SyntaxError"), "{err}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        check("const other = 1;", "runAction", &quick()).unwrap_err(),
        ScriptError::NoEntry("runAction".into())
    );
    assert!(check("const runAction = async () => ({});", "runAction", &quick()).is_ok());
    // Ending too soon is a syntax error at the script's end, not a missing function.
    match check(
        "const runAction = async () => {\n  return 1;",
        "runAction",
        &quick(),
    ) {
        Err(ScriptError::Syntax { line, column, .. }) => assert_eq!((line, column), (2, 12)),
        other => panic!("{other:?}"),
    }
    // The top level runs at a check: not a function, a throw and a loop are caught.
    assert_eq!(
        check("const runAction = 5;", "runAction", &quick()),
        Err(ScriptError::NotAFunction("runAction".into()))
    );
    assert!(matches!(
        check(
            "const runAction = () => 1;\nthrow new Error('early');",
            "runAction",
            &quick()
        ),
        Err(ScriptError::Thrown(m)) if m.contains("early")
    ));
    assert_eq!(
        check(
            "const runAction = () => 1;\nfor (;;) {}",
            "runAction",
            &quick()
        ),
        Err(ScriptError::Timeout(quick().timeout))
    );
    // A script may export its function itself, at a check and in a run.
    let exported = "export const runAction = async () => ({ ok: true });";
    assert!(check(exported, "runAction", &quick()).is_ok());
    assert_eq!(
        go(exported, json!({})).outcome.unwrap(),
        json!({"ok": true})
    );
}

#[test]
fn throws_and_rejections_are_the_scripts_errors() {
    let r = go(
        "const runAction = () => { throw new TypeError('bad input'); };",
        json!({}),
    );
    assert_eq!(
        r.outcome.unwrap_err(),
        ScriptError::Thrown("TypeError: bad input".into())
    );
    let r = go(
        "const runAction = async () => { await null; throw 'plain'; };",
        json!({}),
    );
    assert_eq!(
        r.outcome.unwrap_err(),
        ScriptError::Thrown("Uncaught \"plain\"".into())
    );
    let r = go("const runAction = async () => () => 1;", json!({}));
    assert!(matches!(r.outcome.unwrap_err(), ScriptError::NotJson(_)));
    // A result too large to take into the host's memory.
    let r = go("const runAction = () => Array(400000).fill([]);", json!({}));
    assert!(matches!(r.outcome.unwrap_err(), ScriptError::NotJson(_)));
}

#[test]
fn an_endless_loop_ends_at_the_deadline() {
    let r = go("const runAction = () => { for (;;) {} };", json!({}));
    assert_eq!(
        r.outcome.unwrap_err(),
        ScriptError::Timeout(quick().timeout)
    );
    assert!(r.duration < Duration::from_secs(3), "{:?}", r.duration);
    // Also one that catches what it can.
    let r = go(
        "const runAction = async () => { while (true) { try { for(;;){} } catch (e) {} } };",
        json!({}),
    );
    assert_eq!(
        r.outcome.unwrap_err(),
        ScriptError::Timeout(quick().timeout)
    );
}

#[test]
fn a_loop_of_promises_whose_executors_loop_ends_at_the_deadline() {
    // QuickJS's Promise constructor turns the interrupt thrown inside an executor into a
    // rejection; the run must end all the same. On a thread, so that a regression fails the
    // test instead of hanging it.
    for script in [
        "const runAction = () => { for (;;) new Promise(() => { for (;;) {} }); };",
        "const runAction = () => { for (;;) { try { new Promise(() => { for (;;) {} }); } catch (e) {} } };",
        "const runAction = async () => { for (;;) { try { await Promise.try(() => { for (;;) {} }); } catch (e) {} } };",
    ] {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(go(script, json!({})).outcome);
        });
        let outcome = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("the run did not end: {script}"));
        assert_eq!(outcome.unwrap_err(), ScriptError::Timeout(quick().timeout), "{script}");
    }
}

#[test]
fn a_memory_bomb_and_a_deep_recursion_end_their_run() {
    let r = go(
        "const runAction = () => { const a = []; for (;;) a.push('x'.repeat(1 << 20) + a.length); };",
        json!({}),
    );
    assert_eq!(
        r.outcome.unwrap_err(),
        ScriptError::OutOfMemory(quick().memory_bytes)
    );
    let r = go(
        "const f = (n) => f(n + 1) + 1; const runAction = () => f(0);",
        json!({}),
    );
    match r.outcome.unwrap_err() {
        ScriptError::Thrown(m) => assert!(m.contains("RangeError") || m.contains("stack"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_promise_that_cannot_settle_ends_the_run_at_once() {
    let r = go("const runAction = () => new Promise(() => {});", json!({}));
    assert_eq!(r.outcome.unwrap_err(), ScriptError::NeverSettled);
    assert!(r.duration < quick().timeout);
}

#[test]
fn the_host_is_out_of_reach_and_runs_share_nothing() {
    let script = r#"
const runAction = async () => {
  const seen = globalThis.leftover ?? null;
  globalThis.leftover = "from an earlier run";
  return { seen, kinds: [typeof process, typeof require, typeof std, typeof os,
    typeof setTimeout, typeof __hooklineFetch, typeof __hooklineLog, typeof fetch,
    typeof console.log] };
};"#;
    for _ in 0..2 {
        let r = go(script, json!({}));
        assert_eq!(
            r.outcome.unwrap(),
            json!({"seen": null, "kinds": ["undefined", "undefined", "undefined", "undefined",
                "undefined", "undefined", "undefined", "function", "function"]})
        );
    }
}

struct Echo;

impl Fetcher for Echo {
    fn fetch(&self, r: FetchRequest, timeout: Duration) -> Result<FetchResponse, String> {
        if r.url.contains("refused") {
            return Err("the address is private".into());
        }
        assert!(timeout <= quick().timeout);
        Ok(FetchResponse {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: json!({"method": r.method, "url": r.url, "body": r.body,
                "auth": r.headers.iter().find(|(k, _)| k == "authorization").map(|(_, v)| v)})
            .to_string(),
        })
    }
}

#[test]
fn fetch_goes_through_the_hosts_fetcher() {
    let script = r#"
const runAction = async ({ event }) => {
  const r = await fetch("https://legacy.example/users", { method: "POST",
    headers: { authorization: "Bearer t" }, body: JSON.stringify(event) });
  const got = await r.json();
  let refused = null;
  try { await fetch("http://refused.internal/"); } catch (e) { refused = String(e); }
  return { ok: r.ok, status: r.status, type: r.headers.get("content-type"), got, refused };
};"#;
    let r = run(
        script,
        "runAction",
        &json!({"event": {"a": 1}}),
        &quick(),
        Arc::new(Echo),
    );
    assert_eq!(
        r.outcome.unwrap(),
        json!({"ok": true, "status": 200, "type": "application/json",
            "got": {"method": "POST", "url": "https://legacy.example/users",
                "body": "{\"a\":1}", "auth": "Bearer t"},
            "refused": "TypeError: fetch failed: the address is private"})
    );
}

#[test]
fn console_output_is_bounded() {
    let limits = Limits {
        console_bytes: 100,
        ..quick()
    };
    let r = run(
        "const runAction = () => { for (let i = 0; i < 1000; i++) console.log('line ' + i); };",
        "runAction",
        &json!({}),
        &limits,
        Arc::new(NoFetch),
    );
    assert!(r.outcome.is_ok());
    let total: usize = r.console.iter().map(String::len).sum();
    assert!(total < 200, "{total}");
    assert!(r.console.last().unwrap().ends_with("(console output cut)"));
}
