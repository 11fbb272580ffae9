//! vidseek on a 3-node NATS cluster: stream replicas follow
//! `VIDSEEK_REPLICAS` on a running deployment, and a process started with
//! another shard count than the segment log's is refused with a message
//! naming the recorded count; `vidseek status` shows what discovery and
//! JetStream report.

use std::process::Command;
use std::time::Duration;

use async_nats::jetstream;
use vidseek_bus::catalog::Catalog;
use vidseek_bus::streams::{self, Layout, StreamSetupError};
use vidseek_protocol::ingest::{VideoRecord, VideoStatus};
use vidseek_protocol::subjects;
use vidseek_tests::cluster::{NatsCluster, replicas, wait_for_replicas};
use vidseek_tests::nats::NatsServer;
use vidseek_tests::process::{sample, vidseek_bin};
use vidseek_tests::stack::EmbeddedStack;

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
    assert_eq!(replicas(&js).await, vec![(1, 0); 5]);
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
    wait_for_replicas(&js, vec![(3, 2); 5]).await;
    // Idempotent: a second process starting with the same settings changes
    // nothing and succeeds; one without VIDSEEK_REPLICAS keeps R3.
    streams::configure(&js, three)
        .await
        .expect("configure R3 again");
    streams::configure(&js, single)
        .await
        .expect("configure unset");
    assert_eq!(replicas(&js).await, vec![(3, 2); 5]);
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
    // A segment log without a recorded count (created by a process that
    // does not route) takes the first count a routing process brings.
    streams::ensure_all(&js, 1)
        .await
        .expect("create unrecorded");
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

/// `vidseek status` against the embedded stack: every role is found through
/// discovery, each ranker shard reports its segments and readiness, the
/// encoder its model pack, and the streams and ingest queue are listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_embedded_stack() {
    let media = tempfile::tempdir().expect("media dir");
    let video = media.path().join("photos.mp4");
    std::fs::copy(sample("photos.mp4"), &video).expect("copy sample");
    let stack = EmbeddedStack::start(media.path());
    let http = reqwest::Client::new();
    let id = stack.ingest_and_wait(&http, &video).await;
    let record: serde_json::Value = http
        .get(stack.url(&format!("/api/v1/videos/{id}")))
        .send()
        .await
        .expect("GET video")
        .json()
        .await
        .expect("video JSON");
    let segment_count = record["segment_count"].as_u64().expect("segment_count");

    let status = run_status(&stack, &["status", "--json"]).await;
    let status: serde_json::Value = serde_json::from_str(&status).expect("status JSON");
    assert_eq!(status["health"]["Ok"]["shards_total"], 2, "{status:#}");
    assert_eq!(status["health"]["Ok"]["shards_ready"], 2, "{status:#}");
    let instances = status["instances"].as_array().expect("instances");
    let of_role = |role: &str| -> Vec<&serde_json::Value> {
        instances.iter().filter(|i| i["role"] == role).collect()
    };
    for role in ["encoder", "query", "ingest"] {
        assert_eq!(of_role(role).len(), 1, "{role}: {status:#}");
    }
    let encoder = of_role("encoder")[0];
    assert!(
        encoder["model_pack"]
            .as_str()
            .is_some_and(|p| !p.is_empty()),
        "{encoder}"
    );
    assert_eq!(encoder["version"], env!("CARGO_PKG_VERSION"));
    let rankers = of_role("ranker");
    let mut shards: Vec<u64> = rankers
        .iter()
        .map(|r| r["shard"].as_u64().unwrap())
        .collect();
    shards.sort();
    assert_eq!(shards, [0, 1], "{status:#}");
    assert!(rankers.iter().all(|r| r["ready"] == true), "{status:#}");
    let indexed: u64 = rankers
        .iter()
        .map(|r| r["segments"].as_u64().unwrap())
        .sum();
    assert_eq!(indexed, segment_count, "{status:#}");
    let streams: Vec<(&str, u64)> = status["streams"]
        .as_array()
        .expect("streams")
        .iter()
        .map(|s| (s["name"].as_str().unwrap(), s["replicas"].as_u64().unwrap()))
        .collect();
    assert_eq!(
        streams,
        [
            (subjects::INGEST_JOBS_STREAM, 1),
            (subjects::SEGMENTS_STREAM, 1),
            ("KV_vidseek_videos", 1),
            ("OBJ_vidseek_thumbs", 1),
            ("OBJ_vidseek_uploads", 1)
        ]
    );
    assert_eq!(status["ingest_queue"]["pending"], 0, "{status:#}");
    assert_eq!(status["ingest_queue"]["ack_pending"], 0, "{status:#}");

    let table = run_status(&stack, &["status"]).await;
    eprintln!("{table}");
    assert!(table.starts_with("search: ready"), "{table}");
    for needle in [
        "ROLE",
        "ranker",
        "encoder",
        "VIDSEEK_SEGMENTS",
        "ingest queue: 0 waiting",
    ] {
        assert!(table.contains(needle), "{needle:?} missing:\n{table}");
    }
}

/// Runs `vidseek ARGS` against the stack's NATS; returns its stdout.
async fn run_status(stack: &EmbeddedStack, args: &[&str]) -> String {
    let mut command = Command::new(vidseek_bin());
    command
        .args(args)
        .env("VIDSEEK_NATS_URL", &stack.nats_url)
        .env("VIDSEEK_DATA_DIR", stack.data_dir.path());
    let output = tokio::task::spawn_blocking(move || command.output().expect("run vidseek"));
    let output = tokio::time::timeout(Duration::from_secs(60), output)
        .await
        .expect("vidseek status exits")
        .expect("join");
    assert!(
        output.status.success(),
        "vidseek {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8 output")
}
