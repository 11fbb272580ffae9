//! Error codes shared by every stage, and the `{"error": {"code", "message"}}`
//! body that carries them over NATS and HTTP alike.

use serde::{Deserialize, Serialize};

/// What went wrong, in terms a client can act on. The gateway maps each code to
/// exactly one HTTP status (see `gateway::error`).
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed (bad JSON/MessagePack, missing field, empty text…).
    BadRequest,
    /// An id that does not exist.
    NotFound,
    /// Input that is not an image or video we can decode.
    UnsupportedMedia,
    /// Input over a configured size limit.
    TooLarge,
    /// A path outside the allowed media roots.
    ForbiddenPath,
    /// Missing or wrong API token.
    Unauthorized,
    /// Not allowed from where it came (a web page of another origin).
    Forbidden,
    /// A bounded queue is full; retry later.
    Overloaded,
    /// A downstream stage did not answer in time.
    Timeout,
    /// No worker serves a required stage.
    Unavailable,
    /// A bug or an unexpected failure; details are in the logs, not the reply.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::NotFound => "not_found",
            ErrorCode::UnsupportedMedia => "unsupported_media",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::ForbiddenPath => "forbidden_path",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::Overloaded => "overloaded",
            ErrorCode::Timeout => "timeout",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorDetail {
    pub code: ErrorCode,
    pub message: String,
    /// With `overloaded`: how long the caller should wait before trying
    /// again. Absent otherwise, so the body keeps its two-field shape.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

/// The wire shape of every error reply.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

impl ErrorBody {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            error: ErrorDetail {
                code,
                message: message.into(),
                retry_after_ms: None,
            },
        }
    }

    /// An `overloaded` answer asking the caller to retry after `retry_after`.
    pub fn overloaded(message: impl Into<String>, retry_after: std::time::Duration) -> Self {
        let mut body = ErrorBody::new(ErrorCode::Overloaded, message);
        body.error.retry_after_ms = Some(retry_after.as_millis().max(1) as u64);
        body
    }
}

impl std::fmt::Display for ErrorBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error.code, self.error.message)
    }
}

impl std::error::Error for ErrorBody {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_has_the_public_shape() {
        let body = ErrorBody::new(ErrorCode::NotFound, "no video v1");
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": {"code": "not_found", "message": "no video v1"}})
        );
        let back: ErrorBody = serde_json::from_value(json).unwrap();
        assert_eq!(back, body);
    }

    #[test]
    fn the_retry_hint_is_an_optional_field() {
        let body = ErrorBody::overloaded("busy", std::time::Duration::from_millis(250));
        let json = serde_json::to_value(&body).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"error": {"code": "overloaded", "message": "busy", "retry_after_ms": 250}})
        );
        assert_eq!(serde_json::from_value::<ErrorBody>(json).unwrap(), body);
        // Bodies from peers that do not know the field still decode.
        let old = serde_json::json!({"error": {"code": "overloaded", "message": "busy"}});
        let old: ErrorBody = serde_json::from_value(old).unwrap();
        assert_eq!(old.error.retry_after_ms, None);
    }

    #[test]
    fn as_str_matches_serde_name() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::Overloaded,
            ErrorCode::ForbiddenPath,
            ErrorCode::Internal,
        ] {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
