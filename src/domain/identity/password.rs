//! Passwords imported from another system (`POST /api/users` with `passwordDigest` and
//! `passwordAlgorithm`, as Logto takes them): how the digest is checked when it arrives, how
//! it is kept, and how a sign-in checks a password against it. The hashing itself is the
//! well-kept crates' (`argon2`, `bcrypt`, `sha1`, `sha2`, `md-5`); this module only decides
//! which one a stored credential needs.
//!
//! A stored credential is one string: an argon2 or bcrypt digest as given (a PHC string,
//! `$argon2id$…`, or a modular-crypt one, `$2b$…`), or a plain digest as `md5:<hex>`,
//! `sha1:<hex>`, `sha256:<hex>` (lowercase hex of the password's UTF-8 bytes, as Logto's
//! `isPasswordValid` compares it). Anything but argon2id is re-hashed with argon2id on the
//! first successful sign-in ([`needs_rehash`]).

use super::InputError;
use serde::Deserialize;
use subtle::ConstantTimeEq;

/// Logto's `UsersPasswordEncryptionMethod`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum PasswordAlgorithm {
    Argon2i,
    Argon2id,
    Argon2d,
    #[serde(rename = "SHA1")]
    Sha1,
    #[serde(rename = "SHA256")]
    Sha256,
    #[serde(rename = "MD5")]
    Md5,
    Bcrypt,
    /// Logto's scripted legacy format; hookline does not run it (422).
    Legacy,
}

/// Longest digest taken (Logto's guard: 256 characters).
pub const MAX_DIGEST_LENGTH: usize = 256;
/// The costliest imported digests taken. An imported hash is checked on every sign-in attempt
/// at the cost it names, before the user is known to hold the password, so an unbounded one
/// (bcrypt cost 31, argon2 with 4 GiB) would let anyone who knows the identifier exhaust CPU
/// or memory. These admit every common production setting: bcrypt up to cost 14 (about a
/// second), argon2 up to 64 MiB, 10 passes, 4 lanes.
pub const MAX_BCRYPT_COST: u32 = 14;
pub const MAX_ARGON2_MEMORY_KIB: u32 = 64 * 1024;
pub const MAX_ARGON2_PASSES: u32 = 10;
pub const MAX_ARGON2_LANES: u32 = 4;

/// The credential to store for an imported `digest` of `algorithm`, or why it is refused:
/// 400 `guard.invalid_input` for a digest that is not of its algorithm's form, 422
/// `user.password_algorithm_not_supported` for `Legacy`.
pub fn import(algorithm: PasswordAlgorithm, digest: &str) -> Result<String, InputError> {
    let bad = || {
        InputError::new(format!(
            "`passwordDigest` is not a {algorithm:?} digest (see the README on importing users)"
        ))
    };
    if digest.len() > MAX_DIGEST_LENGTH {
        return Err(InputError::new(format!(
            "`passwordDigest` must be at most {MAX_DIGEST_LENGTH} characters"
        )));
    }
    let hex_of = |len: usize, prefix: &str| {
        if digest.len() == len && digest.bytes().all(|b| b.is_ascii_hexdigit()) {
            Ok(format!("{prefix}:{}", digest.to_ascii_lowercase()))
        } else {
            Err(bad())
        }
    };
    match algorithm {
        PasswordAlgorithm::Argon2i | PasswordAlgorithm::Argon2id | PasswordAlgorithm::Argon2d => {
            let want = match algorithm {
                PasswordAlgorithm::Argon2i => "argon2i",
                PasswordAlgorithm::Argon2d => "argon2d",
                _ => "argon2id",
            };
            let h = argon2::password_hash::PasswordHash::new(digest).map_err(|_| bad())?;
            if h.algorithm.as_str() != want || h.hash.is_none() {
                return Err(bad());
            }
            let p = argon2::Params::try_from(&h).map_err(|_| bad())?;
            if p.m_cost() > MAX_ARGON2_MEMORY_KIB
                || p.t_cost() > MAX_ARGON2_PASSES
                || p.p_cost() > MAX_ARGON2_LANES
            {
                return Err(InputError::new(format!(
                    "`passwordDigest` costs more than hookline checks per sign-in (at most \
                     m={MAX_ARGON2_MEMORY_KIB}, t={MAX_ARGON2_PASSES}, p={MAX_ARGON2_LANES})"
                )));
            }
            Ok(digest.to_owned())
        }
        PasswordAlgorithm::Bcrypt => {
            let parts = digest.parse::<bcrypt::HashParts>().map_err(|_| bad())?;
            if parts.get_cost() > MAX_BCRYPT_COST {
                return Err(InputError::new(format!(
                    "`passwordDigest` costs more than hookline checks per sign-in (bcrypt cost \
                     at most {MAX_BCRYPT_COST})"
                )));
            }
            Ok(digest.to_owned())
        }
        PasswordAlgorithm::Md5 => hex_of(32, "md5"),
        PasswordAlgorithm::Sha1 => hex_of(40, "sha1"),
        PasswordAlgorithm::Sha256 => hex_of(64, "sha256"),
        PasswordAlgorithm::Legacy => Err(InputError::with_code(
            "user.password_algorithm_not_supported",
            "`passwordAlgorithm` `Legacy` (a scripted digest) is not supported by hookline: import \
             the user without a password, or with a digest of another algorithm",
        )),
    }
}

/// Whether `password` matches the stored credential. CPU-heavy for argon2 and bcrypt: run it
/// on the blocking pool.
pub fn verify(password: &str, stored: &str) -> bool {
    use sha2::Digest as _;
    let plain = |hex_digest: &str, computed: Vec<u8>| {
        bool::from(
            hex::encode(computed)
                .as_bytes()
                .ct_eq(hex_digest.as_bytes()),
        )
    };
    if let Some(h) = stored.strip_prefix("md5:") {
        return plain(h, md5::Md5::digest(password.as_bytes()).to_vec());
    }
    if let Some(h) = stored.strip_prefix("sha1:") {
        return plain(h, sha1::Sha1::digest(password.as_bytes()).to_vec());
    }
    if let Some(h) = stored.strip_prefix("sha256:") {
        return plain(h, sha2::Sha256::digest(password.as_bytes()).to_vec());
    }
    if stored.starts_with("$2") {
        return bcrypt::verify(password, stored).unwrap_or(false);
    }
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(stored).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Whether a credential that just verified should be replaced by hookline's own argon2id
/// hash of the password: anything imported in another algorithm, or argon2id with other
/// parameters than hookline's (the `argon2` crate's defaults, OWASP's).
pub fn needs_rehash(stored: &str) -> bool {
    let Ok(h) = argon2::password_hash::PasswordHash::new(stored) else {
        return true;
    };
    h.algorithm.as_str() != "argon2id"
        || argon2::Params::try_from(&h).map_or(true, |p| {
            let own = argon2::Params::default();
            (p.m_cost(), p.t_cost(), p.p_cost()) != (own.m_cost(), own.t_cost(), own.p_cost())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_digests_verify_and_ask_for_a_rehash() {
        // Digests of "password" computed with coreutils (md5sum, sha1sum, sha256sum).
        let cases = [
            (PasswordAlgorithm::Md5, "5f4dcc3b5aa765d61d8327deb882cf99"),
            (
                PasswordAlgorithm::Sha1,
                "5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8",
            ),
            (
                PasswordAlgorithm::Sha256,
                "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
            ),
        ];
        for (alg, digest) in cases {
            let stored = import(alg, digest).unwrap();
            assert!(verify("password", &stored), "{alg:?}");
            assert!(!verify("Password", &stored), "{alg:?}");
            assert!(needs_rehash(&stored));
        }
        assert!(import(
            PasswordAlgorithm::Sha256,
            "5f4dcc3b5aa765d61d8327deb882cf99"
        )
        .is_err());
        assert!(import(PasswordAlgorithm::Md5, "zz4dcc3b5aa765d61d8327deb882cf99").is_err());
    }

    #[test]
    fn argon2_and_bcrypt_digests_are_checked_by_their_crates() {
        use argon2::password_hash::{PasswordHasher, SaltString};
        let salt = SaltString::from_b64("c29tZXNhbHRzb21lc2FsdA").unwrap();
        let argon2i = argon2::Argon2::new(
            argon2::Algorithm::Argon2i,
            argon2::Version::V0x13,
            argon2::Params::new(8192, 2, 1, None).unwrap(),
        )
        .hash_password(b"secret pw", &salt)
        .unwrap()
        .to_string();
        let stored = import(PasswordAlgorithm::Argon2i, &argon2i).unwrap();
        assert!(verify("secret pw", &stored) && !verify("secret", &stored));
        assert!(needs_rehash(&stored));
        // The algorithm named must be the digest's.
        assert!(import(PasswordAlgorithm::Argon2id, &argon2i).is_err());
        let bcrypt = bcrypt::hash("secret pw", 4).unwrap();
        let stored = import(PasswordAlgorithm::Bcrypt, &bcrypt).unwrap();
        assert!(verify("secret pw", &stored) && !verify("secret", &stored));
        assert!(import(PasswordAlgorithm::Bcrypt, "$2b$nope").is_err());
        // Costs past what a sign-in may spend are refused; hookline's own hash needs no rehash.
        let costly = bcrypt.replacen("$04$", "$15$", 1);
        assert!(import(PasswordAlgorithm::Bcrypt, &costly).is_err());
        let greedy = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(MAX_ARGON2_MEMORY_KIB + 8, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw", &salt)
        .unwrap()
        .to_string();
        assert!(import(PasswordAlgorithm::Argon2id, &greedy).is_err());
        let own = argon2::Argon2::default()
            .hash_password(b"pw", &salt)
            .unwrap()
            .to_string();
        assert!(!needs_rehash(&own));
        let weak = argon2::Argon2::new(
            argon2::Algorithm::Argon2id,
            argon2::Version::V0x13,
            argon2::Params::new(1024, 1, 1, None).unwrap(),
        )
        .hash_password(b"pw", &salt)
        .unwrap()
        .to_string();
        assert!(needs_rehash(&weak));
        let legacy = import(PasswordAlgorithm::Legacy, "[\"md5\",\"\",[],\"x\"]").unwrap_err();
        assert_eq!(legacy.code, "user.password_algorithm_not_supported");
    }
}
