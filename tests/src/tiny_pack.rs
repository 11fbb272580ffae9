//! For fault tests, where the plumbing is under test and the model's answers
//! are not: the tiny random-weight model pack of
//! `deploy/models/make_fixture_pack.py` (an encoder loads it in milliseconds
//! and encodes for next to nothing, leaving the CPU to the processes under
//! test), and synthetic segments published straight to the segment log, so a
//! query test needs no ingest.

use std::path::{Path, PathBuf};
use std::process::Command;

use async_nats::jetstream;
use vidseek_protocol::rank::{SegmentKind, SegmentMeta, SegmentRecord};
use vidseek_protocol::sharding::shard_of;

use crate::paths::{python, workspace_root};

/// Writes the tiny pack (the default pack's shape, 8-dimensional text
/// vectors) into `dir`; returns `dir` for `VIDSEEK_MODEL_PACK`.
pub fn write(dir: &Path) -> PathBuf {
    let output = Command::new(python())
        .arg(workspace_root().join("deploy/models/make_fixture_pack.py"))
        .arg("--out")
        .arg(dir)
        .args(["--kind", "conse"])
        .output()
        .expect("run make_fixture_pack.py");
    assert!(
        output.status.success(),
        "make_fixture_pack.py failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    dir.to_path_buf()
}

/// A video seeded into the segment log.
#[derive(Debug, Clone)]
pub struct SeededVideo {
    pub video_id: String,
    pub shard: u32,
    pub segments: u32,
}

/// Publishes `videos_per_shard` videos of `segments` shots each to every
/// shard's log, with unit text vectors of `dim` components (a query in that
/// space scores every one of them, so `k = 100` returns them all when there
/// are at most 100). The fleet's processes create the stream at start-up.
pub async fn seed(
    js: &jetstream::Context,
    shards: u32,
    videos_per_shard: u32,
    segments: u32,
    dim: usize,
) -> Vec<SeededVideo> {
    let mut videos = vec![];
    let mut candidate = 0u32;
    for shard in 0..shards {
        let mut placed = 0;
        while placed < videos_per_shard {
            // Video ids are hex digests in real use; any id without '-' will do.
            let video_id = format!("seed{candidate:04x}");
            candidate += 1;
            if shard_of(&video_id, shards) != shard {
                continue;
            }
            let records = (0..segments)
                .map(|index| record(&video_id, index, dim))
                .collect();
            vidseek_bus::segment_log::replace_video(js, shard, &video_id, "g1", records)
                .await
                .expect("publish seeded segments");
            videos.push(SeededVideo {
                video_id,
                shard,
                segments,
            });
            placed += 1;
        }
    }
    videos
}

fn record(video_id: &str, index: u32, dim: usize) -> SegmentRecord {
    // Distinct, unit-length vectors: one component stands out per segment.
    let mut vector = vec![0.1f32; dim];
    vector[index as usize % dim] = 1.0;
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    vector.iter_mut().for_each(|x| *x /= norm);
    SegmentRecord {
        meta: SegmentMeta {
            segment_id: vidseek_protocol::rank::segment_id(video_id, index),
            video_id: video_id.into(),
            video_name: format!("{video_id}.mp4"),
            index,
            start: f64::from(index) * 2.0,
            end: f64::from(index) * 2.0 + 2.0,
            kind: SegmentKind::Shot,
            text: None,
        },
        text_vector: vector,
        image_vector: None,
        terms: vec![],
    }
}
