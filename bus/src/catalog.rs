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
    #[error("cannot update video record: {0}")]
    Update(kv::UpdateError),
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
            Some(bytes) => decode(video_id, &bytes).map(Some),
        }
    }

    pub async fn put(&self, record: &VideoRecord) -> Result<(), CatalogError> {
        self.store
            .put(&record.video_id, encode(record).into())
            .await?;
        Ok(())
    }

    /// Changes a record where it stands: `change` edits the newest record
    /// (returning false to leave it as it is), and the write only lands if
    /// nobody wrote the record meanwhile; otherwise `change` is applied
    /// again to the newer one. Two writers of one record (an ingest's
    /// progress heartbeat and its final status) cannot undo each other, as
    /// a read followed by a put can. Returns whether it wrote.
    pub async fn update(
        &self,
        video_id: &str,
        mut change: impl FnMut(&mut VideoRecord) -> bool,
    ) -> Result<bool, CatalogError> {
        if !is_valid_key(video_id) {
            return Ok(false);
        }
        loop {
            let Some(entry) = self.store.entry(video_id).await? else {
                return Ok(false);
            };
            if entry.operation != kv::Operation::Put {
                return Ok(false);
            }
            let mut record = decode(video_id, &entry.value)?;
            if !change(&mut record) {
                return Ok(false);
            }
            match self
                .store
                .update(video_id, encode(&record).into(), entry.revision)
                .await
            {
                Ok(_) => return Ok(true),
                Err(err) if err.kind() == kv::UpdateErrorKind::WrongLastRevision => continue,
                Err(err) => return Err(CatalogError::Update(err)),
            }
        }
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

/// A record as stored: JSON, so that `nats kv get vidseek_videos ID` is readable.
fn encode(record: &VideoRecord) -> Vec<u8> {
    serde_json::to_vec(record).expect("video records always serialise")
}

fn decode(key: &str, bytes: &[u8]) -> Result<VideoRecord, CatalogError> {
    serde_json::from_slice(bytes).map_err(|source| CatalogError::Corrupt {
        key: key.to_string(),
        source,
    })
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
