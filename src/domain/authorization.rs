//! The `Authorization` request header (RFC 9110 §11.6.2), parsed once into its scheme and
//! credentials: `credentials = auth-scheme [ 1*SP ( token68 / #auth-param ) ]`. The scheme is
//! case-insensitive (§11.1: `BEARER`, `bearer` and `Bearer` are one scheme); the credentials
//! are kept as sent, without the whitespace around them.

/// A parsed `Authorization` value: [`Authorization::bearer`] and [`Authorization::basic`]
/// read the two schemes hookline takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Authorization<'a> {
    /// The scheme as sent (compare it case-insensitively).
    pub scheme: &'a str,
    /// Everything after the scheme and the spaces that follow it, trimmed.
    pub credentials: &'a str,
}

impl<'a> Authorization<'a> {
    /// Splits a header value; `None` when it has no scheme or no credentials.
    pub fn parse(value: &'a str) -> Option<Self> {
        let value = value.trim_matches([' ', '\t']);
        let (scheme, credentials) = value.split_once([' ', '\t'])?;
        let credentials = credentials.trim_matches([' ', '\t']);
        let is_token = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        };
        (is_token(scheme) && !credentials.is_empty()).then_some(Self {
            scheme,
            credentials,
        })
    }

    /// The token of a `Bearer` value (RFC 6750 §2.1).
    pub fn bearer(self) -> Option<&'a str> {
        self.scheme
            .eq_ignore_ascii_case("bearer")
            .then_some(self.credentials)
    }

    /// The user id and password of a `Basic` value (RFC 7617 §2): base64 of `id:password`,
    /// UTF-8; `None` if it does not decode or has no colon.
    pub fn basic(self) -> Option<(String, String)> {
        use base64::Engine as _;
        if !self.scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(self.credentials)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (id, password) = text.split_once(':')?;
        Some((id.to_owned(), password.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schemes_are_case_insensitive() {
        for value in [
            "Bearer tok",
            "bearer tok",
            "BEARER tok",
            "BeArEr   tok  ",
            "\tBearer\ttok",
        ] {
            assert_eq!(
                Authorization::parse(value).and_then(Authorization::bearer),
                Some("tok"),
                "{value:?}"
            );
        }
        // "alice:s3cret" in base64.
        for value in [
            "Basic YWxpY2U6czNjcmV0",
            "basic YWxpY2U6czNjcmV0",
            "BASIC  YWxpY2U6czNjcmV0",
        ] {
            assert_eq!(
                Authorization::parse(value).and_then(Authorization::basic),
                Some(("alice".into(), "s3cret".into())),
                "{value:?}"
            );
        }
    }

    #[test]
    fn malformed_values_have_no_credentials() {
        for value in ["", "Bearer", "Bearer ", "Bearertok", " tok", "Bea(rer tok"] {
            assert_eq!(
                Authorization::parse(value).and_then(Authorization::bearer),
                None,
                "{value:?}"
            );
        }
        assert_eq!(
            Authorization::parse("Basic tok").and_then(Authorization::bearer),
            None
        );
        assert_eq!(
            Authorization::parse("Bearer YWxpY2U6czNjcmV0").and_then(Authorization::basic),
            None
        );
        assert_eq!(
            Authorization::parse("Basic !!!").and_then(Authorization::basic),
            None
        );
        assert_eq!(
            Authorization::parse("Basic bm9jb2xvbg==").and_then(Authorization::basic),
            None
        );
    }
}
