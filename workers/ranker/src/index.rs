//! Exact scoring: a dot product per row of the shard's matrix for the
//! requested space (all vectors are unit length, so this is cosine
//! similarity), calibrated per segment kind into a confidence, fused with the
//! lexical match for subtitle cues (the better of the two confidences
//! counts), and a bounded heap for the top k.
//!
//! Dot products are `simsimd`'s, which picks the widest SIMD the CPU has at
//! run time. A large shard is split into contiguous row ranges scanned on
//! scoped threads, each keeping its own heap; the heaps are merged at the
//! end. The caller runs this off the async runtime: it is CPU-bound.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Range;

use simsimd::SpatialSimilarity;
use vidseek_protocol::encode::Calibration;
use vidseek_protocol::rank::{RankRequest, RankedSegment, SegmentKind, Space};

use super::lexical::LexicalQuery;
use super::store::{Matrix, SegmentIndex};

/// Fewer rows than this per thread are not worth a thread: starting one
/// costs tens of microseconds, and on a busy machine waiting for it to be
/// scheduled costs more than scanning a small shard alone.
const MIN_ROWS_PER_THREAD: usize = 32_768;

/// A score ordered by `total_cmp`, so it can live in a heap.
#[derive(Clone, Copy, PartialEq)]
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
/// vector) are not candidates; a query of another dimension than the shard's
/// finds nothing.
pub fn top_k(index: &SegmentIndex, request: &RankRequest) -> Vec<RankedSegment> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    top_k_on(index, request, threads, MIN_ROWS_PER_THREAD)
}

fn top_k_on(
    index: &SegmentIndex,
    request: &RankRequest,
    threads: usize,
    min_rows_per_thread: usize,
) -> Vec<RankedSegment> {
    let (matrix, slots) = match request.space {
        Space::Text => (index.text_vectors(), None),
        Space::Image => (index.image_vectors(), Some(index.image_slots())),
    };
    if request.k == 0 || matrix.dim() != request.vector.len() {
        return vec![];
    }
    let lexical = match request.space {
        Space::Text => LexicalQuery::new(&request.terms, index.cues(), |term| {
            index.document_frequency(term)
        }),
        Space::Image => None,
    };
    let scan = Scan {
        index,
        matrix,
        slots,
        lexical: lexical.as_ref(),
        request,
    };
    let rows = matrix.rows();
    let threads = threads.min(rows / min_rows_per_thread).max(1);
    let best: Vec<(Score, u32)> = if threads == 1 {
        scan.rows(0..rows)
    } else {
        let per_thread = rows.div_ceil(threads);
        std::thread::scope(|scope| {
            let scan = &scan;
            // The calling thread scans the first range itself.
            let workers: Vec<_> = (per_thread..rows)
                .step_by(per_thread)
                .map(|start| scope.spawn(move || scan.rows(start..(start + per_thread).min(rows))))
                .collect();
            let mut best = scan.rows(0..per_thread);
            for worker in workers {
                best.extend(worker.join().expect("a scan thread panicked"));
            }
            best
        })
    };
    let mut ranked: Vec<RankedSegment> = best
        .into_iter()
        .map(|(score, slot)| RankedSegment {
            meta: index.segment(slot as usize).meta(),
            score: score.0,
        })
        .collect();
    sort_best_first(&mut ranked);
    ranked.truncate(request.k);
    ranked
}

struct Scan<'a> {
    index: &'a SegmentIndex,
    matrix: &'a Matrix,
    /// Row → slot, where rows are not slots (the image space).
    slots: Option<&'a [u32]>,
    lexical: Option<&'a LexicalQuery<'a>>,
    request: &'a RankRequest,
}

impl Scan<'_> {
    /// The best `k` of `rows` as (score, slot), in no particular order.
    fn rows(&self, rows: Range<usize>) -> Vec<(Score, u32)> {
        let request = self.request;
        let mut heap: BinaryHeap<Reverse<(Score, u32)>> = BinaryHeap::with_capacity(request.k + 1);
        let mut floor = CosineFloor::new(request, request.min_score);
        let block = self.matrix.block(rows.clone());
        for (row, vector) in rows.zip(block.chunks_exact(self.matrix.dim())) {
            let slot = self.slots.map_or(row as u32, |slots| slots[row]);
            let segment = self.index.segment(slot as usize);
            let cosine = f32::dot(vector, &request.vector).unwrap_or(0.0) as f32;
            // Most rows cannot enter a full heap: skip their calibration. A
            // cue's lexical match may still lift it, so cues are scored.
            if cosine < floor.of(segment.kind) && segment.terms.is_empty() {
                continue;
            }
            let mut score = request
                .calibration
                .for_kind(segment.kind)
                .confidence(cosine);
            if let Some(lexical) = self.lexical {
                score = score.max(lexical.confidence(&segment.terms));
            }
            if score < request.min_score {
                continue;
            }
            if heap.len() < request.k {
                heap.push(Reverse((Score(score), slot)));
            } else if heap
                .peek()
                .is_some_and(|Reverse((worst, _))| score > worst.0)
            {
                heap.pop();
                heap.push(Reverse((Score(score), slot)));
            } else {
                continue;
            }
            if heap.len() == request.k
                && let Some(Reverse((worst, _))) = heap.peek()
            {
                floor = CosineFloor::new(request, worst.0);
            }
        }
        heap.into_iter().map(|Reverse(best)| best).collect()
    }
}

/// The cosine below which a segment of each kind cannot reach a score:
/// calibration is a logistic `σ(a·cos + b)`, increasing when `a > 0`, so
/// `σ(a·cos + b) ≥ s ⇔ cos ≥ (logit(s) − b) / a`. Where that does not
/// hold (or `s` is 0 or 1) the floor is −∞ and nothing is skipped.
struct CosineFloor {
    shot: f32,
    subtitle: f32,
}

impl CosineFloor {
    /// Kept a little low, so float rounding never skips a row that the
    /// exact comparison would keep.
    const SLACK: f32 = 1e-3;

    fn new(request: &RankRequest, score: f32) -> CosineFloor {
        let of = |calibration: Calibration| {
            if calibration.a > 0.0 && score > 0.0 && score < 1.0 {
                ((score / (1.0 - score)).ln() - calibration.b) / calibration.a - Self::SLACK
            } else {
                f32::NEG_INFINITY
            }
        };
        CosineFloor {
            shot: of(request.calibration.shot),
            subtitle: of(request.calibration.subtitle),
        }
    }

    fn of(&self, kind: SegmentKind) -> f32 {
        match kind {
            SegmentKind::Shot => self.shot,
            SegmentKind::Subtitle => self.subtitle,
        }
    }
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
    use vidseek_protocol::rank::{
        KindCalibration, SegmentKind, SegmentLogEntry, SegmentMeta, SegmentRecord,
    };

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

    fn index_of(segments: &[SegmentRecord]) -> SegmentIndex {
        let mut index = SegmentIndex::default();
        index.apply(SegmentLogEntry::Upsert {
            video_id: "v".into(),
            generation: "g".into(),
            part: 0,
            parts: 1,
            segments: segments.to_vec(),
        });
        index
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
        let index = index_of(&segments);
        for (space, k, min) in [
            (Space::Text, 10, 0.0),
            (Space::Image, 7, 0.0),
            (Space::Text, 100, 0.6),
            (Space::Text, 1000, 0.0),
        ] {
            let req = request(space, [0.6, 0.8], k, min);
            // One thread, and rows split over three threads.
            for (threads, min_rows) in [(1, MIN_ROWS_PER_THREAD), (3, 16)] {
                let got: Vec<String> = top_k_on(&index, &req, threads, min_rows)
                    .into_iter()
                    .map(|r| r.meta.segment_id)
                    .collect();
                assert_eq!(
                    got,
                    brute_force(&segments, &req),
                    "{space:?} k={k} min={min} threads={threads}"
                );
            }
        }
    }

    #[test]
    fn subtitles_have_no_image_vector_and_dimensions_must_match() {
        let segments = [
            segment(0, SegmentKind::Subtitle, [1.0, 0.0], None),
            segment(1, SegmentKind::Shot, [0.0, 1.0], Some([1.0, 0.0])),
        ];
        let index = index_of(&segments);
        let hits = top_k(&index, &request(Space::Image, [1.0, 0.0], 10, 0.0));
        assert_eq!(hits.len(), 1);
        assert_eq!(hits[0].meta.segment_id, "v-1");
        let mut wrong_dim = request(Space::Text, [1.0, 0.0], 10, 0.0);
        wrong_dim.vector.push(0.0);
        assert!(top_k(&index, &wrong_dim).is_empty());
    }

    #[test]
    fn a_cue_that_says_the_query_words_is_found_even_far_from_the_query() {
        let mut cue = segment(0, SegmentKind::Subtitle, [0.0, 1.0], None);
        cue.terms = vec!["zhivago".into(), "doctor".into()];
        let mut other = segment(1, SegmentKind::Subtitle, [0.0, 1.0], None);
        other.terms = vec!["garden".into()];
        let shot = segment(2, SegmentKind::Shot, [0.9, 0.1], Some([1.0, 0.0]));
        let index = index_of(&[cue, other, shot]);
        let mut req = request(Space::Text, [1.0, 0.0], 3, 0.0);
        let vector_only: Vec<String> = top_k(&index, &req)
            .into_iter()
            .map(|r| r.meta.segment_id)
            .collect();
        assert_eq!(vector_only[0], "v-2");
        req.terms = vec!["zhivago".into(), "doctor".into()];
        let fused = top_k(&index, &req);
        assert_eq!(fused[0].meta.segment_id, "v-0");
        assert!(fused[0].score > 0.9, "{}", fused[0].score);
    }
}
