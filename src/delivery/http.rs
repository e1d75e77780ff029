//! Sending one webhook request: the shared HTTP client, the headers and signatures, reading
//! the answer, and the connect-time half of the SSRF protection.

use crate::domain::signature::{
    logto_signature, standard_webhooks_signature, LOGTO_SIGNATURE_HEADER, WEBHOOK_ID_HEADER,
    WEBHOOK_SIGNATURE_HEADER, WEBHOOK_TIMESTAMP_HEADER,
};
use crate::domain::target::{check_host, check_url, is_local_hostname, TargetError, TargetPolicy};
use crate::storage::DeliveryTarget;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderValue, CONTENT_TYPE, RETRY_AFTER, USER_AGENT};
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::connect::dns::Name;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};
use url::{Host, Url};

/// How much of a response body is kept in the attempt log.
pub const MAX_LOGGED_RESPONSE_BYTES: usize = 20 * 1024;

pub const HOOKLINE_USER_AGENT: &str = concat!("hookline/", env!("CARGO_PKG_VERSION"));

/// The result of one HTTP attempt.
#[derive(Debug, Clone, Default)]
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

/// The client's connector: TCP through [`Resolver`], with TLS for `https` targets.
type Connector = hyper_rustls::HttpsConnector<HttpConnector<Resolver>>;

/// One HTTP client for every delivery: keep-alive connections are reused across deliveries
/// to the same endpoint, which is most of the speed of a webhook engine.
///
/// It is hyper's own pooled client, not a convenience client on top of it: a delivery is
/// always the same request (a POST of a ready body to a URL parsed when the hook was cached),
/// so it needs none of a general client's per-request work (URL re-parsing, header merging,
/// redirect and retry layers), which cost about a fifth of the CPU of a delivery
/// (BENCHMARKS.md).
pub struct WebhookSender {
    client: Client<Connector, Full<Bytes>>,
    request_timeout: Duration,
    policy: Arc<TargetPolicy>,
}

/// Resolves host names and drops every address the policy refuses (a listed name keeps all
/// of its own). Because the client asks it on every new connection, a name that resolved to
/// a public address when the hook was created and to a private one now is refused now.
#[derive(Clone)]
struct Resolver {
    policy: Arc<TargetPolicy>,
}

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str();
            let addrs = if policy.allows_name(host) {
                tokio::net::lookup_host((host, 0)).await?.collect()
            } else {
                resolve_allowed(host, &policy).await?
            };
            Ok(Vec::into_iter(addrs))
        })
    }
}

/// `host`'s addresses that `policy` allows; an error naming why when none is (it becomes the
/// attempt's logged error).
async fn resolve_allowed(
    host: &str,
    policy: &TargetPolicy,
) -> Result<Vec<SocketAddr>, std::io::Error> {
    let refused = |why: String| {
        std::io::Error::new(
            std::io::ErrorKind::PermissionDenied,
            format!("{host} {why}, which hookline refuses unless listed in --allowed-targets (or with --allow-private-targets)"),
        )
    };
    if is_local_hostname(host) {
        return Err(refused("is a local name".into()));
    }
    let all: Vec<SocketAddr> = tokio::net::lookup_host((host, 0)).await?.collect();
    let allowed: Vec<SocketAddr> = all
        .iter()
        .copied()
        .filter(|a| policy.allows_ip(a.ip()))
        .collect();
    if allowed.is_empty() {
        let addrs: Vec<String> = all.iter().map(|a| a.ip().to_string()).collect();
        return Err(refused(format!(
            "resolves only to non-public addresses ({})",
            addrs.join(", ")
        )));
    }
    Ok(allowed)
}

/// The create/update-time check of a hook URL: on top of [`check_url`], resolve a host name
/// and refuse it if any of its addresses is non-public. A name that does not resolve (yet) is
/// accepted: deliveries to it fail and are retried, and the connect-time check still applies.
pub async fn check_target(raw: &str, policy: &TargetPolicy) -> Result<Url, TargetError> {
    let url = check_url(raw, policy)?;
    if let Some(Host::Domain(domain)) = url.host() {
        if policy.allows_name(domain) {
            return Ok(url);
        }
        if let Ok(addrs) = tokio::net::lookup_host((domain, 0)).await {
            if let Some(bad) = addrs.into_iter().find(|a| !policy.allows_ip(a.ip())) {
                return Err(TargetError::Private(format!("{domain} ({})", bad.ip())));
            }
        }
    }
    Ok(url)
}

/// The error and its causes, one line. hyper's errors do not carry the URL (which may hold
/// a secret in its query).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

impl WebhookSender {
    pub fn new(request_timeout: Duration, policy: TargetPolicy) -> anyhow::Result<Self> {
        let policy = Arc::new(policy);
        let mut http = HttpConnector::new_with_resolver(Resolver {
            policy: policy.clone(),
        });
        http.enforce_http(false);
        http.set_nodelay(true);
        http.set_connect_timeout(Some(request_timeout.min(Duration::from_secs(5))));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        // No redirects are followed (a 3xx is a failed attempt) and nothing is retried inside
        // the client: hookline's retry schedule is the only retry, and each attempt is logged.
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .pool_timer(TokioTimer::new())
            .build(https);
        Ok(Self {
            client,
            request_timeout,
            policy,
        })
    }

    /// POSTs `body` to the target, signed both ways, with `msg_id` as `webhook-id`. The
    /// timeout (`--request-timeout`, or the hook's shorter `config.timeoutMs`) covers
    /// everything up to the end of the (capped) response body.
    pub async fn send(&self, target: &DeliveryTarget, msg_id: &str, body: String) -> SendOutcome {
        self.send_as(target, msg_id, body, None, self.request_timeout)
            .await
    }

    /// [`Self::send`] with `custom` headers in place of the hook's own (those its transform
    /// chose), when given, and within `left` (what the attempt's transform left of the
    /// request timeout).
    pub async fn send_as(
        &self,
        target: &DeliveryTarget,
        msg_id: &str,
        body: String,
        custom: Option<&HeaderMap>,
        left: Duration,
    ) -> SendOutcome {
        // A hook's own timeout may shorten `--request-timeout`, never lengthen it: the lease
        // every claim takes is reckoned from the latter.
        let timeout = target.config.timeout_ms.map_or(self.request_timeout, |ms| {
            Duration::from_millis(ms).min(self.request_timeout)
        });
        if left.is_zero() {
            return SendOutcome {
                error: Some(
                    "the transform took the whole request timeout; nothing was sent".into(),
                ),
                ..Default::default()
            };
        }
        self.post(target, msg_id, body, timeout.min(left), custom)
            .await
    }

    /// `--request-timeout`: how long one attempt may take, its transform included.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }

    /// [`Self::send`] with its own timeout (a blocking hook's).
    pub async fn send_within(
        &self,
        target: &DeliveryTarget,
        msg_id: &str,
        body: String,
        timeout: Duration,
    ) -> SendOutcome {
        self.post(target, msg_id, body, timeout, None).await
    }

    async fn post(
        &self,
        target: &DeliveryTarget,
        msg_id: &str,
        body: String,
        timeout: Duration,
        custom: Option<&HeaderMap>,
    ) -> SendOutcome {
        let started = Instant::now();
        let failed = |error: String| SendOutcome {
            status: None,
            body: None,
            retry_after: None,
            error: Some(error),
            duration: started.elapsed(),
        };
        // Literal IP hosts never reach the resolver, so they are checked here.
        let checked = target
            .url
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|u| check_host(u, &self.policy));
        if let Err(e) = checked {
            return failed(format!("refused: {e}"));
        }
        let Some(uri) = target.uri.clone() else {
            return failed(format!(
                "refused: {} is not a valid request URI",
                target.config.url.as_deref().unwrap_or("(none)")
            ));
        };
        let custom = match custom {
            Some(c) => Ok(c),
            None => target.headers.as_ref().map_err(Clone::clone),
        };
        let headers = match custom.and_then(|c| signed_headers(target, c, msg_id, body.as_bytes()))
        {
            Ok(h) => h,
            Err(e) => return failed(e),
        };
        let mut request = Request::new(Full::new(Bytes::from(body)));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let exchange = async {
            let response = self.client.request(request).await?;
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
            // A redirect is not followed (it is a failed attempt); where it pointed goes into
            // the attempt's log, so the fix (the hook's new URL) is plain to see.
            let redirect = if (300..400).contains(&status) {
                let to = response.headers().get(http::header::LOCATION).map(|v| {
                    String::from_utf8_lossy(v.as_bytes())
                        .chars()
                        .take(2048)
                        .collect::<String>()
                });
                Some(match to {
                    Some(to) => format!("redirected ({status}) to {to}; redirects are not followed, so point the hook at the final URL"),
                    None => format!("redirected ({status}) without a location; redirects are not followed"),
                })
            } else {
                None
            };
            let (body, error) = read_capped(response.into_body(), MAX_LOGGED_RESPONSE_BYTES).await;
            let error = redirect.or(error);
            Ok::<_, hyper_util::client::legacy::Error>((status, retry_after, body, error))
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(Ok((status, retry_after, body, error))) => SendOutcome {
                status: Some(status),
                body: Some(body),
                retry_after,
                error,
                duration: started.elapsed(),
            },
            Ok(Err(e)) => failed(describe(&e)),
            Err(_) => failed(format!(
                "the request timed out after {}",
                humantime::format_duration(timeout)
            )),
        }
    }
}

/// The largest response body a script's `fetch` reads; a longer one fails the fetch.
pub const MAX_FETCH_RESPONSE_BYTES: usize = 1024 * 1024;

impl WebhookSender {
    /// A script's `fetch` (issue 16): the script's method, headers and body, through the
    /// deliveries' client and target rules (the URL and a literal address checked here, every
    /// resolved address in the resolver, so a private target is refused unless allowed), within
    /// `timeout`. Redirects are not followed (the script sees the 3xx); a response body over
    /// [`MAX_FETCH_RESPONSE_BYTES`] fails the fetch. Errors are the script's to read.
    pub async fn fetch(
        &self,
        req: crate::script::FetchRequest,
        timeout: Duration,
    ) -> Result<crate::script::FetchResponse, String> {
        let url = check_url(&req.url, &self.policy).map_err(|e| format!("refused: {e}"))?;
        let uri: http::Uri = url
            .as_str()
            .split('#')
            .next()
            .unwrap_or_default()
            .parse()
            .map_err(|e| format!("invalid URL: {e}"))?;
        let method =
            Method::from_bytes(req.method.to_ascii_uppercase().as_bytes()).map_err(|_| {
                format!(
                    "invalid method {:?}",
                    req.method.chars().take(32).collect::<String>()
                )
            })?;
        let mut headers = HeaderMap::with_capacity(req.headers.len() + 1);
        headers.insert(USER_AGENT, HeaderValue::from_static(HOOKLINE_USER_AGENT));
        for (name, value) in &req.headers {
            let name = http::header::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("invalid header name {name:?}"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("invalid value for header {name}"))?;
            headers.insert(name, value);
        }
        let mut request = Request::new(Full::new(Bytes::from(req.body.unwrap_or_default())));
        *request.method_mut() = method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        let exchange = async {
            let response = self
                .client
                .request(request)
                .await
                .map_err(|e| describe(&e))?;
            let status = response.status().as_u16();
            let headers = response
                .headers()
                .iter()
                .map(|(k, v)| {
                    (
                        k.to_string(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect();
            let (body, error) =
                read_capped(response.into_body(), MAX_FETCH_RESPONSE_BYTES + 1).await;
            if let Some(e) = error {
                return Err(e);
            }
            if body.len() > MAX_FETCH_RESPONSE_BYTES {
                return Err(format!(
                    "the response body is longer than {MAX_FETCH_RESPONSE_BYTES} bytes"
                ));
            }
            Ok(crate::script::FetchResponse {
                status,
                headers,
                body,
            })
        };
        match tokio::time::timeout(timeout, exchange).await {
            Ok(result) => result,
            Err(_) => Err(format!(
                "timed out after {}",
                humantime::format_duration(timeout)
            )),
        }
    }
}

/// A script's [`crate::script::Fetcher`] over the shared client: the run's thread (a
/// blocking-pool thread) waits on the runtime for each fetch.
pub struct SenderFetcher {
    pub sender: Arc<WebhookSender>,
    pub handle: tokio::runtime::Handle,
}

impl crate::script::Fetcher for SenderFetcher {
    fn fetch(
        &self,
        request: crate::script::FetchRequest,
        timeout: Duration,
    ) -> Result<crate::script::FetchResponse, String> {
        self.handle.block_on(self.sender.fetch(request, timeout))
    }
}

/// Headers in Logto's order: user agent, the hook's own headers (which may replace the user
/// agent and content type), then the signatures, which nothing can replace.
fn signed_headers(
    target: &DeliveryTarget,
    custom: &HeaderMap,
    msg_id: &str,
    body: &[u8],
) -> Result<HeaderMap, String> {
    let mut h = HeaderMap::with_capacity(8 + custom.len());
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(USER_AGENT, HeaderValue::from_static(HOOKLINE_USER_AGENT));
    for (name, value) in custom {
        h.insert(name.clone(), value.clone());
    }
    let key = &target.signing_key;
    let timestamp = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or_default();
    let value = |s: String| HeaderValue::try_from(s).map_err(|e| e.to_string());
    h.insert(LOGTO_SIGNATURE_HEADER, value(logto_signature(key, body))?);
    h.insert(WEBHOOK_ID_HEADER, value(msg_id.to_owned())?);
    h.insert(WEBHOOK_TIMESTAMP_HEADER, value(timestamp.to_string())?);
    let mut signatures = standard_webhooks_signature(key, msg_id, timestamp, body);
    // During a rotation's grace period, a signature with the previous key too (Standard
    // Webhooks: space-separated, any one verifies); `logto-signature-sha-256` has room for
    // one, the new key's.
    if let Some(previous) = target
        .previous_key
        .as_ref()
        .and_then(|p| p.valid_at(crate::clock::now_ms()))
    {
        signatures.push(' ');
        signatures.push_str(&standard_webhooks_signature(
            previous, msg_id, timestamp, body,
        ));
    }
    h.insert(WEBHOOK_SIGNATURE_HEADER, value(signatures)?);
    Ok(h)
}

/// Reads at most `cap` bytes of the body; the rest is not waited for.
async fn read_capped(mut body: Incoming, cap: usize) -> (String, Option<String>) {
    let mut buf: Vec<u8> = Vec::new();
    let mut error = None;
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                let Ok(chunk) = frame.into_data() else {
                    continue; // trailers
                };
                let room = cap - buf.len();
                buf.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if buf.len() >= cap {
                    break;
                }
            }
            Err(e) => {
                error = Some(format!(
                    "reading the response body failed: {}",
                    describe(&e)
                ));
                break;
            }
        }
    }
    (String::from_utf8_lossy(&buf).into_owned(), error)
}
