//! Every NATS subject, stream and bucket name vidseek uses, in one place.
//!
//! Subjects are versioned (`vidseek.v1....`) so that a future incompatible
//! protocol can run beside this one on the same cluster.

/// Public: `{"text": "...", "k": 10}` → `{"results": [...]}` (JSON or MessagePack).
pub const SEARCH_TEXT: &str = "vidseek.v1.search.text";
/// Public: raw image bytes, or JSON `{"image_base64": "..."}` → `{"results": [...]}`.
pub const SEARCH_IMAGE: &str = "vidseek.v1.search.image";
/// Public: any search as `POST /api/v1/search` takes it (text, picture,
/// both, `like`, filters, grouping) → `{"results": [...]}`.
pub const SEARCH: &str = "vidseek.v1.search";
/// Public: `{"video_id", "text"|"image_base64"|"like"}` → every segment of
/// the video with its score (`GET /api/v1/videos/{id}/scores`).
pub const SCORES: &str = "vidseek.v1.scores";
/// Internal: a [`crate::query::SearchRequest`] whose reply inbox receives a
/// stream of [`crate::query::SearchEvent`]s (one partial per shard, then done).
pub const SEARCH_STREAM: &str = "vidseek.v1.search.stream";
/// Internal: readiness probe answered by the query stage once encoders and
/// every ranker shard answer.
pub const HEALTH: &str = "vidseek.v1.health";
/// Public: `{"path": "/abs/file.mp4"}` → `{"video_id", "status"}`.
pub const INGEST: &str = "vidseek.v1.ingest";
/// Deletes a video everywhere (segments, thumbnails, catalog record); served
/// by the ingest workers because they own the library and know the shard count.
pub const INGEST_DELETE: &str = "vidseek.v1.ingest.delete";

/// Internal: text → vectors, served by encoder workers.
pub const ENCODE_TEXT: &str = "vidseek.v1.encode.text";
/// Internal: images → vectors, served by encoder workers.
pub const ENCODE_IMAGE: &str = "vidseek.v1.encode.image";

/// Internal: rank a query vector against one shard's segments.
pub fn rank(shard: u32) -> String {
    format!("vidseek.v1.rank.{shard}")
}

/// Internal: score every segment of one video held by `shard`.
pub fn rank_scores(shard: u32) -> String {
    format!("vidseek.v1.rank.{shard}.scores")
}

/// Internal: one stored segment of `shard`, with its vectors.
pub fn rank_segment(shard: u32) -> String {
    format!("vidseek.v1.rank.{shard}.segment")
}

/// Every ranker subject of every shard (permissions).
pub const RANK_ALL: &str = "vidseek.v1.rank.>";

/// JetStream work queue holding ingest jobs until a worker has stored the result.
pub const INGEST_JOBS_STREAM: &str = "VIDSEEK_INGEST_JOBS";
pub const INGEST_JOBS_SUBJECT: &str = "vidseek.v1.jobs.ingest";
/// Durable consumer shared by every ingest worker (work-queue semantics).
pub const INGEST_JOBS_CONSUMER: &str = "ingest-workers";

/// JetStream stream holding the segment log, the source of truth for the index.
pub const SEGMENTS_STREAM: &str = "VIDSEEK_SEGMENTS";

/// Segment log subject for one video on one shard. One subject per video lets a
/// re-ingest or a delete purge exactly that video's records.
pub fn segments(shard: u32, video_id: &str) -> String {
    format!("vidseek.v1.segments.{shard}.{video_id}")
}

/// Filter matching every record of one shard (what a ranker replays).
pub fn segments_of_shard(shard: u32) -> String {
    format!("vidseek.v1.segments.{shard}.>")
}

/// Filter matching one video's records on every shard.
pub fn segments_of_video(video_id: &str) -> String {
    format!("vidseek.v1.segments.*.{video_id}")
}

/// JetStream key-value bucket with one [`crate::ingest::VideoRecord`] per video.
pub const VIDEOS_BUCKET: &str = "vidseek_videos";

/// Service names announced through the NATS service API (`$SRV.INFO`).
pub const SERVICE_ENCODER: &str = "vidseek-encoder";
pub const SERVICE_RANKER: &str = "vidseek-ranker";
pub const SERVICE_QUERY: &str = "vidseek-query";
pub const SERVICE_INGEST: &str = "vidseek-ingest";

/// Header carrying the query id so logs of every stage can be joined.
pub const HEADER_QUERY_ID: &str = "Vidseek-Query-Id";
/// Header set on replies that carry an [`crate::ErrorBody`] instead of a result.
pub const HEADER_ERROR: &str = "Vidseek-Error";
/// Header carrying a query's deadline (milliseconds since the Unix epoch)
/// from the gateway through the query stage to encoders and rankers: work
/// whose deadline has passed is refused with `timeout` instead of done.
pub const HEADER_DEADLINE: &str = "Vidseek-Deadline";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shard_subjects_are_distinct_and_filters_match_them() {
        assert_eq!(rank(3), "vidseek.v1.rank.3");
        assert_eq!(segments(1, "v1a2b"), "vidseek.v1.segments.1.v1a2b");
        assert!(segments_of_shard(1).starts_with("vidseek.v1.segments.1."));
        assert!(segments_of_video("v1a2b").ends_with(".v1a2b"));
    }
}
