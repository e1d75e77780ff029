//! The identity core's objects: users, API resources and their scopes, roles, organizations
//! with their roles, scopes and members. Each is the JSON object the Management API answers
//! with (camelCase, keys in Logto's order), and each request body is parsed once into a
//! checked input type here: formats, lengths and ids are checked before anything is stored.

pub mod application;
pub mod authz;
pub mod invitation;
pub mod password;
pub mod user;

use serde::{Deserialize, Deserializer};

/// Logto's ids and the ids of rows others point at are at most this long.
pub const MAX_ID_LENGTH: usize = 21;
pub const MAX_NAME_LENGTH: usize = 128;
pub const MAX_DESCRIPTION_LENGTH: usize = 256;
pub const MAX_URL_LENGTH: usize = 2048;
/// How many ids one request may name (scope ids of a role, user ids of a membership change).
pub const MAX_IDS_PER_REQUEST: usize = 100;

/// Why a body was refused: a 400 with `code` (`guard.invalid_input` unless a rule has a code
/// of its own in Logto, such as `scope.name_with_space`) and a readable `message`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InputError {
    pub code: &'static str,
    pub message: String,
}

impl InputError {
    /// A `guard.invalid_input` refusal.
    pub fn new(message: impl Into<String>) -> Self {
        Self::with_code("guard.invalid_input", message)
    }

    pub fn with_code(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }
}

pub type InputResult<T> = Result<T, InputError>;

/// Fields Logto acts on that hookline does not keep (`(name, given)`): any given one (not
/// absent, not `null`) is refused with a 400 naming it, because dropping it would lose what the
/// caller meant. Fields Logto itself ignores are ignored here too (serde skips unknown keys),
/// so an object read back and sent again with its `id` or `createdAt` still goes through.
pub fn refuse_unsupported(fields: &[(&str, bool)]) -> InputResult<()> {
    match fields.iter().find(|(_, given)| *given) {
        Some((name, _)) => Err(InputError::new(format!(
            "`{name}` is not supported by hookline (see the README's \"Differences from Logto\"); \
             leave it out"
        ))),
        None => Ok(()),
    }
}

/// For `PATCH` fields that may be cleared: absent is `None`, `null` is `Some(None)`.
pub fn nullable<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A text of 1..=`max` characters (after trimming nothing: names are kept as given).
pub fn check_text(field: &str, value: &str, max: usize) -> InputResult<()> {
    let n = value.chars().count();
    if n == 0 {
        return Err(InputError::new(format!("`{field}` must not be empty")));
    }
    if n > max {
        return Err(InputError::new(format!(
            "`{field}` must be at most {max} characters"
        )));
    }
    Ok(())
}

/// An optional text of at most `max` characters.
pub fn check_optional_text(field: &str, value: Option<&str>, max: usize) -> InputResult<()> {
    match value {
        Some(v) if v.chars().count() > max => Err(InputError::new(format!(
            "`{field}` must be at most {max} characters"
        ))),
        _ => Ok(()),
    }
}

/// Ids named in a body: each 1..=21 characters, at most [`MAX_IDS_PER_REQUEST`], duplicates
/// dropped (order kept).
pub fn check_ids(field: &str, ids: Vec<String>) -> InputResult<Vec<String>> {
    if ids.len() > MAX_IDS_PER_REQUEST {
        return Err(InputError::new(format!(
            "`{field}` may name at most {MAX_IDS_PER_REQUEST} ids"
        )));
    }
    let mut out: Vec<String> = Vec::with_capacity(ids.len());
    for id in ids {
        if id.is_empty() || id.len() > MAX_ID_LENGTH {
            return Err(InputError::new(format!(
                "`{field}`: ids are 1 to {MAX_ID_LENGTH} characters"
            )));
        }
        if !out.contains(&id) {
            out.push(id);
        }
    }
    Ok(out)
}

/// Whether a path id can name a row at all; a longer one answers 404 without a lookup.
pub fn is_possible_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_LENGTH
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_bounded_and_deduplicated() {
        let ids = check_ids("scopeIds", vec!["a".into(), "b".into(), "a".into()]).unwrap();
        assert_eq!(ids, ["a", "b"]);
        assert!(check_ids("scopeIds", vec!["x".repeat(22)]).is_err());
        assert!(check_ids("scopeIds", vec![String::new()]).is_err());
        assert!(check_ids("scopeIds", vec!["a".into(); 101]).is_err());
        assert!(is_possible_id(&"x".repeat(21)) && !is_possible_id(&"x".repeat(22)));
    }

    #[test]
    fn texts_are_bounded_in_characters() {
        assert!(check_text("name", "é".repeat(128).as_str(), 128).is_ok());
        assert!(check_text("name", "é".repeat(129).as_str(), 128).is_err());
        assert!(check_text("name", "", 128).is_err());
    }
}
