//! A shard's segments in memory, laid out for scanning: one contiguous
//! row-major matrix per vector space, and the segments' metadata in a
//! table beside it.
//!
//! The matrices hold half-precision floats (`f16`): a scan is bound by
//! memory bandwidth, so half the bytes is half the time and half the
//! ranker's memory, and the rounding (about 5·10⁻⁴ relative, on unit
//! vectors a cosine error near 10⁻⁴) is far below the gaps between
//! results that matter. Queries are rounded the same way ([`half`]).
//!
//! Every segment has a text vector, so a segment's slot in the table is its
//! row in the text matrix. Only shots have an image vector: the image matrix
//! has its own rows, each naming its segment's slot. Removing a segment moves
//! the last row into its place (swap-remove) in both, so the matrices never
//! have holes and a scan reads one unbroken block of memory. Each video keeps
//! the slots of its parts, so replacing or deleting a video touches only its
//! own rows.
//!
//! [`SegmentIndex::apply`] gives the segment log's meaning to its entries: a
//! new generation replaces a video, the same generation and part replaces
//! that part (redelivery is idempotent), and a delete removes the video.
//!
//! Each segment also gets a key that never changes while it lives (slots
//! do, on swap-removal): the approximate graphs ([`crate::ann`]) and the
//! lexical postings name segments by key, and `key_slots` maps a key back
//! to its slot, or to nothing once the segment is gone.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use vidseek_protocol::rank::{SegmentKind, SegmentLogEntry, SegmentMeta, SegmentRecord, Space};

use crate::ann::{Graph, GraphId};

use simsimd::SpatialSimilarity;
pub use simsimd::f16;

/// A segment without a row in a matrix, or a key without a segment.
pub(crate) const NO_ROW: u32 = u32::MAX;

/// Below this many rows in a space a query scans every row exactly; from
/// it on, the approximate graphs propose candidates. Measured on 2 cores
/// (bench/ranker): at 20,000 rows the exact scan takes 2.0 ms and the
/// graphs 0.9 ms with recall@10 1.000; at 50,000, 5.4 ms against 1.6 ms.
pub const DEFAULT_EXACT_BELOW: usize = 20_000;

/// Re-key and rebuild the graphs once this share of their nodes (1/4)
/// has been removed since they were built: HNSW recall decays as
/// removed nodes are reused.
const REBUILD_REMOVED_DIVISOR: usize = 4;

/// Rows converted to `f32` and inserted into a graph at a time.
const SETTLE_CHUNK: usize = 4096;

/// A growing matrix reserves an eighth more rows than it needs, not the
/// doubling of `Vec`, so spare capacity stays a small share of the vectors.
const GROWTH_DIVISOR: usize = 8;

/// `vector` rounded to half precision, as matrices store it.
pub fn half(vector: &[f32]) -> Vec<f16> {
    vector.iter().map(|&x| f16::from_f32(x)).collect()
}

/// A half-precision vector back in `f32`.
pub fn full(vector: &[f16]) -> Vec<f32> {
    vector.iter().map(|x| x.to_f32()).collect()
}

/// The inner product of two half-precision vectors (the cosine of unit
/// vectors), accumulated in `f32`; 0 when their lengths differ.
pub fn dot(a: &[f16], b: &[f16]) -> f32 {
    f16::dot(a, b).unwrap_or(0.0) as f32
}

/// The vectors of one space, row after row, in half precision (see the
/// module comment). The dimension is set by the first vector and again
/// whenever the matrix is empty.
#[derive(Debug, Default)]
pub struct Matrix {
    pub(crate) dim: usize,
    pub(crate) data: Vec<f16>,
}

impl Matrix {
    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn rows(&self) -> usize {
        self.data.len().checked_div(self.dim).unwrap_or(0)
    }

    /// The rows `range`, as one slice of `dim`-long rows.
    pub fn block(&self, rows: std::ops::Range<usize>) -> &[f16] {
        &self.data[rows.start * self.dim..rows.end * self.dim]
    }

    /// One row.
    pub fn row(&self, row: usize) -> &[f16] {
        self.block(row..row + 1)
    }

    /// Whether `vector` fits this matrix; an empty matrix takes any
    /// non-empty dimension.
    fn accepts(&mut self, vector: &[f32]) -> bool {
        if self.data.is_empty() && !vector.is_empty() {
            self.dim = vector.len();
        }
        !vector.is_empty() && vector.len() == self.dim
    }

    fn push(&mut self, vector: &[f32]) -> u32 {
        if self.data.len() + vector.len() > self.data.capacity() {
            self.data
                .reserve_exact(vector.len().max(self.data.len() / GROWTH_DIVISOR));
        }
        self.data.extend(vector.iter().map(|&x| f16::from_f32(x)));
        (self.rows() - 1) as u32
    }

    fn swap_remove(&mut self, row: usize) {
        let last = self.rows() - 1;
        if row != last {
            self.data
                .copy_within(last * self.dim..(last + 1) * self.dim, row * self.dim);
        }
        self.data.truncate(last * self.dim);
    }

    fn bytes(&self) -> usize {
        self.data.capacity() * size_of::<f16>()
    }
}

/// What a video's segments share, stored once per video.
#[derive(Debug, PartialEq)]
pub(crate) struct VideoLabel {
    pub(crate) id: String,
    pub(crate) name: String,
}

/// A segment's metadata and lexical terms, without its vectors.
#[derive(Debug)]
pub struct Segment {
    pub(crate) video: Arc<VideoLabel>,
    pub(crate) segment_id: Box<str>,
    pub(crate) index: u32,
    pub(crate) part: u32,
    pub(crate) image_row: u32,
    /// Stable while the segment lives; see the module comment.
    pub(crate) key: u64,
    pub(crate) start: f64,
    pub(crate) end: f64,
    pub kind: SegmentKind,
    pub(crate) text: Option<Box<str>>,
    /// Subtitle cues' distinct terms; empty for shots.
    pub terms: Box<[Box<str>]>,
}

impl Segment {
    pub fn meta(&self) -> SegmentMeta {
        SegmentMeta {
            segment_id: self.segment_id.to_string(),
            video_id: self.video.id.clone(),
            video_name: self.video.name.clone(),
            index: self.index,
            start: self.start,
            end: self.end,
            kind: self.kind,
            text: self.text.as_deref().map(str::to_string),
        }
    }
}

#[derive(Debug)]
pub(crate) struct Video {
    pub(crate) generation: String,
    pub(crate) label: Arc<VideoLabel>,
    /// Slots of each part's segments.
    pub(crate) parts: BTreeMap<u32, Vec<u32>>,
}

/// The cues that contain one term.
#[derive(Debug, Default)]
pub(crate) struct Postings {
    /// Live cues with the term: its document frequency.
    pub(crate) cues: u32,
    /// Their keys, and keys of removed cues until the list is compacted.
    pub(crate) keys: Vec<u64>,
}

/// A batch of rows waiting for one graph; see [`SegmentIndex::unsettled_batch`].
#[derive(Debug)]
pub struct SettleBatch {
    id: GraphId,
    count: usize,
    epoch: u64,
}

/// One shard's segments, as the segment log describes them.
#[derive(Debug)]
pub struct SegmentIndex {
    /// Slot `i` is row `i` of `text`.
    pub(crate) segments: Vec<Segment>,
    pub(crate) text: Matrix,
    pub(crate) image: Matrix,
    /// Image row → slot.
    pub(crate) image_slots: Vec<u32>,
    pub(crate) videos: HashMap<String, Video>,
    /// Number of subtitle cues with terms, and per term the cues holding
    /// it: the lexical match's document frequencies and candidates.
    pub(crate) cues: u32,
    pub(crate) terms: HashMap<Box<str>, Postings>,
    /// Key → slot, [`NO_ROW`] for a removed segment.
    pub(crate) key_slots: Vec<u32>,
    /// The approximate graphs, by [`GraphId::position`].
    pub(crate) graphs: [Graph; GraphId::COUNT],
    exact_below: usize,
}

impl Default for SegmentIndex {
    fn default() -> Self {
        SegmentIndex::with_exact_below(DEFAULT_EXACT_BELOW)
    }
}

impl SegmentIndex {
    /// An empty index that scans spaces of fewer than `rows` rows exactly
    /// and asks the approximate graphs from there on (0: always).
    pub fn with_exact_below(rows: usize) -> SegmentIndex {
        SegmentIndex {
            segments: vec![],
            text: Matrix::default(),
            image: Matrix::default(),
            image_slots: vec![],
            videos: HashMap::new(),
            cues: 0,
            terms: HashMap::new(),
            key_slots: vec![],
            graphs: Default::default(),
            exact_below: rows,
        }
    }

    /// Rows from which a space is searched through its graphs.
    pub fn exact_below(&self) -> usize {
        self.exact_below
    }

    pub fn set_exact_below(&mut self, rows: usize) {
        self.exact_below = rows;
    }

    pub(crate) fn graph(&self, id: GraphId) -> &Graph {
        &self.graphs[id.position()]
    }

    /// The slot of a live segment's key.
    pub(crate) fn slot_of(&self, key: u64) -> Option<u32> {
        self.key_slots
            .get(key as usize)
            .copied()
            .filter(|&slot| slot != NO_ROW)
    }

    /// Slots of the live cues that contain `term`.
    pub(crate) fn cue_slots(&self, term: &str) -> impl Iterator<Item = u32> + '_ {
        self.terms
            .get(term)
            .into_iter()
            .flat_map(|postings| postings.keys.iter())
            .filter_map(|&key| self.slot_of(key))
    }

    /// Rows waiting to enter the approximate graphs.
    pub fn unsettled(&self) -> usize {
        self.graphs.iter().map(|g| g.pending.len()).sum()
    }

    /// Rows of `space` waiting to enter its graphs.
    pub(crate) fn unsettled_in(&self, space: Space) -> usize {
        GraphId::ALL
            .iter()
            .filter(|id| id.space == space)
            .map(|id| self.graphs[id.position()].pending.len())
            .sum()
    }

    /// Picks the next batch of up to `budget` waiting segments for one
    /// graph and makes room for them (needs the write side); `None` when
    /// nothing waits. The batch is then inserted by [`SegmentIndex::settle`]
    /// under the read side, beside running searches, and credited by
    /// [`SegmentIndex::settled`] under the write side again.
    pub fn unsettled_batch(&mut self, budget: usize) -> Option<SettleBatch> {
        let id = GraphId::ALL
            .into_iter()
            .find(|id| !self.graphs[id.position()].pending.is_empty())?;
        let dim = match id.space {
            Space::Text => self.text.dim(),
            Space::Image => self.image.dim(),
        };
        let graph = &mut self.graphs[id.position()];
        let count = budget.min(graph.pending.len());
        if let Err(err) = graph.reserve(dim, count) {
            // The rows stay waiting, so they are still found (exactly).
            tracing::error!(graph = id.name(), error = %err, "cannot grow the approximate index");
            return None;
        }
        Some(SettleBatch {
            id,
            count,
            epoch: graph.epoch,
        })
    }

    /// Inserts a batch picked by [`SegmentIndex::unsettled_batch`]; needs
    /// only the read side. Rows removed meanwhile are skipped. False if
    /// the graph refused them: they stay waiting (and found exactly).
    pub fn settle(&self, batch: &SettleBatch) -> bool {
        let graph = &self.graphs[batch.id.position()];
        if graph.epoch != batch.epoch {
            return true;
        }
        let matrix = match batch.id.space {
            Space::Text => &self.text,
            Space::Image => &self.image,
        };
        let row_of = |key: u64| {
            let slot = self.slot_of(key)?;
            let row = match batch.id.space {
                Space::Text => slot,
                Space::Image => self.segments[slot as usize].image_row,
            };
            (row != NO_ROW).then(|| matrix.row(row as usize))
        };
        // The graph takes `f32` rows: convert a chunk at a time, so a large
        // batch (a whole replayed shard) needs no `f32` copy of the matrix.
        for keys in graph.pending[..batch.count.min(graph.pending.len())].chunks(SETTLE_CHUNK) {
            let rows: Vec<(u64, Vec<f32>)> = keys
                .iter()
                .filter_map(|&key| Some((key, full(row_of(key)?))))
                .collect();
            let rows: Vec<(u64, &[f32])> = rows.iter().map(|(key, v)| (*key, &v[..])).collect();
            if let Err(err) = graph.add(&rows) {
                tracing::error!(graph = batch.id.name(), error = %err, "cannot insert into the approximate index");
                return false;
            }
        }
        true
    }

    /// Takes an inserted batch off the waiting list.
    pub fn settled(&mut self, batch: &SettleBatch) {
        let graph = &mut self.graphs[batch.id.position()];
        if graph.epoch == batch.epoch {
            graph.pending.drain(..batch.count.min(graph.pending.len()));
        }
    }

    /// Inserts every waiting row at once (on every core).
    pub fn settle_all(&mut self) {
        while let Some(batch) = self.unsettled_batch(usize::MAX) {
            if !self.settle(&batch) {
                return;
            }
            self.settled(&batch);
        }
    }

    /// Applies one segment-log entry.
    pub fn apply(&mut self, entry: SegmentLogEntry) {
        match entry {
            SegmentLogEntry::Delete { video_id } => {
                if let Some(video) = self.videos.remove(&video_id) {
                    self.remove_slots(video.parts.into_values().flatten().collect());
                }
            }
            SegmentLogEntry::Upsert {
                video_id,
                generation,
                part,
                segments,
                ..
            } => {
                let video = self
                    .videos
                    .entry(video_id.clone())
                    .or_insert_with(|| Video {
                        generation: generation.clone(),
                        label: Arc::new(VideoLabel {
                            id: video_id.clone(),
                            name: segments
                                .first()
                                .map(|s| s.meta.video_name.clone())
                                .unwrap_or_default(),
                        }),
                        parts: BTreeMap::new(),
                    });
                let stale: Vec<u32> = if video.generation != generation {
                    video.generation = generation;
                    if let Some(first) = segments.first() {
                        video.label = Arc::new(VideoLabel {
                            id: video_id.clone(),
                            name: first.meta.video_name.clone(),
                        });
                    }
                    std::mem::take(&mut video.parts)
                        .into_values()
                        .flatten()
                        .collect()
                } else {
                    video.parts.remove(&part).unwrap_or_default()
                };
                let label = video.label.clone();
                self.remove_slots(stale);
                let slots = segments
                    .into_iter()
                    .filter_map(|segment| self.insert(&label, part, segment))
                    .collect();
                if let Some(video) = self.videos.get_mut(&video_id) {
                    video.parts.insert(part, slots);
                }
            }
        }
        self.rebuild_if_worn();
    }

    /// Re-keys the segments and queues them all for fresh graphs once
    /// removals have worn the graphs (or dead keys outnumber live ones);
    /// a space left empty drops its graphs, so a new dimension can start.
    fn rebuild_if_worn(&mut self) {
        let removed: usize = self.graphs.iter().map(|g| g.removed).sum();
        let dead_keys = self.key_slots.len() - self.segments.len();
        let worn = removed > 0 && removed * REBUILD_REMOVED_DIVISOR >= self.segments.len();
        if !worn && dead_keys <= self.segments.len() + 65_536 {
            for id in GraphId::ALL {
                let rows = match id.space {
                    Space::Text => self.text.rows(),
                    Space::Image => self.image.rows(),
                };
                if rows == 0 {
                    self.graphs[id.position()].clear();
                }
            }
            return;
        }
        tracing::info!(
            segments = self.segments.len(),
            removed,
            "rebuilding the approximate index"
        );
        self.key_slots = (0..self.segments.len() as u32).collect();
        for graph in &mut self.graphs {
            graph.clear();
        }
        for postings in self.terms.values_mut() {
            postings.keys.clear();
        }
        for (slot, segment) in self.segments.iter_mut().enumerate() {
            segment.key = slot as u64;
            queue(&mut self.graphs, segment);
            for term in segment.terms.iter() {
                if let Some(postings) = self.terms.get_mut(term) {
                    postings.keys.push(segment.key);
                }
            }
        }
    }

    /// Number of segments.
    pub fn len(&self) -> usize {
        self.segments.len()
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    pub fn segment(&self, slot: usize) -> &Segment {
        &self.segments[slot]
    }

    pub fn text_vectors(&self) -> &Matrix {
        &self.text
    }

    pub fn image_vectors(&self) -> &Matrix {
        &self.image
    }

    /// The slot of each image row.
    pub fn image_slots(&self) -> &[u32] {
        &self.image_slots
    }

    /// Subtitle cues with terms, and how many of them contain `term`.
    pub fn cues(&self) -> u32 {
        self.cues
    }

    pub fn document_frequency(&self, term: &str) -> u32 {
        self.terms.get(term).map_or(0, |p| p.cues)
    }

    /// One video's segments, in segment order.
    pub fn video(&self, video_id: &str) -> Vec<SegmentMeta> {
        self.video_slots(video_id)
            .into_iter()
            .map(|slot| self.segments[slot as usize].meta())
            .collect()
    }

    /// The slots of one video's segments, in segment order; empty for a
    /// video this shard does not hold.
    pub fn video_slots(&self, video_id: &str) -> Vec<u32> {
        let mut slots: Vec<u32> = self
            .videos
            .get(video_id)
            .map(|video| video.parts.values().flatten().copied().collect())
            .unwrap_or_default();
        slots.sort_by_key(|&slot| self.segments[slot as usize].index);
        slots
    }

    /// A stored segment as the log wrote it, vectors included.
    pub fn record(&self, segment_id: &str) -> Option<SegmentRecord> {
        let (video_id, _) = vidseek_protocol::rank::parse_segment_id(segment_id)?;
        let slot = self
            .video_slots(video_id)
            .into_iter()
            .find(|&slot| &*self.segments[slot as usize].segment_id == segment_id)?;
        let segment = &self.segments[slot as usize];
        let row = |matrix: &Matrix, row: usize| full(matrix.row(row));
        Some(SegmentRecord {
            meta: segment.meta(),
            text_vector: row(&self.text, slot as usize),
            image_vector: (segment.image_row != NO_ROW)
                .then(|| row(&self.image, segment.image_row as usize)),
            terms: segment.terms.iter().map(|t| t.to_string()).collect(),
        })
    }

    /// Heap bytes of the approximate graphs (their quantised vectors and
    /// links) and the rows waiting for them.
    pub fn graph_memory_bytes(&self) -> usize {
        self.graphs.iter().map(Graph::memory_bytes).sum()
    }

    /// Heap bytes held, by capacity: the vectors, the segment table and
    /// each segment's own strings, the per-video maps.
    pub fn memory_bytes(&self) -> usize {
        let strings: usize = self
            .segments
            .iter()
            .map(|s| {
                s.segment_id.len()
                    + s.text.as_ref().map_or(0, |t| t.len())
                    + s.terms
                        .iter()
                        .map(|t| t.len() + size_of::<Box<str>>())
                        .sum::<usize>()
            })
            .sum();
        let videos: usize = self
            .videos
            .iter()
            .map(|(id, v)| {
                id.len()
                    + v.generation.len()
                    + v.label.id.len()
                    + v.label.name.len()
                    + size_of::<(String, Video)>()
                    + v.parts
                        .values()
                        .map(|p| p.capacity() * 4 + 48)
                        .sum::<usize>()
            })
            .sum();
        let postings: usize = self
            .terms
            .iter()
            .map(|(term, p)| term.len() + size_of::<(Box<str>, Postings)>() + p.keys.capacity() * 8)
            .sum();
        self.text.bytes()
            + self.image.bytes()
            + self.graph_memory_bytes()
            + self.key_slots.capacity() * size_of::<u32>()
            + postings
            + self.image_slots.capacity() * size_of::<u32>()
            + self.segments.capacity() * size_of::<Segment>()
            + strings
            + videos
    }

    /// Adds one segment; `None` if its text vector does not fit the shard.
    fn insert(&mut self, label: &Arc<VideoLabel>, part: u32, record: SegmentRecord) -> Option<u32> {
        let meta = record.meta;
        if !self.text.accepts(&record.text_vector) {
            tracing::warn!(
                segment = meta.segment_id,
                dimension = record.text_vector.len(),
                shard_dimension = self.text.dim(),
                "refusing a segment whose text vector does not match the shard's dimension"
            );
            return None;
        }
        let slot = self.segments.len() as u32;
        let image_row = match record.image_vector {
            Some(vector) if self.image.accepts(&vector) => {
                self.image_slots.push(slot);
                self.image.push(&vector)
            }
            Some(vector) => {
                tracing::warn!(
                    segment = meta.segment_id,
                    dimension = vector.len(),
                    shard_dimension = self.image.dim(),
                    "dropping an image vector that does not match the shard's dimension"
                );
                NO_ROW
            }
            None => NO_ROW,
        };
        self.text.push(&record.text_vector);
        let key = self.key_slots.len() as u64;
        self.key_slots.push(slot);
        let mut terms = record.terms;
        terms.sort_unstable();
        terms.dedup();
        if !terms.is_empty() {
            self.cues += 1;
            for term in &terms {
                let postings = self.terms.entry(term.as_str().into()).or_default();
                postings.cues += 1;
                postings.keys.push(key);
            }
        }
        let video = if label.id == meta.video_id && label.name == meta.video_name {
            label.clone()
        } else {
            // A producer that names the video differently in one segment
            // still gets that segment's own name back.
            Arc::new(VideoLabel {
                id: label.id.clone(),
                name: meta.video_name,
            })
        };
        self.segments.push(Segment {
            video,
            segment_id: meta.segment_id.into(),
            index: meta.index,
            part,
            image_row,
            key,
            start: meta.start,
            end: meta.end,
            kind: meta.kind,
            text: meta.text.map(String::into_boxed_str),
            terms: terms.into_iter().map(String::into_boxed_str).collect(),
        });
        queue(&mut self.graphs, &self.segments[slot as usize]);
        Some(slot)
    }

    /// Removes segments whose video entry no longer lists them.
    fn remove_slots(&mut self, mut slots: Vec<u32>) {
        // Highest first: the last row, moved into each freed slot, is then
        // never one that is still waiting to be removed.
        slots.sort_unstable_by(|a, b| b.cmp(a));
        for slot in slots {
            self.remove_slot(slot as usize);
        }
    }

    fn remove_slot(&mut self, slot: usize) {
        let removed = self.segments.swap_remove(slot);
        self.text.swap_remove(slot);
        self.key_slots[removed.key as usize] = NO_ROW;
        for graph in graphs_of(&removed) {
            self.graphs[graph.position()].remove(removed.key);
        }
        let moved_from = self.segments.len() as u32;
        if let Some(moved) = self.segments.get(slot) {
            self.key_slots[moved.key as usize] = slot as u32;
            if moved.image_row != NO_ROW {
                self.image_slots[moved.image_row as usize] = slot as u32;
            }
            let owner = self
                .videos
                .get_mut(&moved.video.id)
                .and_then(|video| video.parts.get_mut(&moved.part))
                .and_then(|slots| slots.iter_mut().find(|s| **s == moved_from));
            match owner {
                Some(owner) => *owner = slot as u32,
                None => unreachable!("every live segment is listed by its video"),
            }
        }
        if removed.image_row != NO_ROW {
            let row = removed.image_row as usize;
            self.image.swap_remove(row);
            self.image_slots.swap_remove(row);
            if let Some(&owner) = self.image_slots.get(row) {
                self.segments[owner as usize].image_row = row as u32;
            }
        }
        if !removed.terms.is_empty() {
            self.cues -= 1;
            for term in removed.terms.iter() {
                if let Some(postings) = self.terms.get_mut(term) {
                    postings.cues -= 1;
                    if postings.cues == 0 {
                        self.terms.remove(term);
                    } else if postings.keys.len() > 2 * postings.cues as usize + 16 {
                        // Removed keys are skipped when read; dropped here
                        // once they are half the list.
                        let key_slots = &self.key_slots;
                        postings
                            .keys
                            .retain(|&key| key_slots[key as usize] != NO_ROW);
                    }
                }
            }
        }
    }
}

/// The graphs a segment belongs in: its kind's, in each space it has a
/// vector for.
fn graphs_of(segment: &Segment) -> impl Iterator<Item = GraphId> {
    let image = (segment.image_row != NO_ROW).then_some(GraphId::new(Space::Image, segment.kind));
    std::iter::once(GraphId::new(Space::Text, segment.kind)).chain(image)
}

/// Queues a new segment for its graphs.
fn queue(graphs: &mut [Graph; GraphId::COUNT], segment: &Segment) {
    for graph in graphs_of(segment) {
        graphs[graph.position()].pending.push(segment.key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(video: &str, index: u32, text: Vec<f32>, image: Option<Vec<f32>>) -> SegmentRecord {
        SegmentRecord {
            meta: SegmentMeta {
                segment_id: format!("{video}-{index}"),
                video_id: video.into(),
                video_name: format!("{video}.mp4"),
                index,
                start: index as f64,
                end: index as f64 + 1.0,
                kind: if image.is_some() {
                    SegmentKind::Shot
                } else {
                    SegmentKind::Subtitle
                },
                text: None,
            },
            text_vector: text,
            image_vector: image,
            terms: vec![],
        }
    }

    fn upsert(video: &str, generation: &str, part: u32, indices: &[u32]) -> SegmentLogEntry {
        SegmentLogEntry::Upsert {
            video_id: video.into(),
            generation: generation.into(),
            part,
            parts: 2,
            segments: indices
                .iter()
                .map(|&i| record(video, i, vec![0.5; 2], None))
                .collect(),
        }
    }

    fn indices(index: &SegmentIndex, video: &str) -> Vec<u32> {
        index.video(video).iter().map(|m| m.index).collect()
    }

    #[test]
    fn redelivered_parts_replace_themselves() {
        let mut index = SegmentIndex::default();
        index.apply(upsert("a", "g1", 0, &[0, 1]));
        index.apply(upsert("a", "g1", 1, &[2]));
        index.apply(upsert("a", "g1", 0, &[0, 1]));
        assert_eq!(index.len(), 3);
        assert_eq!(indices(&index, "a"), vec![0, 1, 2]);
    }

    #[test]
    fn new_generation_replaces_and_delete_removes() {
        let mut index = SegmentIndex::default();
        index.apply(upsert("a", "g1", 0, &[0, 1, 2]));
        index.apply(upsert("b", "g1", 0, &[0]));
        index.apply(upsert("a", "g2", 0, &[0]));
        assert_eq!(index.len(), 2);
        index.apply(SegmentLogEntry::Delete {
            video_id: "a".into(),
        });
        assert_eq!(index.len(), 1);
        assert!(index.video("a").is_empty());
        assert_eq!(indices(&index, "b"), vec![0]);
    }

    #[test]
    fn a_vector_of_another_dimension_is_refused() {
        let mut index = SegmentIndex::default();
        let entry = SegmentLogEntry::Upsert {
            video_id: "a".into(),
            generation: "g".into(),
            part: 0,
            parts: 1,
            segments: vec![
                record("a", 0, vec![1.0, 0.0], Some(vec![1.0, 0.0, 0.0])),
                record("a", 1, vec![1.0, 0.0, 0.0], None),
                record("a", 2, vec![0.0, 1.0], Some(vec![1.0])),
                record("a", 3, vec![], None),
            ],
        };
        index.apply(entry);
        assert_eq!(indices(&index, "a"), vec![0, 2], "wrong text dimensions");
        assert_eq!(index.text_vectors().dim(), 2);
        assert_eq!(index.image_vectors().rows(), 1, "segment 2 keeps no image");
        // Once the shard is empty, a new model's dimension is accepted.
        index.apply(SegmentLogEntry::Delete {
            video_id: "a".into(),
        });
        index.apply(SegmentLogEntry::Upsert {
            video_id: "b".into(),
            generation: "g".into(),
            part: 0,
            parts: 1,
            segments: vec![record("b", 0, vec![1.0, 0.0, 0.0], None)],
        });
        assert_eq!(index.text_vectors().dim(), 3);
        assert_eq!(index.len(), 1);
    }

    /// A small deterministic generator, so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u32 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 >> 32) as u32
        }
    }

    /// Random upserts, re-ingests and deletes, checked after every step
    /// against a plain map of what each video should hold: the table, both
    /// matrices, the row links and the document frequencies stay in step.
    #[test]
    fn swap_removal_matches_a_reference() {
        let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
        let mut index = SegmentIndex::default();
        // video → part → (index, text, image, terms)
        type Part = Vec<(u32, Vec<f32>, Option<Vec<f32>>, Vec<String>)>;
        let mut reference: HashMap<String, (String, BTreeMap<u32, Part>)> = HashMap::new();
        for step in 0..600u32 {
            let video = format!("v{}", rng.next() % 8);
            if rng.next().is_multiple_of(6) {
                index.apply(SegmentLogEntry::Delete {
                    video_id: video.clone(),
                });
                reference.remove(&video);
            } else {
                let generation = format!("g{}", rng.next() % 2);
                let part = rng.next() % 3;
                let count = rng.next() % 5;
                let segments: Part = (0..count)
                    .map(|i| {
                        let idx = part * 10 + i;
                        let text = vec![step as f32, idx as f32, 1.0];
                        let image = rng
                            .next()
                            .is_multiple_of(2)
                            .then(|| vec![idx as f32, step as f32]);
                        let terms = if image.is_none() && rng.next().is_multiple_of(2) {
                            vec![format!("w{}", rng.next() % 4), "common".into()]
                        } else {
                            vec![]
                        };
                        (idx, text, image, terms)
                    })
                    .collect();
                let records = segments
                    .iter()
                    .map(|(idx, text, image, terms)| {
                        let mut r = record(&video, *idx, text.clone(), image.clone());
                        r.terms = terms.clone();
                        r
                    })
                    .collect();
                index.apply(SegmentLogEntry::Upsert {
                    video_id: video.clone(),
                    generation: generation.clone(),
                    part,
                    parts: 3,
                    segments: records,
                });
                let entry = reference.entry(video.clone()).or_default();
                if entry.0 != generation {
                    *entry = (generation, BTreeMap::new());
                }
                entry.1.insert(part, segments);
            }

            let expected: usize = reference
                .values()
                .map(|(_, parts)| parts.values().map(Vec::len).sum::<usize>())
                .sum();
            assert_eq!(index.len(), expected, "step {step}");
            assert_eq!(index.text_vectors().rows(), expected);
            let mut cues = 0;
            let mut frequency: HashMap<String, u32> = HashMap::new();
            for (video, (_, parts)) in &reference {
                let mut want: Vec<_> = parts.values().flatten().collect();
                want.sort_by_key(|s| s.0);
                let got = index.video(video);
                assert_eq!(got.len(), want.len(), "step {step} {video}");
                for (meta, (idx, _, _, _)) in got.iter().zip(&want) {
                    assert_eq!(meta.index, *idx);
                    assert_eq!(&meta.video_id, video);
                }
                for (_, _, _, terms) in &want {
                    if !terms.is_empty() {
                        cues += 1;
                        let mut distinct = terms.clone();
                        distinct.dedup();
                        for t in distinct {
                            *frequency.entry(t).or_default() += 1;
                        }
                    }
                }
            }
            assert_eq!(index.cues(), cues);
            for (term, count) in &frequency {
                assert_eq!(index.document_frequency(term), *count, "{term}");
            }
            // Every row holds its own segment's vectors.
            let dim = index.text_vectors().dim();
            for slot in 0..index.len() {
                let meta = index.segment(slot).meta();
                let (_, parts) = &reference[&meta.video_id];
                let (_, text, image, _) = parts
                    .values()
                    .flatten()
                    .find(|s| s.0 == meta.index)
                    .expect("listed");
                assert_eq!(index.text_vectors().row(slot), &half(&text[..dim])[..]);
                let row = index.segment(slot).image_row;
                match image {
                    Some(image) => {
                        let r = row as usize;
                        assert_eq!(index.image_slots()[r] as usize, slot);
                        assert_eq!(index.image_vectors().row(r), &half(image)[..]);
                    }
                    None => assert_eq!(row, NO_ROW),
                }
            }
            assert_eq!(index.image_slots().len(), index.image_vectors().rows());
            for (slot, segment) in index.segments.iter().enumerate() {
                assert_eq!(index.slot_of(segment.key), Some(slot as u32), "step {step}");
            }
            let live_keys = index.key_slots.iter().filter(|&&s| s != NO_ROW).count();
            assert_eq!(live_keys, index.len());
            if step % 50 == 0 {
                // Graph inserts and removals ride along with the churn.
                index.settle_all();
                assert_eq!(index.unsettled(), 0);
            }
        }
    }
}
