//! Identifiers and secrets. Ids have the shape of Logto's (`generateStandardId`: 21
//! characters of lowercase letters and digits); signing keys are 32 characters of letters and
//! digits (`generateStandardSecret`). Randomness comes from the OS-seeded CSPRNG.
//!
//! Unlike Logto's, an id starts with the creation time (milliseconds, base 36), so ids sort by
//! age and new rows land at the right edge of their primary-key B-tree instead of on a random
//! page: the database writes far fewer pages per insert.

use rand::distributions::{Alphanumeric, Distribution, Uniform};
use rand::Rng;

pub const ID_LENGTH: usize = 21;
pub const SIGNING_KEY_LENGTH: usize = 32;

const LOWER_ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// The same characters in ASCII order, for the time prefix: its digits must compare as bytes
/// the way they compare as numbers.
const BASE36_DIGITS: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";

/// Characters of the time prefix: base 36 milliseconds fit 9 characters until the year 5188.
const TIME_CHARS: usize = 9;

/// A new 21-character id (`[a-z0-9]{21}`): 9 characters of creation time, then 12 random ones
/// (about 62 bits, against collisions within one millisecond).
pub fn new_id() -> String {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or_default();
    let mut id = [0u8; ID_LENGTH];
    id[..TIME_CHARS].copy_from_slice(&time_prefix(millis));
    let mut rng = rand::thread_rng();
    let pick = Uniform::from(0..LOWER_ALNUM.len());
    for slot in id[TIME_CHARS..].iter_mut() {
        *slot = LOWER_ALNUM[pick.sample(&mut rng)];
    }
    id.iter().map(|&b| b as char).collect()
}

/// Length of user and organization ids (Logto's `generateStandardShortId`).
pub const SHORT_ID_LENGTH: usize = 12;

/// A new 12-character id (`[a-z0-9]{12}`, all random: about 62 bits), for users and
/// organizations, whose ids Logto makes this short. Other rows keep [`new_id`]'s time prefix,
/// which keeps their inserts at the right edge of the primary-key B-tree.
pub fn new_short_id() -> String {
    let mut rng = rand::thread_rng();
    let pick = Uniform::from(0..LOWER_ALNUM.len());
    (0..SHORT_ID_LENGTH)
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

/// `millis` in base 36, fixed width, so that byte order is time order.
fn time_prefix(millis: u64) -> [u8; TIME_CHARS] {
    let mut out = [b'0'; TIME_CHARS];
    let mut t = millis;
    for slot in out.iter_mut().rev() {
        *slot = BASE36_DIGITS[(t % 36) as usize];
        t /= 36;
    }
    out
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
        // Ids sort by creation time.
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(new_id() > id);
        let key = new_secret(SIGNING_KEY_LENGTH);
        assert_eq!(key.len(), 32);
        assert!(key.bytes().all(|b| b.is_ascii_alphanumeric()));
    }

    #[test]
    fn time_prefixes_sort_as_the_times_do() {
        let now = 1_795_000_000_000u64;
        let mut times = vec![0, 9, 10, 35, 36, 1295, 1296, now - 1, now, now + 1];
        times.extend((0..2000).map(|i| now + i * 997));
        times.sort();
        times.dedup();
        for pair in times.windows(2) {
            assert!(time_prefix(pair[0]) < time_prefix(pair[1]), "{pair:?}");
        }
        assert_eq!(&time_prefix(36), b"000000010");
    }
}
