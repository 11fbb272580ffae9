//! Where thumbnails and uploaded videos live (`VIDSEEK_MEDIA_STORE`).
//!
//! `files` keeps them in the data directory: one machine, or a volume every
//! gateway and ingest worker shares. `nats` keeps them in two JetStream
//! object store buckets ([`THUMBS_BUCKET`], [`UPLOADS_BUCKET`]), replicated
//! like the streams, so any gateway on any node serves every thumbnail and
//! ingest workers need no shared disk. The buckets' backing streams are
//! created with the others by [`crate::streams`].
//!
//! An uploaded video in the bucket is named in a job, a request and the
//! catalog by an [`upload_path`] (`nats-upload:{name}`) in place of a file
//! path.

use std::str::FromStr;
use std::time::Duration;

use async_nats::jetstream::object_store::{
    DeleteErrorKind, InfoErrorKind, ObjectInfo, ObjectStore,
};
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use futures::Stream;

/// Thumbnails, named `{video_id}/{index}.jpg`.
pub const THUMBS_BUCKET: &str = "vidseek_thumbs";
/// Uploaded videos and their subtitles, named `{upload id}/{file name}`.
pub const UPLOADS_BUCKET: &str = "vidseek_uploads";
/// Prefix of a path that names an object in [`UPLOADS_BUCKET`].
pub const UPLOAD_SCHEME: &str = "nats-upload:";

/// Which store a process uses.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq)]
pub enum MediaStoreKind {
    /// The data directory.
    #[default]
    Files,
    /// JetStream object store buckets.
    Nats,
}

impl FromStr for MediaStoreKind {
    type Err = String;

    fn from_str(value: &str) -> Result<Self, Self::Err> {
        match value.trim().to_ascii_lowercase().as_str() {
            "files" => Ok(MediaStoreKind::Files),
            "nats" => Ok(MediaStoreKind::Nats),
            other => Err(format!("unknown media store {other:?}: use files or nats")),
        }
    }
}

/// The stream behind an object store bucket.
pub fn bucket_stream(bucket: &str) -> String {
    format!("OBJ_{bucket}")
}

/// The backing stream of `bucket` with the settings async-nats'
/// `create_object_store` gives it, created directly (as the videos bucket
/// is) so set-up and replica changes run through the same code as the other
/// streams.
pub(crate) fn bucket_config(bucket: &str, replicas: usize) -> stream::Config {
    stream::Config {
        name: bucket_stream(bucket),
        description: Some(format!("vidseek media: {bucket}")),
        subjects: vec![format!("$O.{bucket}.C.>"), format!("$O.{bucket}.M.>")],
        storage: stream::StorageType::File,
        num_replicas: replicas,
        discard: stream::DiscardPolicy::New,
        allow_rollup: true,
        allow_direct: true,
        ..Default::default()
    }
}

/// `name` as a path in requests, jobs and the catalog.
pub fn upload_path(name: &str) -> String {
    format!("{UPLOAD_SCHEME}{name}")
}

/// The object name in an [`upload_path`], if `path` is one.
pub fn upload_name(path: &str) -> Option<&str> {
    path.strip_prefix(UPLOAD_SCHEME)
}

/// A thumbnail's object name.
pub fn thumb_name(video_id: &str, index: u32) -> String {
    format!("{video_id}/{index}.jpg")
}

#[derive(Debug, thiserror::Error)]
pub enum MediaStoreError {
    #[error("cannot open the object store bucket {bucket}: {message}")]
    Open {
        bucket: &'static str,
        message: String,
    },
    #[error("object store {bucket}, {name}: {message}")]
    Object {
        bucket: &'static str,
        name: String,
        message: String,
    },
}

/// The two buckets, opened (the streams must exist: see
/// [`crate::streams::ensure_all`]). Cheap to clone.
#[derive(Clone)]
pub struct MediaStore {
    thumbs: (ObjectStore, stream::Stream),
    uploads: (ObjectStore, stream::Stream),
}

/// One of the buckets.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Bucket {
    Thumbs,
    Uploads,
}

impl Bucket {
    fn name(self) -> &'static str {
        match self {
            Bucket::Thumbs => THUMBS_BUCKET,
            Bucket::Uploads => UPLOADS_BUCKET,
        }
    }
}

impl MediaStore {
    pub async fn open(js: &jetstream::Context) -> Result<MediaStore, MediaStoreError> {
        let open = |bucket: &'static str| async move {
            let fail = |message: String| MediaStoreError::Open { bucket, message };
            let store = js
                .get_object_store(bucket)
                .await
                .map_err(|err| fail(err.to_string()))?;
            let stream = js
                .get_stream(bucket_stream(bucket))
                .await
                .map_err(|err| fail(err.to_string()))?;
            Ok((store, stream))
        };
        Ok(MediaStore {
            thumbs: open(THUMBS_BUCKET).await?,
            uploads: open(UPLOADS_BUCKET).await?,
        })
    }

    fn bucket(&self, bucket: Bucket) -> &ObjectStore {
        match bucket {
            Bucket::Thumbs => &self.thumbs.0,
            Bucket::Uploads => &self.uploads.0,
        }
    }

    fn error(bucket: Bucket, name: &str, err: impl std::fmt::Display) -> MediaStoreError {
        MediaStoreError::Object {
            bucket: bucket.name(),
            name: name.to_string(),
            message: err.to_string(),
        }
    }

    /// Stores (or replaces) `name` with what `data` reads.
    pub async fn put(
        &self,
        bucket: Bucket,
        name: &str,
        data: &mut (impl tokio::io::AsyncRead + Unpin),
    ) -> Result<ObjectInfo, MediaStoreError> {
        self.bucket(bucket)
            .put(name, data)
            .await
            .map_err(|err| Self::error(bucket, name, err))
    }

    /// `name`'s size and digest; `None` when there is no such object.
    pub async fn info(
        &self,
        bucket: Bucket,
        name: &str,
    ) -> Result<Option<ObjectInfo>, MediaStoreError> {
        match self.bucket(bucket).info(name).await {
            Ok(info) if info.deleted => Ok(None),
            Ok(info) => Ok(Some(info)),
            Err(err) if matches!(err.kind(), InfoErrorKind::NotFound) => Ok(None),
            Err(err) => Err(Self::error(bucket, name, err)),
        }
    }

    /// A reader of `name`'s content, fetched chunk by chunk as it is read;
    /// `None` when there is no such object.
    ///
    /// Chunks are read by direct gets, which any replica answers, rather
    /// than through a consumer as async-nats' reader does: on a cluster that
    /// lost a node, creating that consumer times out now and then for as
    /// long as the node is gone.
    pub async fn get(
        &self,
        bucket: Bucket,
        name: &str,
    ) -> Result<Option<ObjectReader>, MediaStoreError> {
        let Some(info) = self.info(bucket, name).await? else {
            return Ok(None);
        };
        let stream = match bucket {
            Bucket::Thumbs => &self.thumbs.1,
            Bucket::Uploads => &self.uploads.1,
        };
        Ok(Some(ObjectReader {
            subject: format!("$O.{}.C.{}", bucket.name(), info.nuid),
            left: info.size,
            info,
            bucket,
            stream: stream.clone(),
            next_sequence: 1,
        }))
    }

    /// Deletes `name`; true if it was there. Deleting again is harmless, so
    /// an interrupted delete can simply be repeated.
    pub async fn delete(&self, bucket: Bucket, name: &str) -> Result<bool, MediaStoreError> {
        match self.bucket(bucket).delete(name).await {
            Ok(()) => Ok(true),
            Err(err) if matches!(err.kind(), DeleteErrorKind::NotFound) => Ok(false),
            Err(err) => Err(Self::error(bucket, name, err)),
        }
    }

    /// Deletes a video's thumbnails: `0.jpg` up to `at_least` (exclusive)
    /// and on while there are more. Thumbnails are numbered without gaps,
    /// and a deleted one stays as a marker, so a repeated (resumed) delete
    /// walks past what the first removed.
    pub async fn delete_thumbs(
        &self,
        video_id: &str,
        at_least: u32,
    ) -> Result<(), MediaStoreError> {
        let mut index = 0;
        loop {
            let found = self
                .delete(Bucket::Thumbs, &thumb_name(video_id, index))
                .await?;
            if !found && index >= at_least {
                return Ok(());
            }
            index += 1;
        }
    }
}

/// How long a chunk the object's record promises is looked for: a replica
/// behind its leader may not have it yet, and a lost node's requests time
/// out until the cluster notices.
const CHUNK_WAIT: Duration = Duration::from_secs(20);

/// An object of the store, read chunk by chunk (see [`MediaStore::get`]).
pub struct ObjectReader {
    /// Its size, digest and chunk count, as recorded when it was put.
    pub info: ObjectInfo,
    bucket: Bucket,
    stream: stream::Stream,
    /// Where its chunks are.
    subject: String,
    /// Where the next chunk is looked for.
    next_sequence: u64,
    /// Bytes not read yet.
    left: usize,
}

impl ObjectReader {
    /// The next chunk; `None` once the whole object was read.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, MediaStoreError> {
        if self.left == 0 {
            return Ok(None);
        }
        let deadline = tokio::time::Instant::now() + CHUNK_WAIT;
        let mut pause = Duration::from_millis(50);
        loop {
            let found = self
                .stream
                .direct_get_next_for_subject(self.subject.as_str(), Some(self.next_sequence))
                .await;
            let error = match found {
                Ok(chunk) if chunk.payload.len() <= self.left => {
                    self.next_sequence = chunk.sequence + 1;
                    self.left -= chunk.payload.len();
                    return Ok(Some(chunk.payload));
                }
                Ok(_) => "a chunk runs past the recorded size".to_string(),
                Err(err) => err.to_string(),
            };
            if tokio::time::Instant::now() >= deadline {
                return Err(MediaStoreError::Object {
                    bucket: self.bucket.name(),
                    name: self.info.name.clone(),
                    message: format!("{} bytes unread: {error}", self.left),
                });
            }
            tracing::debug!(object = self.info.name, error, "chunk not read; retrying");
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_secs(1));
        }
    }

    /// `len` bytes from byte `start` as a stream, for a response body. The
    /// chunks before `start` are read and dropped: the record does not say
    /// where a byte is, so a range costs O(`start`) in transfer.
    pub fn byte_range(
        self,
        start: u64,
        len: u64,
    ) -> impl Stream<Item = Result<Bytes, MediaStoreError>> + Send + 'static {
        futures::stream::try_unfold(
            (self, start, len),
            |(mut reader, mut skip, mut len)| async move {
                while len > 0 {
                    let Some(mut chunk) = reader.next_chunk().await? else {
                        break;
                    };
                    if skip >= chunk.len() as u64 {
                        skip -= chunk.len() as u64;
                        continue;
                    }
                    let _ = chunk.split_to(skip as usize);
                    chunk.truncate(len.min(chunk.len() as u64) as usize);
                    len -= chunk.len() as u64;
                    return Ok(Some((chunk, (reader, 0, len))));
                }
                Ok(None)
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_kinds_parse() {
        assert_eq!("files".parse(), Ok(MediaStoreKind::Files));
        assert_eq!(" NATS ".parse(), Ok(MediaStoreKind::Nats));
        assert!("s3".parse::<MediaStoreKind>().is_err());
    }

    #[test]
    fn upload_paths_round_trip() {
        let path = upload_path("abc/clip.mp4");
        assert_eq!(upload_name(&path), Some("abc/clip.mp4"));
        assert_eq!(upload_name("/data/library/clip.mp4"), None);
    }
}
