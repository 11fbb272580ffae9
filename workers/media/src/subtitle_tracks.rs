//! Subtitle streams inside the container (mov_text in MP4, SubRip, ASS and
//! WebVTT in MKV/WebM) → the same [`Cue`]s a sidecar file gives.
//!
//! ffmpeg converts any text subtitle codec to SubRip on a pipe, so one parser
//! ([`parse_subtitles`]) reads them all. Bitmap tracks (PGS, DVB, VobSub)
//! carry pictures of text: with OCR options they are recognised
//! ([`read_bitmap_subtitles`]), unless a text track of the same language
//! says the same more reliably.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::error::{MediaError, Result};
use super::ffmpeg::{LOCAL_PROTOCOLS_ONLY, output_within};
use super::ocr::{OcrOptions, read_bitmap_subtitles};
use super::probe::Probe;
use super::subtitles::{Cue, SubtitleFormat, parse_subtitles};

/// Longest one track's extraction may take. ffmpeg reads the whole file's
/// packets to find a track's cues (demuxing, not decoding), which on a slow
/// disk and a long film takes a while, but never this long.
const EXTRACT_TIMEOUT: Duration = Duration::from_secs(300);

/// Subtitle codecs that carry text ffmpeg can write as SubRip.
const TEXT_CODECS: [&str; 7] = ["mov_text", "subrip", "srt", "ass", "ssa", "webvtt", "text"];

/// One subtitle stream of a container.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct SubtitleTrack {
    /// Position among the file's subtitle streams (`-map 0:s:N`).
    pub index: usize,
    /// ffprobe's codec name (`mov_text`, `subrip`, `hdmv_pgs_subtitle`, ...).
    pub codec: String,
    /// The stream's language tag (`eng`, `chi`, `zh-Hans`, ...), if any.
    pub language: Option<String>,
}

impl SubtitleTrack {
    /// The track at `index` among a file's subtitle streams, as ffprobe
    /// lists it; `und`, ffmpeg's "undetermined", is no language tag.
    pub(crate) fn new(index: usize, codec: Option<&str>, language: Option<&str>) -> SubtitleTrack {
        SubtitleTrack {
            index,
            codec: codec.unwrap_or_default().to_string(),
            language: language
                .filter(|l| !l.is_empty() && *l != "und")
                .map(str::to_string),
        }
    }

    /// Whether the track carries text (else pictures of text).
    pub fn is_text(&self) -> bool {
        TEXT_CODECS.contains(&self.codec.as_str())
    }
}

/// A subtitle track with its cues (recognised, for a bitmap track).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct EmbeddedSubtitles {
    pub track: SubtitleTrack,
    pub cues: Vec<Cue>,
}

/// Every text subtitle track of `path` (its tracks are in its `probe`)
/// with its cues, and with `ocr` options the bitmap tracks in languages no
/// text track has (a film often carries the same subtitles both ways). A
/// track that cannot be read is skipped with a warning: the video stays
/// searchable by the rest.
pub fn read_embedded_subtitles(
    path: &Path,
    probe: &Probe,
    ocr: Option<&OcrOptions>,
) -> Result<Vec<EmbeddedSubtitles>> {
    let tracks = &probe.subtitle_tracks;
    let mut found = Vec::new();
    for track in tracks {
        let cues = if track.is_text() {
            extract_track(path, track.index)
        } else if let Some(options) = ocr {
            if tracks
                .iter()
                .any(|t| t.is_text() && t.language == track.language)
            {
                tracing::info!(
                    codec = track.codec,
                    "bitmap subtitle track not read: a text track has its language"
                );
                continue;
            }
            read_bitmap_subtitles(path, probe, track.index, options)
        } else {
            tracing::info!(
                codec = track.codec,
                "bitmap subtitle track not read (OCR is off)"
            );
            continue;
        };
        match cues {
            Ok(cues) if !cues.is_empty() => found.push(EmbeddedSubtitles {
                track: track.clone(),
                cues,
            }),
            Ok(_) => {}
            Err(error) => {
                tracing::warn!(%error, track = track.index, "cannot read subtitle track")
            }
        }
    }
    Ok(found)
}

/// One text track as cues: ffmpeg writes it as SubRip to a pipe.
fn extract_track(path: &Path, index: usize) -> Result<Vec<Cue>> {
    let mut ffmpeg = Command::new("ffmpeg");
    ffmpeg
        .args(["-hide_banner", "-nostdin", "-nostats", "-loglevel", "error"])
        .args(LOCAL_PROTOCOLS_ONLY)
        .arg("-i")
        .arg(path)
        .args(["-map", &format!("0:s:{index}"), "-f", "srt", "pipe:1"]);
    let output = output_within(ffmpeg, "ffmpeg", EXTRACT_TIMEOUT)?;
    if !output.status.success() {
        return Err(MediaError::DecodeFailed {
            at: 0.0,
            detail: String::from_utf8_lossy(&output.stderr).trim().to_string(),
        });
    }
    let text = String::from_utf8_lossy(&output.stdout);
    if text.trim().is_empty() {
        return Ok(vec![]);
    }
    parse_subtitles(&text, Some(SubtitleFormat::Srt))
}
