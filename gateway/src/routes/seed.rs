//! The seed design's routes, so pages written for the original Flask services
//! work against vidseek with only their base URLs changed. They are served
//! with permissive CORS, since such a page lives on another origin.

use axum::Json;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Multipart, Query, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Response};
use serde::{Deserialize, Serialize};
use vidseek_protocol::query::{QueryInput, play_url, thumbnail_url};
use vidseek_protocol::rank::parse_segment_id;

use crate::AppState;
use crate::error::ApiError;
use crate::routes::form::{self, SearchForm};
use crate::routes::search::query_params;
use crate::search;
use crate::segments::{find_video, video_segments};

/// The seed design always answered its top ten.
const SEED_K: usize = 10;

/// One result as the seed page expects it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SeedHit {
    /// Segment id, looked up with `/video_library?id=`.
    pub id: String,
    pub score: f32,
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TextQuery {
    pub text: Option<String>,
}

/// `GET /text_query?text=`
#[utoipa::path(get, path = "/text_query", tag = "seed", params(TextQuery),
    responses((status = 200, description = "Top ten segments, best first", body = Vec<SeedHit>)))]
pub async fn text_query(
    State(state): State<AppState>,
    params: Result<Query<TextQuery>, QueryRejection>,
) -> Result<Json<Vec<SeedHit>>, ApiError> {
    let text = query_params(params)?
        .text
        .ok_or_else(|| ApiError::bad_request("the text parameter is missing"))?;
    let admitted = search::admit(&state)?;
    top_ten(&state, admitted, form::text_input(text)?).await
}

/// `POST /image_query` (multipart field `image`)
#[utoipa::path(post, path = "/image_query", tag = "seed",
    request_body(content = Vec<u8>, content_type = "multipart/form-data", description = "field `image`"),
    responses((status = 200, description = "Top ten segments, best first", body = Vec<SeedHit>)))]
pub async fn image_query(
    State(state): State<AppState>,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Json<Vec<SeedHit>>, ApiError> {
    let multipart = multipart.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let admitted = search::admit(&state)?;
    let form = SearchForm::read(multipart).await?;
    let bytes = form
        .image
        .ok_or_else(|| ApiError::bad_request("the form has no image field"))?;
    top_ten(&state, admitted, QueryInput::Image { bytes }).await
}

async fn top_ten(
    state: &AppState,
    admitted: search::Admitted,
    input: QueryInput,
) -> Result<Json<Vec<SeedHit>>, ApiError> {
    let asked = search::Asked {
        input,
        k: Some(SEED_K),
        min_score: None,
        scope: Default::default(),
    };
    let response = search::run_to_completion(state, admitted, asked).await?;
    let mut hits: Vec<SeedHit> = response
        .results
        .into_iter()
        .map(|hit| SeedHit {
            id: hit.segment_id,
            score: hit.score,
        })
        .collect();
    // The query stage sorts already; the seed contract promises it, so make sure.
    hits.sort_by(|a, b| b.score.total_cmp(&a.score));
    hits.truncate(SEED_K);
    Ok(Json(hits))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SegmentQuery {
    /// Segment id as returned by the query routes.
    pub id: Option<String>,
}

/// What the seed page needs to draw a result, plus what a newer page may use.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LibraryEntry {
    /// Thumbnail URL (relative to the gateway).
    pub cover: String,
    /// Start of the segment in seconds, as text (e.g. `"12.34"`).
    pub timestamp: String,
    pub segment_id: String,
    pub video_id: String,
    pub video_name: String,
    pub start: f64,
    pub end: f64,
    pub play_url: String,
}

/// `GET /video_library?id=SEGMENT_ID`
#[utoipa::path(get, path = "/video_library", tag = "seed", params(SegmentQuery),
    responses((status = 200, description = "Cover and start of the segment", body = LibraryEntry),
        (status = 404, description = "Unknown segment", body = vidseek_protocol::ErrorBody)))]
pub async fn video_library(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    params: Result<Query<SegmentQuery>, QueryRejection>,
) -> Result<Json<LibraryEntry>, ApiError> {
    // The seed page runs on another origin and may use the URLs as they are,
    // so they are absolute (on the host the request came to).
    let origin = headers
        .get(axum::http::header::HOST)
        .and_then(|h| h.to_str().ok())
        .filter(|h| {
            h.chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c))
        })
        .map(|host| format!("http://{host}"))
        .unwrap_or_default();
    let segment_id = query_params(params)?
        .id
        .ok_or_else(|| ApiError::bad_request("the id parameter is missing"))?;
    let (video_id, index) = parse_segment_id(&segment_id)
        .ok_or_else(|| ApiError::not_found(format!("no segment {segment_id:?}")))?;
    let (record, segments) = video_segments(&state, video_id).await?;
    let meta = segments
        .iter()
        .find(|meta| meta.index == index)
        .ok_or_else(|| ApiError::not_found(format!("no segment {segment_id:?}")))?;
    Ok(Json(LibraryEntry {
        cover: format!("{origin}{}", thumbnail_url(video_id, index)),
        timestamp: format_seconds(meta.start),
        segment_id: segment_id.clone(),
        video_id: video_id.to_string(),
        video_name: record.name,
        start: meta.start,
        end: meta.end,
        play_url: format!("{origin}{}", play_url(video_id)),
    }))
}

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PlayerQuery {
    /// Segment id (or a bare video id).
    pub id: Option<String>,
    /// Where to start: seconds (`12.34`) or `[hh:]mm:ss`.
    pub timestamp: Option<String>,
}

/// `GET /video_player?id=&timestamp=`
#[utoipa::path(get, path = "/video_player", tag = "seed", params(PlayerQuery),
    responses((status = 200, description = "HTML page playing the video from the timestamp", content_type = "text/html"),
        (status = 404, description = "Unknown video", body = vidseek_protocol::ErrorBody)))]
pub async fn video_player(
    State(state): State<AppState>,
    params: Result<Query<PlayerQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let params = query_params(params)?;
    let id = params
        .id
        .ok_or_else(|| ApiError::bad_request("the id parameter is missing"))?;
    let video_id = parse_segment_id(&id).map_or(id.as_str(), |(video, _)| video);
    let record = find_video(&state, video_id).await?;
    let start = match params.timestamp.as_deref().map(str::trim) {
        None | Some("") => 0.0,
        Some(text) => parse_timestamp(text)
            .ok_or_else(|| ApiError::bad_request(format!("unreadable timestamp {text:?}")))?,
    };
    let page = player_page(&record.name, &play_url(&record.video_id), start);
    Ok(([(header::CACHE_CONTROL, "no-cache")], Html(page)).into_response())
}

/// Seconds with two decimals, as the seed design showed them.
fn format_seconds(seconds: f64) -> String {
    format!("{seconds:.2}")
}

/// `12.5`, `1:02.5` or `1:00:02` → seconds; negative or non-finite is refused.
fn parse_timestamp(text: &str) -> Option<f64> {
    let mut total = 0.0;
    let parts: Vec<&str> = text.split(':').collect();
    if parts.len() > 3 {
        return None;
    }
    for part in parts {
        let value: f64 = part.trim().parse().ok()?;
        if !value.is_finite() || value < 0.0 {
            return None;
        }
        total = total * 60.0 + value;
    }
    Some(total)
}

fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A minimal page: the video, started at `start` both through the media
/// fragment (honoured before metadata loads) and by seeking once metadata is
/// there (for browsers that ignore fragments on some containers).
fn player_page(name: &str, play_url: &str, start: f64) -> String {
    let title = escape_html(name);
    let src = escape_html(&format!("{play_url}#t={start:.3}"));
    // `start` is a finite number formatted by us, safe inside the script.
    format!(
        r#"<!DOCTYPE html>
<html>
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>
  body {{ font-family: Arial, Helvetica, sans-serif; margin: 30px; background: #111; color: #eee; }}
  video {{ max-width: 100%; max-height: 80vh; display: block; }}
</style>
</head>
<body>
<h1>{title}</h1>
<video id="player" controls playsinline preload="auto" src="{src}"></video>
<p>from {start:.2} s</p>
<script>
  (function () {{
    var video = document.getElementById("player");
    var start = {start:.3};
    function seek() {{
      if (Math.abs(video.currentTime - start) > 0.25) video.currentTime = start;
    }}
    if (video.readyState >= 1) seek();
    else video.addEventListener("loadedmetadata", seek, {{ once: true }});
    // Play with sound where the browser allows it, else muted: a page that
    // was asked to play from a moment should not sit still.
    video.play().catch(function () {{
      video.muted = true;
      video.play().catch(function () {{}});
    }});
  }})();
</script>
</body>
</html>
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_parse_in_seed_and_clock_forms() {
        assert_eq!(parse_timestamp("12.34"), Some(12.34));
        assert_eq!(parse_timestamp("1:02.5"), Some(62.5));
        assert_eq!(parse_timestamp("1:00:02"), Some(3602.0));
        assert_eq!(parse_timestamp("-1"), None);
        assert_eq!(parse_timestamp("NaN"), None);
        assert_eq!(parse_timestamp("1;alert(1)"), None);
        assert_eq!(format_seconds(12.3456), "12.35");
    }

    #[test]
    fn player_page_escapes_names() {
        let page = player_page("<script>x</script>\"", "/media/videos/v1", 3.0);
        assert!(!page.contains("<script>x"));
        assert!(page.contains("&lt;script&gt;x&lt;/script&gt;&quot;"));
        assert!(page.contains("src=\"/media/videos/v1#t=3.000\""));
    }
}
