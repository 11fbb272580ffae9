//! Relevance along a video's timeline: every segment of one video scored
//! against a query by the ranker shard that holds it, for the player's heat
//! strip. Admitted and bounded like a search (it is one, of one video).

use axum::Json;
use axum::extract::{Path, RawQuery, Request, State};
use base64::Engine as _;
use vidseek_bus::deadline::Deadline;
use vidseek_protocol::query::{QueryBody, QueryInput, ScoresBody, VideoScores};
use vidseek_protocol::subjects;

use crate::AppState;
use crate::error::ApiError;
use crate::routes::search::{SearchParams, input_of, read_query_body};
use crate::search;
use crate::segments::find_video;

/// `GET /api/v1/videos/{id}/scores?text=|like=`
#[utoipa::path(get, path = "/api/v1/videos/{id}/scores", tag = "search",
    params(("id" = String, Path, description = "Video id"),
        ("text" = Option<String>, Query, description = "What to look for, in words"),
        ("like" = Option<String>, Query, description = "A segment id: score against its stored vectors")),
    responses(
        (status = 200, description = "Every segment of the video with its score, in time order", body = VideoScores),
        (status = 400, description = "Missing or bad query", body = vidseek_protocol::ErrorBody),
        (status = 404, description = "Unknown video, or not indexed yet", body = vidseek_protocol::ErrorBody),
        (status = 429, description = "Too many searches in flight", body = vidseek_protocol::ErrorBody),
        (status = 503, description = "No query stage is running", body = vidseek_protocol::ErrorBody),
    ))]
pub async fn scores_get(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Json<VideoScores>, ApiError> {
    let params = SearchParams::parse(raw.as_deref())?;
    let query = QueryBody {
        text: params.text,
        like: params.like,
        ..QueryBody::default()
    };
    if query.text.is_none() && query.like.is_none() {
        return Err(ApiError::bad_request("send text or like"));
    }
    let input = input_of(&query)?;
    score(&state, id, input).await
}

/// `POST /api/v1/videos/{id}/scores`: the image form, with any body
/// `POST /api/v1/search` takes (a picture, text, both, or `like`).
#[utoipa::path(post, path = "/api/v1/videos/{id}/scores", tag = "search",
    params(("id" = String, Path, description = "Video id")),
    request_body(content(
        (QueryBody = "application/json"),
        (Vec<u8> = "multipart/form-data"),
        (Vec<u8> = "image/*"),
    )),
    responses(
        (status = 200, description = "Every segment of the video with its score, in time order", body = VideoScores),
        (status = 400, description = "Malformed body", body = vidseek_protocol::ErrorBody),
        (status = 404, description = "Unknown video, or not indexed yet", body = vidseek_protocol::ErrorBody),
        (status = 413, description = "Image over the size limit", body = vidseek_protocol::ErrorBody),
        (status = 429, description = "Too many searches in flight", body = vidseek_protocol::ErrorBody),
    ))]
pub async fn scores_post(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: Request,
) -> Result<Json<VideoScores>, ApiError> {
    let asked = read_query_body(&state, request).await?;
    score(&state, id, asked.input).await
}

async fn score(
    state: &AppState,
    video_id: String,
    input: QueryInput,
) -> Result<Json<VideoScores>, ApiError> {
    if !vidseek_bus::catalog::is_valid_key(&video_id) {
        return Err(ApiError::not_found(format!("no video {video_id:?}")));
    }
    find_video(state, &video_id).await?;
    let _admitted = search::admit(state)?;
    let input = state.images.reduce(input).await?;
    let body = ScoresBody {
        video_id,
        query: query_body(input),
    };
    let query_id = search::new_query_id();
    let deadline = Deadline::after(state.config.search_timeout);
    let scores = vidseek_bus::rpc::request_until(
        &state.nats,
        subjects::SCORES.to_string(),
        &body,
        deadline,
        Some(&query_id),
    )
    .await?;
    Ok(Json(scores))
}

/// A query as the public body carries it (pictures as base64).
fn query_body(input: QueryInput) -> QueryBody {
    let base64 = |bytes: Vec<u8>| base64::engine::general_purpose::STANDARD.encode(bytes);
    match input {
        QueryInput::Text { text } => QueryBody {
            text: Some(text),
            ..QueryBody::default()
        },
        QueryInput::Image { bytes } => QueryBody {
            image_base64: Some(base64(bytes)),
            ..QueryBody::default()
        },
        QueryInput::TextAndImage {
            text,
            bytes,
            image_weight,
        } => QueryBody {
            text: Some(text),
            image_base64: Some(base64(bytes)),
            image_weight: Some(image_weight),
            like: None,
        },
        QueryInput::Like { segment_id } => QueryBody {
            like: Some(segment_id),
            ..QueryBody::default()
        },
    }
}
