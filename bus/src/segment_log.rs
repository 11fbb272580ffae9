//! The segment log: the durable source of truth for the index.
//!
//! Ingest workers append [`SegmentLogEntry`] messages (MessagePack) to
//! `vidseek.v1.segments.{shard}.{video}`; rankers replay their shard's
//! subjects into their own index with a [`LogFollower`] and keep following
//! the log, and the gateway replays one video's subjects to list its
//! segments ([`read_video`]). Replaying the same entries twice gives the same
//! segments, so a redelivered ingest job that republishes its parts changes
//! nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use vidseek_protocol::codec::{self, Format};
use vidseek_protocol::rank::{SegmentLogEntry, SegmentRecord};
use vidseek_protocol::subjects;

use crate::streams::MAX_SEGMENT_MESSAGE_BYTES;

#[derive(Debug, thiserror::Error)]
pub enum SegmentLogError {
    #[error("segment log unavailable: {0}")]
    Stream(#[from] jetstream::context::GetStreamError),
    #[error("cannot read the segment log: {0}")]
    Consumer(#[from] jetstream::stream::ConsumerError),
    #[error("cannot read the segment log: {0}")]
    Messages(#[from] consumer::StreamError),
    #[error("cannot read the segment log: {0}")]
    Message(#[from] consumer::pull::OrderedError),
    #[error("cannot append to the segment log: {0}")]
    Publish(#[from] jetstream::context::PublishError),
    #[error("cannot purge the segment log: {0}")]
    Purge(#[from] stream::PurgeError),
    #[error("cannot read the segment log's state: {0}")]
    Info(#[from] stream::InfoError),
    #[error("corrupt segment log entry: {0}")]
    Corrupt(#[from] codec::CodecError),
    #[error("a single segment is larger than a segment-log message ({0} bytes)")]
    SegmentTooLarge(usize),
}

/// One video's segments as its log entries describe them: a new generation
/// replaces them all, the same generation and part replaces that part, and a
/// delete clears them (the rule every ranker's index applies too).
#[derive(Debug, Clone, Default)]
struct VideoSegments {
    generation: String,
    parts: BTreeMap<u32, Vec<SegmentRecord>>,
}

impl VideoSegments {
    fn apply(&mut self, entry: SegmentLogEntry) {
        match entry {
            SegmentLogEntry::Delete { .. } => *self = VideoSegments::default(),
            SegmentLogEntry::Upsert {
                generation,
                part,
                segments,
                ..
            } => {
                if self.generation != generation {
                    self.parts.clear();
                    self.generation = generation;
                }
                self.parts.insert(part, segments);
            }
        }
    }

    /// The segments in segment order.
    fn into_segments(self) -> Vec<SegmentRecord> {
        let mut segments: Vec<SegmentRecord> = self.parts.into_values().flatten().collect();
        segments.sort_by_key(|s| s.meta.index);
        segments
    }
}

/// Where the segment log stands: which incarnation of the stream (its
/// creation time changes when it is deleted and created again) and the
/// sequence numbers it holds. A ranker's snapshot names the incarnation and
/// the last sequence it applied; one that does not fit is stale.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogPosition {
    pub created_unix_ns: i64,
    pub first_sequence: u64,
    pub last_sequence: u64,
}

/// The segment log's current [`LogPosition`].
pub async fn position(js: &jetstream::Context) -> Result<LogPosition, SegmentLogError> {
    let mut stream = js.get_stream(subjects::SEGMENTS_STREAM).await?;
    let info = stream.info().await?;
    Ok(LogPosition {
        created_unix_ns: i64::try_from(info.created.unix_timestamp_nanos()).unwrap_or(i64::MAX),
        first_sequence: info.state.first_sequence,
        last_sequence: info.state.last_sequence,
    })
}

/// Follows the log entries matching `filter` from the start (or after a
/// given sequence): the entries present when it was opened come first, and
/// [`LogFollower::caught_up`] says when they have all been delivered.
///
/// The ordered consumer behind it is ephemeral: a restarted nats-server, or
/// a lost cluster node, takes it away, and the client would only notice
/// after its pull request expires (30 s or more). So the follower watches
/// the client's reconnects and, after one, reopens its consumer after the
/// last entry it delivered: a ranker is current again seconds after the
/// bus is.
pub struct LogFollower {
    js: jetstream::Context,
    filter: String,
    messages: consumer::pull::Ordered,
    backlog: u64,
    delivered: u64,
    last_sequence: u64,
    stats: Arc<async_nats::Statistics>,
    /// The client's connect count when the consumer was (re)opened.
    connects: u64,
    /// The consumer failed or ended (its server left the cluster, a
    /// heartbeat went missing): reopened before anything else is read.
    broken: bool,
    /// Whether a failed or ended consumer is reopened ([`Self::resuming`])
    /// rather than reported.
    resume: bool,
}

/// How often a follower waiting for entries checks for a reconnect.
const RECONNECT_CHECK: Duration = Duration::from_secs(1);

impl LogFollower {
    pub async fn open(js: &jetstream::Context, filter: String) -> Result<Self, SegmentLogError> {
        Self::open_after(js, filter, 0).await
    }

    /// Follows only the entries after stream sequence `applied` (0: all),
    /// for a reader that restored everything up to it from elsewhere.
    pub async fn open_after(
        js: &jetstream::Context,
        filter: String,
        applied: u64,
    ) -> Result<Self, SegmentLogError> {
        let stats = js.client().statistics();
        let connects = stats.connects.load(Ordering::Relaxed);
        let (messages, backlog) = Self::consume(js, &filter, applied).await?;
        Ok(LogFollower {
            js: js.clone(),
            filter,
            messages,
            backlog,
            delivered: 0,
            last_sequence: applied,
            stats,
            connects,
            broken: false,
            resume: false,
        })
    }

    /// An ordered consumer of `filter` after sequence `applied`, and how many
    /// entries it has to deliver.
    async fn consume(
        js: &jetstream::Context,
        filter: &str,
        applied: u64,
    ) -> Result<(consumer::pull::Ordered, u64), SegmentLogError> {
        let stream = js.get_stream(subjects::SEGMENTS_STREAM).await?;
        let deliver_policy = match applied {
            0 => consumer::DeliverPolicy::All,
            applied => consumer::DeliverPolicy::ByStartSequence {
                start_sequence: applied + 1,
            },
        };
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: filter.to_owned(),
                deliver_policy,
                ..Default::default()
            })
            .await?;
        let backlog = consumer.cached_info().num_pending;
        Ok((consumer.messages().await?, backlog))
    }

    /// A follower that never ends: a consumer that fails or ends is
    /// reopened after the last entry delivered, as often as it takes (what
    /// a ranker needs: on a cluster that lost the node holding its
    /// consumer, a follower whose client stayed connected elsewhere would
    /// otherwise stop following for good). Without it, [`Self::next`]
    /// reports the failure, for bounded reads.
    pub fn resuming(mut self) -> Self {
        self.resume = true;
        self
    }

    /// After a reconnect, a fresh consumer after the last entry delivered.
    async fn reopen_after_reconnect(&mut self) {
        if self.stats.connects.load(Ordering::Relaxed) != self.connects {
            self.reopen("reconnected to NATS").await;
        }
    }

    /// A fresh consumer after the last entry delivered, so nothing is read
    /// twice or missed. On failure (the cluster is still electing, the
    /// server starting) the old one is kept, the follower stays `broken`
    /// if it was, and the next check tries again.
    async fn reopen(&mut self, why: &str) {
        let connects = self.stats.connects.load(Ordering::Relaxed);
        match Self::consume(&self.js, &self.filter, self.last_sequence).await {
            Ok((messages, pending)) => {
                tracing::info!(
                    filter = %self.filter,
                    after = self.last_sequence,
                    why,
                    "following the segment log again"
                );
                self.messages = messages;
                self.connects = connects;
                self.broken = false;
                // A follower still replaying has `pending` entries to go.
                if !self.caught_up() {
                    self.backlog = self.delivered + pending;
                }
            }
            Err(err) => {
                tracing::warn!(filter = %self.filter, error = %err, why, "cannot reopen the segment log yet");
            }
        }
    }

    /// The stream sequence of the last entry delivered (or the one it was
    /// opened after).
    pub fn last_sequence(&self) -> u64 {
        self.last_sequence
    }

    /// True once every entry that existed at [`LogFollower::open`] was read.
    pub fn caught_up(&self) -> bool {
        self.delivered >= self.backlog
    }

    /// The next entry; waits for new ones once caught up.
    /// A [`Self::resuming`] follower reopens a consumer that failed or
    /// ended; any other reports it.
    pub async fn next(&mut self) -> Option<Result<SegmentLogEntry, SegmentLogError>> {
        let message = loop {
            if self.broken {
                self.reopen("the consumer failed").await;
                if self.broken {
                    tokio::time::sleep(RECONNECT_CHECK).await;
                    continue;
                }
            }
            // Dropping a pending `next()` of the message stream loses
            // nothing: the stream keeps its state between polls.
            tokio::select! {
                next = self.messages.next() => match next {
                    Some(Ok(message)) => break message,
                    Some(Err(err)) if !self.resume => return Some(Err(err.into())),
                    None if !self.resume => return None,
                    Some(Err(err)) => {
                        tracing::warn!(filter = %self.filter, error = %err, "the segment log consumer failed; reopening it");
                        self.broken = true;
                    }
                    None => {
                        tracing::warn!(filter = %self.filter, "the segment log consumer ended; reopening it");
                        self.broken = true;
                    }
                },
                () = tokio::time::sleep(RECONNECT_CHECK) => self.reopen_after_reconnect().await,
            }
        };
        self.delivered += 1;
        if let Ok(info) = message.info() {
            self.last_sequence = info.stream_sequence;
            // The server's own count is exact even if entries were appended
            // or purged since the consumer was created.
            if info.pending == 0 {
                self.backlog = self.delivered;
            }
        }
        Some(codec::decode(Format::MsgPack, &message.payload).map_err(SegmentLogError::from))
    }
}

/// Replays one video's entries and returns its current segments.
pub async fn read_video(
    js: &jetstream::Context,
    video_id: &str,
) -> Result<Vec<SegmentRecord>, SegmentLogError> {
    let mut follower = LogFollower::open(js, subjects::segments_of_video(video_id)).await?;
    let mut video = VideoSegments::default();
    while !follower.caught_up() {
        match follower.next().await {
            Some(entry) => video.apply(entry?),
            None => break,
        }
    }
    Ok(video.into_segments())
}

/// Replaces a video's segments in the log: its old entries are purged, a
/// delete marker tells live rankers to drop it, and the new segments follow
/// in parts small enough for one message each. Publishing is acknowledged
/// by JetStream, so once this returns the segments are durable.
pub async fn replace_video(
    js: &jetstream::Context,
    shard: u32,
    video_id: &str,
    generation: &str,
    segments: Vec<SegmentRecord>,
) -> Result<(), SegmentLogError> {
    remove_video(js, shard, video_id).await?;
    let parts = split_into_parts(segments)?;
    let total = parts.len() as u32;
    for (part, segments) in parts.into_iter().enumerate() {
        let entry = SegmentLogEntry::Upsert {
            video_id: video_id.to_string(),
            generation: generation.to_string(),
            part: part as u32,
            parts: total,
            segments,
        };
        publish(js, shard, video_id, &entry).await?;
    }
    Ok(())
}

/// Removes a video from the log and from every live ranker. Returns how many
/// entries were purged.
pub async fn remove_video(
    js: &jetstream::Context,
    shard: u32,
    video_id: &str,
) -> Result<u64, SegmentLogError> {
    let stream = js.get_stream(subjects::SEGMENTS_STREAM).await?;
    let purged = stream
        .purge()
        .filter(subjects::segments_of_video(video_id))
        .await?
        .purged;
    let delete = SegmentLogEntry::Delete {
        video_id: video_id.to_string(),
    };
    publish(js, shard, video_id, &delete).await?;
    Ok(purged)
}

async fn publish(
    js: &jetstream::Context,
    shard: u32,
    video_id: &str,
    entry: &SegmentLogEntry,
) -> Result<(), SegmentLogError> {
    let payload = codec::encode(Format::MsgPack, entry)?;
    js.publish(subjects::segments(shard, video_id), payload.into())
        .await?
        .await?;
    Ok(())
}

/// Groups segments into parts that each fit one log message, keeping order.
fn split_into_parts(
    segments: Vec<SegmentRecord>,
) -> Result<Vec<Vec<SegmentRecord>>, SegmentLogError> {
    // Leave room for the envelope (ids, generation, part numbers).
    let budget = MAX_SEGMENT_MESSAGE_BYTES as usize - 4096;
    let mut parts = vec![];
    let mut current = vec![];
    let mut current_bytes = 0;
    for segment in segments {
        let size = encoded_size(&segment);
        if size > budget {
            return Err(SegmentLogError::SegmentTooLarge(size));
        }
        if current_bytes + size > budget {
            parts.push(std::mem::take(&mut current));
            current_bytes = 0;
        }
        current_bytes += size;
        current.push(segment);
    }
    if !current.is_empty() || parts.is_empty() {
        parts.push(current);
    }
    Ok(parts)
}

/// MessagePack size of a segment: at most 5 bytes per f32, plus the text
/// and its terms (each with a few bytes of framing).
fn encoded_size(segment: &SegmentRecord) -> usize {
    let floats = segment.text_vector.len() + segment.image_vector.as_ref().map_or(0, Vec::len);
    let text = segment.meta.text.as_ref().map_or(0, String::len)
        + segment.terms.iter().map(|t| t.len() + 5).sum::<usize>();
    floats * 5 + text + segment.meta.video_name.len() + 256
}

#[cfg(test)]
mod tests {
    use super::*;
    use vidseek_protocol::rank::{SegmentKind, SegmentMeta};

    fn record(video: &str, index: u32, dim: usize) -> SegmentRecord {
        SegmentRecord {
            meta: SegmentMeta {
                segment_id: format!("{video}-{index}"),
                video_id: video.into(),
                video_name: "a.mp4".into(),
                index,
                start: index as f64,
                end: index as f64 + 1.0,
                kind: SegmentKind::Shot,
                text: None,
            },
            text_vector: vec![0.5; dim],
            image_vector: None,
            terms: vec![],
        }
    }

    fn upsert(generation: &str, part: u32, indices: &[u32]) -> SegmentLogEntry {
        SegmentLogEntry::Upsert {
            video_id: "a".into(),
            generation: generation.into(),
            part,
            parts: 2,
            segments: indices.iter().map(|&i| record("a", i, 2)).collect(),
        }
    }

    fn indices(video: &VideoSegments) -> Vec<u32> {
        let segments = video.clone().into_segments();
        segments.iter().map(|s| s.meta.index).collect()
    }

    #[test]
    fn one_video_replays_as_rankers_apply_it() {
        let mut video = VideoSegments::default();
        video.apply(upsert("g1", 1, &[2]));
        video.apply(upsert("g1", 0, &[0, 1]));
        video.apply(upsert("g1", 0, &[0, 1]));
        assert_eq!(indices(&video), vec![0, 1, 2]);
        video.apply(upsert("g2", 0, &[0]));
        assert_eq!(indices(&video), vec![0]);
        video.apply(SegmentLogEntry::Delete {
            video_id: "a".into(),
        });
        assert!(indices(&video).is_empty());
    }

    #[test]
    fn parts_fit_in_one_message() {
        let segments: Vec<_> = (0..500).map(|i| record("a", i, 1664)).collect();
        let parts = split_into_parts(segments).unwrap();
        assert!(parts.len() > 1);
        for part in &parts {
            let entry = SegmentLogEntry::Upsert {
                video_id: "a".into(),
                generation: "g".into(),
                part: 0,
                parts: 1,
                segments: part.clone(),
            };
            let bytes = codec::encode(Format::MsgPack, &entry).unwrap();
            assert!(bytes.len() < MAX_SEGMENT_MESSAGE_BYTES as usize);
        }
        assert_eq!(parts.iter().map(Vec::len).sum::<usize>(), 500);
        assert_eq!(split_into_parts(vec![]).unwrap().len(), 1);
    }
}
