//! Identifiers and secrets, generated the way Logto generates them: ids are 21 characters of
//! lowercase letters and digits (`generateStandardId`), signing keys 32 characters of letters
//! and digits (`generateStandardSecret`). Both come from the OS-seeded CSPRNG.

use rand::distributions::{Alphanumeric, Distribution, Uniform};
use rand::Rng;

pub const ID_LENGTH: usize = 21;
pub const SIGNING_KEY_LENGTH: usize = 32;

const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// A new 21-character id (`[a-z0-9]{21}`): about 108 bits of randomness.
pub fn new_id() -> String {
    let mut rng = rand::thread_rng();
    let pick = Uniform::from(0..LOWER_ALNUM.len());
    (0..ID_LENGTH)
        .map(|_| LOWER_ALNUM[pick.sample(&mut rng)] as char)
        .collect()
}

/// A new random secret of `len` characters (`[A-Za-z0-9]`).
pub fn new_secret(len: usize) -> String {
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_and_secrets_have_logto_shapes() {
        let id = new_id();
        assert_eq!(id.len(), 21);
        assert!(id.bytes().all(|b| LOWER_ALNUM.contains(&b)));
        assert_ne!(new_id(), id);
        let key = new_secret(SIGNING_KEY_LENGTH);
        assert_eq!(key.len(), 32);
        assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
    }
}
