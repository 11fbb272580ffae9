//! Frame sampling for the image encoder: a few frames per segment, evenly
//! spaced inside it, scaled so the shorter side is `short_side` pixels.
//!
//! Two ways to get them, both streaming (memory holds one segment's frames
//! plus one raw frame per running ffmpeg):
//!
//! - [`SamplingStrategy::SinglePass`]: one ffmpeg decodes the whole file and
//!   `select` filter keeps the first frame of each time bucket, buckets being
//!   at most half the spacing between targets, and each target takes the
//!   nearest kept frame; only kept frames are scaled and piped. Cost: one
//!   full decode.
//! - [`SamplingStrategy::Seek`]: per segment, one ffmpeg with one `-ss T -i
//!   FILE` input per target time; each input seeks to the keyframe before T
//!   and decodes up to T only. Cost: per target, half a keyframe interval of
//!   decoding plus ~1 process start per segment; segments run a few
//!   processes at a time, so this also uses every core when ffmpeg's own
//!   threading cannot (short decodes).
//!
//! [`crate::analyze`] goes further for the single pass: the decode that
//! finds the cuts also feeds the grid ([`SharedGrid`]), so a video is
//! decoded once.
//!
//! [`SamplingStrategy::Auto`] picks by that cost model from the keyframe
//! interval read off the first minute's packets (no decoding). Measured on 2
//! CPUs (bench/ingest/README.md): with 1 s keyframe intervals (phones,
//! streaming encodes) seeking wins (720p, 60 s: 4.2 s against 6.1 s); with
//! 5 s intervals the single pass does (127 s: 10.8 s against 13.5 s), and on
//! short clips like bikes.mp4 the process starts dominate (0.6 s against
//! 1.3 s).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::Command;

use image::RgbImage;

use super::error::{MediaError, Result};
use super::ffmpeg::{RawFrames, RawFramesSpec, SHOWINFO, input_args};
use super::probe::Probe;
use super::segments::Segment;

/// How [`sample_frames`] decodes (see the module docs for the trade-off).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SamplingStrategy {
    /// Choose from the keyframe interval and segment lengths.
    #[default]
    Auto,
    /// One decode of the whole file, frames picked from a time grid.
    SinglePass,
    /// Fast-seek to each target time; one ffmpeg per segment.
    Seek,
}

/// What [`sample_frames`] produces.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleOptions {
    /// Frames per segment (fewer when a segment has fewer frames).
    pub per_segment: usize,
    /// Length of the shorter side of each frame; the aspect ratio is kept.
    pub short_side: u32,
    /// Decoding strategy.
    pub strategy: SamplingStrategy,
    /// ffmpeg processes running at once for [`SamplingStrategy::Seek`].
    pub parallel: usize,
}

impl Default for SampleOptions {
    fn default() -> Self {
        Self {
            per_segment: 3,
            short_side: 256,
            strategy: SamplingStrategy::Auto,
            parallel: std::thread::available_parallelism().map_or(2, |n| n.get().min(4)),
        }
    }
}

/// One segment's sampled frames, in time order.
#[derive(Debug, Clone)]
pub struct SegmentFrames {
    /// Index into the segments given to [`sample_frames`].
    pub index: usize,
    /// The time each frame shows, in seconds: the target time for
    /// [`SamplingStrategy::Seek`] (ffmpeg's exact seek returns the first frame
    /// at or after it), the grid frame's time for
    /// [`SamplingStrategy::SinglePass`] (within a quarter of the spacing
    /// between targets).
    pub times: Vec<f64>,
    /// The frames, `short_side` pixels on their shorter side.
    pub frames: Vec<RgbImage>,
}

/// Starts sampling; the returned iterator yields one [`SegmentFrames`] per
/// segment, in order, decoding only as far as the caller has read (so an
/// encoder can work on one segment while the next decodes).
pub fn sample_frames(
    path: &Path,
    probe: &Probe,
    segments: &[Segment],
    options: &SampleOptions,
) -> Result<FrameSampler> {
    let (width, height) = scaled_size(probe.width, probe.height, options.short_side.max(16));
    let targets: Vec<Vec<f64>> = segments
        .iter()
        .map(|s| sample_times(s, options.per_segment.max(1), probe.fps, probe.duration))
        .collect();
    let strategy = match options.strategy {
        SamplingStrategy::Auto => choose_strategy(path, probe, segments, options.per_segment),
        other => other,
    };
    let common = Common {
        path: path.to_owned(),
        width,
        height,
        targets,
        starts: segments.iter().map(|s| s.start).collect(),
        next_segment: 0,
    };
    let inner = match strategy {
        SamplingStrategy::Seek | SamplingStrategy::Auto => Inner::Seek(SeekState {
            common,
            running: VecDeque::new(),
            next_spawn: 0,
            parallel: options.parallel.max(1),
        }),
        SamplingStrategy::SinglePass => Inner::Grid(GridState::start(common, probe)?),
    };
    Ok(FrameSampler { strategy, inner })
}

/// Iterator over sampled segments; dropping it stops ffmpeg.
pub struct FrameSampler {
    strategy: SamplingStrategy,
    inner: Inner,
}

impl FrameSampler {
    /// The strategy in use (never `Auto`).
    pub fn strategy(&self) -> SamplingStrategy {
        self.strategy
    }
}

impl Iterator for FrameSampler {
    type Item = Result<SegmentFrames>;

    fn next(&mut self) -> Option<Self::Item> {
        match &mut self.inner {
            Inner::Seek(s) => s.next(),
            Inner::Grid(g) => g.next(),
        }
    }
}

enum Inner {
    Seek(SeekState),
    Grid(GridState),
}

struct Common {
    path: PathBuf,
    width: u32,
    height: u32,
    targets: Vec<Vec<f64>>,
    starts: Vec<f64>,
    next_segment: usize,
}

impl Common {
    fn frame_len(&self) -> usize {
        self.width as usize * self.height as usize * 3
    }

    fn scale_filter(&self) -> String {
        // Bicubic is ffmpeg's default and the quality the encoders' own
        // resizing would give; setsar=1 lets differently-sourced frames
        // concatenate. Scaled straight to RGB, though swscale then runs in
        // plain C (150 720p frames: 0.45 CPU-s, against 0.27 scaling into
        // 4:4:4 YUV first and 0.19 into 4:2:0): either detour changed
        // enough pixels to move bench/quality, 4:2:0 by 1 to 2 of 80 text
        // queries at every rank and 4:4:4 by one image query below its
        // R@1 target (0.925 against 0.93).
        format!(
            "scale={}:{}:flags=bicubic,setsar=1",
            self.width, self.height
        )
    }

    fn image(&self, raw: Vec<u8>) -> RgbImage {
        RgbImage::from_raw(self.width, self.height, raw).expect("frame_len matches the size")
    }
}

struct SeekState {
    common: Common,
    running: VecDeque<(usize, RawFrames)>,
    next_spawn: usize,
    parallel: usize,
}

impl SeekState {
    fn next(&mut self) -> Option<Result<SegmentFrames>> {
        let index = self.common.next_segment;
        if index >= self.common.targets.len() {
            return None;
        }
        // Keep `parallel` segments decoding ahead of the reader.
        while self.running.len() < self.parallel && self.next_spawn < self.common.targets.len() {
            let spawn = self.next_spawn;
            self.next_spawn += 1;
            match self.spawn(spawn) {
                Ok(child) => self.running.push_back((spawn, child)),
                Err(e) => return Some(Err(e)),
            }
        }
        let (segment, mut child) = self.running.pop_front()?;
        debug_assert_eq!(segment, index);
        self.common.next_segment += 1;
        let times = self.common.targets[index].clone();
        let mut frames = Vec::with_capacity(times.len());
        let len = self.common.frame_len();
        loop {
            let mut raw = vec![0u8; len];
            match child.next_frame(&mut raw) {
                Ok(Some(_)) => frames.push(self.common.image(raw)),
                Ok(None) => break,
                Err(e) => return Some(Err(e)),
            }
        }
        if let Err(e) = child.finish() {
            return Some(Err(with_time(e, times.first().copied().unwrap_or(0.0))));
        }
        if frames.is_empty() {
            return Some(Err(MediaError::DecodeFailed {
                at: times.first().copied().unwrap_or(0.0),
                detail: "no frame could be decoded in this segment".into(),
            }));
        }
        // A seek past the last decodable frame yields nothing; repeat the
        // last frame rather than return a short segment.
        while frames.len() < times.len() {
            let last = frames.last().expect("non-empty").clone();
            frames.push(last);
        }
        Some(Ok(SegmentFrames {
            index,
            times,
            frames,
        }))
    }

    fn spawn(&self, segment: usize) -> Result<RawFrames> {
        let times = &self.common.targets[segment];
        let mut args = Vec::new();
        let mut graph = String::new();
        let scale = self.common.scale_filter();
        for (i, &t) in times.iter().enumerate() {
            args.extend(input_args(&self.common.path, Some(t)));
            graph.push_str(&format!("[{i}:v:0]trim=end_frame=1,{scale}[f{i}];"));
        }
        for i in 0..times.len() {
            graph.push_str(&format!("[f{i}]"));
        }
        graph.push_str(&format!("concat=n={}:v=1:a=0,format=rgb24", times.len()));
        RawFrames::spawn(RawFramesSpec {
            input_args: args,
            filter: &graph,
            complex: true,
            pix_fmt: "rgb24",
            frame_len: self.common.frame_len(),
            timed: false,
        })
    }
}

/// A decode error from a seek child is about the segment's time, not the
/// child's own (reset) clock.
fn with_time(err: MediaError, at: f64) -> MediaError {
    match err {
        MediaError::DecodeFailed { detail, .. } => MediaError::DecodeFailed { at, detail },
        other => other,
    }
}

/// Where grid frames come from: a decode of their own, or frames handed
/// over by a decode shared with shot detection.
enum GridSource {
    Child(Option<RawFrames>),
    Fed {
        frames: VecDeque<(f64, Vec<u8>)>,
        ended: bool,
    },
}

struct GridState {
    common: Common,
    source: GridSource,
    /// The two newest grid frames with their times, newest last: a target
    /// between them takes the nearer.
    prev: Option<(f64, Vec<u8>)>,
    last: Option<(f64, Vec<u8>)>,
    spare: Vec<u8>,
}

impl GridState {
    fn start(common: Common, probe: &Probe) -> Result<Self> {
        let rate = grid_rate(&common.targets, probe.fps);
        let filter = format!("{},{SHOWINFO}", grid_chain(rate, &common));
        let child = RawFrames::spawn(RawFramesSpec {
            input_args: input_args(&common.path, None),
            filter: &filter,
            complex: false,
            pix_fmt: "rgb24",
            frame_len: common.frame_len(),
            timed: true,
        })?;
        Ok(Self {
            common,
            source: GridSource::Child(Some(child)),
            prev: None,
            last: None,
            spare: Vec::new(),
        })
    }

    fn next(&mut self) -> Option<Result<SegmentFrames>> {
        let index = self.common.next_segment;
        let mut times = self.common.targets.get(index)?.clone();
        let segment_start = self.common.starts[index];
        let mut frames = Vec::with_capacity(times.len());
        for time in &mut times {
            let target = *time;
            // Read until a grid frame at or after the target, or the end.
            while self.last.as_ref().is_none_or(|(pts, _)| *pts < target) {
                match self.read() {
                    Ok(true) => {}
                    Ok(false) => break,
                    Err(e) => return Some(Err(e)),
                }
            }
            // The frame before the target wins if it is nearer and still
            // inside the segment (not the previous shot's last picture).
            let use_prev = match (&self.prev, &self.last) {
                (Some((p, _)), Some((a, _))) => {
                    *a >= target && *p >= segment_start && target - p < a - target
                }
                _ => false,
            };
            let chosen = if use_prev {
                self.prev.as_ref()
            } else {
                self.last.as_ref()
            };
            let Some((pts, raw)) = chosen else {
                return Some(Err(MediaError::DecodeFailed {
                    at: target,
                    detail: "no frame could be decoded".into(),
                }));
            };
            *time = *pts;
            frames.push(self.common.image(raw.clone()));
        }
        self.common.next_segment += 1;
        Some(Ok(SegmentFrames {
            index,
            times,
            frames,
        }))
    }

    /// Reads one grid frame into `last`; false at the end of the stream.
    fn read(&mut self) -> Result<bool> {
        let frame = match &mut self.source {
            GridSource::Child(None) => return Ok(false),
            GridSource::Child(Some(child)) => {
                // Read into the spare buffer so a frame cut short by a failing
                // ffmpeg never clobbers a good one.
                let mut raw = std::mem::take(&mut self.spare);
                raw.resize(self.common.frame_len(), 0);
                match child.next_frame(&mut raw)? {
                    Some(pts) => (pts, raw),
                    None => {
                        if let GridSource::Child(child) = &mut self.source {
                            child.take().expect("checked above").finish()?;
                        }
                        return Ok(false);
                    }
                }
            }
            GridSource::Fed { frames, .. } => match frames.pop_front() {
                Some(frame) => frame,
                None => return Ok(false),
            },
        };
        if let Some((_, old)) = std::mem::replace(&mut self.prev, self.last.replace(frame)) {
            self.spare = old;
        }
        Ok(true)
    }
}

/// The grid filter chain: the first frame of each 1/rate-wide time bucket,
/// a drift-free grid of real frames with their real timestamps (the `fps`
/// filter would relabel frames with tick times up to half a tick off),
/// scaled to the sampling size.
fn grid_chain(rate: f64, common: &Common) -> String {
    format!(
        "select='isnan(prev_t)+gt(floor(t*{rate}),floor(prev_t*{rate}))',{},format=rgb24",
        common.scale_filter()
    )
}

/// Most grid frames [`SharedGrid`] holds for segments not yet planned;
/// past it every other one is dropped. A shot's segments are only known
/// when it ends, so a long shot would otherwise hold all of its frames:
/// this keeps the grid exact for shots up to `MAX_HELD / rate` seconds
/// (about 20 s at 6 per second) and coarser, in proportion, beyond.
const MAX_HELD: usize = 128;

/// Frame sampling fed by a decode shared with shot detection: the caller
/// hands over the grid frames as ffmpeg makes them ([`SharedGrid::push`])
/// and the segments as the cuts settle ([`SharedGrid::plan`]), then takes
/// each segment's frames once the grid has passed them.
pub(crate) struct SharedGrid {
    state: GridState,
    /// Time of the newest frame handed over.
    newest: f64,
}

impl SharedGrid {
    /// The grid's filter chain (without the trailing showinfo), its frame
    /// size in bytes, and the sampler that takes its frames. The grid rate
    /// is fixed before any segment is known: fine enough for targets in the
    /// shortest segment `shortest_segment` seconds long.
    pub(crate) fn new(
        path: &Path,
        probe: &Probe,
        options: &SampleOptions,
        shortest_segment: f64,
    ) -> (String, usize, SharedGrid) {
        let (width, height) = scaled_size(probe.width, probe.height, options.short_side.max(16));
        let common = Common {
            path: path.to_owned(),
            width,
            height,
            targets: vec![],
            starts: vec![],
            next_segment: 0,
        };
        let spacing = shortest_segment / options.per_segment.max(1) as f64;
        let rate = grid_rate(&[vec![0.0, spacing]], probe.fps);
        let chain = grid_chain(rate, &common);
        let len = common.frame_len();
        let state = GridState {
            common,
            source: GridSource::Fed {
                frames: VecDeque::new(),
                ended: false,
            },
            prev: None,
            last: None,
            spare: Vec::new(),
        };
        (chain, len, SharedGrid { state, newest: 0.0 })
    }

    /// Hands over the next grid frame.
    pub(crate) fn push(&mut self, pts: f64, raw: Vec<u8>) {
        self.newest = pts;
        if let GridSource::Fed { frames, .. } = &mut self.state.source {
            frames.push_back((pts, raw));
            if frames.len() > MAX_HELD {
                let mut keep = false;
                frames.retain(|_| {
                    keep = !keep;
                    keep
                });
            }
        }
    }

    /// No more grid frames will come.
    pub(crate) fn end(&mut self) {
        if let GridSource::Fed { ended, .. } = &mut self.state.source {
            *ended = true;
        }
    }

    /// Adds the next segments (in order) to sample.
    pub(crate) fn plan(&mut self, segments: &[Segment], probe: &Probe, per_segment: usize) {
        for s in segments {
            let common = &mut self.state.common;
            common.targets.push(sample_times(
                s,
                per_segment.max(1),
                probe.fps,
                probe.duration,
            ));
            common.starts.push(s.start);
        }
    }

    /// The next planned segment's frames, once the grid has reached its
    /// last target (or ended); `None` until then.
    pub(crate) fn next_ready(&mut self) -> Option<Result<SegmentFrames>> {
        let index = self.state.common.next_segment;
        let last_target = *self.state.common.targets.get(index)?.last()?;
        let ended = matches!(self.state.source, GridSource::Fed { ended: true, .. });
        if !ended && self.newest < last_target {
            return None;
        }
        self.state.next()
    }
}

/// Grid rate (buckets per second) fine enough that neighbouring targets
/// fall in different buckets, never above the video's own rate.
fn grid_rate(targets: &[Vec<f64>], fps: f64) -> f64 {
    let closest = targets
        .iter()
        .flat_map(|t| t.windows(2).map(|w| w[1] - w[0]))
        .filter(|d| *d > 0.0)
        .fold(f64::INFINITY, f64::min);
    let wanted = if closest.is_finite() {
        2.0 / closest
    } else {
        1.0
    };
    let rate = wanted.clamp(1.0, fps.max(1.0));
    // Written into an ffmpeg expression; three decimals are plenty.
    (rate * 1000.0).round() / 1000.0
}

/// Target times inside a segment: `n` evenly spaced centres of equal
/// sub-ranges (never the first frame, which is often a transition), fewer
/// when the segment holds fewer frames, clamped to the decodable range.
pub(crate) fn sample_times(segment: &Segment, n: usize, fps: f64, duration: f64) -> Vec<f64> {
    let len = segment.duration().max(0.0);
    let frames_inside = if fps > 0.0 {
        (len * fps).floor() as usize
    } else {
        n
    };
    let n = n.min(frames_inside.max(1));
    let latest = (duration - 1.5 / fps.max(1.0)).max(0.0);
    (0..n)
        .map(|k| (segment.start + (k as f64 + 0.5) * len / n as f64).min(latest))
        .collect()
}

/// Output size with the shorter side `short` and the aspect ratio kept.
pub(crate) fn scaled_size(width: u32, height: u32, short: u32) -> (u32, u32) {
    let (w, h) = (f64::from(width.max(1)), f64::from(height.max(1)));
    let other =
        |long: f64, shorter: f64| ((f64::from(short) * long / shorter).round() as u32).max(1);
    if width <= height {
        (short, other(h, w))
    } else {
        (other(w, h), short)
    }
}

/// The cost model behind [`SamplingStrategy::Auto`], in decoded frames:
/// the single pass decodes every frame; seeking decodes half a keyframe
/// interval per target plus a fixed cost per target for opening the input
/// (ffmpeg decodes a few frames to probe each input) and the process.
fn choose_strategy(
    path: &Path,
    probe: &Probe,
    segments: &[Segment],
    per_segment: usize,
) -> SamplingStrategy {
    /// Fitted on 720p H.264 (bench/ingest/README.md): with 3 targets per
    /// segment a segment's process costs ~0.43 s over its decoding, about
    /// 105 frames' worth of single-pass decoding.
    const OPEN_COST_FRAMES: f64 = 35.0;
    let Some(keyframe_interval) = keyframe_interval(path) else {
        return SamplingStrategy::SinglePass;
    };
    let single = probe.duration * probe.fps;
    let targets = (segments.len() * per_segment.max(1)) as f64;
    let seek = targets * (keyframe_interval * probe.fps / 2.0 + OPEN_COST_FRAMES);
    if seek < single {
        SamplingStrategy::Seek
    } else {
        SamplingStrategy::SinglePass
    }
}

/// Mean seconds between keyframes over the first minute, from packet flags
/// (ffprobe reads packets without decoding them, so this is cheap).
fn keyframe_interval(path: &Path) -> Option<f64> {
    let mut ffprobe = Command::new("ffprobe");
    ffprobe
        .args(super::ffmpeg::LOCAL_PROTOCOLS_ONLY)
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-read_intervals",
            "%+60",
            "-show_entries",
            "packet=pts_time,flags",
            "-of",
            "csv=p=0",
        ])
        .arg(path);
    let output =
        super::ffmpeg::output_within(ffprobe, "ffprobe", super::ffmpeg::PROBE_TIMEOUT).ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let mut keys = Vec::new();
    let mut last = 0.0f64;
    for line in text.lines() {
        let mut fields = line.split(',');
        let Some(t) = fields.next().and_then(|t| t.parse::<f64>().ok()) else {
            continue;
        };
        last = last.max(t);
        if fields.next().is_some_and(|f| f.starts_with('K')) {
            keys.push(t);
        }
    }
    match keys.len() {
        0 => None,
        // One keyframe in the window: at least the window's length apart.
        1 => Some(last.max(1.0)),
        n => {
            keys.sort_by(f64::total_cmp);
            Some((keys[n - 1] - keys[0]) / (n - 1) as f64)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_keep_aspect_with_the_short_side_fixed() {
        assert_eq!(scaled_size(640, 272, 256), (602, 256));
        assert_eq!(scaled_size(1080, 1920, 256), (256, 455));
        assert_eq!(scaled_size(176, 144, 256), (313, 256));
        assert_eq!(scaled_size(500, 500, 256), (256, 256));
    }

    #[test]
    fn targets_are_centred_and_clamped() {
        let seg = Segment {
            start: 0.0,
            end: 3.0,
            shot: 0,
        };
        let t = sample_times(&seg, 3, 25.0, 3.0);
        assert!(
            (t[0] - 0.5).abs() < 1e-9 && (t[1] - 1.5).abs() < 1e-9 && (t[2] - 2.5).abs() < 1e-9
        );
        // Two frames in the segment: two targets.
        let tiny = Segment {
            start: 1.0,
            end: 1.08,
            shot: 0,
        };
        assert_eq!(sample_times(&tiny, 3, 25.0, 10.0).len(), 2);
        // Never beyond the last decodable frame.
        let tail = Segment {
            start: 9.0,
            end: 10.0,
            shot: 0,
        };
        assert!(
            sample_times(&tail, 3, 25.0, 10.0)
                .iter()
                .all(|&t| t <= 10.0 - 0.06 + 1e-9)
        );
    }

    #[test]
    fn grid_is_fine_enough_for_close_targets() {
        let targets = vec![vec![0.5, 1.5, 2.5], vec![3.1, 3.3, 3.5]];
        assert!((grid_rate(&targets, 25.0) - 10.0).abs() < 1e-9);
        assert_eq!(grid_rate(&[vec![5.0]], 25.0), 1.0);
        assert_eq!(grid_rate(&[vec![0.0, 0.01]], 25.0), 25.0);
    }
}
