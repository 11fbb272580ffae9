//! The one error type of the media module. Messages are written for the
//! person who uploaded the file: they say what is wrong with it, and keep a
//! short excerpt of what ffmpeg said so an operator can dig further.

use std::path::PathBuf;

/// Everything that can go wrong while probing, decoding, sampling or
/// thumbnailing a video, or while reading subtitles.
#[derive(Debug, thiserror::Error)]
pub enum MediaError {
    /// The path does not exist or cannot be opened.
    #[error("cannot read {path}: {source}")]
    Unreadable {
        /// The file that was asked for.
        path: PathBuf,
        /// The operating system's reason.
        source: std::io::Error,
    },
    /// The file has zero bytes (an interrupted upload, typically).
    #[error("file is empty")]
    EmptyFile,
    /// ffprobe does not recognise any container or codec in the file.
    #[error("not a video file (ffprobe: {detail})")]
    NotMedia {
        /// ffprobe's own words.
        detail: String,
    },
    /// The file starts like a known container but cannot be read to the end
    /// (cut-off upload, missing index).
    #[error("the video file is truncated or corrupt (ffprobe: {detail})")]
    Corrupt {
        /// ffprobe's own words.
        detail: String,
    },
    /// A media file that carries audio, subtitles or a still image only.
    #[error("no video stream{}", if .detail.is_empty() { String::new() } else { format!(" ({})", .detail) })]
    NoVideoStream {
        /// What the file has instead, e.g. "streams: audio".
        detail: String,
    },
    /// Frames larger than ingest decodes: each would need more memory than
    /// a worker should give one picture (a hostile or broken header can claim
    /// any size).
    #[error("the video's frames are {width}x{height} pixels; the limit is {max} pixels a side")]
    FrameTooLarge {
        /// The frame size the file declares.
        width: u32,
        height: u32,
        /// [`crate::MAX_FRAME_SIDE`].
        max: u32,
    },
    /// The video stream carries no usable timing (duration or frame rate).
    #[error("cannot determine the video's {what}")]
    MissingTiming {
        /// "duration" or "frame rate".
        what: &'static str,
    },
    /// ffmpeg stopped decoding before the end of the video.
    #[error("decoding failed at {at:.1} s: {detail}")]
    DecodeFailed {
        /// Position (seconds) of the last frame that decoded.
        at: f64,
        /// ffmpeg's last words.
        detail: String,
    },
    /// ffprobe ran past its watchdog and was killed.
    #[error(
        "{tool} did not finish within {secs} s and was stopped (a damaged file or a stalled disk?)"
    )]
    Hung {
        /// "ffprobe".
        tool: &'static str,
        /// The watchdog's limit.
        secs: u64,
    },
    /// ffmpeg or ffprobe is not installed or cannot be started.
    #[error("cannot run {tool}: {source} (install ffmpeg, e.g. `apt-get install ffmpeg`)")]
    ToolMissing {
        /// "ffmpeg" or "ffprobe".
        tool: &'static str,
        /// Why spawning failed.
        source: std::io::Error,
    },
    /// ffprobe answered with something that is not the JSON it documents.
    #[error("unexpected ffprobe output: {0}")]
    ProbeOutput(String),
    /// A subtitle file that cannot be parsed.
    #[error("subtitles, line {line}: {message}")]
    Subtitle {
        /// 1-based line number of the offending line.
        line: usize,
        /// What was expected there.
        message: String,
    },
    /// Encoding or writing a thumbnail failed.
    #[error("cannot write thumbnail {path}: {message}")]
    Thumbnail {
        /// The destination that was asked for.
        path: PathBuf,
        /// The reason.
        message: String,
    },
    /// Text recognition (tesseract) failed or is not installed.
    #[error("text recognition failed: {detail}")]
    Ocr {
        /// tesseract's own words, or why it could not start.
        detail: String,
    },
    /// Any other I/O failure while talking to a child process or the disk.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

/// Result alias for the media module.
pub type Result<T, E = MediaError> = std::result::Result<T, E>;
