//! Request extractors that answer bad input with [`ApiError`] instead of axum's plain-text
//! rejections.

use super::error::ApiError;
use crate::server::BodyDeadline;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::StatusCode;
use serde::de::DeserializeOwned;
use std::collections::HashMap;

/// A JSON body, which must be an object (400 `guard.invalid_input` otherwise). The content
/// type is not insisted on (a `curl -d` without a header still works); an empty body reads as
/// `{}`, as Logto's body parser does. Read within the request's [`BodyDeadline`] (408).
pub struct ApiJson<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let bytes = body_bytes(req, state).await?;
        let bytes: &[u8] = match bytes.iter().find(|b| !b.is_ascii_whitespace()) {
            None => b"{}",
            // Every route's body is an object; serde would read an array into a struct by
            // position, and a `Value` body would take anything (issue 13).
            Some(b'{') => &bytes,
            Some(_) => {
                return Err(ApiError::invalid_input(
                    "the body must be a JSON object".to_owned()
                        + json_kind(&bytes)
                            .map_or(String::new(), |k| format!(", not {k}"))
                            .as_str(),
                ))
            }
        };
        serde_json::from_slice(bytes).map(ApiJson).map_err(|e| {
            if e.is_syntax() || e.is_eof() {
                ApiError::new(
                    StatusCode::BAD_REQUEST,
                    "request.malformed_json",
                    format!("The body is not valid JSON: {e}"),
                )
            } else {
                ApiError::invalid_input(format!("The body does not have the expected shape: {e}"))
            }
        })
    }
}

/// The request's body, read within its [`BodyDeadline`] (408 `request.timeout`) and the
/// body limit (413 `request.body_too_large`): the one body reader every extractor uses.
pub(crate) async fn body_bytes<S: Send + Sync>(req: Request, state: &S) -> Result<Bytes, ApiError> {
    let deadline = req.extensions().get::<BodyDeadline>().copied();
    let read = Bytes::from_request(req, state);
    let read = match deadline {
        Some(BodyDeadline(at)) => tokio::time::timeout_at(at, read).await.map_err(|_| {
            ApiError::new(
                StatusCode::REQUEST_TIMEOUT,
                "request.timeout",
                "The request body did not arrive in time (see --body-read-timeout).",
            )
        })?,
        None => read.await,
    };
    let bytes = read.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request.body_too_large",
                "The request body is larger than the server accepts (see --max-body-bytes).",
            )
        } else {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "request.unreadable_body",
                r.body_text(),
            )
        }
    })?;
    Ok(bytes)
}

/// What kind of JSON value `bytes` is ("an array", "a string", …), if it is valid JSON.
fn json_kind(bytes: &[u8]) -> Option<&'static str> {
    serde_json::from_slice::<serde::de::IgnoredAny>(bytes).ok()?;
    Some(match bytes.iter().find(|b| !b.is_ascii_whitespace())? {
        b'[' => "an array",
        b'"' => "a string",
        b't' | b'f' => "a boolean",
        b'n' => "null",
        _ => "a number",
    })
}

/// The query string as a map (the last value of a repeated key wins). Never rejects.
pub struct QueryMap(pub HashMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryMap {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        let q = parts.uri.query().unwrap_or("");
        Ok(QueryMap(
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect(),
        ))
    }
}

impl QueryMap {
    /// An integer parameter within `range`, or `None` when absent.
    pub fn int(
        &self,
        key: &str,
        range: std::ops::RangeInclusive<i64>,
    ) -> Result<Option<i64>, ApiError> {
        let Some(raw) = self.0.get(key) else {
            return Ok(None);
        };
        match raw.trim().parse::<i64>() {
            Ok(v) if range.contains(&v) => Ok(Some(v)),
            _ => Err(ApiError::invalid_input(format!(
                "query parameter `{key}` must be an integer from {} to {}",
                range.start(),
                range.end()
            ))),
        }
    }
}

/// The `{id}` of a `/hooks/{id}…` route. Extracting it also records it in the request's span,
/// so every log line of the request names the hook.
pub struct HookId(pub String);

impl<S: Send + Sync> FromRequestParts<S> for HookId {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let axum::extract::Path(id) =
            axum::extract::Path::<String>::from_request_parts(parts, state)
                .await
                .map_err(|e| ApiError::invalid_input(e.body_text()))?;
        super::record_hook_id(&id);
        Ok(HookId(id))
    }
}

/// Path parameters, answering a malformed one (not UTF-8 once decoded) with a JSON 400.
pub struct ApiPath<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| ApiPath(p.0))
            .map_err(|e| ApiError::invalid_input(e.body_text()))
    }
}
