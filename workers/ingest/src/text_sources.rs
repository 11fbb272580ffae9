//! Where a video's text comes from, besides its pictures' embeddings:
//! subtitle files, subtitle tracks inside the container, and text read from
//! the picture (OCR). Everything here blocks (files, ffmpeg, tesseract) and
//! runs under `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;

use vidseek_media::{self as media, BandFrame, Cue, OcrOptions, Probe};
use vidseek_protocol::ingest::{IngestJob, OcrMode};
use vidseek_protocol::rank::SegmentKind;

use super::IngestConfig;

/// A timed text and the kind of segment it becomes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TextCue {
    pub kind: SegmentKind,
    pub cue: Cue,
}

/// The job's subtitle cues: the file the request named, else a sidecar file
/// beside the video, else every text subtitle track inside the container
/// (as its `probe` lists them) and, when the job reads text with `ocr`
/// options, the bitmap tracks in other languages. A file wins over tracks:
/// someone put it there for this video.
pub(crate) fn subtitle_cues(
    job: &IngestJob,
    probe: &Probe,
    ocr: Option<&OcrOptions>,
) -> media::Result<Vec<TextCue>> {
    let sidecar = match &job.subtitles {
        Some(path) => Some(PathBuf::from(path)),
        None => media::find_sidecar_subtitles(Path::new(&job.path))
            .into_iter()
            .next(),
    };
    let cues = match sidecar {
        Some(file) => media::read_subtitles(&file)?,
        None => media::read_embedded_subtitles(Path::new(&job.path), probe, ocr)?
            .into_iter()
            .flat_map(|track| {
                tracing::info!(
                    video_id = job.video_id,
                    codec = track.track.codec,
                    language = track.track.language,
                    cues = track.cues.len(),
                    "embedded subtitle track"
                );
                track.cues
            })
            .collect(),
    };
    Ok(tagged(SegmentKind::Subtitle, cues))
}

/// How a job reads text from the picture, or `None` when it does not:
/// OCR is off for it, or tesseract (or a configured language) is missing,
/// which is logged rather than failing the video.
pub(crate) fn ocr_plan(job: &IngestJob, config: &IngestConfig) -> Option<(OcrMode, OcrOptions)> {
    let mode = job.ocr.unwrap_or(config.ocr);
    if mode == OcrMode::Off {
        return None;
    }
    if !media::tesseract_available(&config.ocr_languages) {
        tracing::warn!(
            languages = config.ocr_languages,
            "OCR skipped: tesseract or its languages are not installed (deploy/setup.sh installs them)"
        );
        return None;
    }
    let options = OcrOptions {
        languages: config.ocr_languages.clone(),
        threads: config.ocr_threads.max(1),
        ..OcrOptions::default()
    };
    Some((mode, options))
}

/// Captions burned into the picture of `path`, read from its caption band's
/// samples. A failure is logged and reads as no captions: the video's
/// pictures and subtitles stay searchable.
pub(crate) fn caption_cues(
    path: &Path,
    band: Receiver<media::Result<BandFrame>>,
    options: &OcrOptions,
    progress: &mut dyn FnMut(f64),
) -> Vec<TextCue> {
    match media::read_captions(band, options, progress) {
        Ok(cues) => tagged(SegmentKind::Ocr, cues),
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "cannot read burned-in captions");
            vec![]
        }
    }
}

/// The on-screen text of each shot (`(start, end)` seconds), read from the
/// frame in its middle, as a cue spanning the shot.
pub(crate) fn screen_cues(
    path: &Path,
    probe: &Probe,
    shots: &[(f64, f64)],
    options: &OcrOptions,
) -> Vec<TextCue> {
    let middles: Vec<f64> = shots.iter().map(|(s, e)| (s + e) / 2.0).collect();
    match media::read_on_screen_text(path, probe, &middles, options) {
        Ok(texts) => shots
            .iter()
            .zip(texts)
            .filter_map(|(&(start, end), text)| {
                Some(TextCue {
                    kind: SegmentKind::Ocr,
                    cue: Cue {
                        start,
                        end,
                        text: text?,
                    },
                })
            })
            .collect(),
        Err(error) => {
            tracing::warn!(%error, path = %path.display(), "cannot read on-screen text");
            vec![]
        }
    }
}

fn tagged(kind: SegmentKind, cues: Vec<Cue>) -> Vec<TextCue> {
    cues.into_iter()
        .filter(|c| !c.text.trim().is_empty())
        .map(|cue| TextCue { kind, cue })
        .collect()
}
