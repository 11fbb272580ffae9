//! The segment log against a real JetStream: replacing a video is
//! idempotent, deleting removes it, and followers catch up.

use async_nats::jetstream;
use vidseek_bus::segment_log::{self, LogFollower};
use vidseek_protocol::rank::{SegmentKind, SegmentMeta, SegmentRecord};
use vidseek_protocol::subjects;
use vidseek_ranker::SegmentIndex;
use vidseek_tests::nats::NatsServer;

fn records(video: &str, count: u32) -> Vec<SegmentRecord> {
    (0..count)
        .map(|index| SegmentRecord {
            meta: SegmentMeta {
                segment_id: vidseek_protocol::rank::segment_id(video, index),
                video_id: video.into(),
                video_name: format!("{video}.mp4"),
                index,
                start: index as f64 * 2.0,
                end: index as f64 * 2.0 + 2.0,
                kind: SegmentKind::Shot,
                text: None,
            },
            text_vector: vec![0.1; 384],
            image_vector: Some(vec![0.2; 1280]),
            terms: vec![],
        })
        .collect()
}

#[tokio::test]
async fn replace_read_follow_and_delete() {
    let server = NatsServer::start();
    let js = jetstream::new(server.client().await);
    vidseek_bus::streams::ensure_all(&js, 1).await.unwrap();

    assert!(segment_log::read_video(&js, "va").await.unwrap().is_empty());

    // 300 segments need several messages; replacing twice must not duplicate.
    segment_log::replace_video(&js, 0, "va", "g1", records("va", 300))
        .await
        .unwrap();
    segment_log::replace_video(&js, 0, "va", "g1", records("va", 300))
        .await
        .unwrap();
    segment_log::replace_video(&js, 1, "vb", "g1", records("vb", 5))
        .await
        .unwrap();
    let read = segment_log::read_video(&js, "va").await.unwrap();
    assert_eq!(read.len(), 300);
    assert_eq!(read[299].meta.index, 299);

    let mut follower = LogFollower::open(&js, subjects::segments_of_shard(0))
        .await
        .unwrap();
    let mut shard0 = SegmentIndex::default();
    while !follower.caught_up() {
        shard0.apply(follower.next().await.unwrap().unwrap());
    }
    assert_eq!(shard0.len(), 300, "shard 0 holds only video va");

    // A live follower sees a re-ingest with fewer segments and a delete.
    segment_log::replace_video(&js, 0, "va", "g2", records("va", 3))
        .await
        .unwrap();
    while shard0.len() != 3 {
        shard0.apply(follower.next().await.unwrap().unwrap());
    }
    let purged = segment_log::remove_video(&js, 0, "va").await.unwrap();
    assert!(purged >= 2, "the delete marker and the parts were purged");
    while !shard0.is_empty() {
        shard0.apply(follower.next().await.unwrap().unwrap());
    }
    assert!(segment_log::read_video(&js, "va").await.unwrap().is_empty());
    assert_eq!(segment_log::read_video(&js, "vb").await.unwrap().len(), 5);
}
