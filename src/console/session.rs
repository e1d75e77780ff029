//! Console sessions (issue 17): the admin token, typed once into the sign-in form, is
//! exchanged for a session; the browser holds only the session's random id, in a cookie
//! (`HttpOnly`, `SameSite=Strict`, `Path=/console`, `Secure` behind https, expiring), never
//! the token. Sessions live in the store's short-lived state (`StateSpace::ConsoleSessions`,
//! keyed by the SHA-256 of the id, so a database reader cannot take one over), so every node
//! of a PostgreSQL deployment knows them and a sign-out ends one everywhere.
//!
//! Every change the console makes carries the session's CSRF token (a hidden form field,
//! compared in constant time) and, when the browser sends one, an `Origin` of this host.
//! Wrong tokens are throttled per client address with the sign-in lockout policy
//! (`--lockout-failures` within an hour lock the address for `--lockout-duration`).

use crate::domain::id::new_secret;
use crate::domain::interaction::{Failures, LockoutPolicy};
use crate::storage::identity::{transact, IdentityError, StateSpace};
use crate::storage::{Store, StoreError};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::IpAddr;
use subtle::ConstantTimeEq;

/// The session cookie's name.
pub const COOKIE: &str = "hookline_console";

/// Random characters in a session id and in a CSRF token.
const SECRET_LENGTH: usize = 43;

/// A signed-in console session.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The token every change must carry (a hidden field of each form).
    pub csrf: String,
    /// Epoch ms.
    pub created_at: i64,
    /// Epoch ms; the cookie's `Max-Age` ends with it.
    pub expires_at: i64,
    /// Which admin token it was signed in with ([`token_fingerprint`]): a session made with
    /// a token that has since been replaced is dead.
    #[serde(default)]
    pub token: String,
}

/// A short fingerprint of the admin token's hash (not the token): sessions carry it, so that
/// starting hookline with another `--admin-token` ends every session made with the old one.
pub fn token_fingerprint(admin_token_hash: &[u8; 32]) -> String {
    let mut h = Sha256::new();
    h.update(b"hookline console session\0");
    h.update(admin_token_hash);
    hex::encode(&h.finalize()[..12])
}

impl Session {
    /// Whether `presented` is this session's CSRF token (constant time).
    pub fn csrf_matches(&self, presented: &str) -> bool {
        bool::from(self.csrf.as_bytes().ct_eq(presented.as_bytes()))
    }
}

fn key(id: &str) -> String {
    hex::encode(Sha256::digest(id.as_bytes()))
}

fn state_error(e: IdentityError) -> StoreError {
    match e {
        IdentityError::Store(e) => e,
        other => StoreError::Corrupt(other.to_string()),
    }
}

/// Starts a session of `ttl_ms`: its id (the cookie's value) and the session.
pub async fn start(
    store: &dyn Store,
    now: i64,
    ttl_ms: i64,
    token: String,
) -> Result<(String, Session), StoreError> {
    let id = new_secret(SECRET_LENGTH);
    let session = Session {
        csrf: new_secret(SECRET_LENGTH),
        created_at: now,
        expires_at: now.saturating_add(ttl_ms),
        token,
    };
    let (k, value) = (
        key(&id),
        serde_json::to_value(&session).map_err(|e| StoreError::Corrupt(e.to_string()))?,
    );
    let expires = session.expires_at;
    transact(store, move |tx| {
        tx.state_put(StateSpace::ConsoleSessions, &k, &value, expires)?;
        Ok(())
    })
    .await
    .map_err(state_error)?;
    Ok((id, session))
}

/// The live session whose id is `id`, if any.
/// Made with the admin token whose fingerprint is `token` ([`token_fingerprint`]).
pub async fn find(
    store: &dyn Store,
    id: &str,
    now: i64,
    token: &str,
) -> Result<Option<Session>, StoreError> {
    Ok(store
        .state(StateSpace::ConsoleSessions, &key(id), now)
        .await?
        .and_then(|v| serde_json::from_value::<Session>(v).ok())
        .filter(|s| bool::from(s.token.as_bytes().ct_eq(token.as_bytes()))))
}

/// Ends the session `id` (on every node).
pub async fn end(store: &dyn Store, id: &str) -> Result<(), StoreError> {
    let k = key(id);
    transact(store, move |tx| {
        tx.state_delete(StateSpace::ConsoleSessions, &k)?;
        Ok(())
    })
    .await
    .map_err(state_error)
}

/// The session id the request's cookie carries, if any.
pub fn cookie_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value)
        .filter(|v| !v.is_empty())
}

/// Whether the request came over https (as the proxy in front says): the cookie is then
/// `Secure`.
pub fn over_https(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|p| p.trim().eq_ignore_ascii_case("https"))
}

/// The `Set-Cookie` value of a session (`max_age_s` 0 clears it).
pub fn set_cookie(id: &str, max_age_s: i64, secure: bool) -> String {
    format!(
        "{COOKIE}={id}; Path=/console; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{}",
        if secure { "; Secure" } else { "" }
    )
}

/// Whether a change request's `Origin`, when the browser sends one, names this host: the
/// `X-Forwarded-Host` a proxy in front passed on, else the `Host` it was sent to (a page
/// cannot set either on a cross-site request). Browsers send `Origin` on every POST; a
/// request without one did not come from a page of another site.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(axum::http::header::ORIGIN) else {
        return true;
    };
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(axum::http::header::HOST))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').next())
        .map(str::trim);
    let origin = origin
        .to_str()
        .ok()
        .and_then(|o| o.split_once("://"))
        .map(|(_, h)| h);
    matches!((origin, host), (Some(o), Some(h)) if o.eq_ignore_ascii_case(h))
}

/// Wrong admin tokens from one client address, with the sign-in lockout policy.
pub struct Throttle {
    pub policy: LockoutPolicy,
}

impl Throttle {
    fn key(ip: IpAddr) -> String {
        ip.to_string()
    }

    /// Until when `ip` is locked out, if it is.
    pub async fn locked_until(
        &self,
        store: &dyn Store,
        ip: IpAddr,
        now: i64,
    ) -> Result<Option<i64>, StoreError> {
        let failures: Option<Failures> = store
            .state(StateSpace::ConsoleSignInFailures, &Self::key(ip), now)
            .await?
            .and_then(|v| serde_json::from_value(v).ok());
        Ok(failures
            .and_then(|f| f.locked_until)
            .filter(|until| *until > now))
    }

    /// Counts a wrong token from `ip`; whether that locked it.
    pub async fn fail(&self, store: &dyn Store, ip: IpAddr, now: i64) -> Result<bool, StoreError> {
        let (policy, k) = (self.policy, Self::key(ip));
        transact(store, move |tx| {
            let current: Option<Failures> = tx
                .state_get(StateSpace::ConsoleSignInFailures, &k, now)?
                .and_then(|v| serde_json::from_value(v).ok());
            let (failures, locked) = policy.fail(current, now);
            let value = serde_json::to_value(&failures)
                .map_err(|e| IdentityError::Store(StoreError::Corrupt(e.to_string())))?;
            tx.state_put(
                StateSpace::ConsoleSignInFailures,
                &k,
                &value,
                policy.expires_at(&failures),
            )?;
            Ok(locked)
        })
        .await
        .map_err(state_error)
    }
}

/// `next` if it is a console page of this site to go to after the sign-in: a path under
/// `/console/` (never `//…` or a scheme, which would leave the site), else `None`.
pub fn safe_next(next: &str) -> Option<&str> {
    let rest = next.strip_prefix("/console/")?;
    let leaves = rest.starts_with('/')
        || next.contains('\\')
        || next.chars().any(|c| c.is_control())
        || rest.starts_with("sign-in");
    (!leaves).then_some(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_cookie_is_found_among_others_and_set_strict() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::COOKIE,
            HeaderValue::from_static("a=1; hookline_console=abc; b=2"),
        );
        assert_eq!(cookie_id(&h), Some("abc"));
        let c = set_cookie("abc", 60, true);
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/console",
            "Max-Age=60",
            "Secure",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!set_cookie("abc", 60, false).contains("Secure"));
    }

    #[test]
    fn a_foreign_origin_is_refused() {
        let mut h = HeaderMap::new();
        h.insert(
            axum::http::header::HOST,
            HeaderValue::from_static("127.0.0.1:8080"),
        );
        assert!(same_origin(&h), "no Origin: not from another site's page");
        h.insert(
            axum::http::header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_origin(&h));
        h.insert(
            axum::http::header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(!same_origin(&h));
        // Behind a proxy that rewrites Host and says which host the browser asked for.
        h.insert(
            axum::http::header::ORIGIN,
            HeaderValue::from_static("https://hooks.example.com"),
        );
        h.insert(
            "x-forwarded-host",
            HeaderValue::from_static("hooks.example.com"),
        );
        assert!(same_origin(&h));
    }

    #[test]
    fn only_console_pages_are_where_a_sign_in_goes_next() {
        for good in ["/console/deliveries?status=failed", "/console/hooks/abc"] {
            assert_eq!(safe_next(good), Some(good));
        }
        for bad in [
            "https://evil.example/console/",
            "//evil.example/console/x",
            "/console//evil.example",
            "/console/\\evil.example",
            "/api/hooks",
            "/console/sign-in?next=/console/x",
            "/console/x\nSet-Cookie: a=b",
        ] {
            assert_eq!(safe_next(bad), None, "{bad}");
        }
    }
}
