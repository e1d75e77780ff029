//! Users: the object (Logto's user-info fields, in their order) and the bodies that create and
//! change one. The password never is a field of [`User`]: it is hashed before it reaches the
//! store and never comes back out.

use super::{
    check_optional_text, nullable, InputError, InputResult, MAX_NAME_LENGTH, MAX_URL_LENGTH,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub const MAX_USERNAME_LENGTH: usize = 128;
pub const MAX_EMAIL_LENGTH: usize = 128;
pub const MAX_PHONE_LENGTH: usize = 32;
pub const MIN_PASSWORD_LENGTH: usize = 8;
pub const MAX_PASSWORD_LENGTH: usize = 256;
/// customData and profile are free-form, but bounded: they ride along in every user event.
pub const MAX_OBJECT_BYTES: usize = 16 * 1024;

/// A user as the API shows it and as user events carry it: Logto's user-info fields, in order.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct User {
    pub id: String,
    pub username: Option<String>,
    pub primary_email: Option<String>,
    pub primary_phone: Option<String>,
    pub name: Option<String>,
    pub avatar: Option<String>,
    pub custom_data: Map<String, Value>,
    pub identities: Map<String, Value>,
    pub last_sign_in_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
    pub profile: Map<String, Value>,
    pub application_id: Option<String>,
    /// `@logto/schemas` 1.43 adds it to the user-info fields; hookline has no CIMD clients,
    /// so it is always `null`.
    pub cimd_client_id: Option<String>,
    pub is_suspended: bool,
}

/// A user as Management API answers show it: the user-info fields, then `hasPassword`
/// (Logto's `transpileUserProfileResponse`). Events of those answers carry it too;
/// `User.Deleted` and interaction `user` objects carry the plain [`User`].
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiUser<'a> {
    #[serde(flatten)]
    pub user: &'a User,
    pub has_password: bool,
}

/// `POST /api/users`: every field Logto's guard takes (others are ignored, as Logto's guard
/// strips them).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewUserInput {
    pub username: Option<String>,
    pub primary_email: Option<String>,
    pub primary_phone: Option<String>,
    pub name: Option<String>,
    pub avatar: Option<String>,
    pub password: Option<String>,
    pub password_digest: Option<String>,
    pub password_algorithm: Option<super::password::PasswordAlgorithm>,
    pub custom_data: Option<Map<String, Value>>,
    pub profile: Option<Map<String, Value>>,
}

/// The password a new user starts with.
#[derive(Debug)]
pub enum NewPassword {
    /// In the clear: the caller hashes it (argon2id, on the blocking pool).
    Plain(String),
    /// An imported digest, as stored (see `domain::identity::password`).
    Imported(String),
}

/// A checked `POST /api/users` body.
#[derive(Debug)]
pub struct NewUser {
    pub user: User,
    pub password: Option<NewPassword>,
}

impl NewUserInput {
    pub fn parse(self, id: String, now: i64) -> InputResult<NewUser> {
        check_username(self.username.as_deref())?;
        check_email(self.primary_email.as_deref())?;
        check_phone(self.primary_phone.as_deref())?;
        check_optional_text("name", self.name.as_deref(), MAX_NAME_LENGTH)?;
        check_optional_text("avatar", self.avatar.as_deref(), MAX_URL_LENGTH)?;
        let password = match (self.password, self.password_digest, self.password_algorithm) {
            (Some(_), Some(_), _) => {
                return Err(InputError::with_code(
                    "user.password_and_digest",
                    "give `password` or `passwordDigest`, not both",
                ))
            }
            (Some(p), None, _) => {
                check_api_password(&p)?;
                Some(NewPassword::Plain(p))
            }
            (None, Some(digest), Some(alg)) => Some(NewPassword::Imported(
                super::password::import(alg, &digest)?,
            )),
            (None, Some(_), None) => {
                return Err(InputError::with_code(
                    "user.password_algorithm_required",
                    "`passwordDigest` needs its `passwordAlgorithm`",
                ))
            }
            (None, None, Some(_)) => {
                return Err(InputError::new(
                    "`passwordAlgorithm` is given without a `passwordDigest`",
                ))
            }
            (None, None, None) => None,
        };
        let custom_data = self.custom_data.unwrap_or_default();
        let profile = self.profile.unwrap_or_default();
        check_object("customData", &custom_data)?;
        check_object("profile", &profile)?;
        Ok(NewUser {
            user: User {
                id,
                username: self.username,
                primary_email: self.primary_email.as_deref().map(nfc),
                primary_phone: self.primary_phone,
                name: self.name,
                avatar: self.avatar,
                custom_data,
                identities: Map::new(),
                last_sign_in_at: None,
                created_at: now,
                updated_at: now,
                profile,
                application_id: None,
                cimd_client_id: None,
                is_suspended: false,
            },
            password,
        })
    }
}

/// `PATCH /api/users/:userId`: the fields given replace the stored ones; `null` clears a
/// clearable one, and so does `""` (Logto's guard takes `""` for username, primaryEmail,
/// primaryPhone, name and avatar). `customData` and `profile` given here replace the whole
/// object.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserPatch {
    #[serde(default, deserialize_with = "nullable")]
    pub username: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub primary_email: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub primary_phone: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub name: Option<Option<String>>,
    #[serde(default, deserialize_with = "nullable")]
    pub avatar: Option<Option<String>>,
    pub custom_data: Option<Map<String, Value>>,
    pub profile: Option<Map<String, Value>>,
}

impl UserPatch {
    /// The patch with every `""` read as `null`.
    pub fn normalized(mut self) -> Self {
        for field in [
            &mut self.username,
            &mut self.primary_email,
            &mut self.primary_phone,
            &mut self.name,
            &mut self.avatar,
        ] {
            if matches!(field, Some(Some(v)) if v.is_empty()) {
                *field = Some(None);
            }
        }
        self
    }

    pub fn check(&self) -> InputResult<()> {
        check_username(self.username.clone().flatten().as_deref())?;
        check_email(self.primary_email.clone().flatten().as_deref())?;
        check_phone(self.primary_phone.clone().flatten().as_deref())?;
        check_optional_text(
            "name",
            self.name.clone().flatten().as_deref(),
            MAX_NAME_LENGTH,
        )?;
        check_optional_text(
            "avatar",
            self.avatar.clone().flatten().as_deref(),
            MAX_URL_LENGTH,
        )?;
        if let Some(c) = &self.custom_data {
            check_object("customData", c)?;
        }
        if let Some(p) = &self.profile {
            check_object("profile", p)?;
        }
        Ok(())
    }

    /// The user with this patch applied at `now`.
    pub fn apply(&self, mut user: User, now: i64) -> User {
        if let Some(v) = &self.username {
            user.username = v.clone();
        }
        if let Some(v) = &self.primary_email {
            user.primary_email = v.as_deref().map(nfc);
        }
        if let Some(v) = &self.primary_phone {
            user.primary_phone = v.clone();
        }
        if let Some(v) = &self.name {
            user.name = v.clone();
        }
        if let Some(v) = &self.avatar {
            user.avatar = v.clone();
        }
        if let Some(v) = &self.custom_data {
            user.custom_data = v.clone();
        }
        if let Some(v) = &self.profile {
            user.profile = v.clone();
        }
        user.updated_at = now;
        user
    }
}

/// What a user-changing route does to the stored user. Built by the route from its checked
/// body, applied by the store to the current row inside the write transaction.
#[derive(Debug)]
pub enum UserChange {
    Patch(UserPatch),
    /// `PATCH …/custom-data`: merged into the stored object, key by key.
    MergeCustomData(Map<String, Value>),
    /// `PATCH …/profile`: merged into the stored profile, key by key.
    MergeProfile(Map<String, Value>),
    /// `PATCH …/password`: the new argon2id hash.
    Password(String),
    Suspended(bool),
}

impl UserChange {
    /// The user after this change at `now`, and the new password hash, if any. A merge is
    /// checked on its result, not only on its input: forty 15 KB merges must not grow
    /// customData to 600 KB past [`MAX_OBJECT_BYTES`] (issue 13).
    pub fn apply(&self, user: User, now: i64) -> InputResult<(User, Option<&str>)> {
        Ok(match self {
            // A patch replaces customData and profile whole, each checked as input.
            UserChange::Patch(p) => (p.apply(user, now), None),
            UserChange::MergeCustomData(m) => {
                let mut user = user;
                merge(&mut user.custom_data, m);
                check_object("customData (merged with the stored one)", &user.custom_data)?;
                user.updated_at = now;
                (user, None)
            }
            UserChange::MergeProfile(m) => {
                let mut user = user;
                merge(&mut user.profile, m);
                check_object("profile (merged with the stored one)", &user.profile)?;
                user.updated_at = now;
                (user, None)
            }
            UserChange::Password(hash) => {
                let mut user = user;
                user.updated_at = now;
                (user, Some(hash))
            }
            UserChange::Suspended(s) => {
                let mut user = user;
                user.is_suspended = *s;
                user.updated_at = now;
                (user, None)
            }
        })
    }
}

impl User {
    /// customData and profile within [`MAX_OBJECT_BYTES`] each: checked wherever stored
    /// objects are combined with new data, since each part alone may fit.
    pub fn check_objects(&self) -> InputResult<()> {
        check_object("customData", &self.custom_data)?;
        check_object("profile", &self.profile)
    }
}

fn merge(into: &mut Map<String, Value>, from: &Map<String, Value>) {
    for (k, v) in from {
        into.insert(k.clone(), v.clone());
    }
}

/// Text in Unicode Normalization Form C (UAX #15): `é` written precomposed (U+00E9) or
/// decomposed (`e` + U+0301) becomes the one, precomposed spelling.
pub fn nfc(text: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    text.nfc().collect()
}

/// The one spelling of an email that uniqueness, sign-in lookup, verification codes,
/// lockout keys and invitations go by (issue 13, "One identity, one spelling"): NFC, then the
/// case rule (emails are unique regardless of case), then NFC again, since lowercasing can
/// leave a sequence that composes differently. Usernames need no case rule (Logto's are
/// ASCII letters, digits and `_`, see [`check_username`]).
pub fn email_key(email: &str) -> String {
    nfc(&nfc(email).to_lowercase())
}

/// Logto's username rule: a letter or underscore, then letters, digits and underscores.
pub fn check_username(username: Option<&str>) -> InputResult<()> {
    let Some(u) = username else { return Ok(()) };
    let mut chars = u.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !first_ok
        || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        || u.len() > MAX_USERNAME_LENGTH
    {
        return Err(InputError::new(format!(
            "`username` must start with a letter or `_` and hold only letters, digits and `_` (at most {MAX_USERNAME_LENGTH})"
        )));
    }
    Ok(())
}

/// Logto's email rule (`\S+@\S+\.\S+`), bounded.
pub fn check_email(email: Option<&str>) -> InputResult<()> {
    let Some(e) = email else { return Ok(()) };
    // Bounded as keyed (NFC and lowercasing can lengthen it), so that every stored email
    // can be signed in with (`Identifier::parse` bounds the key the same way).
    let ok = e.len() <= MAX_EMAIL_LENGTH
        && email_key(e).len() <= MAX_EMAIL_LENGTH
        && !e.chars().any(char::is_whitespace)
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain
                    .rsplit_once('.')
                    .is_some_and(|(host, tld)| !host.is_empty() && !tld.is_empty())
        });
    if !ok {
        return Err(InputError::new(format!(
            "`primaryEmail` must be an email address (at most {MAX_EMAIL_LENGTH} characters)"
        )));
    }
    Ok(())
}

/// Logto's phone rule: digits only (E.164 without the `+`), bounded.
pub fn check_phone(phone: Option<&str>) -> InputResult<()> {
    let Some(p) = phone else { return Ok(()) };
    if p.is_empty() || p.len() > MAX_PHONE_LENGTH || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(InputError::new(format!(
            "`primaryPhone` must be digits only, at most {MAX_PHONE_LENGTH}"
        )));
    }
    Ok(())
}

/// A password set through the Management API (`POST /users`, `PATCH …/password`): Logto's
/// guard asks for at least one character; hookline bounds it at [`MAX_PASSWORD_LENGTH`].
pub fn check_api_password(password: &str) -> InputResult<()> {
    let n = password.chars().count();
    if !(1..=MAX_PASSWORD_LENGTH).contains(&n) {
        return Err(InputError::new(format!(
            "`password` must be 1 to {MAX_PASSWORD_LENGTH} characters"
        )));
    }
    Ok(())
}

/// A password an end user chooses in an interaction (register, reset).
pub fn check_password(password: &str) -> InputResult<()> {
    let n = password.chars().count();
    if !(MIN_PASSWORD_LENGTH..=MAX_PASSWORD_LENGTH).contains(&n) {
        return Err(InputError::new(format!(
            "`password` must be {MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters"
        )));
    }
    Ok(())
}

pub fn check_object(field: &str, value: &Map<String, Value>) -> InputResult<()> {
    let size = serde_json::to_string(value).map_or(usize::MAX, |s| s.len());
    if size > MAX_OBJECT_BYTES {
        return Err(InputError::new(format!(
            "`{field}` must be at most {MAX_OBJECT_BYTES} bytes of JSON"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn formats_follow_logto() {
        assert!(check_username(Some("_alice9")).is_ok());
        for bad in ["9alice", "al ice", "al-ice", "", "ü"] {
            assert!(check_username(Some(bad)).is_err(), "{bad}");
        }
        assert!(check_email(Some("a@b.co")).is_ok());
        for bad in ["a@b", "@b.co", "a b@c.de", "a@.de", "a@b."] {
            assert!(check_email(Some(bad)).is_err(), "{bad}");
        }
        assert!(check_phone(Some("4915112345678")).is_ok());
        for bad in ["+49151", "12 34", ""] {
            assert!(check_phone(Some(bad)).is_err(), "{bad}");
        }
        assert!(check_password("short").is_err());
        assert!(check_password("long enough").is_ok());
    }

    #[test]
    fn the_user_serializes_in_logtos_key_order() {
        let input: NewUserInput =
            serde_json::from_value(json!({"username": "alice", "customData": {"a": 1}})).unwrap();
        let user = input.parse("u1".into(), 5).unwrap().user;
        let v = serde_json::to_value(&user).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "id",
                "username",
                "primaryEmail",
                "primaryPhone",
                "name",
                "avatar",
                "customData",
                "identities",
                "lastSignInAt",
                "createdAt",
                "updatedAt",
                "profile",
                "applicationId",
                "cimdClientId",
                "isSuspended"
            ]
        );
    }

    #[test]
    fn patches_replace_clear_and_merge() {
        let input: NewUserInput = serde_json::from_value(
            json!({"username": "alice", "name": "A", "customData": {"a": 1, "b": 2}}),
        )
        .unwrap();
        let user = input.parse("u1".into(), 5).unwrap().user;
        let patch: UserPatch =
            serde_json::from_value(json!({"name": null, "username": "bob"})).unwrap();
        let patched = patch.apply(user.clone(), 9);
        assert_eq!(patched.name, None);
        assert_eq!(patched.username.as_deref(), Some("bob"));
        assert_eq!(patched.updated_at, 9);
        let merged =
            UserChange::MergeCustomData(json!({"b": 3, "c": 4}).as_object().unwrap().clone())
                .apply(user, 10)
                .unwrap()
                .0;
        assert_eq!(json!(merged.custom_data), json!({"a": 1, "b": 3, "c": 4}));
    }

    #[test]
    fn emails_are_bounded_as_keyed() {
        // 60 × U+0130 is 120 bytes as sent and 180 lowercased (found in review).
        let long = format!("{}@x.io", "\u{130}".repeat(60));
        assert!(long.len() <= MAX_EMAIL_LENGTH);
        assert!(check_email(Some(&long)).is_err());
        assert!(check_email(Some("jos\u{e9}@example.com")).is_ok());
    }

    #[test]
    fn email_keys_are_one_spelling() {
        let key = email_key("jos\u{e9}@example.com");
        for spelling in [
            "jose\u{301}@example.com",
            "JOS\u{c9}@Example.COM",
            "JOSE\u{301}@EXAMPLE.COM",
        ] {
            assert_eq!(email_key(spelling), key, "{spelling:?}");
        }
        // Lowercasing U+0130 (İ) decomposes; the key is NFC all the same.
        assert_eq!(email_key("\u{130}@x.io"), nfc(&email_key("\u{130}@x.io")));
        assert_ne!(email_key("jose@example.com"), key);
    }

    #[test]
    fn merges_are_bounded_on_their_result() {
        let input: NewUserInput = serde_json::from_value(json!({"username": "alice"})).unwrap();
        let mut user = input.parse("u1".into(), 5).unwrap().user;
        let third = "x".repeat(MAX_OBJECT_BYTES / 3);
        let piece = |i: u8| {
            json!({ format!("k{i}"): third })
                .as_object()
                .unwrap()
                .clone()
        };
        for i in 0..2 {
            user = UserChange::MergeCustomData(piece(i))
                .apply(user, 6)
                .unwrap()
                .0;
            user = UserChange::MergeProfile(piece(i)).apply(user, 6).unwrap().0;
        }
        // Each piece fits alone; the third makes either object too large.
        let err = UserChange::MergeCustomData(piece(2))
            .apply(user.clone(), 7)
            .unwrap_err();
        assert!(err.to_string().contains("customData"), "{err}");
        assert!(UserChange::MergeProfile(piece(2))
            .apply(user.clone(), 7)
            .is_err());
        // Replacing a key does not grow it.
        assert!(UserChange::MergeCustomData(piece(1)).apply(user, 7).is_ok());
    }
}
