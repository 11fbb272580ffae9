//! One-shot search over plain HTTP: waits for the query stage's final event.
//! (The WebSocket in [`crate::ws`] streams the partial answers instead.)
//!
//! Both methods take the same options: `k`, `min_score`, the filters
//! (`video`, `from`, `to`, `kind`) and `group=video`, as query parameters or
//! as fields of a JSON body, and `format=csv` for a spreadsheet instead of
//! JSON.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Multipart, Query, RawQuery, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use vidseek_protocol::ErrorCode;
use vidseek_protocol::query::{
    Grouping, QueryBody, QueryInput, SearchBody, SearchFilter, SearchResponse, SearchScope,
};
use vidseek_protocol::rank::SegmentKind;

use crate::error::ApiError;
use crate::routes::form::{self, SearchForm};
use crate::{AppState, SEARCH_BODY_LIMIT, search};

/// The query parameters of both search routes. Lists (`video`, `kind`)
/// may repeat the parameter or separate values with commas.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SearchParams {
    /// What to look for, in words (GET only).
    pub text: Option<String>,
    /// A segment id: find more like it (GET only).
    pub like: Option<String>,
    /// Number of results, 1..100 (default 10).
    pub k: Option<usize>,
    /// Drop results below this confidence (0..1).
    pub min_score: Option<f32>,
    /// Only these videos (repeatable).
    pub video: Vec<String>,
    /// Only segments that end after this second.
    pub from: Option<f64>,
    /// Only segments that start before this second.
    pub to: Option<f64>,
    /// Only these kinds: `shot`, `subtitle`, `ocr` (repeatable).
    pub kind: Vec<SegmentKind>,
    /// `video`: the best segment per video, with how many more matched.
    pub group: Option<Grouping>,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

impl SearchParams {
    /// Parses the raw query string; unknown parameters are ignored (cache
    /// busters, trackers), malformed known ones are a 400 naming them.
    pub fn parse(raw: Option<&str>) -> Result<SearchParams, ApiError> {
        let mut params = SearchParams::default();
        for (name, value) in form_urlencoded::parse(raw.unwrap_or_default().as_bytes()) {
            let list = || value.split(',').map(str::trim).filter(|v| !v.is_empty());
            match &*name {
                "text" => params.text = Some(value.to_string()),
                "like" => params.like = Some(value.to_string()),
                "k" => params.k = Some(form::parse_number(&value, "k")?),
                "min_score" => params.min_score = Some(form::parse_number(&value, "min_score")?),
                "from" => params.from = Some(form::parse_number(&value, "from")?),
                "to" => params.to = Some(form::parse_number(&value, "to")?),
                "video" => params.video.extend(list().map(String::from)),
                "kind" => {
                    for kind in list() {
                        params
                            .kind
                            .push(parse_name(kind, "kind", "shot, subtitle or ocr")?);
                    }
                }
                "group" => params.group = Some(parse_name(&value, "group", "video")?),
                "format" => match &*value {
                    "json" | "csv" => params.format = Some(value.to_string()),
                    other => {
                        return Err(ApiError::bad_request(format!(
                            "format must be json or csv, not {other:?}"
                        )));
                    }
                },
                _ => {}
            }
        }
        Ok(params)
    }

    pub fn scope(&self) -> SearchScope {
        SearchScope {
            filter: SearchFilter {
                videos: self.video.clone(),
                from: self.from,
                to: self.to,
                kinds: self.kind.clone(),
            },
            group: self.group,
        }
    }

    fn csv(&self) -> bool {
        self.format.as_deref() == Some("csv")
    }
}

/// A snake_case name of one of our enums (`shot`, `video`).
fn parse_name<T: serde::de::DeserializeOwned>(
    value: &str,
    name: &str,
    expected: &str,
) -> Result<T, ApiError> {
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .map_err(|_| ApiError::bad_request(format!("{name} must be {expected}, not {value:?}")))
}

/// Query-string parse failures (`k=abc`) as our JSON error, not axum's text.
pub fn query_params<T>(params: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    params
        .map(|Query(p)| p)
        .map_err(|e| ApiError::bad_request(e.body_text()))
}

/// `GET /api/v1/search?text=|like=&k=&min_score=&video=&from=&to=&kind=&group=&format=`
#[utoipa::path(get, path = "/api/v1/search", tag = "search", params(SearchParams),
    responses(
        (status = 200, description = "Top results, best first (JSON, or CSV with format=csv)", body = SearchResponse),
        (status = 400, description = "Missing or bad parameters", body = vidseek_protocol::ErrorBody),
        (status = 404, description = "`like` names a segment that is not indexed", body = vidseek_protocol::ErrorBody),
        (status = 429, description = "Too many searches in flight; retry after Retry-After seconds", body = vidseek_protocol::ErrorBody),
        (status = 503, description = "No query stage is running", body = vidseek_protocol::ErrorBody),
        (status = 504, description = "The query stage did not answer in time", body = vidseek_protocol::ErrorBody),
    ))]
pub async fn search_get(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let params = SearchParams::parse(raw.as_deref())?;
    let query = QueryBody {
        text: params.text.clone(),
        like: params.like.clone(),
        ..QueryBody::default()
    };
    if query.text.is_none() && query.like.is_none() {
        return Err(ApiError::bad_request(
            "the text parameter is missing (or like)",
        ));
    }
    let input = input_of(&query)?;
    let admitted = search::admit(&state)?;
    let asked = Asked {
        input,
        k: params.k,
        min_score: params.min_score,
        scope: params.scope(),
    };
    respond(&state, admitted, asked, params.csv()).await
}

/// `POST /api/v1/search`: JSON ([`SearchBody`]: text, image, both, or
/// `like`, with the options as fields), multipart (`image` and/or `text`,
/// `image_weight`), or a raw `image/*` body; options may also be query
/// parameters.
#[utoipa::path(post, path = "/api/v1/search", tag = "search", params(SearchParams),
    request_body(content(
        (SearchBody = "application/json"),
        (Vec<u8> = "multipart/form-data"),
        (Vec<u8> = "image/*"),
    )),
    responses(
        (status = 200, description = "Top results, best first (JSON, or CSV with format=csv)", body = SearchResponse),
        (status = 400, description = "Malformed body", body = vidseek_protocol::ErrorBody),
        (status = 404, description = "`like` names a segment that is not indexed", body = vidseek_protocol::ErrorBody),
        (status = 413, description = "Image over the size limit", body = vidseek_protocol::ErrorBody),
        (status = 415, description = "Unsupported body type", body = vidseek_protocol::ErrorBody),
        (status = 429, description = "Too many searches in flight; retry after Retry-After seconds", body = vidseek_protocol::ErrorBody),
        (status = 503, description = "No query stage is running", body = vidseek_protocol::ErrorBody),
    ))]
pub async fn search_post(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
    request: Request,
) -> Result<Response, ApiError> {
    let params = SearchParams::parse(raw.as_deref())?;
    // Admitted before the body is read: a refused search costs no upload.
    let admitted = search::admit(&state)?;
    let mut asked = read_query_body(&state, request).await?;
    asked.k = asked.k.or(params.k);
    asked.min_score = asked.min_score.or(params.min_score);
    if asked.scope == SearchScope::default() {
        asked.scope = params.scope();
    }
    respond(&state, admitted, asked, params.csv()).await
}

/// A search as a route reads it: the query and its options.
#[derive(Debug)]
pub struct Asked {
    pub input: QueryInput,
    pub k: Option<usize>,
    pub min_score: Option<f32>,
    pub scope: SearchScope,
}

impl Asked {
    /// From a JSON body (REST or WebSocket).
    pub fn from_body(body: SearchBody) -> Result<Asked, ApiError> {
        Ok(Asked {
            input: input_of(&body.query)?,
            k: body.k,
            min_score: body.min_score,
            scope: body.scope,
        })
    }
}

/// The query a body asks, with an over-long text refused before anything
/// copies it around (a query that long is malformed, not a big upload).
pub fn input_of(query: &QueryBody) -> Result<QueryInput, ApiError> {
    if let Some(text) = &query.text {
        form::check_text_length(text)?;
    }
    Ok(query.input()?)
}

/// Picks the body format from its content type.
pub async fn read_query_body(state: &AppState, request: Request) -> Result<Asked, ApiError> {
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
        Ok(Asked {
            input: form.into_input()?,
            k,
            min_score,
            scope: SearchScope::default(),
        })
    } else if content_type.starts_with("application/json") {
        let bytes = read_body(request).await?;
        let body: SearchBody = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON: {e}")))?;
        Asked::from_body(body)
    } else if content_type.starts_with("image/") {
        let bytes = read_body(request).await?;
        if bytes.len() > vidseek_protocol::query::MAX_IMAGE_BYTES {
            return Err(form::image_too_large(bytes.len()));
        }
        Ok(Asked {
            input: QueryInput::Image {
                bytes: bytes.to_vec(),
            },
            k: None,
            min_score: None,
            scope: SearchScope::default(),
        })
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

async fn respond(
    state: &AppState,
    admitted: search::Admitted,
    asked: Asked,
    csv: bool,
) -> Result<Response, ApiError> {
    let text = match &asked.input {
        QueryInput::Text { text } | QueryInput::TextAndImage { text, .. } => Some(text.clone()),
        QueryInput::Image { .. } | QueryInput::Like { .. } => None,
    };
    let response = search::run_to_completion(state, admitted, asked).await?;
    if csv {
        let body = results_csv(&response, text.as_deref());
        Ok(([(header::CONTENT_TYPE, "text/csv; charset=utf-8")], body).into_response())
    } else {
        Ok(Json(response).into_response())
    }
}

const CSV_COLUMNS: [&str; 10] = [
    "rank",
    "video_id",
    "video_name",
    "segment_id",
    "kind",
    "start",
    "end",
    "score",
    "text",
    "link",
];

/// The results as RFC 4180 CSV, the columns of the page's export, each
/// row linking to its moment on this gateway's page (`/?q=&v=&t=&s=`).
pub fn results_csv(response: &SearchResponse, text: Option<&str>) -> String {
    let field = |value: String| {
        if value.contains(['"', ',', '\r', '\n']) {
            format!("\"{}\"", value.replace('"', "\"\""))
        } else {
            value
        }
    };
    let mut out = CSV_COLUMNS.join(",") + "\r\n";
    for (rank, hit) in response.results.iter().enumerate() {
        let mut link = form_urlencoded::Serializer::new(String::new());
        if let Some(text) = text {
            link.append_pair("q", text);
        }
        link.append_pair("v", &hit.video_id)
            .append_pair("t", &(hit.start.floor() as u64).to_string())
            .append_pair("s", &hit.segment_id);
        let kind = serde_json::to_value(hit.kind).expect("kinds serialise");
        let row = [
            (rank + 1).to_string(),
            hit.video_id.clone(),
            hit.video_name.clone(),
            hit.segment_id.clone(),
            kind.as_str().unwrap_or_default().to_string(),
            hit.start.to_string(),
            hit.end.to_string(),
            hit.score.to_string(),
            hit.text.clone().unwrap_or_default(),
            format!("/?{}", link.finish()),
        ];
        out += &row.map(field).join(",");
        out += "\r\n";
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use vidseek_protocol::query::SearchHit;

    #[test]
    fn lists_repeat_or_use_commas_and_bad_values_name_their_parameter() {
        let params = SearchParams::parse(Some(
            "text=a&video=v1&video=v2,v3&kind=shot,ocr&from=2&group=video&x=1",
        ))
        .unwrap();
        assert_eq!(params.video, ["v1", "v2", "v3"]);
        assert_eq!(params.kind, [SegmentKind::Shot, SegmentKind::Ocr]);
        assert_eq!(params.from, Some(2.0));
        assert_eq!(params.group, Some(Grouping::Video));
        for (bad, named) in [
            ("kind=scene", "kind"),
            ("group=shot", "group"),
            ("from=soon", "from"),
            ("format=xml", "format"),
        ] {
            let message = SearchParams::parse(Some(bad))
                .unwrap_err()
                .body()
                .error
                .message;
            assert!(message.contains(named), "{bad}: {message}");
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting_and_links_each_moment() {
        let hit = SearchHit {
            video_id: "v1".into(),
            video_name: "a, \"b\".mp4".into(),
            segment_id: "v1-3".into(),
            start: 12.5,
            end: 14.0,
            score: 0.5,
            kind: SegmentKind::Subtitle,
            text: Some("line one\nline two".into()),
            thumbnail_url: String::new(),
            play_url: String::new(),
            more_in_video: None,
        };
        let response = SearchResponse {
            query_id: "q".into(),
            took_ms: 1,
            shards_done: 1,
            shards_total: 1,
            results: vec![hit],
            warnings: vec![],
            query_translation: None,
        };
        let csv = results_csv(&response, Some("一杯 咖啡"));
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        assert!(
            lines[1].starts_with(
                "1,v1,\"a, \"\"b\"\".mp4\",v1-3,subtitle,12.5,14,0.5,\"line one\nline two\","
            ),
            "{}",
            lines[1]
        );
        assert!(
            lines[1].ends_with(",/?q=%E4%B8%80%E6%9D%AF+%E5%92%96%E5%95%A1&v=v1&t=12&s=v1-3"),
            "{}",
            lines[1]
        );
    }
}
