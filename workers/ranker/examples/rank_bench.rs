//! The ranker's index at scale, for `bench/ranker/run.sh` (`compare.py`
//! drives it and times numpy beside it).
//!
//! Builds a shard index of `--rows` synthetic unit vectors (dimension
//! `--dim`, clustered around 1,000 directions as real embeddings cluster;
//! videos of 100 segments, each applied as the ranker applies a log entry:
//! MessagePack-decoded, then applied), inserts them into the approximate
//! graphs, and prints one JSON line with the build: time per log entry,
//! graph build time, memory against the raw vector bytes, peak RSS. With
//! `--dump DIR` it writes the matrix (`matrix.f32`) and queries
//! (`queries.f32`) for numpy.
//!
//! Then it answers commands on stdin, one JSON line each:
//! - `exact`: times the `--queries` top-k text queries through
//!   `vidseek_ranker::top_k` with every row scanned exactly;
//! - `ann`: the same queries through the approximate graphs;
//! - `snapshot DIR`: writes the index's snapshot to DIR, drops the index,
//!   loads the snapshot, replays a tail of log entries (new videos and a
//!   delete), and checks the loaded index answers as the original did.
//!
//! Usage: rank_bench --rows N [--clusters C] [--queries Q] [--dim D] [--k K] [--dump DIR]

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Context;
use vidseek_bus::segment_log::LogPosition;
use vidseek_protocol::codec::{self, Format};
use vidseek_protocol::encode::Calibration;
use vidseek_protocol::rank::{
    KindCalibration, RankRequest, SegmentKind, SegmentLogEntry, SegmentMeta, SegmentRecord, Space,
};
use vidseek_ranker::{SegmentIndex, snapshot, top_k};

const SEGMENTS_PER_VIDEO: usize = 100;
const CLUSTERS: usize = 1000;
/// Spread of a vector around its cluster's direction (a cosine of about
/// 0.7 to it).
const NOISE: f32 = 1.0;

struct Args {
    rows: usize,
    /// Directions the vectors cluster around: rows per cluster sets how
    /// dense the neighbourhood of a query is.
    clusters: usize,
    queries: usize,
    dim: usize,
    k: usize,
    dump: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        rows: 10_000,
        clusters: CLUSTERS,
        queries: 200,
        dim: 384,
        k: 10,
        dump: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--rows" => args.rows = value.parse()?,
            "--clusters" => args.clusters = value.parse()?,
            "--queries" => args.queries = value.parse()?,
            "--dim" => args.dim = value.parse()?,
            "--k" => args.k = value.parse()?,
            "--dump" => args.dump = Some(value.into()),
            other => anyhow::bail!("unknown flag {other}"),
        }
    }
    Ok(args)
}

/// xorshift64*: deterministic, fast, and good enough for random directions.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    /// Roughly normal: a sum of four uniforms, scaled to variance 1.
    fn normal(&mut self) -> f32 {
        (self.uniform() + self.uniform() + self.uniform() + self.uniform()) * 0.866
    }
}

fn normalise(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
    v
}

/// Unit vectors scattered around random directions (`CLUSTERS` unless
/// `--clusters` says).
struct Vectors {
    rng: Rng,
    centres: Vec<Vec<f32>>,
}

impl Vectors {
    fn new(dim: usize, clusters: usize) -> Vectors {
        let mut rng = Rng(0x2545_f491_4f6c_dd1d);
        let centres = (0..clusters.max(1))
            .map(|_| normalise((0..dim).map(|_| rng.normal()).collect()))
            .collect();
        Vectors { rng, centres }
    }

    fn next(&mut self) -> Vec<f32> {
        let centre = &self.centres[(self.rng.next() % self.centres.len() as u64) as usize];
        let scale = NOISE / (centre.len() as f32).sqrt();
        let v = centre
            .iter()
            .map(|c| c + scale * self.rng.normal())
            .collect();
        normalise(v)
    }
}

fn status_bytes(field: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .with_context(|| format!("no {field}"))?;
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .context(field.to_string())?
        .parse()?;
    Ok(kib * 1024)
}

fn percentiles(mut values: Vec<f64>) -> serde_json::Value {
    values.sort_by(f64::total_cmp);
    let at = |p: f64| values[((p / 100.0) * (values.len() - 1) as f64).round() as usize];
    serde_json::json!({
        "p50": at(50.0), "p95": at(95.0), "p99": at(99.0),
        "max": values.last().copied().unwrap_or(0.0),
        "mean": values.iter().sum::<f64>() / values.len() as f64,
    })
}

fn video_entry(
    vectors: &mut Vectors,
    video: usize,
    count: usize,
    generation: &str,
) -> SegmentLogEntry {
    let video_id = format!("{video:016x}");
    let segments = (0..count)
        .map(|i| SegmentRecord {
            meta: SegmentMeta {
                segment_id: vidseek_protocol::rank::segment_id(&video_id, i as u32),
                video_id: video_id.clone(),
                video_name: format!("video-{video}.mp4"),
                index: i as u32,
                start: i as f64 * 2.0,
                end: i as f64 * 2.0 + 2.0,
                kind: SegmentKind::Shot,
                text: None,
            },
            text_vector: vectors.next(),
            image_vector: None,
            terms: vec![],
        })
        .collect();
    SegmentLogEntry::Upsert {
        video_id,
        generation: generation.into(),
        part: 0,
        parts: 1,
        segments,
    }
}

fn request(vector: &[f32], k: usize) -> RankRequest {
    let identity = Calibration { a: 1.0, b: 0.0 };
    RankRequest {
        space: Space::Text,
        vector: vector.to_vec(),
        k,
        calibration: KindCalibration {
            shot: identity,
            subtitle: identity,
            ocr: None,
        },
        min_score: 0.0,
        terms: vec![],
        filter: Default::default(),
        exclude: vec![],
        group_by_video: false,
        blend: None,
    }
}

/// Times the queries one at a time; returns the report and the rows found.
fn time_queries(
    index: &SegmentIndex,
    queries: &[Vec<f32>],
    k: usize,
) -> (serde_json::Value, Vec<Vec<usize>>) {
    for query in queries.iter().take(3) {
        top_k(index, &request(query, k));
    }
    let mut latencies_ms = Vec::with_capacity(queries.len());
    let mut tops = Vec::with_capacity(queries.len());
    let all = Instant::now();
    for query in queries {
        let request = request(query, k);
        let started = Instant::now();
        let hits = top_k(index, &request);
        latencies_ms.push(started.elapsed().as_secs_f64() * 1e3);
        tops.push(
            hits.iter()
                .map(|hit| {
                    let video = usize::from_str_radix(&hit.meta.video_id, 16).expect("hex id");
                    video * SEGMENTS_PER_VIDEO + hit.meta.index as usize
                })
                .collect::<Vec<usize>>(),
        );
    }
    let total_s = all.elapsed().as_secs_f64();
    let report = serde_json::json!({
        "latency_ms": percentiles(latencies_ms),
        "queries_per_second": queries.len() as f64 / total_s,
        "tops": tops,
    });
    (report, tops)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let mut vectors = Vectors::new(args.dim, args.clusters);
    let rss_before = status_bytes("VmRSS:")?;
    let mut index = SegmentIndex::default();
    let mut apply_us: Vec<f64> = vec![];
    let mut replay_s = 0.0;
    let mut row = 0;
    while row < args.rows {
        let count = SEGMENTS_PER_VIDEO.min(args.rows - row);
        let entry = video_entry(&mut vectors, row / SEGMENTS_PER_VIDEO, count, "g");
        // What a replay does per log entry: decode it, apply it.
        let payload = codec::encode(Format::MsgPack, &entry)?;
        drop(entry);
        let started = Instant::now();
        let entry: SegmentLogEntry = codec::decode(Format::MsgPack, &payload)?;
        let decoded = started.elapsed();
        index.apply(entry);
        let took = started.elapsed();
        apply_us.push((took - decoded).as_secs_f64() * 1e6);
        replay_s += took.as_secs_f64();
        row += count;
    }
    let rss_applied = status_bytes("VmRSS:")?;
    let started = Instant::now();
    index.settle_all();
    let graph_build_s = started.elapsed().as_secs_f64();
    let rss_after = status_bytes("VmRSS:")?;
    let queries: Vec<Vec<f32>> = (0..args.queries).map(|_| vectors.next()).collect();

    if let Some(dir) = &args.dump {
        std::fs::create_dir_all(dir)?;
        let mut file = std::io::BufWriter::new(std::fs::File::create(dir.join("matrix.f32"))?);
        // The matrix as the ranker holds it (half precision), for numpy.
        for x in index.text_vectors().block(0..index.len()) {
            file.write_all(&x.to_f32().to_le_bytes())?;
        }
        file.flush()?;
        let mut file = std::io::BufWriter::new(std::fs::File::create(dir.join("queries.f32"))?);
        for x in queries.iter().flatten() {
            file.write_all(&x.to_le_bytes())?;
        }
        file.flush()?;
    }
    // Rows are dumped in slot order; numpy names them by slot, the
    // ranker by video and index: the same when nothing was removed.
    let raw = (args.rows * args.dim * size_of::<f32>()) as f64;
    let accounted = index.memory_bytes() as f64;
    let vectors_only = (index.len() * args.dim * size_of::<vidseek_ranker::store::f16>()) as f64;
    let report = serde_json::json!({
        "rows": args.rows,
        "dim": args.dim,
        "k": args.k,
        "queries": args.queries,
        "exact_below_default": vidseek_ranker::DEFAULT_EXACT_BELOW,
        "scan_threads": std::thread::available_parallelism().map_or(1, usize::from),
        "replay_decode_apply_s": replay_s,
        "graph_build_s": graph_build_s,
        "apply_us_per_part": {
            "segments_per_part": SEGMENTS_PER_VIDEO,
            "percentiles": percentiles(apply_us),
        },
        "memory": {
            "raw_vector_bytes": raw,
            "index_bytes": accounted,
            "index_bytes_per_segment": accounted / args.rows as f64,
            "index_over_raw": accounted / raw,
            "graph_bytes": index.graph_memory_bytes() as f64,
            "matrix_over_raw": vectors_only / raw,
            "rss_delta_bytes": rss_after.saturating_sub(rss_before) as f64,
            "rss_delta_over_raw": rss_after.saturating_sub(rss_before) as f64 / raw,
            "rss_delta_before_graphs_over_raw": rss_applied.saturating_sub(rss_before) as f64 / raw,
            "peak_rss_bytes": status_bytes("VmHWM:")? as f64,
        },
    });
    println!("{report}");

    let stdin = std::io::stdin();
    let mut last_ann: Option<Vec<Vec<usize>>> = None;
    let mut last_exact: Option<Vec<Vec<usize>>> = None;
    let mut index = Some(index);
    for line in stdin.lock().lines() {
        let line = line?;
        let mut words = line.split_whitespace();
        let reply = match (words.next(), index.as_mut()) {
            (Some("exact"), Some(index)) => {
                let below = index.exact_below();
                index.set_exact_below(usize::MAX);
                let (report, tops) = time_queries(index, &queries, args.k);
                index.set_exact_below(below);
                last_exact = Some(tops);
                report
            }
            (Some("ann"), Some(index)) => {
                let below = index.exact_below();
                index.set_exact_below(0);
                let (mut report, tops) = time_queries(index, &queries, args.k);
                index.set_exact_below(below);
                // Against this run's own exact scan, when one was asked for
                // first (compare.py measures recall against numpy).
                if let Some(exact) = &last_exact {
                    let found: usize = exact
                        .iter()
                        .zip(&tops)
                        .map(|(e, a)| e.iter().filter(|row| a.contains(row)).count())
                        .sum();
                    let wanted: usize = exact.iter().map(Vec::len).sum();
                    report["recall_vs_exact"] =
                        serde_json::json!(found as f64 / wanted.max(1) as f64);
                }
                last_ann = Some(tops);
                report
            }
            (Some("snapshot"), Some(_)) => {
                let dir = PathBuf::from(words.next().context("snapshot DIR")?);
                let original = index.take().expect("checked");
                let (report, restored) =
                    restart(original, &dir, &mut vectors, &queries, args.k, &last_ann)?;
                index = Some(restored);
                report
            }
            (Some("quit"), _) | (None, _) => break,
            (Some(other), _) => anyhow::bail!("unknown command {other}"),
        };
        println!("{reply}");
        std::io::stdout().flush()?;
    }
    Ok(())
}

/// Writes the snapshot, drops the index, loads it back and replays a tail
/// of 10 log entries (9 new videos and a delete), as a restarting ranker
/// does; the loaded index must answer as the original did.
fn restart(
    index: SegmentIndex,
    dir: &Path,
    vectors: &mut Vectors,
    queries: &[Vec<f32>],
    k: usize,
    ann_tops: &Option<Vec<Vec<usize>>>,
) -> anyhow::Result<(serde_json::Value, SegmentIndex)> {
    let log = LogPosition {
        created_unix_ns: 1,
        first_sequence: 1,
        last_sequence: u64::MAX,
    };
    let applied = snapshot::Applied {
        log_created_unix_ns: 1,
        sequence: (index.len() / SEGMENTS_PER_VIDEO) as u64,
    };
    let rows = index.len();
    let started = Instant::now();
    let bytes = snapshot::write(dir, &index, applied)?;
    let write_s = started.elapsed().as_secs_f64();
    let exact_below = index.exact_below();
    drop(index);

    let started = Instant::now();
    let (mut index, _) = snapshot::read(dir, &log, exact_below)?;
    let load_s = started.elapsed().as_secs_f64();
    let same_answers = match ann_tops {
        Some(expected) => {
            index.set_exact_below(0);
            let (_, tops) = time_queries(&index, queries, k);
            index.set_exact_below(exact_below);
            Some(&tops == expected)
        }
        None => None,
    };
    let started = Instant::now();
    let first_new = rows / SEGMENTS_PER_VIDEO + 1;
    for video in first_new..first_new + 9 {
        let entry = video_entry(vectors, video, SEGMENTS_PER_VIDEO, "g");
        let payload = codec::encode(Format::MsgPack, &entry)?;
        index.apply(codec::decode(Format::MsgPack, &payload)?);
    }
    index.apply(SegmentLogEntry::Delete {
        video_id: format!("{first_new:016x}"),
    });
    let tail_s = started.elapsed().as_secs_f64();
    let report = serde_json::json!({
        "snapshot_bytes": bytes,
        "write_s": write_s,
        "load_s": load_s,
        "tail_entries": 10,
        "tail_apply_s": tail_s,
        "serving_after_s": load_s + tail_s,
        "same_answers_after_load": same_answers,
        "rows_after_tail": index.len(),
    });
    Ok((report, index))
}
