//! The ingest role. Its service (`vidseek.v1.ingest`, `.delete`) validates
//! requests, records the video as queued and puts a job on the JetStream work
//! queue; its workers take one job at a time, turn the file into segments
//! (media analysis, frame and subtitle embeddings, thumbnails) and append
//! them to the segment log. A job is acked only once its segments are
//! durable, so a worker that dies mid-job leaves it to be redelivered to
//! another; jobs carry a generation, so a redelivered or superseded job
//! replaces the video's segments instead of adding to them.

mod job;
pub mod library;
mod text_sources;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_nats::jetstream::object_store::ObjectInfo;
use async_nats::jetstream::{self, consumer};
use async_nats::service::ServiceExt;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;
use vidseek_bus::catalog::Catalog;
use vidseek_bus::media_store::{Bucket, MediaStore, MediaStoreKind, upload_name};
use vidseek_protocol::codec::{self, Format};
use vidseek_protocol::error::{ErrorBody, ErrorCode};
use vidseek_protocol::ingest::{
    DeleteVideo, IngestAccepted, IngestJob, IngestRequest, OcrMode, VideoDeleted, VideoRecord,
    VideoStatus,
};
use vidseek_protocol::sharding::shard_of;
use vidseek_protocol::subjects;

#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error(transparent)]
    Streams(#[from] vidseek_bus::streams::StreamSetupError),
    #[error(transparent)]
    Catalog(#[from] vidseek_bus::catalog::CatalogError),
    #[error(transparent)]
    MediaStore(#[from] vidseek_bus::media_store::MediaStoreError),
    #[error("cannot start the ingest service: {0}")]
    Service(async_nats::Error),
    #[error("cannot read the ingest work queue: {0}")]
    Queue(String),
}

#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Thumbnails go to `{data_dir}/thumbs/{video_id}/{index}.jpg`, unless
    /// `media_store` says NATS.
    pub data_dir: PathBuf,
    /// Where thumbnails and uploaded videos live.
    pub media_store: MediaStoreKind,
    /// Directories server-side paths may come from.
    pub media_roots: Vec<PathBuf>,
    /// Ranker shards the segments are spread over.
    pub shards: u32,
    /// How long a job may go without a sign of life before it is redelivered.
    pub ack_wait: Duration,
    /// How long a job may go without progress before its worker stops the
    /// heartbeat, abandons it and hands it back.
    pub stall_timeout: Duration,
    /// Deliveries of a job before it is marked failed.
    pub max_deliver: i64,
    /// Deadline for each encoder request.
    pub encode_timeout: Duration,
    /// Text read from the picture when a request does not say.
    pub ocr: OcrMode,
    /// tesseract processes one ingest job runs at once.
    pub ocr_threads: usize,
    /// tesseract languages, e.g. `chi_sim+eng`.
    pub ocr_languages: String,
}

impl IngestConfig {
    pub fn thumbs_dir(&self, video_id: &str) -> PathBuf {
        vidseek_protocol::query::thumbnail_dir(&self.data_dir, video_id)
    }
}

pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

fn internal(error: impl std::fmt::Display) -> ErrorBody {
    ErrorBody::new(ErrorCode::Internal, error.to_string())
}

/// What every ingest task works with.
#[derive(Clone)]
struct Library {
    js: jetstream::Context,
    catalog: Catalog,
    /// The object store buckets, when media live in NATS.
    media: Option<MediaStore>,
}

/// The streams every ingest task needs, the catalog and the media store.
async fn open_library(
    nats: &async_nats::Client,
    config: &IngestConfig,
) -> Result<Library, IngestError> {
    let js = jetstream::new(nats.clone());
    vidseek_bus::streams::ensure_all(&js, 1).await?;
    let catalog = Catalog::open(&js).await?;
    let media = match config.media_store {
        MediaStoreKind::Files => None,
        MediaStoreKind::Nats => Some(MediaStore::open(&js).await?),
    };
    Ok(Library { js, catalog, media })
}

/// The store an upload path names, or an error saying it is not configured.
fn upload_store<'a>(library: &'a Library, path: &str) -> Result<&'a MediaStore, ErrorBody> {
    library.media.as_ref().ok_or_else(|| {
        ErrorBody::new(
            ErrorCode::BadRequest,
            format!("{path} is in the NATS media store, which this ingest service does not use (VIDSEEK_MEDIA_STORE)"),
        )
    })
}

/// Checks that an uploaded object exists; its size and digest.
async fn uploaded(library: &Library, path: &str, name: &str) -> Result<ObjectInfo, ErrorBody> {
    upload_store(library, path)?
        .info(Bucket::Uploads, name)
        .await
        .map_err(internal)?
        .ok_or_else(|| ErrorBody::new(ErrorCode::NotFound, format!("no upload {path}")))
}

/// Serves `vidseek.v1.ingest` and `vidseek.v1.ingest.delete` until shutdown.
pub async fn run_service(
    nats: async_nats::Client,
    config: IngestConfig,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    let library = open_library(&nats, &config).await?;
    let service = nats
        .service_builder()
        .description("vidseek ingest: accepts videos, deletes them")
        .start(subjects::SERVICE_INGEST, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(IngestError::Service)?;
    let ingest = service
        .endpoint_builder()
        .name("ingest")
        .add(subjects::INGEST)
        .await
        .map_err(IngestError::Service)?;
    let delete = service
        .endpoint_builder()
        .name("delete")
        .add(subjects::INGEST_DELETE)
        .await
        .map_err(IngestError::Service)?;
    let (c, l) = (config.clone(), library.clone());
    let serve_ingest = vidseek_bus::service::serve(ingest, move |request: IngestRequest| {
        let (config, library) = (c.clone(), l.clone());
        async move { accept(&config, &library, request).await }
    });
    let serve_delete = vidseek_bus::service::serve(delete, move |request: DeleteVideo| {
        let (config, library) = (config.clone(), library.clone());
        async move { delete_video(&config, &library, request).await }
    });
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = futures::future::join(serve_ingest, serve_delete) => {}
    }
    let _ = service.stop().await;
    Ok(())
}

/// Validates a request, records the video as queued and enqueues its job.
async fn accept(
    config: &IngestConfig,
    lib: &Library,
    request: IngestRequest,
) -> Result<IngestAccepted, ErrorBody> {
    let (path, video_id) = match upload_name(&request.path) {
        // An upload in the object store: its id from its size and digest
        // (the store hashes the whole file as it is put).
        Some(name) => {
            let info = uploaded(lib, &request.path, name).await?;
            let digest = info.digest.unwrap_or_default();
            let id = library::video_id_of_upload(info.size as u64, &digest);
            (request.path.clone(), id)
        }
        None => {
            let path = library::resolve_media_path(&request.path, &config.media_roots)?;
            let id_path = path.clone();
            let id = tokio::task::spawn_blocking(move || library::video_id(&id_path))
                .await
                .map_err(internal)?
                .map_err(|e| {
                    ErrorBody::new(
                        ErrorCode::NotFound,
                        format!("cannot read {}: {e}", request.path),
                    )
                })?;
            (path.to_string_lossy().into_owned(), id)
        }
    };
    let subtitles = match request.subtitles.as_deref() {
        Some(subtitles) => Some(match upload_name(subtitles) {
            Some(name) => uploaded(lib, subtitles, name)
                .await
                .map(|_| subtitles.to_string())?,
            None => library::resolve_media_path(subtitles, &config.media_roots)?
                .to_string_lossy()
                .into_owned(),
        }),
        None => None,
    };
    let name = request.name.clone().unwrap_or_else(|| {
        Path::new(&path)
            .file_name()
            .map_or_else(|| video_id.clone(), |n| n.to_string_lossy().into_owned())
    });
    let job = IngestJob {
        video_id: video_id.clone(),
        generation: uuid::Uuid::new_v4().simple().to_string(),
        path,
        name: name.clone(),
        subtitles,
        ocr: Some(request.ocr.unwrap_or(config.ocr)),
    };
    let (js, catalog) = (&lib.js, &lib.catalog);
    // The record first: a worker that takes the job at once must find it.
    let record = VideoRecord {
        video_id: video_id.clone(),
        name,
        path: job.path.clone(),
        status: VideoStatus::Queued,
        progress: 0.0,
        error: None,
        duration: None,
        segment_count: 0,
        generation: job.generation.clone(),
        updated_at_ms: now_ms(),
    };
    catalog.put(&record).await.map_err(internal)?;
    let payload = codec::encode(Format::MsgPack, &job).map_err(|e| e.to_error_body())?;
    js.publish(subjects::INGEST_JOBS_SUBJECT, payload.into())
        .await
        .map_err(internal)?
        .await
        .map_err(internal)?;
    tracing::info!(video_id, path = %job.path, "video queued");
    Ok(IngestAccepted {
        video_id,
        status: VideoStatus::Queued,
    })
}

/// Removes a video's segments, thumbnails, uploaded file and record.
async fn delete_video(
    config: &IngestConfig,
    lib: &Library,
    request: DeleteVideo,
) -> Result<VideoDeleted, ErrorBody> {
    let (js, catalog) = (&lib.js, &lib.catalog);
    let video_id = request.video_id;
    let Some(mut record) = catalog.get(&video_id).await.map_err(internal)? else {
        return Err(ErrorBody::new(
            ErrorCode::NotFound,
            format!("no video {video_id}"),
        ));
    };
    // Resumable: first the record gets a generation no job has, so a job
    // still running for this video sees it is stale and publishes nothing;
    // then the segments go; the record goes last. If a step fails, the
    // record is still there and deleting again finishes the work.
    record.generation = format!("deleting-{}", uuid::Uuid::new_v4().simple());
    record.updated_at_ms = now_ms();
    catalog.put(&record).await.map_err(internal)?;
    let shard = shard_of(&video_id, config.shards);
    let segments_removed = vidseek_bus::segment_log::remove_video(js, shard, &video_id)
        .await
        .map_err(internal)?;
    let _ = tokio::fs::remove_dir_all(config.thumbs_dir(&video_id)).await;
    if let Some(media) = &lib.media {
        media
            .delete_thumbs(&video_id, record.segment_count)
            .await
            .map_err(internal)?;
    }
    // Uploaded files belong to vidseek; files given by path belong to the user.
    if let Some(name) = upload_name(&record.path) {
        let media = upload_store(lib, &record.path)?;
        // Subtitles were uploaded beside the video, with its stem.
        let stem = Path::new(name).with_extension("");
        for object in [
            name.to_string(),
            format!("{}.srt", stem.display()),
            format!("{}.vtt", stem.display()),
        ] {
            media
                .delete(Bucket::Uploads, &object)
                .await
                .map_err(internal)?;
        }
    }
    let uploads = config.data_dir.join("library/uploads");
    let path = PathBuf::from(&record.path);
    if let (Ok(uploads), Some(dir)) = (uploads.canonicalize(), path.parent())
        && dir.starts_with(&uploads)
        && dir != uploads
    {
        let _ = tokio::fs::remove_dir_all(dir).await;
    }
    catalog.delete(&video_id).await.map_err(internal)?;
    tracing::info!(video_id, "video deleted");
    Ok(VideoDeleted {
        video_id,
        segments_removed,
    })
}

/// Takes jobs from the work queue, one at a time, until shutdown.
pub async fn run_worker(
    nats: async_nats::Client,
    config: IngestConfig,
    shutdown: CancellationToken,
) -> Result<(), IngestError> {
    let library = open_library(&nats, &config).await?;
    let stream = library
        .js
        .get_stream(subjects::INGEST_JOBS_STREAM)
        .await
        .map_err(|e| IngestError::Queue(e.to_string()))?;
    let mut consumer: consumer::PullConsumer = stream
        .get_or_create_consumer(
            subjects::INGEST_JOBS_CONSUMER,
            consumer::pull::Config {
                durable_name: Some(subjects::INGEST_JOBS_CONSUMER.to_string()),
                ack_policy: consumer::AckPolicy::Explicit,
                ack_wait: config.ack_wait,
                max_deliver: config.max_deliver,
                ..Default::default()
            },
        )
        .await
        .map_err(|e| IngestError::Queue(e.to_string()))?;
    let worker = job::Worker::new(nats, library, config);
    loop {
        record_queue_depth(&mut consumer).await;
        // One job per pull: a worker never holds jobs it is not working on,
        // so another worker can take them.
        let batch = consumer
            .batch()
            .max_messages(1)
            .expires(Duration::from_secs(5))
            .messages();
        let mut batch = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            batch = batch => match batch {
                Ok(batch) => batch,
                Err(err) => {
                    tracing::warn!(error = %err, "cannot pull ingest jobs; retrying");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            },
        };
        let message = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            message = batch.next() => message,
        };
        match message {
            Some(Ok(message)) => tokio::select! {
                _ = worker.process(&message) => {}
                _ = shutdown.cancelled() => {
                    // Hand the job straight back instead of after ack_wait.
                    let _ = message.ack_with(jetstream::AckKind::Nak(None)).await;
                    return Ok(());
                }
            },
            Some(Err(err)) => tracing::warn!(error = %err, "ingest job fetch failed"),
            None => {}
        }
    }
}

/// The queue's depth as the shared consumer sees it, read before each pull
/// (every few seconds when idle). Unknown while the server does not answer:
/// the last depth stays.
async fn record_queue_depth(consumer: &mut consumer::PullConsumer) {
    use vidseek_bus::metrics;
    if let Ok(info) = consumer.info().await {
        let waiting = info.num_pending as f64;
        let in_progress = info.num_ack_pending as f64;
        metrics::set(metrics::INGEST_QUEUE, &[("state", "waiting")], waiting);
        metrics::set(
            metrics::INGEST_QUEUE,
            &[("state", "in_progress")],
            in_progress,
        );
    }
}
