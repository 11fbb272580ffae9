//! A ranker's index on local disk, so a restart replays only the tail of
//! the segment log instead of all of it.
//!
//! A snapshot is one file, `index.snap`, plus one file per approximate
//! graph (usearch's own format), all in the snapshot directory:
//!
//! ```text
//! "VIDSEEK-RANKER-SNAPSHOT\n"   magic (24 bytes)
//! u32 LE                          format version
//! u32 LE + MessagePack            header: the log incarnation and last
//!                                 applied sequence, the graphs' files
//!                                 with their sizes and CRC-32s
//! u64 LE + MessagePack            tables: videos, segments, keys, terms,
//!                                 the graphs' waiting rows
//! f16 LE × rows × dim             the text matrix, then the image matrix
//! u32 LE                          CRC-32 of everything above
//! ```
//!
//! Writing is atomic: the graph files get names of their own (the snapshot's
//! id), `index.snap` is written to a temporary file, synced and renamed over
//! the old one, and only then are the previous graph files removed, so a
//! crash at any point leaves the old snapshot or the new one whole.
//!
//! Reading refuses a snapshot rather than serve a wrong index: another
//! magic or version, a checksum that does not match (the main file or a
//! graph file), a log incarnation other than the stream's (the stream was
//! deleted and created again) or a last sequence beyond the stream's last
//! (the log lost entries the snapshot has). The ranker then replays the
//! whole log, as it would without a snapshot.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use vidseek_bus::segment_log::LogPosition;
use vidseek_protocol::rank::SegmentKind;

use crate::ann::GraphId;
use crate::store::{Matrix, NO_ROW, Postings, Segment, SegmentIndex, Video, VideoLabel, f16};

const MAGIC: &[u8; 24] = b"VIDSEEK-RANKER-SNAPSHOT\n";
/// Bumped whenever the layout or the tables change meaning.
/// 2: the matrices are half precision.
pub const FORMAT_VERSION: u32 = 2;
const FILE_NAME: &str = "index.snap";
const GRAPH_PREFIX: &str = "graph-";

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("no snapshot in {0}")]
    Missing(PathBuf),
    #[error("snapshot i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("not a ranker snapshot (bad magic)")]
    Magic,
    #[error("snapshot format version {found}, this ranker reads {FORMAT_VERSION}")]
    Version { found: u32 },
    #[error("snapshot checksum mismatch in {0}")]
    Checksum(String),
    #[error("snapshot is stale: {0}")]
    Stale(String),
    #[error("snapshot is inconsistent: {0}")]
    Inconsistent(String),
    #[error("snapshot encoding: {0}")]
    Encode(#[from] rmp_serde::encode::Error),
    #[error("snapshot decoding: {0}")]
    Decode(#[from] rmp_serde::decode::Error),
    #[error(transparent)]
    Graph(#[from] crate::ann::AnnError),
}

/// What the snapshot was taken after: the log's incarnation and the last
/// stream sequence applied to the index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Applied {
    pub log_created_unix_ns: i64,
    pub sequence: u64,
}

#[derive(Serialize, Deserialize)]
struct Header {
    applied: Applied,
    segments: u64,
    graphs: Vec<GraphFile>,
}

#[derive(Serialize, Deserialize)]
struct GraphFile {
    position: u8,
    file: String,
    bytes: u64,
    crc: u32,
}

#[derive(Serialize, Deserialize)]
struct Tables {
    videos: Vec<VideoRow>,
    segments: Vec<SegmentRow>,
    text_dim: u32,
    text_rows: u64,
    image_dim: u32,
    image_rows: u64,
    image_slots: Vec<u32>,
    cues: u32,
    terms: Vec<(String, u32, Vec<u64>)>,
    key_slots: Vec<u32>,
    /// Per graph (by position): waiting keys and removals since its build.
    graphs: Vec<(Vec<u64>, u64)>,
}

#[derive(Serialize, Deserialize)]
struct VideoRow {
    id: String,
    name: String,
    generation: String,
    parts: Vec<(u32, Vec<u32>)>,
}

#[derive(Serialize, Deserialize)]
struct SegmentRow {
    video: u32,
    /// Set only where the segment names its video differently.
    video_name: Option<String>,
    segment_id: String,
    index: u32,
    part: u32,
    image_row: u32,
    key: u64,
    start: f64,
    end: f64,
    kind: SegmentKind,
    text: Option<String>,
    terms: Vec<String>,
}

/// A writer or reader that keeps the CRC-32 of the bytes through it.
struct Crc<T> {
    inner: T,
    hasher: crc32fast::Hasher,
}

impl<T> Crc<T> {
    fn new(inner: T) -> Self {
        Crc {
            inner,
            hasher: crc32fast::Hasher::new(),
        }
    }
}

impl<W: Write> Write for Crc<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Crc<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Writes `index` to `dir` as taken after `applied`; returns the bytes
/// written (main file and graphs).
pub fn write(dir: &Path, index: &SegmentIndex, applied: Applied) -> Result<u64, SnapshotError> {
    std::fs::create_dir_all(dir)?;
    let id = format!(
        "{:016x}-{:x}",
        applied.sequence,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    );
    let mut graphs = vec![];
    let mut bytes = 0;
    for graph_id in GraphId::ALL {
        let file = format!("{GRAPH_PREFIX}{id}-{}.usearch", graph_id.name());
        let path = dir.join(&file);
        if index.graphs[graph_id.position()].save(&path)? {
            let (size, crc) = checksum_file(&path)?;
            File::open(&path)?.sync_all()?;
            bytes += size;
            graphs.push(GraphFile {
                position: graph_id.position() as u8,
                file,
                bytes: size,
                crc,
            });
        }
    }
    let header = rmp_serde::to_vec_named(&Header {
        applied,
        segments: index.len() as u64,
        graphs,
    })?;
    let tables = rmp_serde::to_vec_named(&tables_of(index))?;

    let temporary = dir.join(format!("{FILE_NAME}.tmp"));
    let file = File::create(&temporary)?;
    let mut out = Crc::new(BufWriter::with_capacity(1 << 20, file));
    out.write_all(MAGIC)?;
    out.write_all(&FORMAT_VERSION.to_le_bytes())?;
    out.write_all(&(header.len() as u32).to_le_bytes())?;
    out.write_all(&header)?;
    out.write_all(&(tables.len() as u64).to_le_bytes())?;
    out.write_all(&tables)?;
    drop(tables);
    write_halves(&mut out, &index.text.data)?;
    write_halves(&mut out, &index.image.data)?;
    let crc = out.hasher.clone().finalize();
    let mut file = out.inner.into_inner().map_err(|e| e.into_error())?;
    file.write_all(&crc.to_le_bytes())?;
    bytes += file.metadata()?.len();
    file.sync_all()?;
    drop(file);
    std::fs::rename(&temporary, dir.join(FILE_NAME))?;
    File::open(dir)?.sync_all()?;

    // The new snapshot is in place: older graph files are garbage now.
    for entry in std::fs::read_dir(dir)? {
        let name = entry?.file_name();
        let name = name.to_string_lossy();
        if name.starts_with(GRAPH_PREFIX) && !name.starts_with(&format!("{GRAPH_PREFIX}{id}-")) {
            let _ = std::fs::remove_file(dir.join(name.as_ref()));
        }
    }
    Ok(bytes)
}

/// Reads the snapshot in `dir` if it fits the log at `log`; returns the
/// index and what it was taken after. `exact_below` is the ranker's
/// setting, not the snapshot's.
pub fn read(
    dir: &Path,
    log: &LogPosition,
    exact_below: usize,
) -> Result<(SegmentIndex, Applied), SnapshotError> {
    let path = dir.join(FILE_NAME);
    let file = match File::open(&path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(SnapshotError::Missing(dir.to_path_buf()));
        }
        Err(err) => return Err(err.into()),
    };
    let file_halves = file.metadata()?.len() as usize / 2;
    let mut input = Crc::new(BufReader::with_capacity(1 << 20, file));
    let mut magic = [0u8; 24];
    input
        .read_exact(&mut magic)
        .map_err(|_| SnapshotError::Magic)?;
    if &magic != MAGIC {
        return Err(SnapshotError::Magic);
    }
    let found = read_u32(&mut input)?;
    if found != FORMAT_VERSION {
        return Err(SnapshotError::Version { found });
    }
    let header_len = read_u32(&mut input)? as usize;
    let header: Header = rmp_serde::from_slice(&read_bytes(&mut input, header_len)?)?;
    // Staleness is decided from the header alone, before the large reads.
    check_fresh(&header.applied, log)?;
    let tables_len = read_u64(&mut input)? as usize;
    let tables: Tables = rmp_serde::from_slice(&read_bytes(&mut input, tables_len)?)?;
    let text = read_halves(&mut input, tables.text_rows, tables.text_dim, file_halves)?;
    let image = read_halves(&mut input, tables.image_rows, tables.image_dim, file_halves)?;
    let computed = input.hasher.clone().finalize();
    let mut rest = vec![];
    input.inner.read_to_end(&mut rest)?;
    if rest.len() != 4 || u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) != computed {
        return Err(SnapshotError::Checksum(FILE_NAME.into()));
    }
    let mut index = index_of(tables, text, image, exact_below)?;
    if index.len() as u64 != header.segments {
        return Err(SnapshotError::Inconsistent("segment count".into()));
    }
    for graph in header.graphs {
        let path = dir.join(&graph.file);
        if checksum_file(&path)? != (graph.bytes, graph.crc) {
            return Err(SnapshotError::Checksum(graph.file));
        }
        let position = graph.position as usize;
        let Some(id) = GraphId::ALL.get(position) else {
            return Err(SnapshotError::Inconsistent("graph position".into()));
        };
        let dim = match id.space {
            vidseek_protocol::rank::Space::Text => index.text.dim(),
            vidseek_protocol::rank::Space::Image => index.image.dim(),
        };
        index.graphs[position].load(dim, &path)?;
    }
    Ok((index, header.applied))
}

/// A snapshot fits the log if it was taken from this incarnation of the
/// stream and the stream still has every entry the snapshot applied.
pub fn check_fresh(applied: &Applied, log: &LogPosition) -> Result<(), SnapshotError> {
    if applied.log_created_unix_ns != log.created_unix_ns {
        return Err(SnapshotError::Stale(
            "the segment log was created again since it was taken".into(),
        ));
    }
    if applied.sequence > log.last_sequence {
        return Err(SnapshotError::Stale(format!(
            "it applied the log up to {}, the log ends at {}",
            applied.sequence, log.last_sequence
        )));
    }
    Ok(())
}

fn tables_of(index: &SegmentIndex) -> Tables {
    let mut video_numbers: HashMap<&str, u32> = HashMap::new();
    let videos: Vec<VideoRow> = index
        .videos
        .iter()
        .enumerate()
        .map(|(number, (id, video))| {
            video_numbers.insert(id.as_str(), number as u32);
            VideoRow {
                id: id.clone(),
                name: video.label.name.clone(),
                generation: video.generation.clone(),
                parts: video
                    .parts
                    .iter()
                    .map(|(part, slots)| (*part, slots.clone()))
                    .collect(),
            }
        })
        .collect();
    let segments = index
        .segments
        .iter()
        .map(|s| {
            let video = video_numbers[s.video.id.as_str()];
            let video_name = (index.videos[&s.video.id].label.name != s.video.name)
                .then(|| s.video.name.clone());
            SegmentRow {
                video,
                video_name,
                segment_id: s.segment_id.to_string(),
                index: s.index,
                part: s.part,
                image_row: s.image_row,
                key: s.key,
                start: s.start,
                end: s.end,
                kind: s.kind,
                text: s.text.as_deref().map(str::to_string),
                terms: s.terms.iter().map(|t| t.to_string()).collect(),
            }
        })
        .collect();
    Tables {
        videos,
        segments,
        text_dim: index.text.dim() as u32,
        text_rows: index.text.rows() as u64,
        image_dim: index.image.dim() as u32,
        image_rows: index.image.rows() as u64,
        image_slots: index.image_slots.clone(),
        cues: index.cues,
        terms: index
            .terms
            .iter()
            .map(|(term, p)| (term.to_string(), p.cues, p.keys.clone()))
            .collect(),
        key_slots: index.key_slots.clone(),
        graphs: index
            .graphs
            .iter()
            .map(|g| (g.pending.clone(), g.removed as u64))
            .collect(),
    }
}

fn index_of(
    tables: Tables,
    text: Vec<f16>,
    image: Vec<f16>,
    exact_below: usize,
) -> Result<SegmentIndex, SnapshotError> {
    let inconsistent = |what: &str| SnapshotError::Inconsistent(what.to_string());
    let slots = tables.segments.len();
    if tables.text_rows as usize != slots
        || tables.image_slots.len() as u64 != tables.image_rows
        || tables.graphs.len() != GraphId::ALL.len()
    {
        return Err(inconsistent("table sizes"));
    }
    let labels: Vec<Arc<VideoLabel>> = tables
        .videos
        .iter()
        .map(|v| {
            Arc::new(VideoLabel {
                id: v.id.clone(),
                name: v.name.clone(),
            })
        })
        .collect();
    let mut segments = Vec::with_capacity(slots);
    for row in tables.segments {
        let label = labels
            .get(row.video as usize)
            .ok_or_else(|| inconsistent("video number"))?;
        if (row.image_row != NO_ROW && row.image_row as u64 >= tables.image_rows)
            || tables.key_slots.get(row.key as usize) != Some(&(segments.len() as u32))
        {
            return Err(inconsistent("segment rows"));
        }
        segments.push(Segment {
            video: match row.video_name {
                Some(name) => Arc::new(VideoLabel {
                    id: label.id.clone(),
                    name,
                }),
                None => label.clone(),
            },
            segment_id: row.segment_id.into(),
            index: row.index,
            part: row.part,
            image_row: row.image_row,
            key: row.key,
            start: row.start,
            end: row.end,
            kind: row.kind,
            text: row.text.map(String::into_boxed_str),
            terms: row.terms.into_iter().map(String::into_boxed_str).collect(),
        });
    }
    let mut videos = HashMap::with_capacity(tables.videos.len());
    for (row, label) in tables.videos.into_iter().zip(labels) {
        let parts: BTreeMap<u32, Vec<u32>> = row.parts.into_iter().collect();
        if parts.values().flatten().any(|&slot| slot as usize >= slots) {
            return Err(inconsistent("video slots"));
        }
        videos.insert(
            row.id,
            Video {
                generation: row.generation,
                label,
                parts,
            },
        );
    }
    if tables
        .image_slots
        .iter()
        .any(|&slot| slot as usize >= slots)
        || tables
            .key_slots
            .iter()
            .any(|&slot| slot != NO_ROW && slot as usize >= slots)
    {
        return Err(inconsistent("row links"));
    }
    let mut index = SegmentIndex::with_exact_below(exact_below);
    index.segments = segments;
    index.text = Matrix {
        dim: tables.text_dim as usize,
        data: text,
    };
    index.image = Matrix {
        dim: tables.image_dim as usize,
        data: image,
    };
    index.image_slots = tables.image_slots;
    index.videos = videos;
    index.cues = tables.cues;
    index.terms = tables
        .terms
        .into_iter()
        .map(|(term, cues, keys)| (term.into_boxed_str(), Postings { cues, keys }))
        .collect();
    index.key_slots = tables.key_slots;
    for (graph, (pending, removed)) in index.graphs.iter_mut().zip(tables.graphs) {
        graph.pending = pending;
        graph.removed = removed as usize;
    }
    Ok(index)
}

fn write_halves(out: &mut impl Write, halves: &[f16]) -> std::io::Result<()> {
    let mut buffer = Vec::with_capacity(1 << 16);
    for chunk in halves.chunks(1 << 15) {
        buffer.clear();
        buffer.extend(chunk.iter().flat_map(|x| x.0.to_le_bytes()));
        out.write_all(&buffer)?;
    }
    Ok(())
}

/// Reads a `rows × dim` matrix; a size beyond the file's (`at_most`
/// halves) is corrupt and refused before allocating it.
fn read_halves(
    input: &mut impl Read,
    rows: u64,
    dim: u32,
    at_most: usize,
) -> Result<Vec<f16>, SnapshotError> {
    let count = (rows as usize)
        .checked_mul(dim as usize)
        .filter(|&count| count <= at_most)
        .ok_or_else(|| SnapshotError::Inconsistent("matrix size".into()))?;
    let mut halves = Vec::with_capacity(count);
    let mut buffer = vec![0u8; 1 << 16];
    while halves.len() < count {
        let want = ((count - halves.len()) * 2).min(buffer.len());
        input.read_exact(&mut buffer[..want])?;
        halves.extend(
            buffer[..want]
                .chunks_exact(2)
                .map(|b| f16(u16::from_le_bytes([b[0], b[1]]))),
        );
    }
    Ok(halves)
}

fn read_u32(input: &mut impl Read) -> std::io::Result<u32> {
    let mut bytes = [0u8; 4];
    input.read_exact(&mut bytes)?;
    Ok(u32::from_le_bytes(bytes))
}

fn read_u64(input: &mut impl Read) -> std::io::Result<u64> {
    let mut bytes = [0u8; 8];
    input.read_exact(&mut bytes)?;
    Ok(u64::from_le_bytes(bytes))
}

/// Reads `len` bytes, refusing a length longer than what is left (a
/// corrupt length must not allocate the machine's memory).
fn read_bytes(input: &mut impl Read, len: usize) -> Result<Vec<u8>, SnapshotError> {
    let mut bytes = vec![];
    input.take(len as u64).read_to_end(&mut bytes)?;
    if bytes.len() != len {
        return Err(SnapshotError::Checksum(FILE_NAME.into()));
    }
    Ok(bytes)
}

fn checksum_file(path: &Path) -> Result<(u64, u32), SnapshotError> {
    let mut input = Crc::new(File::open(path)?);
    let size = std::io::copy(&mut input, &mut std::io::sink())?;
    Ok((size, input.hasher.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{self, Rng};
    use crate::top_k;
    use vidseek_protocol::rank::{SegmentLogEntry, Space};

    const LOG: LogPosition = LogPosition {
        created_unix_ns: 1_700_000_000_000_000_000,
        first_sequence: 1,
        last_sequence: 500,
    };
    const APPLIED: Applied = Applied {
        log_created_unix_ns: LOG.created_unix_ns,
        sequence: 420,
    };

    /// A settled shard with some rows still waiting and some removed.
    fn shard() -> SegmentIndex {
        let mut rng = Rng(3);
        let mut index = testing::shard(&mut rng, 30, 0);
        index.settle_all();
        index.apply(SegmentLogEntry::Delete {
            video_id: "v1".into(),
        });
        index.apply(testing::video(&mut rng, "v2", "g2", 40));
        index.apply(testing::video(&mut rng, "extra", "g1", 20));
        assert!(index.unsettled() > 0);
        index
    }

    fn answers(index: &SegmentIndex) -> Vec<Vec<String>> {
        let mut rng = Rng(99);
        (0..20)
            .map(|i| {
                let space = if i % 2 == 0 {
                    Space::Text
                } else {
                    Space::Image
                };
                let terms: &[&str] = if i % 5 == 0 { &["w3", "common"] } else { &[] };
                testing::ids(&top_k(index, &testing::request(&mut rng, space, terms)))
            })
            .collect()
    }

    #[test]
    fn a_snapshot_restores_the_same_index() {
        let dir = tempfile::tempdir().unwrap();
        let mut index = shard();
        write(dir.path(), &index, APPLIED).unwrap();
        let (mut loaded, applied) = read(dir.path(), &LOG, 0).unwrap();
        assert_eq!(applied, APPLIED);
        assert_eq!(loaded.len(), index.len());
        assert_eq!(loaded.unsettled(), index.unsettled());
        assert_eq!(loaded.video("v2"), index.video("v2"));
        assert_eq!(
            loaded.document_frequency("common"),
            index.document_frequency("common")
        );
        assert_eq!(answers(&loaded), answers(&index));
        // Keys and graphs carry on alike: the same tail gives the same index.
        for index in [&mut index, &mut loaded] {
            index.apply(SegmentLogEntry::Delete {
                video_id: "v4".into(),
            });
            index.settle_all();
        }
        assert_eq!(answers(&loaded), answers(&index));
        assert!(
            answers(&loaded)
                .iter()
                .flatten()
                .all(|id| !id.starts_with("v4-"))
        );
        // A second snapshot replaces the first and its graph files.
        write(
            dir.path(),
            &loaded,
            Applied {
                sequence: 480,
                ..APPLIED
            },
        )
        .unwrap();
        let graphs = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(GRAPH_PREFIX)
            })
            .count();
        assert_eq!(graphs, 3, "text-shot, text-subtitle, image-shot");
        assert_eq!(read(dir.path(), &LOG, 0).unwrap().1.sequence, 480);
    }

    fn flip_byte(path: &Path, from_end: u64) {
        let mut bytes = std::fs::read(path).unwrap();
        let at = bytes.len() - from_end as usize;
        bytes[at] ^= 0x40;
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_corrupt_snapshot_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &shard(), APPLIED).unwrap();
        // A bit flipped in the matrices, just before the checksum.
        flip_byte(&dir.path().join(FILE_NAME), 100);
        let err = read(dir.path(), &LOG, 0).unwrap_err();
        assert!(matches!(err, SnapshotError::Checksum(_)), "{err}");

        write(dir.path(), &shard(), APPLIED).unwrap();
        let graph = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().path())
            .find(|p| p.to_string_lossy().ends_with("text-shot.usearch"))
            .unwrap();
        flip_byte(&graph, 10);
        let err = read(dir.path(), &LOG, 0).unwrap_err();
        assert!(
            matches!(err, SnapshotError::Checksum(ref f) if f.ends_with("text-shot.usearch")),
            "{err}"
        );

        std::fs::write(dir.path().join(FILE_NAME), b"short").unwrap();
        assert!(matches!(
            read(dir.path(), &LOG, 0),
            Err(SnapshotError::Magic)
        ));
    }

    #[test]
    fn a_snapshot_of_another_version_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &shard(), APPLIED).unwrap();
        let path = dir.path().join(FILE_NAME);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[MAGIC.len()..MAGIC.len() + 4].copy_from_slice(&(FORMAT_VERSION + 1).to_le_bytes());
        std::fs::write(&path, bytes).unwrap();
        let err = read(dir.path(), &LOG, 0).unwrap_err();
        assert!(
            matches!(err, SnapshotError::Version { found } if found == FORMAT_VERSION + 1),
            "{err}"
        );
    }

    #[test]
    fn a_stale_snapshot_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &shard(), APPLIED).unwrap();
        let recreated = LogPosition {
            created_unix_ns: LOG.created_unix_ns + 1,
            ..LOG
        };
        let err = read(dir.path(), &recreated, 0).unwrap_err();
        assert!(matches!(err, SnapshotError::Stale(_)), "{err}");
        let shorter = LogPosition {
            last_sequence: APPLIED.sequence - 1,
            ..LOG
        };
        let err = read(dir.path(), &shorter, 0).unwrap_err();
        assert!(matches!(err, SnapshotError::Stale(_)), "{err}");
        // The same log, grown since: fresh.
        let grown = LogPosition {
            last_sequence: 10_000,
            ..LOG
        };
        assert!(read(dir.path(), &grown, 0).is_ok());
    }

    #[test]
    fn no_snapshot_is_missing_not_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let err = read(&dir.path().join("absent"), &LOG, 0).unwrap_err();
        assert!(matches!(err, SnapshotError::Missing(_)), "{err}");
    }
}
