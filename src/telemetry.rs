//! Logging setup. `RUST_LOG` picks the levels (default: info for hookline, warnings for the
//! libraries); `--log-format` picks text or JSON lines. Nothing secret is ever a field of a log
//! event or a span: not the admin token, not signing keys, not hook URLs or header values, not
//! request bodies. Spans carry ids only: a request's route pattern, hook id and event id; a
//! delivery attempt's hook, event and delivery ids.

use crate::configuration::LogFormat;
use tracing_subscriber::EnvFilter;

pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("hookline=info,tower_http=warn,sqlx=warn,warn"));
    // Logs go to stderr, so that stdout carries only what is meant for the operator (the
    // generated admin token); colours only when stderr is a terminal. `try_init`: tests may
    // call this more than once.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder
            .with_target(false)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .try_init(),
        // Every enclosing span, so a line inside a delivery attempt carries the ids of the
        // attempt; the event's own fields flattened to the top level for easy querying.
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(true)
            .try_init(),
    };
}
