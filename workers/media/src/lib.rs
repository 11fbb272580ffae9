//! Media access for ingest: the ffmpeg/ffprobe side of turning a file into
//! searchable segments. Everything here is synchronous and blocking (the
//! ingest worker runs it under `spawn_blocking`) and streams: memory stays
//! bounded by a few frames whatever the video's length.
//!
//! The steps, in the order ingest uses them:
//! [`probe`] → [`detect_cuts`] → [`plan_segments`] → [`sample_frames`]
//! (frames for the encoder) → [`pick_thumbnail`] / [`write_thumbnail`];
//! [`find_sidecar_subtitles`] and [`read_subtitles`] feed the text side, with
//! [`read_embedded_subtitles`] (subtitle streams inside the container) and
//! [`read_burned_in_captions`] / [`read_on_screen_text`] (text in the picture,
//! by OCR).
//! [`analyze`] runs the picture's steps on one decode, which can also feed
//! the caption band to [`read_captions`] ([`caption_band`]); it is what the
//! benchmark times.

mod analyze;
mod error;
mod ffmpeg;
mod frames;
mod ocr;
mod probe;
mod segments;
mod shots;
mod subtitle_tracks;
mod subtitles;
mod thumbnail;

pub use analyze::{Analysis, AnalyzeOptions, AnalyzedSegment, StageTimings, analyze};
pub use error::{MediaError, Result};
pub use frames::{FrameSampler, SampleOptions, SamplingStrategy, SegmentFrames, sample_frames};
pub use ocr::{
    BandFrame, CaptionTap, OCR_WIDTH, OcrOptions, caption_band, edit_distance,
    read_bitmap_subtitles, read_burned_in_captions, read_captions, read_on_screen_text,
    tesseract_available,
};
pub use probe::{MAX_FRAME_SIDE, Probe, probe};
pub use segments::{DEFAULT_MAX_SEGMENT_SECS, MIN_SEGMENT_SECS, Segment, plan_segments};
pub use shots::{Cut, ShotDetector, ShotParams, detect_cuts};
pub use subtitle_tracks::{EmbeddedSubtitles, SubtitleTrack, read_embedded_subtitles};
pub use subtitles::{Cue, SubtitleFormat, find_sidecar_subtitles, parse_subtitles, read_subtitles};
pub use thumbnail::{THUMBNAIL_WIDTH, pick_thumbnail, write_thumbnail};
