//! Sending one webhook request: the shared HTTP client, the headers and signatures, reading
//! the answer, and the connect-time half of the SSRF protection.

use crate::domain::signature::{
    logto_signature, standard_webhooks_signature, LOGTO_SIGNATURE_HEADER, WEBHOOK_ID_HEADER,
    WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER,
};
use crate::domain::target::{
    check_host, check_url, is_forbidden_ip, is_local_hostname, TargetError,
};
use crate::storage::DeliveryTarget;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};
use url::{Host, Url};

/// How much of a response body is kept in the attempt log.
pub const MAX_LOGGED_RESPONSE_BYTES: usize = 20 * 1024;

pub const HOOKLINE_USER_AGENT: &str = concat!("hookline/", env!("CARGO_PKG_VERSION"));

/// The result of one HTTP attempt.
#[derive(Debug, Clone)]
pub struct SendOutcome {
    /// The response status, if a response came.
    pub status: Option<u16>,
    /// Up to [`MAX_LOGGED_RESPONSE_BYTES`] of the response body (lossy UTF-8).
    pub body: Option<String>,
    /// The receiver's `Retry-After`, read only on 429 and 503.
    pub retry_after: Option<Duration>,
    /// What went wrong when there was no response (or the body could not be read).
    pub error: Option<String>,
    pub duration: Duration,
}

impl SendOutcome {
    /// 2xx is success; a 3xx is not followed and counts as a failure.
    pub fn is_success(&self) -> bool {
        matches!(self.status, Some(200..=299))
    }
}

/// One HTTP client for every delivery: keep-alive connections are reused across deliveries
/// to the same endpoint, which is most of the speed of a webhook engine.
pub struct WebhookSender {
    client: reqwest::Client,
    allow_private: bool,
}

/// Resolves host names and drops every address hookline may not call. Because reqwest asks
/// this resolver on every new connection, a name that resolved to a public address when the
/// hook was created and to a private one now is refused now.
struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs = resolve_public(&host)
                .await
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { Box::new(e) })?;
            Ok(Box::new(addrs.into_iter()) as Addrs)
        })
    }
}

async fn resolve_public(host: &str) -> Result<Vec<SocketAddr>, std::io::Error> {
    let refused = || {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{host} resolves only to non-public addresses, which hookline refuses without --allow-private-targets"),
        )
    };
    if is_local_hostname(host) {
        return Err(refused());
    }
    let public: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await?
        .filter(|a| !is_forbidden_ip(a.ip()))
        .collect();
    if public.is_empty() {
        return Err(refused());
    }
    Ok(public)
}

/// The create/update-time check of a hook URL: on top of [`check_url`], resolve a host name
/// and refuse it if any of its addresses is non-public. A name that does not resolve (yet) is
/// accepted: deliveries to it fail and are retried, and the connect-time check still applies.
pub async fn check_target(raw: &str, allow_private: bool) -> Result<Url, TargetError> {
    let url = check_url(raw, allow_private)?;
    if allow_private {
        return Ok(url);
    }
    if let Some(Host::Domain(domain)) = url.host() {
        if let Ok(addrs) = tokio::net::lookup_host((domain, 0)).await {
            if let Some(bad) = addrs.into_iter().find(|a| is_forbidden_ip(a.ip())) {
                return Err(TargetError::Private(format!("{domain} ({})", bad.ip())));
            }
        }
    }
    Ok(url)
}

/// The error and its causes, one line, without the URL (which may carry a secret in its query).
fn describe(e: reqwest::Error) -> String {
    let timeout = e.is_timeout();
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    if timeout {
        text.push_str(" (timed out)");
    }
    text
}

impl WebhookSender {
    pub fn new(request_timeout: Duration, allow_private: bool) -> anyhow::Result<Self> {
        let mut builder = reqwest::Client::builder()
            .use_rustls_tls()
            .timeout(request_timeout)
            .connect_timeout(request_timeout.min(Duration::from_secs(5)))
            .redirect(reqwest::redirect::Policy::none())
            // hookline's retry schedule is the only retry, and each attempt is logged: no
            // silent re-sends inside the client (and no retry budget bookkeeping per request).
            .retry(reqwest::retry::never())
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true);
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(PublicOnlyResolver));
        }
        Ok(Self {
            client: builder.build()?,
            allow_private,
        })
    }

    /// POSTs `body` to the target, signed both ways, with `msg_id` as `webhook-id`.
    pub async fn send(&self, target: &DeliveryTarget, msg_id: &str, body: String) -> SendOutcome {
        let started = Instant::now();
        let failed = |error: String| SendOutcome {
            status: None,
            body: None,
            retry_after: None,
            error: Some(error),
            duration: started.elapsed(),
        };
        // Literal IP hosts never reach the resolver, so they are checked here.
        let url = match target
            .url
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|u| check_host(u, self.allow_private).map(|()| u))
        {
            Ok(u) => u.clone(),
            Err(e) => return failed(format!("refused: {e}")),
        };
        let headers = match signed_headers(target, msg_id, body.as_bytes()) {
            Ok(h) => h,
            Err(e) => return failed(e),
        };
        let response = match self
            .client
            .post(url)
            .headers(headers)
            .body(body)
            .send()
            .await
        {
            Ok(r) => r,
            Err(e) => return failed(describe(e)),
        };
        let status = response.status().as_u16();
        let retry_after = if status == 429 || status == 503 {
            response
                .headers()
                .get(RETRY_AFTER)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| crate::domain::retry::parse_retry_after(v, SystemTime::now()))
        } else {
            None
        };
        let (body, error) = read_capped(response).await;
        SendOutcome {
            status: Some(status),
            body: Some(body),
            retry_after,
            error,
            duration: started.elapsed(),
        }
    }
}

/// Headers in Logto's order: user agent, the hook's own headers (which may replace the user
/// agent and content type), then the signatures, which nothing can replace.
fn signed_headers(target: &DeliveryTarget, msg_id: &str, body: &[u8]) -> Result<HeaderMap, String> {
    let mut h = HeaderMap::new();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(USER_AGENT, HeaderValue::from_static(HOOKLINE_USER_AGENT));
    if let Some(custom) = &target.config.headers {
        for (name, value) in custom.iter() {
            // Names and values were checked when the hook was saved.
            let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(value),
            ) else {
                return Err(format!("invalid custom header '{name}'"));
            };
            h.insert(n, v);
        }
    }
    let key = &target.signing_key;
    let timestamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let value = |s: String| HeaderValue::from_str(&s).map_err(|e| e.to_string());
    h.insert(LOGTO_SIGNATURE_HEADER, value(logto_signature(key, body))?);
    h.insert(WEBHOOK_ID_HEADER, value(msg_id.to_owned())?);
    h.insert(WEBHOOK_TIMESTAMP_HEADER, value(timestamp.to_string())?);
    h.insert(
        WEBHOOK_SIGNATURE_HEADER,
        value(standard_webhooks_signature(key, msg_id, timestamp, body))?,
    );
    Ok(h)
}

/// Reads at most [`MAX_LOGGED_RESPONSE_BYTES`] of the body; the rest is not waited for.
async fn read_capped(mut response: reqwest::Response) -> (String, Option<String>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut error = None;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_LOGGED_RESPONSE_BYTES - buf.len();
                buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if buf.len() >= MAX_LOGGED_RESPONSE_BYTES {
                    break;
                }
            }
            Ok(None) => break,
            Err(e) => {
                error = Some(format!("reading the response body failed: {}", describe(e)));
                break;
            }
        }
    }
    (String::from_utf8_lossy(&buf).into_owned(), error)
}
