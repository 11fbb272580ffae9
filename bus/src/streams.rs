//! The JetStream streams and buckets vidseek relies on. Every role calls
//! [`ensure_all`] at start-up, so whichever process comes first creates them
//! and the order in which a fleet starts does not matter.

use async_nats::jetstream::{self, stream};
use vidseek_protocol::subjects;

#[derive(Debug, thiserror::Error)]
pub enum StreamSetupError {
    #[error("cannot create stream {name}: {source}")]
    Stream {
        name: &'static str,
        source: jetstream::context::CreateStreamError,
    },
}

/// Largest segment-log message; parts are sized to stay below it.
pub const MAX_SEGMENT_MESSAGE_BYTES: i32 = 900 * 1024;

/// Creates (or finds) the ingest work queue, the segment log and the videos
/// bucket. `replicas` is 1 on a single server and 3 on a cluster.
pub async fn ensure_all(js: &jetstream::Context, replicas: usize) -> Result<(), StreamSetupError> {
    js.get_or_create_stream(stream::Config {
        name: subjects::INGEST_JOBS_STREAM.to_string(),
        subjects: vec![subjects::INGEST_JOBS_SUBJECT.to_string()],
        // Work-queue retention: a job disappears once a worker acks it, and
        // stays (to be redelivered) while no worker has finished it.
        retention: stream::RetentionPolicy::WorkQueue,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        ..Default::default()
    })
    .await
    .map_err(|source| StreamSetupError::Stream {
        name: subjects::INGEST_JOBS_STREAM,
        source,
    })?;

    js.get_or_create_stream(stream::Config {
        name: subjects::SEGMENTS_STREAM.to_string(),
        subjects: vec!["vidseek.v1.segments.>".to_string()],
        retention: stream::RetentionPolicy::Limits,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        max_message_size: MAX_SEGMENT_MESSAGE_BYTES + 64 * 1024,
        ..Default::default()
    })
    .await
    .map_err(|source| StreamSetupError::Stream {
        name: subjects::SEGMENTS_STREAM,
        source,
    })?;

    // The bucket's backing stream is created directly, with the settings a
    // key-value bucket has: async-nats' create_key_value first queries the
    // account, and nats-server 2.9 (Debian 12's) answers in a shape it does
    // not parse.
    js.get_or_create_stream(stream::Config {
        name: format!("KV_{}", subjects::VIDEOS_BUCKET),
        description: Some("one record per video: status, progress, duration".to_string()),
        subjects: vec![format!("$KV.{}.>", subjects::VIDEOS_BUCKET)],
        max_messages_per_subject: 1,
        storage: stream::StorageType::File,
        num_replicas: replicas,
        allow_rollup: true,
        deny_delete: true,
        allow_direct: true,
        discard: stream::DiscardPolicy::New,
        ..Default::default()
    })
    .await
    .map_err(|source| StreamSetupError::Stream {
        name: subjects::VIDEOS_BUCKET,
        source,
    })?;
    Ok(())
}
