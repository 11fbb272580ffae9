//! One ingest job, from file to durable segments.

use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use async_nats::jetstream::{self, AckKind};
use futures::StreamExt;
use image::RgbImage;
use tokio::io::AsyncWriteExt;
use vidseek_bus::catalog::Catalog;
use vidseek_bus::media_store::{Bucket, MediaStore, thumb_name, upload_name};
use vidseek_bus::metrics;
use vidseek_bus::rpc;
use vidseek_protocol::codec::{self, Format};
use vidseek_protocol::encode::{
    EncodeImageRequest, EncodeImageResponse, EncodeTextRequest, EncodeTextResponse,
};
use vidseek_protocol::error::{ErrorBody, ErrorCode};
use vidseek_protocol::ingest::{IngestJob, VideoRecord, VideoStatus};
use vidseek_protocol::rank::{SegmentKind, SegmentMeta, SegmentRecord, segment_id};
use vidseek_protocol::sharding::shard_of;
use vidseek_protocol::subjects;

use super::text_sources::{self, TextCue};
use super::{IngestConfig, Library, now_ms};
use vidseek_media::{self as media, AnalyzeOptions, AnalyzedSegment};
use vidseek_protocol::encode::l2_normalise;
use vidseek_protocol::ingest::OcrMode;

/// Segments whose frames are being encoded at once: enough for the encoder
/// to batch them, few enough to bound memory.
const SEGMENTS_IN_FLIGHT: usize = 4;
/// Subtitle cues per text-encoder request.
const CUES_PER_REQUEST: usize = 32;
/// Quality of the JPEG frames sent to the encoder.
const FRAME_JPEG_QUALITY: u8 = 90;

/// How long a job whose catalog record could not be read waits before it
/// is delivered again.
const CATALOG_RETRY: Duration = Duration::from_secs(5);

/// A job against its video's catalog record.
#[derive(Debug, PartialEq)]
enum Standing {
    /// The record expects this job's generation.
    Current,
    /// The video was deleted or re-ingested since, or this job already
    /// finished (a redelivery after an ack the server never confirmed):
    /// nothing to do.
    Superseded,
    /// The record could not be read: try the job again later.
    Unknown(String),
}

impl Standing {
    fn of<E: std::fmt::Display>(read: Result<Option<VideoRecord>, E>, job: &IngestJob) -> Standing {
        match read {
            Ok(Some(record)) if expects(&record, job) => Standing::Current,
            Ok(_) => Standing::Superseded,
            Err(err) => Standing::Unknown(err.to_string()),
        }
    }
}

/// Whether `record` still expects `job`: the same generation, and no
/// outcome (`ready`, `failed`) written for it yet, which is final.
fn expects(record: &VideoRecord, job: &IngestJob) -> bool {
    record.generation == job.generation
        && !matches!(record.status, VideoStatus::Ready | VideoStatus::Failed)
}

/// How long an ingest keeps asking an overloaded encoder before the job is
/// handed back: queries come first, and ingest can wait.
const ENCODER_BUSY_WAIT: Duration = Duration::from_secs(120);

/// Calls `call` until it is not refused as `overloaded`, waiting longer each
/// time (0.25 s doubling to 5 s) for at most `budget`, so a busy encoder
/// slows an ingest down instead of restarting its video from the start.
async fn patiently<T, Fut>(budget: Duration, mut call: impl FnMut() -> Fut) -> Result<T, ErrorBody>
where
    Fut: std::future::Future<Output = Result<T, ErrorBody>>,
{
    let mut waited = Duration::ZERO;
    let mut pause = Duration::from_millis(250);
    loop {
        match call().await {
            Err(error) if error.error.code == ErrorCode::Overloaded && waited < budget => {
                tokio::time::sleep(pause).await;
                waited += pause;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            other => return other,
        }
    }
}

/// When a job last made progress.
struct StallWatch {
    limit: Duration,
    last_value: Option<u32>,
    last_change: std::time::Instant,
}

impl StallWatch {
    fn new(limit: Duration) -> StallWatch {
        StallWatch {
            limit,
            last_value: None,
            last_change: std::time::Instant::now(),
        }
    }

    /// Records the progress seen at `now`; true when it changed.
    fn moved(&mut self, value: u32, now: std::time::Instant) -> bool {
        if self.last_value == Some(value) {
            return false;
        }
        self.last_value = Some(value);
        self.last_change = now;
        true
    }

    fn stalled(&self, now: std::time::Instant) -> bool {
        now.duration_since(self.last_change) > self.limit
    }
}

/// Why a job did not finish.
enum JobFailure {
    /// The input itself is bad: retrying cannot help.
    Permanent(String),
    /// Something else was (an encoder, NATS): retry later.
    Transient(String),
}

impl From<media::MediaError> for JobFailure {
    fn from(error: media::MediaError) -> Self {
        JobFailure::Permanent(error.to_string())
    }
}

impl From<ErrorBody> for JobFailure {
    fn from(body: ErrorBody) -> Self {
        match body.error.code {
            ErrorCode::UnsupportedMedia | ErrorCode::BadRequest | ErrorCode::TooLarge => {
                JobFailure::Permanent(body.error.message)
            }
            _ => JobFailure::Transient(body.error.message),
        }
    }
}

pub struct Worker {
    nats: async_nats::Client,
    js: jetstream::Context,
    catalog: Catalog,
    media: Option<MediaStore>,
    config: IngestConfig,
}

/// A job's files on this machine: the job with its inputs' local paths and
/// the directory its thumbnails are written to. With media in NATS, both are
/// in a temporary directory, removed when the job ends.
struct Workspace {
    job: IngestJob,
    thumbs: PathBuf,
    _temporary: Option<tempfile::TempDir>,
}

impl Worker {
    pub(crate) fn new(nats: async_nats::Client, library: Library, config: IngestConfig) -> Self {
        Worker {
            nats,
            js: library.js,
            catalog: library.catalog,
            media: library.media,
            config,
        }
    }

    /// Where `job` runs: in place with media in files; with media in NATS,
    /// in a temporary directory its uploaded inputs are downloaded to.
    async fn workspace(&self, job: &IngestJob) -> Result<Workspace, JobFailure> {
        let Some(media) = &self.media else {
            return Ok(Workspace {
                job: job.clone(),
                thumbs: self.config.thumbs_dir(&job.video_id),
                _temporary: None,
            });
        };
        let temporary = tempfile::Builder::new()
            .prefix("vidseek-ingest-")
            .tempdir()
            .map_err(|e| JobFailure::Transient(format!("cannot make a work directory: {e}")))?;
        let mut local = job.clone();
        local.path = download(media, &job.path, temporary.path()).await?;
        if let Some(subtitles) = &job.subtitles {
            local.subtitles = Some(download(media, subtitles, temporary.path()).await?);
        }
        Ok(Workspace {
            job: local,
            thumbs: temporary.path().join("thumbs"),
            _temporary: Some(temporary),
        })
    }

    /// Puts the thumbnails of `records` into the NATS media store, if used.
    async fn store_thumbnails(
        &self,
        job: &IngestJob,
        thumbnail: &(dyn Fn(u32) -> PathBuf + Sync),
        records: &[SegmentRecord],
    ) -> Result<(), JobFailure> {
        let Some(media) = &self.media else {
            return Ok(());
        };
        for record in records {
            let index = record.meta.index;
            // A text segment whose shot thumbnail could not be copied has none.
            let Ok(mut file) = tokio::fs::File::open(thumbnail(index)).await else {
                continue;
            };
            media
                .put(Bucket::Thumbs, &thumb_name(&job.video_id, index), &mut file)
                .await
                .map_err(|e| JobFailure::Transient(e.to_string()))?;
        }
        Ok(())
    }

    /// Processes one work-queue message and acks, naks or terminates it.
    pub async fn process(&self, message: &jetstream::Message) {
        let job: IngestJob = match codec::decode(Format::MsgPack, &message.payload) {
            Ok(job) => job,
            Err(err) => {
                tracing::error!(error = %err, "dropping undecodable ingest job");
                let _ = message.ack_with(AckKind::Term).await;
                return;
            }
        };
        let deliveries = message.info().map_or(1, |info| info.delivered);
        match self.standing(&job).await {
            Standing::Current => {}
            Standing::Superseded => {
                tracing::info!(
                    video_id = job.video_id,
                    "skipping a superseded, deleted or already finished job"
                );
                acknowledge(message, &job.video_id).await;
                return;
            }
            Standing::Unknown(reason) => {
                // Not knowing is not "superseded": acking here would lose the job.
                tracing::warn!(
                    video_id = job.video_id,
                    reason,
                    "catalog unreadable; job handed back"
                );
                let _ = message.ack_with(AckKind::Nak(Some(CATALOG_RETRY))).await;
                return;
            }
        }
        tracing::info!(
            video_id = job.video_id,
            path = job.path,
            deliveries,
            "ingesting"
        );
        let progress = Arc::new(AtomicU32::new(0));
        let heartbeat = self.heartbeat(message, &job, progress.clone());
        let outcome = tokio::select! {
            outcome = self.run(&job, progress) => outcome,
            stalled = heartbeat => Err(JobFailure::Transient(stalled)),
        };
        match outcome {
            Ok(count) => {
                tracing::info!(video_id = job.video_id, segments = count, "video ready");
                metrics::add(metrics::INGEST_VIDEOS, &[("outcome", "done")], 1.0);
                acknowledge(message, &job.video_id).await;
            }
            Err(JobFailure::Transient(reason)) if deliveries < self.config.max_deliver => {
                tracing::warn!(video_id = job.video_id, reason, "ingest will be retried");
                self.update(&job, |r| r.error = Some(format!("retrying: {reason}")))
                    .await;
                let _ = message
                    .ack_with(AckKind::Nak(Some(Duration::from_secs(2))))
                    .await;
            }
            Err(JobFailure::Transient(reason) | JobFailure::Permanent(reason)) => {
                tracing::warn!(video_id = job.video_id, reason, "ingest failed");
                metrics::add(metrics::INGEST_VIDEOS, &[("outcome", "failed")], 1.0);
                self.update(&job, |r| {
                    r.status = VideoStatus::Failed;
                    r.error = Some(reason.clone());
                })
                .await;
                acknowledge(message, &job.video_id).await;
            }
        }
    }

    /// Whether the catalog still expects this job's generation. A failed
    /// read is tried again a few times before the answer is "unknown".
    async fn standing(&self, job: &IngestJob) -> Standing {
        let mut pause = Duration::from_millis(250);
        loop {
            let standing = Standing::of(self.catalog.get(&job.video_id).await, job);
            if !matches!(standing, Standing::Unknown(_)) || pause > Duration::from_secs(2) {
                return standing;
            }
            tokio::time::sleep(pause).await;
            pause *= 2;
        }
    }

    /// Updates the job's catalog record while it still [`expects`] the job.
    /// The record is changed where it stands ([`Catalog::update`]), as the
    /// heartbeat's progress and the job's outcome are written concurrently.
    async fn update(&self, job: &IngestJob, change: impl Fn(&mut VideoRecord)) {
        let updated = self
            .catalog
            .update(&job.video_id, |record| {
                if !expects(record, job) {
                    return false;
                }
                change(record);
                record.updated_at_ms = now_ms();
                true
            })
            .await;
        if let Err(err) = updated {
            tracing::warn!(error = %err, "cannot update video record");
        }
    }

    /// Publishes progress and tells JetStream the job is alive, so a long job
    /// is not redelivered while a dead worker's job is after `ack_wait`.
    /// Only a job that progresses is kept alive: after `stall_timeout`
    /// without progress it returns why, and the job is abandoned.
    async fn heartbeat(
        &self,
        message: &jetstream::Message,
        job: &IngestJob,
        progress: Arc<AtomicU32>,
    ) -> String {
        let period = (self.config.ack_wait / 3).max(Duration::from_millis(200));
        let mut watch = StallWatch::new(self.config.stall_timeout);
        loop {
            let now = progress.load(Ordering::Relaxed);
            if watch.moved(now, std::time::Instant::now()) {
                self.update(job, |r| {
                    r.status = VideoStatus::Processing;
                    r.progress = f32::from_bits(now);
                })
                .await;
            } else if watch.stalled(std::time::Instant::now()) {
                return format!(
                    "no progress for {} s (at {:.0} %)",
                    self.config.stall_timeout.as_secs(),
                    f32::from_bits(now) * 100.0
                );
            }
            let _ = message.ack_with(AckKind::Progress).await;
            tokio::time::sleep(period.min(Duration::from_secs(1))).await;
        }
    }

    /// Analyses, encodes and stores; returns the number of segments.
    async fn run(&self, job: &IngestJob, progress: Arc<AtomicU32>) -> Result<u32, JobFailure> {
        let workspace = self.workspace(job).await?;
        let job = &workspace.job;
        // Thumbnails are named by segment index: `thumbnail(index)`.
        let thumbs = workspace.thumbs.clone();
        let thumbnail = move |index: u32| thumbs.join(format!("{index}.jpg"));
        let (segments_tx, segments_rx) = tokio::sync::mpsc::channel(SEGMENTS_IN_FLIGHT);
        let path = PathBuf::from(&job.path);
        let analysis_thumbnail = thumbnail.clone();
        let ocr = text_sources::ocr_plan(job, &self.config);
        let parts = Arc::new(PartsProgress::new(progress.clone(), ocr.is_some()));
        let analysis_progress = parts.clone();
        // Burned-in captions are read beside the analysis, from the caption
        // band its one decode samples as well.
        let (caption_tap, captions) = match ocr.clone() {
            Some((_, options)) => {
                let (tap, band) = media::caption_band(&options);
                let (path, parts) = (PathBuf::from(&job.path), parts.clone());
                let reading = tokio::task::spawn_blocking(move || {
                    text_sources::caption_cues(&path, band, &options, &mut |p| parts.set(1, p))
                });
                (Some(tap), Some(reading))
            }
            None => (None, None),
        };
        // The media side is blocking (ffmpeg pipes, image work); it runs on
        // its own thread and hands segments over a bounded channel, so the
        // decoder waits for the encoder rather than filling memory.
        // A thumbnail that cannot be written (a full disk) stops it; the
        // cause is kept for the video's record.
        let thumbnail_failure = Arc::new(std::sync::Mutex::new(None::<String>));
        let analysis_thumbnail_failure = thumbnail_failure.clone();
        let analysis = tokio::task::spawn_blocking(move || {
            media::analyze(
                &path,
                &AnalyzeOptions::default(),
                caption_tap,
                &mut |p| analysis_progress.set(0, f64::from(p)),
                &mut |segment| match prepare_segment(segment, &analysis_thumbnail) {
                    Ok(prepared) => match segments_tx.blocking_send(prepared) {
                        Ok(()) => ControlFlow::Continue(()),
                        Err(_) => ControlFlow::Break(()),
                    },
                    Err(err) => {
                        tracing::warn!(error = %err, "cannot write thumbnail");
                        // The reason only: the record must not show server paths.
                        let reason = match &err {
                            media::MediaError::Thumbnail { message, .. } => message.clone(),
                            other => other.to_string(),
                        };
                        *analysis_thumbnail_failure
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) = Some(reason);
                        ControlFlow::Break(())
                    }
                },
            )
        });
        let encoded: Vec<Result<SegmentRecord, JobFailure>> = tokio_stream_from(segments_rx)
            .map(|prepared| self.encode_frames(job, prepared))
            .buffered(SEGMENTS_IN_FLIGHT)
            .collect()
            .await;
        let analysis = analysis
            .await
            .map_err(|e| JobFailure::Transient(format!("media analysis panicked: {e}")))??;
        let mut records = encoded.into_iter().collect::<Result<Vec<_>, _>>()?;
        if records.len() != analysis.segments.len() {
            let cause = thumbnail_failure
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take()
                .map_or_else(String::new, |err| {
                    format!(": cannot write a thumbnail: {err}")
                });
            return Err(JobFailure::Transient(format!(
                "only {} of {} segments were processed{cause}",
                records.len(),
                analysis.segments.len()
            )));
        }
        let subtitles_job = job.clone();
        let subtitles_probe = analysis.probe.clone();
        let subtitles_ocr = ocr.as_ref().map(|(_, options)| options.clone());
        let mut texts = tokio::task::spawn_blocking(move || {
            text_sources::subtitle_cues(&subtitles_job, &subtitles_probe, subtitles_ocr.as_ref())
        })
        .await
        .map_err(|e| JobFailure::Transient(format!("reading subtitles panicked: {e}")))??;
        if let Some(captions) = captions {
            texts.extend(
                captions.await.map_err(|e| {
                    JobFailure::Transient(format!("reading captions panicked: {e}"))
                })?,
            );
        }
        if let Some((OcrMode::All, options)) = ocr {
            let shots: Vec<(f64, f64)> =
                records.iter().map(|r| (r.meta.start, r.meta.end)).collect();
            let (path, probe) = (PathBuf::from(&job.path), analysis.probe.clone());
            texts.extend(
                tokio::task::spawn_blocking(move || {
                    text_sources::screen_cues(&path, &probe, &shots, &options)
                })
                .await
                .map_err(|e| {
                    JobFailure::Transient(format!("reading on-screen text panicked: {e}"))
                })?,
            );
        }
        records.extend(self.text_segments(job, &records, &thumbnail, texts).await?);

        match self.standing(job).await {
            Standing::Current => {}
            Standing::Superseded => {
                return Err(JobFailure::Permanent(
                    "superseded by a newer ingest of the same video".into(),
                ));
            }
            Standing::Unknown(reason) => {
                return Err(JobFailure::Transient(format!(
                    "cannot read the catalog: {reason}"
                )));
            }
        }
        // After the check, so a video deleted meanwhile gets no thumbnails
        // back; before the segments, so a search that finds them finds
        // their pictures.
        self.store_thumbnails(job, &thumbnail, &records).await?;
        let count = records.len() as u32;
        let shard = shard_of(&job.video_id, self.config.shards);
        vidseek_bus::segment_log::replace_video(
            &self.js,
            shard,
            &job.video_id,
            &job.generation,
            records,
        )
        .await
        .map_err(|e| JobFailure::Transient(e.to_string()))?;
        let duration = analysis.probe.duration;
        metrics::add(metrics::INGEST_SEGMENTS, &[], f64::from(count));
        metrics::add(metrics::INGEST_VIDEO_SECONDS, &[], duration);
        self.update(job, |r| {
            r.status = VideoStatus::Ready;
            r.progress = 1.0;
            r.error = None;
            r.duration = Some(duration);
            r.segment_count = count;
        })
        .await;
        Ok(count)
    }

    /// Encodes a segment's frames and pools them into one vector per space.
    async fn encode_frames(
        &self,
        job: &IngestJob,
        prepared: PreparedSegment,
    ) -> Result<SegmentRecord, JobFailure> {
        let request = EncodeImageRequest {
            images: prepared.jpegs,
        };
        let response: EncodeImageResponse = patiently(ENCODER_BUSY_WAIT, || {
            rpc::request_with_retry(
                &self.nats,
                subjects::ENCODE_IMAGE,
                &request,
                self.config.encode_timeout,
                None,
            )
        })
        .await?;
        let text_space = mean_pool(response.vectors.iter().map(|v| v.text_space.as_slice()));
        let image_space = mean_pool(response.vectors.iter().map(|v| v.image_space.as_slice()));
        let meta = SegmentMeta {
            segment_id: segment_id(&job.video_id, prepared.index),
            video_id: job.video_id.clone(),
            video_name: job.name.clone(),
            index: prepared.index,
            start: prepared.start,
            end: prepared.end,
            kind: SegmentKind::Shot,
            text: None,
        };
        Ok(SegmentRecord {
            meta,
            text_vector: text_space,
            image_vector: Some(image_space),
            terms: vec![],
        })
    }

    /// Subtitle cues and text read from the picture as text segments,
    /// numbered after the shots; each shows the thumbnail of the shot it
    /// falls in.
    async fn text_segments(
        &self,
        job: &IngestJob,
        shots: &[SegmentRecord],
        thumbnail: &(dyn Fn(u32) -> PathBuf + Sync),
        cues: Vec<TextCue>,
    ) -> Result<Vec<SegmentRecord>, JobFailure> {
        let mut records = Vec::with_capacity(cues.len());
        let first_index = shots.len() as u32;
        for chunk in cues.chunks(CUES_PER_REQUEST) {
            let request = EncodeTextRequest {
                texts: chunk.iter().map(|c| c.cue.text.clone()).collect(),
            };
            let response: EncodeTextResponse = patiently(ENCODER_BUSY_WAIT, || {
                rpc::request_with_retry(
                    &self.nats,
                    subjects::ENCODE_TEXT,
                    &request,
                    self.config.encode_timeout,
                    None,
                )
            })
            .await?;
            for (TextCue { kind, cue }, vector) in chunk.iter().zip(response.vectors) {
                let index = first_index + records.len() as u32;
                let middle = (cue.start + cue.end) / 2.0;
                if let Some(shot) = shots
                    .iter()
                    .find(|s| s.meta.start <= middle && middle < s.meta.end)
                    .or(shots.last())
                {
                    let _ = std::fs::copy(thumbnail(shot.meta.index), thumbnail(index));
                }
                records.push(SegmentRecord {
                    meta: SegmentMeta {
                        segment_id: segment_id(&job.video_id, index),
                        video_id: job.video_id.clone(),
                        video_name: job.name.clone(),
                        index,
                        start: cue.start,
                        end: cue.end,
                        kind: *kind,
                        text: Some(cue.text.clone()),
                    },
                    text_vector: vector,
                    image_vector: None,
                    terms: vidseek_text::terms::terms(&cue.text),
                });
            }
        }
        Ok(records)
    }
}

/// A job's progress when two parts run side by side (the analysis and the
/// caption OCR): 95 % of the slower part's share, so the number only
/// climbs and moves while either part still works. The last 5 % are the
/// text segments and the segment log.
struct PartsProgress {
    total: Arc<AtomicU32>,
    parts: [AtomicU32; 2],
}

impl PartsProgress {
    /// With `both` false only part 0 runs; part 1 counts as done.
    fn new(total: Arc<AtomicU32>, both: bool) -> PartsProgress {
        let second = if both { 0.0f32 } else { 1.0 };
        PartsProgress {
            total,
            parts: [
                AtomicU32::new(0.0f32.to_bits()),
                AtomicU32::new(second.to_bits()),
            ],
        }
    }

    fn set(&self, part: usize, share: f64) {
        self.parts[part].store((share as f32).to_bits(), Ordering::Relaxed);
        let [a, b] = self
            .parts
            .each_ref()
            .map(|p| f32::from_bits(p.load(Ordering::Relaxed)));
        self.total
            .store((a.min(b) * 0.95).to_bits(), Ordering::Relaxed);
    }
}

/// A segment ready for the encoder: its frames as JPEG.
struct PreparedSegment {
    index: u32,
    start: f64,
    end: f64,
    jpegs: Vec<serde_bytes::ByteBuf>,
}

/// Writes the segment's thumbnail and JPEG-encodes its frames (on the
/// blocking thread, where CPU work belongs).
fn prepare_segment(
    segment: AnalyzedSegment,
    thumbnail: &(dyn Fn(u32) -> PathBuf + Sync),
) -> Result<PreparedSegment, media::MediaError> {
    let index = segment.frames.index as u32;
    if let Some(cover) = segment.frames.frames.get(segment.thumbnail) {
        media::write_thumbnail(cover, &thumbnail(index))?;
    }
    let jpegs = segment
        .frames
        .frames
        .iter()
        .filter_map(|frame| jpeg(frame).ok())
        .collect();
    Ok(PreparedSegment {
        index,
        start: segment.segment.start,
        end: segment.segment.end,
        jpegs,
    })
}

fn jpeg(frame: &RgbImage) -> image::ImageResult<serde_bytes::ByteBuf> {
    let mut bytes = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, FRAME_JPEG_QUALITY)
        .encode_image(frame)?;
    Ok(serde_bytes::ByteBuf::from(bytes))
}

/// Mean of unit vectors, renormalised: the segment's direction.
fn mean_pool<'a>(vectors: impl Iterator<Item = &'a [f32]>) -> Vec<f32> {
    let mut sum: Vec<f32> = Vec::new();
    for vector in vectors {
        if sum.is_empty() {
            sum = vec![0.0; vector.len()];
        }
        for (s, v) in sum.iter_mut().zip(vector) {
            *s += v;
        }
    }
    l2_normalise(sum)
}

fn tokio_stream_from<T: Send + 'static>(
    mut receiver: tokio::sync::mpsc::Receiver<T>,
) -> impl futures::Stream<Item = T> {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// Downloads the upload `path` names into `dir`; a path that is not an
/// upload is returned as it is. The gateway's upload limit bounds the size.
async fn download(
    media: &MediaStore,
    path: &str,
    dir: &std::path::Path,
) -> Result<String, JobFailure> {
    let Some(name) = upload_name(path) else {
        return Ok(path.to_string());
    };
    let fail =
        |e: &dyn std::fmt::Display| JobFailure::Transient(format!("cannot download {path}: {e}"));
    let mut object = media
        .get(Bucket::Uploads, name)
        .await
        .map_err(|e| fail(&e))?
        .ok_or_else(|| JobFailure::Permanent(format!("the upload {path} is gone")))?;
    // The gateway names uploads `{upload id}/{sanitised file name}`; the
    // name keeps its extension and its stem, which subtitles share.
    let file_name = std::path::Path::new(name)
        .file_name()
        .ok_or_else(|| JobFailure::Permanent(format!("{path} names no file")))?;
    let local = dir.join(file_name);
    let mut file = tokio::fs::File::create(&local)
        .await
        .map_err(|e| fail(&e))?;
    while let Some(chunk) = object.next_chunk().await.map_err(|e| fail(&e))? {
        file.write_all(&chunk).await.map_err(|e| fail(&e))?;
    }
    file.flush().await.map_err(|e| fail(&e))?;
    Ok(local.to_string_lossy().into_owned())
}

/// Acks a finished job and waits for the server to confirm it. An ack lost
/// while a cluster elects a new stream leader (a node restarting) would
/// leave the job in the queue until its ack wait ran out and another worker
/// did it again, so a failed ack is retried a few times first; redelivery
/// remains the last resort, and redoing a job is harmless (same generation).
async fn acknowledge(message: &jetstream::Message, video_id: &str) {
    const ATTEMPTS: u32 = 5;
    for attempt in 1..=ATTEMPTS {
        match message.double_ack().await {
            Ok(()) => return,
            Err(err) if attempt < ATTEMPTS => {
                tracing::warn!(video_id, error = %err, attempt, "ack not confirmed; retrying");
                tokio::time::sleep(Duration::from_millis(250) * attempt).await;
            }
            Err(err) => {
                tracing::warn!(video_id, error = %err, "ack not confirmed; the job will be redelivered")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(generation: &str) -> IngestJob {
        IngestJob {
            video_id: "v1".into(),
            generation: generation.into(),
            path: "/media/a.mp4".into(),
            name: "a.mp4".into(),
            subtitles: None,
            ocr: None,
        }
    }

    fn record(generation: &str) -> VideoRecord {
        VideoRecord {
            video_id: "v1".into(),
            name: "a.mp4".into(),
            path: "/media/a.mp4".into(),
            status: VideoStatus::Queued,
            progress: 0.0,
            error: None,
            duration: None,
            segment_count: 0,
            generation: generation.into(),
            updated_at_ms: 0,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_overloaded_encoder_is_waited_for_not_a_restart() {
        let calls = std::cell::Cell::new(0);
        let answer = patiently(Duration::from_secs(120), || {
            calls.set(calls.get() + 1);
            let n = calls.get();
            async move {
                if n <= 3 {
                    Err(ErrorBody::new(ErrorCode::Overloaded, "queue full"))
                } else {
                    Ok(n)
                }
            }
        })
        .await;
        assert_eq!(answer.unwrap(), 4, "answered on the fourth call");

        // Other errors are not retried here; overload past the budget gives up.
        let other = patiently(Duration::from_secs(120), || async {
            Err::<(), _>(ErrorBody::new(ErrorCode::BadRequest, "bad"))
        })
        .await;
        assert_eq!(other.unwrap_err().error.code, ErrorCode::BadRequest);
        let started = tokio::time::Instant::now();
        let busy = patiently(Duration::from_secs(20), || async {
            Err::<(), _>(ErrorBody::new(ErrorCode::Overloaded, "queue full"))
        })
        .await;
        assert_eq!(busy.unwrap_err().error.code, ErrorCode::Overloaded);
        assert!(started.elapsed() >= Duration::from_secs(20));
        assert!(started.elapsed() < Duration::from_secs(30));
    }

    #[test]
    fn only_a_job_that_progresses_is_kept_alive() {
        let start = std::time::Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut watch = StallWatch::new(Duration::from_secs(60));
        assert!(watch.moved(0, at(0)), "the first reading is progress");
        assert!(!watch.moved(0, at(30)));
        assert!(!watch.stalled(at(30)));
        assert!(watch.moved(7, at(50)));
        assert!(
            !watch.stalled(at(100)),
            "60 s are counted from the last change"
        );
        assert!(!watch.moved(7, at(111)));
        assert!(watch.stalled(at(111)));
    }

    #[test]
    fn an_unreadable_catalog_is_not_a_superseded_job() {
        let current = job("g2");
        assert_eq!(
            Standing::of(Ok::<_, String>(Some(record("g2"))), &current),
            Standing::Current
        );
        assert_eq!(
            Standing::of(Ok::<_, String>(Some(record("g3"))), &current),
            Standing::Superseded,
            "a newer ingest replaced it"
        );
        assert_eq!(
            Standing::of(Ok::<_, String>(None), &current),
            Standing::Superseded,
            "the video was deleted"
        );
        for status in [VideoStatus::Ready, VideoStatus::Failed] {
            let finished = VideoRecord {
                status,
                ..record("g2")
            };
            assert_eq!(
                Standing::of(Ok::<_, String>(Some(finished)), &current),
                Standing::Superseded,
                "a redelivered job that already finished is not redone"
            );
        }
        assert_eq!(
            Standing::of(Err::<Option<VideoRecord>, _>("timed out"), &current),
            Standing::Unknown("timed out".into())
        );
    }
}
