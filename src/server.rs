//! The HTTP server: accepts connections and serves the router on each, within limits that a
//! slow or hostile client cannot stretch (issue 13, "Slow clients and shutdown").
//!
//! - **Header-read timeout** (`--header-read-timeout`): hyper's timer starts when a connection
//!   is ready for a request, so it bounds both a request head sent slowly (a slow-loris) and
//!   an idle keep-alive connection; either is closed when it runs out.
//! - **Body-read timeout** (`--body-read-timeout`): every request carries a [`BodyDeadline`]
//!   counted from its head's arrival; the one body reader (`routes::extract::ApiJson`)
//!   answers 408 `request.timeout` when it passes. Bodies are read only after the admin
//!   token is checked, so unauthenticated bodies are never buffered.
//! - **Connection cap** (`--max-connections`), with [`HEALTH_HEADROOM`] more kept for probes:
//!   a connection over the cap is served by the overflow router (the health routes, and
//!   503 `server.busy` for the rest), one request and a short head timeout, so a flood of
//!   idle connections cannot take `/healthz` down with it. Past the headroom, new connections
//!   are closed at once rather than left in the kernel's backlog.
//! - **Bounded graceful shutdown** (`--shutdown-timeout`): the listener closes, idle
//!   connections close, requests in progress get until the timeout, then every connection
//!   still open is dropped.

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tower_service::Service;

/// Connections accepted past `--max-connections` for health probes (served by the overflow
/// router). A fixed number: it only has to outlast a load balancer's few probes.
pub const HEALTH_HEADROOM: usize = 32;

/// The longest an overflow connection may take to send its one request head.
const OVERFLOW_HEADER_TIMEOUT: Duration = Duration::from_secs(2);

/// The limits of [`serve`], from `hookline serve`'s flags.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// From a connection being ready for a request to that request's head being read.
    pub header_read_timeout: Duration,
    /// From a request's head being read to its whole body being read.
    pub body_read_timeout: Duration,
    /// Connections served at once (more are served by the overflow router, see module doc).
    pub max_connections: usize,
    /// How long open connections get to finish once shutdown begins.
    pub shutdown_timeout: Duration,
}

/// When the request's body must have been read by: a request extension set by [`serve`]
/// when the head arrives. Absent (no deadline) for requests that did not come through it.
#[derive(Debug, Clone, Copy)]
pub struct BodyDeadline(pub Instant);

/// Serves `app` on `listener` until `shutdown` is cancelled, then shuts down within
/// `limits.shutdown_timeout`. `overflow` serves connections over the cap.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    overflow: Router,
    limits: ServerLimits,
    shutdown: CancellationToken,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    let spare = Arc::new(Semaphore::new(HEALTH_HEADROOM));
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors, most often: wait for some to close rather
                        // than spin on the error.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let (router, permit, overflowing) = match slots.clone().try_acquire_owned() {
                    Ok(permit) => (app.clone(), permit, false),
                    Err(_) => match spare.clone().try_acquire_owned() {
                        Ok(permit) => (overflow.clone(), permit, true),
                        Err(_) => {
                            tracing::debug!(%peer, "connection refused: --max-connections and the health headroom are in use");
                            continue;
                        }
                    },
                };
                let _ = stream.set_nodelay(true);
                connections.spawn(serve_connection(
                    stream,
                    peer,
                    router,
                    limits,
                    overflowing,
                    permit,
                    shutdown.clone(),
                ));
            }
        }
    }
    drop(listener);
    let deadline = Instant::now() + limits.shutdown_timeout;
    while let Ok(Some(_)) = tokio::time::timeout_at(deadline, connections.join_next()).await {}
    if !connections.is_empty() {
        tracing::warn!(
            count = connections.len(),
            "closing connections still open after --shutdown-timeout"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    router: Router,
    limits: ServerLimits,
    overflowing: bool,
    _permit: OwnedSemaphorePermit,
    shutdown: CancellationToken,
) {
    let body_read_timeout = limits.body_read_timeout;
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        let extensions = request.extensions_mut();
        extensions.insert(ConnectInfo(peer));
        extensions.insert(BodyDeadline(Instant::now() + body_read_timeout));
        // A `Router` is always ready, so `call` needs no `poll_ready` first.
        router.clone().call(request)
    });
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new());
    if overflowing {
        builder
            .header_read_timeout(OVERFLOW_HEADER_TIMEOUT.min(limits.header_read_timeout))
            .keep_alive(false);
    } else {
        builder.header_read_timeout(limits.header_read_timeout);
    }
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = shutdown.cancelled() => {
            // Closes the connection if idle; else it ends after the response in progress.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Raises this process's open-file limit (`RLIMIT_NOFILE`) to its hard limit when `needed`
/// descriptors do not fit under the soft one, as Go's runtime and nginx do, and returns the
/// limit in force (`None` where it cannot be read).
pub fn raise_open_file_limit(needed: u64) -> Option<u64> {
    #[cfg(unix)]
    {
        let mut limit = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: getrlimit and setrlimit only read and write the struct passed by pointer.
        unsafe {
            if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
                return None;
            }
            if limit.rlim_cur < needed && limit.rlim_cur < limit.rlim_max {
                let raised = libc::rlimit {
                    rlim_cur: limit.rlim_max,
                    rlim_max: limit.rlim_max,
                };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                    limit = raised;
                }
            }
        }
        Some(limit.rlim_cur)
    }
    #[cfg(not(unix))]
    {
        let _ = needed;
        None
    }
}
