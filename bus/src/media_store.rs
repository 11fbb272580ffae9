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

use async_nats::jetstream::object_store::{
    self, DeleteErrorKind, GetErrorKind, InfoErrorKind, ObjectInfo, ObjectStore,
};
use async_nats::jetstream::{self, stream};

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
    thumbs: ObjectStore,
    uploads: ObjectStore,
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
            js.get_object_store(bucket)
                .await
                .map_err(|err| MediaStoreError::Open {
                    bucket,
                    message: err.to_string(),
                })
        };
        Ok(MediaStore {
            thumbs: open(THUMBS_BUCKET).await?,
            uploads: open(UPLOADS_BUCKET).await?,
        })
    }

    fn bucket(&self, bucket: Bucket) -> &ObjectStore {
        match bucket {
            Bucket::Thumbs => &self.thumbs,
            Bucket::Uploads => &self.uploads,
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

    /// A reader of `name`'s content (fetched chunk by chunk as it is read);
    /// `None` when there is no such object.
    pub async fn get(
        &self,
        bucket: Bucket,
        name: &str,
    ) -> Result<Option<object_store::Object>, MediaStoreError> {
        match self.bucket(bucket).get(name).await {
            Ok(object) => Ok(Some(object)),
            Err(err) if matches!(err.kind(), GetErrorKind::NotFound) => Ok(None),
            Err(err) => Err(Self::error(bucket, name, err)),
        }
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
