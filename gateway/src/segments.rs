//! One video's segments, as the segment list and the seed library route need
//! them.
//!
//! Reading them means replaying the video's part of the segment log, which
//! costs a JetStream consumer per call; the seed page asks for up to ten
//! segments per search, mostly of the same few videos. Segments of a ready
//! video only change with a new generation (a re-ingest), so they are cached
//! under the catalog record's generation and revision time.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use vidseek_protocol::ingest::{VideoRecord, VideoStatus};
use vidseek_protocol::rank::SegmentMeta;

use crate::AppState;
use crate::error::ApiError;

/// Videos whose segments are kept; the whole cache is dropped when full,
/// which is simpler than LRU and costs one replay per video afterwards.
const MAX_CACHED_VIDEOS: usize = 256;

/// Generation and revision time of the catalog record the segments belong to.
type CacheKey = (String, u64);
type Cached = (CacheKey, Arc<Vec<SegmentMeta>>);

#[derive(Clone, Default)]
pub struct SegmentCache {
    videos: Arc<Mutex<HashMap<String, Cached>>>,
}

impl SegmentCache {
    fn get(&self, video_id: &str, key: &CacheKey) -> Option<Arc<Vec<SegmentMeta>>> {
        let videos = self.videos.lock().unwrap_or_else(|p| p.into_inner());
        videos
            .get(video_id)
            .filter(|(cached, _)| cached == key)
            .map(|(_, segments)| segments.clone())
    }

    fn put(&self, video_id: &str, key: CacheKey, segments: Arc<Vec<SegmentMeta>>) {
        let mut videos = self.videos.lock().unwrap_or_else(|p| p.into_inner());
        if videos.len() >= MAX_CACHED_VIDEOS && !videos.contains_key(video_id) {
            videos.clear();
        }
        videos.insert(video_id.to_string(), (key, segments));
    }
}

/// The catalog record of `video_id` (404 when unknown) and its segments in order.
pub async fn video_segments(
    state: &AppState,
    video_id: &str,
) -> Result<(VideoRecord, Arc<Vec<SegmentMeta>>), ApiError> {
    let record = find_video(state, video_id).await?;
    let key = (record.generation.clone(), record.updated_at_ms);
    let cacheable = record.status == VideoStatus::Ready;
    if cacheable && let Some(segments) = state.segments.get(video_id, &key) {
        return Ok((record, segments));
    }
    let segments: Arc<Vec<SegmentMeta>> = Arc::new(
        vidseek_bus::segment_log::read_video(&state.js, video_id)
            .await?
            .into_iter()
            .map(|record| record.meta)
            .collect(),
    );
    if cacheable {
        state.segments.put(video_id, key, segments.clone());
    }
    Ok((record, segments))
}

/// The catalog record, or `not_found`. Ids are validated by the catalog, so
/// anything that could escape a path or a subject is simply unknown.
pub async fn find_video(state: &AppState, video_id: &str) -> Result<VideoRecord, ApiError> {
    state
        .catalog
        .get(video_id)
        .await?
        .ok_or_else(|| ApiError::not_found(format!("no video {video_id:?}")))
}
