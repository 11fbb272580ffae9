//! Every failure a handler can meet, and the one table that turns it into an
//! HTTP status and the public `{"error": {"code", "message"}}` body.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use vidseek_bus::catalog::CatalogError;
use vidseek_bus::media_store::MediaStoreError;
use vidseek_bus::segment_log::SegmentLogError;
use vidseek_bus::streams::StreamSetupError;
use vidseek_protocol::{ErrorBody, ErrorCode};

/// Seconds a client is asked to wait after an `overloaded` answer that
/// carries no hint of its own.
const RETRY_AFTER_SECS: u64 = 1;

/// Why a request failed. Client-facing errors carry their code and message;
/// internal ones are logged in full and answered with a generic message, so
/// paths and backend details never leak to clients.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// An error with a public code: bad input here, or one a worker answered.
    #[error("{0}")]
    Public(ErrorBody),
    #[error("video catalog: {0}")]
    Catalog(#[from] CatalogError),
    #[error("segment log: {0}")]
    SegmentLog(#[from] SegmentLogError),
    #[error("file system: {0}")]
    Io(#[from] std::io::Error),
    #[error("media store: {0}")]
    MediaStore(#[from] MediaStoreError),
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ApiError {
        ApiError::Public(ErrorBody::new(code, message))
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::BadRequest, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(ErrorCode::NotFound, message)
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            ApiError::Public(body) => body.error.code,
            ApiError::Io(err) if is_disk_full(err) => ErrorCode::Unavailable,
            _ if self.jetstream_unreachable() => ErrorCode::Unavailable,
            ApiError::Catalog(_)
            | ApiError::SegmentLog(_)
            | ApiError::Io(_)
            | ApiError::MediaStore(_) => ErrorCode::Internal,
        }
    }

    /// JetStream did not answer (a NATS node restarting, a stream leader
    /// being elected): worth a retry, unlike a corrupt record.
    fn jetstream_unreachable(&self) -> bool {
        match self {
            ApiError::Catalog(err) => !matches!(err, CatalogError::Corrupt { .. }),
            ApiError::SegmentLog(err) => !matches!(
                err,
                SegmentLogError::Corrupt(_) | SegmentLogError::SegmentTooLarge(_)
            ),
            // Whatever fails in the object store is JetStream's answer
            // (or its silence); a missing object is a 404 before this.
            ApiError::MediaStore(_) => true,
            ApiError::Public(_) | ApiError::Io(_) => false,
        }
    }

    /// The body a client sees.
    pub fn body(&self) -> ErrorBody {
        match self {
            ApiError::Public(body) if body.error.code != ErrorCode::Internal => body.clone(),
            // Says what is wrong without naming the server's paths.
            ApiError::Io(err) if is_disk_full(err) => ErrorBody::new(
                ErrorCode::Unavailable,
                "the server's data directory is full; nothing was kept. Try again once space is freed",
            ),
            _ if self.jetstream_unreachable() => ErrorBody::new(
                ErrorCode::Unavailable,
                "the library's storage (NATS JetStream) did not answer; try again in a moment",
            ),
            _ => ErrorBody::new(
                ErrorCode::Internal,
                "internal error; the details are in the gateway's log",
            ),
        }
    }
}

/// No space (ENOSPC) or no quota (EDQUOT) left where the gateway writes.
fn is_disk_full(err: &std::io::Error) -> bool {
    matches!(
        err.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

impl From<ErrorBody> for ApiError {
    fn from(body: ErrorBody) -> ApiError {
        ApiError::Public(body)
    }
}

/// The one place a code becomes a status. Exhaustive on purpose: a new code
/// does not compile until it has a status.
pub fn status_of(code: ErrorCode) -> StatusCode {
    match code {
        ErrorCode::BadRequest => StatusCode::BAD_REQUEST,
        ErrorCode::Unauthorized => StatusCode::UNAUTHORIZED,
        ErrorCode::ForbiddenPath | ErrorCode::Forbidden => StatusCode::FORBIDDEN,
        ErrorCode::NotFound => StatusCode::NOT_FOUND,
        ErrorCode::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
        ErrorCode::UnsupportedMedia => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        // Overload (retry soon) stays distinguishable from an outage (503).
        ErrorCode::Overloaded => StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::Timeout => StatusCode::GATEWAY_TIMEOUT,
        ErrorCode::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The response for an error body (also used where a worker's error is
/// forwarded as is).
pub fn error_response(body: &ErrorBody) -> Response {
    let code = body.error.code;
    let mut response = (status_of(code), axum::Json(body)).into_response();
    match code {
        ErrorCode::Overloaded => {
            // Whole seconds, rounded up: the header has no finer unit.
            let secs = body
                .error
                .retry_after_ms
                .map_or(RETRY_AFTER_SECS, |ms| ms.div_ceil(1000).max(1));
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        ErrorCode::Unauthorized => {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        _ => {}
    }
    response
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = self.body();
        match body.error.code {
            ErrorCode::Internal => tracing::error!(error = %self, "request failed"),
            // Stages being down or slow is operational news, not a client bug.
            ErrorCode::Unavailable | ErrorCode::Timeout | ErrorCode::Overloaded => {
                tracing::warn!(error = %self, "request failed")
            }
            _ => tracing::debug!(error = %self, "request rejected"),
        }
        error_response(&body)
    }
}

/// Why [`crate::serve`] could not run.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("cannot set up the JetStream streams: {0}")]
    Streams(#[from] StreamSetupError),
    #[error("cannot open the video catalog: {0}")]
    Catalog(#[from] CatalogError),
    #[error(transparent)]
    MediaStore(#[from] MediaStoreError),
    #[error("cannot create {path}: {source}")]
    DataDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_details_are_not_sent() {
        let err = ApiError::Io(std::io::Error::other("/secret/path exploded"));
        assert_eq!(err.code(), ErrorCode::Internal);
        assert!(!err.body().error.message.contains("secret"));
        let err = ApiError::new(ErrorCode::Internal, "worker stack trace");
        assert!(!err.body().error.message.contains("stack"));
    }

    #[test]
    fn jetstream_not_answering_is_unavailable_and_a_corrupt_record_internal() {
        use async_nats::jetstream::kv::{EntryError, EntryErrorKind};
        let timed_out = ApiError::Catalog(CatalogError::Read(EntryError::new(
            EntryErrorKind::TimedOut,
        )));
        assert_eq!(timed_out.code(), ErrorCode::Unavailable);
        assert_eq!(timed_out.body().error.code, ErrorCode::Unavailable);
        let too_large = ApiError::SegmentLog(SegmentLogError::SegmentTooLarge(5));
        assert_eq!(too_large.code(), ErrorCode::Internal);
        assert_eq!(too_large.body().error.code, ErrorCode::Internal);
    }

    #[test]
    fn a_full_disk_is_named_without_paths() {
        // ENOSPC, as a write into a full data directory fails.
        let err = ApiError::Io(std::io::Error::from_raw_os_error(28));
        assert_eq!(err.code(), ErrorCode::Unavailable);
        let body = err.body();
        assert_eq!(body.error.code, ErrorCode::Unavailable);
        assert!(
            body.error.message.contains("full"),
            "{}",
            body.error.message
        );
        assert!(!body.error.message.contains('/'), "{}", body.error.message);
    }

    #[test]
    fn overloaded_asks_to_retry() {
        let response = error_response(&ErrorBody::new(ErrorCode::Overloaded, "busy"));
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "1");
        // A worker's hint is kept, rounded up to whole seconds.
        let hinted = ErrorBody::overloaded("busy", std::time::Duration::from_millis(2500));
        let response = error_response(&hinted);
        assert_eq!(response.headers()[header::RETRY_AFTER], "3");
    }

    #[test]
    fn public_codes_keep_their_status() {
        for (code, status) in [
            (ErrorCode::BadRequest, 400),
            (ErrorCode::Unauthorized, 401),
            (ErrorCode::ForbiddenPath, 403),
            (ErrorCode::Forbidden, 403),
            (ErrorCode::NotFound, 404),
            (ErrorCode::TooLarge, 413),
            (ErrorCode::UnsupportedMedia, 415),
            (ErrorCode::Overloaded, 429),
            (ErrorCode::Timeout, 504),
            (ErrorCode::Unavailable, 503),
            (ErrorCode::Internal, 500),
        ] {
            assert_eq!(status_of(code).as_u16(), status, "{code}");
        }
    }
}
