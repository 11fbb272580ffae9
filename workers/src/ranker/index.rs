//! Exact scoring: a dot product per segment (all vectors are unit length, so
//! this is cosine similarity), calibrated per segment kind into a confidence,
//! fused with the lexical match for subtitle cues (the better of the two
//! confidences counts), and a bounded heap for the top k.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use vidseek_protocol::rank::{RankRequest, RankedSegment, SegmentRecord, Space};

use super::lexical::LexicalQuery;

/// A score ordered by `total_cmp`, so it can live in a heap.
#[derive(PartialEq)]
struct Score(f32);
impl Eq for Score {}
impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Score {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The `request.k` best segments at or above `request.min_score`, best first.
/// Segments without a vector in the requested space (subtitles have no image
/// vector) or of another dimension are skipped.
pub fn top_k<'a>(
    segments: impl Iterator<Item = &'a SegmentRecord> + Clone,
    request: &RankRequest,
) -> Vec<RankedSegment> {
    let lexical = match request.space {
        Space::Text => LexicalQuery::new(&request.terms, segments.clone()),
        Space::Image => None,
    };
    let mut heap: BinaryHeap<Reverse<(Score, usize)>> = BinaryHeap::with_capacity(request.k + 1);
    let mut kept: Vec<&SegmentRecord> = Vec::new();
    for segment in segments {
        let vector = match request.space {
            Space::Text => Some(&segment.text_vector),
            Space::Image => segment.image_vector.as_ref(),
        };
        let Some(vector) = vector.filter(|v| v.len() == request.vector.len()) else {
            continue;
        };
        let cosine: f32 = vector.iter().zip(&request.vector).map(|(a, b)| a * b).sum();
        let mut score = request
            .calibration
            .for_kind(segment.meta.kind)
            .confidence(cosine);
        if let Some(lexical) = &lexical {
            score = score.max(lexical.confidence(&segment.terms));
        }
        if score < request.min_score {
            continue;
        }
        if heap.len() < request.k {
            heap.push(Reverse((Score(score), kept.len())));
            kept.push(segment);
        } else if heap
            .peek()
            .is_some_and(|Reverse((worst, _))| score > worst.0)
        {
            let Reverse((_, slot)) = heap.pop().expect("non-empty");
            kept[slot] = segment;
            heap.push(Reverse((Score(score), slot)));
        }
    }
    let mut ranked: Vec<RankedSegment> = heap
        .into_iter()
        .map(|Reverse((score, slot))| RankedSegment {
            meta: kept[slot].meta.clone(),
            score: score.0,
        })
        .collect();
    sort_best_first(&mut ranked);
    ranked
}

/// Best score first; ties broken by segment id so results are stable.
pub fn sort_best_first(ranked: &mut [RankedSegment]) {
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then_with(|| a.meta.segment_id.cmp(&b.meta.segment_id))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use vidseek_protocol::encode::Calibration;
    use vidseek_protocol::rank::{KindCalibration, SegmentKind, SegmentMeta};

    fn segment(
        index: u32,
        kind: SegmentKind,
        text: [f32; 2],
        image: Option<[f32; 2]>,
    ) -> SegmentRecord {
        SegmentRecord {
            meta: SegmentMeta {
                segment_id: format!("v-{index}"),
                video_id: "v".into(),
                video_name: "v.mp4".into(),
                index,
                start: 0.0,
                end: 1.0,
                kind,
                text: None,
            },
            text_vector: text.to_vec(),
            image_vector: image.map(|v| v.to_vec()),
            terms: vec![],
        }
    }

    fn request(space: Space, vector: [f32; 2], k: usize, min_score: f32) -> RankRequest {
        let identity = Calibration { a: 1.0, b: 0.0 };
        RankRequest {
            space,
            vector: vector.to_vec(),
            k,
            calibration: KindCalibration {
                shot: identity,
                subtitle: Calibration { a: 2.0, b: 0.0 },
            },
            min_score,
            terms: vec![],
        }
    }

    /// Reference: score everything, sort, truncate.
    fn brute_force(segments: &[SegmentRecord], request: &RankRequest) -> Vec<String> {
        let mut all: Vec<RankedSegment> = segments
            .iter()
            .filter_map(|s| {
                let v = match request.space {
                    Space::Text => Some(&s.text_vector),
                    Space::Image => s.image_vector.as_ref(),
                }?;
                let cos: f32 = v.iter().zip(&request.vector).map(|(a, b)| a * b).sum();
                let score = request.calibration.for_kind(s.meta.kind).confidence(cos);
                (score >= request.min_score).then(|| RankedSegment {
                    meta: s.meta.clone(),
                    score,
                })
            })
            .collect();
        sort_best_first(&mut all);
        all.truncate(request.k);
        all.into_iter().map(|r| r.meta.segment_id).collect()
    }

    #[test]
    fn heap_selection_matches_a_full_sort() {
        let segments: Vec<SegmentRecord> = (0..200u32)
            .map(|i| {
                let angle = (i as f32 * 0.7).sin() * 3.0;
                let kind = if i % 3 == 0 {
                    SegmentKind::Subtitle
                } else {
                    SegmentKind::Shot
                };
                let image = (i % 3 != 0).then_some([angle.sin(), angle.cos()]);
                segment(i, kind, [angle.cos(), angle.sin()], image)
            })
            .collect();
        for (space, k, min) in [
            (Space::Text, 10, 0.0),
            (Space::Image, 7, 0.0),
            (Space::Text, 100, 0.6),
            (Space::Text, 1000, 0.0),
        ] {
            let req = request(space, [0.6, 0.8], k, min);
            let got: Vec<String> = top_k(segments.iter(), &req)
                .into_iter()
                .map(|r| r.meta.segment_id)
                .collect();
            assert_eq!(
                got,
                brute_force(&segments, &req),
                "{space:?} k={k} min={min}"
            );
        }
    }

    #[test]
    fn subtitles_have_no_image_vector_and_dimensions_must_match() {
        let segments = [
            segment(0, SegmentKind::Subtitle, [1.0, 0.0], None),
            segment(1, SegmentKind::Shot, [0.0, 1.0], Some([1.0, 0.0])),
        ];
        let hits = top_k(segments.iter(), &request(Space::Image, [1.0, 0.0], 10, 0.0));
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].meta.segment_id, "v-1");
        let mut wrong_dim = request(Space::Text, [1.0, 0.0], 10, 0.0);
        wrong_dim.vector.push(0.0);
        assert!(top_k(segments.iter(), &wrong_dim).is_empty());
    }
}
