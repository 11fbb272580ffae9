//! A ranker restarts from its snapshot against a real JetStream: it loads
//! the index, follows only the log's tail (a delete and a new video among
//! it) and answers as a ranker that replayed everything would; a corrupt
//! snapshot is refused and the whole log replayed instead.

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream;
use tokio_util::sync::CancellationToken;
use vidseek_bus::segment_log;
use vidseek_protocol::encode::Calibration;
use vidseek_protocol::error::{ErrorBody, ErrorCode};
use vidseek_protocol::rank::{
    KindCalibration, RankRequest, RankResponse, SegmentKind, SegmentLogEntry, SegmentMeta,
    SegmentRecord, Space,
};
use vidseek_protocol::subjects;
use vidseek_ranker::{RankerConfig, SegmentIndex, top_k};
use vidseek_tests::nats::NatsServer;

const DIM: usize = 8;
const SEGMENTS: u32 = 30;

/// Deterministic unit vectors per video and segment.
fn vector(video: &str, index: u32) -> Vec<f32> {
    let seed = video.bytes().fold(index as u64 + 1, |h, b| {
        h.wrapping_mul(31).wrapping_add(b as u64)
    });
    let v: Vec<f32> = (0..DIM)
        .map(|d| {
            ((seed.wrapping_mul(2654435761).wrapping_add(d as u64 * 97)) % 1000) as f32 - 500.0
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.into_iter().map(|x| x / norm).collect()
}

fn records(video: &str) -> Vec<SegmentRecord> {
    (0..SEGMENTS)
        .map(|index| {
            let cue = index % 3 == 0;
            SegmentRecord {
                meta: SegmentMeta {
                    segment_id: vidseek_protocol::rank::segment_id(video, index),
                    video_id: video.into(),
                    video_name: format!("{video}.mp4"),
                    index,
                    start: index as f64,
                    end: index as f64 + 1.0,
                    kind: if cue {
                        SegmentKind::Subtitle
                    } else {
                        SegmentKind::Shot
                    },
                    text: cue.then(|| format!("{video} says {index}")),
                },
                text_vector: vector(video, index),
                image_vector: None,
                terms: if cue {
                    vec![format!("word{}", index % 4), video.into()]
                } else {
                    vec![]
                },
            }
        })
        .collect()
}

fn request(vector: Vec<f32>, terms: &[&str]) -> RankRequest {
    RankRequest {
        space: Space::Text,
        vector,
        k: 10,
        calibration: KindCalibration {
            shot: Calibration { a: 8.0, b: -4.0 },
            subtitle: Calibration { a: 5.0, b: -2.0 },
            ocr: None,
        },
        min_score: 0.0,
        terms: terms.iter().map(|t| t.to_string()).collect(),
        filter: Default::default(),
        exclude: vec![],
        group_by_video: false,
        blend: None,
    }
}

fn requests() -> Vec<RankRequest> {
    vec![
        request(vector("v0", 4), &[]),
        request(vector("v1", 7), &[]),
        request(vector("v5", 2), &[]),
        request(vector("v3", 11), &["word2"]),
        request(vector("v2", 1), &["v1"]),
    ]
}

/// The ranked segment ids a ranker holding `videos` must answer.
fn expected(videos: &[&str]) -> Vec<Vec<String>> {
    let mut index = SegmentIndex::default();
    for video in videos {
        index.apply(SegmentLogEntry::Upsert {
            video_id: video.to_string(),
            generation: "g1".into(),
            part: 0,
            parts: 1,
            segments: records(video),
        });
    }
    requests().iter().map(|r| ids(&top_k(&index, r))).collect()
}

fn ids(hits: &[vidseek_protocol::rank::RankedSegment]) -> Vec<String> {
    hits.iter().map(|h| h.meta.segment_id.clone()).collect()
}

struct Ranker {
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Ranker {
    async fn start(server: &NatsServer, snapshots: &Path) -> Ranker {
        let config = RankerConfig {
            snapshot_dir: Some(snapshots.to_path_buf()),
            snapshot_interval: Duration::from_secs(3600),
            ..RankerConfig::new(0)
        };
        let shutdown = CancellationToken::new();
        let (client, token) = (server.client().await, shutdown.clone());
        let task = tokio::spawn(async move {
            vidseek_ranker::run(client, config, token)
                .await
                .expect("ranker ran");
        });
        Ranker { shutdown, task }
    }

    /// Stops it gracefully, which writes its snapshot.
    async fn stop(self) {
        self.shutdown.cancel();
        self.task.await.expect("ranker stopped");
    }
}

async fn rank(
    client: &async_nats::Client,
    request: &RankRequest,
) -> Result<RankResponse, ErrorBody> {
    vidseek_bus::rpc::request(
        client,
        subjects::rank(0),
        request,
        Duration::from_secs(5),
        None,
    )
    .await
}

/// The ranker's answers once it serves `segments` segments, all of them in
/// its approximate graphs (it reports none still settling).
async fn answers_at(client: &async_nats::Client, segments: u64) -> Vec<Vec<String>> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let probe = RankRequest {
        k: 0,
        ..request(vec![0.0; DIM], &[])
    };
    loop {
        match rank(client, &probe).await {
            Ok(answer) if answer.segments_indexed == segments && answer.segments_settling == 0 => {
                break;
            }
            Ok(_) => {}
            Err(error) => assert!(
                matches!(
                    error.error.code,
                    ErrorCode::Unavailable | ErrorCode::Timeout
                ),
                "{error:?}"
            ),
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "ranker never served {segments} segments, all settled"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut answers = vec![];
    for request in requests() {
        answers.push(ids(&rank(client, &request).await.expect("ranked").hits));
    }
    answers
}

#[tokio::test]
async fn a_restarted_ranker_serves_its_snapshot_plus_the_tail() {
    let server = NatsServer::start();
    let client = server.client().await;
    let js = jetstream::new(client.clone());
    vidseek_bus::streams::ensure_all(&js, 1).await.unwrap();
    let snapshots = tempfile::tempdir().unwrap();
    for video in ["v0", "v1", "v2", "v3", "v4"] {
        segment_log::replace_video(&js, 0, video, "g1", records(video))
            .await
            .unwrap();
    }

    let ranker = Ranker::start(&server, snapshots.path()).await;
    let first = answers_at(&client, 5 * SEGMENTS as u64).await;
    assert_eq!(first, expected(&["v0", "v1", "v2", "v3", "v4"]));
    ranker.stop().await;
    assert!(
        snapshots.path().join("index.snap").is_file(),
        "snapshot written on stop"
    );

    // While it is down: v1 is deleted, v5 ingested, and v0's entries are
    // purged without a delete marker, so only the snapshot still holds v0:
    // a ranker that replayed the whole log would not find it.
    segment_log::remove_video(&js, 0, "v1").await.unwrap();
    segment_log::replace_video(&js, 0, "v5", "g1", records("v5"))
        .await
        .unwrap();
    let stream = js.get_stream(subjects::SEGMENTS_STREAM).await.unwrap();
    stream
        .purge()
        .filter(subjects::segments_of_video("v0"))
        .await
        .unwrap();

    let ranker = Ranker::start(&server, snapshots.path()).await;
    let restored = answers_at(&client, 5 * SEGMENTS as u64).await;
    assert_eq!(restored, expected(&["v0", "v2", "v3", "v4", "v5"]));
    assert!(
        restored.iter().flatten().any(|id| id.starts_with("v0")),
        "from the snapshot"
    );
    assert!(
        restored.iter().flatten().all(|id| !id.starts_with("v1")),
        "deleted in the tail"
    );
    assert!(
        restored.iter().flatten().any(|id| id.starts_with("v5")),
        "ingested in the tail"
    );
    ranker.stop().await;

    // A corrupt snapshot is refused: the whole log is replayed, and v0,
    // no longer in the log, is gone.
    let path = snapshots.path().join("index.snap");
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, bytes).unwrap();
    let ranker = Ranker::start(&server, snapshots.path()).await;
    let replayed = answers_at(&client, 4 * SEGMENTS as u64).await;
    assert_eq!(replayed, expected(&["v2", "v3", "v4", "v5"]));
    ranker.stop().await;
}
