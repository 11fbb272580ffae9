//! The JetStream streams and buckets vidseek relies on. Every role calls
//! [`ensure_all`] at start-up, so whichever process comes first creates them
//! and the order in which a fleet starts does not matter.
//!
//! [`configure`] is what a process runs before its roles: it also applies
//! the operator's replica count to streams that already exist (a single
//! server grown into a cluster), and it holds the fleet to the shard count
//! the segment log was written with, which the log records in its
//! description. A video's shard is `hash(video) mod shards`, so a process
//! with another count would look for (and delete) segments where they are
//! not: it is refused at start instead.

use std::future::Future;
use std::time::Duration;

use async_nats::jetstream::context::{CreateStreamError, CreateStreamErrorKind};
use async_nats::jetstream::{self, stream};
use vidseek_protocol::subjects;

use crate::media_store;

#[derive(Debug, thiserror::Error)]
pub enum StreamSetupError {
    #[error("cannot create stream {name}: {source}")]
    Stream {
        name: &'static str,
        source: jetstream::context::CreateStreamError,
    },
    #[error("cannot change stream {name} to {replicas} replicas: {source}")]
    Replicas {
        name: &'static str,
        replicas: usize,
        source: jetstream::context::UpdateStreamError,
    },
    #[error("cannot record the shard count on the segment log: {0}")]
    RecordShards(jetstream::context::UpdateStreamError),
    #[error(
        "the segment log was written with {recorded} shards but this process was started with \
         {requested} (VIDSEEK_SHARDS): start every process with VIDSEEK_SHARDS={recorded}; \
         changing the shard count of an existing library is not supported"
    )]
    ShardMismatch { recorded: u32, requested: u32 },
}

/// Largest segment-log message; parts are sized to stay below it.
pub const MAX_SEGMENT_MESSAGE_BYTES: i32 = 900 * 1024;

/// How long set-up retries JetStream's transient failures.
const SETUP_RETRY_FOR: Duration = Duration::from_secs(60);

/// A cluster answers slowly, or "temporarily unavailable", while it elects
/// stream leaders: when a whole fleet starts at once, or a node was lost.
/// "Already in use with a different configuration" and "subjects overlap
/// with an existing stream" are races between processes creating the same
/// stream at once (the loser's create meets the winner's stream): the retry
/// finds the stream the other created. A real overlap with a foreign stream
/// still fails, once the retries run out.
fn transient(err: &CreateStreamError) -> bool {
    /// JSStreamNameExistErr.
    const STREAM_NAME_IN_USE: u64 = 10058;
    /// JSStreamSubjectOverlapErr.
    const SUBJECTS_OVERLAP: u64 = 10065;
    match err.kind() {
        CreateStreamErrorKind::TimedOut | CreateStreamErrorKind::JetStreamUnavailable => true,
        CreateStreamErrorKind::JetStream(err) => {
            err.code() == 503
                || [STREAM_NAME_IN_USE, SUBJECTS_OVERLAP].contains(&err.error_code().0)
        }
        _ => false,
    }
}

/// Runs a create or update, retrying transient failures (both are
/// idempotent: a retry finds what a timed-out attempt did).
async fn retrying<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, CreateStreamError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CreateStreamError>>,
{
    let deadline = tokio::time::Instant::now() + SETUP_RETRY_FOR;
    loop {
        match attempt().await {
            Err(err) if transient(&err) && tokio::time::Instant::now() < deadline => {
                tracing::warn!(stream = what, error = %err, "JetStream busy; retrying");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            result => return result,
        }
    }
}

/// How the segment log's description records the shard count.
const SHARDS_MARKER: &str = "shards=";

/// The streams, in the order they are created: the ingest work queue, the
/// segment log (recording `shards` when known, so a fresh deployment needs
/// no update, which a role's NATS permissions may not allow), the videos
/// bucket's backing stream and the media object stores' (see
/// [`crate::media_store`]; empty unless `VIDSEEK_MEDIA_STORE=nats`).
fn configs(replicas: usize, shards: Option<u32>) -> [(&'static str, stream::Config); 5] {
    [
        (
            subjects::INGEST_JOBS_STREAM,
            stream::Config {
                name: subjects::INGEST_JOBS_STREAM.to_string(),
                subjects: vec![subjects::INGEST_JOBS_SUBJECT.to_string()],
                // Work-queue retention: a job disappears once a worker acks
                // it, and stays (to be redelivered) while no worker has
                // finished it.
                retention: stream::RetentionPolicy::WorkQueue,
                storage: stream::StorageType::File,
                num_replicas: replicas,
                ..Default::default()
            },
        ),
        (
            subjects::SEGMENTS_STREAM,
            stream::Config {
                name: subjects::SEGMENTS_STREAM.to_string(),
                description: shards.map(shards_description),
                subjects: vec!["vidseek.v1.segments.>".to_string()],
                retention: stream::RetentionPolicy::Limits,
                storage: stream::StorageType::File,
                num_replicas: replicas,
                max_message_size: MAX_SEGMENT_MESSAGE_BYTES + 64 * 1024,
                ..Default::default()
            },
        ),
        // The bucket's backing stream is created directly, with the settings
        // a key-value bucket has: async-nats' create_key_value first queries
        // the account, and nats-server 2.9 (Debian 12's) answers in a shape
        // it does not parse.
        (
            subjects::VIDEOS_BUCKET,
            stream::Config {
                name: videos_bucket_stream(),
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
            },
        ),
        (
            media_store::THUMBS_BUCKET,
            media_store::bucket_config(media_store::THUMBS_BUCKET, replicas),
        ),
        (
            media_store::UPLOADS_BUCKET,
            media_store::bucket_config(media_store::UPLOADS_BUCKET, replicas),
        ),
    ]
}

/// The stream behind the videos bucket.
pub fn videos_bucket_stream() -> String {
    format!("KV_{}", subjects::VIDEOS_BUCKET)
}

/// Creates (or finds) the ingest work queue, the segment log, the videos
/// bucket and the media buckets. `replicas` applies only to what this call creates; streams that
/// exist keep theirs (see [`configure`]).
pub async fn ensure_all(js: &jetstream::Context, replicas: usize) -> Result<(), StreamSetupError> {
    ensure(js, replicas, None).await.map(drop)
}

async fn ensure(
    js: &jetstream::Context,
    replicas: usize,
    shards: Option<u32>,
) -> Result<Vec<(&'static str, stream::Config)>, StreamSetupError> {
    let mut found = Vec::with_capacity(5);
    for (name, config) in configs(replicas, shards) {
        let stream = retrying(name, || js.get_or_create_stream(config.clone()))
            .await
            .map_err(|source| StreamSetupError::Stream { name, source })?;
        found.push((name, stream.cached_info().config.clone()));
    }
    Ok(found)
}

/// What a process asks of the streams before its roles start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Layout {
    /// Replicas every stream should have; `None` keeps what they have (new
    /// streams get one).
    pub replicas: Option<usize>,
    /// The shard count this process routes with; `None` for roles that do
    /// not route by shard (the gateway).
    pub shards: Option<u32>,
}

/// Creates the streams if missing, changes their replica count to
/// `layout.replicas` where it differs (JetStream moves the data; nothing is
/// lost), and checks `layout.shards` against the count recorded on the
/// segment log, recording it when none is.
pub async fn configure(js: &jetstream::Context, layout: Layout) -> Result<(), StreamSetupError> {
    for (name, mut config) in ensure(js, layout.replicas.unwrap_or(1), layout.shards).await? {
        if let Some(replicas) = layout.replicas
            && config.num_replicas != replicas
        {
            tracing::info!(
                stream = config.name,
                from = config.num_replicas,
                to = replicas,
                "changing stream replicas"
            );
            config.num_replicas = replicas;
            retrying(name, || js.update_stream(&config))
                .await
                .map_err(|source| StreamSetupError::Replicas {
                    name,
                    replicas,
                    source,
                })?;
        }
        if name == subjects::SEGMENTS_STREAM
            && let Some(requested) = layout.shards
        {
            check_shards(js, config, requested).await?;
        }
    }
    Ok(())
}

async fn check_shards(
    js: &jetstream::Context,
    mut config: stream::Config,
    requested: u32,
) -> Result<(), StreamSetupError> {
    match recorded_shards(config.description.as_deref()) {
        Some(recorded) if recorded == requested => Ok(()),
        Some(recorded) => Err(StreamSetupError::ShardMismatch {
            recorded,
            requested,
        }),
        None => {
            tracing::info!(
                shards = requested,
                "recording the shard count on the segment log"
            );
            config.description = Some(shards_description(requested));
            retrying(subjects::SEGMENTS_STREAM, || js.update_stream(&config))
                .await
                .map_err(StreamSetupError::RecordShards)?;
            Ok(())
        }
    }
}

fn shards_description(shards: u32) -> String {
    format!("vidseek segment log, {SHARDS_MARKER}{shards}")
}

/// The shard count a segment log's description records, if any.
pub fn recorded_shards(description: Option<&str>) -> Option<u32> {
    let (_, rest) = description?.split_once(SHARDS_MARKER)?;
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_count_round_trips_through_the_description() {
        for shards in [1, 2, 16, 4096] {
            assert_eq!(
                recorded_shards(Some(&shards_description(shards))),
                Some(shards)
            );
        }
        assert_eq!(recorded_shards(None), None);
        assert_eq!(recorded_shards(Some("one record per video")), None);
        assert_eq!(recorded_shards(Some("shards=")), None);
    }
}
