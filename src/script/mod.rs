//! Administrator-written JavaScript, run in a sandbox (issue 16): Logto's Actions, and
//! hookline's transforms and script blocking hooks, all go through [`run`].
//!
//! The engine is QuickJS (the `rquickjs` crate, which builds its C sources with the machine's
//! compiler and downloads nothing; ARCHITECTURE.md says why this one). Every run gets a
//! runtime and a context of its own, so runs share no state, and is bounded:
//!
//! - **time**: an interrupt handler ends the run at its deadline (`--action-timeout`, 5 s as
//!   Logto), an endless loop included; a `fetch` waits at most for what is left of it;
//! - **memory**: the runtime's allocations are capped (`--action-memory`, 128 MB as Logto);
//!   a memory bomb fails its allocation and the run ends with an error;
//! - **stack**: a deep recursion throws a `RangeError` long before the thread's own stack;
//! - **promises**: the run drives the promise jobs itself; a promise that can no longer
//!   settle (no job left to run) ends the run at once, without waiting for the deadline.
//!
//! A script sees the standard built-ins (`JSON`, `Promise`, `Date`, `Math`, …), `console`
//! (captured into the run's log, bounded, never hookline's own log) and `fetch` (hookline's
//! SSRF-checked client, through a [`Fetcher`]); no file system, process, environment, timers
//! or modules: QuickJS has none of them unless the host adds them, and this host adds none.
//!
//! [`run`] blocks its thread for the run's length: callers run it on the blocking pool,
//! within a concurrency limit of their own.

mod runner;
mod sandbox;

pub use runner::{Busy, ScriptRunner};
pub use sandbox::{check, run, run_until, FetchRequest, FetchResponse, Fetcher, NoFetch, CUT_MARK};

use serde_json::Value;
use std::time::Duration;

/// The bounds of one run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock time for the whole run, `fetch` calls included.
    pub timeout: Duration,
    /// Bytes the script's heap may take.
    pub memory_bytes: usize,
    /// Bytes of the JavaScript stack (deep recursion fails beyond it).
    pub stack_bytes: usize,
    /// Bytes of console output kept; the rest is dropped, and the log says so.
    pub console_bytes: usize,
}

impl Default for Limits {
    /// Logto's: 5 s and 128 MB; a 512 KiB stack (the blocking pool's threads have 2 MiB) and
    /// 16 KiB of console output.
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            memory_bytes: 128 * 1024 * 1024,
            stack_bytes: 512 * 1024,
            console_bytes: 16 * 1024,
        }
    }
}

/// What one run did.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The entry function's result as JSON (`Null` for `undefined`), or why there is none.
    pub outcome: Result<Value, ScriptError>,
    /// The entry function returned (or its promise resolved to) `undefined`: `outcome` is
    /// then `Ok(Null)`, as for `null`, which a caller may need to tell apart (a transform's
    /// `null` skips, its `undefined` is a mistake).
    pub undefined: bool,
    /// What the script wrote to `console`, one entry per call, bounded by
    /// [`Limits::console_bytes`].
    pub console: Vec<String>,
    pub duration: Duration,
}

/// Why a script has no result. The messages are the script author's to read: they never carry
/// hookline's internals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScriptError {
    /// It does not parse (or does not define the entry function); `line` and `column` count
    /// from 1.
    #[error("{message} (line {line}, column {column})")]
    Syntax {
        message: String,
        line: u32,
        column: u32,
    },
    /// The script does not define the entry function.
    #[error("the script does not define `{0}`")]
    NoEntry(String),
    /// The script defines the entry, but not as a function.
    #[error("the script's `{0}` is not a function")]
    NotAFunction(String),
    /// The script threw, or its promise was rejected.
    #[error("{0}")]
    Thrown(String),
    /// It ran out of time.
    #[error("the script ran longer than {0:?}")]
    Timeout(Duration),
    /// It ran out of memory.
    #[error("the script used more than {0} bytes of memory")]
    OutOfMemory(usize),
    /// Its promise can no longer settle: nothing it waits for is left to run.
    #[error("the script's promise never settled")]
    NeverSettled,
    /// Its result cannot be read as JSON (a function, a cycle, a BigInt).
    #[error("the script's result is not JSON: {0}")]
    NotJson(String),
    /// The engine could not start (out of memory before the script ran).
    #[error("the script engine could not start: {0}")]
    Engine(String),
}
