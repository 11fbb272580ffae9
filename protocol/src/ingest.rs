//! Ingest: submitting a video, the durable job, and the per-video record that
//! tracks its progress.

use serde::{Deserialize, Serialize};

/// Public body of `vidseek.v1.ingest` and `POST /api/v1/videos`.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestRequest {
    /// Absolute server-side path inside one of the allowed media roots.
    pub path: String,
    /// Display name; defaults to the file name.
    #[serde(default)]
    pub name: Option<String>,
    /// Subtitle file (`.srt`/`.vtt`); defaults to one beside the video.
    #[serde(default)]
    pub subtitles: Option<String>,
    /// How much text to read from the picture; defaults to the ingest
    /// workers' configured mode (`VIDSEEK_OCR`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ocr: Option<OcrMode>,
}

/// Which text in the picture ingest reads (OCR) and makes searchable.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OcrMode {
    /// None: only subtitle files and text subtitle tracks are text.
    Off,
    /// Captions burned into the lower part of the picture, with their
    /// times, and subtitle tracks made of pictures (PGS, DVB, VobSub).
    Captions,
    /// Captions, and the text elsewhere in each shot's keyframe (slides,
    /// signs, titles).
    All,
}

impl OcrMode {
    /// The mode a configuration string names (`off`, `captions`, `all`).
    pub fn parse(text: &str) -> Option<OcrMode> {
        match text.trim().to_ascii_lowercase().as_str() {
            "off" | "none" => Some(OcrMode::Off),
            "captions" => Some(OcrMode::Captions),
            "all" => Some(OcrMode::All),
            _ => None,
        }
    }
}

#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VideoStatus {
    Queued,
    Processing,
    Ready,
    Failed,
}

#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestAccepted {
    pub video_id: String,
    pub status: VideoStatus,
}

/// Body of [`crate::subjects::INGEST_DELETE`].
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeleteVideo {
    pub video_id: String,
}

/// Reply to [`DeleteVideo`]; an unknown id is a `not_found` error instead.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoDeleted {
    pub video_id: String,
    pub segments_removed: u64,
}

/// A job on the JetStream work queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IngestJob {
    pub video_id: String,
    pub generation: String,
    pub path: String,
    pub name: String,
    #[serde(default)]
    pub subtitles: Option<String>,
    /// `None` in jobs queued before OCR existed: the worker's default.
    #[serde(default)]
    pub ocr: Option<OcrMode>,
}

/// What `GET /api/v1/videos/{id}` shows; stored in the videos bucket.
#[cfg_attr(feature = "utoipa", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoRecord {
    pub video_id: String,
    pub name: String,
    pub path: String,
    pub status: VideoStatus,
    /// 0..1 while processing.
    pub progress: f32,
    #[serde(default)]
    pub error: Option<String>,
    /// Seconds, once probed.
    #[serde(default)]
    pub duration: Option<f64>,
    pub segment_count: u32,
    pub generation: String,
    pub updated_at_ms: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::roundtrip::assert_roundtrip;

    #[test]
    fn messages_roundtrip() {
        assert_roundtrip(&IngestRequest {
            path: "/media/a.mp4".into(),
            name: None,
            subtitles: Some("/media/a.srt".into()),
            ocr: Some(OcrMode::All),
        });
        assert_roundtrip(&IngestAccepted {
            video_id: "v1".into(),
            status: VideoStatus::Queued,
        });
        assert_roundtrip(&DeleteVideo {
            video_id: "v1".into(),
        });
        assert_roundtrip(&VideoDeleted {
            video_id: "v1".into(),
            segments_removed: 3,
        });
        assert_roundtrip(&IngestJob {
            video_id: "v1".into(),
            generation: "g".into(),
            path: "/media/a.mp4".into(),
            name: "a.mp4".into(),
            subtitles: None,
            ocr: Some(OcrMode::Captions),
        });
        assert_roundtrip(&VideoRecord {
            video_id: "v1".into(),
            name: "a.mp4".into(),
            path: "/media/a.mp4".into(),
            status: VideoStatus::Failed,
            progress: 0.5,
            error: Some("no video stream".into()),
            duration: Some(10.0),
            segment_count: 0,
            generation: "g".into(),
            updated_at_ms: 1,
        });
    }

    #[test]
    fn minimal_public_request_parses() {
        let req: IngestRequest = serde_json::from_str(r#"{"path":"/x.mp4"}"#).unwrap();
        assert_eq!(req.path, "/x.mp4");
        assert_eq!(req.ocr, None);
        let req: IngestRequest =
            serde_json::from_str(r#"{"path":"/x.mp4","ocr":"captions"}"#).unwrap();
        assert_eq!(req.ocr, Some(OcrMode::Captions));
        assert!(serde_json::from_str::<IngestRequest>(r#"{"path":"/x","ocr":"some"}"#).is_err());
        assert_eq!(OcrMode::parse(" All "), Some(OcrMode::All));
        assert_eq!(OcrMode::parse("maybe"), None);
        assert_eq!(
            serde_json::to_string(&VideoStatus::Processing).unwrap(),
            "\"processing\""
        );
    }
}
