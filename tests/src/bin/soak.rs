//! `make soak`: a fleet of vidseek processes (gateway, encoder, query stage,
//! two ranker shards, ingest) on a loopback nats-server with the real model
//! pack, under mixed load for several minutes: text searches over REST and
//! the WebSocket, the library listed, the sample videos ingested again and
//! deleted in turn. Every few seconds it reads the resident memory and the
//! open file descriptors of every vidseek process from /proc.
//!
//! It passes when memory and descriptors are flat (after a warm-up, the
//! median of the last quarter of the samples is within a bound of the first
//! quarter's), no ingest job is lost (every submission ends ready) and no
//! request is answered with a 5xx. Results: `soak.json` and `soak.md` in
//! `VIDSEEK_SOAK_OUT` (default `bench/results`); exit status 1 when a check
//! fails.
//!
//! Settings (environment): `VIDSEEK_SOAK_SECS` (default 300),
//! `VIDSEEK_SOAK_WARMUP_SECS` (default a fifth of the run, at most 60),
//! `VIDSEEK_SOAK_SAMPLE_SECS` (5), `VIDSEEK_SOAK_MAX_QUERIES` (100000),
//! `VIDSEEK_SOAK_RSS_GROWTH` (allowed growth: 0.10 of the first quarter's
//! median plus `VIDSEEK_SOAK_RSS_SLACK_MIB`, 16), `VIDSEEK_SOAK_FD_GROWTH`
//! (8). The binary under test is `VIDSEEK_BIN`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::Mutex;
use vidseek_tests::process::{Fleet, FleetConfig, sample, workspace_root};
use vidseek_tests::websocket;

/// The sample videos re-ingested in turn (photos.srt goes along as its
/// subtitles).
const VIDEOS: [&str; 3] = ["photos.mp4", "bikes.mp4", "carphone_pristine.mp4"];
const QUERIES: [&str; 5] = [
    "a cat",
    "a bicycle on a street",
    "a rocket at night",
    "a cup of coffee",
    "一只猫",
];
/// Searches over REST that run at once (plus one WebSocket client).
const HTTP_CLIENTS: usize = 2;
/// How long a submitted video may take to become ready.
const INGEST_DEADLINE: Duration = Duration::from_secs(300);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Settings {
    run: Duration,
    warmup: Duration,
    sample_every: Duration,
    max_queries: usize,
    rss_growth: f64,
    rss_slack_kib: u64,
    fd_growth: u64,
    out: PathBuf,
}

impl Settings {
    fn from_env() -> Settings {
        let run = Duration::from_secs(env_or("VIDSEEK_SOAK_SECS", 300u64).max(20));
        let warmup_default = (run.as_secs() / 5).min(60);
        Settings {
            run,
            warmup: Duration::from_secs(env_or("VIDSEEK_SOAK_WARMUP_SECS", warmup_default)),
            sample_every: Duration::from_secs(env_or("VIDSEEK_SOAK_SAMPLE_SECS", 5u64).max(1)),
            max_queries: env_or("VIDSEEK_SOAK_MAX_QUERIES", 100_000usize),
            rss_growth: env_or("VIDSEEK_SOAK_RSS_GROWTH", 0.10f64),
            rss_slack_kib: env_or("VIDSEEK_SOAK_RSS_SLACK_MIB", 16u64) * 1024,
            fd_growth: env_or("VIDSEEK_SOAK_FD_GROWTH", 8u64),
            out: std::env::var_os("VIDSEEK_SOAK_OUT")
                .map(PathBuf::from)
                .unwrap_or_else(|| workspace_root().join("bench/results")),
        }
    }
}

/// Resident memory (KiB) and open descriptors of `pid`, from /proc.
fn usage(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
    Some((rss, fds))
}

/// What the load saw.
#[derive(Default)]
struct Counts {
    http_searches: AtomicUsize,
    ws_searches: AtomicUsize,
    listings: AtomicUsize,
    client_errors: AtomicUsize,
    server_errors: AtomicUsize,
    transport_errors: AtomicUsize,
    ws_errors: AtomicUsize,
    ingests_submitted: AtomicUsize,
    ingests_ready: AtomicUsize,
    ingests_failed: AtomicUsize,
    deletes: AtomicUsize,
}

impl Counts {
    fn queries(&self) -> usize {
        self.http_searches.load(Ordering::Relaxed) + self.ws_searches.load(Ordering::Relaxed)
    }

    /// Counts an HTTP status; a 5xx is remembered with its body.
    async fn status(&self, status: u16, body: &str, failures: &Mutex<Vec<String>>) {
        if status >= 500 {
            self.server_errors.fetch_add(1, Ordering::Relaxed);
            failures.lock().await.push(format!("{status} {body}"));
        } else if status >= 400 {
            self.client_errors.fetch_add(1, Ordering::Relaxed);
        }
    }
}

struct Load {
    base: String,
    http: reqwest::Client,
    counts: Counts,
    failures: Mutex<Vec<String>>,
    latencies_ms: Mutex<Vec<f64>>,
    stop: AtomicBool,
    max_queries: usize,
}

impl Load {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed) && self.counts.queries() < self.max_queries
    }

    async fn rest_searches(&self, client: usize) {
        let mut turn = client;
        while self.running() {
            turn += 1;
            if turn.is_multiple_of(20) {
                self.get("/api/v1/videos", &[], &self.counts.listings).await;
                continue;
            }
            let text = QUERIES[turn % QUERIES.len()];
            let sent = Instant::now();
            let query = [("text", text), ("k", "10")];
            if self
                .get("/api/v1/search", &query, &self.counts.http_searches)
                .await
            {
                self.latencies_ms
                    .lock()
                    .await
                    .push(sent.elapsed().as_secs_f64() * 1000.0);
            }
        }
    }

    /// GETs `path?query`; counts it in `counter` and its status; true on success.
    async fn get(&self, path: &str, query: &[(&str, &str)], counter: &AtomicUsize) -> bool {
        counter.fetch_add(1, Ordering::Relaxed);
        let request = self.http.get(format!("{}{path}", self.base)).query(query);
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                self.counts.status(status, &body, &self.failures).await;
                status == 200
            }
            Err(err) => {
                self.counts.transport_errors.fetch_add(1, Ordering::Relaxed);
                self.failures
                    .lock()
                    .await
                    .push(format!("GET {path}: {err}"));
                false
            }
        }
    }

    async fn websocket_searches(&self) {
        let mut socket = websocket::connect(&self.base).await;
        let mut turn = 0;
        while self.running() {
            turn += 1;
            let message = json!({
                "type": "search",
                "id": format!("soak{turn}"),
                "text": QUERIES[turn % QUERIES.len()],
                "k": 10,
            });
            let (_, last) = websocket::search(&mut socket, message, Duration::from_secs(30)).await;
            self.counts.ws_searches.fetch_add(1, Ordering::Relaxed);
            if last["type"] != "done" {
                self.counts.ws_errors.fetch_add(1, Ordering::Relaxed);
                self.failures
                    .lock()
                    .await
                    .push(format!("WebSocket: {last}"));
            }
        }
    }

    /// Ingests the sample videos again and again; every third ready video is
    /// deleted (and then ingested afresh on its next turn).
    async fn ingests(&self, media: &Path) {
        let mut turn = 0;
        while self.running() {
            let name = VIDEOS[turn % VIDEOS.len()];
            turn += 1;
            let Some(id) = self.submit(&media.join(name)).await else {
                continue;
            };
            if !self.wait_ready(&id).await {
                continue;
            }
            if turn.is_multiple_of(3) {
                self.delete(&id).await;
            }
        }
    }

    async fn submit(&self, path: &Path) -> Option<String> {
        let response = self
            .http
            .post(format!("{}/api/v1/videos", self.base))
            .json(&json!({ "path": path }))
            .send()
            .await;
        self.counts
            .ingests_submitted
            .fetch_add(1, Ordering::Relaxed);
        let response = match response {
            Ok(response) => response,
            Err(err) => {
                self.counts.transport_errors.fetch_add(1, Ordering::Relaxed);
                self.failures.lock().await.push(format!("ingest: {err}"));
                return None;
            }
        };
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or_default();
        self.counts
            .status(status, &body.to_string(), &self.failures)
            .await;
        if status != 202 {
            self.counts.ingests_failed.fetch_add(1, Ordering::Relaxed);
            self.failures
                .lock()
                .await
                .push(format!("ingest refused: {status} {body}"));
            return None;
        }
        body["video_id"].as_str().map(str::to_string)
    }

    /// Polls the record until ready (true) or failed or too late (false,
    /// counted as failed: a lost job).
    async fn wait_ready(&self, id: &str) -> bool {
        let deadline = Instant::now() + INGEST_DEADLINE;
        while Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(500)).await;
            let Ok(response) = self
                .http
                .get(format!("{}/api/v1/videos/{id}", self.base))
                .send()
                .await
            else {
                continue;
            };
            let status = response.status().as_u16();
            let record: Value = response.json().await.unwrap_or_default();
            self.counts
                .status(status, &record.to_string(), &self.failures)
                .await;
            match record["status"].as_str() {
                Some("ready") => {
                    self.counts.ingests_ready.fetch_add(1, Ordering::Relaxed);
                    return true;
                }
                Some("failed") => break,
                _ => {}
            }
        }
        self.counts.ingests_failed.fetch_add(1, Ordering::Relaxed);
        self.failures
            .lock()
            .await
            .push(format!("video {id} did not become ready"));
        false
    }

    async fn delete(&self, id: &str) {
        let response = self
            .http
            .delete(format!("{}/api/v1/videos/{id}", self.base))
            .send()
            .await;
        self.counts.deletes.fetch_add(1, Ordering::Relaxed);
        match response {
            Ok(response) => {
                let status = response.status().as_u16();
                let body = response.text().await.unwrap_or_default();
                self.counts.status(status, &body, &self.failures).await;
                if status != 200 {
                    self.failures
                        .lock()
                        .await
                        .push(format!("delete {id}: {status} {body}"));
                }
            }
            Err(err) => {
                self.counts.transport_errors.fetch_add(1, Ordering::Relaxed);
                self.failures.lock().await.push(format!("delete: {err}"));
            }
        }
    }
}

/// One process's samples: (seconds since the start, RSS KiB, descriptors).
struct Series {
    name: String,
    pid: u32,
    samples: Vec<(f64, u64, u64)>,
}

fn median(mut values: Vec<u64>) -> u64 {
    values.sort_unstable();
    values.get(values.len() / 2).copied().unwrap_or(0)
}

/// First- and last-quarter medians of the samples after the warm-up.
fn quarters(series: &Series, warmup: f64, pick: impl Fn(&(f64, u64, u64)) -> u64) -> (u64, u64) {
    let warm: Vec<u64> = series
        .samples
        .iter()
        .filter(|s| s.0 >= warmup)
        .map(pick)
        .collect();
    let quarter = (warm.len() / 4).max(1);
    (
        median(warm[..quarter.min(warm.len())].to_vec()),
        median(warm[warm.len().saturating_sub(quarter)..].to_vec()),
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::process::ExitCode {
    let settings = Settings::from_env();
    let started = Instant::now();
    let media = tempfile::tempdir().expect("media dir");
    for name in VIDEOS.iter().chain(&["photos.srt"]) {
        std::fs::copy(sample(name), media.path().join(name)).expect("copy a sample");
    }
    let mut fleet = Fleet::start(media.path(), FleetConfig::default());
    let base = fleet.gateway();
    fleet.worker("encoder", None);
    fleet.worker("query", None);
    fleet.worker("ranker", Some(0));
    fleet.worker("ranker", Some(1));
    fleet.worker("ingest", None);
    let nats = fleet.nats.client().await;
    fleet
        .wait_until_ready(&nats, Duration::from_secs(180))
        .await;
    let processes: Vec<(String, u32)> = (0..6)
        .map(|i| {
            let p = fleet.process(i);
            (p.name.clone(), p.pid())
        })
        .collect();
    eprintln!(
        "soak: fleet ready after {:?}; running {:?} (warm-up {:?}) against {base}",
        started.elapsed(),
        settings.run,
        settings.warmup
    );

    let load = Arc::new(Load {
        base: base.clone(),
        http: reqwest::Client::new(),
        counts: Counts::default(),
        failures: Mutex::new(vec![]),
        latencies_ms: Mutex::new(vec![]),
        stop: AtomicBool::new(false),
        max_queries: settings.max_queries,
    });
    let mut tasks = vec![];
    for client in 0..HTTP_CLIENTS {
        let load = load.clone();
        tasks.push(tokio::spawn(
            async move { load.rest_searches(client).await },
        ));
    }
    {
        let load = load.clone();
        tasks.push(tokio::spawn(async move { load.websocket_searches().await }));
    }
    {
        let (load, media) = (load.clone(), media.path().to_path_buf());
        tasks.push(tokio::spawn(async move { load.ingests(&media).await }));
    }

    let load_started = Instant::now();
    let mut series: Vec<Series> = processes
        .iter()
        .map(|(name, pid)| Series {
            name: name.clone(),
            pid: *pid,
            samples: vec![],
        })
        .collect();
    while load_started.elapsed() < settings.run && load.running() {
        fleet.assert_all_running();
        let at = load_started.elapsed().as_secs_f64();
        for s in &mut series {
            if let Some((rss, fds)) = usage(s.pid) {
                s.samples.push((at, rss, fds));
            }
        }
        tokio::time::sleep(settings.sample_every).await;
    }
    load.stop.store(true, Ordering::Relaxed);
    // The ingest loop finishes the job it is waiting for: nothing submitted
    // is abandoned unchecked.
    for task in tasks {
        task.await.expect("load task");
    }
    fleet.assert_all_running();
    let elapsed = load_started.elapsed();

    let mut latencies = std::mem::take(&mut *load.latencies_ms.lock().await);
    latencies.sort_by(f64::total_cmp);
    let counts = &load.counts;
    let get = |c: &AtomicUsize| c.load(Ordering::Relaxed);
    let warmup = settings.warmup.as_secs_f64();
    let mut checks = vec![];
    let mut processes_json = vec![];
    for s in &series {
        let (rss_first, rss_last) = quarters(s, warmup, |x| x.1);
        let (fd_first, fd_last) = quarters(s, warmup, |x| x.2);
        let rss_bound =
            (rss_first as f64 * (1.0 + settings.rss_growth)) as u64 + settings.rss_slack_kib;
        let fd_bound = fd_first + settings.fd_growth;
        let rss_flat = rss_last <= rss_bound;
        let fd_flat = fd_last <= fd_bound;
        checks.push((format!("{} memory flat", s.name), rss_flat));
        checks.push((format!("{} descriptors flat", s.name), fd_flat));
        processes_json.push(json!({
            "name": s.name,
            "pid": s.pid,
            "rss_kib": {"first_quarter_median": rss_first, "last_quarter_median": rss_last,
                        "bound": rss_bound, "max": s.samples.iter().map(|x| x.1).max(), "flat": rss_flat},
            "fds": {"first_quarter_median": fd_first, "last_quarter_median": fd_last,
                    "bound": fd_bound, "max": s.samples.iter().map(|x| x.2).max(), "flat": fd_flat},
            "samples": s.samples.iter().map(|(t, rss, fds)| json!([(t * 10.0).round() / 10.0, rss, fds])).collect::<Vec<_>>(),
        }));
    }
    let lost = get(&counts.ingests_submitted) - get(&counts.ingests_ready);
    checks.push(("no ingest job lost".into(), lost == 0));
    checks.push(("no 5xx answer".into(), get(&counts.server_errors) == 0));
    checks.push((
        "no failed request".into(),
        get(&counts.transport_errors) + get(&counts.ws_errors) == 0,
    ));
    let passed = checks.iter().all(|(_, ok)| *ok);
    let failures = load.failures.lock().await.clone();
    let result = json!({
        "benchmark": "soak",
        "passed": passed,
        "duration_s": elapsed.as_secs_f64().round(),
        "warmup_s": warmup,
        "sample_every_s": settings.sample_every.as_secs(),
        "binary": vidseek_tests::paths::vidseek_bin(),
        "load": {
            "http_searches": get(&counts.http_searches),
            "websocket_searches": get(&counts.ws_searches),
            "library_listings": get(&counts.listings),
            "searches_per_s": (counts.queries() as f64 / elapsed.as_secs_f64() * 10.0).round() / 10.0,
            "http_search_ms": {"p50": percentile(&latencies, 0.5), "p95": percentile(&latencies, 0.95),
                               "p99": percentile(&latencies, 0.99), "max": latencies.last().copied().unwrap_or(0.0)},
            "ingests_submitted": get(&counts.ingests_submitted),
            "ingests_ready": get(&counts.ingests_ready),
            "ingests_failed": get(&counts.ingests_failed),
            "ingests_lost": lost,
            "deletes": get(&counts.deletes),
            "http_4xx": get(&counts.client_errors),
            "http_5xx": get(&counts.server_errors),
            "transport_errors": get(&counts.transport_errors),
            "websocket_errors": get(&counts.ws_errors),
        },
        "checks": checks.iter().map(|(name, ok)| json!({"check": name, "passed": ok})).collect::<Vec<_>>(),
        "failures": failures.iter().take(50).collect::<Vec<_>>(),
        "processes": processes_json,
    });
    std::fs::create_dir_all(&settings.out).expect("results dir");
    let json_path = settings.out.join("soak.json");
    std::fs::write(&json_path, serde_json::to_string_pretty(&result).unwrap())
        .expect("write soak.json");
    let markdown = summary(&result);
    std::fs::write(settings.out.join("soak.md"), &markdown).expect("write soak.md");
    println!("{markdown}");
    eprintln!("soak: results in {}", json_path.display());
    drop(fleet);
    if passed {
        std::process::ExitCode::SUCCESS
    } else {
        std::process::ExitCode::FAILURE
    }
}

/// The Markdown summary of a result.
fn summary(result: &Value) -> String {
    let load = &result["load"];
    let mut out = format!(
        "# vidseek soak\n\n{} — {} s of load (the first {} s a warm-up, left out of the comparison), sampled every {} s.\n\n",
        if result["passed"] == true {
            "PASSED"
        } else {
            "FAILED"
        },
        result["duration_s"],
        result["warmup_s"],
        result["sample_every_s"],
    );
    out += &format!(
        "Searches: {} REST + {} WebSocket ({} /s), REST p50 {:.0} ms, p99 {:.0} ms; {} library listings.\n\
         Ingests: {} submitted, {} ready, {} lost; {} deletes. HTTP 4xx {}, 5xx {}, transport errors {}, WebSocket errors {}.\n\n",
        load["http_searches"],
        load["websocket_searches"],
        load["searches_per_s"],
        load["http_search_ms"]["p50"].as_f64().unwrap_or(0.0),
        load["http_search_ms"]["p99"].as_f64().unwrap_or(0.0),
        load["library_listings"],
        load["ingests_submitted"],
        load["ingests_ready"],
        load["ingests_lost"],
        load["deletes"],
        load["http_4xx"],
        load["http_5xx"],
        load["transport_errors"],
        load["websocket_errors"],
    );
    out += "| process | RSS MiB first quarter → last quarter (max) | fds first → last (max) | flat |\n|---|---|---|---|\n";
    let mib = |v: &Value| v.as_f64().unwrap_or(0.0) / 1024.0;
    for p in result["processes"].as_array().into_iter().flatten() {
        let (rss, fds) = (&p["rss_kib"], &p["fds"]);
        out += &format!(
            "| {} | {:.1} → {:.1} ({:.1}) | {} → {} ({}) | {} |\n",
            p["name"].as_str().unwrap_or_default(),
            mib(&rss["first_quarter_median"]),
            mib(&rss["last_quarter_median"]),
            mib(&rss["max"]),
            fds["first_quarter_median"],
            fds["last_quarter_median"],
            fds["max"],
            if rss["flat"] == true && fds["flat"] == true {
                "yes"
            } else {
                "NO"
            },
        );
    }
    out
}
