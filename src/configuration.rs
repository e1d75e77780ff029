//! Command line and environment: every `hookline serve` setting is a flag that can also come
//! from a `HOOKLINE_*` variable. Values are parsed here, once, into their real types.

use crate::domain::interaction::TrustedProxies;
use crate::domain::retry::{RetrySchedule, DEFAULT_RETRY_SCHEDULE};
use crate::domain::target::AllowedTargets;
use clap::builder::BoolishValueParser;
use clap::{Args, Parser, Subcommand};
use std::time::Duration;

#[derive(Debug, Parser)]
#[command(
    name = "hookline",
    version,
    about = "A durable, Logto-compatible webhook engine for identity events"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// How log lines (on stderr) are written: `text` for people, `json` (one object per
    /// line, with the fields of every enclosing span) for log pipelines.
    #[arg(long, global = true, env = "HOOKLINE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// What one `hookline serve` process does (`--role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// The API and delivery: the only role on SQLite.
    All,
    /// The API (ingest, hooks, identity, interactions) and never a delivery; the events it
    /// commits are delivered by the worker nodes, woken through the database.
    Api,
    /// Delivery only; serves just `/healthz`, `/readyz` and `/metrics`.
    Worker,
}

impl Role {
    /// The flag's value: `all`, `api` or `worker`.
    pub fn name(self) -> &'static str {
        match self {
            Role::All => "all",
            Role::Api => "api",
            Role::Worker => "worker",
        }
    }

    pub fn serves_api(self) -> bool {
        self != Role::Worker
    }

    pub fn delivers(self) -> bool {
        self != Role::Api
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP API and the delivery workers in one process.
    Serve(ServeArgs),
}

#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port the HTTP API listens on.
    #[arg(long, env = "HOOKLINE_LISTEN", default_value = "127.0.0.1:3001")]
    pub listen: String,

    /// Where events, hooks and the delivery queue are stored: sqlite://PATH (a file, created
    /// and migrated on first start; one process per file), or postgres://USER[:PASSWORD]@HOST
    /// [:PORT]/DATABASE[?sslmode=…] (also postgresql://; migrated on start; any number of
    /// nodes may share it).
    #[arg(
        long,
        env = "HOOKLINE_DATABASE_URL",
        default_value = "sqlite://hookline.db"
    )]
    pub database_url: String,

    /// SQLite only: how long a write waits for a lock that another process (a backup tool,
    /// the sqlite3 shell) holds on the database file before it is answered 503
    /// `database.unavailable`, and `/readyz` answers 503 meanwhile.
    #[arg(long, env = "HOOKLINE_DATABASE_BUSY_TIMEOUT", default_value = "5s", value_parser = busy_timeout)]
    pub database_busy_timeout: Duration,

    /// SQLite only: create a new, empty database even though the file is missing next to an
    /// earlier database's traces (its `-wal`, `-shm` or `.lock` file). Without it, hookline
    /// refuses to start there, since the database was most likely moved or deleted.
    #[arg(long, env = "HOOKLINE_CREATE_DATABASE", value_parser = BoolishValueParser::new(), default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub create_database: bool,

    /// What this process does: `all` (the API and delivery), `api` (the API, never a
    /// delivery) or `worker` (delivery, with only the health and metrics routes), so that
    /// ingest and delivery scale apart. `api` and `worker` need a database that several
    /// processes share (PostgreSQL).
    #[arg(long, env = "HOOKLINE_ROLE", value_enum, default_value_t = Role::All)]
    pub role: Role,

    /// PostgreSQL only: connections each node keeps to the database for the API and
    /// publishing. Claims and attempt records use 4 more of their own.
    #[arg(long, env = "HOOKLINE_DATABASE_POOL_SIZE", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub database_pool_size: u32,

    /// Bearer token for the /api routes (at least 16 characters). Without one, the first start
    /// generates a token, prints it once and stores only its hash.
    #[arg(long, env = "HOOKLINE_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// Time a receiver gets to answer one webhook request.
    #[arg(long, env = "HOOKLINE_REQUEST_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    pub request_timeout: Duration,

    /// Delays between the attempts of a failing delivery (each ±20 % jitter); when they are
    /// used up the delivery is marked failed. Default: the Standard Webhooks schedule.
    #[arg(long, env = "HOOKLINE_RETRY_SCHEDULE", default_value = DEFAULT_RETRY_SCHEDULE)]
    pub retry_schedule: RetrySchedule,

    /// Allow hook URLs on loopback, private, link-local and other non-public addresses
    /// (for local development only).
    #[arg(long, env = "HOOKLINE_ALLOW_PRIVATE_TARGETS", value_parser = BoolishValueParser::new(), default_value_t = false, num_args = 0..=1, default_missing_value = "true")]
    pub allow_private_targets: bool,

    /// Non-public targets hooks may reach without opening them all: CIDR ranges, addresses
    /// and host names, comma-separated (`10.1.2.0/24,receiver.internal,*.svc.cluster.local`).
    /// A listed name may resolve to any address; anything else non-public stays refused, at
    /// save and after every DNS lookup.
    #[arg(long, env = "HOOKLINE_ALLOWED_TARGETS", default_value = "", value_parser = allowed_targets)]
    pub allowed_targets: AllowedTargets,

    /// Webhook requests in flight at once, over all hooks.
    #[arg(long, env = "HOOKLINE_MAX_IN_FLIGHT", default_value_t = 256, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub max_in_flight: u32,

    /// Webhook requests in flight at once to one hook, so that a slow endpoint can hold only
    /// this many of the slots. It also caps one hook's rate at this many requests per
    /// round trip: 64 keeps a quarter of the default slots for the other hooks and lets one
    /// hook take 3,000 deliveries/s at ~20 ms per request (16 held it under 2,000/s on a
    /// loaded 2-core machine, BENCHMARKS.md "Sustained load").
    #[arg(long, env = "HOOKLINE_MAX_IN_FLIGHT_PER_HOOK", default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub max_in_flight_per_hook: u32,

    /// Deliveries per second a recovery or a replay (`POST /api/hooks/{id}/recover`,
    /// `…/replay`) queues, in steps of at most 500, so that a large one does not hold the
    /// database or crowd out live traffic.
    #[arg(long, env = "HOOKLINE_RECOVERY_RATE", default_value_t = 5_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub recovery_rate: u32,

    /// Wall-clock time one script run (an action, its dry run) may take, the wait for a run
    /// slot and its `fetch` calls included (Logto: 5 s). A script hook's runs take its
    /// `timeoutMs` instead; a transform at most half of `--request-timeout`.
    #[arg(long, env = "HOOKLINE_ACTION_TIMEOUT", default_value = "5s", value_parser = positive_duration)]
    pub action_timeout: std::time::Duration,

    /// Bytes of memory one script run may take (Logto: 128 MB).
    #[arg(long, env = "HOOKLINE_ACTION_MEMORY_BYTES", default_value_t = 128 * 1024 * 1024, value_parser = clap::value_parser!(u64).range(1_048_576..=4_294_967_296))]
    pub action_memory_bytes: u64,

    /// Actions' and script hooks' runs at once (and saves' compiles); a run that finds none
    /// free within its timeout is refused (503 `server.busy`; a script hook's failure policy
    /// decides).
    #[arg(long, env = "HOOKLINE_ACTION_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1_024))]
    pub action_concurrency: u32,

    /// Hooks' transforms (`config.transform`) run at once, apart from the actions' and
    /// script hooks' runs (`--action-concurrency`), so deliveries cannot starve sign-ins. A
    /// delivery whose transform finds no run slot within half of `--request-timeout` goes
    /// back to the queue, no attempt counted.
    #[arg(long, env = "HOOKLINE_TRANSFORM_CONCURRENCY", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1_024))]
    pub transform_concurrency: u32,

    /// A hook whose attempts have all failed for this long is disabled (with its reason and a
    /// `Hook.Disabled` event); `PATCH {"enabled": true}` enables it again.
    #[arg(long, env = "HOOKLINE_DISABLE_AFTER", default_value = "5days", value_parser = positive_duration)]
    pub disable_after: Duration,

    /// How long events, finished deliveries and attempts are kept (queued deliveries always
    /// are, and attempts at least 24 h, for recent-logs and the hooks' stats). Deleted in
    /// small batches in the background.
    #[arg(long, env = "HOOKLINE_RETENTION", default_value = "30days", value_parser = positive_duration)]
    pub retention: Duration,

    /// Seals hooks' signing keys at rest with AES-256-GCM: 32 bytes in base64 (`openssl rand
    /// -base64 32`). Keys stored in the clear before are sealed at start; once sealed, they
    /// need this key to start. Never logged.
    #[arg(
        long,
        env = "HOOKLINE_ENCRYPTION_KEY",
        hide_env_values = true,
        conflicts_with = "encryption_key_file"
    )]
    pub encryption_key: Option<Secret>,

    /// `--encryption-key` read from a file (its whole content, surrounding whitespace aside).
    #[arg(long, env = "HOOKLINE_ENCRYPTION_KEY_FILE")]
    pub encryption_key_file: Option<std::path::PathBuf>,

    /// How long a connection may take to send a request's head, counted from when it is ready
    /// for one: a client sending headers slowly, or an idle keep-alive connection, is closed
    /// when it runs out.
    #[arg(long, env = "HOOKLINE_HEADER_READ_TIMEOUT", default_value = "10s", value_parser = positive_duration)]
    pub header_read_timeout: Duration,

    /// How long a client may take to send a request's body once its head has arrived; a
    /// slower one is answered 408 `request.timeout`.
    #[arg(long, env = "HOOKLINE_BODY_READ_TIMEOUT", default_value = "30s", value_parser = positive_duration)]
    pub body_read_timeout: Duration,

    /// Connections served at once. 32 more are accepted for health probes only (the rest of
    /// their requests are answered 503 `server.busy`); past those, new connections are closed.
    /// Lowered at start, with a warning, if the process may not open that many files.
    #[arg(long, env = "HOOKLINE_MAX_CONNECTIONS", default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub max_connections: u32,

    /// Once SIGTERM or SIGINT arrives, how long requests and webhook sends in progress get to
    /// finish; then open connections are closed, unfinished deliveries are released to the
    /// queue, and the process exits 0.
    #[arg(long, env = "HOOKLINE_SHUTDOWN_TIMEOUT", default_value = "30s", value_parser = humantime::parse_duration)]
    pub shutdown_timeout: Duration,

    /// Password hashes and checks (argon2id, 19 MiB and tens of milliseconds of CPU each) run
    /// at once; 0 means one per core. Their memory is bounded by this many times 19 MiB (64
    /// MiB for imported argon2 digests).
    #[arg(long, env = "HOOKLINE_PASSWORD_HASH_CONCURRENCY", default_value_t = 0, value_parser = clap::value_parser!(u32).range(0..=1024))]
    pub password_hash_concurrency: u32,

    /// How long a sign-in, registration or password change waits for a free password-hashing
    /// slot before it is answered 503 `server.busy` with `Retry-After`.
    #[arg(long, env = "HOOKLINE_PASSWORD_HASH_QUEUE_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub password_hash_queue_timeout: Duration,

    /// Largest request body the API accepts, in bytes.
    #[arg(long, env = "HOOKLINE_MAX_BODY_BYTES", default_value_t = 1024 * 1024)]
    pub max_body_bytes: usize,

    /// Proxies (addresses or CIDR ranges, comma-separated) whose `X-Forwarded-For` names the
    /// end user's address in interaction calls. From anyone else it is ignored.
    #[arg(long, env = "HOOKLINE_TRUSTED_PROXIES", default_value = "")]
    pub trusted_proxies: TrustedProxies,

    /// Failed verifications of one identifier (known or not) within an hour that lock it.
    /// Logto's sentinel default: 100.
    #[arg(long, env = "HOOKLINE_LOCKOUT_FAILURES", default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub lockout_failures: u32,

    /// How long a locked identifier stays locked. Logto's sentinel default: 60 minutes.
    #[arg(long, env = "HOOKLINE_LOCKOUT_DURATION", default_value = "60m", value_parser = humantime::parse_duration)]
    pub lockout_duration: Duration,

    /// How long a console session lasts from its sign-in (`/console`), at most 30 days; wrong
    /// admin tokens there are throttled per address with --lockout-failures and
    /// --lockout-duration.
    #[arg(long, env = "HOOKLINE_CONSOLE_SESSION_TTL", default_value = "12h", value_parser = session_ttl)]
    pub console_session_ttl: Duration,

    /// Verification codes one recipient may be sent within --code-send-window. Logto's
    /// message rate guard default: 10.
    #[arg(long, env = "HOOKLINE_CODE_SENDS_PER_RECIPIENT", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub code_sends_per_recipient: u32,

    /// The sliding window --code-sends-per-recipient counts in. Logto's default: 600 s.
    #[arg(long, env = "HOOKLINE_CODE_SEND_WINDOW", default_value = "10m", value_parser = humantime::parse_duration)]
    pub code_send_window: Duration,
}

/// `--database-busy-timeout`: from 1 ms to 10 minutes (SQLite takes milliseconds as an
/// `int`; anything longer would only hide a stuck lock).
fn busy_timeout(raw: &str) -> Result<Duration, String> {
    match humantime::parse_duration(raw) {
        Ok(d) if d >= Duration::from_millis(1) && d <= Duration::from_secs(600) => Ok(d),
        Ok(_) => Err("must be from 1ms to 10m".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// `--allowed-targets` (see `domain::target::AllowedTargets`).
fn allowed_targets(raw: &str) -> Result<AllowedTargets, String> {
    raw.parse()
}

/// A duration of more than zero (`humantime` syntax: `10s`, `2m`, `500ms`).
fn positive_duration(raw: &str) -> Result<Duration, String> {
    match humantime::parse_duration(raw) {
        Ok(d) if !d.is_zero() => Ok(d),
        Ok(_) => Err("must be more than zero".into()),
        Err(e) => Err(e.to_string()),
    }
}

/// A console session's lifetime: more than zero and at most 30 days (a session outliving
/// that is a stolen cookie's gift).
fn session_ttl(raw: &str) -> Result<Duration, String> {
    let d = positive_duration(raw)?;
    if d > Duration::from_secs(30 * 24 * 60 * 60) {
        return Err("must be at most 30 days".into());
    }
    Ok(d)
}

/// A secret flag value: parsed as text, never printed (`Debug` says only that it is set).
#[derive(Clone)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl ServeArgs {
    /// The 32-byte key of `--encryption-key` or `--encryption-key-file`, if either is set;
    /// an error that says which is wrong, never what it holds.
    pub fn encryption_key(&self) -> anyhow::Result<Option<[u8; 32]>> {
        use anyhow::Context;
        let raw = match (&self.encryption_key, &self.encryption_key_file) {
            (Some(k), _) => k.0.clone(),
            (None, Some(path)) => std::fs::read_to_string(path)
                .with_context(|| format!("reading --encryption-key-file {}", path.display()))?,
            (None, None) => return Ok(None),
        };
        crate::storage::cipher::parse_encryption_key(&raw)
            .map(Some)
            .map_err(|e| anyhow::anyhow!("--encryption-key: {e}"))
    }

    /// The settings a test or an embedding program starts from: defaults, no admin token.
    pub fn defaults() -> Self {
        match Cli::try_parse_from(["hookline", "serve"]) {
            Ok(Cli {
                command: Command::Serve(args),
                ..
            }) => args,
            Err(e) => unreachable!("the defaults parse: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_console_session_lasts_more_than_nothing_and_at_most_30_days() {
        assert_eq!(session_ttl("12h"), Ok(Duration::from_secs(12 * 3600)));
        assert_eq!(session_ttl("30days"), Ok(Duration::from_secs(30 * 86400)));
        assert!(session_ttl("31days").unwrap_err().contains("30 days"));
        assert!(session_ttl("0s").is_err());
    }
}
