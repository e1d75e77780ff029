//! `/api/interactions/*`: what an application's backend calls on behalf of an end user. These
//! routes authenticate the application (HTTP Basic `appId:secret`), not the admin. The end
//! user's address and user agent come from the body (`userIp`, `userAgent`) or else from the
//! request (`X-Forwarded-For` only from `--trusted-proxies`).

use super::error::ApiError;
use super::extract::ApiJson;
use super::AppState;
use crate::domain::authorization::Authorization;
use crate::domain::id::{new_id, new_short_id};
use crate::domain::identity::application::Application;
use crate::domain::identity::user::{check_password, NewUserInput};
use crate::domain::interaction::{Identifier, InteractionContext};
use crate::identity::interactions::{self, secret_matches, InteractionError};
use crate::storage::identity::Kind;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{Map, Value};
use std::net::IpAddr;

impl From<InteractionError> for ApiError {
    fn from(e: InteractionError) -> Self {
        let message = e.to_string();
        match e {
            InteractionError::Blocked { .. } => ApiError::new(
                StatusCode::BAD_REQUEST,
                "session.verification_blocked_too_many_attempts",
                message,
            ),
            InteractionError::InvalidCredentials => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "session.invalid_credentials",
                message,
            ),
            InteractionError::Suspended => {
                ApiError::new(StatusCode::FORBIDDEN, "user.suspended", message)
            }
            InteractionError::Denied(m) => {
                ApiError::new(StatusCode::FORBIDDEN, "hook.interaction_denied", m)
            }
            InteractionError::RateLimited => ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "request.message_rate_limited",
                message,
            ),
            InteractionError::CodeMismatch => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "verification_code.code_mismatch",
                message,
            ),
            InteractionError::Busy => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server.busy", message)
                    .retry_after(1)
            }
            InteractionError::ScriptsBusy => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "server.busy", message)
                    .retry_after(1)
            }
            InteractionError::ActionFailed(_) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "session.verification_failed",
                message,
            ),
            InteractionError::Identity(i) => i.into(),
        }
    }
}

fn unauthorized() -> Response {
    let mut res = ApiError::new(
        StatusCode::UNAUTHORIZED,
        "application.unauthorized",
        "Send the application's credentials as HTTP Basic `appId:secret`.",
    )
    .into_response();
    res.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"hookline\""),
    );
    res
}

/// The calling application, authenticated, and what the request says about the end user.
pub struct Caller {
    app: Application,
    peer_ip: IpAddr,
    user_agent: Option<String>,
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let basic = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(Authorization::parse)
            .and_then(Authorization::basic);
        let Some((app_id, secret)) = basic else {
            return Err(unauthorized());
        };
        let (app_id, secret) = (app_id.as_str(), secret.as_str());
        if !crate::domain::identity::is_possible_id(app_id) {
            return Err(unauthorized());
        }
        let found = state
            .store
            .get_with_credential(Kind::Application, app_id)
            .await
            .map_err(|e| ApiError::from(e).into_response())?;
        // Unknown applications are checked against a hash too, so that the answer takes as
        // long either way.
        let (doc, stored) = match found {
            Some((doc, Some(hash))) => (Some(doc), hash),
            _ => (None, "0".repeat(64)),
        };
        let matches = secret_matches(secret, &stored);
        let Some(doc) = doc.filter(|_| matches) else {
            return Err(unauthorized());
        };
        let app: Application = serde_json::from_value(doc).map_err(|e| {
            ApiError::from(crate::storage::StoreError::Corrupt(format!(
                "an application: {e}"
            )))
            .into_response()
        })?;
        let (peer_ip, user_agent) = super::client_of(parts, state);
        Ok(Caller {
            app,
            peer_ip,
            user_agent,
        })
    }
}

/// The end user's address and user agent, as the application's backend passes them.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EndUser {
    user_ip: Option<String>,
    user_agent: Option<String>,
}

impl Caller {
    /// The interaction's context: a new session, the end user's address and agent (from the
    /// body when given, else from the request).
    fn context(self, end_user: EndUser) -> Result<InteractionContext, ApiError> {
        let user_ip = match end_user.user_ip {
            Some(ip) => ip
                .trim()
                .parse::<IpAddr>()
                .map_err(|_| ApiError::invalid_input("`userIp` must be an IP address"))?
                .to_canonical(),
            None => self.peer_ip,
        };
        let user_agent = match end_user.user_agent {
            Some(ua) if ua.len() > 512 => {
                return Err(ApiError::invalid_input(
                    "`userAgent` must be at most 512 bytes",
                ))
            }
            Some(ua) => Some(ua),
            None => self.user_agent,
        };
        Ok(InteractionContext {
            session_id: new_id(),
            user_agent,
            user_ip: user_ip.to_string(),
            application: self.app,
        })
    }
}

fn identifier(raw: &str) -> Result<Identifier, ApiError> {
    Identifier::parse(raw).ok_or_else(|| {
        ApiError::invalid_input(
            "`identifier` must be a username or an email (at most 128 characters)",
        )
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RegisterInput {
    username: Option<String>,
    primary_email: Option<String>,
    password: String,
    name: Option<String>,
    profile: Option<Map<String, Value>>,
    #[serde(flatten)]
    end_user: EndUser,
}

pub async fn register(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<RegisterInput>,
) -> Result<Response, ApiError> {
    if input.username.is_none() && input.primary_email.is_none() {
        return Err(ApiError::invalid_input(
            "a registration needs a `username` or a `primaryEmail`",
        ));
    }
    let ctx = caller.context(input.end_user)?;
    check_password(&input.password)?;
    let new = NewUserInput {
        username: input.username,
        primary_email: input.primary_email,
        primary_phone: None,
        name: input.name,
        avatar: None,
        password: None,
        password_digest: None,
        password_algorithm: None,
        custom_data: None,
        profile: input.profile,
    }
    .parse(new_short_id(), crate::clock::now_ms())?;
    let hash = state.interactions.passwords.hash(input.password).await?;
    let mut user = new.user;
    user.application_id = Some(ctx.application.id.clone());
    let answer = interactions::register(
        &*state.store,
        &state.sender,
        &state.interactions.scripts,
        ctx,
        user,
        hash,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

#[derive(Deserialize)]
pub struct SignInInput {
    identifier: String,
    password: String,
    #[serde(flatten)]
    end_user: EndUser,
}

pub async fn sign_in(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<SignInInput>,
) -> Result<Response, ApiError> {
    let id = identifier(&input.identifier)?;
    let ctx = caller.context(input.end_user)?;
    let result = interactions::sign_in(
        &*state.store,
        &state.sender,
        state.interactions.clone(),
        ctx,
        id,
        input.password,
    )
    .await;
    // A refused sign-in may have fired Identifier.Lockout.
    Ok(Json(result?).into_response())
}

#[derive(Deserialize)]
pub struct CodeInput {
    identifier: String,
    #[serde(flatten)]
    end_user: EndUser,
}

pub async fn send_reset_code(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<CodeInput>,
) -> Result<Response, ApiError> {
    let id = identifier(&input.identifier)?;
    let ctx = caller.context(input.end_user)?;
    let result =
        interactions::send_reset_code(&*state.store, state.interactions.clone(), ctx, id).await;
    // A refused request fired Message.RateLimited.
    Ok((StatusCode::CREATED, Json(result?)).into_response())
}

#[derive(Deserialize)]
pub struct ResetInput {
    identifier: String,
    code: String,
    password: String,
    #[serde(flatten)]
    end_user: EndUser,
}

pub async fn reset_password(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(input): ApiJson<ResetInput>,
) -> Result<Response, ApiError> {
    let id = identifier(&input.identifier)?;
    check_password(&input.password)?;
    if input.code.len() > 16 {
        return Err(ApiError::invalid_input("`code` is at most 16 characters"));
    }
    let ctx = caller.context(input.end_user)?;
    let answer = interactions::reset_password(
        &*state.store,
        &state.sender,
        state.interactions.clone(),
        ctx,
        id,
        input.code,
        input.password,
    )
    .await;
    // A refused reset may have fired Identifier.Lockout.
    Ok(Json(answer?).into_response())
}
