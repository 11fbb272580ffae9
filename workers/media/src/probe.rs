//! `ffprobe` → [`Probe`]: the facts ingest needs before decoding, and the
//! first line of defence against files that are not videos.

use std::io::Read;
use std::path::Path;
use std::process::Command;

use serde::Deserialize;

use super::error::{MediaError, Result};
use super::ffmpeg::{LOCAL_PROTOCOLS_ONLY, PROBE_TIMEOUT, output_within};
use super::subtitle_tracks::SubtitleTrack;

/// What ingest needs to know about a video before decoding it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Probe {
    /// Length in seconds (the video stream's, else the container's).
    pub duration: f64,
    /// Frames per second: `avg_frame_rate`, else `r_frame_rate`.
    pub fps: f64,
    /// Width in pixels as displayed: after the rotation ffmpeg applies on
    /// decode and the sample aspect ratio, i.e. what decoded frames look like.
    pub width: u32,
    /// Height in pixels as displayed (see `width`).
    pub height: u32,
    /// The video codec's short name (`h264`, `vp9`, ...).
    pub codec: String,
    /// The container's short name list as ffprobe gives it (`mov,mp4,...`).
    pub container: String,
    /// Frame count: the container's when it records one, else
    /// `duration * fps` rounded.
    pub frame_count: u64,
    /// Whether the file also carries an audio stream.
    pub has_audio: bool,
    /// When the container's clock starts, in seconds (MPEG-TS often starts
    /// at 1.4). ffmpeg counts frame times from here, as every time in
    /// vidseek does; a reader that keeps the container's own times
    /// (`-copyts`) subtracts it.
    pub start_time: f64,
    /// The subtitle streams, in stream order: the one probe lists them, so
    /// a video without any costs no second ffprobe.
    pub subtitle_tracks: Vec<SubtitleTrack>,
}

/// Largest frame side ingest decodes: 8K UHD (7680x4320) fits, with room for
/// DCI 8K; a 8192x8192 RGB frame is 192 MiB.
pub const MAX_FRAME_SIDE: u32 = 8192;

/// Reads a video's duration, frame rate, size and codec with ffprobe.
///
/// Errors say which of the usual upload mistakes it is: an empty file
/// ([`MediaError::EmptyFile`]), something that is not media at all
/// ([`MediaError::NotMedia`]), a cut-off or damaged container
/// ([`MediaError::Corrupt`]), or a media file without pictures
/// ([`MediaError::NoVideoStream`]).
pub fn probe(path: &Path) -> Result<Probe> {
    let meta = std::fs::metadata(path).map_err(|source| MediaError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    if meta.is_dir() {
        return Err(MediaError::NotMedia {
            detail: "this is a directory".into(),
        });
    }
    if meta.len() == 0 {
        return Err(MediaError::EmptyFile);
    }
    let mut ffprobe = Command::new("ffprobe");
    ffprobe
        .args(LOCAL_PROTOCOLS_ONLY)
        .args([
            "-v",
            "error",
            "-print_format",
            "json",
            "-show_format",
            "-show_streams",
        ])
        .arg(path);
    let output = output_within(ffprobe, "ffprobe", PROBE_TIMEOUT)?;
    if !output.status.success() {
        let detail = ffprobe_complaint(&output.stderr, path);
        return Err(if looks_like_container(path) {
            MediaError::Corrupt { detail }
        } else {
            MediaError::NotMedia { detail }
        });
    }
    let mut parsed: FfprobeOutput = serde_json::from_slice(&output.stdout)
        .map_err(|e| MediaError::ProbeOutput(e.to_string()))?;
    if parsed.format.is_none() && parsed.streams.is_empty() {
        return Err(MediaError::NotMedia {
            detail: ffprobe_complaint(&output.stderr, path),
        });
    }
    let probe = interpret(&mut parsed)?;
    Ok(probe)
}

/// Builds a [`Probe`] from ffprobe's JSON; separate from [`probe`] so the
/// rules are unit-tested without files.
fn interpret(parsed: &mut FfprobeOutput) -> Result<Probe> {
    let format = parsed.format.take().unwrap_or_default();
    let container = format.format_name.clone().unwrap_or_default();
    let has_audio = parsed
        .streams
        .iter()
        .any(|s| s.codec_type.as_deref() == Some("audio"));
    let video = parsed
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && s.disposition.attached_pic == 0);
    let Some(video) = video else {
        let kinds: Vec<&str> = parsed
            .streams
            .iter()
            .map(|s| {
                if s.disposition.attached_pic != 0 {
                    "cover art"
                } else {
                    s.codec_type.as_deref().unwrap_or("unknown")
                }
            })
            .collect();
        let detail = if kinds.is_empty() {
            String::new()
        } else {
            format!("the file has only: {}", kinds.join(", "))
        };
        return Err(MediaError::NoVideoStream { detail });
    };
    // Image demuxers report a "video" stream with a made-up 25 fps.
    if container.ends_with("_pipe") || container == "image2" {
        return Err(MediaError::NoVideoStream {
            detail: format!("this is a still image ({container})"),
        });
    }
    let fps = parse_rate(video.avg_frame_rate.as_deref())
        .or_else(|| parse_rate(video.r_frame_rate.as_deref()))
        .ok_or(MediaError::MissingTiming { what: "frame rate" })?;
    let duration = parse_positive(video.duration.as_deref())
        .or_else(|| parse_positive(format.duration.as_deref()))
        .ok_or(MediaError::MissingTiming { what: "duration" })?;
    let (mut width, mut height) = (video.width.unwrap_or(0), video.height.unwrap_or(0));
    if width == 0 || height == 0 {
        return Err(MediaError::Corrupt {
            detail: "the video stream has no picture size".into(),
        });
    }
    if let Some((num, den)) = video
        .sample_aspect_ratio
        .as_deref()
        .and_then(parse_ratio)
        .filter(|&(n, d)| n > 0 && d > 0 && n != d)
    {
        // ffmpeg's decoders output square pixels only after a scale we ask
        // for; reporting the displayed width makes aspect maths right.
        width = ((f64::from(width) * num as f64 / den as f64).round() as u32).max(1);
    }
    if video.rotation().rem_euclid(180) == 90 {
        std::mem::swap(&mut width, &mut height);
    }
    // Refused before any frame is decoded: ffmpeg allocates frames of the
    // declared size, and so do the frame and thumbnail buffers after it.
    if width.max(height) > MAX_FRAME_SIDE {
        return Err(MediaError::FrameTooLarge {
            width,
            height,
            max: MAX_FRAME_SIDE,
        });
    }
    let frame_count = video
        .nb_frames
        .as_deref()
        .and_then(|n| n.parse::<u64>().ok())
        .filter(|&n| n > 0)
        .unwrap_or_else(|| (duration * fps).round().max(1.0) as u64);
    Ok(Probe {
        duration,
        fps,
        width,
        height,
        codec: video.codec_name.clone().unwrap_or_else(|| "unknown".into()),
        container,
        frame_count,
        has_audio,
        start_time: format
            .start_time
            .as_deref()
            .and_then(|t| t.parse::<f64>().ok())
            .filter(|t| t.is_finite())
            .unwrap_or(0.0),
        subtitle_tracks: parsed
            .streams
            .iter()
            .filter(|s| s.codec_type.as_deref() == Some("subtitle"))
            .enumerate()
            .map(|(index, s)| {
                SubtitleTrack::new(
                    index,
                    s.codec_name.as_deref(),
                    s.tags.get("language").map(String::as_str),
                )
            })
            .collect(),
    })
}

/// ffprobe's error text without the file name it repeats.
fn ffprobe_complaint(stderr: &[u8], path: &Path) -> String {
    let text = String::from_utf8_lossy(stderr);
    let shown = path.display().to_string();
    let lines: Vec<String> = text
        .lines()
        .map(|l| l.trim())
        .filter(|l| !l.is_empty())
        .map(|l| {
            let l = l
                .strip_prefix(&shown)
                .map_or(l, |r| r.trim_start_matches(':').trim());
            // "[mov,mp4,... @ 0x55..] moov atom not found" → drop the address.
            match (l.starts_with('['), l.find("] ")) {
                (true, Some(end)) => l[end + 2..].to_string(),
                _ => l.to_string(),
            }
        })
        .collect();
    if lines.is_empty() {
        "unrecognised data".into()
    } else {
        lines.join("; ")
    }
}

/// Whether the file begins with the signature of a video container, which
/// makes an unreadable file "damaged" rather than "not a video".
fn looks_like_container(path: &Path) -> bool {
    let mut head = [0u8; 189];
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut filled = 0;
    while filled < head.len() {
        match file.read(&mut head[filled..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => filled += n,
        }
    }
    container_signature(&head[..filled])
}

fn container_signature(head: &[u8]) -> bool {
    let at = |offset: usize, magic: &[u8]| head.get(offset..offset + magic.len()) == Some(magic);
    at(4, b"ftyp") // MP4, MOV, 3GP
        || at(4, b"moov")
        || at(4, b"mdat")
        || at(4, b"free")
        || at(4, b"wide")
        || at(0, &[0x1A, 0x45, 0xDF, 0xA3]) // Matroska, WebM
        || (at(0, b"RIFF") && at(8, b"AVI "))
        || at(0, b"OggS")
        || at(0, b"FLV")
        || at(0, &[0x00, 0x00, 0x01, 0xBA]) // MPEG-PS
        || at(0, &[0x30, 0x26, 0xB2, 0x75]) // ASF, WMV
        || (at(0, &[0x47]) && at(188, &[0x47])) // MPEG-TS: sync byte every 188
}

fn parse_ratio(s: &str) -> Option<(u64, u64)> {
    let (n, d) = s.split_once([':', '/'])?;
    Some((n.trim().parse().ok()?, d.trim().parse().ok()?))
}

fn parse_rate(s: Option<&str>) -> Option<f64> {
    let (n, d) = parse_ratio(s?)?;
    // Rates above 1000 fps are container time bases, not frame rates.
    (n > 0 && d > 0)
        .then(|| n as f64 / d as f64)
        .filter(|&r| r <= 1000.0)
}

fn parse_positive(s: Option<&str>) -> Option<f64> {
    s?.parse::<f64>().ok().filter(|d| d.is_finite() && *d > 0.0)
}

#[derive(Debug, Deserialize, Default)]
struct FfprobeOutput {
    #[serde(default)]
    streams: Vec<FfprobeStream>,
    format: Option<FfprobeFormat>,
}

#[derive(Debug, Deserialize, Default)]
struct FfprobeFormat {
    format_name: Option<String>,
    duration: Option<String>,
    start_time: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
struct FfprobeStream {
    codec_type: Option<String>,
    codec_name: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    avg_frame_rate: Option<String>,
    r_frame_rate: Option<String>,
    duration: Option<String>,
    nb_frames: Option<String>,
    sample_aspect_ratio: Option<String>,
    #[serde(default)]
    disposition: Disposition,
    #[serde(default)]
    tags: std::collections::HashMap<String, String>,
    #[serde(default)]
    side_data_list: Vec<SideData>,
}

impl FfprobeStream {
    /// Rotation in degrees from the display matrix (newer files) or the
    /// legacy `rotate` tag.
    fn rotation(&self) -> i64 {
        self.side_data_list
            .iter()
            .find_map(|d| d.rotation)
            .map(|r| r.round() as i64)
            .or_else(|| self.tags.get("rotate").and_then(|r| r.parse().ok()))
            .unwrap_or(0)
    }
}

#[derive(Debug, Deserialize, Default)]
struct Disposition {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Debug, Deserialize, Default)]
struct SideData {
    rotation: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(json: &str) -> Result<Probe> {
        let mut parsed: FfprobeOutput = serde_json::from_str(json).unwrap();
        interpret(&mut parsed)
    }

    #[test]
    fn reads_a_plain_video() {
        let p = parse(
            r#"{"streams":[{"codec_type":"video","codec_name":"h264","width":640,"height":272,
                "avg_frame_rate":"25/1","r_frame_rate":"25/1","duration":"10.000000","nb_frames":"250",
                "sample_aspect_ratio":"1:1"},{"codec_type":"audio"}],
                "format":{"format_name":"mov,mp4","duration":"10.02"}}"#,
        )
        .unwrap();
        assert_eq!((p.width, p.height, p.frame_count), (640, 272, 250));
        assert!((p.fps - 25.0).abs() < 1e-9 && (p.duration - 10.0).abs() < 1e-9);
        assert!(p.has_audio);
        assert_eq!(p.codec, "h264");
        assert!(p.subtitle_tracks.is_empty());
    }

    #[test]
    fn lists_subtitle_streams_in_order_with_their_languages() {
        let p = parse(
            r#"{"streams":[{"codec_type":"video","codec_name":"h264","width":640,"height":272,
                "avg_frame_rate":"25/1","duration":"10.0"},
                {"codec_type":"subtitle","codec_name":"mov_text","tags":{"language":"chi"}},
                {"codec_type":"audio","codec_name":"aac","tags":{"language":"eng"}},
                {"codec_type":"subtitle","codec_name":"hdmv_pgs_subtitle","tags":{"language":"eng"}},
                {"codec_type":"subtitle","codec_name":"subrip","tags":{"language":"und"}},
                {"codec_type":"subtitle","codec_name":"ass"}],
                "format":{"format_name":"matroska,webm"}}"#,
        )
        .unwrap();
        let summary: Vec<(usize, &str, Option<&str>, bool)> = p
            .subtitle_tracks
            .iter()
            .map(|t| {
                (
                    t.index,
                    t.codec.as_str(),
                    t.language.as_deref(),
                    t.is_text(),
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                (0, "mov_text", Some("chi"), true),
                (1, "hdmv_pgs_subtitle", Some("eng"), false),
                (2, "subrip", None, true),
                (3, "ass", None, true),
            ]
        );
    }

    #[test]
    fn oversized_frames_are_refused_before_decoding() {
        let declared = |w: u32, h: u32| {
            parse(&format!(
                r#"{{"streams":[{{"codec_type":"video","codec_name":"h264","width":{w},"height":{h},
                    "avg_frame_rate":"25/1","duration":"1.0"}}],"format":{{"format_name":"mov,mp4"}}}}"#
            ))
        };
        assert!(
            declared(7680, 4320).is_ok(),
            "8K UHD is a video people have"
        );
        match declared(60000, 60000) {
            Err(MediaError::FrameTooLarge { width, height, max }) => {
                assert_eq!((width, height, max), (60000, 60000, MAX_FRAME_SIDE));
            }
            other => panic!("expected FrameTooLarge, got {other:?}"),
        }
        assert!(matches!(
            declared(16, 9000),
            Err(MediaError::FrameTooLarge { .. })
        ));
    }

    #[test]
    fn falls_back_for_rate_and_duration_and_rotates() {
        let p = parse(
            r#"{"streams":[{"codec_type":"video","codec_name":"vp9","width":1920,"height":1080,
                "avg_frame_rate":"0/0","r_frame_rate":"30000/1001",
                "side_data_list":[{"rotation":-90}]}],
                "format":{"format_name":"matroska,webm","duration":"3.5"}}"#,
        )
        .unwrap();
        assert!((p.fps - 29.97).abs() < 0.01);
        assert!((p.duration - 3.5).abs() < 1e-9);
        assert_eq!((p.width, p.height), (1080, 1920));
        assert_eq!(p.frame_count, 105);
    }

    #[test]
    fn rejects_audio_cover_art_and_stills() {
        let audio = parse(
            r#"{"streams":[{"codec_type":"audio"},{"codec_type":"video","width":500,"height":500,
                "avg_frame_rate":"0/0","r_frame_rate":"90000/1","disposition":{"attached_pic":1}}],
                "format":{"format_name":"mp3","duration":"200"}}"#,
        );
        let msg = audio.unwrap_err().to_string();
        assert!(msg.starts_with("no video stream"), "{msg}");
        assert!(msg.contains("audio, cover art"), "{msg}");
        let still = parse(
            r#"{"streams":[{"codec_type":"video","codec_name":"png","width":5,"height":5,
                "avg_frame_rate":"25/1","r_frame_rate":"25/1"}],"format":{"format_name":"png_pipe"}}"#,
        );
        assert!(matches!(still, Err(MediaError::NoVideoStream { .. })));
    }

    #[test]
    fn missing_duration_is_an_error() {
        let r = parse(
            r#"{"streams":[{"codec_type":"video","width":5,"height":5,"avg_frame_rate":"25/1"}],
                "format":{"format_name":"h264"}}"#,
        );
        assert!(matches!(
            r,
            Err(MediaError::MissingTiming { what: "duration" })
        ));
    }

    #[test]
    fn recognises_container_signatures() {
        assert!(container_signature(b"\0\0\0\x20ftypisom\0\0"));
        assert!(container_signature(&[0x1A, 0x45, 0xDF, 0xA3, 1, 2]));
        assert!(!container_signature(b"hello world\n"));
        assert!(!container_signature(b""));
    }

    #[test]
    fn cleans_ffprobe_complaints() {
        let p = Path::new("/tmp/x.mp4");
        let err = b"[mov,mp4,m4a @ 0x55df51e721c0] moov atom not found\n/tmp/x.mp4: Invalid data found when processing input\n";
        assert_eq!(
            ffprobe_complaint(err, p),
            "moov atom not found; Invalid data found when processing input"
        );
    }
}
