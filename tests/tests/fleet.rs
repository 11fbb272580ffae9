//! The fleet as separate OS processes on one nats-server: a gateway, two
//! encoders, two ranker shards, a query stage and an ingest worker. Real
//! videos go in through HTTP, searches come back over HTTP, WebSocket and
//! NATS, and one encoder is SIGKILLed under load: every query must end in an
//! answer or a clear error, and the surviving encoder must carry on alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use base64::Engine;
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use vidseek_protocol::sharding::shard_of;
use vidseek_protocol::subjects;
use vidseek_tests::process::{Fleet, FleetConfig, sample};
use vidseek_tests::requests::{self, Reply};

/// Seconds of photos.mp4 that show the cat (photos.srt, cue 2).
const CAT: (f64, f64) = (4.3, 7.7);
/// Queries in the kill test, and how many run at once.
const LOAD_QUERIES: usize = 60;
const LOAD_CONCURRENCY: usize = 4;
/// Client deadline per query: above the query stage's own 10 s encoder
/// deadline, so a query caught by the kill gets the stage's error reply.
const QUERY_DEADLINE: Duration = Duration::from_secs(20);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fleet_ingests_searches_and_survives_an_encoder_kill() {
    let started = Instant::now();
    let media = tempfile::tempdir().expect("media dir");
    for name in ["photos.mp4", "photos.srt", "bikes.mp4"] {
        std::fs::copy(sample(name), media.path().join(name)).expect("copy sample");
    }
    let mut fleet = Fleet::start(media.path(), FleetConfig::default());
    let http_base = fleet.gateway();
    let encoders = [fleet.worker("encoder", None), fleet.worker("encoder", None)];
    fleet.worker("ranker", Some(0));
    fleet.worker("ranker", Some(1));
    fleet.worker("query", None);
    fleet.worker("ingest", None);
    let nats = fleet.nats.client().await;
    fleet.wait_until_ready(&nats, Duration::from_secs(90)).await;
    eprintln!("fleet ready after {:?}", started.elapsed());

    // Discovery: both encoder processes announce themselves (health needs
    // only one, so the second may still be loading its model).
    requests::wait_for_instances(&nats, subjects::SERVICE_ENCODER, 2, Duration::from_secs(60))
        .await;

    // Ingest through the gateway and wait for both videos.
    let http = reqwest::Client::new();
    let mut ids = vec![];
    for name in ["photos.mp4", "bikes.mp4"] {
        let path = media.path().join(name);
        let response = http
            .post(format!("{http_base}/api/v1/videos"))
            .json(&json!({ "path": path }))
            .send()
            .await
            .expect("POST /api/v1/videos");
        assert_eq!(response.status(), 202, "ingest {name}");
        let body: Value = response.json().await.expect("JSON");
        assert_eq!(body["status"], "queued");
        ids.push(body["video_id"].as_str().expect("video_id").to_string());
    }
    let (photos, bikes) = (ids[0].clone(), ids[1].clone());
    for id in &ids {
        let record = fleet.wait_ready_over_http(&http, &http_base, id).await;
        assert!(record["segment_count"].as_u64().unwrap() > 0, "{record}");
    }
    eprintln!("both videos ready after {:?}", started.elapsed());
    // The sample files are fixed, so their shards are too; the shard check
    // below means something only because they differ.
    assert_ne!(
        shard_of(&photos, 2),
        shard_of(&bikes, 2),
        "photos.mp4 and bikes.mp4 no longer land on different shards; pick other samples"
    );

    // The cat is where the subtitles say it is.
    let cat: Value = search_json(&http, format!("{http_base}/api/v1/search?text=a%20cat")).await;
    let top = &cat["results"][0];
    assert_eq!(
        top["video_id"],
        photos.as_str(),
        "top hit for 'a cat': {cat}"
    );
    let (start, end) = (top["start"].as_f64().unwrap(), top["end"].as_f64().unwrap());
    assert!(
        start < CAT.1 && end > CAT.0,
        "top hit for 'a cat' is {start}..{end}, not the cat at {CAT:?}: {cat}"
    );

    // Every segment of both videos, hence both shards, in one answer.
    let all: Value = search_json(
        &http,
        format!("{http_base}/api/v1/search?text=a%20bicycle&k=100"),
    )
    .await;
    let videos: Vec<&str> = all["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["video_id"].as_str().unwrap())
        .collect();
    assert!(
        videos.contains(&photos.as_str()) && videos.contains(&bikes.as_str()),
        "k=100 should reach both shards: {all}"
    );

    websocket_streams_partials(&http_base, [&photos, &bikes]).await;

    // The kill test: a load of text and image queries over NATS, one
    // encoder SIGKILLed part-way through.
    let cat_jpeg = frame_jpeg(&media.path().join("photos.mp4"), 6.0);
    let load = run_load_with_kill(&mut fleet, &nats, encoders[0], cat_jpeg).await;
    eprintln!(
        "kill test: {} queries, {} failed ({:?}), {} started after the kill; whole test {:?}",
        LOAD_QUERIES,
        load.failed,
        load.failure_codes,
        load.after_kill,
        started.elapsed()
    );
    fleet.assert_all_running();
}

/// Polls `GET /api/v1/videos/{id}` until ready; fails on `failed`.
/// A REST search's JSON answer.
async fn search_json(http: &reqwest::Client, url: String) -> Value {
    http.get(url)
        .send()
        .await
        .expect("search")
        .json()
        .await
        .expect("search JSON")
}

/// The WebSocket streams one partial per shard (shards_total 2) before done.
async fn websocket_streams_partials(http_base: &str, videos: [&str; 2]) {
    let url = format!("{}/api/v1/ws", http_base.replacen("http", "ws", 1));
    let (mut socket, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("WebSocket connect");
    socket
        .send(Message::Text(
            json!({"type": "search", "id": "q1", "text": "a bicycle", "k": 100})
                .to_string()
                .into(),
        ))
        .await
        .expect("send search");
    let mut partials = vec![];
    let done = loop {
        let message = tokio::time::timeout(Duration::from_secs(20), socket.next())
            .await
            .expect("a WebSocket event within 20 s")
            .expect("socket open")
            .expect("socket message");
        let Message::Text(text) = message else {
            continue;
        };
        let event: Value = serde_json::from_str(&text).expect("event JSON");
        assert_eq!(event["id"], "q1", "{event}");
        match event["type"].as_str() {
            Some("partial") => partials.push(event),
            Some("done") => break event,
            _ => panic!("unexpected WebSocket event {event}"),
        }
    };
    assert!(!partials.is_empty(), "no partial events before done");
    for partial in &partials {
        assert_eq!(partial["shards_total"], 2, "{partial}");
    }
    // The first partial comes from one shard while the other is pending:
    // the gateway streams rather than waiting for the whole answer.
    assert_eq!(
        partials[0]["shards_done"], 1,
        "first partial: {}",
        partials[0]
    );
    let results = done["results"].as_array().expect("done results");
    for video in videos {
        assert!(
            results.iter().any(|r| r["video_id"] == video),
            "done event lacks video {video}: {done}"
        );
    }
}

/// One frame of `video` at `at` seconds, as JPEG.
fn frame_jpeg(video: &std::path::Path, at: f64) -> Vec<u8> {
    let output = std::process::Command::new("ffmpeg")
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-ss",
            &at.to_string(),
            "-i",
        ])
        .arg(video)
        .args(["-frames:v", "1", "-f", "image2", "-c:v", "mjpeg", "-"])
        .output()
        .expect("run ffmpeg");
    assert!(
        output.status.success() && !output.stdout.is_empty(),
        "no frame from ffmpeg"
    );
    output.stdout
}

struct LoadOutcome {
    failed: usize,
    failure_codes: Vec<String>,
    after_kill: usize,
}

/// Runs the query load, SIGKILLs `victim` once a third of it is done, and
/// checks every outcome.
async fn run_load_with_kill(
    fleet: &mut Fleet,
    nats: &async_nats::Client,
    victim: usize,
    image: Vec<u8>,
) -> LoadOutcome {
    let image_body = json!({
        "image_base64": base64::engine::general_purpose::STANDARD.encode(&image),
        "k": 10,
    })
    .to_string()
    .into_bytes();
    let completed = Arc::new(AtomicUsize::new(0));
    let limit = Arc::new(tokio::sync::Semaphore::new(LOAD_CONCURRENCY));
    let mut tasks = vec![];
    for i in 0..LOAD_QUERIES {
        let (nats, completed, limit) = (nats.clone(), completed.clone(), limit.clone());
        let (subject, body) = if i % 3 == 2 {
            (subjects::SEARCH_IMAGE, image_body.clone())
        } else {
            let text = ["a cat", "a bicycle on a street", "a rocket at night"][i % 3];
            (
                subjects::SEARCH_TEXT,
                json!({ "text": text, "k": 10 }).to_string().into_bytes(),
            )
        };
        tasks.push(tokio::spawn(async move {
            let _permit = limit.acquire_owned().await.expect("semaphore");
            let sent = Instant::now();
            let reply = requests::request(&nats, subject, body, QUERY_DEADLINE).await;
            let took = sent.elapsed();
            completed.fetch_add(1, Ordering::SeqCst);
            (subject, sent, took, reply)
        }));
    }

    // Kill once a third of the load is through, so queries are in flight.
    let deadline = Instant::now() + Duration::from_secs(60);
    while completed.load(Ordering::SeqCst) < LOAD_QUERIES / 3 {
        assert!(
            Instant::now() < deadline,
            "the load stalled before the kill"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    fleet.kill(victim);
    // From the moment discovery shows one encoder, NATS no longer routes to
    // the dead one: queries sent after that must all succeed.
    requests::wait_for_instances(nats, subjects::SERVICE_ENCODER, 1, Duration::from_secs(30)).await;
    let settled = Instant::now();

    let mut outcome = LoadOutcome {
        failed: 0,
        failure_codes: vec![],
        after_kill: 0,
    };
    for task in tasks {
        let (subject, sent, took, reply) = task.await.expect("query task");
        assert!(
            took < QUERY_DEADLINE + Duration::from_secs(1),
            "{subject} took {took:?}"
        );
        let after = sent >= settled;
        outcome.after_kill += usize::from(after);
        match reply {
            Reply::Ok(value) => {
                let results = value["results"].as_array().expect("results array");
                assert!(!results.is_empty(), "{subject}: no results: {value}");
            }
            Reply::Error { code, message } => {
                assert!(
                    ["timeout", "unavailable", "overloaded"].contains(&code.as_str()),
                    "{subject} failed with {code}: {message}"
                );
                assert!(
                    !after,
                    "{subject} sent after the kill failed: {code}: {message}"
                );
                outcome.failed += 1;
                outcome.failure_codes.push(code);
            }
            other => panic!("{subject}: {other:?}"),
        }
    }

    // The survivor serves a fresh burst alone, text and image.
    for i in 0..10 {
        let body = if i % 2 == 0 {
            json!({"text": "a cat"})
        } else {
            serde_json::from_slice(&image_body).unwrap()
        };
        let subject = if i % 2 == 0 {
            subjects::SEARCH_TEXT
        } else {
            subjects::SEARCH_IMAGE
        };
        requests::request_ok(nats, subject, &body, QUERY_DEADLINE).await;
    }
    outcome
}
