//! Search: what a client asks, what streams back.
//!
//! The gateway (or any NATS client) sends a [`SearchRequest`] to the query
//! stage, which encodes the query, scatters it to every ranker shard and
//! streams a [`SearchEvent::Partial`] each time a shard answers, then one
//! [`SearchEvent::Done`]. The public one-shot subjects answer a
//! [`SearchResponse`] built from the final event.

use serde::{Deserialize, Serialize};

use crate::rank::SegmentKind;
use crate::{ErrorBody, ErrorCode};

/// Results returned when the client does not say.
pub const DEFAULT_K: usize = 10;
/// Upper bound on results per query; larger requests are rejected, not clamped.
pub const MAX_K: usize = 100;
/// Longest accepted text query, in characters.
pub const MAX_TEXT_CHARS: usize = 1000;
/// Largest accepted query image, in bytes.
pub const MAX_IMAGE_BYTES: usize = 20 * 1024 * 1024;

/// What the user is looking for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum QueryInput {
    Text {
        text: String,
    },
    Image {
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
}

/// A validated query on its way to the query stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchRequest {
    pub query_id: String,
    pub input: QueryInput,
    pub k: usize,
    /// Results below this confidence (0..1) are dropped.
    #[serde(default)]
    pub min_score: f32,
}

impl SearchRequest {
    /// Builds a request, rejecting what no stage could answer sensibly.
    pub fn new(
        query_id: String,
        input: QueryInput,
        k: Option<usize>,
        min_score: Option<f32>,
    ) -> Result<SearchRequest, ErrorBody> {
        let k = k.unwrap_or(DEFAULT_K);
        if k == 0 || k > MAX_K {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                format!("k must be between 1 and {MAX_K}, got {k}"),
            ));
        }
        let min_score = min_score.unwrap_or(0.0);
        if !(0.0..=1.0).contains(&min_score) {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                format!("min_score must be between 0 and 1, got {min_score}"),
            ));
        }
        match &input {
            QueryInput::Text { text } => {
                if text.trim().is_empty() {
                    return Err(ErrorBody::new(ErrorCode::BadRequest, "text is empty"));
                }
                let chars = text.chars().count();
                if chars > MAX_TEXT_CHARS {
                    return Err(ErrorBody::new(
                        ErrorCode::TooLarge,
                        format!("text is {chars} characters long; the limit is {MAX_TEXT_CHARS}"),
                    ));
                }
            }
            QueryInput::Image { bytes } => {
                if bytes.is_empty() {
                    return Err(ErrorBody::new(ErrorCode::BadRequest, "image is empty"));
                }
                if bytes.len() > MAX_IMAGE_BYTES {
                    return Err(ErrorBody::new(
                        ErrorCode::TooLarge,
                        format!(
                            "image is {} bytes; the limit is {MAX_IMAGE_BYTES}",
                            bytes.len()
                        ),
                    ));
                }
            }
        }
        Ok(SearchRequest {
            query_id,
            input,
            k,
            min_score,
        })
    }
}

/// Public body of `vidseek.v1.search.text`.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextSearch {
    pub text: String,
    #[serde(default)]
    pub k: Option<usize>,
    #[serde(default)]
    pub min_score: Option<f32>,
}

/// Public JSON body of `vidseek.v1.search.image` (raw image bytes work too).
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageSearch {
    pub image_base64: String,
    #[serde(default)]
    pub k: Option<usize>,
    #[serde(default)]
    pub min_score: Option<f32>,
}

/// One matching segment, as users see it.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchHit {
    pub video_id: String,
    pub video_name: String,
    pub segment_id: String,
    /// Seconds from the start of the video.
    pub start: f64,
    pub end: f64,
    /// Calibrated confidence in 0..1.
    pub score: f32,
    pub kind: SegmentKind,
    /// The text of subtitle segments, and the text recognised in the
    /// picture for `ocr` segments.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    pub thumbnail_url: String,
    pub play_url: String,
}

/// Something the user should know about an otherwise successful answer.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Warning {
    pub code: String,
    pub message: String,
}

/// How a query in a language the text encoder does not read was searched:
/// the pack translated it, and this is the text that was encoded.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryTranslation {
    /// ISO 639-1 code of the query's language, e.g. `"zh"`.
    pub language: String,
    /// The text searched in its place.
    pub text: String,
}

/// One message of a streamed search; the `type` tag matches the WebSocket API.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SearchEvent {
    Partial {
        id: String,
        shards_done: u32,
        shards_total: u32,
        results: Vec<SearchHit>,
    },
    Done {
        id: String,
        took_ms: u64,
        shards_done: u32,
        shards_total: u32,
        results: Vec<SearchHit>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        warnings: Vec<Warning>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        query_translation: Option<QueryTranslation>,
    },
    Error {
        id: String,
        code: ErrorCode,
        message: String,
    },
}

impl SearchEvent {
    pub fn error(id: impl Into<String>, body: ErrorBody) -> SearchEvent {
        SearchEvent::Error {
            id: id.into(),
            code: body.error.code,
            message: body.error.message,
        }
    }

    /// Partial and done events end nothing; done and error end the stream.
    pub fn is_final(&self) -> bool {
        !matches!(self, SearchEvent::Partial { .. })
    }

    /// The same event addressed to another id (the WebSocket client's own).
    pub fn with_id(mut self, new_id: &str) -> SearchEvent {
        match &mut self {
            SearchEvent::Partial { id, .. }
            | SearchEvent::Done { id, .. }
            | SearchEvent::Error { id, .. } => *id = new_id.to_string(),
        }
        self
    }
}

/// Answer of the one-shot search subjects and `GET /api/v1/search`.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchResponse {
    pub query_id: String,
    pub took_ms: u64,
    pub shards_done: u32,
    pub shards_total: u32,
    pub results: Vec<SearchHit>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    /// Set when the query was translated before it was searched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_translation: Option<QueryTranslation>,
}

/// Reply to [`crate::subjects::HEALTH`].
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    pub encoder: bool,
    pub shards_total: u32,
    pub shards_ready: u32,
    pub segments_indexed: u64,
}

impl HealthReport {
    pub fn ready(&self) -> bool {
        self.encoder && self.shards_ready == self.shards_total
    }
}

/// URL under which the gateway serves a segment's thumbnail.
pub fn thumbnail_url(video_id: &str, segment_index: u32) -> String {
    format!("/media/thumbs/{video_id}/{segment_index}.jpg")
}

/// Where a video's thumbnails live in the data directory (shared by the
/// ingest workers that write them and the gateway that serves them).
pub fn thumbnail_dir(data_dir: &std::path::Path, video_id: &str) -> std::path::PathBuf {
    data_dir.join("thumbs").join(video_id)
}

/// The file behind [`thumbnail_url`].
pub fn thumbnail_file(
    data_dir: &std::path::Path,
    video_id: &str,
    segment_index: u32,
) -> std::path::PathBuf {
    thumbnail_dir(data_dir, video_id).join(format!("{segment_index}.jpg"))
}

/// URL under which the gateway serves a video (HTTP range requests supported).
pub fn play_url(video_id: &str) -> String {
    format!("/media/videos/{video_id}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::roundtrip::assert_roundtrip;

    fn hit() -> SearchHit {
        SearchHit {
            video_id: "v1".into(),
            video_name: "bikes.mp4".into(),
            segment_id: "v1-3".into(),
            start: 1.5,
            end: 3.25,
            score: 0.75,
            kind: SegmentKind::Shot,
            text: None,
            thumbnail_url: thumbnail_url("v1", 3),
            play_url: play_url("v1"),
        }
    }

    #[test]
    fn messages_roundtrip() {
        assert_roundtrip(&SearchRequest {
            query_id: "q".into(),
            input: QueryInput::Image {
                bytes: vec![0, 1, 255],
            },
            k: 10,
            min_score: 0.2,
        });
        assert_roundtrip(&SearchEvent::Partial {
            id: "q1".into(),
            shards_done: 1,
            shards_total: 2,
            results: vec![hit()],
        });
        assert_roundtrip(&SearchEvent::Done {
            id: "q1".into(),
            took_ms: 12,
            shards_done: 2,
            shards_total: 2,
            results: vec![hit()],
            warnings: vec![Warning {
                code: "language_unsupported".into(),
                message: "m".into(),
            }],
            query_translation: Some(QueryTranslation {
                language: "zh".into(),
                text: "a cup of coffee".into(),
            }),
        });
        assert_roundtrip(&SearchEvent::error(
            "q1",
            ErrorBody::new(ErrorCode::Timeout, "slow"),
        ));
        assert_roundtrip(&SearchResponse {
            query_id: "q".into(),
            took_ms: 3,
            shards_done: 1,
            shards_total: 1,
            results: vec![hit()],
            warnings: vec![],
            query_translation: None,
        });
        assert_roundtrip(&TextSearch {
            text: "a cat".into(),
            k: Some(3),
            min_score: None,
        });
        assert_roundtrip(&ImageSearch {
            image_base64: "AAEC".into(),
            k: None,
            min_score: Some(0.5),
        });
        assert_roundtrip(&HealthReport {
            encoder: true,
            shards_total: 2,
            shards_ready: 1,
            segments_indexed: 5,
        });
    }

    #[test]
    fn websocket_event_shape_matches_contract() {
        let json = serde_json::to_value(SearchEvent::Partial {
            id: "q1".into(),
            shards_done: 1,
            shards_total: 2,
            results: vec![],
        })
        .unwrap();
        assert_eq!(json["type"], "partial");
        assert_eq!(json["shards_done"], 1);
        let minimal: TextSearch = serde_json::from_str(r#"{"text":"a cat"}"#).unwrap();
        assert_eq!(minimal.k, None);
    }

    #[test]
    fn bad_queries_are_rejected_with_reasons() {
        let text = |t: &str| QueryInput::Text { text: t.into() };
        let code = |r: Result<SearchRequest, ErrorBody>| r.unwrap_err().error.code;
        assert_eq!(
            code(SearchRequest::new("q".into(), text("  "), None, None)),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(SearchRequest::new(
                "q".into(),
                text(&"x".repeat(MAX_TEXT_CHARS + 1)),
                None,
                None
            )),
            ErrorCode::TooLarge
        );
        assert_eq!(
            code(SearchRequest::new("q".into(), text("a"), Some(0), None)),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(SearchRequest::new("q".into(), text("a"), Some(101), None)),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(SearchRequest::new("q".into(), text("a"), None, Some(1.5))),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(SearchRequest::new(
                "q".into(),
                QueryInput::Image { bytes: vec![] },
                None,
                None
            )),
            ErrorCode::BadRequest
        );
        let ok = SearchRequest::new("q".into(), text("一个人在海边跳舞"), None, None).unwrap();
        assert_eq!(ok.k, DEFAULT_K);
    }
}
