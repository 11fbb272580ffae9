//! The video catalog: one [`VideoRecord`] per video in a JetStream key-value
//! bucket. The ingest workers write it, the gateway reads it.

use async_nats::jetstream::{self, kv};
use futures::TryStreamExt;
use vidseek_protocol::ingest::VideoRecord;
use vidseek_protocol::subjects;

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("videos bucket unavailable: {0}")]
    Bucket(#[from] jetstream::context::KeyValueError),
    #[error("cannot read video record: {0}")]
    Read(#[from] kv::EntryError),
    #[error("cannot write video record: {0}")]
    Write(#[from] kv::PutError),
    #[error("cannot delete video record: {0}")]
    Delete(#[from] kv::DeleteError),
    #[error("cannot list videos: {0}")]
    List(#[from] jetstream::stream::InfoError),
    #[error("corrupt video record {key}: {source}")]
    Corrupt {
        key: String,
        source: serde_json::Error,
    },
}

#[derive(Clone)]
pub struct Catalog {
    store: kv::Store,
}

impl Catalog {
    pub async fn open(js: &jetstream::Context) -> Result<Catalog, CatalogError> {
        Ok(Catalog {
            store: js.get_key_value(subjects::VIDEOS_BUCKET).await?,
        })
    }

    pub async fn get(&self, video_id: &str) -> Result<Option<VideoRecord>, CatalogError> {
        // Ids come from users; a key the bucket cannot hold cannot exist.
        if !is_valid_key(video_id) {
            return Ok(None);
        }
        match self.store.get(video_id).await? {
            None => Ok(None),
            Some(bytes) => {
                serde_json::from_slice(&bytes)
                    .map(Some)
                    .map_err(|source| CatalogError::Corrupt {
                        key: video_id.to_string(),
                        source,
                    })
            }
        }
    }

    pub async fn put(&self, record: &VideoRecord) -> Result<(), CatalogError> {
        // JSON so that `nats kv get vidseek_videos ID` is readable.
        let bytes = serde_json::to_vec(record).expect("video records always serialise");
        self.store.put(&record.video_id, bytes.into()).await?;
        Ok(())
    }

    pub async fn delete(&self, video_id: &str) -> Result<(), CatalogError> {
        self.store.delete(video_id).await?;
        Ok(())
    }

    /// Every video, sorted by name.
    pub async fn list(&self) -> Result<Vec<VideoRecord>, CatalogError> {
        // The stream's subject list is one answer from the server, so a record
        // rewritten meanwhile (ingest progress) is neither missed nor listed
        // twice, as it can be by the live key watch `kv::Store::keys` runs.
        let prefix = format!("$KV.{}.", subjects::VIDEOS_BUCKET);
        let subjects: Vec<(String, usize)> = self
            .store
            .stream
            .info_with_subjects(format!("{prefix}>"))
            .await?
            .try_collect()
            .await?;
        let mut records = Vec::with_capacity(subjects.len());
        for (subject, _) in subjects {
            let Some(key) = subject.strip_prefix(&prefix) else {
                continue;
            };
            // A deleted video's subject holds its delete marker until purged.
            if let Some(record) = self.get(key).await? {
                records.push(record);
            }
        }
        records.sort_by(|a, b| a.name.cmp(&b.name).then(a.video_id.cmp(&b.video_id)));
        Ok(records)
    }
}

/// Keys allowed by the bucket (and by us): ASCII letters, digits, `-`, `_`.
pub fn is_valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= 128
        && key
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_reject_traversal_and_wildcards() {
        assert!(super::is_valid_key("v0123abcd"));
        for bad in ["", "../etc", "a.b", "a*", "a>", "a b", "a/b"] {
            assert!(!super::is_valid_key(bad), "{bad}");
        }
    }
}
