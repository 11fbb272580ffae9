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

/// Most videos one search may be restricted to.
pub const MAX_FILTER_VIDEOS: usize = 100;
/// Weight of the picture in a text-and-picture query when none is given.
pub const DEFAULT_IMAGE_WEIGHT: f32 = 0.5;

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
    /// "More like this": the segment's own stored vectors are the query,
    /// and the segment itself is left out of the answer.
    Like {
        segment_id: String,
    },
    /// Words and a picture together ("this picture, but at night"): each
    /// segment's score is the two confidences weighted, the picture's by
    /// `image_weight` (0..1) and the words' by the rest.
    TextAndImage {
        text: String,
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
        image_weight: f32,
    },
}

/// Which segments a search may return. The rankers apply it before they
/// choose their top k, so a filtered search still returns k results when k
/// segments pass it.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchFilter {
    /// Only segments of these videos (empty: every video).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub videos: Vec<String>,
    /// Only segments that end after this many seconds into their video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<f64>,
    /// Only segments that start before this many seconds into their video.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<f64>,
    /// Only these kinds of segment (empty: every kind).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kinds: Vec<SegmentKind>,
}

impl SearchFilter {
    pub fn is_empty(&self) -> bool {
        self == &SearchFilter::default()
    }

    pub fn validate(&self) -> Result<(), ErrorBody> {
        let bad = |message: String| Err(ErrorBody::new(ErrorCode::BadRequest, message));
        if self.videos.len() > MAX_FILTER_VIDEOS {
            return bad(format!(
                "a search may be restricted to at most {MAX_FILTER_VIDEOS} videos, got {}",
                self.videos.len()
            ));
        }
        if let Some(bad_id) = self
            .videos
            .iter()
            .find(|id| id.is_empty() || id.len() > 128)
        {
            return bad(format!("{bad_id:?} is not a video id"));
        }
        for (name, bound) in [("from", self.from), ("to", self.to)] {
            if let Some(seconds) = bound
                && !(seconds.is_finite() && seconds >= 0.0)
            {
                return bad(format!(
                    "{name} must be a number of seconds, 0 or more, got {seconds}"
                ));
            }
        }
        if let (Some(from), Some(to)) = (self.from, self.to)
            && from > to
        {
            return bad(format!("from ({from}) is after to ({to})"));
        }
        Ok(())
    }

    /// Whether a segment of `video_id` spanning `start..end` of `kind` passes.
    pub fn accepts(&self, video_id: &str, start: f64, end: f64, kind: SegmentKind) -> bool {
        (self.videos.is_empty() || self.videos.iter().any(|v| v == video_id))
            && self.from.is_none_or(|from| end > from)
            && self.to.is_none_or(|to| start < to)
            && (self.kinds.is_empty() || self.kinds.contains(&kind))
    }
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
    #[serde(default, skip_serializing_if = "SearchFilter::is_empty")]
    pub filter: SearchFilter,
    /// One result per video (its best segment), each saying how many more
    /// of that video's segments matched.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub group_by_video: bool,
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
            QueryInput::Text { text } => check_text(text)?,
            QueryInput::Image { bytes } => check_image(bytes)?,
            QueryInput::Like { segment_id } => {
                if crate::rank::parse_segment_id(segment_id).is_none() {
                    return Err(ErrorBody::new(
                        ErrorCode::BadRequest,
                        format!("{segment_id:?} is not a segment id (VIDEO-INDEX)"),
                    ));
                }
            }
            QueryInput::TextAndImage {
                text,
                bytes,
                image_weight,
            } => {
                check_text(text)?;
                check_image(bytes)?;
                if !(0.0..=1.0).contains(image_weight) {
                    return Err(ErrorBody::new(
                        ErrorCode::BadRequest,
                        format!("image_weight must be between 0 and 1, got {image_weight}"),
                    ));
                }
            }
        }
        Ok(SearchRequest {
            query_id,
            input,
            k,
            min_score,
            filter: SearchFilter::default(),
            group_by_video: false,
        })
    }

    /// The same request restricted by `filter` and grouped or not.
    pub fn with_scope(
        mut self,
        filter: SearchFilter,
        group_by_video: bool,
    ) -> Result<SearchRequest, ErrorBody> {
        filter.validate()?;
        self.filter = filter;
        self.group_by_video = group_by_video;
        Ok(self)
    }
}

fn check_text(text: &str) -> Result<(), ErrorBody> {
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
    Ok(())
}

fn check_image(bytes: &[u8]) -> Result<(), ErrorBody> {
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
    Ok(())
}

/// How results may be grouped.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Grouping {
    /// The best segment of each video, with how many more matched.
    Video,
}

/// Where to look and how to group: the part of every public search body
/// (HTTP, WebSocket, NATS) that is not the query itself.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchScope {
    #[serde(flatten)]
    pub filter: SearchFilter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<Grouping>,
}

/// The query of a public body: text, a picture, both, or a segment to
/// find more like.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryBody {
    /// What to look for, in words.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A picture to look for, base64 (a `data:` URL works too).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_base64: Option<String>,
    /// With both text and a picture: the picture's weight, 0..1 (default 0.5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image_weight: Option<f32>,
    /// A segment id: find more like it (alone, without text or picture).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub like: Option<String>,
}

impl QueryBody {
    /// The query it asks: text, a picture, both, or `like` alone.
    pub fn input(&self) -> Result<QueryInput, ErrorBody> {
        let bad = |message: &str| Err(ErrorBody::new(ErrorCode::BadRequest, message));
        if self.image_weight.is_some() && (self.text.is_none() || self.image_base64.is_none()) {
            return bad("image_weight goes with both text and image_base64");
        }
        match (&self.text, &self.image_base64, &self.like) {
            (Some(text), None, None) => Ok(QueryInput::Text { text: text.clone() }),
            (None, Some(image), None) => Ok(QueryInput::Image {
                bytes: decode_image_base64(image)?,
            }),
            (Some(text), Some(image), None) => Ok(QueryInput::TextAndImage {
                text: text.clone(),
                bytes: decode_image_base64(image)?,
                image_weight: self.image_weight.unwrap_or(DEFAULT_IMAGE_WEIGHT),
            }),
            (None, None, Some(segment_id)) => Ok(QueryInput::Like {
                segment_id: segment_id.clone(),
            }),
            (_, _, Some(_)) => bad(
                "like finds more like a segment on its own: send it without text or image_base64",
            ),
            (None, None, None) => bad("send text, image_base64, both, or like"),
        }
    }
}

/// Public body of `vidseek.v1.search`, `POST /api/v1/search` and WebSocket
/// searches: a query with the common options.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SearchBody {
    #[serde(flatten)]
    pub query: QueryBody,
    /// Number of results, 1..100 (default 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    /// Drop results below this confidence (0..1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_score: Option<f32>,
    #[serde(flatten)]
    pub scope: SearchScope,
}

impl SearchBody {
    /// The validated request under `query_id`.
    pub fn into_request(self, query_id: String) -> Result<SearchRequest, ErrorBody> {
        let input = self.query.input()?;
        SearchRequest::new(query_id, input, self.k, self.min_score)?
            .with_scope(self.scope.filter, self.scope.group.is_some())
    }
}

/// Public body of `vidseek.v1.scores`: how well every segment of one video
/// matches a query (`GET /api/v1/videos/{id}/scores` over HTTP).
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ScoresBody {
    pub video_id: String,
    #[serde(flatten)]
    pub query: QueryBody,
}

/// A validated [`ScoresBody`] on its way to the query stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoresRequest {
    pub query_id: String,
    pub video_id: String,
    pub input: QueryInput,
}

impl ScoresBody {
    pub fn into_request(self, query_id: String) -> Result<ScoresRequest, ErrorBody> {
        let input = self.query.input()?;
        // The same checks as a search's, the same messages.
        let request = SearchRequest::new(query_id, input, None, None)?;
        if self.video_id.is_empty() || self.video_id.len() > 128 {
            return Err(ErrorBody::new(
                ErrorCode::BadRequest,
                format!("{:?} is not a video id", self.video_id),
            ));
        }
        Ok(ScoresRequest {
            query_id: request.query_id,
            video_id: self.video_id,
            input: request.input,
        })
    }
}

/// One segment's match with a query.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentScore {
    pub segment_id: String,
    pub index: u32,
    pub start: f64,
    pub end: f64,
    pub kind: SegmentKind,
    /// Calibrated confidence in 0..1, as search results score it.
    pub score: f32,
}

/// Answer of `vidseek.v1.scores`: every segment of the video, in time order.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoScores {
    pub query_id: String,
    pub video_id: String,
    pub segments: Vec<SegmentScore>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query_translation: Option<QueryTranslation>,
}

/// A picture sent as base64; `data:image/...;base64,` URLs (what browsers
/// hand out) are accepted too. Refuses more than the image limit before
/// decoding.
pub fn decode_image_base64(encoded: &str) -> Result<Vec<u8>, ErrorBody> {
    let encoded = match encoded.strip_prefix("data:") {
        Some(rest) => rest.split_once(',').map_or(rest, |(_, data)| data),
        None => encoded,
    };
    let encoded = encoded.trim();
    let approximate_bytes = encoded.len() / 4 * 3;
    if approximate_bytes > MAX_IMAGE_BYTES + 3 {
        return Err(ErrorBody::new(
            ErrorCode::TooLarge,
            format!("the image is about {approximate_bytes} bytes; the limit is {MAX_IMAGE_BYTES}"),
        ));
    }
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .map_err(|e| {
            ErrorBody::new(
                ErrorCode::BadRequest,
                format!("image_base64 is not valid base64: {e}"),
            )
        })
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
    #[serde(flatten)]
    pub scope: SearchScope,
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
    #[serde(flatten)]
    pub scope: SearchScope,
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
    /// Grouped searches: how many more of this video's segments are among
    /// its shard's best matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_in_video: Option<u32>,
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
    /// Segments the ready shards still search exactly while they enter the
    /// approximate index (after a replay or a large ingest); 0 once every
    /// shard is at full speed.
    #[serde(default)]
    pub segments_settling: u64,
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
            more_in_video: Some(2),
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
            filter: SearchFilter {
                videos: vec!["v1".into()],
                from: Some(1.5),
                to: None,
                kinds: vec![SegmentKind::Shot],
            },
            group_by_video: true,
        });
        assert_roundtrip(&SearchRequest {
            query_id: "q".into(),
            input: QueryInput::TextAndImage {
                text: "at night".into(),
                bytes: vec![1, 2],
                image_weight: 0.25,
            },
            k: 10,
            min_score: 0.0,
            filter: SearchFilter::default(),
            group_by_video: false,
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
            scope: SearchScope::default(),
        });
        assert_roundtrip(&ImageSearch {
            image_base64: "AAEC".into(),
            k: None,
            min_score: Some(0.5),
            scope: SearchScope {
                filter: SearchFilter {
                    videos: vec!["v2".into()],
                    from: None,
                    to: Some(30.0),
                    kinds: vec![],
                },
                group: Some(Grouping::Video),
            },
        });
        assert_roundtrip(&HealthReport {
            encoder: true,
            shards_total: 2,
            shards_ready: 1,
            segments_indexed: 5,
            segments_settling: 0,
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

    #[test]
    fn a_search_body_carries_filters_grouping_and_every_kind_of_query() {
        let body: SearchBody = serde_json::from_str(
            r#"{"text":"a cat","videos":["v1","v2"],"from":2.5,"to":10,"kinds":["shot","ocr"],"group":"video","k":5}"#,
        )
        .unwrap();
        assert_roundtrip(&body);
        let request = body.into_request("q".into()).unwrap();
        assert_eq!(request.k, 5);
        assert!(request.group_by_video);
        assert_eq!(request.filter.videos, ["v1", "v2"]);
        assert_eq!(request.filter.kinds, [SegmentKind::Shot, SegmentKind::Ocr]);

        let input = |json: &str| serde_json::from_str::<QueryBody>(json).unwrap().input();
        assert_eq!(
            input(r#"{"like":"v1-3"}"#).unwrap(),
            QueryInput::Like {
                segment_id: "v1-3".into()
            }
        );
        assert_eq!(
            input(r#"{"text":"at night","image_base64":"AAEC","image_weight":0.7}"#).unwrap(),
            QueryInput::TextAndImage {
                text: "at night".into(),
                bytes: vec![0, 1, 2],
                image_weight: 0.7,
            }
        );
        for bad in [
            r#"{}"#,
            r#"{"like":"v1-3","text":"a"}"#,
            r#"{"text":"a","image_weight":0.5}"#,
            r#"{"image_base64":"!!"}"#,
        ] {
            assert_eq!(
                input(bad).unwrap_err().error.code,
                ErrorCode::BadRequest,
                "{bad}"
            );
        }
        let request = |json: &str| {
            serde_json::from_str::<SearchBody>(json)
                .unwrap()
                .into_request("q".into())
        };
        for bad in [
            r#"{"like":"not a segment"}"#,
            r#"{"text":"a","image_base64":"AAEC","image_weight":1.5}"#,
            r#"{"text":"a","from":10,"to":5}"#,
            r#"{"text":"a","from":-1}"#,
        ] {
            assert_eq!(
                request(bad).unwrap_err().error.code,
                ErrorCode::BadRequest,
                "{bad}"
            );
        }
        let many = format!(
            r#"{{"text":"a","videos":{:?}}}"#,
            (0..=MAX_FILTER_VIDEOS)
                .map(|i| format!("v{i}"))
                .collect::<Vec<_>>()
        );
        assert!(request(&many).is_err(), "too many videos");

        let scores: ScoresBody = serde_json::from_str(r#"{"video_id":"v1","text":"a"}"#).unwrap();
        assert_roundtrip(&scores);
        assert_eq!(scores.into_request("q".into()).unwrap().video_id, "v1");
    }

    #[test]
    fn a_filter_keeps_segments_overlapping_its_range_of_its_videos_and_kinds() {
        let filter = SearchFilter {
            videos: vec!["v1".into()],
            from: Some(10.0),
            to: Some(20.0),
            kinds: vec![SegmentKind::Shot],
        };
        assert!(filter.accepts("v1", 5.0, 12.0, SegmentKind::Shot));
        assert!(filter.accepts("v1", 19.0, 30.0, SegmentKind::Shot));
        assert!(
            !filter.accepts("v1", 0.0, 10.0, SegmentKind::Shot),
            "ends at from"
        );
        assert!(
            !filter.accepts("v1", 20.0, 25.0, SegmentKind::Shot),
            "starts at to"
        );
        assert!(!filter.accepts("v2", 12.0, 13.0, SegmentKind::Shot));
        assert!(!filter.accepts("v1", 12.0, 13.0, SegmentKind::Subtitle));
        assert!(SearchFilter::default().accepts("any", 0.0, 1.0, SegmentKind::Ocr));
    }
}
