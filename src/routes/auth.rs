//! Bearer-token authentication of the management API.
//!
//! Only the SHA-256 of the admin token is held (in memory and, for a generated token, in the
//! database). The token is high-entropy, so a plain hash is enough; a slow password hash would
//! only slow every request. Presented tokens are hashed and compared in constant time.

use super::error::ApiError;
use super::AppState;
use crate::domain::authorization::Authorization;
use axum::extract::{Request, State};
use axum::http::header::AUTHORIZATION;
use axum::middleware::Next;
use axum::response::Response;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub fn token_hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

pub async fn require_admin(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    let presented = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(Authorization::parse)
        .and_then(Authorization::bearer);
    match presented {
        Some(token) if bool::from(token_hash(token).ct_eq(&state.admin_token_hash)) => {
            Ok(next.run(req).await)
        }
        _ => Err(ApiError::unauthorized()),
    }
}
