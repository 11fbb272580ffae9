//! Shared fixtures of the unit tests: a shard of random clustered vectors
//! with every kind of segment the index handles.

use vidseek_protocol::encode::Calibration;
use vidseek_protocol::rank::{
    KindCalibration, RankRequest, RankedSegment, SegmentKind, SegmentLogEntry, SegmentMeta,
    SegmentRecord, Space,
};

use crate::SegmentIndex;

pub const DIM: usize = 16;

/// xorshift64: deterministic, so failures reproduce.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 * 2.0 - 1.0
    }

    /// A unit vector near one of 20 fixed directions, as embeddings of
    /// similar scenes cluster.
    pub fn vector(&mut self) -> Vec<f32> {
        let cluster = self.next() % 20;
        let mut centre = Rng(cluster + 1);
        let mut v: Vec<f32> = (0..DIM)
            .map(|_| centre.uniform() + 0.4 * self.uniform())
            .collect();
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        v
    }
}

/// One video's segments: every third a subtitle cue (with terms from a
/// small vocabulary, no image), the rest shots with an image vector.
pub fn video(rng: &mut Rng, video: &str, generation: &str, count: u32) -> SegmentLogEntry {
    let segments = (0..count)
        .map(|index| {
            let cue = index % 3 == 0;
            SegmentRecord {
                meta: SegmentMeta {
                    segment_id: format!("{video}-{index}"),
                    video_id: video.into(),
                    video_name: format!("{video}.mp4"),
                    index,
                    start: index as f64,
                    end: index as f64 + 1.0,
                    kind: if cue {
                        SegmentKind::Subtitle
                    } else {
                        SegmentKind::Shot
                    },
                    text: cue.then(|| format!("cue {index}")),
                },
                text_vector: rng.vector(),
                image_vector: (!cue).then(|| rng.vector()),
                terms: if cue {
                    vec![format!("w{}", rng.next() % 50), "common".into()]
                } else {
                    vec![]
                },
            }
        })
        .collect();
    SegmentLogEntry::Upsert {
        video_id: video.into(),
        generation: generation.into(),
        part: 0,
        parts: 1,
        segments,
    }
}

/// `videos` videos of 50 segments.
pub fn shard(rng: &mut Rng, videos: u32, exact_below: usize) -> SegmentIndex {
    let mut index = SegmentIndex::with_exact_below(exact_below);
    for v in 0..videos {
        index.apply(video(rng, &format!("v{v}"), "g1", 50));
    }
    index
}

/// A top-10 request; cues calibrate differently from shots, so the two
/// kinds' scores interleave differently from their cosines.
pub fn request(rng: &mut Rng, space: Space, terms: &[&str]) -> RankRequest {
    RankRequest {
        space,
        vector: rng.vector(),
        k: 10,
        calibration: KindCalibration {
            shot: Calibration { a: 10.0, b: -5.0 },
            subtitle: Calibration { a: 6.0, b: -2.0 },
            ocr: None,
        },
        min_score: 0.0,
        terms: terms.iter().map(|t| t.to_string()).collect(),
        filter: Default::default(),
        exclude: vec![],
        group_by_video: false,
        blend: None,
    }
}

pub fn ids(hits: &[RankedSegment]) -> Vec<String> {
    hits.iter().map(|h| h.meta.segment_id.clone()).collect()
}
