//! Videos and thumbnails, with HTTP range requests so the player can seek.
//!
//! Nothing from the URL is joined to a path unchecked: a video is looked up by
//! id in the catalog and served from the path recorded there, and thumbnail
//! paths are built from a validated id and a number. With media in NATS
//! (`VIDSEEK_MEDIA_STORE=nats`), thumbnails and uploaded videos are objects
//! named the same way, served with the same headers and ranges.

use std::path::PathBuf;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use tower_http::services::ServeFile;
use vidseek_bus::catalog::is_valid_key;
use vidseek_bus::media_store::{Bucket, MediaStore, thumb_name, upload_name};

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
    if let Some(name) = upload_name(&record.path) {
        let media = state.media.as_ref().ok_or_else(|| {
            ApiError::not_found(
                "this video was uploaded to the NATS media store, which this gateway does not use (VIDSEEK_MEDIA_STORE)",
            )
        })?;
        return serve_object(
            media,
            Bucket::Uploads,
            name,
            request.headers(),
            "the video file is missing",
        )
        .await;
    }
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
    if let Some(media) = &state.media {
        let name = thumb_name(&id, index);
        return serve_object(
            media,
            Bucket::Thumbs,
            &name,
            request.headers(),
            "no such thumbnail",
        )
        .await;
    }
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

/// Serves an object of the NATS media store as [`serve_file`] serves a
/// file: its length, one byte range when asked (`Range: bytes=...`; a list
/// of ranges gets the whole object), and its digest as the ETag to
/// revalidate against. A range reads and drops the chunks before it (see
/// [`vidseek_bus::media_store::ObjectReader::byte_range`]).
async fn serve_object(
    media: &MediaStore,
    bucket: Bucket,
    name: &str,
    headers: &HeaderMap,
    missing: &'static str,
) -> Result<Response, ApiError> {
    let Some(object) = media.get(bucket, name).await? else {
        return Err(ApiError::not_found(missing));
    };
    let size = object.info.size as u64;
    let etag = object
        .info
        .digest
        .as_deref()
        .and_then(|digest| HeaderValue::from_str(&format!("\"{digest}\"")).ok());
    let mut response = Response::builder()
        .header(header::CACHE_CONTROL, "no-cache")
        .header(header::ACCEPT_RANGES, "bytes");
    if let Some(etag) = &etag {
        response = response.header(header::ETAG, etag);
        if headers.get(header::IF_NONE_MATCH) == Some(etag) {
            return Ok(response
                .status(StatusCode::NOT_MODIFIED)
                .body(Body::empty())
                .map_err(std::io::Error::other)?);
        }
    }
    let range = headers
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(Ok(None), |value| byte_range(value, size));
    let (start, end) = match range {
        Ok(Some((start, end))) => {
            response = response.status(StatusCode::PARTIAL_CONTENT).header(
                header::CONTENT_RANGE,
                format!("bytes {start}-{}/{size}", end - 1),
            );
            (start, end)
        }
        Ok(None) => (0, size),
        Err(()) => {
            return Ok(response
                .status(StatusCode::RANGE_NOT_SATISFIABLE)
                .header(header::CONTENT_RANGE, format!("bytes */{size}"))
                .body(Body::empty())
                .map_err(std::io::Error::other)?);
        }
    };
    let content_type = mime_guess::from_path(name).first_or_octet_stream();
    Ok(response
        .header(header::CONTENT_TYPE, content_type.as_ref())
        .header(header::CONTENT_LENGTH, end - start)
        .body(Body::from_stream(object.byte_range(start, end - start)))
        .map_err(std::io::Error::other)?)
}

/// The one byte range `value` asks of `size` bytes, as start..end; `None`
/// for what is not a single byte range (served whole), `Err` when it lies
/// past the end.
fn byte_range(value: &str, size: u64) -> Result<Option<(u64, u64)>, ()> {
    let Some((first, last)) = value
        .strip_prefix("bytes=")
        .filter(|spec| !spec.contains(','))
        .and_then(|spec| spec.trim().split_once('-'))
    else {
        return Ok(None);
    };
    let number = |text: &str| text.trim().parse::<u64>().ok();
    let (start, end) = match (first.trim().is_empty(), number(first), number(last)) {
        // `bytes=-n`: the last n bytes.
        (true, _, Some(suffix)) if suffix > 0 => (size.saturating_sub(suffix), size),
        (true, _, _) => return Err(()),
        (false, Some(start), None) if last.trim().is_empty() => (start, size),
        (false, Some(start), Some(last)) if last >= start => (start, (last + 1).min(size)),
        _ => return Ok(None),
    };
    if start >= size {
        return Err(());
    }
    Ok(Some((start, end)))
}

#[cfg(test)]
mod tests {
    use super::{byte_range, thumbnail_index};

    #[test]
    fn byte_ranges_are_read_as_http_says() {
        assert_eq!(byte_range("bytes=0-99", 1000), Ok(Some((0, 100))));
        assert_eq!(byte_range("bytes=500-", 1000), Ok(Some((500, 1000))));
        assert_eq!(byte_range("bytes=-100", 1000), Ok(Some((900, 1000))));
        assert_eq!(byte_range("bytes=900-5000", 1000), Ok(Some((900, 1000))));
        assert_eq!(byte_range("bytes=1000-", 1000), Err(()));
        assert_eq!(byte_range("bytes=-0", 1000), Err(()));
        assert_eq!(
            byte_range("bytes=0-1,5-9", 1000),
            Ok(None),
            "ranges: the whole"
        );
        assert_eq!(byte_range("items=0-1", 1000), Ok(None));
        assert_eq!(byte_range("bytes=9-1", 1000), Ok(None));
    }

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
