//! The client side of `bench/latency`: seeds a running stack's segment log
//! with synthetic unit vectors, and times searches over loopback HTTP and
//! WebSocket from concurrent clients.
//!
//! ```text
//! latency_bench seed --nats URL --data DIR --shards S --videos V --segments N --dim D [--first F]
//! latency_bench measure --url URL --mode http|ws|seed [--clients C] [--requests R] [--seconds T]
//! ```
//! `seed` publishes V videos of N shots (video ids from F on) and prints
//! nothing; `measure` prints one JSON object: latencies in milliseconds
//! (request out → final results; for `ws` also → first `partial`), their
//! percentiles, queries per second and errors. `--mode seed` sends
//! `GET /text_query?text=` (the seed-compatible route, or the Python seed
//! backend). Each client stops after R requests or T seconds.

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use vidseek_bus::NatsAccess;
use vidseek_bus::access::{Role, Secret};
use vidseek_protocol::rank::{SegmentKind, SegmentMeta, SegmentRecord};
use vidseek_protocol::sharding::shard_of;

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn number(args: &[String], name: &str, default: u64) -> u64 {
    flag(args, name).map_or(default, |v| {
        v.parse().unwrap_or_else(|_| panic!("{name} N"))
    })
}

/// splitmix64: reproducible vectors without a dependency on `rand`.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

fn unit_vector(random: &mut Random, dim: usize) -> Vec<f32> {
    let vector: Vec<f32> = (0..dim).map(|_| random.unit()).collect();
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    vector.into_iter().map(|x| x / norm).collect()
}

async fn seed(args: &[String]) {
    let nats = flag(args, "--nats").expect("--nats URL");
    let shards = number(args, "--shards", 1) as u32;
    let videos = number(args, "--videos", 10);
    let segments = number(args, "--segments", 1000) as u32;
    let dim = number(args, "--dim", 384) as usize;
    let first = number(args, "--first", 0);
    // The embedded stack's NATS takes its operator's generated password.
    let data = flag(args, "--data").expect("--data DIR (the stack's data directory)");
    let password = std::fs::read_to_string(std::path::Path::new(data).join("nats-auth/operator"))
        .expect("read the operator's NATS password");
    let access = NatsAccess::for_role(Role::Operator, Secret::new(password.trim()));
    let client = vidseek_bus::connect(nats, "latency-bench", &access, Duration::from_secs(30))
        .await
        .expect("connect to NATS");
    let js = async_nats::jetstream::new(client);
    for n in first..first + videos {
        let video_id = format!("synthetic{n:06x}");
        let mut random = Random(n);
        let records: Vec<SegmentRecord> = (0..segments)
            .map(|index| SegmentRecord {
                meta: SegmentMeta {
                    segment_id: vidseek_protocol::rank::segment_id(&video_id, index),
                    video_id: video_id.clone(),
                    video_name: format!("{video_id}.mp4"),
                    index,
                    start: f64::from(index) * 2.0,
                    end: f64::from(index) * 2.0 + 2.0,
                    kind: SegmentKind::Shot,
                    text: None,
                },
                text_vector: unit_vector(&mut random, dim),
                image_vector: None,
                terms: vec![],
            })
            .collect();
        let shard = shard_of(&video_id, shards);
        vidseek_bus::segment_log::replace_video(&js, shard, &video_id, "g1", records)
            .await
            .expect("publish synthetic segments");
    }
}

/// Query-like texts, different per request so no layer can answer from a
/// cache.
fn query(client: usize, n: usize) -> String {
    const WORDS: [&str; 16] = [
        "dog", "running", "beach", "sunset", "city", "night", "red", "car", "person", "riding",
        "bicycle", "mountain", "snow", "boat", "river", "market",
    ];
    let pick = |i: usize| WORDS[(client * 7 + n * 3 + i * 5) % WORDS.len()];
    format!("{} {} {} {}", pick(0), pick(1), pick(2), n % 97)
}

#[derive(Default)]
struct Timings {
    done_ms: Vec<f64>,
    first_partial_ms: Vec<f64>,
    errors: u64,
}

fn millis(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}

async fn http_client(
    base: String,
    seed_route: bool,
    id: usize,
    stop: Instant,
    requests: usize,
) -> Timings {
    let client = reqwest::Client::new();
    let mut timings = Timings::default();
    for n in 0..requests {
        if Instant::now() >= stop {
            break;
        }
        let (path, param) = if seed_route {
            ("/text_query", "text")
        } else {
            ("/api/v1/search", "text")
        };
        let started = Instant::now();
        let answer = client
            .get(format!("{base}{path}"))
            .query(&[(param, query(id, n))])
            .send()
            .await;
        let ok = match answer {
            Ok(response) if response.status().is_success() => {
                response.json::<Value>().await.is_ok()
            }
            _ => false,
        };
        if ok {
            timings.done_ms.push(millis(started));
        } else {
            timings.errors += 1;
        }
    }
    timings
}

async fn ws_client(base: String, id: usize, stop: Instant, requests: usize) -> Timings {
    let url = format!("{}/api/v1/ws", base.trim_end_matches('/')).replacen("http", "ws", 1);
    let mut timings = Timings::default();
    let Ok((mut socket, _)) = tokio_tungstenite::connect_async(url).await else {
        timings.errors += 1;
        return timings;
    };
    'requests: for n in 0..requests {
        if Instant::now() >= stop {
            break;
        }
        let message = json!({"type": "search", "id": format!("c{id}q{n}"), "text": query(id, n)});
        let started = Instant::now();
        if socket
            .send(Message::text(message.to_string()))
            .await
            .is_err()
        {
            timings.errors += 1;
            break;
        }
        let mut first_partial = None;
        loop {
            let frame = match tokio::time::timeout(Duration::from_secs(30), socket.next()).await {
                Ok(Some(Ok(frame))) => frame,
                _ => {
                    timings.errors += 1;
                    break 'requests;
                }
            };
            let Message::Text(text) = frame else { continue };
            let Ok(event) = serde_json::from_str::<Value>(text.as_str()) else {
                timings.errors += 1;
                continue 'requests;
            };
            match event["type"].as_str() {
                Some("partial") => {
                    first_partial.get_or_insert_with(|| millis(started));
                }
                Some("done") => {
                    timings.done_ms.push(millis(started));
                    if let Some(ms) = first_partial {
                        timings.first_partial_ms.push(ms);
                    }
                    continue 'requests;
                }
                _ => {
                    timings.errors += 1;
                    continue 'requests;
                }
            }
        }
    }
    timings
}

fn percentiles(mut values: Vec<f64>) -> Value {
    if values.is_empty() {
        return Value::Null;
    }
    values.sort_by(f64::total_cmp);
    let at = |q: f64| values[((values.len() - 1) as f64 * q).round() as usize];
    json!({"count": values.len(), "p50": at(0.50), "p95": at(0.95), "p99": at(0.99),
           "mean": values.iter().sum::<f64>() / values.len() as f64})
}

async fn measure(args: &[String]) {
    let base = flag(args, "--url")
        .expect("--url http://host:port")
        .to_string();
    let mode = flag(args, "--mode").unwrap_or("http").to_string();
    let clients = number(args, "--clients", 1) as usize;
    let requests = number(args, "--requests", 200) as usize;
    let seconds = number(args, "--seconds", 10);
    let started = Instant::now();
    let stop = started + Duration::from_secs(seconds);
    let tasks: Vec<_> = (0..clients)
        .map(|id| {
            let (base, mode) = (base.clone(), mode.clone());
            tokio::spawn(async move {
                match mode.as_str() {
                    "ws" => ws_client(base, id, stop, requests).await,
                    "seed" => http_client(base, true, id, stop, requests).await,
                    _ => http_client(base, false, id, stop, requests).await,
                }
            })
        })
        .collect();
    let mut all = Timings::default();
    for task in tasks {
        let timings = task.await.expect("client task");
        all.done_ms.extend(timings.done_ms);
        all.first_partial_ms.extend(timings.first_partial_ms);
        all.errors += timings.errors;
    }
    let wall = started.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "mode": mode,
            "clients": clients,
            "wall_s": wall,
            "queries_per_s": all.done_ms.len() as f64 / wall,
            "errors": all.errors,
            "done_ms": percentiles(all.done_ms),
            "first_partial_ms": percentiles(all.first_partial_ms),
        })
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("seed") => seed(&args).await,
        Some("measure") => measure(&args).await,
        _ => {
            eprintln!("usage: latency_bench seed|measure ...");
            std::process::exit(2);
        }
    }
}
