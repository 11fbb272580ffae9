//! The optional API token guarding the routes that change the library.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use vidseek_protocol::ErrorCode;

use crate::AppState;
use crate::error::ApiError;

/// Present in a handler's arguments, it rejects the request with 401 unless
/// no token is configured or the request carries `Authorization: Bearer <token>`.
pub struct Authorized;

impl FromRequestParts<AppState> for Authorized {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let Some(expected) = state.config.api_token.as_deref() else {
            return Ok(Authorized);
        };
        let offered = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_token);
        match offered {
            Some(token) if constant_time_eq(token.as_bytes(), expected.as_bytes()) => {
                Ok(Authorized)
            }
            Some(_) => Err(ApiError::new(ErrorCode::Unauthorized, "wrong API token")),
            None => Err(ApiError::new(
                ErrorCode::Unauthorized,
                "this action needs the API token: send Authorization: Bearer <token>",
            )),
        }
    }
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
