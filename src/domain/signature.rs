//! The two signature schemes every delivery carries.
//!
//! - Logto's `logto-signature-sha-256`: lowercase hex HMAC-SHA256 of the exact body bytes,
//!   keyed by the signing key's UTF-8 bytes. No timestamp, so a captured request can be
//!   replayed; kept for compatibility with existing Logto receivers.
//! - Standard Webhooks (`webhook-id`, `webhook-timestamp`, `webhook-signature`):
//!   `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`. The same signing key is used; shown
//!   to users as `whsec_<base64 of the key bytes>` so the public `standardwebhooks`
//!   libraries verify it without any adaptation.

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

pub const LOGTO_SIGNATURE_HEADER: &str = "logto-signature-sha-256";
pub const WEBHOOK_ID_HEADER: &str = "webhook-id";
pub const WEBHOOK_TIMESTAMP_HEADER: &str = "webhook-timestamp";
pub const WEBHOOK_SIGNATURE_HEADER: &str = "webhook-signature";

fn mac(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => unreachable!("HMAC accepts keys of every length"),
    }
}

/// `logto-signature-sha-256` for `body`.
pub fn logto_signature(signing_key: &str, body: &[u8]) -> String {
    let mut m = mac(signing_key.as_bytes());
    m.update(body);
    hex::encode(m.finalize().into_bytes())
}

/// The `webhook-signature` value for one message: `v1,<base64>`.
pub fn standard_webhooks_signature(
    signing_key: &str,
    msg_id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    let mut m = mac(signing_key.as_bytes());
    m.update(msg_id.as_bytes());
    m.update(b".");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    format!("v1,{}", BASE64.encode(m.finalize().into_bytes()))
}

/// The signing key as Standard Webhooks libraries take it.
pub fn standard_webhooks_secret(signing_key: &str) -> String {
    format!("whsec_{}", BASE64.encode(signing_key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logto_signature_matches_a_known_vector() {
        // HMAC-SHA256(key="key", "The quick brown fox jumps over the lazy dog"), RFC 4231 style vector.
        assert_eq!(
            logto_signature("key", b"The quick brown fox jumps over the lazy dog"),
            "f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
        );
        assert_ne!(logto_signature("k", b"{}"), logto_signature("k", b"{ }"));
        assert_ne!(logto_signature("k", b"{}"), logto_signature("other", b"{}"));
    }

    #[test]
    fn standard_webhooks_secret_is_base64_of_the_key() {
        assert_eq!(standard_webhooks_secret("abc"), "whsec_YWJj");
        let s = standard_webhooks_signature("abc", "msg_1", 1_700_000_000, b"{}");
        assert!(s.starts_with("v1,"));
        assert_eq!(BASE64.decode(&s[3..]).unwrap().len(), 32);
    }
}
