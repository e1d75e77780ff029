//! Signing keys at rest (`--encryption-key`, issue 15).
//!
//! With an encryption key, a hook's signing keys (the current one and the one a rotation
//! keeps) are stored sealed with AES-256-GCM (`ring`'s AEAD): `enc:v1:` and the base64 of a
//! random 96-bit nonce followed by the ciphertext and its 16-byte tag. The hook's id is the
//! associated data, so a sealed key copied onto another hook's row does not open. Without an
//! encryption key, keys are stored as they are sent (the README says so).

use super::{StoreError, StoreResult};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use ring::rand::{SecureRandom, SystemRandom};

/// What a sealed value starts with (and the format's version).
pub const SEALED_PREFIX: &str = "enc:v1:";

/// Seals and opens signing keys; `None` inside means keys are stored in the clear.
#[derive(Clone, Default)]
pub struct KeyCipher(Option<std::sync::Arc<LessSafeKey>>);

impl std::fmt::Debug for KeyCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.write_str(if self.0.is_some() {
            "KeyCipher(sealed)"
        } else {
            "KeyCipher(clear)"
        })
    }
}

/// A 256-bit key given as base64 (`openssl rand -base64 32`).
pub fn parse_encryption_key(raw: &str) -> Result<[u8; 32], String> {
    let bytes = BASE64
        .decode(raw.trim())
        .map_err(|_| "the encryption key must be base64 (e.g. `openssl rand -base64 32`)")?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| {
        format!(
            "the encryption key must be 32 bytes (256 bits) once decoded, not {}",
            bytes.len()
        )
    })
}

impl KeyCipher {
    pub fn new(key: Option<[u8; 32]>) -> Self {
        Self(key.map(|k| {
            // AES-256 takes any 32 bytes; `new` cannot fail for them.
            let unbound = match UnboundKey::new(&AES_256_GCM, &k) {
                Ok(u) => u,
                Err(_) => unreachable!("a 32-byte AES-256 key"),
            };
            std::sync::Arc::new(LessSafeKey::new(unbound))
        }))
    }

    pub fn is_sealing(&self) -> bool {
        self.0.is_some()
    }

    /// The value to store for `hook_id`'s signing key `key`.
    pub fn seal(&self, hook_id: &str, key: &str) -> StoreResult<String> {
        let Some(k) = &self.0 else {
            return Ok(key.to_owned());
        };
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| StoreError::Database("no randomness for a nonce".into()))?;
        let mut data = key.as_bytes().to_vec();
        k.seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(hook_id.as_bytes()),
            &mut data,
        )
        .map_err(|_| StoreError::Database("sealing a signing key failed".into()))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!("{SEALED_PREFIX}{}", BASE64.encode(out)))
    }

    /// The stored forms of `hook`'s signing keys: the current one, and the previous one
    /// while a rotation keeps it.
    pub fn seal_keys(
        &self,
        hook: &crate::domain::hook::Hook,
    ) -> StoreResult<(String, Option<String>)> {
        let previous = hook
            .previous_signing_key
            .as_ref()
            .map(|p| self.seal(&hook.id, &p.key))
            .transpose()?;
        Ok((self.seal(&hook.id, &hook.signing_key)?, previous))
    }

    /// What a stored value must become at start (`None`: it is fine as it is): a key stored
    /// in the clear is sealed once there is an encryption key. A sealed one is opened to
    /// check the key: a missing or wrong encryption key stops the start, rather than the first
    /// delivery failing.
    pub fn reseal(&self, hook_id: &str, stored: &str) -> StoreResult<Option<String>> {
        let plain = self.open(hook_id, stored)?;
        if self.is_sealing() && !stored.starts_with(SEALED_PREFIX) {
            return self.seal(hook_id, &plain).map(Some);
        }
        Ok(None)
    }

    /// The signing key stored as `stored` for `hook_id`. A value stored in the clear (before an
    /// encryption key was set) reads as it is; a sealed one needs the key it was sealed with.
    pub fn open(&self, hook_id: &str, stored: &str) -> StoreResult<String> {
        let Some(sealed) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_owned());
        };
        let Some(k) = &self.0 else {
            return Err(StoreError::Corrupt(
                "the signing keys are stored encrypted; start hookline with the --encryption-key they were sealed with".into(),
            ));
        };
        let wrong = || {
            StoreError::Corrupt(format!(
                "the signing key of hook {hook_id} does not open with this --encryption-key (another key, or a damaged value)"
            ))
        };
        let bytes = BASE64.decode(sealed).map_err(|_| wrong())?;
        if bytes.len() < NONCE_LEN {
            return Err(wrong());
        }
        let (nonce, data) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| wrong())?;
        let mut data = data.to_vec();
        let plain = k
            .open_in_place(nonce, Aad::from(hook_id.as_bytes()), &mut data)
            .map_err(|_| wrong())?;
        String::from_utf8(plain.to_vec()).map_err(|_| wrong())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_keys_open_with_their_key_and_hook_only() {
        let c = KeyCipher::new(Some([7; 32]));
        let sealed = c.seal("hook1", "signing-key").unwrap();
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("signing-key"));
        assert_ne!(
            sealed,
            c.seal("hook1", "signing-key").unwrap(),
            "a fresh nonce each time"
        );
        assert_eq!(c.open("hook1", &sealed).unwrap(), "signing-key");
        assert!(c.open("hook2", &sealed).is_err(), "bound to its hook");
        assert!(KeyCipher::new(Some([8; 32]))
            .open("hook1", &sealed)
            .is_err());
        assert!(KeyCipher::default().open("hook1", &sealed).is_err());
        assert_eq!(
            c.open("hook1", "plain").unwrap(),
            "plain",
            "stored before the key"
        );
        assert_eq!(KeyCipher::default().seal("h", "k").unwrap(), "k");
        let mut damaged = sealed.clone();
        damaged.pop();
        assert!(c.open("hook1", &damaged).is_err());
    }

    #[test]
    fn encryption_keys_are_32_bytes_of_base64() {
        assert_eq!(
            parse_encryption_key(&BASE64.encode([1u8; 32])).unwrap(),
            [1; 32]
        );
        assert!(parse_encryption_key(&BASE64.encode([1u8; 16])).is_err());
        assert!(parse_encryption_key("not base64!").is_err());
    }
}
