//! The one error type of the HTTP API: `{code, message, data?}` JSON with a status, shaped like
//! Logto's `RequestError` so that Logto API clients read it unchanged.

use crate::domain::hook::HookInputError;
use crate::domain::target::TargetError;
use crate::storage::StoreError;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

/// `{code, message, data?, details?}` with an HTTP status. `details` is what Logto's input
/// guard adds to `guard.invalid_input`: a readable account of what failed.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    // Boxed: the error is the `Err` of most handlers' helpers, so it is kept small.
    pub data: Option<Box<Value>>,
    pub details: Option<Box<str>>,
    /// Seconds for a `Retry-After` header (RFC 9110 §10.2.3), on 503s the client should
    /// repeat later.
    pub retry_after: Option<u16>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            data: None,
            details: None,
            retry_after: None,
        }
    }

    /// Adds `Retry-After: seconds`.
    pub fn retry_after(mut self, seconds: u16) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(Box::new(data));
        self
    }

    /// 400 `guard.invalid_input`, with what failed both in the message and as `details`.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        let details = message.into();
        let mut e = Self::new(
            StatusCode::BAD_REQUEST,
            "guard.invalid_input",
            format!("The request input is invalid: {details}"),
        );
        e.details = Some(details.into_boxed_str());
        e
    }

    pub fn unauthorized() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "auth.unauthorized",
            "Send the admin token as `Authorization: Bearer <token>`.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({"code": self.code, "message": self.message});
        if let Some(obj) = body.as_object_mut() {
            if let Some(data) = self.data {
                obj.insert("data".into(), *data);
            }
            if let Some(details) = self.details {
                obj.insert("details".into(), Value::String(details.into()));
            }
        }
        let mut res = (self.status, Json(body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        if let Some(seconds) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, header::HeaderValue::from(seconds));
        }
        res
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // The details go to the log, not to the client.
        tracing::error!(error = %e, "storage error");
        match e {
            StoreError::Unavailable(_) | StoreError::Contention(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "database.unavailable",
                "The database is unavailable; nothing was changed. Try again later.",
            )
            .retry_after(1),
            _ => Self::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_server_error",
                "The request could not be completed because of a storage error.",
            ),
        }
    }
}

impl From<HookInputError> for ApiError {
    fn from(e: HookInputError) -> Self {
        match e {
            HookInputError::MissingEvents => Self::new(
                StatusCode::BAD_REQUEST,
                "hook.missing_events",
                "A hook needs at least one event: give a non-empty `events` (or the legacy `event`).",
            ),
            HookInputError::Invalid(m) => Self::invalid_input(m),
            HookInputError::Target(t) => t.into(),
        }
    }
}

impl From<TargetError> for ApiError {
    fn from(e: TargetError) -> Self {
        let code = match e {
            TargetError::Private(_) => "hook.private_target_refused",
            _ => "hook.invalid_url",
        };
        Self::new(StatusCode::BAD_REQUEST, code, format!("config.url: {e}"))
    }
}
