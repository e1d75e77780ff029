//! One run of a script in QuickJS (see the module doc of [`super`]).

use super::{Limits, RunReport, ScriptError};
use rquickjs::promise::PromiseState;
use rquickjs::{Context, Ctx, Exception, Function, Module, Object, Runtime, Value as JsValue};
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The longest result a run may answer, as JSON text, in bytes.
pub const MAX_RESULT_BYTES: usize = 1024 * 1024;

/// The name scripts are compiled under: it is what error positions are given against.
const FILE: &str = "script.js";

/// A request a script's `fetch` makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub url: String,
    /// `GET` unless the script says otherwise.
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
}

/// What a `fetch` got back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

/// Makes a script's `fetch` calls, blocking the run's thread for at most `timeout` (what is
/// left of the run). An `Err` is thrown in the script as a `TypeError`, as `fetch` does for
/// a network error.
pub trait Fetcher: Send + Sync {
    fn fetch(&self, request: FetchRequest, timeout: Duration) -> Result<FetchResponse, String>;
}

/// A [`Fetcher`] that refuses every request (dry runs of scripts that must not reach out,
/// and tests).
pub struct NoFetch;

impl Fetcher for NoFetch {
    fn fetch(&self, _: FetchRequest, _: Duration) -> Result<FetchResponse, String> {
        Err("fetch is not available here".into())
    }
}

/// Defines `console` and `fetch` from the host's two functions, then removes those from
/// the global object (the closures keep them). `fetch` answers a minimal `Response`: `ok`,
/// `status`, `headers.get(name)`, `text()`, `json()`.
const PRELUDE: &str = r#"
(() => {
  const log = globalThis.__hooklineLog, hostFetch = globalThis.__hooklineFetch;
  delete globalThis.__hooklineLog;
  delete globalThis.__hooklineFetch;
  const show = (v) => {
    if (typeof v === "string") return v;
    if (v instanceof Error) return String(v.stack || v);
    try { const s = JSON.stringify(v); return s === undefined ? String(v) : s; }
    catch (_) { return String(v); }
  };
  const write = (level) => (...args) => log(level, args.map(show).join(" "));
  globalThis.console = Object.freeze({
    log: write("log"), info: write("info"), warn: write("warn"),
    error: write("error"), debug: write("debug"),
  });
  globalThis.fetch = async (input, init = {}) => {
    const headers = {};
    const given = init.headers || {};
    for (const k of Object.keys(given)) headers[k] = String(given[k]);
    const request = {
      url: String(input), method: String(init.method || "GET"), headers,
      body: init.body === undefined || init.body === null ? null : String(init.body),
    };
    const r = JSON.parse(hostFetch(JSON.stringify(request)));
    const lower = {};
    for (const [k, v] of r.headers) lower[k.toLowerCase()] = v;
    return Object.freeze({
      ok: r.status >= 200 && r.status < 300, status: r.status,
      headers: Object.freeze({ get: (name) => lower[String(name).toLowerCase()] ?? null }),
      text: async () => r.body,
      json: async () => JSON.parse(r.body),
    });
  };
})();
"#;

/// Checks that `script` parses and that its top level, run within `limits` (without
/// `fetch`), defines `entry` as a function; `entry` itself is not called. A syntax error has
/// its position; a top level that throws, loops or bombs fails as a run would.
pub fn check(script: &str, entry: &str, limits: &Limits) -> Result<(), ScriptError> {
    let console = Arc::new(Mutex::new(Console::new(limits.console_bytes)));
    let deadline = Instant::now() + limits.timeout;
    run_inner(
        script,
        entry,
        None,
        limits,
        deadline,
        Arc::new(NoFetch),
        console,
    )
    .map(drop)
}

/// Runs `entry(input)` of `script` within `limits` and returns its result and console
/// output. Blocks the thread for as long as the run takes (at most `limits.timeout` and a
/// little).
pub fn run(
    script: &str,
    entry: &str,
    input: &Value,
    limits: &Limits,
    fetcher: Arc<dyn Fetcher>,
) -> RunReport {
    run_until(
        script,
        entry,
        input,
        limits,
        Instant::now() + limits.timeout,
        fetcher,
    )
}

/// [`run`] with its deadline given: a run that waited for its turn has what is left of
/// `limits.timeout` (which its timeout error still names).
pub fn run_until(
    script: &str,
    entry: &str,
    input: &Value,
    limits: &Limits,
    deadline: Instant,
    fetcher: Arc<dyn Fetcher>,
) -> RunReport {
    let started = Instant::now();
    let console = Arc::new(Mutex::new(Console::new(limits.console_bytes)));
    let result = run_inner(
        script,
        entry,
        Some(input),
        limits,
        deadline,
        fetcher,
        console.clone(),
    );
    let console = match console.lock() {
        Ok(mut c) => std::mem::take(&mut c.lines),
        Err(_) => Vec::new(),
    };
    let undefined = matches!(result, Ok(None));
    RunReport {
        outcome: result.map(|v| v.unwrap_or(Value::Null)),
        undefined,
        console,
        duration: started.elapsed(),
    }
}

/// With `input`, the run; without, [`check`]'s: everything up to the call.
fn run_inner(
    script: &str,
    entry: &str,
    input: Option<&Value>,
    limits: &Limits,
    deadline: Instant,
    fetcher: Arc<dyn Fetcher>,
    console: Arc<Mutex<Console>>,
) -> Result<Option<Value>, ScriptError> {
    let engine = |e: rquickjs::Error| ScriptError::Engine(e.to_string());
    let rt = Runtime::new().map_err(engine)?;
    rt.set_memory_limit(limits.memory_bytes);
    rt.set_max_stack_size(limits.stack_bytes);
    let ctx = Context::full(&rt).map_err(engine)?;
    // The runtime, for the interrupt handler (which QuickJS calls on this thread, from inside
    // the run it interrupts).
    let raw = ctx.with(|c| unsafe { rquickjs::qjs::JS_GetRuntime(c.as_raw().as_ptr()) }) as usize;
    let memory = limits.memory_bytes;
    let mut starved = false;
    rt.set_interrupt_handler(Some(Box::new(move || {
        if Instant::now() < deadline {
            return false;
        }
        // Past the deadline the run is interrupted with an uncatchable error. But QuickJS's
        // `Promise` constructor (and `Promise.try`) turn whatever their callback throws into
        // a rejection, that error too: a loop that keeps constructing promises whose
        // executors loop would be interrupted inside an executor every time, and never stop.
        // So every other interrupt also takes the memory away (and the next one gives it
        // back): while it is away, the next promise cannot even be allocated, that failure
        // is thrown outside any executor, and with no executor running the next interrupt
        // lands in the loop around it, with the memory back to build its uncatchable error.
        starved = !starved;
        let limit = if starved { 1 } else { memory } as rquickjs::qjs::size_t;
        // SAFETY: `raw` is this run's runtime, alive while it runs (the handler is called
        // only from inside it, on its thread); setting the limit only writes a field.
        unsafe { rquickjs::qjs::JS_SetMemoryLimit(raw as *mut rquickjs::qjs::JSRuntime, limit) };
        true
    })));
    let input = input
        .map(serde_json::to_string)
        .transpose()
        .map_err(|e| ScriptError::Engine(e.to_string()))?;
    let result = ctx.with(|ctx| -> Result<Option<Value>, ScriptError> {
        let fail = |e: rquickjs::Error| failure(&ctx, e, limits, deadline);
        install_host(&ctx, console, fetcher, deadline).map_err(fail)?;
        ctx.eval::<(), _>(PRELUDE).map_err(fail)?;
        let module = declare(&ctx, script, entry)?;
        let (module, evaluated) = module.eval().map_err(fail)?;
        settle(&ctx, evaluated.into_value(), limits, deadline)?;
        let value: JsValue = module.get(entry).map_err(fail)?;
        let Some(function) = value.as_function().cloned() else {
            return Err(ScriptError::NotAFunction(entry.to_owned()));
        };
        let Some(input) = input else {
            return Ok(None);
        };
        let argument = ctx.json_parse(input).map_err(fail)?;
        let returned: JsValue = function.call((argument,)).map_err(fail)?;
        let value = settle(&ctx, returned, limits, deadline)?;
        to_json(&ctx, value, limits, deadline)
    });
    drop(ctx);
    drop(rt);
    result
}

/// Compiles `script` as a module that exports `entry` (without running it): a syntax error
/// or a missing `entry` is a [`ScriptError::Syntax`] with its position in the script.
fn declare<'js>(
    ctx: &Ctx<'js>,
    script: &str,
    entry: &str,
) -> Result<Module<'js, rquickjs::module::Declared>, ScriptError> {
    // The export goes on a line of its own after the script, so positions in the script are
    // its own; an `entry` the script does not define fails here ("undefined export"). A
    // script that exports `entry` itself is compiled as it is.
    let source = format!("{script}\n;export {{ {entry} }};\n");
    let declared = Module::declare(ctx.clone(), FILE, source).or_else(|e| {
        let (message, stack) = thrown(ctx, e);
        if message.contains(&format!("duplicate exported name '{entry}'")) {
            return Module::declare(ctx.clone(), FILE, script.to_owned())
                .map_err(|e| thrown(ctx, e));
        }
        Err((message, stack))
    });
    declared.map_err(|(message, stack)| {
        if message.contains(&format!("exported variable '{entry}' does not exist")) {
            return ScriptError::NoEntry(entry.to_owned());
        }
        let script_lines = script.lines().count().max(1) as u32;
        match position(&stack).or_else(|| position(&message)) {
            // Past the script's end (it ended too soon): its end is where it went wrong, and
            // the parser's message is about the line hookline added.
            Some((line, _)) if line > script_lines => ScriptError::Syntax {
                message: "SyntaxError: the script ends too soon (is a bracket, a brace or a string left open?)".into(),
                line: script_lines,
                column: script.lines().last().map_or(0, |l| l.chars().count()) as u32 + 1,
            },
            Some((line, column)) => ScriptError::Syntax {
                message,
                line,
                column,
            },
            None => ScriptError::Syntax {
                message,
                line: 1,
                column: 1,
            },
        }
    })
}

/// Drives the promise jobs until `value` (if a promise) settles; its result.
fn settle<'js>(
    ctx: &Ctx<'js>,
    value: JsValue<'js>,
    limits: &Limits,
    deadline: Instant,
) -> Result<JsValue<'js>, ScriptError> {
    let Some(promise) = value.as_promise().cloned() else {
        return Ok(value);
    };
    loop {
        match promise.state() {
            PromiseState::Resolved => {
                return promise
                    .result::<JsValue>()
                    .unwrap_or(Ok(JsValue::new_undefined(ctx.clone())))
                    .map_err(|e| failure(ctx, e, limits, deadline));
            }
            PromiseState::Rejected => {
                let e = match promise.result::<JsValue>() {
                    Some(Err(e)) => e,
                    _ => rquickjs::Error::Exception,
                };
                return Err(failure(ctx, e, limits, deadline));
            }
            PromiseState::Pending => {
                if Instant::now() >= deadline {
                    return Err(ScriptError::Timeout(limits.timeout));
                }
                if !ctx.execute_pending_job() {
                    return Err(ScriptError::NeverSettled);
                }
            }
        }
    }
}

/// The result as JSON; `None` for `undefined`.
fn to_json<'js>(
    ctx: &Ctx<'js>,
    value: JsValue<'js>,
    limits: &Limits,
    deadline: Instant,
) -> Result<Option<Value>, ScriptError> {
    if value.is_undefined() {
        return Ok(None);
    }
    let text = ctx
        .json_stringify(value)
        .map_err(|e| match failure(ctx, e, limits, deadline) {
            ScriptError::Thrown(m) => ScriptError::NotJson(m),
            other => other,
        })?;
    let Some(text) = text else {
        return Err(ScriptError::NotJson("it has no JSON form".into()));
    };
    let text = text
        .to_string()
        .map_err(|e| ScriptError::NotJson(e.to_string()))?;
    // Parsed into the host's memory, outside the script's limit: bounded here.
    if text.len() > MAX_RESULT_BYTES {
        return Err(ScriptError::NotJson(format!(
            "it is longer than {MAX_RESULT_BYTES} bytes as JSON"
        )));
    }
    serde_json::from_str(&text)
        .map(Some)
        .map_err(|e| ScriptError::NotJson(e.to_string()))
}

/// What an engine error means for the run: time and memory first (the engine reports both
/// as exceptions), then what the script threw.
fn failure(ctx: &Ctx<'_>, e: rquickjs::Error, limits: &Limits, deadline: Instant) -> ScriptError {
    if Instant::now() >= deadline {
        return ScriptError::Timeout(limits.timeout);
    }
    if matches!(e, rquickjs::Error::Allocation) {
        return ScriptError::OutOfMemory(limits.memory_bytes);
    }
    let (message, _) = thrown(ctx, e);
    if message.contains("out of memory") {
        return ScriptError::OutOfMemory(limits.memory_bytes);
    }
    ScriptError::Thrown(message)
}

/// The thrown value's message (`Name: message` for an error) and stack.
fn thrown(ctx: &Ctx<'_>, e: rquickjs::Error) -> (String, String) {
    if !matches!(e, rquickjs::Error::Exception) {
        return (e.to_string(), String::new());
    }
    let value = ctx.catch();
    if let Some(exception) = value.as_exception() {
        let name: Option<String> = exception.get("name").ok();
        let message = exception.message().unwrap_or_default();
        let text = match name {
            Some(n) if !n.is_empty() => format!("{n}: {message}"),
            _ => message,
        };
        return (text, exception.stack().unwrap_or_default());
    }
    let shown = ctx
        .json_stringify(value.clone())
        .ok()
        .flatten()
        .and_then(|s| s.to_string().ok())
        .unwrap_or_else(|| format!("{value:?}"));
    (format!("Uncaught {shown}"), String::new())
}

/// `script.js:LINE:COLUMN` in an error's stack or message.
fn position(text: &str) -> Option<(u32, u32)> {
    let at = text.find(FILE)? + FILE.len();
    let mut parts = text[at..].strip_prefix(':')?.splitn(3, ':');
    let line = parts.next()?.parse().ok()?;
    let column: String = parts
        .next()
        .map(|c| c.chars().take_while(char::is_ascii_digit).collect())
        .unwrap_or_default();
    Some((line, column.parse().unwrap_or(1)))
}

/// The host's two functions, for the prelude to wrap and hide.
fn install_host<'js>(
    ctx: &Ctx<'js>,
    console: Arc<Mutex<Console>>,
    fetcher: Arc<dyn Fetcher>,
    deadline: Instant,
) -> rquickjs::Result<()> {
    let globals: Object = ctx.globals();
    globals.set(
        "__hooklineLog",
        Function::new(ctx.clone(), move |level: String, line: String| {
            if let Ok(mut c) = console.lock() {
                c.push(&level, &line);
            }
        })?,
    )?;
    globals.set(
        "__hooklineFetch",
        Function::new(
            ctx.clone(),
            move |ctx: Ctx<'js>, request: String| -> rquickjs::Result<String> {
                let request =
                    parse_request(&request).map_err(|m| Exception::throw_type(&ctx, &m))?;
                let left = deadline.saturating_duration_since(Instant::now());
                match fetcher.fetch(request, left) {
                    Ok(r) => Ok(serde_json::json!({
                        "status": r.status,
                        "headers": r.headers,
                        "body": r.body,
                    })
                    .to_string()),
                    Err(m) => Err(Exception::throw_type(&ctx, &format!("fetch failed: {m}"))),
                }
            },
        )?,
    )?;
    Ok(())
}

fn parse_request(text: &str) -> Result<FetchRequest, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let headers = v
        .get("headers")
        .and_then(Value::as_object)
        .map(|h| {
            h.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default();
    Ok(FetchRequest {
        url: field("url").ok_or("fetch needs a URL")?,
        method: field("method").unwrap_or_else(|| "GET".into()),
        headers,
        body: field("body"),
    })
}

/// What ends the console line where the output was cut.
pub const CUT_MARK: &str = "… (console output cut)";

/// Console output, bounded.
struct Console {
    lines: Vec<String>,
    left: usize,
    cut: bool,
}

impl Console {
    fn new(bytes: usize) -> Self {
        Self {
            lines: Vec::new(),
            left: bytes,
            cut: false,
        }
    }

    fn push(&mut self, level: &str, line: &str) {
        if self.cut {
            return;
        }
        let entry = if level == "log" {
            line.to_owned()
        } else {
            format!("[{level}] {line}")
        };
        if entry.len() > self.left {
            let mut end = self.left;
            while !entry.is_char_boundary(end) {
                end -= 1;
            }
            self.lines.push(format!("{}{CUT_MARK}", &entry[..end]));
            self.cut = true;
            return;
        }
        self.left -= entry.len();
        self.lines.push(entry);
    }
}

#[cfg(test)]
mod tests;
