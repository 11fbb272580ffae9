//! The whole media side of ingest in one call: probe, cuts, segments,
//! frames and thumbnails. The ingest worker feeds the frames to the encoder
//! from the callback; the benchmark times it as it is.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::error::Result;
use super::frames::{SampleOptions, SamplingStrategy, SegmentFrames, sample_frames};
use super::probe::{Probe, probe};
use super::segments::{DEFAULT_MAX_SEGMENT_SECS, Segment, plan_segments};
use super::shots::{Cut, ShotParams, detect_cuts};
use super::thumbnail::{pick_thumbnail, write_thumbnail};

/// Share of the progress bar given to shot detection (a full decode); the
/// rest goes to frame sampling and thumbnails.
const SHOTS_SHARE: f32 = 0.6;

/// Settings for [`analyze`].
#[derive(Debug, Clone)]
pub struct AnalyzeOptions {
    /// Cut detection tunables.
    pub shots: ShotParams,
    /// Longest segment in seconds.
    pub max_segment_secs: f64,
    /// Frames per segment, their size and the decoding strategy.
    pub sampling: SampleOptions,
    /// Where to write one JPEG per segment, named `seg-00000.jpg` by segment
    /// index; `None` writes none.
    pub thumbnail_dir: Option<PathBuf>,
}

impl Default for AnalyzeOptions {
    fn default() -> Self {
        Self {
            shots: ShotParams::default(),
            max_segment_secs: DEFAULT_MAX_SEGMENT_SECS,
            sampling: SampleOptions::default(),
            thumbnail_dir: None,
        }
    }
}

/// One segment as [`analyze`] hands it over.
#[derive(Debug)]
pub struct AnalyzedSegment {
    /// The segment's time range.
    pub segment: Segment,
    /// Its sampled frames.
    pub frames: SegmentFrames,
    /// Index into `frames.frames` of the cover frame.
    pub thumbnail: usize,
    /// Where the cover was written, when `thumbnail_dir` was set.
    pub thumbnail_path: Option<PathBuf>,
}

/// What [`analyze`] found, with the time each stage took.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Analysis {
    /// ffprobe's facts.
    pub probe: Probe,
    /// Detected cuts.
    pub cuts: Vec<Cut>,
    /// The planned segments (all of them, even if the callback stopped early).
    pub segments: Vec<Segment>,
    /// Segments handed to the callback.
    pub segments_delivered: usize,
    /// The frame sampling strategy used.
    pub sampling: SamplingStrategy,
    /// Wall-clock seconds per stage.
    pub timings: StageTimings,
}

/// Wall-clock seconds spent in each stage of [`analyze`].
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StageTimings {
    /// ffprobe.
    pub probe: f64,
    /// Full decode and cut detection.
    pub shots: f64,
    /// Frame sampling, excluding thumbnails and the callback.
    pub frames: f64,
    /// Picking and writing thumbnails.
    pub thumbnails: f64,
    /// Inside the caller's callback (e.g. the encoder).
    pub callback: f64,
}

/// Runs the media side of ingest on `path`: [`probe`], [`detect_cuts`],
/// [`plan_segments`], [`sample_frames`] and thumbnails, calling
/// `on_segment` once per segment in order while decoding continues.
/// `progress` receives 0..=1; returning `Break` from `on_segment` stops
/// early (the analysis so far is returned).
pub fn analyze(
    path: &Path,
    options: &AnalyzeOptions,
    progress: &mut dyn FnMut(f32),
    on_segment: &mut dyn FnMut(AnalyzedSegment) -> ControlFlow<()>,
) -> Result<Analysis> {
    let mut timings = StageTimings::default();
    let clock = Instant::now();
    let probe = probe(path)?;
    timings.probe = clock.elapsed().as_secs_f64();

    let clock = Instant::now();
    let cuts = detect_cuts(path, &probe, &options.shots, &mut |p| {
        progress(p * SHOTS_SHARE)
    })?;
    timings.shots = clock.elapsed().as_secs_f64();

    let cut_times: Vec<f64> = cuts.iter().map(|c| c.time).collect();
    let segments = plan_segments(probe.duration, &cut_times, options.max_segment_secs);

    let mut sampler = sample_frames(path, &probe, &segments, &options.sampling)?;
    let sampling = sampler.strategy();
    let mut delivered = 0;
    loop {
        let clock = Instant::now();
        let Some(frames) = sampler.next().transpose()? else {
            break;
        };
        timings.frames += clock.elapsed().as_secs_f64();

        let clock = Instant::now();
        let thumbnail = pick_thumbnail(&frames.frames).unwrap_or(0);
        let thumbnail_path = match &options.thumbnail_dir {
            Some(dir) => {
                let path = dir.join(format!("seg-{:05}.jpg", frames.index));
                write_thumbnail(&frames.frames[thumbnail], &path)?;
                Some(path)
            }
            None => None,
        };
        timings.thumbnails += clock.elapsed().as_secs_f64();

        let clock = Instant::now();
        let segment = segments[frames.index];
        delivered += 1;
        let flow = on_segment(AnalyzedSegment {
            segment,
            frames,
            thumbnail,
            thumbnail_path,
        });
        timings.callback += clock.elapsed().as_secs_f64();
        progress(SHOTS_SHARE + (1.0 - SHOTS_SHARE) * delivered as f32 / segments.len() as f32);
        if flow.is_break() {
            break;
        }
    }
    Ok(Analysis {
        probe,
        cuts,
        segments,
        segments_delivered: delivered,
        sampling,
        timings,
    })
}
