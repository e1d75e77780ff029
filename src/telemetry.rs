//! Logging setup. `RUST_LOG` picks the levels (default: info for hookline, warnings for the
//! libraries). Nothing secret is ever a field of a log event: not the admin token, not signing
//! keys, not hook URLs' credentials (refused anyway), not request bodies.

use tracing_subscriber::EnvFilter;

pub fn init() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("hookline=info,tower_http=warn,sqlx=warn,warn"));
    // `try_init`: tests may call this more than once.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .try_init();
}
