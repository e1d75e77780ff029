//! Logging setup. `RUST_LOG` picks the levels (default: info for hookline, warnings for the
//! libraries). Nothing secret is ever a field of a log event: not the admin token, not signing
//! keys, not hook URLs' credentials (refused anyway), not request bodies.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("hookline=info,tower_http=warn,sqlx=warn,warn"));
    // Logs go to stderr, so that stdout carries only what is meant for the operator (the
    // generated admin token); colours only when stderr is a terminal. `try_init`: tests may
    // call this more than once.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .try_init();
}
