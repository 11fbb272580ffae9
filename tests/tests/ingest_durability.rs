//! Ingest survives a worker SIGKILLed mid-job and refuses bad inputs
//! clearly, with the fleet as separate OS processes on a real nats-server.
//!
//! The killed job is redelivered after the ack wait to a second worker; its
//! segments must equal those of an uninterrupted run on a fresh fleet, and
//! the log must hold them once, under one generation.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use futures::StreamExt;
use serde_json::json;
use vidseek_bus::catalog::Catalog;
use vidseek_protocol::codec::{self, Format};
use vidseek_protocol::ingest::{VideoRecord, VideoStatus};
use vidseek_protocol::rank::{SegmentLogEntry, SegmentRecord};
use vidseek_protocol::subjects;
use vidseek_tests::process::{Fleet, FleetConfig, sample};
use vidseek_tests::requests::{self, Reply};
use vidseek_tests::{media, requests::finished};

/// Both tests run whole fleets; on a two-core machine they take turns
/// rather than starve each other's deadlines.
/// (tokio's mutex: it is held across awaits, and a failed test must not
/// poison it for the other.)
static ONE_FLEET_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Ack wait of the fleets here: short, so redelivery comes quickly.
const ACK_WAIT_S: u64 = 3;

/// A fleet for ingest: encoder, query stage, two rankers and `ingest_workers`
/// ingest processes; returns the fleet and the ingest process indices.
async fn ingest_fleet(media_root: &Path, ingest_workers: usize) -> (Fleet, Vec<usize>) {
    let mut fleet = Fleet::start(
        media_root,
        FleetConfig {
            shards: 2,
            ingest_ack_wait_s: ACK_WAIT_S,
        },
    );
    fleet.worker("encoder", None);
    fleet.worker("query", None);
    fleet.worker("ranker", Some(0));
    fleet.worker("ranker", Some(1));
    let ingest = (0..ingest_workers)
        .map(|_| fleet.worker("ingest", None))
        .collect();
    let client = fleet.nats.client().await;
    fleet
        .wait_until_ready(&client, Duration::from_secs(90))
        .await;
    (fleet, ingest)
}

/// Submits `path` over `vidseek.v1.ingest`; returns the reply.
async fn submit(client: &async_nats::Client, path: &str) -> Reply {
    requests::request(
        client,
        subjects::INGEST,
        json!({ "path": path }).to_string().into_bytes(),
        Duration::from_secs(15),
    )
    .await
}

async fn submit_ok(client: &async_nats::Client, path: &Path) -> String {
    match submit(client, &path.display().to_string()).await {
        Reply::Ok(value) => {
            assert_eq!(value["status"], "queued", "{value}");
            value["video_id"].as_str().expect("video_id").to_string()
        }
        other => panic!("ingest of {} refused: {other:?}", path.display()),
    }
}

/// Every entry in the segment log for `video_id`, raw (no replay), so
/// duplicates and stray generations would show.
async fn raw_log(js: &jetstream::Context, video_id: &str) -> Vec<SegmentLogEntry> {
    let stream = js
        .get_stream(subjects::SEGMENTS_STREAM)
        .await
        .expect("segments stream");
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            filter_subject: subjects::segments_of_video(video_id),
            ..Default::default()
        })
        .await
        .expect("ordered consumer");
    let pending = consumer.cached_info().num_pending;
    let mut messages = consumer.messages().await.expect("messages");
    let mut entries = vec![];
    for _ in 0..pending {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .expect("log entry within 10 s")
            .expect("log open")
            .expect("log message");
        entries.push(codec::decode(Format::MsgPack, &message.payload).expect("log entry"));
    }
    entries
}

/// (segment id, start, end, kind) of each segment, in order.
fn outline(segments: &[SegmentRecord]) -> Vec<(String, f64, f64, String)> {
    segments
        .iter()
        .map(|s| {
            (
                s.meta.segment_id.clone(),
                s.meta.start,
                s.meta.end,
                format!("{:?}", s.meta.kind),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_ingest_is_redelivered_without_duplicates() {
    let _turn = ONE_FLEET_AT_A_TIME.lock().await;
    let started = Instant::now();
    let media_dir = tempfile::tempdir().expect("media dir");
    // Twelve 4-second scenes: long enough that ingest is still running when
    // the worker is killed, short enough for two cores.
    let video = media_dir.path().join("scenes.mp4");
    media::scene_video(&video, 12, 4, "192x144");

    let (mut fleet, ingest) = ingest_fleet(media_dir.path(), 1).await;
    let client = fleet.nats.client().await;
    let js = jetstream::new(client.clone());
    let catalog = Catalog::open(&js).await.expect("catalog");
    let video_id = submit_ok(&client, &video).await;

    // Kill the only worker once it has visibly made progress.
    let record = requests::wait_for_video(
        &catalog,
        &video_id,
        Duration::from_secs(60),
        |r| (r.status == VideoStatus::Processing && r.progress > 0.0) || finished(r),
        || fleet.assert_all_running(),
    )
    .await;
    assert_eq!(
        record.status,
        VideoStatus::Processing,
        "ingest finished before it could be killed; make the video longer: {record:?}"
    );
    fleet.kill(ingest[0]);
    let killed_at = Instant::now();
    eprintln!(
        "killed the ingest worker at progress {:.2} after {:?}",
        record.progress,
        started.elapsed()
    );
    assert!(
        catalog.get(&video_id).await.unwrap().unwrap().status != VideoStatus::Ready,
        "the video must not be ready before its job is redone"
    );

    // A second worker picks the job up after the ack wait and finishes it.
    let second = fleet.worker("ingest", None);
    let done = requests::wait_for_video(
        &catalog,
        &video_id,
        Duration::from_secs(120),
        finished,
        || fleet.assert_all_running(),
    )
    .await;
    assert_eq!(done.status, VideoStatus::Ready, "{done:?}");
    // JetStream's own count proves the job came back by redelivery, not by
    // a second submission.
    fleet
        .process(second)
        .wait_for_line("deliveries=2", Duration::from_secs(5));
    assert!(
        killed_at.elapsed() >= Duration::from_secs(ACK_WAIT_S - 1),
        "ready before the killed job could have been redelivered"
    );
    let killed_run = vidseek_bus::segment_log::read_video(&js, &video_id)
        .await
        .expect("read the segment log");
    assert_eq!(killed_run.len() as u32, done.segment_count);

    // The raw log: one delete marker and each segment once, one generation.
    let entries = raw_log(&js, &video_id).await;
    let mut generations = BTreeSet::new();
    let mut ids = vec![];
    for entry in &entries {
        if let SegmentLogEntry::Upsert {
            generation,
            segments,
            ..
        } = entry
        {
            generations.insert(generation.clone());
            ids.extend(segments.iter().map(|s| s.meta.segment_id.clone()));
        }
    }
    assert_eq!(
        generations,
        BTreeSet::from([done.generation.clone()]),
        "log generations"
    );
    let unique: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(
        unique.len(),
        ids.len(),
        "duplicate segment ids in the log: {ids:?}"
    );
    assert_eq!(ids.len(), killed_run.len());
    drop(fleet);

    // The reference: a fresh fleet ingesting the same file, undisturbed.
    let (fleet, _) = ingest_fleet(media_dir.path(), 1).await;
    let client = fleet.nats.client().await;
    let js = jetstream::new(client.clone());
    let catalog = Catalog::open(&js).await.expect("catalog");
    assert_eq!(
        submit_ok(&client, &video).await,
        video_id,
        "ids follow content"
    );
    let reference_record = requests::wait_for_video(
        &catalog,
        &video_id,
        Duration::from_secs(120),
        finished,
        || {},
    )
    .await;
    assert_eq!(reference_record.status, VideoStatus::Ready);
    let reference = vidseek_bus::segment_log::read_video(&js, &video_id)
        .await
        .expect("read the reference log");

    let (a, b) = (outline(&killed_run), outline(&reference));
    assert_eq!(
        a.len(),
        b.len(),
        "segment counts: killed run {a:?}, reference {b:?}"
    );
    assert!(
        a.len() >= 6,
        "scene cuts should give several segments: {a:?}"
    );
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.0, y.0, "segment ids");
        assert!(
            (x.1 - y.1).abs() < 1e-3 && (x.2 - y.2).abs() < 1e-3,
            "{x:?} vs {y:?}"
        );
        assert_eq!(x.3, y.3, "kinds");
    }
    eprintln!(
        "killed run equals the reference: {} segments; test took {:?}",
        a.len(),
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_fail_clearly_and_harm_nothing() {
    let _turn = ONE_FLEET_AT_A_TIME.lock().await;
    let started = Instant::now();
    let media_dir = tempfile::tempdir().expect("media dir");
    let outside = tempfile::tempdir().expect("outside dir");
    let root = media_dir.path();

    let text = root.join("notes.mp4");
    std::fs::write(&text, "this is a shopping list, not a video\n").unwrap();
    let empty = root.join("empty.mp4");
    std::fs::write(&empty, b"").unwrap();
    let truncated = root.join("truncated.mp4");
    let bikes = std::fs::read(sample("bikes.mp4")).expect("read bikes.mp4");
    std::fs::write(&truncated, &bikes[..20 * 1024]).unwrap();
    let audio = root.join("tone.mp4");
    media::audio_only(&audio, 3);
    let forbidden = outside.path().join("elsewhere.mp4");
    std::fs::copy(sample("bikes.mp4"), &forbidden).unwrap();
    let good = root.join("bikes.mp4");
    std::fs::copy(sample("bikes.mp4"), &good).unwrap();

    let (mut fleet, _) = ingest_fleet(root, 1).await;
    let client = fleet.nats.client().await;
    let js = jetstream::new(client.clone());
    let catalog = Catalog::open(&js).await.expect("catalog");

    // Refused at submit, with the code that says why.
    let missing = root.join("missing.mp4");
    for (path, code) in [
        (forbidden.display().to_string(), "forbidden_path"),
        ("videos/bikes.mp4".to_string(), "bad_request"),
        (missing.display().to_string(), "not_found"),
    ] {
        match submit(&client, &path).await {
            Reply::Error { code: got, message } => {
                assert_eq!(got, code, "{path}: {message}");
                eprintln!("{path}: {got}: {message}");
            }
            other => panic!("{path} should be refused with {code}: {other:?}"),
        }
    }

    // Accepted (they are files inside the roots) but fail in the worker.
    let mut accepted = vec![];
    for path in [&text, &empty, &truncated, &audio] {
        accepted.push((path.clone(), submit_ok(&client, path).await));
    }
    for (path, id) in &accepted {
        let record: VideoRecord =
            requests::wait_for_video(&catalog, id, Duration::from_secs(60), finished, || {
                fleet.assert_all_running()
            })
            .await;
        assert_eq!(
            record.status,
            VideoStatus::Failed,
            "{}: {record:?}",
            path.display()
        );
        let error = record.error.clone().unwrap_or_default();
        assert!(
            error.len() > 10 && !error.starts_with("retrying"),
            "{}: the error should say what is wrong: {error:?}",
            path.display()
        );
        assert_eq!(record.segment_count, 0);
        eprintln!("{}: failed: {error}", path.display());
    }

    // Nothing else was harmed: a good video still ingests.
    let id = submit_ok(&client, &good).await;
    let record = requests::wait_for_video(&catalog, &id, Duration::from_secs(90), finished, || {
        fleet.assert_all_running()
    })
    .await;
    assert_eq!(record.status, VideoStatus::Ready, "{record:?}");
    assert!(record.segment_count > 0);
    fleet.assert_all_running();
    eprintln!("bad inputs test took {:?}", started.elapsed());
}
