//! The video catalog against a real JetStream: a listing taken while
//! records are being rewritten (ingest progress) names every video once, and
//! concurrent updates of one record are all kept.

use async_nats::jetstream;
use std::collections::HashSet;
use vidseek_bus::catalog::Catalog;
use vidseek_protocol::ingest::{VideoRecord, VideoStatus};
use vidseek_tests::nats::NatsServer;

fn record(index: usize, progress: f32) -> VideoRecord {
    VideoRecord {
        video_id: format!("v{index:04}"),
        name: format!("clip{index:04}.mp4"),
        path: format!("clip{index:04}.mp4"),
        status: VideoStatus::Processing,
        progress,
        error: None,
        duration: None,
        segment_count: 0,
        generation: "g1".into(),
        updated_at_ms: 0,
    }
}

/// A catalog on a fresh JetStream (the server lives as long as it is held).
async fn catalog() -> (NatsServer, Catalog) {
    let server = NatsServer::start();
    let js = jetstream::new(server.client().await);
    vidseek_bus::streams::ensure_all(&js, 1).await.unwrap();
    let catalog = Catalog::open(&js).await.unwrap();
    (server, catalog)
}

#[tokio::test]
async fn listing_during_progress_writes_names_each_video_once() {
    const VIDEOS: usize = 40;
    let (_server, catalog) = catalog().await;
    for index in 0..VIDEOS {
        catalog.put(&record(index, 0.0)).await.unwrap();
    }

    let writer = {
        let catalog = catalog.clone();
        tokio::spawn(async move {
            for step in 1.. {
                for index in 0..VIDEOS {
                    catalog
                        .put(&record(index, step as f32 / 1e4))
                        .await
                        .unwrap();
                }
            }
        })
    };
    for _ in 0..30 {
        let videos = catalog.list().await.unwrap();
        let ids: HashSet<_> = videos.iter().map(|v| v.video_id.as_str()).collect();
        assert_eq!(ids.len(), VIDEOS, "every video is listed");
        assert_eq!(videos.len(), VIDEOS, "no video is listed twice");
    }
    writer.abort();
}

#[tokio::test]
async fn concurrent_updates_of_one_record_are_all_kept() {
    // An ingest's heartbeat and its outcome write the same record at once;
    // a read followed by a put would let one undo the other.
    const WRITERS: u32 = 16;
    let (_server, catalog) = catalog().await;
    catalog.put(&record(0, 0.0)).await.unwrap();
    let writers: Vec<_> = (0..WRITERS)
        .map(|_| {
            let catalog = catalog.clone();
            tokio::spawn(async move {
                catalog
                    .update("v0000", |r| {
                        r.segment_count += 1;
                        true
                    })
                    .await
                    .unwrap()
            })
        })
        .collect();
    for writer in writers {
        assert!(writer.await.unwrap(), "each update is written");
    }
    let stored = catalog.get("v0000").await.unwrap().unwrap();
    assert_eq!(stored.segment_count, WRITERS, "no update undid another");
    // A change that declines writes nothing; an unknown record is left alone.
    assert!(!catalog.update("v0000", |_| false).await.unwrap());
    assert!(!catalog.update("v9999", |_| true).await.unwrap());
    assert!(catalog.get("v9999").await.unwrap().is_none());
}
