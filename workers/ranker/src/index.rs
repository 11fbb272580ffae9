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
//!
//! From [`SegmentIndex::exact_below`] rows on, a space is searched through
//! its approximate graphs instead ([`crate::ann`]): each segment kind's
//! graph proposes its nearest rows by cosine, the rows still waiting to
//! enter a graph and the cues holding a query term are added, and every
//! candidate is scored exactly as the full scan scores it. Calibration is
//! increasing in the cosine within a kind, so a kind's best scores are
//! among its nearest rows, and a cue that a lexical match lifts is a
//! candidate through its terms: the answer is the exact scan's, except
//! where the graph misses a true neighbour. A calibration that is not
//! increasing (`a ≤ 0`) is scanned exactly. The exact scan is also the
//! reference the graphs' recall is measured against (`bench/ranker`).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ops::Range;

use std::collections::{HashMap, HashSet};
use vidseek_protocol::encode::Calibration;

use vidseek_protocol::rank::{Blend, MAX_RANK_K, RankRequest, RankedSegment, SegmentKind, Space};

use super::ann::GraphId;
use super::lexical::LexicalQuery;
use super::store::{Matrix, NO_ROW, Segment, SegmentIndex, dot, f16, half};

/// Fewer rows than this per thread are not worth a thread: starting one
/// costs tens of microseconds, and on a busy machine waiting for it to be
/// scheduled costs more than scanning a small shard alone.
const MIN_ROWS_PER_THREAD: usize = 32_768;

/// Each kind's graph is asked for this many candidates per requested hit
/// (and at least [`MIN_CANDIDATES`]), all re-scored exactly: a wide list
/// is what keeps recall where many rows sit at nearly the same cosine (a
/// dense cluster of similar scenes), and the graph's vectors are quantised,
/// so a true neighbour may rank a little low among them. Measured on 100k
/// 384-d vectors in clusters of 1,000: 40 candidates gave recall@10 0.953,
/// 200 gave 0.990 (1.4 ms).
const CANDIDATES_PER_HIT: usize = 20;
const MIN_CANDIDATES: usize = 100;
/// The widest a graph's candidate list grows (see [`Scan::approximate`]):
/// searching it costs a few milliseconds at a million rows.
const MAX_CANDIDATES: usize = 3200;
/// Rows of a space per candidate asked of its graphs, at least: 200
/// candidates at 200,000 rows, 1,000 at a million.
const ROWS_PER_CANDIDATE: usize = 1000;

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
    top_k_where(index, request, &|_| true)
}

/// What a filter says about a segment: whether it may be ranked.
pub type Keep<'a> = &'a (dyn Fn(&Segment) -> bool + Sync);

/// [`top_k`] among the segments `keep` accepts, applied before the top k
/// is chosen (in the exact scan per row, in the graphs during their search)
/// so a filter never empties a full answer.
pub fn top_k_where(index: &SegmentIndex, request: &RankRequest, keep: Keep) -> Vec<RankedSegment> {
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    top_k_on(index, request, keep, threads, MIN_ROWS_PER_THREAD)
}

/// Whether a segment passes the request's filter and is not excluded.
pub fn admitted_by(request: &RankRequest) -> impl Fn(&Segment) -> bool + Sync + '_ {
    |segment| {
        request
            .filter
            .accepts(&segment.video.id, segment.start, segment.end, segment.kind)
            && !request.exclude.iter().any(|id| **id == *segment.segment_id)
    }
}

/// What a rank request asks of a shard: its top k under its filter, one
/// per video when it groups.
pub fn answer(index: &SegmentIndex, request: &RankRequest) -> Vec<RankedSegment> {
    let admitted = admitted_by(request);
    if request.group_by_video {
        top_k_grouped(index, request, &admitted)
    } else {
        top_k_where(index, request, &admitted)
    }
}

/// The best segment of each of the `request.k` best videos, best first,
/// each with how many more of its video's segments are among the best
/// [`MAX_RANK_K`] matches of the pass that found it. A pass ranks the
/// segments of the videos not yet found, so one video with many matching
/// segments cannot crowd out the others.
pub fn top_k_grouped(
    index: &SegmentIndex,
    request: &RankRequest,
    keep: Keep,
) -> Vec<RankedSegment> {
    let wide = RankRequest {
        k: MAX_RANK_K,
        group_by_video: false,
        ..request.clone()
    };
    let mut found: HashSet<String> = HashSet::new();
    let mut groups: Vec<RankedSegment> = vec![];
    while groups.len() < request.k {
        let unfound = |segment: &Segment| keep(segment) && !found.contains(&segment.video.id);
        let hits = top_k_where(index, &wide, &unfound);
        let exhausted = hits.len() < wide.k;
        let mut new_groups: Vec<RankedSegment> = vec![];
        for hit in hits {
            match new_groups
                .iter_mut()
                .find(|group| group.meta.video_id == hit.meta.video_id)
            {
                Some(group) => *group.more_in_video.get_or_insert(0) += 1,
                None => new_groups.push(RankedSegment {
                    more_in_video: Some(0),
                    ..hit
                }),
            }
        }
        found.extend(new_groups.iter().map(|g| g.meta.video_id.clone()));
        groups.extend(new_groups);
        if exhausted {
            break;
        }
    }
    groups.truncate(request.k);
    groups
}

/// Every one of `slots` scored against the request as a search scores it
/// (0 for a segment without a vector in the query's space), in the order
/// given: a video's relevance along its timeline.
pub fn score_slots(
    index: &SegmentIndex,
    request: &RankRequest,
    slots: &[u32],
) -> Vec<RankedSegment> {
    let Some(scan) = Scan::new(index, request, &|_| true) else {
        return vec![];
    };
    slots
        .iter()
        .map(|&slot| RankedSegment {
            meta: index.segment(slot as usize).meta(),
            score: scan.score_slot(slot).unwrap_or(0.0),
            more_in_video: None,
        })
        .collect()
}

fn top_k_on(
    index: &SegmentIndex,
    request: &RankRequest,
    keep: Keep,
    threads: usize,
    min_rows_per_thread: usize,
) -> Vec<RankedSegment> {
    if request.k == 0 {
        return vec![];
    }
    let Some(scan) = Scan::new(index, request, keep) else {
        return vec![];
    };
    let matrix = scan.matrix;
    let rows = matrix.rows();
    let threads = threads.min(rows / min_rows_per_thread).max(1);
    let increasing = GraphId::ALL
        .iter()
        .all(|id| request.calibration.for_kind(id.kind).a > 0.0);
    // While most of a space still waits for its graphs (a rebuild), a
    // plain scan is the faster exact answer. A blended query's score is
    // not one cosine's, so the graphs cannot propose its best rows.
    let settled = index.unsettled_in(request.space) * 4 < rows;
    let graphs_apply = increasing && settled && request.blend.is_none();
    let videos = &request.filter.videos;
    let approximate = (rows >= index.exact_below() && graphs_apply && videos.is_empty())
        .then(|| scan.approximate())
        .flatten();
    let best: Vec<(Score, u32)> = if !videos.is_empty() {
        // Restricted to a few videos: their own rows are the candidates.
        let mut slots: Vec<u32> = videos.iter().flat_map(|v| index.video_slots(v)).collect();
        slots.sort_unstable();
        slots.dedup();
        scan.slots(slots)
    } else if let Some(best) = approximate {
        best
    } else if threads == 1 {
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
            more_in_video: None,
        })
        .collect();
    sort_best_first(&mut ranked);
    ranked.truncate(request.k);
    ranked
}

/// The best rows among a graph search's candidates, and the deepest
/// position in its graph's list that any of them held.
struct Proposal {
    best: Vec<(Score, u32)>,
    deepest: Option<usize>,
}

struct Scan<'a> {
    index: &'a SegmentIndex,
    matrix: &'a Matrix,
    /// The request's vector, rounded as the matrix stores its rows.
    query: Vec<f16>,
    /// Row → slot, where rows are not slots (the image space).
    slots: Option<&'a [u32]>,
    lexical: Option<LexicalQuery<'a>>,
    blend: Option<BlendScan<'a>>,
    request: &'a RankRequest,
    keep: Keep<'a>,
}

/// The second query of a blended request, against its own space's matrix.
struct BlendScan<'a> {
    blend: &'a Blend,
    matrix: &'a Matrix,
    query: Vec<f16>,
}

impl BlendScan<'_> {
    /// The blended query's confidence for a segment: 0 without a vector
    /// in its space (or of its dimension).
    fn confidence(&self, slot: u32, segment: &Segment) -> f32 {
        let row = match self.blend.space {
            Space::Text => slot,
            Space::Image => segment.image_row,
        };
        if row == NO_ROW || self.matrix.dim() != self.blend.vector.len() {
            return 0.0;
        }
        let cosine = dot(self.matrix.row(row as usize), &self.query);
        self.blend
            .calibration
            .for_kind(segment.kind)
            .confidence(cosine)
    }
}

fn matrix_of(index: &SegmentIndex, space: Space) -> &Matrix {
    match space {
        Space::Text => index.text_vectors(),
        Space::Image => index.image_vectors(),
    }
}

/// The best `k` scores seen so far, and the cosine floor they set.
struct Best {
    heap: BinaryHeap<Reverse<(Score, u32)>>,
    floor: CosineFloor,
}

impl<'a> Scan<'a> {
    /// `None` when the query's dimension is not the shard's: it can match
    /// nothing here.
    fn new(index: &'a SegmentIndex, request: &'a RankRequest, keep: Keep<'a>) -> Option<Scan<'a>> {
        let matrix = matrix_of(index, request.space);
        if matrix.dim() != request.vector.len() {
            return None;
        }
        let lexical = match request.space {
            Space::Text => LexicalQuery::new(&request.terms, index.cues(), |term| {
                index.document_frequency(term)
            }),
            Space::Image => None,
        };
        Some(Scan {
            index,
            matrix,
            query: half(&request.vector),
            slots: (request.space == Space::Image).then(|| index.image_slots()),
            lexical,
            blend: request.blend.as_ref().map(|blend| BlendScan {
                blend,
                matrix: matrix_of(index, blend.space),
                query: half(&blend.vector),
            }),
            request,
            keep,
        })
    }

    fn best(&self) -> Best {
        Best {
            heap: BinaryHeap::with_capacity(self.request.k + 1),
            floor: CosineFloor::new(self.request, self.request.min_score),
        }
    }

    /// The best `k` of `rows` as (score, slot), in no particular order.
    fn rows(&self, rows: Range<usize>) -> Vec<(Score, u32)> {
        let mut best = self.best();
        let block = self.matrix.block(rows.clone());
        for (row, vector) in rows.zip(block.chunks_exact(self.matrix.dim())) {
            let slot = self.slots.map_or(row as u32, |slots| slots[row]);
            self.consider(&mut best, slot, vector);
        }
        best.heap.into_iter().map(|Reverse(best)| best).collect()
    }

    /// The best `k` among the graphs' candidates, the rows still waiting
    /// for a graph and the cues holding a query term, scored exactly;
    /// `None` if a graph could not answer.
    ///
    /// The graphs order their candidates by the quantised vectors, so in a
    /// dense cluster (many rows at nearly one cosine) the true best may sit
    /// past the cut. When an exact winner comes from the back half of a
    /// graph's list, the list was probably cut too short: it is widened
    /// fourfold, up to [`MAX_CANDIDATES`], and scored again.
    fn approximate(&self) -> Option<Vec<(Score, u32)>> {
        let request = self.request;
        // HNSW's recall at a fixed beam falls as the graph grows: the beam
        // grows with the space, one candidate per ROWS_PER_CANDIDATE rows.
        let mut count = (request.k.saturating_mul(CANDIDATES_PER_HIT))
            .max(MIN_CANDIDATES)
            .max(self.matrix.rows() / ROWS_PER_CANDIDATE)
            .min(MAX_CANDIDATES);
        loop {
            let Proposal { best, deepest } = self.approximate_with(count)?;
            let cut_short = deepest.is_some_and(|position| position * 2 >= count);
            if !cut_short || count >= MAX_CANDIDATES {
                return Some(best);
            }
            count = (count * 4).min(MAX_CANDIDATES);
        }
    }

    /// [`Scan::approximate`] with `count` candidates per graph, and the
    /// deepest position in its graph's list of any of the best.
    fn approximate_with(&self, count: usize) -> Option<Proposal> {
        let request = self.request;
        let index = self.index;
        let mut candidates: Vec<u32> = vec![];
        // Slot → position in the list of the graph that proposed it.
        let mut positions: HashMap<u32, usize> = HashMap::new();
        for id in GraphId::ALL.iter().filter(|id| id.space == request.space) {
            let graph = index.graph(*id);
            let live = |key| {
                index
                    .slot_of(key)
                    .is_some_and(|slot| (self.keep)(index.segment(slot as usize)))
            };
            let found = graph.search(&request.vector, count, live)?;
            for (position, slot) in found
                .into_iter()
                .filter_map(|key| index.slot_of(key))
                .enumerate()
            {
                candidates.push(slot);
                positions.insert(slot, position);
            }
            candidates.extend(graph.pending.iter().filter_map(|&key| index.slot_of(key)));
        }
        if self.lexical.is_some() {
            for term in &request.terms {
                candidates.extend(index.cue_slots(term));
            }
        }
        candidates.sort_unstable();
        candidates.dedup();
        let best = self.slots(candidates);
        let deepest = best
            .iter()
            .filter_map(|(_, slot)| positions.get(slot))
            .max()
            .copied();
        Some(Proposal { best, deepest })
    }

    /// The best `k` of the segments in `slots`, scored exactly.
    fn slots(&self, slots: impl IntoIterator<Item = u32>) -> Vec<(Score, u32)> {
        let mut best = self.best();
        for slot in slots {
            if let Some(vector) = self.row_of(slot) {
                self.consider(&mut best, slot, vector);
            }
        }
        best.heap.into_iter().map(|Reverse(best)| best).collect()
    }

    /// A segment's vector in the query's space, if it has one.
    fn row_of(&self, slot: u32) -> Option<&'a [f16]> {
        let row = match self.request.space {
            Space::Text => slot,
            Space::Image => self.index.segment(slot as usize).image_row,
        };
        (row != NO_ROW).then(|| self.matrix.row(row as usize))
    }

    /// One segment's score, as [`Scan::consider`] computes it, ignoring
    /// the filter; `None` without a vector in the query's space.
    fn score_slot(&self, slot: u32) -> Option<f32> {
        let vector = self.row_of(slot)?;
        let cosine = dot(vector, &self.query);
        Some(self.score(slot, self.index.segment(slot as usize), cosine))
    }

    /// The calibrated confidence for a segment at `cosine`, lifted by a
    /// lexical match and mixed with the blended query's.
    fn score(&self, slot: u32, segment: &Segment, cosine: f32) -> f32 {
        let request = self.request;
        let mut score = request
            .calibration
            .for_kind(segment.kind)
            .confidence(cosine);
        if let Some(lexical) = &self.lexical {
            let recognised = segment.kind == SegmentKind::Ocr;
            score = score.max(lexical.confidence(&segment.terms, recognised));
        }
        if let Some(blend) = &self.blend {
            let weight = blend.blend.weight;
            score = (1.0 - weight) * score + weight * blend.confidence(slot, segment);
        }
        score
    }

    /// Scores one row and keeps it if it is among the best so far.
    fn consider(&self, best: &mut Best, slot: u32, vector: &[f16]) {
        let request = self.request;
        let segment = self.index.segment(slot as usize);
        if !(self.keep)(segment) {
            return;
        }
        let cosine = dot(vector, &self.query);
        // Most rows cannot enter a full heap: skip their calibration. A
        // cue's lexical match may still lift it, so cues are scored.
        if cosine < best.floor.of(segment.kind) && segment.terms.is_empty() {
            return;
        }
        let score = self.score(slot, segment, cosine);
        if score < request.min_score {
            return;
        }
        let heap = &mut best.heap;
        if heap.len() < request.k {
            heap.push(Reverse((Score(score), slot)));
        } else if heap
            .peek()
            .is_some_and(|Reverse((worst, _))| score > worst.0)
        {
            heap.pop();
            heap.push(Reverse((Score(score), slot)));
        } else {
            return;
        }
        if heap.len() == request.k
            && let Some(Reverse((worst, _))) = heap.peek()
        {
            best.floor = CosineFloor::new(request, worst.0);
        }
    }
}

/// The cosine below which a segment of each kind cannot reach a score:
/// calibration is a logistic `σ(a·cos + b)`, increasing when `a > 0`, so
/// `σ(a·cos + b) ≥ s ⇔ cos ≥ (logit(s) − b) / a`. Where that does not
/// hold (or `s` is 0 or 1) the floor is −∞ and nothing is skipped.
struct CosineFloor {
    shot: f32,
    subtitle: f32,
    ocr: f32,
}

impl CosineFloor {
    /// Kept a little low, so float rounding never skips a row that the
    /// exact comparison would keep.
    const SLACK: f32 = 1e-3;

    fn new(request: &RankRequest, score: f32) -> CosineFloor {
        // A blended score is not increasing in this query's cosine alone.
        let bounded = request.blend.is_none() && score > 0.0 && score < 1.0;
        let of = |calibration: Calibration| {
            if calibration.a > 0.0 && bounded {
                ((score / (1.0 - score)).ln() - calibration.b) / calibration.a - Self::SLACK
            } else {
                f32::NEG_INFINITY
            }
        };
        CosineFloor {
            shot: of(request.calibration.shot),
            subtitle: of(request.calibration.subtitle),
            ocr: of(request.calibration.for_kind(SegmentKind::Ocr)),
        }
    }

    fn of(&self, kind: SegmentKind) -> f32 {
        match kind {
            SegmentKind::Shot => self.shot,
            SegmentKind::Subtitle => self.subtitle,
            SegmentKind::Ocr => self.ocr,
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
    use crate::store::full;
    use crate::testing::{self, Rng};
    use vidseek_protocol::encode::Calibration;
    use vidseek_protocol::query::SearchFilter;
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
                ocr: None,
            },
            min_score,
            terms: vec![],
            filter: Default::default(),
            exclude: vec![],
            group_by_video: false,
            blend: None,
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
                // Both sides rounded as the matrices store them.
                let cos = dot(&half(v), &half(&request.vector));
                let score = request.calibration.for_kind(s.meta.kind).confidence(cos);
                (score >= request.min_score).then(|| RankedSegment {
                    meta: s.meta.clone(),
                    score,
                    more_in_video: None,
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
                let got: Vec<String> = top_k_on(&index, &req, &|_| true, threads, min_rows)
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

    /// The exact answer to `request`: the same index scanned in full.
    fn exact(index: &mut SegmentIndex, request: &RankRequest) -> Vec<String> {
        let below = index.exact_below();
        index.set_exact_below(usize::MAX);
        let hits = testing::ids(&top_k(index, request));
        index.set_exact_below(below);
        hits
    }

    /// Mean share of the exact top-10 that the graphs' answer holds, over
    /// text and image queries; for a query with terms, every cue holding a
    /// term that the exact answer ranks must be there (cues come from the
    /// postings, not the graphs; only vector neighbours may be missed).
    fn recall(rng: &mut Rng, index: &mut SegmentIndex, gone: &[String]) -> f64 {
        let (mut found, mut wanted) = (0, 0);
        for i in 0..40 {
            let space = if i % 2 == 0 {
                Space::Text
            } else {
                Space::Image
            };
            let terms: &[&str] = if i % 4 == 0 { &["w7"] } else { &[] };
            let request = testing::request(rng, space, terms);
            let want = exact(index, &request);
            let got = testing::ids(&top_k(index, &request));
            assert_eq!(got.len(), want.len());
            let cues: Vec<String> = terms
                .iter()
                .flat_map(|term| index.cue_slots(term).collect::<Vec<_>>())
                .map(|slot| index.segment(slot as usize).meta().segment_id)
                .collect();
            for id in want.iter().filter(|id| cues.contains(id)) {
                assert!(
                    got.contains(id),
                    "lexical hit {id} missing: {got:?} vs {want:?}"
                );
            }
            for id in &got {
                let video = id.split('-').next().unwrap_or_default();
                assert!(!gone.iter().any(|g| g == video), "{id} was removed");
            }
            found += got.iter().filter(|id| want.contains(id)).count();
            wanted += want.len();
        }
        found as f64 / wanted as f64
    }

    #[test]
    fn the_graphs_find_what_the_exact_scan_finds() {
        let mut rng = Rng(7);
        let mut index = testing::shard(&mut rng, 60, 0);
        index.settle_all();
        assert_eq!(index.unsettled(), 0);
        let recall = recall(&mut rng, &mut index, &[]);
        assert!(recall >= 0.95, "recall@10 {recall}");
    }

    #[test]
    fn a_filter_applies_before_the_top_k_on_both_paths() {
        let mut rng = Rng(17);
        let mut index = testing::shard(&mut rng, 40, 0);
        index.settle_all();
        let not_v3 = |segment: &Segment| segment.meta().video_id != "v3";
        let mut filtered = testing::shard(&mut Rng(17), 40, 0);
        filtered.apply(SegmentLogEntry::Delete {
            video_id: "v3".into(),
        });
        for exact_below in [usize::MAX, 0] {
            index.set_exact_below(exact_below);
            for i in 0..10 {
                let space = if i % 2 == 0 {
                    Space::Text
                } else {
                    Space::Image
                };
                // A query at one of v3's own vectors: unfiltered, v3 wins.
                let mut request = testing::request(&mut rng, space, &[]);
                let slot = (0..index.len())
                    .find(|&s| !not_v3(index.segment(s)) && index.segment(s).image_row != NO_ROW)
                    .unwrap();
                let row = match space {
                    Space::Text => slot,
                    Space::Image => index.segment(slot).image_row as usize,
                };
                let matrix = match space {
                    Space::Text => index.text_vectors(),
                    Space::Image => index.image_vectors(),
                };
                request.vector = full(matrix.row(row));
                assert!(testing::ids(&top_k(&index, &request))[0].starts_with("v3-"));
                let got = testing::ids(&top_k_where(&index, &request, &not_v3));
                assert_eq!(got.len(), request.k);
                assert!(got.iter().all(|id| !id.starts_with("v3-")), "{got:?}");
                if exact_below == usize::MAX {
                    assert_eq!(got, testing::ids(&top_k(&filtered, &request)));
                }
            }
        }
    }

    #[test]
    fn removed_and_replaced_segments_never_come_back_from_the_graphs() {
        let mut rng = Rng(11);
        let mut index = testing::shard(&mut rng, 40, 0);
        index.settle_all();
        let epoch = index.graphs[0].epoch;
        let gone: Vec<String> = (0..2).map(|v| format!("v{v}")).collect();
        for video in &gone {
            index.apply(SegmentLogEntry::Delete {
                video_id: video.clone(),
            });
        }
        for v in 2..4 {
            index.apply(testing::video(&mut rng, &format!("v{v}"), "g2", 50));
        }
        assert_eq!(index.graphs[0].epoch, epoch, "not worn enough to rebuild");
        // The replacements wait outside the graphs and are scored exactly,
        // then enter them.
        assert!(index.unsettled() > 0);
        for _ in 0..2 {
            let recall = recall(&mut rng, &mut index, &gone);
            assert!(recall >= 0.95, "recall@10 {recall}");
            index.settle_all();
        }
    }

    #[test]
    fn heavy_churn_rebuilds_the_graphs_under_new_keys() {
        let mut rng = Rng(13);
        let mut index = testing::shard(&mut rng, 20, 0);
        index.settle_all();
        let epoch = index.graphs[0].epoch;
        for v in 0..8 {
            index.apply(testing::video(&mut rng, &format!("v{v}"), "g2", 50));
        }
        assert!(index.graphs[0].epoch > epoch, "rebuilt");
        assert!(index.key_slots.len() < index.len() + 400, "keys compacted");
        index.settle_all();
        let recall = recall(&mut rng, &mut index, &[]);
        assert!(recall >= 0.95, "recall@10 {recall}");
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

    /// Every segment of `index` scored against `request` (no filter), best
    /// first: the reference the filtered and grouped answers are checked
    /// against.
    fn all_scored(index: &SegmentIndex, request: &RankRequest) -> Vec<RankedSegment> {
        let slots: Vec<u32> = (0..index.len() as u32).collect();
        let mut all: Vec<RankedSegment> = score_slots(index, request, &slots)
            .into_iter()
            .filter(|hit| match request.space {
                Space::Text => true,
                Space::Image => hit.meta.kind == SegmentKind::Shot,
            })
            .collect();
        sort_best_first(&mut all);
        all
    }

    #[test]
    fn videos_time_range_kinds_and_exclusions_filter_before_the_top_k() {
        let mut rng = Rng(23);
        let index = testing::shard(&mut rng, 20, usize::MAX);
        for space in [Space::Text, Space::Image] {
            let mut request = testing::request(&mut rng, space, &["common"]);
            request.filter = SearchFilter {
                videos: vec!["v3".into(), "v7".into(), "v3".into()],
                from: Some(10.0),
                to: Some(30.0),
                kinds: vec![SegmentKind::Shot, SegmentKind::Subtitle],
            };
            let first = all_scored(&index, &request)
                .into_iter()
                .find(|hit| hit.meta.video_id == "v7" && hit.meta.start >= 10.0)
                .unwrap();
            request.exclude = vec![first.meta.segment_id.clone()];
            let expected: Vec<String> = all_scored(&index, &request)
                .into_iter()
                .filter(|hit| {
                    let m = &hit.meta;
                    ["v3", "v7"].contains(&m.video_id.as_str())
                        && m.end > 10.0
                        && m.start < 30.0
                        && m.segment_id != first.meta.segment_id
                })
                .take(request.k)
                .map(|hit| hit.meta.segment_id)
                .collect();
            assert_eq!(expected.len(), request.k, "enough segments pass");
            assert_eq!(testing::ids(&answer(&index, &request)), expected);
            // Without the video list the whole shard is scanned, to the same
            // end (only shots have a picture to match an image query).
            let kind = match space {
                Space::Text => SegmentKind::Subtitle,
                Space::Image => SegmentKind::Shot,
            };
            let mut wide = request.clone();
            wide.filter.videos.clear();
            wide.filter.kinds = vec![kind];
            let got = answer(&index, &wide);
            assert_eq!(got.len(), request.k);
            assert!(
                got.iter()
                    .all(|hit| hit.meta.kind == kind && hit.meta.end > 10.0)
            );
        }
    }

    #[test]
    fn grouping_returns_each_videos_best_segment_and_counts_the_rest() {
        let mut rng = Rng(29);
        let index = testing::shard(&mut rng, 30, usize::MAX);
        let mut request = testing::request(&mut rng, Space::Text, &[]);
        request.k = 12;
        request.group_by_video = true;
        let all = all_scored(&index, &request);
        let mut expected: Vec<&RankedSegment> = vec![];
        for hit in &all {
            if !expected
                .iter()
                .any(|e| e.meta.video_id == hit.meta.video_id)
            {
                expected.push(hit);
            }
        }
        let got = answer(&index, &request);
        assert_eq!(
            testing::ids(&got),
            expected
                .iter()
                .take(12)
                .map(|h| h.meta.segment_id.clone())
                .collect::<Vec<_>>()
        );
        // The first pass ranks the whole shard: a video found there counts
        // its other segments among the best MAX_RANK_K.
        let top = &all[..MAX_RANK_K];
        for group in got.iter().filter(|g| top.iter().any(|h| h.meta == g.meta)) {
            let in_top = top
                .iter()
                .filter(|h| h.meta.video_id == group.meta.video_id)
                .count() as u32;
            assert_eq!(
                group.more_in_video,
                Some(in_top - 1),
                "{}",
                group.meta.video_id
            );
        }
    }

    #[test]
    fn a_blended_query_weighs_both_confidences() {
        let mut rng = Rng(31);
        let index = testing::shard(&mut rng, 10, usize::MAX);
        let text = testing::request(&mut rng, Space::Text, &["common"]);
        let image = testing::request(&mut rng, Space::Image, &[]);
        let mut blended = text.clone();
        blended.blend = Some(Blend {
            space: Space::Image,
            vector: image.vector.clone(),
            calibration: image.calibration,
            weight: 0.3,
        });
        let slots: Vec<u32> = (0..index.len() as u32).collect();
        let mixed = score_slots(&index, &blended, &slots);
        let words = score_slots(&index, &text, &slots);
        let picture = score_slots(&index, &image, &slots);
        for ((m, w), p) in mixed.iter().zip(&words).zip(&picture) {
            // A cue has no picture: it scores 0 there.
            let expected = 0.7 * w.score + 0.3 * p.score;
            assert!(
                (m.score - expected).abs() < 1e-6,
                "{} {} vs {expected}",
                m.meta.segment_id,
                m.score
            );
        }
        let mut best = mixed.clone();
        sort_best_first(&mut best);
        best.truncate(10);
        assert_eq!(testing::ids(&answer(&index, &blended)), testing::ids(&best));
    }

    #[test]
    fn a_stored_segment_comes_back_with_its_vectors() {
        let mut rng = Rng(37);
        let entry = testing::video(&mut rng, "v1", "g1", 6);
        let mut index = SegmentIndex::default();
        index.apply(entry.clone());
        let SegmentLogEntry::Upsert { segments, .. } = entry else {
            unreachable!()
        };
        for original in &segments {
            let mut original = original.clone();
            // The index keeps a cue's distinct terms, sorted, and its
            // vectors in half precision.
            original.terms.sort();
            original.text_vector = full(&half(&original.text_vector));
            original.image_vector = original.image_vector.map(|v| full(&half(&v)));
            assert_eq!(index.record(&original.meta.segment_id), Some(original));
        }
        assert_eq!(index.record("v1-99"), None);
        assert_eq!(index.record("v2-0"), None);
        let order: Vec<u32> = index
            .video_slots("v1")
            .iter()
            .map(|&slot| index.segment(slot as usize).index)
            .collect();
        assert_eq!(order, [0, 1, 2, 3, 4, 5]);
    }
}
