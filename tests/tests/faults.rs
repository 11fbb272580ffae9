//! Faults injected for real into a fleet of separate OS processes on a real
//! nats-server: a ranker replica, the query stage and the gateway SIGKILLed
//! under load, nats-server SIGKILLed and restarted under query and ingest
//! load, a shard with no ranker at all, and the data directory running out
//! of space. Each test asserts what survived and that every query ended in
//! an answer or a clear error within its deadline.
//!
//! The fleets use the tiny fixture model pack (plumbing, not model quality,
//! is under test) and, where no ingest is needed, segments published
//! straight to the segment log.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use serde_json::{Value, json};
use vidseek_bus::catalog::Catalog;
use vidseek_protocol::ingest::VideoStatus;
use vidseek_protocol::subjects;
use vidseek_tests::process::{Fleet, FleetConfig};
use vidseek_tests::requests::{self, Reply};
use vidseek_tests::tiny_pack::{self, SeededVideo};
use vidseek_tests::{media, websocket};

/// Text dimension of the tiny pack (`make_fixture_pack.py`).
const TINY_DIM: usize = 8;
/// A NATS client's deadline per query: above the query stage's own
/// deadlines (10 s to encode, 5 s per shard), so the stage's answer (or its
/// error) arrives first whenever the stage is alive.
const QUERY_DEADLINE: Duration = Duration::from_secs(20);
/// The gateway's search timeout in these fleets (its default).
const GATEWAY_TIMEOUT: Duration = Duration::from_secs(10);

/// A fleet whose encoders load the tiny pack.
struct TinyFleet {
    fleet: Fleet,
    pack: PathBuf,
    // Dropped after the fleet (declared later): the processes read them.
    _pack_dir: tempfile::TempDir,
    media: tempfile::TempDir,
}

impl TinyFleet {
    fn start(shards: u32, ingest_ack_wait_s: u64) -> TinyFleet {
        let media = tempfile::tempdir().expect("media dir");
        TinyFleet::start_with_media(shards, ingest_ack_wait_s, media)
    }

    fn start_with_media(
        shards: u32,
        ingest_ack_wait_s: u64,
        media: tempfile::TempDir,
    ) -> TinyFleet {
        let pack_dir = tempfile::tempdir().expect("pack dir");
        let pack = tiny_pack::write(pack_dir.path());
        let fleet = Fleet::start(
            media.path(),
            FleetConfig {
                shards,
                ingest_ack_wait_s,
            },
        );
        TinyFleet {
            fleet,
            pack,
            _pack_dir: pack_dir,
            media,
        }
    }

    fn media(&self) -> &Path {
        self.media.path()
    }

    fn encoder(&mut self) -> usize {
        let pack = self.pack.display().to_string();
        self.fleet.spawn(
            "encoder",
            &["worker", "--role", "encoder"],
            &[("VIDSEEK_MODEL_PACK", &pack)],
        )
    }
}

/// Polls the health subject until `ready` accepts the report (and every
/// process is still running).
async fn wait_for_health(
    fleet: &mut Fleet,
    client: &async_nats::Client,
    what: &str,
    ready: impl Fn(&vidseek_protocol::query::HealthReport) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        fleet.assert_all_running();
        let report = vidseek_bus::rpc::health(client, Duration::from_secs(3)).await;
        if report.as_ref().is_ok_and(&ready) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within 90 s; last health answer: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Waits for the fleet, seeds one shard with two videos of four segments
/// and waits until they are all indexed; returns how many segments that is.
async fn ready_with_one_shard_seeded(fleet: &mut Fleet, client: &async_nats::Client) -> usize {
    fleet
        .wait_until_ready(client, Duration::from_secs(90))
        .await;
    let js = jetstream::new(client.clone());
    let total = total_segments(&tiny_pack::seed(&js, 1, 2, 4, TINY_DIM).await);
    wait_for_health(fleet, client, "indexing", |r| {
        r.segments_indexed as usize == total
    })
    .await;
    total
}

fn total_segments(videos: &[SeededVideo]) -> usize {
    videos.iter().map(|v| v.segments as usize).sum()
}

/// The video of each hit of a search answer.
fn hit_videos(answer: &Value) -> Vec<String> {
    answer["results"]
        .as_array()
        .unwrap_or_else(|| panic!("no results array: {answer}"))
        .iter()
        .map(|hit| hit["video_id"].as_str().expect("video_id").to_string())
        .collect()
}

fn warning_codes(answer: &Value) -> Vec<String> {
    answer["warnings"]
        .as_array()
        .map(|w| {
            w.iter()
                .map(|w| w["code"].as_str().unwrap_or_default().to_string())
                .collect()
        })
        .unwrap_or_default()
}

fn search_body() -> Vec<u8> {
    json!({"text": "a cat on a street", "k": 100})
        .to_string()
        .into_bytes()
}

/// How one query of a load ended.
#[derive(Debug)]
struct Outcome {
    sent: Instant,
    took: Duration,
    reply: Reply,
}

/// Sends `count` NATS text searches, `concurrency` at a time; once a third
/// have completed, runs `fault`. Returns every outcome, in sending order.
async fn nats_load_with_fault(
    client: &async_nats::Client,
    count: usize,
    concurrency: usize,
    fault: impl AsyncFnOnce(),
) -> Vec<Outcome> {
    let completed = Arc::new(AtomicUsize::new(0));
    let limit = Arc::new(tokio::sync::Semaphore::new(concurrency));
    let tasks: Vec<_> = (0..count)
        .map(|_| {
            let (client, completed, limit) = (client.clone(), completed.clone(), limit.clone());
            tokio::spawn(async move {
                let _permit = limit.acquire_owned().await.expect("semaphore");
                let sent = Instant::now();
                let reply = requests::request(
                    &client,
                    subjects::SEARCH_TEXT,
                    search_body(),
                    QUERY_DEADLINE,
                )
                .await;
                completed.fetch_add(1, Ordering::SeqCst);
                Outcome {
                    sent,
                    took: sent.elapsed(),
                    reply,
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while completed.load(Ordering::SeqCst) < count / 3 {
        assert!(
            Instant::now() < deadline,
            "the load stalled before the fault"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    fault().await;
    let mut outcomes = vec![];
    for task in tasks {
        outcomes.push(task.await.expect("query task"));
    }
    outcomes
}

/// How many queries the frozen process held: with the tiny pack a query
/// takes milliseconds, so one that took a second or more was routed to it
/// while it was frozen. Fails the test when there is none, since then the
/// fault tested nothing.
fn held_by_the_freeze(outcomes: &[Outcome]) -> usize {
    let held = outcomes
        .iter()
        .filter(|o| o.took >= Duration::from_millis(900))
        .count();
    assert!(held > 0, "no query was in flight to the frozen process");
    held
}

/// Every query of a load must end before the client's deadline: an answer
/// or an error reply, never silence.
fn assert_bounded(outcomes: &[Outcome]) {
    for outcome in outcomes {
        assert!(
            outcome.took < QUERY_DEADLINE + Duration::from_secs(1),
            "a query took {:?}: {:?}",
            outcome.took,
            outcome.reply
        );
    }
}

/// A ranker replica SIGKILLed under query load: its twin serves the shard.
/// Queries it held end within the shard deadline with the other shard's
/// results and a `shard_unavailable` warning; every query sent after the
/// kill is complete. Then the last replica goes: queries still answer, with
/// the other shard's results and the warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_ranker_replica_leaves_its_twin_serving() {
    let mut tiny = TinyFleet::start(2, 30);
    tiny.encoder();
    tiny.fleet.worker("query", None);
    let replicas = [
        tiny.fleet.worker("ranker", Some(0)),
        tiny.fleet.worker("ranker", Some(0)),
    ];
    tiny.fleet.worker("ranker", Some(1));
    let client = tiny.fleet.nats.client().await;
    tiny.fleet
        .wait_until_ready(&client, Duration::from_secs(90))
        .await;
    let js = jetstream::new(client.clone());
    let videos = tiny_pack::seed(&js, 2, 3, 4, TINY_DIM).await;
    let total = total_segments(&videos);
    let on_shard_1 = videos
        .iter()
        .filter(|v| v.shard == 1)
        .map(|v| v.segments as usize)
        .sum::<usize>();
    wait_for_health(
        &mut tiny.fleet,
        &client,
        "indexing the seeded segments",
        |r| r.ready() && r.segments_indexed as usize == total,
    )
    .await;
    requests::wait_for_instances(
        &client,
        subjects::SERVICE_RANKER,
        3,
        Duration::from_secs(30),
    )
    .await;

    let fleet = &mut tiny.fleet;
    let mut settled = None;
    let outcomes = nats_load_with_fault(&client, 60, 4, async || {
        // Frozen first, so rank requests are in flight to it when it dies.
        fleet.process(replicas[0]).freeze();
        tokio::time::sleep(Duration::from_secs(1)).await;
        fleet.kill(replicas[0]);
        requests::wait_for_instances(
            &client,
            subjects::SERVICE_RANKER,
            2,
            Duration::from_secs(30),
        )
        .await;
        settled = Some(Instant::now());
    })
    .await;
    let settled = settled.expect("the fault ran");
    assert_bounded(&outcomes);
    let mut partial = 0;
    for outcome in &outcomes {
        let Reply::Ok(answer) = &outcome.reply else {
            panic!("every query is answered (one shard is always up): {outcome:?}");
        };
        let hits = hit_videos(answer);
        if hits.len() == total {
            assert!(warning_codes(answer).is_empty(), "{answer}");
            continue;
        }
        // Held by the dead replica: shard 1's results, and the warning.
        partial += 1;
        assert!(
            outcome.sent < settled,
            "a query sent after the kill settled is incomplete: {answer}"
        );
        assert_eq!(hits.len(), on_shard_1, "{answer}");
        assert_eq!(warning_codes(answer), ["shard_unavailable"], "{answer}");
    }
    let held = held_by_the_freeze(&outcomes);
    eprintln!(
        "ranker replica killed: {} queries, {held} held by the frozen replica, {partial} answered \
         from one shard with a warning",
        outcomes.len()
    );

    // The last replica of shard 0 goes too: answers come from shard 1, at
    // once (nobody subscribes to the subject any more), with the warning.
    tiny.fleet.kill(replicas[1]);
    requests::wait_for_instances(
        &client,
        subjects::SERVICE_RANKER,
        1,
        Duration::from_secs(30),
    )
    .await;
    let sent = Instant::now();
    let answer = requests::request_ok(
        &client,
        subjects::SEARCH_TEXT,
        &json!({"text": "a cat", "k": 100}),
        QUERY_DEADLINE,
    )
    .await;
    assert!(
        sent.elapsed() < Duration::from_secs(6),
        "{:?}",
        sent.elapsed()
    );
    assert_eq!(hit_videos(&answer).len(), on_shard_1, "{answer}");
    assert_eq!(warning_codes(&answer), ["shard_unavailable"], "{answer}");
    assert!(
        answer["warnings"][0]["message"]
            .as_str()
            .unwrap()
            .contains("shard 0"),
        "{answer}"
    );
    tiny.fleet.assert_all_running();
}

/// Two query stages; one SIGKILLed under HTTP and NATS load. A query it held
/// ends in a clear error within its deadline (the gateway's `timeout`; a
/// raw NATS client's own deadline), and every query sent after the kill is
/// answered by the other stage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_query_stage_leaves_the_other_answering() {
    let mut tiny = TinyFleet::start(1, 30);
    tiny.encoder();
    tiny.fleet.worker("ranker", Some(0));
    let stages = [
        tiny.fleet.worker("query", None),
        tiny.fleet.worker("query", None),
    ];
    let http_base = tiny.fleet.gateway();
    let client = tiny.fleet.nats.client().await;
    let total = ready_with_one_shard_seeded(&mut tiny.fleet, &client).await;
    requests::wait_for_instances(&client, subjects::SERVICE_QUERY, 2, Duration::from_secs(30))
        .await;

    // HTTP searches alongside the NATS load, through the gateway, three at
    // a time.
    let http = reqwest::Client::new();
    let stop = stop_flag();
    let http_outcomes = Arc::new(std::sync::Mutex::new(vec![]));
    let http_load: Vec<_> = (0..3)
        .map(|_| {
            let (http, base, stop) = (http.clone(), http_base.clone(), stop.clone());
            let outcomes = http_outcomes.clone();
            tokio::spawn(async move {
                while !stop.load(Ordering::SeqCst) {
                    let sent = Instant::now();
                    let response = http
                        .get(format!("{base}/api/v1/search?text=a%20cat&k=100"))
                        .send()
                        .await
                        .expect("the gateway answers");
                    let status = response.status().as_u16();
                    let body: Value = response.json().await.expect("JSON");
                    let outcome = (sent, sent.elapsed(), status, body);
                    outcomes.lock().expect("outcomes").push(outcome);
                }
            })
        })
        .collect();

    let fleet = &mut tiny.fleet;
    let mut settled = None;
    let outcomes = nats_load_with_fault(&client, 45, 3, async || {
        // Frozen first, so queries are in flight to it when it dies.
        fleet.process(stages[0]).freeze();
        tokio::time::sleep(Duration::from_secs(1)).await;
        fleet.kill(stages[0]);
        requests::wait_for_instances(&client, subjects::SERVICE_QUERY, 1, Duration::from_secs(30))
            .await;
        settled = Some(Instant::now());
    })
    .await;
    let settled = settled.expect("the fault ran");
    // HTTP searches held by the dead stage end at the gateway's timeout;
    // run on until several were sent after the kill.
    let deadline = Instant::now() + GATEWAY_TIMEOUT + Duration::from_secs(10);
    while http_outcomes
        .lock()
        .expect("outcomes")
        .iter()
        .filter(|(sent, ..)| *sent > settled)
        .count()
        < 5
    {
        assert!(
            Instant::now() < deadline,
            "the HTTP load stalled after the kill"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for task in http_load {
        task.await.expect("HTTP load");
    }
    let http_outcomes = std::mem::take(&mut *http_outcomes.lock().expect("outcomes"));

    assert_bounded(&outcomes);
    let mut lost = 0;
    for outcome in &outcomes {
        match &outcome.reply {
            Reply::Ok(answer) => assert_eq!(hit_videos(answer).len(), total, "{answer}"),
            // Held by the dead stage: nothing can answer it, so the client's
            // own deadline ends it.
            Reply::ClientTimeout if outcome.sent < settled => lost += 1,
            other => panic!(
                "query sent {:?} after the kill: {other:?}",
                outcome.sent.checked_duration_since(settled)
            ),
        }
    }
    let mut http_errors = vec![];
    for (sent, took, status, body) in &http_outcomes {
        assert!(
            *took < GATEWAY_TIMEOUT + Duration::from_secs(2),
            "an HTTP search took {took:?}: {status} {body}"
        );
        if *status == 200 {
            assert_eq!(hit_videos(body).len(), total, "{body}");
            continue;
        }
        assert!(
            *sent < settled,
            "HTTP search after the kill: {status} {body}"
        );
        assert_eq!(*status, 504, "{body}");
        assert_eq!(body["error"]["code"], "timeout", "{body}");
        http_errors.push(status);
    }
    let held = held_by_the_freeze(&outcomes);
    eprintln!(
        "query stage killed: {} NATS queries ({held} held by the frozen stage, {lost} ended by \
         the client's deadline), {} HTTP ({} answered 504 timeout)",
        outcomes.len(),
        http_outcomes.len(),
        http_errors.len()
    );
    tiny.fleet.assert_all_running();
}

/// A stop flag for a background load.
fn stop_flag() -> Arc<std::sync::atomic::AtomicBool> {
    Arc::new(std::sync::atomic::AtomicBool::new(false))
}

/// The gateway SIGKILLed with searches in flight: the clients get a
/// connection error at once (not a hang), and a gateway started again on
/// the same address serves REST, the WebSocket and health as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_gateway_started_again_serves_again() {
    let mut tiny = TinyFleet::start(1, 30);
    tiny.encoder();
    tiny.fleet.worker("ranker", Some(0));
    tiny.fleet.worker("query", None);
    let (gateway, http_base) = tiny.fleet.gateway_on("127.0.0.1:0");
    let client = tiny.fleet.nats.client().await;
    let total = ready_with_one_shard_seeded(&mut tiny.fleet, &client).await;
    let http = reqwest::Client::new();
    let search = format!("{http_base}/api/v1/search?text=a%20cat&k=100");
    let answer: Value = http
        .get(&search)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hit_videos(&answer).len(), total, "{answer}");

    // Searches in flight when the gateway dies.
    let in_flight: Vec<_> = (0..6)
        .map(|_| {
            let (http, search) = (http.clone(), search.clone());
            tokio::spawn(async move {
                let mut ended = vec![];
                loop {
                    let sent = Instant::now();
                    let result = http.get(&search).send().await;
                    ended.push(sent.elapsed());
                    if result.is_err() {
                        return ended;
                    }
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Instant::now();
    tiny.fleet.kill(gateway);
    for task in in_flight {
        let durations = tokio::time::timeout(Duration::from_secs(5), task)
            .await
            .expect("clients of a dead gateway get an error at once, not a hang")
            .expect("search task");
        assert!(durations.len() > 1, "the load ran before the kill");
    }
    eprintln!(
        "every client saw the dead gateway within {:?}",
        killed.elapsed()
    );
    let address = http_base.trim_start_matches("http://").to_string();
    let (_, again) = tiny.fleet.gateway_on(&address);
    assert_eq!(again, http_base, "started again on the same address");

    let health = http
        .get(format!("{http_base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let answer: Value = http
        .get(&search)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(hit_videos(&answer).len(), total, "{answer}");
    let mut socket = websocket::connect(&http_base).await;
    let (_, done) = websocket::search(
        &mut socket,
        json!({"type": "search", "id": "again", "text": "a cat", "k": 100}),
        GATEWAY_TIMEOUT,
    )
    .await;
    assert_eq!(done["type"], "done", "{done}");
    assert_eq!(hit_videos(&done).len(), total, "{done}");
    tiny.fleet.assert_all_running();
}

/// Two shards and only one ranker: every entry point answers within the
/// shard deadline with the served shard's results and a warning naming the
/// missing shard; `/healthz` says the stack is not ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_shard_without_ranker_gives_the_others_results_and_a_warning() {
    let mut tiny = TinyFleet::start(2, 30);
    tiny.encoder();
    tiny.fleet.worker("query", None);
    tiny.fleet.worker("ranker", Some(0));
    let http_base = tiny.fleet.gateway();
    let client = tiny.fleet.nats.client().await;
    wait_for_health(&mut tiny.fleet, &client, "shard 0 and the encoder", |r| {
        r.encoder && r.shards_ready == 1
    })
    .await;
    let js = jetstream::new(client.clone());
    let videos = tiny_pack::seed(&js, 2, 2, 3, TINY_DIM).await;
    let served: Vec<&str> = videos
        .iter()
        .filter(|v| v.shard == 0)
        .map(|v| v.video_id.as_str())
        .collect();
    let on_shard_0 = served.len() * 3;
    wait_for_health(&mut tiny.fleet, &client, "indexing shard 0", |r| {
        r.segments_indexed as usize == on_shard_0
    })
    .await;

    let check = |answer: &Value, took: Duration, what: &str| {
        assert!(took < Duration::from_secs(6), "{what} took {took:?}");
        let hits = hit_videos(answer);
        assert_eq!(hits.len(), on_shard_0, "{what}: {answer}");
        assert!(
            hits.iter().all(|v| served.contains(&v.as_str())),
            "{what}: {answer}"
        );
        assert_eq!(answer["shards_total"], 2, "{what}: {answer}");
        assert_eq!(
            warning_codes(answer),
            ["shard_unavailable"],
            "{what}: {answer}"
        );
        let message = answer["warnings"][0]["message"].as_str().unwrap();
        assert!(message.contains("shard 1"), "{what}: {message}");
    };
    let sent = Instant::now();
    let answer = requests::request_ok(
        &client,
        subjects::SEARCH_TEXT,
        &json!({"text": "a cat", "k": 100}),
        QUERY_DEADLINE,
    )
    .await;
    check(&answer, sent.elapsed(), "NATS");

    let http = reqwest::Client::new();
    let sent = Instant::now();
    let response = http
        .get(format!("{http_base}/api/v1/search?text=a%20cat&k=100"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    check(&answer, sent.elapsed(), "REST");

    let mut socket = websocket::connect(&http_base).await;
    let sent = Instant::now();
    let (_, done) = websocket::search(
        &mut socket,
        json!({"type": "search", "id": "w", "text": "a cat", "k": 100}),
        GATEWAY_TIMEOUT,
    )
    .await;
    assert_eq!(done["type"], "done", "{done}");
    check(&done, sent.elapsed(), "WebSocket");

    let health = http
        .get(format!("{http_base}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 503);
    let report: Value = health.json().await.unwrap();
    assert_eq!(report["shards_ready"], 1, "{report}");
    assert_eq!(report["shards_total"], 2, "{report}");
    tiny.fleet.assert_all_running();
}

/// nats-server SIGKILLed and started again (same port, same store) while
/// queries run and two videos are being ingested: every process reconnects,
/// queries are answered again, both jobs finish once, the catalog and the
/// segment log hold what they held, and the rankers serve the whole index.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nats_restarted_under_load_loses_nothing() {
    let media = tempfile::tempdir().expect("media dir");
    let names = ["before.mp4", "during_a.mp4", "during_b.mp4"];
    for (i, name) in names.iter().enumerate() {
        media::scene_video(&media.path().join(name), 4 + i, 2, "160x120");
    }
    let mut tiny = TinyFleet::start_with_media(2, 3, media);
    tiny.encoder();
    tiny.fleet.worker("query", None);
    tiny.fleet.worker("ranker", Some(0));
    tiny.fleet.worker("ranker", Some(1));
    tiny.fleet.worker("ingest", None);
    let client = tiny.fleet.nats.client().await;
    tiny.fleet
        .wait_until_ready(&client, Duration::from_secs(90))
        .await;
    let js = jetstream::new(client.clone());
    let catalog = Catalog::open(&js).await.expect("catalog");
    let submit = async |name: &str| -> String {
        let path = tiny.media().join(name);
        let answer = requests::request_ok(
            &client,
            subjects::INGEST,
            &json!({ "path": path }),
            Duration::from_secs(15),
        )
        .await;
        answer["video_id"].as_str().expect("video_id").to_string()
    };
    let started = Instant::now();
    let before = submit(names[0]).await;
    let record = requests::wait_for_video(
        &catalog,
        &before,
        Duration::from_secs(90),
        requests::finished,
        || {},
    )
    .await;
    assert_eq!(record.status, VideoStatus::Ready, "{record:?}");
    let before_segments = vidseek_bus::segment_log::read_video(&js, &before)
        .await
        .expect("segment log");
    eprintln!("first video ready after {:?}", started.elapsed());
    let during = [submit(names[1]).await, submit(names[2]).await];

    // Queries keep coming until the end of the test.
    let stop = stop_flag();
    let load = {
        let (client, stop) = (client.clone(), stop.clone());
        tokio::spawn(async move {
            let mut outcomes = vec![];
            while !stop.load(Ordering::SeqCst) {
                let sent = Instant::now();
                let reply = requests::request(
                    &client,
                    subjects::SEARCH_TEXT,
                    search_body(),
                    QUERY_DEADLINE,
                )
                .await;
                outcomes.push(Outcome {
                    sent,
                    took: sent.elapsed(),
                    reply,
                });
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            outcomes
        })
    };
    tokio::time::sleep(Duration::from_millis(700)).await;
    tiny.fleet.nats.restart();
    let restarted = Instant::now();
    eprintln!("nats-server restarted");

    // No job lost: both finish (redelivered if their worker lost the ack).
    for id in &during {
        let record = requests::wait_for_video(
            &catalog,
            id,
            Duration::from_secs(150),
            requests::finished,
            || tiny.fleet.assert_all_running(),
        )
        .await;
        assert_eq!(record.status, VideoStatus::Ready, "{record:?}");
        assert!(record.segment_count > 0, "{record:?}");
        eprintln!("{id} ready {:?} after the restart", restarted.elapsed());
    }
    // The state from before the restart is intact.
    let record = catalog.get(&before).await.unwrap().expect("record kept");
    assert_eq!(record.status, VideoStatus::Ready);
    let after_segments = vidseek_bus::segment_log::read_video(&js, &before)
        .await
        .expect("segment log");
    assert_eq!(after_segments, before_segments, "the segment log changed");
    let mut expected = 0;
    for id in [&before, &during[0], &during[1]] {
        let record = catalog.get(id).await.unwrap().expect("record");
        let logged = vidseek_bus::segment_log::read_video(&js, id).await.unwrap();
        assert_eq!(logged.len() as u32, record.segment_count, "{record:?}");
        expected += logged.len();
    }
    // The rankers serve every segment: health and a k=100 search agree.
    wait_for_health(
        &mut tiny.fleet,
        &client,
        "the full index after the restart",
        |r| r.ready() && r.segments_indexed as usize == expected,
    )
    .await;
    eprintln!(
        "the rankers serve all {expected} segments {:?} after the restart",
        restarted.elapsed()
    );
    let answer = requests::request_ok(
        &client,
        subjects::SEARCH_TEXT,
        &json!({"text": "a cat", "k": 100}),
        QUERY_DEADLINE,
    )
    .await;
    assert_eq!(hit_videos(&answer).len(), expected.min(100), "{answer}");
    assert!(warning_codes(&answer).is_empty(), "{answer}");
    // The fleet answers again: the load runs on a little longer, so its own
    // queries (the rankers catch up within seconds) are seen answered too.
    tokio::time::sleep(Duration::from_secs(3)).await;
    stop.store(true, Ordering::SeqCst);
    let outcomes = load.await.expect("query load");

    // Queries ended within their deadline throughout, and were answered
    // again once the fleet had reconnected.
    assert_bounded(&outcomes);
    let answered_after = outcomes
        .iter()
        .filter(|o| o.sent > restarted && matches!(o.reply, Reply::Ok(_)))
        .count();
    let failed: Vec<String> = outcomes
        .iter()
        .filter(|o| !matches!(o.reply, Reply::Ok(_)))
        .map(|o| format!("{:?}", o.reply))
        .collect();
    assert!(answered_after > 0, "no query answered after the restart");
    let last = outcomes.last().expect("queries ran");
    assert!(matches!(last.reply, Reply::Ok(_)), "{last:?}");
    eprintln!(
        "nats-server restart: {} queries, {} failed around the restart ({failed:?}), \
         {answered_after} answered after it",
        outcomes.len(),
        failed.len()
    );
}

/// The data directory out of space, for real: as root a 2 MiB tmpfs is
/// mounted on it and filled up (writes fail with ENOSPC); without root the
/// directories are made read-only (writes fail with EACCES) — the same
/// failed `write`s as far as vidseek can tell, without the mount.
struct FullDisk {
    dir: PathBuf,
    mounted: bool,
}

impl FullDisk {
    /// Prepares `dir` before any process writes to it.
    fn on(dir: &Path) -> FullDisk {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        if root {
            let status = std::process::Command::new("mount")
                .args(["-t", "tmpfs", "-o", "size=2m", "vidseek-faults"])
                .arg(dir)
                .status()
                .expect("run mount");
            assert!(
                status.success(),
                "cannot mount a tmpfs on {}",
                dir.display()
            );
        }
        FullDisk {
            dir: dir.to_path_buf(),
            mounted: root,
        }
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }

    /// Uses up the space (or the permission to write).
    fn fill(&self) {
        if self.mounted {
            use std::io::Write;
            let mut file = std::fs::File::create(self.filler()).expect("filler");
            let block = vec![0u8; 64 * 1024];
            loop {
                if let Err(err) = file.write_all(&block).and_then(|()| file.sync_all()) {
                    assert_eq!(err.raw_os_error(), Some(28), "ENOSPC expected: {err}");
                    break;
                }
            }
            // Small writes may still fit in a partly used page: fill those too.
            let mut byte = [0u8; 1];
            while file.write_all(&byte).and_then(|()| file.sync_all()).is_ok() {
                byte[0] = byte[0].wrapping_add(1);
            }
        } else {
            self.set_writable(false);
        }
    }

    /// Gives the space (or the permission) back.
    fn free(&self) {
        if self.mounted {
            std::fs::remove_file(self.filler()).expect("remove the filler");
        } else {
            self.set_writable(true);
        }
    }

    fn set_writable(&self, writable: bool) {
        use std::os::unix::fs::PermissionsExt;
        let mode = if writable { 0o755 } else { 0o555 };
        for entry in walk_dirs(&self.dir) {
            std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
    }
}

fn walk_dirs(dir: &Path) -> Vec<PathBuf> {
    let mut dirs = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            dirs.extend(walk_dirs(&entry.path()));
        }
    }
    dirs
}

impl Drop for FullDisk {
    fn drop(&mut self) {
        if self.mounted {
            // Lazy: a process still holding a file there must not keep the
            // mount (and the temp dir) alive.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.dir)
                .status();
        } else {
            self.set_writable(true);
        }
    }
}

/// Files (not directories) under `dir`, recursively.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = vec![];
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// Uploads `video` as a multipart form; returns the status and JSON body.
async fn upload(http: &reqwest::Client, base: &str, video: &Path) -> (u16, Value) {
    let bytes = std::fs::read(video).expect("read the video");
    let form = reqwest::multipart::Form::new().part(
        "file",
        reqwest::multipart::Part::bytes(bytes).file_name("upload.mp4"),
    );
    let response = http
        .post(format!("{base}/api/v1/videos"))
        .multipart(form)
        .send()
        .await
        .expect("POST /api/v1/videos");
    let status = response.status().as_u16();
    (status, response.json().await.expect("a JSON answer"))
}

/// The data directory full while a video is uploaded and another ingested:
/// the upload is refused with an error body and leaves nothing behind, the
/// ingest job never publishes a partial video, every process stays up, and
/// once there is space again the same upload and ingest complete.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_data_directory_fails_writes_clearly_and_recovers() {
    let media = tempfile::tempdir().expect("media dir");
    let video = media.path().join("scenes.mp4");
    media::scene_video(&video, 4, 2, "160x120");
    let mut tiny = TinyFleet::start_with_media(1, 3, media);
    let disk = FullDisk::on(&tiny.fleet.data_dir());
    tiny.encoder();
    tiny.fleet.worker("query", None);
    tiny.fleet.worker("ranker", Some(0));
    tiny.fleet.worker("ingest", None);
    let http_base = tiny.fleet.gateway();
    let client = tiny.fleet.nats.client().await;
    tiny.fleet
        .wait_until_ready(&client, Duration::from_secs(90))
        .await;
    let js = jetstream::new(client.clone());
    let catalog = Catalog::open(&js).await.expect("catalog");
    let http = reqwest::Client::new();
    let before_fill = files_under(&tiny.fleet.data_dir());
    disk.fill();
    let uploads = tiny.fleet.data_dir().join("library/uploads");

    // An upload into the full directory: an error answer, nothing left.
    let (status, body) = upload(&http, &http_base, &video).await;
    eprintln!("upload into a full data directory: {status} {body}");
    assert!(status >= 400, "{status} {body}");
    assert!(
        body["error"]["code"].is_string() && body["error"]["message"].is_string(),
        "{body}"
    );
    if disk.mounted {
        // A real ENOSPC is named as such (a read-only directory is not a full disk).
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (503, Some("unavailable")),
            "{body}"
        );
        assert!(
            body["error"]["message"].as_str().unwrap().contains("full"),
            "{body}"
        );
    }
    let mut after = files_under(&tiny.fleet.data_dir());
    after.retain(|p| *p != disk.filler());
    assert_eq!(after, before_fill, "the failed upload left files behind");
    assert_eq!(
        std::fs::read_dir(&uploads).map_or(0, |d| d.count()),
        0,
        "the failed upload left its directory behind"
    );

    // An ingest whose thumbnails cannot be written: never ready while full.
    let accepted = requests::request_ok(
        &client,
        subjects::INGEST,
        &json!({ "path": tiny.media().join("scenes.mp4") }),
        Duration::from_secs(15),
    )
    .await;
    let id = accepted["video_id"].as_str().expect("video_id").to_string();
    let record = requests::wait_for_video(
        &catalog,
        &id,
        Duration::from_secs(60),
        |r| r.error.is_some() || requests::finished(r),
        || tiny.fleet.assert_all_running(),
    )
    .await;
    eprintln!("ingest into a full data directory: {record:?}");
    assert_ne!(record.status, VideoStatus::Ready, "{record:?}");
    // The record says why, without the server's paths.
    let reason = record.error.clone().unwrap_or_default();
    let expected = if disk.mounted {
        "No space left"
    } else {
        "ermission denied"
    };
    assert!(reason.contains(expected), "{record:?}");
    assert!(
        !reason.contains(&*tiny.fleet.data_dir().to_string_lossy()),
        "{record:?}"
    );
    assert!(
        vidseek_bus::segment_log::read_video(&js, &id)
            .await
            .unwrap()
            .is_empty(),
        "segments were published for a video whose thumbnails were not written"
    );
    tiny.fleet.assert_all_running();

    // Space again: the job (retried, or submitted again if it failed for
    // good) and the upload complete.
    disk.free();
    if record.status == VideoStatus::Failed {
        requests::request_ok(
            &client,
            subjects::INGEST,
            &json!({ "path": tiny.media().join("scenes.mp4") }),
            Duration::from_secs(15),
        )
        .await;
    }
    let record = requests::wait_for_video(
        &catalog,
        &id,
        Duration::from_secs(120),
        |r| r.status == VideoStatus::Ready,
        || tiny.fleet.assert_all_running(),
    )
    .await;
    let segments = vidseek_bus::segment_log::read_video(&js, &id)
        .await
        .unwrap();
    assert_eq!(segments.len() as u32, record.segment_count);
    for segment in segments
        .iter()
        .filter(|s| s.meta.kind == vidseek_protocol::rank::SegmentKind::Shot)
    {
        let thumb = vidseek_protocol::query::thumbnail_file(
            &tiny.fleet.data_dir(),
            &id,
            segment.meta.index,
        );
        let bytes = std::fs::read(&thumb).unwrap_or_else(|e| panic!("{}: {e}", thumb.display()));
        assert!(
            image::load_from_memory(&bytes).is_ok(),
            "{} is not a picture",
            thumb.display()
        );
    }
    let (status, body) = upload(&http, &http_base, &video).await;
    assert_eq!(status, 202, "{body}");
    tiny.fleet.assert_all_running();
}
