//! Reading query input from request bodies: multipart forms, JSON with a
//! base64 image, or raw image bytes. Shared by the REST, WebSocket and seed
//! search routes so that limits and messages are the same everywhere.

use axum::extract::multipart::{Field, MultipartError};
use axum::http::StatusCode;
use base64::Engine as _;
use serde::Deserialize;
use vidseek_protocol::ErrorCode;
use vidseek_protocol::query::{MAX_IMAGE_BYTES, MAX_TEXT_CHARS, QueryInput};

use crate::error::ApiError;

/// A query as any of our JSON bodies carry it (REST POST, WebSocket).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct QueryBody {
    /// What to look for, in words.
    #[serde(default)]
    pub text: Option<String>,
    /// A picture to look for, base64 (a `data:` URL works too).
    #[serde(default)]
    pub image_base64: Option<String>,
    /// Number of results, 1..100 (default 10).
    #[serde(default)]
    pub k: Option<usize>,
    /// Drop results below this confidence (0..1).
    #[serde(default)]
    pub min_score: Option<f32>,
}

impl QueryBody {
    /// Exactly one of text and image.
    pub fn into_input(self) -> Result<QueryInput, ApiError> {
        match (self.text, self.image_base64) {
            (Some(text), None) => text_input(text),
            (None, Some(b64)) => Ok(QueryInput::Image {
                bytes: decode_base64_image(&b64)?,
            }),
            (Some(_), Some(_)) => Err(ApiError::bad_request(
                "send either text or image_base64, not both",
            )),
            (None, None) => Err(ApiError::bad_request("send text or image_base64")),
        }
    }
}

/// Text input with its length checked before anything copies it around.
pub fn text_input(text: String) -> Result<QueryInput, ApiError> {
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        // A query this long is a malformed request rather than a big upload.
        return Err(ApiError::bad_request(format!(
            "text is {chars} characters long; the limit is {MAX_TEXT_CHARS}"
        )));
    }
    Ok(QueryInput::Text { text })
}

pub fn decode_base64_image(encoded: &str) -> Result<Vec<u8>, ApiError> {
    // Browsers hand out `data:image/png;base64,...` from FileReader.
    let encoded = match encoded.strip_prefix("data:") {
        Some(rest) => rest.split_once(',').map_or(rest, |(_, data)| data),
        None => encoded,
    };
    let encoded = encoded.trim();
    if encoded.len() / 4 * 3 > MAX_IMAGE_BYTES + 3 {
        return Err(image_too_large(encoded.len() / 4 * 3));
    }
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| ApiError::bad_request(format!("image_base64 is not valid base64: {e}")))
}

pub fn image_too_large(bytes: usize) -> ApiError {
    ApiError::new(
        ErrorCode::TooLarge,
        format!("the image is about {bytes} bytes; the limit is {MAX_IMAGE_BYTES}"),
    )
}

/// A multipart failure: over the body limit is `too_large`, anything else is
/// the client's malformed form.
pub fn multipart_error(err: MultipartError) -> ApiError {
    if err.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(ErrorCode::TooLarge, err.body_text())
    } else {
        ApiError::bad_request(format!("malformed multipart form: {}", err.body_text()))
    }
}

/// Reads one field into memory, refusing more than `limit` bytes.
pub async fn read_field(
    field: &mut Field<'_>,
    limit: usize,
    too_large: impl Fn(usize) -> ApiError,
) -> Result<Vec<u8>, ApiError> {
    let mut bytes = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if bytes.len() + chunk.len() > limit {
            return Err(too_large(bytes.len() + chunk.len()));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// A small text field (k, min_score, text).
pub async fn read_text_field(field: &mut Field<'_>) -> Result<String, ApiError> {
    // Four bytes per character is the UTF-8 worst case for the longest query.
    let bytes = read_field(field, MAX_TEXT_CHARS * 4 + 16, |_| {
        ApiError::bad_request(format!("text is longer than {MAX_TEXT_CHARS} characters"))
    })
    .await?;
    String::from_utf8(bytes).map_err(|_| ApiError::bad_request("form field is not UTF-8"))
}

/// The query fields a multipart search form may carry.
#[derive(Debug, Default)]
pub struct SearchForm {
    pub image: Option<Vec<u8>>,
    pub text: Option<String>,
    pub k: Option<usize>,
    pub min_score: Option<f32>,
}

impl SearchForm {
    pub async fn read(mut multipart: axum::extract::Multipart) -> Result<SearchForm, ApiError> {
        let mut form = SearchForm::default();
        while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
            match field.name().unwrap_or_default() {
                "image" => {
                    form.image =
                        Some(read_field(&mut field, MAX_IMAGE_BYTES, image_too_large).await?)
                }
                "text" => form.text = Some(read_text_field(&mut field).await?),
                "k" => form.k = Some(parse_number(&read_text_field(&mut field).await?, "k")?),
                "min_score" => {
                    form.min_score = Some(parse_number(
                        &read_text_field(&mut field).await?,
                        "min_score",
                    )?)
                }
                // Unknown fields are skipped, as browsers add their own.
                _ => while field.chunk().await.map_err(multipart_error)?.is_some() {},
            }
        }
        Ok(form)
    }

    pub fn into_input(self) -> Result<QueryInput, ApiError> {
        match (self.image, self.text) {
            (Some(bytes), None) => Ok(QueryInput::Image { bytes }),
            (None, Some(text)) => text_input(text),
            (Some(_), Some(_)) => Err(ApiError::bad_request("send either image or text, not both")),
            (None, None) => Err(ApiError::bad_request("the form has no image field")),
        }
    }
}

pub fn parse_number<T: std::str::FromStr>(value: &str, name: &str) -> Result<T, ApiError> {
    value
        .trim()
        .parse()
        .map_err(|_| ApiError::bad_request(format!("{name} is not a number: {value:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_images_decode_with_or_without_data_url() {
        assert_eq!(decode_base64_image("AAEC").unwrap(), vec![0, 1, 2]);
        assert_eq!(
            decode_base64_image("data:image/png;base64,AAEC").unwrap(),
            vec![0, 1, 2]
        );
        assert_eq!(
            decode_base64_image("!!").unwrap_err().code(),
            ErrorCode::BadRequest
        );
    }

    #[test]
    fn body_needs_exactly_one_input() {
        let both = QueryBody {
            text: Some("a".into()),
            image_base64: Some("AAEC".into()),
            ..Default::default()
        };
        assert!(both.into_input().is_err());
        assert!(QueryBody::default().into_input().is_err());
        let long = QueryBody {
            text: Some("x".repeat(MAX_TEXT_CHARS + 1)),
            ..Default::default()
        };
        assert_eq!(long.into_input().unwrap_err().code(), ErrorCode::BadRequest);
    }
}
