//! Videos and thumbnails, with HTTP range requests so the player can seek.
//!
//! Nothing from the URL is joined to a path unchecked: a video is looked up by
//! id in the catalog and served from the path recorded there, and thumbnail
//! paths are built from a validated id and a number.

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use tower_http::services::ServeFile;
use vidseek_bus::catalog::is_valid_key;

use vidseek_protocol::ErrorCode;

use crate::AppState;
use crate::error::ApiError;
use crate::segments::find_video;

/// `GET /media/videos/{id}`
#[utoipa::path(get, path = "/media/videos/{id}", tag = "media",
    params(("id" = String, Path, description = "Video id")),
    responses((status = 200, description = "The video file"),
        (status = 206, description = "The requested byte range"),
        (status = 404, description = "Unknown video or missing file", body = vidseek_protocol::ErrorBody)))]
pub async fn video(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let record = find_video(&state, &id).await?;
    let path = within_media_roots(&record.path, &state.config.media_roots)
        .await
        .ok_or_else(|| {
            ApiError::new(
                ErrorCode::ForbiddenPath,
                "this video's file is outside the media roots (VIDSEEK_MEDIA_ROOTS)",
            )
        })?;
    serve_file(path, request, "the video file is missing").await
}

/// `path` with symlinks and `..` resolved, if it lies inside one of `roots`
/// (resolved when the gateway started); a missing file counts as outside.
async fn within_media_roots(path: &str, roots: &[PathBuf]) -> Option<PathBuf> {
    let path = tokio::fs::canonicalize(path).await.ok()?;
    roots
        .iter()
        .any(|root| path.starts_with(root))
        .then_some(path)
}

/// `GET /media/thumbs/{id}/{index}.jpg`
#[utoipa::path(get, path = "/media/thumbs/{id}/{file}", tag = "media",
    params(("id" = String, Path, description = "Video id"),
        ("file" = String, Path, description = "`{segment index}.jpg`")),
    responses((status = 200, description = "JPEG thumbnail", content_type = "image/jpeg"),
        (status = 404, description = "No such thumbnail", body = vidseek_protocol::ErrorBody)))]
pub async fn thumbnail(
    State(state): State<AppState>,
    Path((id, file)): Path<(String, String)>,
    request: Request,
) -> Result<Response, ApiError> {
    let index = thumbnail_index(&file)
        .filter(|_| is_valid_key(&id))
        .ok_or_else(|| ApiError::not_found("no such thumbnail"))?;
    let path = vidseek_protocol::query::thumbnail_file(&state.config.data_dir, &id, index);
    serve_file(path, request, "no such thumbnail").await
}

/// `7.jpg` → 7; anything else (signs, spaces, other extensions) is refused.
fn thumbnail_index(file: &str) -> Option<u32> {
    let digits = file.strip_suffix(".jpg")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

async fn serve_file(
    path: PathBuf,
    request: Request,
    missing: &'static str,
) -> Result<Response, ApiError> {
    let response = ServeFile::new(path).try_call(request).await?;
    if response.status() == StatusCode::NOT_FOUND {
        return Err(ApiError::not_found(missing));
    }
    let mut response = response.map(Body::new);
    // Re-ingesting replaces files under the same URL; revalidate (cheap, by
    // Last-Modified) instead of showing a stale thumbnail.
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::thumbnail_index;

    #[test]
    fn thumbnail_names_are_plain_numbers() {
        assert_eq!(thumbnail_index("0.jpg"), Some(0));
        assert_eq!(thumbnail_index("42.jpg"), Some(42));
        for bad in [
            "+1.jpg",
            "-1.jpg",
            ".jpg",
            "1.png",
            "1.jpg.jpg",
            "..%2f1.jpg",
            "1 .jpg",
        ] {
            assert_eq!(thumbnail_index(bad), None, "{bad}");
        }
    }
}
