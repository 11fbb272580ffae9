//! Text inside the picture → timed cues, with the `tesseract` command.
//!
//! **Burned-in captions.** Captions sit in the lower quarter of the frame
//! (the caption band), drawn bright with a dark outline or shadow so they
//! read on any picture. ffmpeg samples only that band, a few times a second,
//! cropped and scaled to a fixed width, in colour (ingest takes it from the
//! decode it shares with the shots and frames, see [`caption_band`]), so a
//! long film costs a few hundred kilobytes a second of pipe. Each sample is
//! binarised: a pixel is text when it is bright *and* a dark pixel lies
//! within a few pixels (the outline), which drops bright sky or walls that
//! have no outline, *and* it is white or warm ([`caption_colour`]), which
//! drops sunlit grass; "bright" is judged at three levels, each read, the
//! most confident reading kept (see [`BRIGHT`]). A run of samples is one
//! caption: it holds the text pixels all its samples showed and goes on
//! while a sample still shows most of them ([`HeldCaption`]), so a caption
//! shown for three seconds over a moving picture is read from up to three
//! of its six samples, not six times as six captions. Only the caption
//! itself goes to tesseract: the rows dense with
//! text and, along them, the columns where text is dense; specks of
//! outlined scenery elsewhere in the band would make a page of noise. A
//! caption is read with every language and, when Chinese is among them
//! with a Latin-script language, with the Chinese model alone too, keeping
//! the more confident reading. Runs are recognised in batches, several
//! images per `tesseract` process (loading the Chinese model costs more
//! than reading one line), on a bounded number of threads. Consecutive runs
//! that read alike (a caption over a changing picture) merge into one
//! [`Cue`] whose start and end lie halfway between the samples where it
//! appeared and went.
//!
//! **Bitmap subtitle tracks** (PGS, DVB, VobSub) are drawn by ffmpeg on an
//! empty frame and read the same way ([`read_bitmap_subtitles`]).
//!
//! **On-screen text** (slides, signs, titles): one gray frame per shot above
//! the caption band, recognised as a page, words kept above a confidence
//! floor.
//!
//! Chinese output has tesseract's spaces between Han characters removed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use super::error::{MediaError, Result};
use super::ffmpeg::{RawFrames, RawFramesSpec, SHOWINFO, input_args, output_within};
use super::probe::Probe;
use super::subtitles::Cue;

/// Widest the caption band and keyframes are sampled: larger frames are
/// scaled down to it.
pub const OCR_WIDTH: u32 = 1280;
/// Narrowest they are sampled: smaller frames are scaled up, so a caption
/// of a small video is still a dozen pixels and more tall.
const MIN_OCR_WIDTH: u32 = 480;
/// The caption band: the lower quarter of the frame.
const BAND_FRACTION: f64 = 0.25;
/// Luma at and above which a pixel may be caption text (white is ~235,
/// yellow ~226), one binarisation per level: the lowest keeps the thin
/// strokes of small and yellow captions, the higher ones drop the
/// compression halo that joins the strokes of large white ones. Each
/// caption is read at every level ([`best_reading`] picks one). Measured
/// on bench/ocr: 180 alone read 5 of 23 Chinese lines exactly, 200 alone
/// 7, each missing lines the other read; all three read 11. Reading a
/// confident first reading alone (skipping the others) saved about a
/// tenth of the time and read a line worse, so every level is read.
const BRIGHT: [u8; 3] = [180, 200, 220];
/// Luma at and below which a neighbour counts as the caption's outline.
const DARK: u8 = 90;
/// How far (pixels) the outline may lie from a text pixel.
const OUTLINE_RADIUS: usize = 4;
/// A band with fewer text pixels than this share holds no caption.
const MIN_TEXT_SHARE: f64 = 0.002;

/// Fewest text pixels a band of `pixels` holds a caption with.
fn min_text(pixels: usize) -> usize {
    (pixels as f64 * MIN_TEXT_SHARE) as usize
}
/// A sample shows its run's caption while it keeps this share of the text
/// the run's samples all showed ...
const KEPT_SHARE: f64 = 0.7;
/// ... and has at most this many times as much text besides.
const ADDED_RATIO: usize = 3;
/// Masks differing in more than this share of their text pixels read
/// differently.
const CHANGE_SHARE: f64 = 0.02;
/// Line height (pixels) tall captions are scaled down to before recognition.
const LINE_HEIGHT: f64 = 40.0;
/// Lines up to this tall are read as they are.
const MAX_LINE_HEIGHT: f64 = 52.0;
/// Images per `tesseract` process.
const BATCH: usize = 16;
/// Neighbouring readings whose texts differ by at most this share of
/// characters (edit distance) are the same caption read twice: over a
/// moving picture each sample reads a line a little differently (measured
/// on bench/ocr: 0.3 left lines split into cues of one sample each, 0.5
/// put 82 % of boundaries within 0.5 s instead of 78 %), while
/// consecutive subtitles rarely share half their characters.
const SAME_TEXT_DISTANCE: f64 = 0.5;
/// How much lower the confidence floor is for a line of mostly Han
/// characters: tesseract's Chinese model is less sure of right readings
/// than its English one is, while its misreadings of scenery come out as
/// Latin letters ("Bog" at 55 % on a fractal). Measured on bench/ocr:
/// Chinese lines missed 5 to 3 of 24, CER 0.30 to 0.21, phrase R@1 0.67 to
/// 0.71, no more scenery read.
const HAN_CONFIDENCE_SLACK: f32 = 10.0;
/// Fewest letters, digits or Han characters a caption reading needs: what
/// tesseract makes of scenery is mostly one or two characters ("四一",
/// "XN"), and such a text would match many queries by its embedding.
const MIN_CAPTION_CHARS: usize = 3;
/// Confidence (0–100) a reading of a run of one sample must reach, above
/// the floor: subtitles stay up for a second and more, and what shows in
/// one sample only is mostly scenery, which tesseract, given a picture
/// with its edges, sometimes reads as a word or two ("Fey yt" at 61 % on a
/// fractal). A caption over a busy picture can still be a run of one
/// sample, where the picture behind it changed too much.
const LONE_SAMPLE_CONFIDENCE: f32 = 70.0;
/// Longest a `tesseract` run may take per image before it is stopped.
const TESSERACT_SECS_PER_IMAGE: u64 = 20;
/// Longest the extraction of one keyframe may take.
const KEYFRAME_TIMEOUT: Duration = Duration::from_secs(60);

/// How much recognition to do.
#[derive(Debug, Clone)]
pub struct OcrOptions {
    /// Caption band samples per second.
    pub fps: f64,
    /// tesseract language list, e.g. `chi_sim+eng`.
    pub languages: String,
    /// tesseract processes at once.
    pub threads: usize,
    /// Mean word confidence (0–100) a caption must reach.
    pub caption_confidence: f32,
    /// Confidence (0–100) each on-screen word must reach.
    pub screen_confidence: f32,
}

impl Default for OcrOptions {
    fn default() -> Self {
        OcrOptions {
            fps: 2.0,
            languages: "chi_sim+eng".into(),
            threads: 2,
            caption_confidence: 60.0,
            screen_confidence: 75.0,
        }
    }
}

/// One sample of the caption band: `width` x `height` pixels at `time`
/// seconds, `share` of the way through the video, as three planes (luma,
/// then Cb and Cr at full resolution).
pub struct BandFrame {
    pub time: f64,
    pub share: f64,
    pub width: usize,
    pub height: usize,
    pub pixels: Vec<u8>,
}

/// Band samples waiting for the caption reader. Bounded: a decode that
/// runs ahead of recognition waits for it instead of filling memory.
const BAND_QUEUE: usize = 32;

/// Where a decode sends the caption band's samples, and at what rate: the
/// sending half of [`caption_band`].
#[derive(Debug)]
pub struct CaptionTap {
    fps: f64,
    source: Source,
    sink: SyncSender<Result<BandFrame>>,
}

/// What a [`CaptionTap`] samples.
#[derive(Debug, Clone, Copy)]
enum Source {
    /// The caption band of the video.
    Band,
    /// The pictures of the bitmap subtitle track with this index among the
    /// file's subtitle streams, drawn on a blank frame by ffmpeg.
    BitmapTrack(usize),
}

/// The caption band's samples: a [`CaptionTap`] for the decode to fill
/// (handed to [`crate::analyze`], which then samples the band from the
/// decode it shares with the shots and frames) and the receiving end for
/// [`read_captions`].
pub fn caption_band(options: &OcrOptions) -> (CaptionTap, Receiver<Result<BandFrame>>) {
    CaptionTap::new(Source::Band, options)
}

impl CaptionTap {
    /// A tap of `source` at the options' rate, and its receiving end.
    fn new(source: Source, options: &OcrOptions) -> (CaptionTap, Receiver<Result<BandFrame>>) {
        let (sink, band) = sync_channel(BAND_QUEUE);
        let tap = CaptionTap {
            fps: options.fps,
            source,
            sink,
        };
        (tap, band)
    }

    /// The ffmpeg chain that samples the band of a `probe`d video (without
    /// the final showinfo), and the bytes of each sample, in
    /// [`Self::PIX_FMT`].
    pub(crate) fn chain(&self, probe: &Probe) -> (String, usize) {
        let (w, h) = self.size(probe);
        let select = match self.source {
            Source::Band => format!("crop=iw:ih*{BAND_FRACTION}:0:ih-ih*{BAND_FRACTION},"),
            // A track's last picture lasts forever (to the end of time, for
            // `fps`): its samples end with the video (in the container's
            // own times, see `feed_from_own_decode`).
            Source::BitmapTrack(_) => {
                format!("trim=end={},", probe.start_time + probe.duration.max(1.0))
            }
        };
        // `round=up`: each sample is the last frame at or before its time
        // (by default, the last before half a step later), so a caption's
        // boundaries fall between the samples that show when it came and
        // went.
        let chain = format!(
            "fps={fps}:round=up,{select}scale={w}:{h}:out_range=full,format={pix_fmt}",
            fps = self.fps,
            pix_fmt = Self::PIX_FMT,
        );
        (chain, 3 * w * h)
    }

    /// The samples' size: the band's, or a subtitle track's whole frame.
    fn size(&self, probe: &Probe) -> (usize, usize) {
        match self.source {
            Source::Band => band_size(probe.width, probe.height),
            Source::BitmapTrack(_) => scaled(probe.width, probe.height),
        }
    }

    /// The samples' pixel format: full-resolution luma (full range, as
    /// ffmpeg's `gray`), then the two chroma planes, which tell a caption's
    /// colours from scenery's.
    pub(crate) const PIX_FMT: &str = "yuv444p";

    /// Fills the tap from a decode of its source alone; a failure is the
    /// reader's last sample.
    pub(crate) fn feed_from_own_decode(self, path: &Path, probe: &Probe) {
        let (chain, frame_len) = self.chain(probe);
        let mut input = input_args(path, None);
        let (filter, complex) = match self.source {
            Source::Band => (format!("{chain},{SHOWINFO}"), false),
            Source::BitmapTrack(index) => {
                // ffmpeg 5 times a DVB track in MPEG-TS from its own first
                // picture instead of the file's start; the container's
                // times, less the file's start, are right for every format.
                input.insert(0, "-copyts".into());
                // A subtitle stream as a filter input is drawn by ffmpeg as
                // video (its `sub2video`): the pictures on a transparent
                // frame, black once flattened, a new frame when they change.
                (format!("[0:s:{index}]{chain},{SHOWINFO}"), true)
            }
        };
        let mut sink = self.into_sink(probe);
        let decoded = (|| {
            let mut frames = RawFrames::spawn(RawFramesSpec {
                input_args: input,
                filter: &filter,
                complex,
                pix_fmt: Self::PIX_FMT,
                frame_len,
                timed: true,
            })?;
            let mut buf = vec![0u8; frame_len];
            while let Some(pts) = frames.next_frame(&mut buf)? {
                sink(Ok((pts, buf.clone())));
            }
            // On failure `frames` is dropped unfinished, which stops ffmpeg.
            frames.finish()
        })();
        if let Err(error) = decoded {
            sink(Err(error));
        }
    }

    /// Turns a decode's `(time, pixels)` samples of [`Self::chain`] into
    /// [`BandFrame`]s for the reader. A reader that has stopped (its
    /// recognition failed) is not waited for: the samples are dropped.
    pub(crate) fn into_sink(
        self,
        probe: &Probe,
    ) -> impl FnMut(Result<(f64, Vec<u8>)>) + Send + use<> {
        let (width, height) = self.size(probe);
        let duration = probe.duration;
        let start = match self.source {
            Source::Band => 0.0,
            Source::BitmapTrack(_) => probe.start_time,
        };
        move |sample| {
            let frame = sample.map(|(time, pixels)| {
                let time = time - start;
                BandFrame {
                    time,
                    share: if duration > 0.0 {
                        (time / duration).clamp(0.0, 1.0)
                    } else {
                        0.0
                    },
                    width,
                    height,
                    pixels,
                }
            });
            let _ = self.sink.send(frame);
        }
    }
}

/// Reads the captions burned into the lower band of `path` (probed as
/// `probe`) as cues, on a decode of its own; `progress` hears the share of
/// the video sampled. Ingest shares its one decode instead (see
/// [`caption_band`]).
pub fn read_burned_in_captions(
    path: &Path,
    probe: &Probe,
    options: &OcrOptions,
    progress: &mut dyn FnMut(f64),
) -> Result<Vec<Cue>> {
    read_own_decode(Source::Band, path, probe, options, progress)
}

/// Reads the bitmap subtitle track (PGS, DVB, VobSub) at `index` among the
/// subtitle streams of `path` (probed as `probe`) as cues: ffmpeg draws its
/// pictures on a blank frame, which is read like the caption band (light
/// text on the black of the empty frame passes the outline test).
pub fn read_bitmap_subtitles(
    path: &Path,
    probe: &Probe,
    index: usize,
    options: &OcrOptions,
) -> Result<Vec<Cue>> {
    let source = Source::BitmapTrack(index);
    read_own_decode(source, path, probe, options, &mut |_| {})
}

/// Reads captions from `source` on a decode of its own, beside.
fn read_own_decode(
    source: Source,
    path: &Path,
    probe: &Probe,
    options: &OcrOptions,
    progress: &mut dyn FnMut(f64),
) -> Result<Vec<Cue>> {
    let (tap, band) = CaptionTap::new(source, options);
    std::thread::scope(|scope| {
        scope.spawn(|| tap.feed_from_own_decode(path, probe));
        read_captions(band, options, progress)
    })
}

/// Reads captions from samples of the caption band (see [`caption_band`])
/// until their sender is gone; `progress` hears the share of the video
/// sampled. After a recognition failure the rest of the samples are left
/// unread and the failure returned.
pub fn read_captions(
    band: Receiver<Result<BandFrame>>,
    options: &OcrOptions,
    progress: &mut dyn FnMut(f64),
) -> Result<Vec<Cue>> {
    let scratch = tempfile::tempdir()?;
    let step = 1.0 / options.fps;
    let mut runs: Vec<Run> = Vec::new();
    let mut last_pts = 0.0;
    let (jobs, texts) = recognise_in_background(options, OcrPage::Caption);
    let mut outbox = Outbox {
        dir: scratch.path(),
        pending: Vec::new(),
        images: Vec::new(),
    };
    // The run being sampled (see [`HeldCaption`]).
    let mut held: Option<HeldCaption> = None;
    let mut masks = SampleMasks::default();
    std::thread::scope(|scope| -> Result<()> {
        let pool = texts.spawn(scope);
        for frame in band.iter() {
            let BandFrame {
                time: pts,
                share,
                width: w,
                height: h,
                pixels: buf,
            } = frame?;
            if texts.failed() {
                break;
            }
            progress(share);
            let (luma, chroma) = buf.split_at(w * h);
            let (cb, cr) = chroma.split_at(w * h);
            let sample = masks.sample(luma, cb, cr, w, h);
            let same = held
                .as_mut()
                .is_some_and(|caption| caption.shown_in(&sample));
            let caption = match held.as_mut() {
                Some(caption) if same => {
                    if let Some(run) = runs.last_mut() {
                        run.samples += 1;
                    }
                    caption
                }
                _ => {
                    let boundary = if runs.is_empty() {
                        pts
                    } else {
                        (last_pts + pts) / 2.0
                    };
                    if let Some(run) = runs.last_mut() {
                        run.end = boundary;
                    }
                    runs.push(Run {
                        start: boundary,
                        end: pts,
                        samples: 1,
                        shown_before: held
                            .as_ref()
                            .is_some_and(|caption| caption.holds_all_of(&sample)),
                        text: None,
                    });
                    held.insert(HeldCaption::new(sample.mask))
                }
            };
            // The held caption is always the last run's.
            if caption.worth_reading(sample.mask) {
                outbox.add(runs.len() - 1, &sample)?;
                caption.read(sample.mask);
            }
            if outbox.pending.len() >= BATCH
                && jobs.send(std::mem::take(&mut outbox.pending)).is_err()
            {
                break;
            }
            if let Some(run) = runs.last_mut() {
                run.end = pts + step / 2.0;
            }
            last_pts = pts;
        }
        if !outbox.pending.is_empty() {
            let _ = jobs.send(std::mem::take(&mut outbox.pending));
        }
        drop(jobs);
        pool.join()
    })?;
    let mut readings: Vec<Vec<Reading>> = vec![vec![]; runs.len()];
    for (image, text, confidence) in texts.take() {
        let (run, level) = outbox.images[image];
        readings[run].push(Reading {
            level,
            text,
            confidence,
        });
    }
    for (run, readings) in runs.iter_mut().zip(readings) {
        run.text = best_reading(readings);
    }
    Ok(merge_runs(runs, step))
}

/// Reads the text outside the caption band of the frame at each of `times`
/// (one keyframe per shot); `None` where nothing legible is there.
pub fn read_on_screen_text(
    path: &Path,
    probe: &Probe,
    times: &[f64],
    options: &OcrOptions,
) -> Result<Vec<Option<String>>> {
    let (w, h) = upper_size(probe.width, probe.height);
    let filter = format!("crop=iw:ih-ih*{BAND_FRACTION}:0:0,scale={w}:{h},format=gray");
    let scratch = tempfile::tempdir()?;
    let (jobs, texts) = recognise_in_background(options, OcrPage::Screen);
    let outcome = std::thread::scope(|scope| -> Result<()> {
        let pool = texts.spawn(scope);
        let mut pending = Vec::new();
        for (index, &t) in times.iter().enumerate() {
            if texts.failed() {
                break;
            }
            let Some(gray) = one_frame(path, t, &filter, w * h)? else {
                continue;
            };
            let file = scratch.path().join(format!("{index}.pgm"));
            write_pgm(
                &file,
                &GrayImage {
                    width: w,
                    height: h,
                    pixels: gray,
                },
            )?;
            pending.push((index, file));
            if pending.len() == BATCH && jobs.send(std::mem::take(&mut pending)).is_err() {
                break;
            }
        }
        if !pending.is_empty() {
            let _ = jobs.send(pending);
        }
        drop(jobs);
        pool.join()
    });
    outcome?;
    let mut found = vec![None; times.len()];
    for (index, text, _) in texts.take() {
        found[index] = Some(text);
    }
    Ok(found)
}

/// Whether the `tesseract` command runs, with the languages asked for. A
/// yes is remembered for the life of the process (every ingest job asks,
/// and the answer costs a process start); a no is asked again, so
/// installing tesseract needs no restart.
pub fn tesseract_available(languages: &str) -> bool {
    static AVAILABLE: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let known = |available: &Vec<String>| available.iter().any(|l| l == languages);
    if known(&AVAILABLE.lock().unwrap_or_else(PoisonError::into_inner)) {
        return true;
    }
    let mut command = Command::new("tesseract");
    command.arg("--list-langs");
    let found = match output_within(command, "tesseract", Duration::from_secs(10)) {
        Ok(output) if output.status.success() => {
            let listed = String::from_utf8_lossy(&output.stdout);
            languages
                .split('+')
                .all(|lang| listed.lines().any(|l| l.trim() == lang))
        }
        _ => false,
    };
    let mut available = AVAILABLE.lock().unwrap_or_else(PoisonError::into_inner);
    if found && !known(&available) {
        available.push(languages.to_string());
    }
    found
}

/// A stretch of samples showing the same caption (or none).
#[derive(Debug, Clone, PartialEq)]
struct Run {
    start: f64,
    end: f64,
    /// Samples that showed it.
    samples: usize,
    /// Whether the run's first sample showed nothing the run before had
    /// not shown all along: the run before held the same caption, and
    /// ended as scenery around it went (a caption's first samples over a
    /// busy picture are often read as nothing).
    shown_before: bool,
    /// What was read, with tesseract's mean word confidence.
    text: Option<(String, f32)>,
}

/// Samples of one caption read, at most: each reads it a little
/// differently over a moving picture, and the most confident reading is
/// kept.
const READS_PER_CAPTION: usize = 3;

/// One sample of the caption band, ready to compare and read.
struct Sample<'a> {
    luma: &'a [u8],
    /// Pixels with a dark one nearby, in a caption's colour.
    outlined: &'a [bool],
    /// The text pixels at the most inclusive level.
    mask: &'a [bool],
    width: usize,
    height: usize,
}

/// The masks of the sample in hand, kept from sample to sample: a band
/// is a few hundred thousand pixels, and allocating vectors that size
/// afresh for every sample spent a third of the reader's own CPU time in
/// page faults and zeroing (`perf` on bench/ingest's clip).
#[derive(Default)]
struct SampleMasks {
    /// [`within`]'s pass along the rows.
    across: Vec<bool>,
    outlined: Vec<bool>,
    mask: Vec<bool>,
}

impl SampleMasks {
    /// The sample of a band `w` x `h` with these planes.
    fn sample<'a>(
        &'a mut self,
        luma: &'a [u8],
        cb: &[u8],
        cr: &[u8],
        w: usize,
        h: usize,
    ) -> Sample<'a> {
        // Pixels that may be text at any level: outlined (a dark pixel, at
        // most DARK, within OUTLINE_RADIUS: the minimum filter's test), in
        // a caption's colour.
        within_into(
            w,
            h,
            OUTLINE_RADIUS,
            |i| luma[i] <= DARK,
            &mut self.across,
            &mut self.outlined,
        );
        for ((near, &cb), &cr) in self.outlined.iter_mut().zip(cb).zip(cr) {
            *near &= caption_colour(cb, cr);
        }
        // Runs are told apart by the first (most inclusive) level.
        text_mask_into(luma, &self.outlined, BRIGHT[0], &mut self.mask);
        Sample {
            luma,
            outlined: &self.outlined,
            mask: &self.mask,
            width: w,
            height: h,
        }
    }
}

/// What a run of samples has in common: a burned-in caption stays still
/// while the picture behind it moves, so the text pixels every sample of a
/// run shows are its caption's, and the run goes on while a sample shows
/// most of them (see [`HeldCaption::shown_in`]). The scenery's bright edges
/// (sunlit leaves, a helmet's highlights) pass as text in one sample and
/// not the next; told apart sample by sample, as differing masks, they cut
/// one caption into runs of a sample each, their boundaries the samples'.
struct HeldCaption {
    /// The text pixels of every sample so far.
    text: Vec<bool>,
    /// The mask of the sample last read, and how many have been read.
    last_read: Option<Vec<bool>>,
    reads: usize,
}

impl HeldCaption {
    fn new(mask: &[bool]) -> HeldCaption {
        HeldCaption {
            text: mask.to_vec(),
            last_read: None,
            reads: 0,
        }
    }

    /// Whether a `sample` still shows this caption: most of the held text
    /// in the box where it is dense (the caption's place, see
    /// [`caption_region`]: scattered scenery that held still for a while
    /// must not decide) is there, and no more new text has appeared than is
    /// held (a caption come up over a still picture); with no caption held,
    /// only while none appears. A sample that shows it is added.
    fn shown_in(&mut self, sample: &Sample) -> bool {
        let mask = sample.mask;
        let min_text = min_text(mask.len());
        let (mut count, mut added) = (0usize, 0usize);
        for (&h, &m) in self.text.iter().zip(mask) {
            count += usize::from(h);
            added += usize::from(m && !h);
        }
        let shown = if count < min_text {
            count + added < min_text
        } else if let Some(region) = caption_region(&self.text, sample.width, sample.height) {
            let (boxed, kept) = overlap_in(region, sample.width, &self.text, mask);
            kept as f64 >= boxed as f64 * KEPT_SHARE && added <= count * ADDED_RATIO
        } else {
            false
        };
        if shown {
            for (h, &m) in self.text.iter_mut().zip(mask) {
                *h &= m;
            }
        }
        shown
    }

    /// Whether the text of `sample` where it is dense (its caption, if it
    /// shows one) was all held: shown by every sample of this run.
    fn holds_all_of(&self, sample: &Sample) -> bool {
        let Some(region) = caption_region(sample.mask, sample.width, sample.height) else {
            return false;
        };
        let (boxed, held) = overlap_in(region, sample.width, sample.mask, &self.text);
        boxed >= min_text(sample.mask.len()) && held as f64 >= boxed as f64 * KEPT_SHARE
    }

    /// Whether to read a sample with this `mask`: up to
    /// [`READS_PER_CAPTION`] of a run, each unlike the last read (a still
    /// picture reads the same every time).
    fn worth_reading(&self, mask: &[bool]) -> bool {
        self.reads < READS_PER_CAPTION
            && self
                .last_read
                .as_ref()
                .is_none_or(|last| masks_differ(last, mask))
    }

    fn read(&mut self, mask: &[bool]) {
        match &mut self.last_read {
            Some(last) => last.copy_from_slice(mask),
            None => self.last_read = Some(mask.to_vec()),
        }
        self.reads += 1;
    }
}

/// Within `region` (inclusive `(x0, x1, y0, y1)`) of masks `width` wide:
/// how many pixels `a` sets, and how many of those `b` sets too.
fn overlap_in(
    (x0, x1, y0, y1): (usize, usize, usize, usize),
    width: usize,
    a: &[bool],
    b: &[bool],
) -> (usize, usize) {
    let (mut set, mut both) = (0usize, 0usize);
    for y in y0..=y1 {
        let row = y * width;
        for (&a, &b) in a[row + x0..=row + x1].iter().zip(&b[row + x0..=row + x1]) {
            set += usize::from(a);
            both += usize::from(a && b);
        }
    }
    (set, both)
}

/// Caption images written for tesseract and not yet sent, and what each
/// image sent so far is: `(run, level)` by image number.
struct Outbox<'d> {
    dir: &'d Path,
    pending: Batch,
    images: Vec<(usize, usize)>,
}

impl Outbox<'_> {
    /// Queues the caption in `sample` at every [`BRIGHT`] level as a
    /// reading of `run` ([`best_reading`] picks one of the run's).
    fn add(&mut self, run: usize, sample: &Sample) -> Result<()> {
        let (w, h) = (sample.width, sample.height);
        for (level, &bright) in BRIGHT.iter().enumerate() {
            let stricter;
            let mask = if level == 0 {
                sample.mask
            } else {
                stricter = text_mask(sample.luma, sample.outlined, bright);
                &stricter
            };
            if let Some(image) = crop_to_text(mask, sample.luma, bright, w, h) {
                let file = self.dir.join(format!("{}.pgm", self.images.len()));
                write_pgm(&file, &image)?;
                self.pending.push((self.images.len(), file));
                self.images.push((run, level));
            }
        }
        Ok(())
    }
}

/// What a recognised page is, which sets how it is read and filtered.
#[derive(Debug, Clone, Copy, PartialEq)]
enum OcrPage {
    /// A binarised caption band: a block of one or two lines.
    Caption,
    /// A whole gray picture with text anywhere.
    Screen,
}

/// Batches of `(index, image file)` go in; `(index, text, confidence)`
/// come out.
type Batch = Vec<(usize, PathBuf)>;

struct Recogniser<'o> {
    options: &'o OcrOptions,
    page: OcrPage,
    queue: Mutex<std::sync::mpsc::Receiver<Batch>>,
    found: Mutex<Vec<(usize, String, f32)>>,
    failed: AtomicBool,
}

/// A queue of batches (bounded, so decoding waits for recognition rather
/// than filling the disk) and the recogniser that drains it.
fn recognise_in_background(
    options: &OcrOptions,
    page: OcrPage,
) -> (std::sync::mpsc::SyncSender<Batch>, Recogniser<'_>) {
    let threads = options.threads.max(1);
    let (tx, rx) = sync_channel(threads);
    (
        tx,
        Recogniser {
            options,
            page,
            queue: Mutex::new(rx),
            found: Mutex::new(Vec::new()),
            failed: AtomicBool::new(false),
        },
    )
}

/// The recognition threads of one [`Recogniser`].
struct Pool<'scope> {
    handles: Vec<std::thread::ScopedJoinHandle<'scope, Result<()>>>,
}

impl<'o> Recogniser<'o> {
    fn spawn<'scope>(&'scope self, scope: &'scope std::thread::Scope<'scope, '_>) -> Pool<'scope>
    where
        'o: 'scope,
    {
        let handles = (0..self.options.threads.max(1))
            .map(|_| scope.spawn(move || self.drain()))
            .collect();
        Pool { handles }
    }

    /// Recognises batches until the queue closes. After a failure it keeps
    /// taking batches (and dropping them) so the producer never blocks on a
    /// full queue; the producer sees [`Self::failed`] and stops.
    fn drain(&self) -> Result<()> {
        let mut failure = None;
        loop {
            let next = self.queue.lock().expect("queue lock").recv();
            let Ok(batch) = next else {
                return failure.map_or(Ok(()), Err);
            };
            if failure.is_some() {
                continue;
            }
            match self.read_batch(&batch) {
                Ok(texts) => self.found.lock().expect("results lock").extend(texts),
                Err(error) => {
                    self.failed.store(true, Ordering::Relaxed);
                    failure = Some(error);
                }
            }
            for (_, image) in &batch {
                let _ = std::fs::remove_file(image);
            }
        }
    }

    /// Reads a batch once per language set of [`readings`] and keeps, per
    /// image, the first reading unless a later one (the CJK model alone)
    /// reads mostly Han characters more confidently: that model reads an
    /// English line as run-together letters, sometimes confidently too.
    fn read_batch(&self, batch: &Batch) -> Result<Vec<(usize, String, f32)>> {
        let mut best: Vec<(usize, String, f32)> = vec![];
        for (n, languages) in readings(&self.options.languages, self.page)
            .iter()
            .enumerate()
        {
            for (index, text, confidence) in
                run_tesseract(batch, languages, self.options, self.page)?
            {
                if n > 0 && !mostly_han(&text) {
                    continue;
                }
                match best.iter_mut().find(|(i, ..)| *i == index) {
                    Some(kept) if confidence > kept.2 => *kept = (index, text, confidence),
                    Some(_) => {}
                    None => best.push((index, text, confidence)),
                }
            }
        }
        Ok(best)
    }

    fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }

    fn take(self) -> Vec<(usize, String, f32)> {
        self.found.into_inner().expect("results lock")
    }
}

impl Pool<'_> {
    fn join(self) -> Result<()> {
        let mut outcome = Ok(());
        for handle in self.handles {
            match handle.join() {
                Ok(Ok(())) => {}
                Ok(Err(e)) => outcome = Err(e),
                Err(_) => {
                    outcome = Err(MediaError::Ocr {
                        detail: "a recognition thread panicked".into(),
                    })
                }
            }
        }
        outcome
    }
}

/// The language sets a caption is read with. Given Chinese (or another
/// CJK script) together with a Latin-script language, tesseract often takes
/// a Chinese line for Latin letters (外面下雨了 as "AbDBRS"), while the CJK
/// model alone reads it; an English line needs the English model. So a
/// caption is read both ways and the more confident reading is kept. On-
/// screen text is read once, with every language.
fn readings(languages: &str, page: OcrPage) -> Vec<String> {
    let cjk: Vec<&str> = languages
        .split('+')
        .filter(|l| l.starts_with("chi_") || l.starts_with("jpn") || l.starts_with("kor"))
        .collect();
    let all = languages.split('+').count();
    if page == OcrPage::Caption && !cjk.is_empty() && cjk.len() < all {
        vec![languages.to_string(), cjk.join("+")]
    } else {
        vec![languages.to_string()]
    }
}

/// Recognises a batch of images in one `tesseract` process (a list file
/// makes each image a page of the TSV output): per image read, its text and
/// mean word confidence.
fn run_tesseract(
    batch: &Batch,
    languages: &str,
    options: &OcrOptions,
    page: OcrPage,
) -> Result<Vec<(usize, String, f32)>> {
    let Some((_, first)) = batch.first() else {
        return Ok(vec![]);
    };
    let list = first.with_extension("list");
    let mut file = std::fs::File::create(&list)?;
    for (_, image) in batch {
        writeln!(file, "{}", image.display())?;
    }
    drop(file);
    let mut tesseract = Command::new("tesseract");
    tesseract
        .arg(&list)
        .arg("stdout")
        .args(["-l", languages])
        // 6: one uniform block (a caption's one or two lines);
        // 11: sparse text anywhere in the picture.
        .args(["--psm", if page == OcrPage::Caption { "6" } else { "11" }])
        .arg("tsv")
        // Parallelism comes from our threads; tesseract's own OpenMP
        // threads would oversubscribe the cores.
        .env("OMP_THREAD_LIMIT", "1");
    let timeout = Duration::from_secs(TESSERACT_SECS_PER_IMAGE * batch.len() as u64 + 10);
    let output = output_within(tesseract, "tesseract", timeout).map_err(|e| match e {
        MediaError::ToolMissing { source, .. } => MediaError::Ocr {
            detail: format!("cannot run tesseract: {source} (install tesseract-ocr)"),
        },
        other => other,
    })?;
    let _ = std::fs::remove_file(&list);
    if !output.status.success() {
        return Err(MediaError::Ocr {
            detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    let floor = match page {
        // A caption is one line: an unsure character in it (腾 at 30 %) is
        // still better kept, the line as a whole must be sure.
        OcrPage::Caption => (0.0, options.caption_confidence),
        OcrPage::Screen => (options.screen_confidence, options.screen_confidence),
    };
    let pages = parse_tsv(&String::from_utf8_lossy(&output.stdout), floor.0, floor.1);
    Ok(pages
        .into_iter()
        .filter_map(|(page_num, text, confidence)| {
            Some((batch.get(page_num.checked_sub(1)?)?.0, text, confidence))
        })
        .collect())
}

/// Where a recognised line sits: (page, block, paragraph, line).
type LineKey = (usize, u32, u32, u32);

/// tesseract's TSV → text and mean word confidence per page (1-based page
/// numbers). Words below `word_floor` are dropped; a line whose remaining
/// words average below `page_floor`, or that holds under two letters, is
/// dropped too.
fn parse_tsv(tsv: &str, word_floor: f32, page_floor: f32) -> Vec<(usize, String, f32)> {
    let mut lines: Vec<(LineKey, Vec<(f32, String)>)> = Vec::new();
    for row in tsv.lines().skip(1) {
        let cols: Vec<&str> = row.split('\t').collect();
        if cols.len() < 12 || cols[0] != "5" {
            continue;
        }
        let (Ok(page), Ok(block), Ok(par), Ok(line), Ok(conf)) = (
            cols[1].parse::<usize>(),
            cols[2].parse::<u32>(),
            cols[3].parse::<u32>(),
            cols[4].parse::<u32>(),
            cols[10].parse::<f32>(),
        ) else {
            continue;
        };
        let word = cols[11].trim();
        if word.is_empty() || conf < word_floor {
            continue;
        }
        let key = (page, block, par, line);
        match lines.last_mut() {
            Some((k, words)) if *k == key => words.push((conf, word.to_string())),
            _ => lines.push((key, vec![(conf, word.to_string())])),
        }
    }
    // Each line stands on its own: bright scenery beside a caption reads
    // as a junk line of its own, which must not sink the caption with it.
    // Words without a letter or digit (stray quotes, commas, bars from
    // edges) are dropped before a line is judged.
    let mut pages: Vec<(usize, Vec<String>, Vec<f32>)> = Vec::new();
    for ((page, ..), words) in lines {
        let words: Vec<&(f32, String)> = words
            .iter()
            .filter(|(_, w)| w.chars().any(char::is_alphanumeric))
            .collect();
        let mean = words.iter().map(|(c, _)| c).sum::<f32>() / words.len().max(1) as f32;
        let text = join_words(words.iter().map(|(_, w)| w.as_str()));
        let letters = text.chars().filter(|c| c.is_alphanumeric()).count();
        let floor = if mostly_han(&text) {
            page_floor - HAN_CONFIDENCE_SLACK
        } else {
            page_floor
        };
        if mean < floor || letters < 2 {
            continue;
        }
        match pages.last_mut() {
            Some((p, texts, means)) if *p == page => {
                texts.push(text);
                means.push(mean);
            }
            _ => pages.push((page, vec![text], vec![mean])),
        }
    }
    pages
        .into_iter()
        .map(|(page, texts, means)| {
            let mean = means.iter().sum::<f32>() / means.len() as f32;
            (page, texts.join("\n"), mean)
        })
        .collect()
}

/// Joins recognised words: with a space between words of spaced scripts,
/// without one where either side is Chinese or Japanese (tesseract splits
/// Han text into words the language does not separate).
pub(crate) fn join_words<'a>(words: impl Iterator<Item = &'a str>) -> String {
    let mut text = String::new();
    for word in words {
        let joins_tight = match (text.chars().last(), word.chars().next()) {
            (Some(a), Some(b)) => is_cjk(a) || is_cjk(b),
            _ => true,
        };
        if !joins_tight {
            text.push(' ');
        }
        text.push_str(word);
    }
    text
}

/// Whether most letters of `text` are CJK characters.
fn mostly_han(text: &str) -> bool {
    let letters = text.chars().filter(|c| c.is_alphanumeric()).count();
    let han = text.chars().filter(|&c| is_cjk(c)).count();
    han * 2 > letters
}

fn is_cjk(c: char) -> bool {
    matches!(c,
        '\u{3000}'..='\u{303f}' // CJK punctuation
        | '\u{3040}'..='\u{30ff}' // kana
        | '\u{3400}'..='\u{4dbf}'
        | '\u{4e00}'..='\u{9fff}'
        | '\u{f900}'..='\u{faff}'
        | '\u{ff00}'..='\u{ffef}' // full-width forms
        | '\u{20000}'..='\u{2fa1f}')
}

/// One binarisation's reading of a caption.
#[derive(Debug, Clone)]
struct Reading {
    /// Index into [`BRIGHT`].
    level: usize,
    text: String,
    confidence: f32,
}

/// A caption's text from its readings at each [`BRIGHT`] level: none
/// unless the most inclusive level read something (it decides whether a
/// caption is there at all, so the stricter ones add no captions, only
/// better readings); otherwise the most confident reading among those not
/// much shorter than the longest, since a stroke-starved binarisation may
/// read two confident characters of a line of ten.
fn best_reading(readings: Vec<Reading>) -> Option<(String, f32)> {
    readings.iter().find(|r| r.level == 0)?;
    let length = |text: &str| text.chars().filter(|c| !c.is_whitespace()).count();
    let longest = readings.iter().map(|r| length(&r.text)).max()?;
    readings
        .into_iter()
        .filter(|r| length(&r.text) * 2 >= longest)
        .fold(None, |best: Option<Reading>, r| match best {
            Some(kept) if kept.confidence >= r.confidence => Some(kept),
            _ => Some(r),
        })
        .map(|r| (r.text, r.confidence))
}

/// Runs that read alike and touch become one cue; runs without text (or
/// with under [`MIN_CAPTION_CHARS`]) go, but where a run's text was shown
/// all through the textless runs just before it (see [`Run::shown_before`]),
/// its cue starts with them.
fn merge_runs(runs: Vec<Run>, step: f64) -> Vec<Cue> {
    let mut cues: Vec<(Cue, f32)> = Vec::new();
    // Where the textless runs just before this one began to show its text.
    let mut shown_since: Option<f64> = None;
    for run in runs {
        let lone = run.samples == 1;
        let since = shown_since
            .filter(|_| run.shown_before)
            .unwrap_or(run.start);
        let Some((text, confidence)) = run.text.filter(|(t, confidence)| {
            t.chars().filter(|c| c.is_alphanumeric()).count() >= MIN_CAPTION_CHARS
                && (!lone || *confidence >= LONE_SAMPLE_CONFIDENCE)
        }) else {
            shown_since = Some(since);
            continue;
        };
        shown_since = None;
        if let Some((cue, surest)) = cues.last_mut()
            && run.start - cue.end <= step * 1.5
            && text_distance(&cue.text, &text) <= SAME_TEXT_DISTANCE
        {
            cue.end = run.end;
            // Each sample of a caption over a moving picture reads it a
            // little differently; the most confident reading is kept.
            if confidence > *surest {
                cue.text = text;
                *surest = confidence;
            }
            continue;
        }
        cues.push((
            Cue {
                start: since.max(0.0),
                end: run.end,
                text,
            },
            confidence,
        ));
    }
    cues.into_iter().map(|(cue, _)| cue).collect()
}

/// Edit distance between two texts over the longer one's length, ignoring
/// whitespace (0 = same, 1 = nothing in common).
pub(crate) fn text_distance(a: &str, b: &str) -> f64 {
    let a: Vec<char> = a.chars().filter(|c| !c.is_whitespace()).collect();
    let b: Vec<char> = b.chars().filter(|c| !c.is_whitespace()).collect();
    let longest = a.len().max(b.len());
    if longest == 0 {
        return 0.0;
    }
    edit_distance(&a, &b) as f64 / longest as f64
}

/// Levenshtein distance over characters.
pub fn edit_distance<T: PartialEq>(a: &[T], b: &[T]) -> usize {
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, x) in a.iter().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, y) in b.iter().enumerate() {
            let above = row[j + 1];
            row[j + 1] = (above + 1)
                .min(row[j] + 1)
                .min(diagonal + usize::from(x != y));
            diagonal = above;
        }
    }
    row[b.len()]
}

/// The caption band's size after scaling: [`OCR_WIDTH`] wide, even sides.
fn band_size(width: u32, height: u32) -> (usize, usize) {
    scaled(width, (height as f64 * BAND_FRACTION) as u32)
}

/// The frame above the caption band, scaled like the band.
fn upper_size(width: u32, height: u32) -> (usize, usize) {
    scaled(width, height - (height as f64 * BAND_FRACTION) as u32)
}

/// Native width where possible: tesseract reads a caption best as it was
/// drawn; an upscaled and thresholded one loses strokes of dense Han
/// characters (measured: a 640 px video's line read exactly at 640 px and
/// with two wrong characters at 1280 px).
fn scaled(width: u32, height: u32) -> (usize, usize) {
    let target = width.clamp(MIN_OCR_WIDTH, OCR_WIDTH);
    let w = (target as usize + 1) & !1;
    let h = (height.max(1) as f64 * target as f64 / width.max(1) as f64).round() as usize;
    (w, (h.max(2) + 1) & !1)
}

/// Pixels at least `bright` among the `outlined` ones (a dark pixel, the
/// outline, nearby, see [`SampleMasks::sample`]; and in a caption's colour).
fn text_mask(gray: &[u8], outlined: &[bool], bright: u8) -> Vec<bool> {
    let mut mask = vec![];
    text_mask_into(gray, outlined, bright, &mut mask);
    mask
}

/// [`text_mask`] into `mask`, whose allocation is reused.
fn text_mask_into(gray: &[u8], outlined: &[bool], bright: u8, mask: &mut Vec<bool>) {
    mask.clear();
    mask.extend(
        gray.iter()
            .zip(outlined)
            .map(|(&g, &outlined)| outlined && g >= bright),
    );
}

/// Chroma distance from 128 (Cb and Cr) within which a pixel is white or
/// gray.
const NEUTRAL_CHROMA: i16 = 20;
/// How far below neutral Cr may fall and a pixel still count as warm: the
/// thin strokes of a yellow caption share their subsampled chroma with the
/// picture around them.
const WARM_SLACK: i16 = 4;

/// Whether a pixel of chroma `cb`, `cr` can be part of a caption: white or
/// gray, or warm (yellow, orange: Cr at or above neutral), the colours
/// captions are drawn in. Sunlit grass and foliage, bright and edged with
/// shadow, otherwise pass the outline test; they are green (Cb and Cr both
/// low), as water and sky are blue.
fn caption_colour(cb: u8, cr: u8) -> bool {
    let (cb, cr) = (i16::from(cb) - 128, i16::from(cr) - 128);
    (cb.abs() <= NEUTRAL_CHROMA && cr.abs() <= NEUTRAL_CHROMA) || cr >= -WARM_SLACK
}

/// Whether a pixel that is `set` (by its row-major index in a `w` x `h`
/// picture) lies in the (2r+1)² window around each pixel, done separably
/// with running distances to the nearest one (rows, then columns), so each
/// pixel costs the same whatever `r`, and memory is read in order.
fn within(w: usize, h: usize, r: usize, set: impl Fn(usize) -> bool) -> Vec<bool> {
    let mut out = vec![];
    within_into(w, h, r, set, &mut vec![], &mut out);
    out
}

/// [`within`] into `out`, with `across` for its pass along the rows; both
/// allocations are reused.
fn within_into(
    w: usize,
    h: usize,
    r: usize,
    set: impl Fn(usize) -> bool,
    across: &mut Vec<bool>,
    out: &mut Vec<bool>,
) {
    // Distance since the last set pixel, and whether it is within r.
    let step = |since: &mut usize, set: bool| {
        *since = if set { 0 } else { since.saturating_add(1) };
        *since <= r
    };
    // Along each row: a set pixel within r columns, left or right.
    across.clear();
    across.resize(w * h, false);
    for (y, near) in across.chunks_exact_mut(w).enumerate() {
        let mut since = usize::MAX;
        for (x, n) in near.iter_mut().enumerate() {
            *n = step(&mut since, set(y * w + x));
        }
        let mut since = usize::MAX;
        for (x, n) in near.iter_mut().enumerate().rev() {
            *n |= step(&mut since, set(y * w + x));
        }
    }
    // Down the columns: such a pixel within r rows, above or below.
    out.clear();
    out.resize(w * h, false);
    let mut since = vec![usize::MAX; w];
    for (row, near) in across.chunks_exact(w).zip(out.chunks_exact_mut(w)) {
        for ((a, s), n) in row.iter().zip(since.iter_mut()).zip(near.iter_mut()) {
            *n = step(s, *a);
        }
    }
    since.fill(usize::MAX);
    for (row, near) in across.chunks_exact(w).zip(out.chunks_exact_mut(w)).rev() {
        for ((a, s), n) in row.iter().zip(since.iter_mut()).zip(near.iter_mut()) {
            *n |= step(s, *a);
        }
    }
}

/// Whether two text masks differ in more than [`CHANGE_SHARE`] of the
/// pixels either holds.
fn masks_differ(a: &[bool], b: &[bool]) -> bool {
    let (mut on, mut differ) = (0usize, 0usize);
    for (&x, &y) in a.iter().zip(b) {
        on += usize::from(x || y);
        differ += usize::from(x != y);
    }
    differ as f64 > on as f64 * CHANGE_SHARE
}

/// An 8-bit gray picture.
struct GrayImage {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

/// The caption as dark text on white, cut to it with a margin; `None`
/// when too little of the band's text `mask` (at `bright`) is text to hold
/// a caption. The text and the pixels within [`EDGE_RADIUS`] of it keep
/// their luma, stretched so that `bright` is black and [`INK_RAMP`] levels
/// below it white; the rest is white. The glyphs keep their anti-aliased
/// edges: a mask cut hard at a threshold has ragged strokes, in which
/// tesseract mistakes dense Han characters for others (measured on
/// bench/ocr: Chinese CER 0.27 to 0.18, 11 to 14 of 24 lines exact).
fn crop_to_text(mask: &[bool], luma: &[u8], bright: u8, w: usize, h: usize) -> Option<GrayImage> {
    let count = mask.iter().filter(|&&m| m).count();
    if (count as f64) < (w * h) as f64 * MIN_TEXT_SHARE {
        return None;
    }
    let (x0, x1, y0, y1) = caption_region(mask, w, h)?;
    // Whether a text pixel lies within EDGE_RADIUS, worked out over the
    // caption and the margin of that radius around it, not the whole band.
    let (wx0, wy0) = (
        x0.saturating_sub(EDGE_RADIUS),
        y0.saturating_sub(EDGE_RADIUS),
    );
    let (wx1, wy1) = ((x1 + EDGE_RADIUS).min(w - 1), (y1 + EDGE_RADIUS).min(h - 1));
    let ww = wx1 - wx0 + 1;
    let near = within(ww, wy1 - wy0 + 1, EDGE_RADIUS, |i| {
        mask[(wy0 + i / ww) * w + wx0 + i % ww]
    });
    let near_text = |x: usize, y: usize| near[(y - wy0) * ww + x - wx0];
    let faint = bright.saturating_sub(INK_RAMP);
    let span = f32::from(INK_RAMP.max(1));
    const MARGIN: usize = 24;
    let (cw, ch) = (x1 - x0 + 1 + 2 * MARGIN, y1 - y0 + 1 + 2 * MARGIN);
    let mut pixels = vec![255u8; cw * ch];
    for y in y0..=y1 {
        for x in x0..=x1 {
            if near_text(x, y) {
                let above = f32::from(luma[y * w + x].saturating_sub(faint));
                let ink = (above / span).min(1.0);
                pixels[(y - y0 + MARGIN) * cw + (x - x0 + MARGIN)] = ((1.0 - ink) * 255.0) as u8;
            }
        }
    }
    Some(to_line_height(GrayImage {
        width: cw,
        height: ch,
        pixels,
    }))
}

/// How far (pixels) from a text pixel the caption's picture is kept.
const EDGE_RADIUS: usize = 2;
/// Luma levels below the binarisation level over which the caption image
/// fades from black to white. Stretched down to the outline's [`DARK`],
/// a clean Zen Hei line on a plain background was read with two wrong
/// characters, confidently; over 80 levels, exactly, with bench/ocr's
/// lines read as well.
const INK_RAMP: u8 = 80;

/// Rows a caption line's text may pause for (between the parts of 二, or
/// a line's top strokes and the rest) and still be one line.
const LINE_GAP_ROWS: usize = 6;
/// Width (pixels) of the window that judges how dense text is along a line.
const DENSITY_WINDOW: usize = 24;

/// Where the caption is in the band, as inclusive `(x0, x1, y0, y1)`: the
/// runs of rows dense with text pixels (a caption's one or two lines), and
/// along them the columns where text is dense. Bright edges beside dark
/// ones in the scenery (grass, foliage) pass the mask as scattered specks;
/// a box around every one of them would hand tesseract a band-wide page of
/// noise in which it loses the caption.
fn caption_region(mask: &[bool], w: usize, h: usize) -> Option<(usize, usize, usize, usize)> {
    let rows: Vec<usize> = mask
        .chunks_exact(w)
        .map(|row| row.iter().filter(|&&m| m).count())
        .collect();
    let densest = *rows.iter().max()?;
    let floor = (densest / 5).max(3);
    // Runs of dense rows, joined across short pauses.
    let mut lines: Vec<(usize, usize, usize)> = vec![]; // (first, last, pixels)
    for (y, &count) in rows.iter().enumerate().filter(|(_, c)| **c >= floor) {
        match lines.last_mut() {
            Some((_, last, pixels)) if y - *last <= LINE_GAP_ROWS => {
                *pixels += rows[*last + 1..=y].iter().sum::<usize>();
                *last = y;
            }
            _ => lines.push((y, y, count)),
        }
    }
    let heaviest = lines.iter().map(|&(_, _, pixels)| pixels).max()?;
    let kept = || {
        lines
            .iter()
            .filter(move |&&(first, last, pixels)| pixels * 10 >= heaviest * 3 && last - first >= 7)
    };
    let y0 = kept().map(|&(first, ..)| first).min()?;
    let y1 = kept().map(|&(_, last, _)| last).max()?;
    let columns: Vec<usize> = (0..w)
        .map(|x| (y0..=y1).filter(|&y| mask[y * w + x]).count())
        .collect();
    let half = DENSITY_WINDOW / 2;
    let density: Vec<usize> = (0..w)
        .map(|x| {
            columns[x.saturating_sub(half)..(x + half).min(w)]
                .iter()
                .sum()
        })
        .collect();
    let densest = *density.iter().max()?;
    let dense = |x: &usize| density[*x] * 10 >= densest;
    let (from, to) = ((0..w).find(dense)?, (0..w).rev().find(dense)?);
    // The window reaches past the text's ends: back to the last text pixels.
    let x0 = (from..=to).find(|&x| columns[x] > 0)?;
    let x1 = (from..=to).rev().find(|&x| columns[x] > 0)?;
    // Ascenders and descenders (f, h, g, y) are rows too sparse to count as
    // dense: the lines grow by the rows touching them that hold text, up to
    // half a line each way.
    let reach = (y1 - y0).div_ceil(2);
    let has_text = |y: usize| (x0..=x1).any(|x| mask[y * w + x]);
    let y0 = (y0.saturating_sub(reach)..y0)
        .rev()
        .take_while(|&y| has_text(y))
        .last()
        .unwrap_or(y0);
    let y1 = (y1 + 1..(y1 + 1 + reach).min(h))
        .take_while(|&y| has_text(y))
        .last()
        .unwrap_or(y1);
    Some((x0, x1, y0, y1))
}

/// Scales a caption whose lines are over [`MAX_LINE_HEIGHT`] pixels tall
/// down to [`LINE_HEIGHT`]: tesseract loses strokes of dense characters
/// (碗, 腾) in lines of 60 pixels that it reads at 30–40.
fn to_line_height(caption: GrayImage) -> GrayImage {
    let text_rows: Vec<bool> = caption
        .pixels
        .chunks_exact(caption.width)
        .map(|row| row.iter().any(|&p| p < 128))
        .collect();
    // Lines are runs of rows with text; runs under 4 rows are specks.
    let runs: Vec<usize> = text_rows
        .split(|&t| !t)
        .map(<[bool]>::len)
        .filter(|&n| n >= 4)
        .collect();
    if runs.is_empty() {
        return caption;
    }
    let line = runs.iter().sum::<usize>() as f64 / runs.len() as f64;
    if line <= MAX_LINE_HEIGHT {
        return caption;
    }
    let scale = LINE_HEIGHT / line;
    let (width, height) = (
        ((caption.width as f64 * scale).round() as usize).max(1),
        ((caption.height as f64 * scale).round() as usize).max(1),
    );
    let source =
        image::GrayImage::from_raw(caption.width as u32, caption.height as u32, caption.pixels)
            .expect("pixels match the size");
    let resized = image::imageops::resize(
        &source,
        width as u32,
        height as u32,
        image::imageops::FilterType::Triangle,
    );
    GrayImage {
        width,
        height,
        pixels: resized.into_raw(),
    }
}

fn write_pgm(path: &Path, image: &GrayImage) -> Result<()> {
    let mut bytes = format!("P5\n{} {}\n255\n", image.width, image.height).into_bytes();
    bytes.extend_from_slice(&image.pixels);
    std::fs::write(path, bytes)?;
    Ok(())
}

/// One gray frame at `t`, shaped by `filter`; `None` past the end.
fn one_frame(path: &Path, t: f64, filter: &str, len: usize) -> Result<Option<Vec<u8>>> {
    let mut ffmpeg = Command::new("ffmpeg");
    ffmpeg
        .args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"])
        .args(input_args(path, Some(t)))
        .args(["-frames:v", "1", "-vf", filter])
        .args([
            "-an", "-sn", "-dn", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1",
        ]);
    let output = output_within(ffmpeg, "ffmpeg", KEYFRAME_TIMEOUT)?;
    if !output.status.success() {
        return Err(MediaError::DecodeFailed {
            at: t,
            detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    Ok((output.stdout.len() == len).then_some(output.stdout))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn han_text_is_joined_without_spaces_latin_with() {
        assert_eq!(
            join_words(["今天", "天", "气", "很好"].into_iter()),
            "今天天气很好"
        );
        assert_eq!(join_words(["ride", "a", "bike"].into_iter()), "ride a bike");
        assert_eq!(join_words(["骑", "BMX", "车"].into_iter()), "骑BMX车");
    }

    #[test]
    fn tsv_pages_keep_confident_words() {
        let tsv = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext\n\
            1\t1\t0\t0\t0\t0\t0\t0\t10\t10\t-1\t\n\
            5\t1\t1\t1\t1\t1\t0\t0\t10\t10\t96.5\t今天\n\
            5\t1\t1\t1\t1\t2\t0\t0\t10\t10\t91.0\t天气\n\
            5\t1\t1\t1\t2\t1\t0\t0\t10\t10\t90.0\tnice\n\
            5\t1\t1\t1\t2\t2\t0\t0\t10\t10\t88.0\tday\n\
            5\t2\t1\t1\t1\t1\t0\t0\t10\t10\t20.0\t~~\n\
            5\t3\t1\t1\t1\t1\t0\t0\t10\t10\t45.0\tblurry\n\
            5\t3\t1\t1\t1\t2\t0\t0\t10\t10\t50.0\twords\n\
            5\t4\t1\t1\t1\t1\t0\t0\t10\t10\t52.0\t钥匙\n\
            5\t4\t1\t1\t1\t2\t0\t0\t10\t10\t54.0\t递给我\n";
        // Line means 93.75 and 89: the page's confidence is their mean.
        // Page 4's Han line is judged 10 points lower than Latin text.
        assert_eq!(
            parse_tsv(tsv, 30.0, 60.0),
            [
                (1, "今天天气\nnice day".to_string(), 91.375),
                (4, "钥匙递给我".to_string(), 53.0)
            ],
            "page 2 is below the word floor, page 3 below the page floor"
        );
        assert_eq!(parse_tsv(tsv, 30.0, 40.0).len(), 3);
    }

    #[test]
    fn captions_with_chinese_and_english_are_read_both_ways() {
        assert_eq!(
            readings("chi_sim+eng", OcrPage::Caption),
            ["chi_sim+eng", "chi_sim"]
        );
        assert_eq!(
            readings("chi_sim+chi_tra+eng", OcrPage::Caption),
            ["chi_sim+chi_tra+eng", "chi_sim+chi_tra"]
        );
        assert_eq!(readings("eng", OcrPage::Caption), ["eng"]);
        assert_eq!(readings("chi_sim", OcrPage::Caption), ["chi_sim"]);
        assert_eq!(readings("chi_sim+eng", OcrPage::Screen), ["chi_sim+eng"]);
        assert!(mostly_han("外面下雨了记得带伞"));
        assert!(mostly_han("骑BMX车去公园"));
        assert!(!mostly_han("Keeptnelanternawavtromtnenav"));
    }

    #[test]
    fn the_caption_region_leaves_scattered_specks_out() {
        // A 200x60 band: a dense caption line in rows 20..40, columns
        // 60..140, and specks of scenery all over.
        let (w, h) = (200, 60);
        let mut mask = vec![false; w * h];
        for y in 20..40 {
            for x in (60..140).filter(|x| (x + y) % 2 == 0) {
                mask[y * w + x] = true;
            }
        }
        for (x, y) in [(3, 2), (190, 5), (10, 55), (180, 50), (100, 1), (2, 30)] {
            mask[y * w + x] = true;
        }
        // A descender below the line: sparse rows 40..44 under column 100.
        for y in 40..44 {
            mask[y * w + 100] = true;
        }
        let (x0, x1, y0, y1) = caption_region(&mask, w, h).unwrap();
        assert_eq!((x0, x1), (60, 139));
        assert_eq!((y0, y1), (20, 43), "the descender's rows are kept");
        assert_eq!(caption_region(&vec![false; w * h], w, h), None);
    }

    #[test]
    fn alike_runs_merge_into_one_cue() {
        let run = |start: f64, end: f64, text: Option<(&str, f32)>| Run {
            start,
            end,
            samples: ((end - start) / 0.5).round() as usize,
            shown_before: false,
            text: text.map(|(t, confidence)| (t.to_string(), confidence)),
        };
        let cues = merge_runs(
            vec![
                run(0.0, 0.75, None),
                // The same caption over a changing picture, read three
                // ways; the surest reading is kept.
                run(0.75, 1.25, Some(("今天天气很女", 70.0))),
                run(1.25, 2.25, Some(("今天天气很好", 90.0))),
                run(2.25, 2.75, Some(("今天天乞很女", 72.0))),
                run(2.75, 3.25, None),
                // Two characters of scenery are no caption.
                run(3.25, 3.75, Some(("四一", 75.0))),
                // Nor is a less than sure reading seen in one sample.
                run(3.75, 4.25, Some(("Fey yt", 65.0))),
                run(4.25, 6.0, Some(("我们去公园", 80.0))),
            ],
            0.5,
        );
        assert_eq!(
            cues,
            [
                Cue {
                    start: 0.75,
                    end: 2.75,
                    text: "今天天气很好".into()
                },
                Cue {
                    start: 4.25,
                    end: 6.0,
                    text: "我们去公园".into()
                },
            ]
        );
    }

    #[test]
    fn a_caption_shown_through_textless_runs_starts_with_them() {
        let run = |start: f64, end: f64, shown_before: bool, text: Option<&str>| Run {
            start,
            end,
            samples: 2,
            shown_before,
            text: text.map(|t| (t.to_string(), 90.0)),
        };
        let cues = merge_runs(
            vec![
                run(0.0, 1.0, false, None),
                // The caption over a busy picture, read as nothing, then
                // the same caption as the scenery around it went.
                run(1.0, 2.0, false, None),
                run(2.0, 3.0, true, Some("外面下雨了")),
                // A caption after a textless run that did not show it.
                run(3.0, 4.0, false, None),
                run(4.0, 5.0, false, Some("记得带伞")),
            ],
            0.5,
        );
        let starts: Vec<f64> = cues.iter().map(|c| c.start).collect();
        assert_eq!(starts, [1.0, 4.0]);
    }

    #[test]
    fn only_outlined_bright_pixels_are_text() {
        let (w, h) = (40, 20);
        // A bright bar with a dark outline, and a bright area without one.
        let mut gray = vec![128u8; w * h];
        for y in 6..14 {
            for x in 2..18 {
                gray[y * w + x] = 0;
            }
            for x in 22..40 {
                gray[y * w + x] = 240;
            }
        }
        for y in 8..12 {
            for x in 4..16 {
                gray[y * w + x] = 250;
            }
        }
        let neutral = vec![128u8; w * h];
        let mut masks = SampleMasks::default();
        let sample = masks.sample(&gray, &neutral, &neutral, w, h);
        assert_eq!(sample.mask, text_mask(&gray, sample.outlined, BRIGHT[0]));
        for bright in BRIGHT {
            let mask = text_mask(&gray, sample.outlined, bright);
            assert!(mask[10 * w + 10], "outlined text");
            assert!(!mask[10 * w + 35], "bright without outline");
            assert!(!mask[0], "mid-gray");
        }
    }

    #[test]
    fn a_dark_pixel_is_near_within_the_window() {
        let (w, h, r) = (9, 7, 2);
        let mut gray = vec![200u8; w * h];
        gray[3 * w + 4] = 10;
        let near = within(w, h, r, |i| gray[i] <= DARK);
        for y in 0..h {
            for x in 0..w {
                let inside = x.abs_diff(4) <= r && y.abs_diff(3) <= r;
                assert_eq!(near[y * w + x], inside, "({x}, {y})");
            }
        }
    }

    #[test]
    fn captions_are_white_or_warm_scenery_green_or_blue() {
        // BT.601 chroma of white, yellow (0xffe040), yellow half-blended
        // with its black outline (4:2:0 subsampling), sunlit grass, sky.
        assert!(caption_colour(128, 128), "white");
        assert!(caption_colour(53, 153), "yellow");
        assert!(caption_colour(90, 140), "yellow beside its outline");
        assert!(!caption_colour(70, 117), "grass");
        assert!(!caption_colour(170, 100), "sky");
    }

    #[test]
    fn the_most_confident_full_reading_wins_where_the_first_level_read_one() {
        let reading = |level, text: &str, confidence| Reading {
            level,
            text: text.into(),
            confidence,
        };
        let line = "老师把作业留在了讲台上";
        // A stricter level reads the line better: kept.
        assert_eq!(
            best_reading(vec![
                reading(0, "老师把作业留在本讲台上", 70.0),
                reading(1, line, 85.0)
            ]),
            Some((line.into(), 85.0))
        );
        // Two confident characters of a line of ten lose to the line.
        assert_eq!(
            best_reading(vec![reading(0, line, 70.0), reading(2, "I 一", 95.0)]),
            Some((line.into(), 70.0))
        );
        // Without a reading at the first level there is no caption.
        assert_eq!(best_reading(vec![reading(1, line, 90.0)]), None);
        assert_eq!(best_reading(vec![]), None);
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance(&['a', 'b', 'c'], &['a', 'x', 'c', 'd']), 2);
        assert_eq!(text_distance("今天 天气", "今天天气"), 0.0);
        assert!((text_distance("abcd", "abxd") - 0.25).abs() < 1e-9);
    }
}
