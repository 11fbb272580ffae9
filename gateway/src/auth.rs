//! The optional API token guarding the routes that change the library, and
//! on request (`api_token_reads`) those that read it.

use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};
use axum::middleware::Next;
use axum::response::Response;
use vidseek_protocol::ErrorCode;

use crate::AppState;
use crate::error::ApiError;

/// Present in a handler's arguments, it rejects the request with 401 unless
/// no token is configured or the request carries `Authorization: Bearer <token>`.
pub struct Authorized;

impl FromRequestParts<AppState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match state.config.api_token.as_deref() {
            None => Ok(Authorized),
            Some(expected) => check(&parts.headers, expected),
        }
    }
}

fn check(headers: &HeaderMap, expected: &str) -> Result<Authorized, ApiError> {
    let offered = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer_token);
    match offered {
        Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => Ok(Authorized),
        Some(_) => Err(ApiError::new(ErrorCode::Unauthorized, "wrong API token")),
        None => Err(ApiError::new(
            ErrorCode::Unauthorized,
            "this action needs the API token: send Authorization: Bearer <token>",
        )),
    }
}

/// Layered on the routes that read the library: with `api_token_reads` set
/// they need the token as the routes that change it do. Set without a token
/// configured, it refuses every read (closed rather than silently open).
pub async fn guard_reads(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Result<Response, ApiError> {
    if state.config.api_token_reads {
        match state.config.api_token.as_deref() {
            Some(expected) => {
                check(request.headers(), expected)?;
            }
            None => {
                return Err(ApiError::new(
                    ErrorCode::Unauthorized,
                    "reads need the API token (VIDSEEK_API_TOKEN_READS) but no VIDSEEK_API_TOKEN is set",
                ));
            }
        }
    }
    Ok(next.run(request).await)
}

fn bearer_token(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// Compares without stopping at the first difference, so response timing does
/// not reveal how much of a guessed token was right. (The length is not secret.)
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a
        .iter()
        .zip(b)
        .fold(0u8, |acc, (x, y)| acc | std::hint::black_box(x ^ y));
    diff == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_bearer_header() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }

    #[test]
    fn compares_whole_tokens() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(!constant_time_eq(b"", b"x"));
    }
}
