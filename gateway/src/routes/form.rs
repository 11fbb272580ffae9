//! Reading query input from request bodies: multipart forms, JSON with a
//! base64 image, or raw image bytes. Shared by the REST, WebSocket and seed
//! search routes so that limits and messages are the same everywhere.

use axum::extract::multipart::{Field, MultipartError};
use axum::http::StatusCode;
use vidseek_protocol::ErrorCode;
use vidseek_protocol::query::{MAX_IMAGE_BYTES, MAX_TEXT_CHARS, QueryInput};

use crate::error::ApiError;

/// Text input with its length checked before anything copies it around.
pub fn text_input(text: String) -> Result<QueryInput, ApiError> {
    check_text_length(&text)?;
    Ok(QueryInput::Text { text })
}

/// A query this long is a malformed request rather than a big upload.
pub fn check_text_length(text: &str) -> Result<(), ApiError> {
    let chars = text.chars().count();
    if chars > MAX_TEXT_CHARS {
        return Err(ApiError::bad_request(format!(
            "text is {chars} characters long; the limit is {MAX_TEXT_CHARS}"
        )));
    }
    Ok(())
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
    /// With both image and text: the picture's weight, 0..1.
    pub image_weight: Option<f32>,
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
                "image_weight" => {
                    form.image_weight = Some(parse_number(
                        &read_text_field(&mut field).await?,
                        "image_weight",
                    )?)
                }
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
        if self.image_weight.is_some() && (self.image.is_none() || self.text.is_none()) {
            return Err(ApiError::bad_request(
                "image_weight goes with both an image and text",
            ));
        }
        match (self.image, self.text) {
            (Some(bytes), None) => Ok(QueryInput::Image { bytes }),
            (None, Some(text)) => text_input(text),
            (Some(bytes), Some(text)) => {
                check_text_length(&text)?;
                Ok(QueryInput::TextAndImage {
                    text,
                    bytes,
                    image_weight: self
                        .image_weight
                        .unwrap_or(vidseek_protocol::query::DEFAULT_IMAGE_WEIGHT),
                })
            }
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
    fn a_form_with_image_and_text_is_a_combined_query() {
        let form = SearchForm {
            image: Some(vec![1]),
            text: Some("at night".into()),
            image_weight: Some(0.8),
            ..SearchForm::default()
        };
        assert!(matches!(
            form.into_input().unwrap(),
            QueryInput::TextAndImage { image_weight, .. } if image_weight == 0.8
        ));
        let weight_alone = SearchForm {
            text: Some("a".into()),
            image_weight: Some(0.5),
            ..SearchForm::default()
        };
        assert_eq!(
            weight_alone.into_input().unwrap_err().code(),
            ErrorCode::BadRequest
        );
        let long = SearchForm {
            text: Some("x".repeat(MAX_TEXT_CHARS + 1)),
            ..SearchForm::default()
        };
        assert_eq!(long.into_input().unwrap_err().code(), ErrorCode::BadRequest);
    }
}
