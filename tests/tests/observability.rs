//! What an operator watches, on a fleet of separate processes: every worker
//! role serves Prometheus metrics on `VIDSEEK_METRICS_ADDR` that move with
//! the work done, the gateway's `/metrics` carries the bus metrics beside
//! its own, and with `VIDSEEK_LOG_JSON` the log lines one search causes in
//! the gateway, the query stage, the encoder and the ranker are JSON and
//! carry the same query id. The ingest worker is given a NATS server list
//! whose first server is dead: it connects through the second.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use vidseek_tests::process::{Fleet, FleetConfig, sample};

/// JSON logs, with the per-request lines (debug) of the bus and the gateway.
const LOG_ENV: [(&str, &str); 2] = [
    ("VIDSEEK_LOG_JSON", "true"),
    (
        "RUST_LOG",
        "info,ort=warn,vidseek_bus=debug,vidseek_gateway=debug",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_serve_metrics_and_log_the_query_id_as_json() {
    let media = tempfile::tempdir().expect("media dir");
    std::fs::copy(sample("photos.mp4"), media.path().join("photos.mp4")).expect("copy sample");
    let mut fleet = Fleet::start(
        media.path(),
        FleetConfig {
            shards: 1,
            ..FleetConfig::default()
        },
    );
    let nats_url = fleet.nats.url();
    // Nothing listens on port 1: connecting must move on to the next server.
    let server_list = format!("nats://127.0.0.1:1, {nats_url}");
    let gateway = fleet.spawn(
        "gateway",
        &["gateway"],
        &[LOG_ENV[0], LOG_ENV[1], ("VIDSEEK_HTTP_ADDR", "127.0.0.1:0")],
    );
    let mut roles = BTreeMap::new();
    for (role, args, nats) in [
        (
            "encoder",
            vec!["worker", "--role", "encoder"],
            nats_url.as_str(),
        ),
        (
            "ranker",
            vec!["worker", "--role", "ranker", "--shard", "0"],
            nats_url.as_str(),
        ),
        (
            "query",
            vec!["worker", "--role", "query"],
            nats_url.as_str(),
        ),
        (
            "ingest",
            vec!["worker", "--role", "ingest"],
            server_list.as_str(),
        ),
    ] {
        let env = [
            LOG_ENV[0],
            LOG_ENV[1],
            ("VIDSEEK_METRICS_ADDR", "127.0.0.1:0"),
            ("VIDSEEK_NATS_URL", nats),
            ("VIDSEEK_OCR", "off"),
        ];
        roles.insert(role, fleet.spawn(role, &args, &env));
    }
    let http_base = address_in(&mut fleet, gateway, "vidseek gateway: ");
    let metrics: BTreeMap<&str, String> = roles
        .iter()
        .map(|(role, index)| (*role, address_in(&mut fleet, *index, "vidseek metrics: ")))
        .collect();
    let nats = fleet.nats.client().await;
    fleet.wait_until_ready(&nats, Duration::from_secs(90)).await;

    // Work for every role: one video in, one search out.
    let http = reqwest::Client::new();
    let response = http
        .post(format!("{http_base}/api/v1/videos"))
        .json(&json!({ "path": media.path().join("photos.mp4") }))
        .send()
        .await
        .expect("POST /api/v1/videos");
    assert_eq!(response.status(), 202);
    let video: Value = response.json().await.expect("JSON");
    let video_id = video["video_id"].as_str().expect("video_id").to_string();
    let record = fleet
        .wait_ready_over_http(&http, &http_base, &video_id)
        .await;
    let segments = record["segment_count"].as_u64().expect("segment_count");
    assert!(segments > 0, "{record}");
    let search: Value = http
        .get(format!("{http_base}/api/v1/search?text=a%20cat"))
        .send()
        .await
        .expect("GET /api/v1/search")
        .json()
        .await
        .expect("search JSON");
    let query_id = search["query_id"].as_str().expect("query_id").to_string();
    assert!(
        !search["results"].as_array().expect("results").is_empty(),
        "{search}"
    );

    // Metrics: every counter and histogram the work went through moved.
    let scrape = |url: String| {
        let http = http.clone();
        async move {
            let response = http.get(&url).send().await.expect("scrape");
            assert_eq!(response.status(), 200, "{url}");
            Samples::parse(&response.text().await.expect("metrics text"))
        }
    };
    let encoder = scrape(format!("{}/metrics", metrics["encoder"])).await;
    for subject in ["vidseek.v1.encode.text", "vidseek.v1.encode.image"] {
        let labels = format!("subject=\"{subject}\",outcome=\"ok\"");
        assert!(encoder.get("vidseek_nats_requests_total", &labels) >= 1.0);
        let subject = format!("subject=\"{subject}\"");
        assert!(encoder.get("vidseek_nats_request_duration_seconds_count", &subject) >= 1.0);
        assert!(encoder.get("vidseek_nats_request_duration_seconds_sum", &subject) > 0.0);
    }
    // The image batches of one video's frames, the search's one text.
    assert!(encoder.get("vidseek_encoder_batch_size_count", "model=\"image\"") >= 1.0);
    assert!(encoder.get("vidseek_encoder_batch_size_sum", "model=\"image\"") >= segments as f64);
    assert!(
        encoder.get(
            "vidseek_encoder_batch_duration_seconds_count",
            "model=\"text\""
        ) >= 1.0
    );

    let ranker = scrape(format!("{}/metrics", metrics["ranker"])).await;
    let rank = "subject=\"vidseek.v1.rank.0\",outcome=\"ok\"";
    assert!(ranker.get("vidseek_nats_requests_total", rank) >= 1.0);
    assert!(
        ranker.get(
            "vidseek_nats_request_duration_seconds_bucket",
            "subject=\"vidseek.v1.rank.0\",le=\"+Inf\""
        ) >= 1.0
    );
    assert_eq!(
        ranker.get("vidseek_ranker_segments", "shard=\"0\""),
        segments as f64
    );
    assert_eq!(ranker.get("vidseek_ranker_ready", "shard=\"0\""), 1.0);

    let query = scrape(format!("{}/metrics", metrics["query"])).await;
    let stream = "subject=\"vidseek.v1.search.stream\",outcome=\"streamed\"";
    assert!(query.get("vidseek_nats_requests_total", stream) >= 1.0);
    for call in ["vidseek.v1.encode.text", "vidseek.v1.rank.0"] {
        let labels = format!("subject=\"{call}\",outcome=\"ok\"");
        assert!(
            query.get("vidseek_nats_calls_total", &labels) >= 1.0,
            "{call}"
        );
        let subject = format!("subject=\"{call}\"");
        assert!(query.get("vidseek_nats_call_duration_seconds_count", &subject) >= 1.0);
    }

    // The queue depth is read before each pull: nothing waits once the
    // worker is back at the queue after the video.
    let mut ingest = scrape(format!("{}/metrics", metrics["ingest"])).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while ingest.get("vidseek_ingest_queue_jobs", "state=\"waiting\"") != 0.0
        || ingest.get("vidseek_ingest_queue_jobs", "state=\"in_progress\"") != 0.0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the queue never emptied"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
        ingest = scrape(format!("{}/metrics", metrics["ingest"])).await;
    }
    assert_eq!(
        ingest.get("vidseek_ingest_videos_total", "outcome=\"done\""),
        1.0
    );
    assert_eq!(
        ingest.get("vidseek_ingest_segments_total", ""),
        segments as f64
    );
    let seconds = ingest.get("vidseek_ingest_video_seconds_total", "");
    assert!(seconds > 5.0 && seconds < 60.0, "{seconds} s of photos.mp4");
    assert!(
        ingest.get(
            "vidseek_nats_requests_total",
            "subject=\"vidseek.v1.ingest\",outcome=\"ok\""
        ) >= 1.0
    );

    let gateway_metrics = scrape(format!("{http_base}/metrics")).await;
    assert!(
        gateway_metrics.get(
            "vidseek_gateway_http_requests_total",
            "route=\"/api/v1/search\",status=\"200\""
        ) >= 1.0
    );
    assert!(
        gateway_metrics.get(
            "vidseek_nats_calls_total",
            "subject=\"vidseek.v1.ingest\",outcome=\"ok\""
        ) >= 1.0
    );

    // Logs: the search's lines in four roles are JSON with its query id,
    // the workers' inside their role's span.
    for (role, index) in [
        ("gateway", gateway),
        ("query", roles["query"]),
        ("encoder", roles["encoder"]),
        ("ranker", roles["ranker"]),
    ] {
        let log = fleet.process(index).log();
        let lines: Vec<&str> = log.lines().filter(|l| l.contains(&query_id)).collect();
        assert!(
            !lines.is_empty(),
            "no {role} log line carries query id {query_id}:\n{log}"
        );
        for line in lines {
            let parsed: Value = serde_json::from_str(line)
                .unwrap_or_else(|e| panic!("{role} log line is not JSON ({e}): {line}"));
            assert_eq!(
                query_id_of(&parsed).as_deref(),
                Some(query_id.as_str()),
                "{role}: {line}"
            );
            if role != "gateway" {
                let spans = parsed["spans"].as_array().expect("spans");
                assert!(
                    spans.iter().any(|span| span["role"] == role),
                    "not in the {role} span: {line}"
                );
            }
        }
    }
    fleet.assert_all_running();
}

/// The address a process printed after `prefix`, e.g. `vidseek metrics: `.
fn address_in(fleet: &mut Fleet, index: usize, prefix: &str) -> String {
    let line = fleet
        .process(index)
        .wait_for_line(prefix, Duration::from_secs(90));
    let address = line.split(prefix).nth(1).expect("address").trim();
    address.trim_end_matches("/metrics").to_string()
}

/// A query id recorded on the line itself or on any span it was written in.
fn query_id_of(line: &Value) -> Option<String> {
    let spans = line["spans"].as_array().into_iter().flatten();
    [&line["fields"], &line["span"]]
        .into_iter()
        .chain(spans)
        .find_map(|fields| fields["query_id"].as_str().map(String::from))
}

/// The samples of a Prometheus text page: `name{labels}` → value.
struct Samples(BTreeMap<String, f64>);

impl Samples {
    fn parse(text: &str) -> Samples {
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#') && !line.is_empty())
            .map(|line| {
                let (series, value) = line.rsplit_once(' ').expect("`series value`");
                let value = value.parse().unwrap_or_else(|e| panic!("{line}: {e}"));
                (series.to_string(), value)
            })
            .collect();
        Samples(samples)
    }

    /// The sample `name{labels}` (`name` alone for no labels); panics,
    /// listing what there is, when it is absent.
    fn get(&self, name: &str, labels: &str) -> f64 {
        let series = match labels {
            "" => name.to_string(),
            labels => format!("{name}{{{labels}}}"),
        };
        *self.0.get(&series).unwrap_or_else(|| {
            let family: Vec<&String> = self.0.keys().filter(|k| k.starts_with(name)).collect();
            panic!("no sample {series}; {name} has {family:?}")
        })
    }
}
