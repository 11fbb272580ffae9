//! Approximate nearest neighbours for large shards: one `usearch` HNSW graph
//! per vector space and segment kind, keyed by each segment's stable key
//! (slots move on swap-removal, keys do not).
//!
//! A graph holds its vectors quantised to `i8` (a quarter of the `f32`
//! bytes); it only proposes candidates, which the scan then scores exactly
//! from the shard's `f16` matrix, so quantisation costs recall only where
//! a true neighbour falls out of the candidate list.
//!
//! New segments are not inserted at once: their keys wait in a pending list
//! that every search scores exactly, and the ranker inserts them in bounded
//! batches ([`crate::SegmentIndex::settle`]), so an apply never waits for
//! graph construction and a graph being rebuilt degrades to an exact scan
//! of what it lacks instead of missing it. Removed segments are removed from
//! the graph (usearch reuses their nodes) and filtered out of every search
//! by their key; once removals since the last build reach a quarter of the
//! graph, the index is re-keyed and its graphs rebuilt from the matrices.

use std::path::Path;

use usearch::{Index, IndexOptions, MetricKind, ScalarKind};
use vidseek_protocol::rank::{SegmentKind, Space};

/// Links per node (HNSW `M`): 16 is the usual balance of recall, memory
/// (about 2·M·4 bytes per node on the base layer) and build time.
const CONNECTIVITY: usize = 16;
/// Candidate list while inserting (`efConstruction`). 64 left the graph
/// of a million rows in dense clusters unable to reach the true
/// neighbours of many queries (recall@10 0.92 with a 1,000-candidate
/// search); 128 took it to 0.99, for a slower build (bench/ranker).
const EXPANSION_ADD: usize = 128;
/// usearch keeps a search context per concurrent caller: room for inserts
/// on every core and searches from the blocking pool beside them.
const CONTEXTS_PER_CORE: usize = 4;
/// Candidate list while searching (`ef`); usearch raises it to the
/// requested count when that is larger.
pub const EXPANSION_SEARCH: usize = 96;

/// Which graph: one per vector space and segment kind, so each kind's
/// top-k by cosine can be asked for separately (calibration is per kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GraphId {
    pub space: Space,
    pub kind: SegmentKind,
}

impl GraphId {
    /// How many graphs a shard keeps.
    pub const COUNT: usize = 6;

    pub const ALL: [GraphId; Self::COUNT] = [
        GraphId::new(Space::Text, SegmentKind::Shot),
        GraphId::new(Space::Text, SegmentKind::Subtitle),
        GraphId::new(Space::Text, SegmentKind::Ocr),
        GraphId::new(Space::Image, SegmentKind::Shot),
        GraphId::new(Space::Image, SegmentKind::Subtitle),
        GraphId::new(Space::Image, SegmentKind::Ocr),
    ];

    pub const fn new(space: Space, kind: SegmentKind) -> GraphId {
        GraphId { space, kind }
    }

    pub fn position(self) -> usize {
        let space = match self.space {
            Space::Text => 0,
            Space::Image => 3,
        };
        space
            + match self.kind {
                SegmentKind::Shot => 0,
                SegmentKind::Subtitle => 1,
                SegmentKind::Ocr => 2,
            }
    }

    pub fn name(self) -> &'static str {
        match (self.space, self.kind) {
            (Space::Text, SegmentKind::Shot) => "text-shot",
            (Space::Text, SegmentKind::Subtitle) => "text-subtitle",
            (Space::Image, SegmentKind::Shot) => "image-shot",
            (Space::Image, SegmentKind::Subtitle) => "image-subtitle",
            (Space::Text, SegmentKind::Ocr) => "text-ocr",
            (Space::Image, SegmentKind::Ocr) => "image-ocr",
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AnnError {
    #[error("approximate index: {0}")]
    Usearch(String),
    #[error("approximate index file {0} is not valid UTF-8")]
    Path(String),
}

fn failed(err: impl std::fmt::Display) -> AnnError {
    AnnError::Usearch(err.to_string())
}

/// One HNSW graph and the keys still waiting to enter it.
#[derive(Default)]
pub struct Graph {
    index: Option<Index>,
    /// Keys not yet in the graph, oldest first; every search scores them
    /// exactly. A batch is inserted from the front.
    pub pending: Vec<u64>,
    /// Keys removed from the graph since it was built.
    pub removed: usize,
    /// Changes whenever the graph is dropped, so a batch inserted under
    /// the read lock is not credited to a newer graph.
    pub epoch: u64,
}

impl std::fmt::Debug for Graph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Graph")
            .field("size", &self.size())
            .field("pending", &self.pending.len())
            .field("removed", &self.removed)
            .finish()
    }
}

fn options(dim: usize) -> IndexOptions {
    IndexOptions {
        dimensions: dim,
        // Unit vectors: inner product is the cosine.
        metric: MetricKind::IP,
        quantization: ScalarKind::I8,
        connectivity: CONNECTIVITY,
        expansion_add: EXPANSION_ADD,
        expansion_search: EXPANSION_SEARCH,
        multi: false,
    }
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

impl Graph {
    /// Vectors in the graph (removed ones excluded).
    pub fn size(&self) -> usize {
        self.index.as_ref().map_or(0, Index::size)
    }

    /// Drops the graph; every key must then be queued again.
    pub fn clear(&mut self) {
        *self = Graph {
            epoch: self.epoch + 1,
            ..Graph::default()
        };
    }

    /// Makes room for `count` more vectors of dimension `dim`, creating
    /// the graph if needed, so that [`Graph::add`] can run beside searches.
    pub fn reserve(&mut self, dim: usize, count: usize) -> Result<(), AnnError> {
        let index = match &mut self.index {
            Some(index) => index,
            None => self
                .index
                .insert(Index::new(&options(dim)).map_err(failed)?),
        };
        let needed = index.size() + count;
        if needed > index.capacity() {
            // Grow by an eighth, as the matrices do, so spare capacity stays small.
            let capacity = needed.max(index.capacity() + index.capacity() / 8);
            index
                .reserve_capacity_and_threads(capacity, CONTEXTS_PER_CORE * threads())
                .map_err(failed)?;
        }
        Ok(())
    }

    /// Inserts `vectors` (key, vector), split over the machine's cores,
    /// within the room [`Graph::reserve`] made. usearch takes concurrent
    /// inserts and searches, so this needs only shared access.
    pub fn add(&self, vectors: &[(u64, &[f32])]) -> Result<(), AnnError> {
        let Some(index) = &self.index else {
            return Ok(());
        };
        if vectors.is_empty() {
            return Ok(());
        }
        let threads = threads().min(vectors.len().div_ceil(256)).max(1);
        std::thread::scope(|scope| {
            let workers: Vec<_> = vectors
                .chunks(vectors.len().div_ceil(threads))
                .map(|chunk| {
                    scope.spawn(move || {
                        chunk
                            .iter()
                            .try_for_each(|(key, vector)| index.add(*key, vector))
                    })
                })
                .collect();
            workers
                .into_iter()
                .try_for_each(|worker| worker.join().expect("a graph insert panicked"))
        })
        .map_err(failed)?;
        Ok(())
    }

    /// Removes `key` if the graph holds it.
    pub fn remove(&mut self, key: u64) {
        if let Some(index) = &self.index
            && index.contains(key)
        {
            if let Err(err) = index.remove(key) {
                tracing::warn!(error = %err, key, "cannot remove from the approximate index");
            }
            self.removed += 1;
        }
    }

    /// Up to `count` keys nearest to `query` that `keep` accepts; `None`
    /// if the graph could not answer (e.g. more concurrent searches than
    /// it has contexts for), and the caller must scan exactly instead.
    pub fn search(
        &self,
        query: &[f32],
        count: usize,
        keep: impl Fn(u64) -> bool,
    ) -> Option<Vec<u64>> {
        let Some(index) = &self.index else {
            return Some(vec![]);
        };
        // usearch widens its candidate list to `count` when that is larger.
        match index.filtered_search(query, count, keep) {
            Ok(matches) => Some(matches.keys),
            Err(err) => {
                tracing::warn!(error = %err, "approximate search failed; scanning exactly");
                None
            }
        }
    }

    /// Heap bytes of the graph and its quantised vectors.
    pub fn memory_bytes(&self) -> usize {
        self.index.as_ref().map_or(0, Index::memory_usage) + self.pending.capacity() * 8
    }

    /// Writes the graph to `path`; false when there is no graph to write.
    pub fn save(&self, path: &Path) -> Result<bool, AnnError> {
        match &self.index {
            Some(index) => {
                index.save(utf8(path)?).map_err(failed)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// Reads a graph of vectors of dimension `dim` written by [`Graph::save`].
    pub fn load(&mut self, dim: usize, path: &Path) -> Result<(), AnnError> {
        let index = Index::new(&options(dim)).map_err(failed)?;
        index.load(utf8(path)?).map_err(failed)?;
        index
            .reserve_capacity_and_threads(index.size(), CONTEXTS_PER_CORE * threads())
            .map_err(failed)?;
        if index.dimensions() != dim {
            return Err(AnnError::Usearch(format!(
                "graph of dimension {} for vectors of dimension {dim}",
                index.dimensions()
            )));
        }
        self.index = Some(index);
        Ok(())
    }
}

fn utf8(path: &Path) -> Result<&str, AnnError> {
    path.to_str()
        .ok_or_else(|| AnnError::Path(path.display().to_string()))
}
