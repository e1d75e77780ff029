//! Wiring: open the store, settle the admin token, bind the listener, start the delivery
//! engine, serve until told to stop.

use crate::configuration::ServeArgs;
use crate::delivery::http::WebhookSender;
use crate::delivery::{DeliveryEngine, EngineSettings, Inbox, Publisher};
use crate::domain::id::new_secret;
use crate::domain::interaction::{CodeSendPolicy, LockoutPolicy};
use crate::identity::interactions::InteractionSettings;
use crate::identity::passwords::PasswordHasher;
use crate::metrics::Metrics;
use crate::routes::auth::token_hash;
use crate::routes::{overflow_router, router, AppState, Shared};
use crate::server::ServerLimits;
use crate::storage::{connect, Store};
use anyhow::{bail, Context};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

const ADMIN_TOKEN_SETTING: &str = "admin_token_sha256";
pub const MIN_ADMIN_TOKEN_LENGTH: usize = 16;

pub struct Application {
    listener: TcpListener,
    state: AppState,
    inbox: Inbox,
    settings: EngineSettings,
    args: ServeArgs,
    /// Set when this start generated the admin token; shown to the operator once.
    pub generated_admin_token: Option<String>,
}

/// The admin token's hash: from the configured token, else the stored hash of a token
/// generated earlier, else a new token (returned so it can be shown once).
async fn settle_admin_token(
    store: &dyn Store,
    configured: Option<&str>,
) -> anyhow::Result<([u8; 32], Option<String>)> {
    if let Some(token) = configured {
        if token.trim().len() < MIN_ADMIN_TOKEN_LENGTH {
            bail!("the admin token must be at least {MIN_ADMIN_TOKEN_LENGTH} characters long");
        }
        return Ok((token_hash(token.trim()), None));
    }
    if let Some(stored) = store.setting(ADMIN_TOKEN_SETTING).await? {
        let bytes = hex::decode(&stored).context("the stored admin token hash is not hex")?;
        let hash: [u8; 32] = bytes
            .try_into()
            .map_err(|_| anyhow::anyhow!("the stored admin token hash has the wrong length"))?;
        return Ok((hash, None));
    }
    let token = format!("hl_{}", new_secret(40));
    let hash = token_hash(&token);
    if !store
        .set_setting_if_absent(ADMIN_TOKEN_SETTING, &hex::encode(hash))
        .await?
    {
        bail!("another process stored an admin token at the same moment; start again");
    }
    Ok((hash, Some(token)))
}

impl Application {
    pub async fn build(args: ServeArgs) -> anyhow::Result<Self> {
        let options = crate::storage::ConnectOptions {
            pool_size: args.database_pool_size,
            busy_timeout: args.database_busy_timeout,
            create_database: args.create_database,
            encryption_key: args.encryption_key()?,
        };
        let store = connect(&args.database_url, options)
            .await
            .with_context(|| {
                format!(
                    "opening the database {}",
                    crate::storage::redact_url(&args.database_url)
                )
            })?;
        if args.role != crate::configuration::Role::All && args.database_url.starts_with("sqlite:")
        {
            bail!(
                "--role {} needs a database that several processes share (PostgreSQL): on SQLite one process serves the API and delivers",
                args.role.name()
            );
        }
        // A worker serves no /api route, so it has no use for the admin token.
        let (admin_token_hash, generated_admin_token) = if args.role.serves_api() {
            settle_admin_token(&*store, args.admin_token.as_deref()).await?
        } else {
            ([0; 32], None)
        };
        if args.role.serves_api() {
            crate::identity::users::rekey_emails(&*store)
                .await
                .context("re-keying stored emails in Unicode NFC")?;
        }
        let targets = crate::domain::target::TargetPolicy {
            allow_all_private: args.allow_private_targets,
            allowed: args.allowed_targets.clone(),
        };
        let sender = Arc::new(WebhookSender::new(args.request_timeout, targets.clone())?);
        let listener = TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let limits = crate::script::Limits {
            timeout: args.action_timeout,
            memory_bytes: usize::try_from(args.action_memory_bytes).unwrap_or(usize::MAX),
            ..crate::script::Limits::default()
        };
        let fetcher = Arc::new(crate::delivery::http::SenderFetcher {
            sender: sender.clone(),
            handle: tokio::runtime::Handle::current(),
        });
        // Two runners: deliveries' transforms cannot take the slots of sign-ins' scripts.
        let scripts = crate::script::ScriptRunner::new(
            limits,
            args.action_concurrency as usize,
            fetcher.clone(),
        );
        let settings = EngineSettings {
            retry_schedule: args.retry_schedule.clone(),
            request_timeout: args.request_timeout,
            max_in_flight: args.max_in_flight as usize,
            max_in_flight_per_hook: args.max_in_flight_per_hook as usize,
            shutdown_timeout: args.shutdown_timeout,
            transforms: crate::script::ScriptRunner::new(
                limits,
                args.transform_concurrency as usize,
                fetcher,
            ),
        };
        let (publisher, inbox) = Publisher::new(store.clone(), &settings);
        let operations =
            crate::delivery::operations::Operations::new(store.clone(), args.recovery_rate);
        let state = AppState::new(Shared {
            operations,
            store,
            sender,
            publisher,
            admin_token_hash,
            targets,
            metrics: Arc::new(Metrics::new()),
            trusted_proxies: args.trusted_proxies.clone(),
            interactions: InteractionSettings {
                lockout: LockoutPolicy {
                    max_failures: args.lockout_failures,
                    lock_ms: args.lockout_duration.as_millis() as i64,
                },
                codes: CodeSendPolicy {
                    max_sends: args.code_sends_per_recipient,
                    window_ms: args.code_send_window.as_millis() as i64,
                },
                passwords: PasswordHasher::new(
                    match args.password_hash_concurrency {
                        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
                        n => n as usize,
                    },
                    args.password_hash_queue_timeout,
                ),
                scripts,
            },
            console: crate::console::ConsoleSettings {
                session_ttl_ms: args.console_session_ttl.as_millis() as i64,
            },
        });
        Ok(Self {
            listener,
            state,
            inbox,
            settings,
            args,
            generated_admin_token,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves and delivers until `shutdown` is cancelled, then stops accepting requests, lets
    /// in-flight deliveries finish (or releases them) and returns.
    pub async fn run_until_stopped(self, shutdown: CancellationToken) -> anyhow::Result<()> {
        let Application {
            listener,
            state,
            inbox,
            settings,
            args,
            ..
        } = self;
        if args.allow_private_targets {
            tracing::warn!(
                "--allow-private-targets is on: hooks may call loopback and private addresses"
            );
        }
        // An API node starts no engine: its publisher's lease budget is never opened, so
        // every delivery it queues is left due, for the workers.
        let engine = args.role.delivers().then(|| {
            DeliveryEngine::start(
                state.store.clone(),
                state.sender.clone(),
                settings,
                inbox,
                state.metrics.clone(),
                shutdown.clone(),
            )
        });
        // Retention and auto-disable run where deliveries are sent (every node on SQLite; the workers on
        // PostgreSQL, where several pruning at once is safe).
        let retention = args.role.delivers().then(|| {
            let store = state.store.clone();
            let (metrics, stop) = (state.metrics.clone(), shutdown.clone());
            let (retention, disable_after) = (args.retention, args.disable_after);
            tokio::spawn(async move {
                tokio::join!(
                    crate::retention::run(store.clone(), metrics, retention, stop.clone()),
                    crate::delivery::autodisable::run(store, disable_after, stop),
                );
            })
        });
        let limits = ServerLimits {
            header_read_timeout: args.header_read_timeout,
            body_read_timeout: args.body_read_timeout,
            max_connections: connection_cap(&args),
            shutdown_timeout: args.shutdown_timeout,
        };
        let overflow = overflow_router(state.clone());
        let operations = state.clone();
        let app = router(state, args.max_body_bytes, args.role.serves_api());
        let address = listener.local_addr()?;
        tracing::info!(%address, role = args.role.name(), "hookline is listening");
        if args.role.serves_api() {
            tracing::info!(
                "the console is at http://{address}/console (sign in with the admin token)"
            );
        }
        // The server and the engine stop together, each within --shutdown-timeout.
        let engine = async {
            if let Some(engine) = engine {
                engine.join().await;
            }
        };
        tokio::join!(
            crate::server::serve(listener, app, overflow, limits, shutdown.clone()),
            engine
        );
        operations.operations.stop().await;
        if let Some(retention) = retention {
            let _ = retention.await;
        }
        tracing::info!("hookline stopped");
        Ok(())
    }
}

/// `--max-connections`, lowered to what the open-file limit leaves once the database pool,
/// the webhook sends and a margin are counted (after raising the soft limit if that helps).
fn connection_cap(args: &ServeArgs) -> usize {
    let wanted = args.max_connections as u64;
    let reserved = crate::server::HEALTH_HEADROOM as u64
        + args.max_in_flight as u64
        + args.database_pool_size as u64
        + 64;
    match crate::server::raise_open_file_limit(wanted + reserved) {
        Some(limit) if limit < wanted + reserved => {
            let cap = limit.saturating_sub(reserved).max(1);
            tracing::warn!(
                open_file_limit = limit,
                max_connections = cap,
                "the open-file limit is too low for --max-connections; serving fewer connections (raise `ulimit -n`)"
            );
            cap as usize
        }
        _ => wanted as usize,
    }
}
