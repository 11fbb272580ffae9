//! vidseek on a 3-node NATS cluster: stream replicas follow
//! `VIDSEEK_REPLICAS` on a running deployment, and a process started with
//! another shard count than the segment log's is refused with a message
//! naming the recorded count.

use std::process::Command;
use std::time::Duration;

use async_nats::jetstream;
use vidseek_bus::catalog::Catalog;
use vidseek_bus::streams::{self, Layout, StreamSetupError};
use vidseek_protocol::ingest::{VideoRecord, VideoStatus};
use vidseek_protocol::subjects;
use vidseek_tests::cluster::NatsCluster;
use vidseek_tests::nats::NatsServer;
use vidseek_tests::process::vidseek_bin;

const STREAMS: [&str; 3] = [
    subjects::INGEST_JOBS_STREAM,
    subjects::SEGMENTS_STREAM,
    "KV_vidseek_videos",
];

/// `(configured replicas, peers besides the leader)` of every stream.
async fn replicas(js: &jetstream::Context) -> Vec<(usize, usize)> {
    let mut found = vec![];
    for name in STREAMS {
        let mut stream = js.get_stream(name).await.expect("stream exists");
        let info = stream.info().await.expect("stream info");
        let peers = info.cluster.as_ref().map_or(0, |c| c.replicas.len());
        found.push((info.config.num_replicas, peers));
    }
    found
}

/// Polls until every stream has `expected` replicas: the followers join a
/// moment after the update is accepted.
async fn wait_for_replicas(js: &jetstream::Context, expected: Vec<(usize, usize)>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found = replicas(js).await;
        if found == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "streams have {found:?} (replicas, followers), expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn replicas_are_applied_to_existing_streams_on_a_cluster() {
    let cluster = NatsCluster::start(3);
    let client = cluster.client().await;
    cluster.wait_for_jetstream(&client).await;
    let js = jetstream::new(client);

    // A deployment that started on one replica...
    let single = Layout {
        replicas: None,
        shards: Some(2),
    };
    streams::configure(&js, single).await.expect("configure R1");
    assert_eq!(replicas(&js).await, vec![(1, 0); 3]);
    let catalog = Catalog::open(&js).await.expect("catalog");
    let record = VideoRecord {
        video_id: "vr3test".into(),
        name: "r3.mp4".into(),
        path: "/media/r3.mp4".into(),
        status: VideoStatus::Ready,
        progress: 1.0,
        error: None,
        duration: Some(1.0),
        segment_count: 1,
        generation: "g1".into(),
        updated_at_ms: 0,
    };
    catalog.put(&record).await.expect("put");

    // ...grown to three: every stream gets two followers, the data stays.
    let three = Layout {
        replicas: Some(3),
        shards: Some(2),
    };
    streams::configure(&js, three).await.expect("configure R3");
    wait_for_replicas(&js, vec![(3, 2); 3]).await;
    // Idempotent: a second process starting with the same settings changes
    // nothing and succeeds; one without VIDSEEK_REPLICAS keeps R3.
    streams::configure(&js, three)
        .await
        .expect("configure R3 again");
    streams::configure(&js, single)
        .await
        .expect("configure unset");
    assert_eq!(replicas(&js).await, vec![(3, 2); 3]);
    let read = catalog
        .get("vr3test")
        .await
        .expect("get")
        .expect("record kept");
    assert_eq!(read.name, "r3.mp4");
}

#[tokio::test]
async fn more_replicas_than_servers_is_a_clear_error() {
    let server = NatsServer::start();
    let js = jetstream::new(server.client().await);
    let err = streams::configure(
        &js,
        Layout {
            replicas: Some(3),
            shards: None,
        },
    )
    .await
    .expect_err("R3 on one server");
    assert!(
        matches!(err, StreamSetupError::Stream { .. }),
        "unexpected error: {err}"
    );
}

#[tokio::test]
async fn a_changed_shard_count_is_refused_naming_the_recorded_one() {
    let server = NatsServer::start();
    let js = jetstream::new(server.client().await);
    let layout = |shards| Layout {
        replicas: None,
        shards: Some(shards),
    };
    streams::configure(&js, layout(2))
        .await
        .expect("first start");
    streams::configure(&js, layout(2))
        .await
        .expect("same count");
    // The gateway does not route by shard and is not held to a count.
    streams::configure(&js, Layout::default())
        .await
        .expect("gateway");
    let err = streams::configure(&js, layout(3))
        .await
        .expect_err("3 shards over a 2-shard log");
    assert!(
        matches!(
            err,
            StreamSetupError::ShardMismatch {
                recorded: 2,
                requested: 3
            }
        ),
        "{err}"
    );

    // The same through the binary: a ranker started with another count
    // exits at once, and says which count to use.
    let output = tokio::task::spawn_blocking({
        let url = server.url();
        move || {
            Command::new(vidseek_bin())
                .args(["worker", "--role", "ranker", "--shard", "0"])
                .env("VIDSEEK_NATS_URL", url)
                .env("VIDSEEK_SHARDS", "4")
                .env("NO_COLOR", "1")
                .output()
                .expect("run vidseek")
        }
    });
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("vidseek exits")
        .expect("join");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "started anyway:\n{stderr}");
    assert!(
        stderr.contains("written with 2 shards") && stderr.contains("VIDSEEK_SHARDS=2"),
        "message does not name the recorded count:\n{stderr}"
    );
}
