//! Query strings must be UTF-8 once percent-decoded. axum's `Query` decodes
//! lossily, so `text=%FF%FE` (a legacy encoding such as GBK or Latin-1)
//! would be searched as replacement characters and answered 200; it gets a
//! 400 that says what to send instead, on every route.

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::ApiError;

pub async fn require_utf8(request: Request, next: Next) -> Response {
    if let Some(query) = request.uri().query()
        && !decodes_to_utf8(query)
    {
        return ApiError::bad_request(
            "the query string is not UTF-8 once percent-decoded; encode text as UTF-8 \
             (e.g. with encodeURIComponent or curl --data-urlencode)",
        )
        .into_response();
    }
    next.run(request).await
}

/// Whether every name and value of an `application/x-www-form-urlencoded`
/// query decodes to UTF-8 (`+` and a `%` not followed by two hex digits
/// stay as they are: ASCII either way).
fn decodes_to_utf8(query: &str) -> bool {
    query.split(['&', '=']).all(|part| {
        percent_encoding::percent_decode_str(part)
            .decode_utf8()
            .is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_encodings_are_told_apart_from_utf8() {
        assert!(decodes_to_utf8("text=a%20cat&k=10"));
        assert!(decodes_to_utf8("text=%E4%B8%80%E6%9D%AF%E5%92%96%E5%95%A1"));
        assert!(decodes_to_utf8("text=100%&x"), "a bare % stands for itself");
        assert!(decodes_to_utf8("text=a+b"));
        assert!(!decodes_to_utf8("text=%FF%FE"));
        // 一杯 in GBK.
        assert!(!decodes_to_utf8("text=%D2%BB%B1%AD"));
        assert!(!decodes_to_utf8("%C3=x"), "names are checked too");
        assert!(decodes_to_utf8("a%2"), "a cut-off escape stands for itself");
    }
}
