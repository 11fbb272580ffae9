//! The whole media side of ingest in one call: probe, cuts, segments,
//! frames and thumbnails. The ingest worker feeds the frames to the encoder
//! from the callback; the benchmark times it as it is.
//!
//! The video is decoded once: one ffmpeg splits each decoded frame into the
//! shot detector's 64x36 picture (every frame), the sampling grid
//! (a few frames a second at the sampling size, see [`SharedGrid`]) and,
//! when captions are read, the caption band for OCR (see
//! [`crate::ocr::caption_band`]; read on the caller's thread). A
//! segment is handed over as soon as the cuts around it have settled, or,
//! in a long shot, as soon as no end of the shot can change its window,
//! so the encoder works on early segments while later ones decode. Only an
//! explicit [`SamplingStrategy::Seek`] still decodes twice (a full pass for
//! the cuts, then short seeks for the frames).

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::error::Result;
use super::ffmpeg::{RawFrames, RawFramesSpec, SHOWINFO, SideSpec, input_args, side_showinfo};
use super::frames::{SampleOptions, SamplingStrategy, SegmentFrames, SharedGrid, sample_frames};
use super::ocr::CaptionTap;
use super::probe::{Probe, probe};
use super::segments::{
    DEFAULT_MAX_SEGMENT_SECS, Segment, effective_max_len, long_shot_windows, plan_segments,
    shortest_shot,
};
use super::shots::{Cut, ShotDetector, ShotParams, check_complete, detect_cuts, tiny_chain};
use super::thumbnail::{pick_thumbnail, write_thumbnail};

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
    /// The planned segments: all of them, or with one decode those planned
    /// before the callback stopped early.
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
    /// Full decode and cut detection (with one decode, the decode shared
    /// with frame sampling).
    pub shots: f64,
    /// Frame sampling, excluding thumbnails and the callback (with one
    /// decode, picking the grid frames of each segment).
    pub frames: f64,
    /// Picking and writing thumbnails.
    pub thumbnails: f64,
    /// Inside the caller's callback (e.g. the encoder).
    pub callback: f64,
}

/// Runs the media side of ingest on `path`: [`probe`], cut detection,
/// [`plan_segments`], frame sampling and thumbnails, calling `on_segment`
/// once per segment in order while decoding continues. `progress` receives
/// 0..=1; returning `Break` from `on_segment` stops early (the analysis so
/// far is returned). With `captions`, the same decode also samples the
/// caption band into that tap (its reader must run on another thread).
pub fn analyze(
    path: &Path,
    options: &AnalyzeOptions,
    captions: Option<CaptionTap>,
    progress: &mut dyn FnMut(f32),
    on_segment: &mut dyn FnMut(AnalyzedSegment) -> ControlFlow<()>,
) -> Result<Analysis> {
    let mut timings = StageTimings::default();
    let clock = Instant::now();
    let probe = probe(path)?;
    timings.probe = clock.elapsed().as_secs_f64();
    let mut delivery = Delivery {
        options,
        timings,
        delivered: 0,
        stopped: false,
    };
    let (cuts, segments, sampling) = match options.sampling.strategy {
        SamplingStrategy::Seek => std::thread::scope(|scope| {
            // The seeking sampler has no full decode to share: the band
            // gets one of its own, beside.
            if let Some(tap) = captions {
                scope.spawn(|| tap.feed_from_own_decode(path, &probe));
            }
            two_decodes(path, &probe, &mut delivery, progress, on_segment)
        })?,
        SamplingStrategy::SinglePass | SamplingStrategy::Auto => {
            one_decode(path, &probe, captions, &mut delivery, progress, on_segment)?
        }
    };
    Ok(Analysis {
        probe,
        cuts,
        segments,
        segments_delivered: delivery.delivered,
        sampling,
        timings: delivery.timings,
    })
}

/// Hands segments to the caller: thumbnail, callback, bookkeeping.
struct Delivery<'a> {
    options: &'a AnalyzeOptions,
    timings: StageTimings,
    delivered: usize,
    stopped: bool,
}

impl Delivery<'_> {
    fn deliver(
        &mut self,
        segment: Segment,
        frames: SegmentFrames,
        on_segment: &mut dyn FnMut(AnalyzedSegment) -> ControlFlow<()>,
    ) -> Result<()> {
        let clock = Instant::now();
        let thumbnail = pick_thumbnail(&frames.frames).unwrap_or(0);
        let thumbnail_path = match &self.options.thumbnail_dir {
            Some(dir) => {
                let path = dir.join(format!("seg-{:05}.jpg", frames.index));
                write_thumbnail(&frames.frames[thumbnail], &path)?;
                Some(path)
            }
            None => None,
        };
        self.timings.thumbnails += clock.elapsed().as_secs_f64();

        let clock = Instant::now();
        self.delivered += 1;
        let flow = on_segment(AnalyzedSegment {
            segment,
            frames,
            thumbnail,
            thumbnail_path,
        });
        self.timings.callback += clock.elapsed().as_secs_f64();
        self.stopped = flow.is_break();
        Ok(())
    }
}

/// Share of the progress bar given to shot detection when it is a decode
/// of its own; the rest goes to frame sampling and thumbnails.
const SHOTS_SHARE: f32 = 0.6;

/// Cuts from a full decode, then frames by seeking.
fn two_decodes(
    path: &Path,
    probe: &Probe,
    delivery: &mut Delivery<'_>,
    progress: &mut dyn FnMut(f32),
    on_segment: &mut dyn FnMut(AnalyzedSegment) -> ControlFlow<()>,
) -> Result<(Vec<Cut>, Vec<Segment>, SamplingStrategy)> {
    let options = delivery.options;
    let clock = Instant::now();
    let cuts = detect_cuts(path, probe, &options.shots, &mut |p| {
        progress(p * SHOTS_SHARE)
    })?;
    delivery.timings.shots = clock.elapsed().as_secs_f64();

    let cut_times: Vec<f64> = cuts.iter().map(|c| c.time).collect();
    let segments = plan_segments(probe.duration, &cut_times, options.max_segment_secs);

    let mut sampler = sample_frames(path, probe, &segments, &options.sampling)?;
    let sampling = sampler.strategy();
    loop {
        let clock = Instant::now();
        let Some(frames) = sampler.next().transpose()? else {
            break;
        };
        delivery.timings.frames += clock.elapsed().as_secs_f64();
        delivery.deliver(segments[frames.index], frames, on_segment)?;
        progress(
            SHOTS_SHARE + (1.0 - SHOTS_SHARE) * delivery.delivered as f32 / segments.len() as f32,
        );
        if delivery.stopped {
            break;
        }
    }
    Ok((cuts, segments, sampling))
}

/// Cuts and frames from one decode (see the module docs).
fn one_decode(
    path: &Path,
    probe: &Probe,
    captions: Option<CaptionTap>,
    delivery: &mut Delivery<'_>,
    progress: &mut dyn FnMut(f32),
    on_segment: &mut dyn FnMut(AnalyzedSegment) -> ControlFlow<()>,
) -> Result<(Vec<Cut>, Vec<Segment>, SamplingStrategy)> {
    let options = delivery.options;
    let decoding = Instant::now();
    let max_len = effective_max_len(options.max_segment_secs);
    let shortest = shortest_shot(max_len);
    let (grid_chain, grid_len, mut grid) =
        SharedGrid::new(path, probe, &options.sampling, shortest);
    let mut graph = format!(
        "[0:v]split={outputs}[shots][grid]{band};[shots]{},{SHOWINFO}[main];[grid]{grid_chain},{}[{GRID}]",
        tiny_chain(),
        side_showinfo(GRID),
        outputs = if captions.is_some() { 3 } else { 2 },
        band = if captions.is_some() { "[band]" } else { "" },
    );
    let mut sides = vec![SideSpec {
        name: GRID,
        pix_fmt: "rgb24",
        frame_len: grid_len,
        sink: None,
    }];
    if let Some(tap) = captions {
        let (chain, frame_len) = tap.chain(probe);
        graph += &format!(";[band]{chain},{}[{CAPTIONS}]", side_showinfo(CAPTIONS));
        sides.push(SideSpec {
            name: CAPTIONS,
            pix_fmt: CaptionTap::PIX_FMT,
            frame_len,
            sink: Some(Box::new(tap.into_sink(probe))),
        });
    }
    let mut decode = RawFrames::spawn_split(
        RawFramesSpec {
            input_args: input_args(path, None),
            filter: &graph,
            complex: true,
            pix_fmt: "rgb24",
            frame_len: ShotDetector::FRAME_LEN,
            timed: true,
        },
        sides,
    )?;
    let grid_frames = decode
        .side(GRID)
        .and_then(|side| side.frames())
        .expect("a split decode has a grid output");
    let per_segment = options.sampling.per_segment;
    let mut detector = ShotDetector::new(options.shots.clone(), probe.fps);
    // Segments planned so far (handed to the grid); they tile the video
    // up to `planned_end`.
    let mut planned: Vec<Segment> = vec![];
    let mut buf = vec![0u8; ShotDetector::FRAME_LEN];
    let mut count = 0u64;
    let mut reported = -1.0f32;
    // Time outside the decode loop's own work, taken off `shots` at the end.
    let mut elsewhere = 0.0;
    while let Some(pts) = decode.next_frame(&mut buf)? {
        detector.push(pts, &buf);
        count += 1;
        let clock = Instant::now();
        // Whatever the grid has made so far; the rest comes with later frames.
        while let Ok(frame) = grid_frames.try_recv() {
            let (time, raw) = frame?;
            grid.push(time, raw);
        }
        let (cuts, undecided) = detector.decided();
        if let Some(anchor) = settled_until(cuts, planned_end(&planned), undecided, shortest) {
            let cut_times: Vec<f64> = cuts
                .iter()
                .map(|c| c.time)
                .filter(|&t| t < anchor)
                .collect();
            let segments = plan_segments(anchor, &cut_times, max_len);
            grid.plan(&segments[planned.len()..], probe, per_segment);
            planned = segments;
        }
        if let Some(segments) = opening_windows(cuts, planned_end(&planned), undecided, max_len) {
            grid.plan(&segments[planned.len()..], probe, per_segment);
            planned = segments;
        }
        while let Some(frames) = next_frames(&mut grid, &mut delivery.timings) {
            let frames = frames?;
            delivery.deliver(planned[frames.index], frames, on_segment)?;
            if delivery.stopped {
                let cuts = detector.decided().0.to_vec();
                return Ok((cuts, planned, SamplingStrategy::SinglePass));
            }
        }
        elsewhere += clock.elapsed().as_secs_f64();
        let done = (pts / probe.duration).clamp(0.0, 1.0) as f32;
        // Report in 0.5 % steps; the last segments follow the decode.
        if done - reported >= 0.005 {
            reported = done;
            progress(0.99 * done);
        }
    }
    let last = decode.last_pts();
    let (ok, tail) = decode.finish_with_tail()?;
    check_complete(ok, count, last, probe.duration, &tail)?;
    // ffmpeg has exited: the side output's reader drains what is left.
    for frame in grid_frames.iter() {
        let (time, raw) = frame?;
        grid.push(time, raw);
    }
    grid.end();
    let cuts = detector.finish();
    let cut_times: Vec<f64> = cuts.iter().map(|c| c.time).collect();
    let segments = plan_segments(probe.duration, &cut_times, max_len);
    grid.plan(
        &segments[planned.len().min(segments.len())..],
        probe,
        per_segment,
    );
    delivery.timings.shots = (decoding.elapsed().as_secs_f64() - elsewhere).max(0.0);
    while let Some(frames) = next_frames(&mut grid, &mut delivery.timings) {
        let frames = frames?;
        delivery.deliver(segments[frames.index], frames, on_segment)?;
        if delivery.stopped {
            break;
        }
    }
    progress(1.0);
    Ok((cuts, segments, SamplingStrategy::SinglePass))
}

/// Where the segments planned so far end (they start at 0).
fn planned_end(planned: &[Segment]) -> f64 {
    planned.last().map_or(0.0, |s| s.end)
}

/// The side outputs of the one decode: the sampling grid and the caption band.
const GRID: &str = "grid";
const CAPTIONS: &str = "captions";

/// The next segment's frames from the grid, timed as frame sampling.
fn next_frames(grid: &mut SharedGrid, timings: &mut StageTimings) -> Option<Result<SegmentFrames>> {
    let clock = Instant::now();
    let frames = grid.next_ready();
    timings.frames += clock.elapsed().as_secs_f64();
    frames
}

/// The plan up to the end of the last window of the shot in progress that
/// no end of it can move ([`long_shot_windows`]: a long take, a lecture, a
/// camera left running), when that is past `planned_until`: its segments
/// go to the encoder while the decode goes on instead of all at the end.
/// Only a shot whose start is settled (every cut so far planned) counts;
/// `undecided` is where it may still end, at the earliest.
fn opening_windows(
    cuts: &[Cut],
    planned_until: f64,
    undecided: Option<f64>,
    max_len: f64,
) -> Option<Vec<Segment>> {
    let undecided = undecided?;
    if cuts.last().is_some_and(|c| c.time > planned_until) {
        return None;
    }
    let start = cuts.last().map_or(0.0, |c| c.time);
    let whole = long_shot_windows(undecided - start, max_len);
    // Called for every decoded frame: the last whole window ends at
    // `start + whole·max_len`, so one already planned is skipped before
    // any planning.
    if whole == 0 || start + max_len * whole as f64 <= planned_until {
        return None;
    }
    // Planned as if the video ended where the decision stands: the shot's
    // first `whole` windows come out as any later plan makes them.
    let cut_times: Vec<f64> = cuts.iter().map(|c| c.time).collect();
    let mut plan = plan_segments(undecided, &cut_times, max_len);
    let shot = plan.last()?.shot;
    let opening = plan.iter().position(|s| s.shot == shot)?;
    plan.truncate(opening + whole);
    (plan.last()?.end > planned_until).then_some(plan)
}

/// The latest cut after `planned_until` that no later cut can move: the
/// shots on both sides of it are at least `shortest` long (the one after
/// may still be growing), so [`plan_segments`] never merges across it and
/// plans the video before it the same whatever comes after.
fn settled_until(
    cuts: &[Cut],
    planned_until: f64,
    undecided: Option<f64>,
    shortest: f64,
) -> Option<f64> {
    let undecided = undecided?;
    let from = cuts.partition_point(|c| c.time <= planned_until);
    (from..cuts.len()).rev().find_map(|i| {
        let at = cuts[i].time;
        let before = at - if i == 0 { 0.0 } else { cuts[i - 1].time };
        let after = cuts.get(i + 1).map_or(undecided, |c| c.time) - at;
        (before >= shortest && after >= shortest).then_some(at)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cuts(times: &[f64]) -> Vec<Cut> {
        times
            .iter()
            .enumerate()
            .map(|(i, &time)| Cut {
                frame: i as u64,
                time,
                score: 1.0,
            })
            .collect()
    }

    #[test]
    fn a_long_shot_in_progress_is_planned_as_far_as_no_end_can_change() {
        let plan = |cuts_at: &[f64], planned_until, undecided| {
            opening_windows(&cuts(cuts_at), planned_until, Some(undecided), 10.0).map(|segments| {
                segments
                    .iter()
                    .map(|s| (s.start, s.end))
                    .collect::<Vec<_>>()
            })
        };
        // 20 s decided of a shot from 0: its first 10 s window is final.
        assert_eq!(plan(&[], 0.0, 20.0), Some(vec![(0.0, 10.0)]));
        assert_eq!(
            plan(&[], 0.0, 15.0),
            None,
            "only 15 s: two of 7.5 s or, longer, 10 + rest"
        );
        assert_eq!(plan(&[], 0.0, 29.0), Some(vec![(0.0, 10.0), (10.0, 20.0)]));
        assert_eq!(plan(&[], 20.0, 34.0), None, "already planned that far");
        // After a settled cut at 5: two windows of the shot from 5.
        assert_eq!(
            plan(&[5.0], 5.0, 40.0),
            Some(vec![(0.0, 5.0), (5.0, 15.0), (15.0, 25.0)])
        );
        // A cut not planned yet may still merge with a sliver: not settled.
        assert_eq!(plan(&[5.0], 0.0, 40.0), None);
        // Whatever the shot's end, the whole plan begins with these windows.
        let opening = opening_windows(&cuts(&[5.0]), 5.0, Some(40.0), 10.0).unwrap();
        for end in [40.0, 41.0, 44.9, 45.0, 47.3, 60.0, 123.4] {
            for later in [vec![5.0], vec![5.0, end - 0.3]] {
                let whole = plan_segments(end, &later, 10.0);
                assert_eq!(
                    whole[..opening.len()],
                    opening[..],
                    "ending at {end}, cuts {later:?}"
                );
            }
        }
    }

    #[test]
    fn a_cut_settles_once_both_its_shots_are_long_enough() {
        let c = cuts(&[2.0, 5.0]);
        // The shot after 5.0 is still shorter than a second.
        assert_eq!(settled_until(&c, 0.0, Some(5.5), 1.0), Some(2.0));
        assert_eq!(settled_until(&c, 0.0, Some(6.0), 1.0), Some(5.0));
        // Nothing new past what is planned already.
        assert_eq!(settled_until(&c, 5.0, Some(9.0), 1.0), None);
        assert_eq!(settled_until(&c, 0.0, None, 1.0), None);
    }

    #[test]
    fn a_cut_beside_a_sliver_does_not_settle() {
        // 3.0-3.4 is a sliver that plan_segments merges into a neighbour.
        let c = cuts(&[3.0, 3.4]);
        assert_eq!(settled_until(&c, 0.0, Some(9.0), 1.0), None);
        let c = cuts(&[1.5, 3.0, 3.4, 6.0]);
        assert_eq!(settled_until(&c, 0.0, Some(9.0), 1.0), Some(6.0));
    }

    #[test]
    fn the_plan_before_a_settled_cut_is_a_prefix_of_the_whole_plan() {
        let all = [1.5, 3.0, 3.4, 6.0, 6.5, 9.0, 31.0, 31.2, 40.0];
        let whole = plan_segments(45.0, &all, 10.0);
        let c = cuts(&all);
        assert_eq!(settled_until(&c, 0.0, Some(45.0), 1.0), Some(40.0));
        assert_eq!(settled_until(&c[..6], 0.0, Some(31.0), 1.0), Some(9.0));
        assert_eq!(settled_until(&c[..3], 0.0, Some(6.0), 1.0), Some(1.5));
        for settled in [1.5, 9.0, 40.0] {
            let before: Vec<f64> = all.iter().copied().filter(|&t| t < settled).collect();
            let prefix = plan_segments(settled, &before, 10.0);
            assert_eq!(prefix[..], whole[..prefix.len()], "settled at {settled}");
            assert_eq!(prefix.last().unwrap().end, settled);
        }
    }
}
