//! One-shot search over plain HTTP: waits for the query stage's final event.
//! (The WebSocket in [`crate::ws`] streams the partial answers instead.)

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Multipart, Query, Request, State};
use axum::http::header;
use serde::Deserialize;
use vidseek_protocol::ErrorCode;
use vidseek_protocol::query::{QueryInput, SearchResponse};

use crate::error::ApiError;
use crate::routes::form::{self, QueryBody, SearchForm};
use crate::{AppState, SEARCH_BODY_LIMIT, search};

#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// What to look for, in words (GET only).
    pub text: Option<String>,
    /// Number of results, 1..100 (default 10).
    pub k: Option<usize>,
    /// Drop results below this confidence (0..1).
    pub min_score: Option<f32>,
}

/// Query-string parse failures (`k=abc`) as our JSON error, not axum's text.
pub fn query_params<T>(params: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    params
        .map(|Query(p)| p)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// `GET /api/v1/search?text=&k=&min_score=`
#[utoipa::path(get, path = "/api/v1/search", tag = "search", params(SearchParams),
    responses(
        (status = 200, description = "Top results, best first", body = SearchResponse),
        (status = 400, description = "Missing or bad parameters", body = vidseek_protocol::ErrorBody),
        (status = 429, description = "Too many searches in flight; retry after Retry-After seconds", body = vidseek_protocol::ErrorBody),
        (status = 503, description = "No query stage is running", body = vidseek_protocol::ErrorBody),
        (status = 504, description = "The query stage did not answer in time", body = vidseek_protocol::ErrorBody),
    ))]
pub async fn search_get(
    State(state): State<AppState>,
    params: Result<Query<SearchParams>, QueryRejection>,
) -> Result<Json<SearchResponse>, ApiError> {
    let params = query_params(params)?;
    let text = params
        .text
        .ok_or_else(|| ApiError::bad_request("the text parameter is missing"))?;
    let admitted = search::admit(&state)?;
    run(
        &state,
        admitted,
        form::text_input(text)?,
        params.k,
        params.min_score,
    )
    .await
}

/// `POST /api/v1/search`: multipart (`image`, or `text`), JSON
/// (`{"text"}` or `{"image_base64"}`), or a raw `image/*` body.
#[utoipa::path(post, path = "/api/v1/search", tag = "search", params(SearchParams),
    request_body(content(
        (QueryBody = "application/json"),
        (Vec<u8> = "multipart/form-data"),
        (Vec<u8> = "image/*"),
    )),
    responses(
        (status = 200, description = "Top results, best first", body = SearchResponse),
        (status = 400, description = "Malformed body", body = vidseek_protocol::ErrorBody),
        (status = 413, description = "Image over the size limit", body = vidseek_protocol::ErrorBody),
        (status = 415, description = "Unsupported body type", body = vidseek_protocol::ErrorBody),
        (status = 429, description = "Too many searches in flight; retry after Retry-After seconds", body = vidseek_protocol::ErrorBody),
        (status = 503, description = "No query stage is running", body = vidseek_protocol::ErrorBody),
    ))]
pub async fn search_post(
    State(state): State<AppState>,
    params: Result<Query<SearchParams>, QueryRejection>,
    request: Request,
) -> Result<Json<SearchResponse>, ApiError> {
    let params = query_params(params)?;
    // Admitted before the body is read: a refused search costs no upload.
    let admitted = search::admit(&state)?;
    let (input, k, min_score) = read_query_body(&state, request).await?;
    run(
        &state,
        admitted,
        input,
        k.or(params.k),
        min_score.or(params.min_score),
    )
    .await
}

type QueryFromBody = (QueryInput, Option<usize>, Option<f32>);

/// Picks the body format from its content type.
pub async fn read_query_body(
    state: &AppState,
    request: Request,
) -> Result<QueryFromBody, ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let multipart = Multipart::from_request(request, state)
            .await
            .map_err(|e| ApiError::bad_request(e.body_text()))?;
        let form = SearchForm::read(multipart).await?;
        let (k, min_score) = (form.k, form.min_score);
        Ok((form.into_input()?, k, min_score))
    } else if content_type.starts_with("application/json") {
        let bytes = read_body(request).await?;
        let body: QueryBody = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
        let (k, min_score) = (body.k, body.min_score);
        Ok((body.into_input()?, k, min_score))
    } else if content_type.starts_with("image/") {
        let bytes = read_body(request).await?;
        if bytes.len() > vidseek_protocol::query::MAX_IMAGE_BYTES {
            return Err(form::image_too_large(bytes.len()));
        }
        Ok((
            QueryInput::Image {
                bytes: bytes.to_vec(),
            },
            None,
            None,
        ))
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMedia,
            "send multipart/form-data (field image), application/json or an image/* body",
        ))
    }
}

async fn read_body(request: Request) -> Result<bytes::Bytes, ApiError> {
    axum::body::to_bytes(request.into_body(), SEARCH_BODY_LIMIT)
        .await
        .map_err(|_| {
            ApiError::new(
                ErrorCode::TooLarge,
                format!("the request body is over {SEARCH_BODY_LIMIT} bytes"),
            )
        })
}

async fn run(
    state: &AppState,
    admitted: search::Admitted,
    input: QueryInput,
    k: Option<usize>,
    min_score: Option<f32>,
) -> Result<Json<SearchResponse>, ApiError> {
    let response = search::run_to_completion(state, admitted, input, k, min_score).await?;
    Ok(Json(response))
}
