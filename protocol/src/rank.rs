//! Ranker shards: the segment records they index, and the query they answer.

use serde::{Deserialize, Serialize};

use crate::encode::Calibration;
use crate::error::{ErrorBody, ErrorCode};
use crate::query::SearchFilter;

/// Most results a shard returns: what the query stage may ask for.
pub const MAX_RANK_K: usize = crate::query::MAX_K;
/// Most lexical terms in one rank request.
pub const MAX_RANK_TERMS: usize = 256;

#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentKind {
    /// A stretch of frames between shot boundaries (or a window of a long shot).
    Shot,
    /// A subtitle cue, matched text to text.
    Subtitle,
    /// Text read from the picture: a burned-in caption with its times, or
    /// the on-screen text of a shot. Matched text to text like subtitles.
    Ocr,
}

/// Everything a search result needs about a segment, without its vectors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentMeta {
    pub segment_id: String,
    pub video_id: String,
    pub video_name: String,
    /// Position within the video's segments; names the thumbnail file.
    pub index: u32,
    pub start: f64,
    pub end: f64,
    pub kind: SegmentKind,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// A segment as stored in the segment log.
/// A segment's public id: `{video_id}-{index}`. Video ids never contain `-`,
/// so the id splits back unambiguously.
pub fn segment_id(video_id: &str, index: u32) -> String {
    format!("{video_id}-{index}")
}

/// Splits a public segment id into video id and index.
pub fn parse_segment_id(segment_id: &str) -> Option<(&str, u32)> {
    let (video, index) = segment_id.rsplit_once('-')?;
    if video.is_empty() || video.contains('-') {
        return None;
    }
    Some((video, index.parse().ok()?))
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentRecord {
    pub meta: SegmentMeta,
    /// Comparable with text queries (L2-normalised).
    pub text_vector: Vec<f32>,
    /// Comparable with image queries; subtitle segments have none.
    #[serde(default)]
    pub image_vector: Option<Vec<f32>>,
    /// Subtitle cues: the words the lexical match finds them by
    /// (`vidseek_text::terms`); empty for shots.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<String>,
}

/// One message of the per-shard segment log.
///
/// A video's segments are written in numbered parts (NATS messages are size
/// limited). A new `generation` replaces everything earlier for that video; the
/// same generation and part replaces that part, so a redelivered ingest job
/// that republishes identical parts changes nothing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum SegmentLogEntry {
    Upsert {
        video_id: String,
        generation: String,
        part: u32,
        parts: u32,
        segments: Vec<SegmentRecord>,
    },
    Delete {
        video_id: String,
    },
}

/// Which of a segment's vectors a query is compared with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Space {
    Text,
    Image,
}

/// Calibration per segment kind, so shots, subtitles and recognised text
/// compete fairly.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KindCalibration {
    pub shot: Calibration,
    pub subtitle: Calibration,
    /// Absent from requests of older query stages: OCR text then ranks as
    /// subtitles do.
    #[serde(default)]
    pub ocr: Option<Calibration>,
}

impl KindCalibration {
    pub fn for_kind(&self, kind: SegmentKind) -> Calibration {
        match kind {
            SegmentKind::Shot => self.shot,
            SegmentKind::Subtitle => self.subtitle,
            SegmentKind::Ocr => self.ocr.unwrap_or(self.subtitle),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankRequest {
    pub space: Space,
    pub vector: Vec<f32>,
    /// `k = 0` is a readiness probe: the shard answers with no hits.
    pub k: usize,
    pub calibration: KindCalibration,
    #[serde(default)]
    pub min_score: f32,
    /// Text queries: the query's lexical terms, matched against subtitle
    /// cues' terms and fused with the vector score.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub terms: Vec<String>,
    /// Applied to every segment before the top k is chosen.
    #[serde(default, skip_serializing_if = "SearchFilter::is_empty")]
    pub filter: SearchFilter,
    /// Segment ids never returned (the segment a "more like this" started from).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exclude: Vec<String>,
    /// The best segment per video, each with `more_in_video` set.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub group_by_video: bool,
    /// A second query in the other space, mixed into every score.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blend: Option<Blend>,
}

/// The second half of a text-and-picture query: a segment's score is
/// `(1 − weight) · main + weight · this`, where a segment without a vector
/// in this space scores 0 here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blend {
    pub space: Space,
    pub vector: Vec<f32>,
    pub calibration: KindCalibration,
    pub weight: f32,
}

/// Most segment ids one rank request may exclude.
pub const MAX_RANK_EXCLUDE: usize = 16;

/// `vidseek.v1.rank.{shard}.scores`: every segment of one video scored
/// against `query` (its vectors, calibration, terms and blend; its k,
/// filter and grouping do not apply).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreVideoRequest {
    pub video_id: String,
    pub query: RankRequest,
}

/// Answer to [`ScoreVideoRequest`]: the video's segments in time order, scored;
/// empty when the shard does not hold the video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreVideoResponse {
    pub segments: Vec<RankedSegment>,
}

/// `vidseek.v1.rank.{shard}.segment`: a stored segment, vectors included
/// (what "more like this" searches with); `not_found` if the shard does
/// not hold it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SegmentLookup {
    pub segment_id: String,
}

impl RankRequest {
    /// Refuses what no shard should try to answer: a request comes off NATS,
    /// where anyone with access can publish, so nothing in it may make a
    /// ranker allocate without bound or compute with non-numbers.
    pub fn validate(&self) -> Result<(), ErrorBody> {
        let bad = |message: String| Err(ErrorBody::new(ErrorCode::BadRequest, message));
        if self.k > MAX_RANK_K {
            return bad(format!("k must be at most {MAX_RANK_K}, got {}", self.k));
        }
        if self.k > 0 && self.vector.is_empty() {
            return bad("the query vector is empty".into());
        }
        if !self.vector.iter().all(|x| x.is_finite()) {
            return bad("the query vector has a value that is not a finite number".into());
        }
        if !(0.0..=1.0).contains(&self.min_score) {
            return bad(format!(
                "min_score must be between 0 and 1, got {}",
                self.min_score
            ));
        }
        let calibrations = [self.calibration.shot, self.calibration.subtitle];
        if !calibrations
            .iter()
            .chain(self.calibration.ocr.iter())
            .all(|c| c.a.is_finite() && c.b.is_finite())
        {
            return bad("calibration constants must be finite numbers".into());
        }
        if self.terms.len() > MAX_RANK_TERMS {
            return bad(format!(
                "{} lexical terms; the limit is {MAX_RANK_TERMS}",
                self.terms.len()
            ));
        }
        self.filter.validate()?;
        if self.exclude.len() > MAX_RANK_EXCLUDE {
            return bad(format!(
                "{} excluded segments; the limit is {MAX_RANK_EXCLUDE}",
                self.exclude.len()
            ));
        }
        if let Some(blend) = &self.blend {
            if blend.space == self.space {
                return bad("a blended query must be in the other space".into());
            }
            if !(0.0..=1.0).contains(&blend.weight) {
                return bad(format!(
                    "the blend weight must be between 0 and 1, got {}",
                    blend.weight
                ));
            }
            if blend.vector.is_empty() || !blend.vector.iter().all(|x| x.is_finite()) {
                return bad("the blended query vector is empty or not finite numbers".into());
            }
            let c = &blend.calibration;
            if ![c.shot, c.subtitle]
                .iter()
                .chain(c.ocr.iter())
                .all(|c| c.a.is_finite() && c.b.is_finite())
            {
                return bad("calibration constants must be finite numbers".into());
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankedSegment {
    pub meta: SegmentMeta,
    /// Calibrated confidence in 0..1.
    pub score: f32,
    /// Grouped requests: how many more of this video's segments are among
    /// the shard's best matches.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub more_in_video: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RankResponse {
    pub shard: u32,
    pub segments_indexed: u64,
    /// Of those, segments not yet in the shard's approximate index: found
    /// by an exact scan meanwhile, so a search is correct but slower.
    #[serde(default)]
    pub segments_settling: u64,
    pub hits: Vec<RankedSegment>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::roundtrip::assert_roundtrip;

    fn meta() -> SegmentMeta {
        SegmentMeta {
            segment_id: "v1-0".into(),
            video_id: "v1".into(),
            video_name: "a.mp4".into(),
            index: 0,
            start: 0.0,
            end: 2.5,
            kind: SegmentKind::Subtitle,
            text: Some("hello".into()),
        }
    }

    #[test]
    fn segment_ids_split_back() {
        assert_eq!(
            parse_segment_id(&segment_id("v12ab", 7)),
            Some(("v12ab", 7))
        );
        assert_eq!(parse_segment_id("v1-x"), None);
        assert_eq!(parse_segment_id("a-b-1"), None);
        assert_eq!(parse_segment_id("-1"), None);
    }

    /// A well-formed rank request in `space`.
    fn rank_request(space: Space) -> RankRequest {
        let cal = Calibration { a: 1.0, b: 0.0 };
        RankRequest {
            space,
            vector: vec![0.6, 0.8],
            k: 10,
            calibration: KindCalibration {
                shot: cal,
                subtitle: cal,
                ocr: Some(cal),
            },
            min_score: 0.0,
            terms: vec!["cat".into()],
            filter: Default::default(),
            exclude: vec![],
            group_by_video: false,
            blend: None,
        }
    }

    #[test]
    fn hostile_rank_requests_are_refused() {
        let cal = Calibration { a: 1.0, b: 0.0 };
        let good = rank_request(Space::Text);
        assert!(good.validate().is_ok());
        let probe = RankRequest {
            k: 0,
            vector: vec![],
            ..good.clone()
        };
        assert!(probe.validate().is_ok(), "k = 0 is the readiness probe");
        let hostile = [
            RankRequest {
                k: usize::MAX,
                ..good.clone()
            },
            RankRequest {
                vector: vec![],
                ..good.clone()
            },
            RankRequest {
                vector: vec![f32::NAN, 1.0],
                ..good.clone()
            },
            RankRequest {
                min_score: 2.0,
                ..good.clone()
            },
            RankRequest {
                calibration: KindCalibration {
                    shot: Calibration {
                        a: f32::INFINITY,
                        b: 0.0,
                    },
                    subtitle: cal,
                    ocr: None,
                },
                ..good.clone()
            },
            RankRequest {
                calibration: KindCalibration {
                    ocr: Some(Calibration {
                        a: 1.0,
                        b: f32::NAN,
                    }),
                    ..good.calibration
                },
                ..good.clone()
            },
            RankRequest {
                terms: vec!["x".into(); MAX_RANK_TERMS + 1],
                ..good.clone()
            },
        ];
        for request in hostile {
            let error = request.validate().expect_err("refused");
            assert_eq!(error.error.code, ErrorCode::BadRequest, "{request:?}");
        }
    }

    #[test]
    fn messages_roundtrip() {
        assert_roundtrip(&SegmentLogEntry::Upsert {
            video_id: "v1".into(),
            generation: "g1".into(),
            part: 0,
            parts: 1,
            segments: vec![SegmentRecord {
                meta: meta(),
                text_vector: vec![0.6, 0.8],
                image_vector: None,
                terms: vec!["hello".into()],
            }],
        });
        assert_roundtrip(&SegmentLogEntry::Delete {
            video_id: "v1".into(),
        });
        assert_roundtrip(&rank_request(Space::Image));
        assert_roundtrip(&RankResponse {
            shard: 1,
            segments_indexed: 7,
            segments_settling: 2,
            hits: vec![RankedSegment {
                meta: meta(),
                score: 0.5,
                more_in_video: None,
            }],
        });
    }
}
