//! The library: listing videos and their segments (read from JetStream),
//! adding videos (a server-side path, or an upload streamed to disk) and
//! deleting them (both delegated to the ingest workers over NATS).

use std::path::{Path as FsPath, PathBuf};
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use vidseek_bus::media_store::{Bucket, MediaStore, upload_path};
use vidseek_protocol::ErrorCode;
use vidseek_protocol::ingest::{
    DeleteVideo, IngestAccepted, IngestRequest, VideoDeleted, VideoRecord,
};
use vidseek_protocol::query::thumbnail_url;
use vidseek_protocol::rank::SegmentKind;
use vidseek_protocol::subjects;

use crate::AppState;
use crate::auth::Authorized;
use crate::error::ApiError;
use crate::routes::form::{multipart_error, read_field, read_text_field};
use crate::routes::search::query_params;
use crate::segments::{find_video, video_segments};

/// The ingest service only validates and queues, so it answers quickly.
const INGEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Subtitle files are text; anything bigger is not a subtitle file.
const MAX_SUBTITLE_BYTES: usize = 16 * 1024 * 1024;
/// Multipart framing and small fields on top of the file itself.
const MULTIPART_OVERHEAD_BYTES: u64 = 1024 * 1024;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VideoList {
    pub videos: Vec<VideoRecord>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SegmentView {
    pub segment_id: String,
    /// Seconds from the start of the video.
    pub start: f64,
    pub end: f64,
    pub kind: SegmentKind,
    /// The text of subtitle segments and of text read from the picture.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub thumbnail_url: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SegmentList {
    pub segments: Vec<SegmentView>,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// `name` (default) or `updated` (most recently changed first).
    pub sort: Option<String>,
    /// `true`: show each file's full server path (needs the API token when
    /// one is set); otherwise `path` is the file name only.
    #[serde(default)]
    pub paths: bool,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RecordParams {
    /// As for the list: `true` shows the full server path.
    #[serde(default)]
    pub paths: bool,
}

/// Server paths tell an outsider how the server's disks are laid out, so
/// answers carry the file name only unless an authorised caller asks.
fn reveal_paths<'a>(
    asked: bool,
    authorized: Result<Authorized, ApiError>,
    records: impl IntoIterator<Item = &'a mut VideoRecord>,
) -> Result<(), ApiError> {
    if asked {
        return authorized.map(|_| ());
    }
    for record in records {
        if let Some(name) = FsPath::new(&record.path).file_name() {
            record.path = name.to_string_lossy().into_owned();
        }
    }
    Ok(())
}

/// `GET /api/v1/videos`
#[utoipa::path(get, path = "/api/v1/videos", tag = "library", params(ListParams),
    responses((status = 200, description = "Every video", body = VideoList),
        (status = 400, description = "Unknown sort order", body = vidseek_protocol::ErrorBody),
        (status = 401, description = "`paths=true` without the API token", body = vidseek_protocol::ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    authorized: Result<Authorized, ApiError>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<VideoList>, ApiError> {
    let params = query_params(params)?;
    let mut videos = state.catalog.list().await?;
    match params.sort.as_deref() {
        None | Some("name") => {}
        Some("updated") => videos.sort_by_key(|v| std::cmp::Reverse(v.updated_at_ms)),
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "sort must be name or updated, not {other:?}"
            )));
        }
    }
    reveal_paths(params.paths, authorized, &mut videos)?;
    Ok(Json(VideoList { videos }))
}

/// `GET /api/v1/videos/{id}`
#[utoipa::path(get, path = "/api/v1/videos/{id}", tag = "library",
    params(("id" = String, Path, description = "Video id"), RecordParams),
    responses((status = 200, description = "The video's record", body = VideoRecord),
        (status = 401, description = "`paths=true` without the API token", body = vidseek_protocol::ErrorBody),
        (status = 404, description = "Unknown video", body = vidseek_protocol::ErrorBody)))]
pub async fn get_one(
    State(state): State<AppState>,
    Path(id): Path<String>,
    authorized: Result<Authorized, ApiError>,
    params: Result<Query<RecordParams>, QueryRejection>,
) -> Result<Json<VideoRecord>, ApiError> {
    let params = query_params(params)?;
    let mut record = find_video(&state, &id).await?;
    reveal_paths(params.paths, authorized, [&mut record])?;
    Ok(Json(record))
}

/// `GET /api/v1/videos/{id}/segments`
#[utoipa::path(get, path = "/api/v1/videos/{id}/segments", tag = "library",
    params(("id" = String, Path, description = "Video id")),
    responses((status = 200, description = "The video's segments in order", body = SegmentList),
        (status = 404, description = "Unknown video", body = vidseek_protocol::ErrorBody)))]
pub async fn segments(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<SegmentList>, ApiError> {
    let (record, segments) = video_segments(&state, &id).await?;
    let segments = segments
        .iter()
        .map(|meta| SegmentView {
            segment_id: meta.segment_id.clone(),
            start: meta.start,
            end: meta.end,
            kind: meta.kind,
            text: meta.text.clone(),
            thumbnail_url: thumbnail_url(&record.video_id, meta.index),
        })
        .collect();
    Ok(Json(SegmentList { segments }))
}

/// `DELETE /api/v1/videos/{id}`
#[utoipa::path(delete, path = "/api/v1/videos/{id}", tag = "library",
    params(("id" = String, Path, description = "Video id")),
    security(("bearer" = [])),
    responses((status = 200, description = "Deleted", body = VideoDeleted),
        (status = 401, description = "Missing or wrong API token", body = vidseek_protocol::ErrorBody),
        (status = 404, description = "Unknown video", body = vidseek_protocol::ErrorBody),
        (status = 503, description = "No ingest worker is running", body = vidseek_protocol::ErrorBody)))]
pub async fn delete(
    _: Authorized,
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<VideoDeleted>, ApiError> {
    if !vidseek_bus::catalog::is_valid_key(&id) {
        return Err(ApiError::not_found(format!("no video {id:?}")));
    }
    let deleted: VideoDeleted = vidseek_bus::rpc::request(
        &state.nats,
        subjects::INGEST_DELETE.to_string(),
        &DeleteVideo { video_id: id },
        INGEST_TIMEOUT,
        None,
    )
    .await?;
    Ok(Json(deleted))
}

/// `POST /api/v1/videos`: JSON `{"path"}` for a file already on the server,
/// or a multipart upload (field `file`, optional `subtitles` and `name`).
#[utoipa::path(post, path = "/api/v1/videos", tag = "library",
    security(("bearer" = [])),
    request_body(content(
        (IngestRequest = "application/json"),
        (Vec<u8> = "multipart/form-data"),
    )),
    responses((status = 202, description = "Queued for ingest", body = IngestAccepted),
        (status = 401, description = "Missing or wrong API token", body = vidseek_protocol::ErrorBody),
        (status = 403, description = "Path outside the media roots", body = vidseek_protocol::ErrorBody),
        (status = 404, description = "No such file", body = vidseek_protocol::ErrorBody),
        (status = 413, description = "Upload over the size limit", body = vidseek_protocol::ErrorBody),
        (status = 415, description = "Not a video we can decode", body = vidseek_protocol::ErrorBody),
        (status = 429, description = "Too many uploads at once; retry after Retry-After seconds", body = vidseek_protocol::ErrorBody),
        (status = 503, description = "No ingest worker is running", body = vidseek_protocol::ErrorBody)))]
pub async fn create(
    _: Authorized,
    State(state): State<AppState>,
    request: Request,
) -> Result<(StatusCode, Json<IngestAccepted>), ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        // Admitted before a byte is read; the place frees when the upload ends.
        let _admitted = state.uploads.try_admit("the gateway's upload")?;
        return upload(&state, request).await;
    }
    if !content_type.starts_with("application/json") {
        return Err(ApiError::new(
            ErrorCode::UnsupportedMedia,
            "send application/json {\"path\": ...} or a multipart upload (field file)",
        ));
    }
    let bytes = axum::body::to_bytes(request.into_body(), 64 * 1024)
        .await
        .map_err(|_| ApiError::new(ErrorCode::TooLarge, "the JSON body is over 64 KiB"))?;
    let ingest: IngestRequest = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
    let accepted = request_ingest(&state, &ingest).await?;
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

async fn request_ingest(
    state: &AppState,
    ingest: &IngestRequest,
) -> Result<IngestAccepted, ApiError> {
    Ok(vidseek_bus::rpc::request(
        &state.nats,
        subjects::INGEST.to_string(),
        ingest,
        INGEST_TIMEOUT,
        None,
    )
    .await?)
}

/// A fresh upload directory, removed again unless the upload was accepted:
/// an error, a rejected ingest or a client hanging up mid-upload (which drops
/// the handler) leaves nothing behind.
struct UploadDir {
    path: PathBuf,
    keep: bool,
}

impl Drop for UploadDir {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        if let Err(err) = std::fs::remove_dir_all(&self.path)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %self.path.display(), error = %err, "cannot remove abandoned upload");
        }
    }
}

struct Subtitles {
    extension: &'static str,
    bytes: Vec<u8>,
}

async fn upload(
    state: &AppState,
    request: Request,
) -> Result<(StatusCode, Json<IngestAccepted>), ApiError> {
    let limit = state.config.max_upload_bytes;
    // Refuse what is announced as too big before reading a byte of it.
    let announced = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|len| len > limit.saturating_add(MULTIPART_OVERHEAD_BYTES)) {
        return Err(upload_too_large(limit));
    }
    let mut multipart = Multipart::from_request(request, state)
        .await
        .map_err(|e| ApiError::bad_request(e.body_text()))?;

    let dir = UploadDir {
        path: state
            .config
            .data_dir
            .join("library")
            .join("uploads")
            .join(uuid::Uuid::new_v4().simple().to_string()),
        keep: false,
    };
    let mut video: Option<(PathBuf, String)> = None;
    let mut subtitles: Option<Subtitles> = None;
    let mut display_name: Option<String> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        match field.name().unwrap_or_default() {
            "file" => {
                if video.is_some() {
                    return Err(ApiError::bad_request("send one file per upload"));
                }
                let original = field.file_name().unwrap_or("upload").to_string();
                let path = dir.path.join(sanitise_file_name(&original));
                tokio::fs::create_dir_all(&dir.path).await?;
                write_limited(&mut field, &path, limit).await?;
                video = Some((path, original));
            }
            "subtitles" => {
                let name = field.file_name().unwrap_or_default().to_string();
                let extension = subtitle_extension(&name).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::UnsupportedMedia,
                        format!("subtitles must be .srt or .vtt, got {name:?}"),
                    )
                })?;
                let bytes = read_field(&mut field, MAX_SUBTITLE_BYTES, |_| {
                    ApiError::new(
                        ErrorCode::TooLarge,
                        format!("subtitles are over {MAX_SUBTITLE_BYTES} bytes"),
                    )
                })
                .await?;
                subtitles = Some(Subtitles { extension, bytes });
            }
            "name" => display_name = Some(read_text_field(&mut field).await?),
            _ => while field.chunk().await.map_err(multipart_error)?.is_some() {},
        }
    }
    let Some((video_path, original_name)) = video else {
        return Err(ApiError::bad_request("the form has no file field"));
    };
    // Subtitles sit beside the video with the same stem, where ingest also
    // looks for sidecar files; they may arrive before the video, hence late.
    let subtitle_path = match subtitles {
        Some(Subtitles { extension, bytes }) => {
            let path = video_path.with_extension(extension);
            tokio::fs::write(&path, bytes).await?;
            Some(path)
        }
        None => None,
    };
    let name = display_name
        .filter(|n| !n.trim().is_empty())
        .unwrap_or(original_name);
    let accepted = match state.media.clone() {
        None => {
            let ingest = IngestRequest {
                path: video_path.to_string_lossy().into_owned(),
                name: Some(name),
                subtitles: subtitle_path.map(|p| p.to_string_lossy().into_owned()),
                ocr: None,
            };
            let accepted = request_ingest(state, &ingest).await?;
            let mut dir = dir;
            dir.keep = true;
            accepted
        }
        // In a task of its own: a client hanging up cannot stop it halfway
        // through an object.
        Some(media) => {
            let state = state.clone();
            tokio::spawn(async move {
                let subtitles = subtitle_path.as_deref();
                store_upload(&state, &media, &dir, &video_path, subtitles, name).await
            })
            .await
            .map_err(std::io::Error::other)??
        }
    };
    tracing::info!(video_id = %accepted.video_id, "upload queued");
    Ok((StatusCode::ACCEPTED, Json(accepted)))
}

/// Puts an upload's video and subtitles (received into `dir`) into
/// the NATS media store as `{upload id}/{file name}` and asks for their
/// ingest; what was put is deleted again if that fails. The local copies go
/// with `dir`.
async fn store_upload(
    state: &AppState,
    media: &MediaStore,
    dir: &UploadDir,
    video: &FsPath,
    subtitles: Option<&FsPath>,
    name: String,
) -> Result<IngestAccepted, ApiError> {
    let upload_id = dir.path.file_name().unwrap_or_default().to_string_lossy();
    let object = |path: &FsPath| {
        let file = path.file_name().unwrap_or_default().to_string_lossy();
        format!("{upload_id}/{file}")
    };
    let mut stored = Vec::new();
    let result = async {
        for path in [Some(video), subtitles].into_iter().flatten() {
            let mut file = tokio::fs::File::open(path).await?;
            media.put(Bucket::Uploads, &object(path), &mut file).await?;
            stored.push(object(path));
        }
        let ingest = IngestRequest {
            path: upload_path(&object(video)),
            name: Some(name),
            subtitles: subtitles.map(|p| upload_path(&object(p))),
            ocr: None,
        };
        request_ingest(state, &ingest).await
    }
    .await;
    if result.is_err() {
        for object in &stored {
            if let Err(err) = media.delete(Bucket::Uploads, object).await {
                tracing::warn!(object, error = %err, "cannot remove a refused upload");
            }
        }
    }
    result
}

fn upload_too_large(limit: u64) -> ApiError {
    ApiError::new(
        ErrorCode::TooLarge,
        format!("the upload is over the limit of {limit} bytes"),
    )
}

/// Streams a field to disk, stopping as soon as it passes `limit`.
async fn write_limited(
    field: &mut axum::extract::multipart::Field<'_>,
    path: &FsPath,
    limit: u64,
) -> Result<(), ApiError> {
    let mut file = tokio::fs::File::create(path).await?;
    let mut written: u64 = 0;
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        written += chunk.len() as u64;
        if written > limit {
            return Err(upload_too_large(limit));
        }
        file.write_all(&chunk).await?;
    }
    // tokio's File finishes writes in the background; flush so the ingest
    // worker never sees a short file.
    file.flush().await?;
    file.sync_all().await?;
    Ok(())
}

/// A file name safe to join to a directory: the last path component, letters
/// (any script), digits, `.`, `-`, `_` kept, the rest replaced, no leading dot.
pub fn sanitise_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let mut clean: String = last
        .chars()
        .map(|c| {
            if c.is_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    clean = clean.trim_start_matches('.').to_string();
    // Keep names well under file-system limits (255 bytes), on a char boundary,
    // preserving the extension ingest uses to pick a decoder.
    const MAX_BYTES: usize = 120;
    if clean.len() > MAX_BYTES {
        let extension = FsPath::new(&clean)
            .extension()
            .map(|e| e.to_string_lossy().into_owned())
            .filter(|e| e.len() <= 10);
        let mut stem: String = String::new();
        for c in clean.chars() {
            if stem.len() + c.len_utf8() > MAX_BYTES - 11 {
                break;
            }
            stem.push(c);
        }
        clean = match extension {
            Some(ext) => format!("{stem}.{ext}"),
            None => stem,
        };
    }
    if clean.is_empty() || clean.chars().all(|c| c == '_') {
        "upload".to_string()
    } else {
        clean
    }
}

fn subtitle_extension(name: &str) -> Option<&'static str> {
    let extension = FsPath::new(name)
        .extension()?
        .to_str()?
        .to_ascii_lowercase();
    match extension.as_str() {
        "srt" => Some("srt"),
        "vtt" => Some("vtt"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_cannot_escape_the_upload_directory() {
        assert_eq!(sanitise_file_name("../../etc/passwd"), "passwd");
        assert_eq!(sanitise_file_name("..\\..\\boot.ini"), "boot.ini");
        assert_eq!(sanitise_file_name(".."), "upload");
        assert_eq!(sanitise_file_name(".hidden.mp4"), "hidden.mp4");
        assert_eq!(sanitise_file_name("my clip (1).mp4"), "my_clip__1_.mp4");
        assert_eq!(sanitise_file_name("海边.mp4"), "海边.mp4");
        assert_eq!(sanitise_file_name(""), "upload");
        let long = format!("{}.mp4", "é".repeat(300));
        let clean = sanitise_file_name(&long);
        assert!(clean.len() <= 120 && clean.ends_with(".mp4"), "{clean}");
    }

    #[test]
    fn only_srt_and_vtt_are_subtitles() {
        assert_eq!(subtitle_extension("a.SRT"), Some("srt"));
        assert_eq!(subtitle_extension("a.vtt"), Some("vtt"));
        assert_eq!(subtitle_extension("a.txt"), None);
        assert_eq!(subtitle_extension("srt"), None);
    }
}
