//! The ranker's own exact scan at scale, for `bench/ranker/run.sh`.
//!
//! Builds a shard index of `--rows` synthetic unit vectors (dimension
//! `--dim`, videos of 100 segments each, applied one log part at a time as a
//! ranker does), times `--queries` top-k text queries through
//! `vidseek_ranker::top_k`, and prints one JSON object: latency
//! percentiles, queries per second, the time one log entry holds the write
//! lock, and memory against the raw vector bytes. With `--dump DIR` it also
//! writes the matrix (`matrix.f32`), the queries (`queries.f32`) and the
//! rows it returned (`rust_top.json`), so the same scan can be timed in
//! numpy and checked against it.
//!
//! Usage: rank_bench --rows N [--queries Q] [--dim D] [--k K] [--dump DIR]

use std::io::Write;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use vidseek_protocol::encode::Calibration;
use vidseek_protocol::rank::{
    KindCalibration, RankRequest, SegmentKind, SegmentLogEntry, SegmentMeta, SegmentRecord, Space,
};
use vidseek_ranker::{SegmentIndex, top_k};

const SEGMENTS_PER_VIDEO: usize = 100;

struct Args {
    rows: usize,
    queries: usize,
    dim: usize,
    k: usize,
    dump: Option<PathBuf>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        rows: 10_000,
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
    fn uniform(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 40;
        bits as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    fn unit_vector(&mut self, dim: usize) -> Vec<f32> {
        let mut v: Vec<f32> = (0..dim).map(|_| self.uniform()).collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        v
    }
}

fn resident_bytes() -> anyhow::Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let line = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .context("no VmRSS")?;
    let kib: u64 = line.split_whitespace().nth(1).context("VmRSS")?.parse()?;
    Ok(kib * 1024)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank]
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let mut rng = Rng(0x2545_f491_4f6c_dd1d);
    let mut matrix_file = match &args.dump {
        Some(dir) => {
            std::fs::create_dir_all(dir)?;
            Some(std::io::BufWriter::new(std::fs::File::create(
                dir.join("matrix.f32"),
            )?))
        }
        None => None,
    };

    let rss_before = resident_bytes()?;
    let mut index = SegmentIndex::default();
    let mut apply_us: Vec<f64> = vec![];
    let build = Instant::now();
    let mut row = 0;
    while row < args.rows {
        let video = row / SEGMENTS_PER_VIDEO;
        let video_id = format!("{video:016x}");
        let count = SEGMENTS_PER_VIDEO.min(args.rows - row);
        let segments: Vec<SegmentRecord> = (0..count)
            .map(|i| {
                let text_vector = rng.unit_vector(args.dim);
                if let Some(file) = matrix_file.as_mut() {
                    for x in &text_vector {
                        file.write_all(&x.to_le_bytes())?;
                    }
                }
                Ok(SegmentRecord {
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
                    text_vector,
                    image_vector: None,
                    terms: vec![],
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let entry = SegmentLogEntry::Upsert {
            video_id,
            generation: "g".into(),
            part: 0,
            parts: 1,
            segments,
        };
        let started = Instant::now();
        index.apply(entry);
        apply_us.push(started.elapsed().as_secs_f64() * 1e6);
        row += count;
    }
    let build_s = build.elapsed().as_secs_f64();
    let rss_after = resident_bytes()?;
    if let Some(mut file) = matrix_file.take() {
        file.flush()?;
    }

    let identity = Calibration { a: 1.0, b: 0.0 };
    let queries: Vec<Vec<f32>> = (0..args.queries)
        .map(|_| rng.unit_vector(args.dim))
        .collect();
    let request = |vector: &Vec<f32>| RankRequest {
        space: Space::Text,
        vector: vector.clone(),
        k: args.k,
        calibration: KindCalibration {
            shot: identity,
            subtitle: identity,
        },
        min_score: 0.0,
        terms: vec![],
    };
    for query in queries.iter().take(3) {
        top_k(&index, &request(query));
    }
    let mut latencies_ms = Vec::with_capacity(queries.len());
    let mut tops: Vec<Vec<usize>> = Vec::with_capacity(queries.len());
    let all = Instant::now();
    for query in &queries {
        let request = request(query);
        let started = Instant::now();
        let hits = top_k(&index, &request);
        latencies_ms.push(started.elapsed().as_secs_f64() * 1e3);
        tops.push(
            hits.iter()
                .map(|hit| {
                    let video = usize::from_str_radix(&hit.meta.video_id, 16).expect("hex id");
                    video * SEGMENTS_PER_VIDEO + hit.meta.index as usize
                })
                .collect(),
        );
    }
    let total_s = all.elapsed().as_secs_f64();
    latencies_ms.sort_by(f64::total_cmp);
    apply_us.sort_by(f64::total_cmp);

    if let Some(dir) = &args.dump {
        let mut file = std::io::BufWriter::new(std::fs::File::create(dir.join("queries.f32"))?);
        for x in queries.iter().flatten() {
            file.write_all(&x.to_le_bytes())?;
        }
        file.flush()?;
        std::fs::write(dir.join("rust_top.json"), serde_json::to_vec(&tops)?)?;
    }

    let raw = (args.rows * args.dim * size_of::<f32>()) as f64;
    let accounted = index.memory_bytes() as f64;
    let rss_delta = rss_after.saturating_sub(rss_before) as f64;
    let report = serde_json::json!({
        "rows": args.rows,
        "dim": args.dim,
        "k": args.k,
        "queries": args.queries,
        "scan_threads": std::thread::available_parallelism().map_or(1, usize::from),
        "latency_ms": {
            "p50": percentile(&latencies_ms, 50.0),
            "p95": percentile(&latencies_ms, 95.0),
            "p99": percentile(&latencies_ms, 99.0),
            "mean": latencies_ms.iter().sum::<f64>() / latencies_ms.len() as f64,
        },
        "queries_per_second": args.queries as f64 / total_s,
        "build_s": build_s,
        "apply_us_per_part": {
            "segments_per_part": SEGMENTS_PER_VIDEO,
            "p50": percentile(&apply_us, 50.0),
            "p99": percentile(&apply_us, 99.0),
            "max": apply_us.last().copied().unwrap_or(0.0),
        },
        "memory": {
            "raw_vector_bytes": raw,
            "index_bytes": accounted,
            "index_bytes_per_segment": accounted / args.rows as f64,
            "index_over_raw": accounted / raw,
            "rss_delta_bytes": rss_delta,
            "rss_delta_over_raw": rss_delta / raw,
        },
    });
    println!("{report}");
    Ok(())
}
