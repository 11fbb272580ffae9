//! The embedded stack end to end: `vidseek up` with the real model pack,
//! real videos ingested through the HTTP API, then searched by text and by
//! image over REST, WebSocket and raw NATS.

use std::path::Path;
use std::time::Duration;

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::Message;
use vidseek_tests::photos::coffee_picture;
use vidseek_tests::stack::{EmbeddedStack, sample};
use vidseek_tests::websocket;

/// The photo slideshow shows each photo for 4 s (see photos.srt).
const CAT: (f64, f64) = (4.0, 8.0);
const COFFEE: (f64, f64) = (8.0, 12.0);

/// Sends a request and decodes its JSON answer.
async fn json(request: reqwest::RequestBuilder) -> Value {
    request.send().await.unwrap().json().await.unwrap()
}

fn overlaps(hit: &Value, (start, end): (f64, f64)) -> bool {
    hit["start"].as_f64().unwrap() < end && hit["end"].as_f64().unwrap() > start
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_stack_end_to_end() {
    let media = tempfile::tempdir().unwrap();
    for name in ["photos.mp4", "photos.srt", "bikes.mp4"] {
        std::fs::copy(sample(name), media.path().join(name)).unwrap();
    }
    let stack = EmbeddedStack::start(media.path());
    let http = reqwest::Client::new();

    assert_eq!(
        http.get(stack.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let photos = stack.submit(&http, &media.path().join("photos.mp4")).await;
    let bikes = stack.submit(&http, &media.path().join("bikes.mp4")).await;
    let record = stack.wait_ready(&http, &photos).await;
    assert!(
        (record["duration"].as_f64().unwrap() - 24.0).abs() < 0.5,
        "{record}"
    );
    assert!(record["segment_count"].as_u64().unwrap() >= 6, "{record}");
    stack.wait_ready(&http, &bikes).await;
    // Ingesting the same file again is the same video, not a second one.
    assert_eq!(
        stack.submit(&http, &media.path().join("bikes.mp4")).await,
        bikes
    );
    stack.wait_ready(&http, &bikes).await;
    let videos: Value = json(http.get(stack.url("/api/v1/videos"))).await;
    assert_eq!(videos["videos"].as_array().unwrap().len(), 2, "{videos}");

    rest_text_search(&http, &stack, &photos).await;
    rest_image_search(&http, &stack, &photos, media.path()).await;
    websocket_streams_partials(&stack, &photos).await;
    raw_nats_protocol(&stack).await;
    bad_requests(&http, &stack).await;
    segments_and_media(&http, &stack, &photos).await;
}

async fn rest_text_search(http: &reqwest::Client, stack: &EmbeddedStack, photos: &str) {
    let answer: Value = json(
        http.get(stack.url("/api/v1/search"))
            .query(&[("text", "a cat"), ("k", "5")]),
    )
    .await;
    let results = answer["results"].as_array().unwrap();
    assert!(results.len() <= 5 && !results.is_empty(), "{answer}");
    let top = &results[0];
    assert_eq!(top["video_id"], photos, "{answer}");
    assert!(overlaps(top, CAT), "the cat is at 4–8 s: {answer}");
    let scores: Vec<f64> = results
        .iter()
        .map(|r| r["score"].as_f64().unwrap())
        .collect();
    assert!(
        scores.windows(2).all(|w| w[0] >= w[1]),
        "sorted by score: {scores:?}"
    );
    assert!(scores.iter().all(|s| (0.0..=1.0).contains(s)));
    assert_eq!(top["play_url"], format!("/media/videos/{photos}"));

    // A minimum score filters.
    let strict: Value = json(
        http.get(stack.url("/api/v1/search"))
            .query(&[("text", "a cat"), ("min_score", "0.9")]),
    )
    .await;
    assert!(
        strict["results"]
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["score"].as_f64().unwrap() >= 0.9)
    );
    chinese_queries(http, stack, photos).await;
}

/// Chinese queries are translated by the default pack and say what they
/// were searched as; a language with no translation path is warned about.
async fn chinese_queries(http: &reqwest::Client, stack: &EmbeddedStack, photos: &str) {
    for (query, english, (start, end)) in [
        ("一杯咖啡", "coffee", COFFEE),
        ("一只猫", "cat", CAT),
        // Traditional characters, and a Latin word kept inside a Chinese query.
        ("一隻 tabby 貓", "tabby cat", CAT),
    ] {
        let answer: Value = json(
            http.get(stack.url("/api/v1/search"))
                .query(&[("text", query)]),
        )
        .await;
        let translation = &answer["query_translation"];
        assert_eq!(translation["language"], "zh", "{query}: {answer}");
        assert!(
            translation["text"].as_str().unwrap().contains(english),
            "{query} is searched as English containing {english:?}: {answer}"
        );
        assert!(answer.get("warnings").is_none(), "{query}: {answer}");
        let top = &answer["results"][0];
        assert_eq!(top["video_id"], photos, "{query}: {answer}");
        assert!(
            overlaps(top, (start, end)),
            "{query} finds {start}–{end} s first: {answer}"
        );
    }
    let japanese: Value = json(
        http.get(stack.url("/api/v1/search"))
            .query(&[("text", "海辺で踊る人")]),
    )
    .await;
    assert_eq!(
        japanese["warnings"][0]["code"], "language_unsupported",
        "{japanese}"
    );
    assert!(japanese.get("query_translation").is_none(), "{japanese}");
}

async fn rest_image_search(
    http: &reqwest::Client,
    stack: &EmbeddedStack,
    photos: &str,
    dir: &Path,
) {
    let picture = coffee_picture(dir);
    let form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(picture).file_name("coffee.jpg"),
    );
    let answer: Value = json(http.post(stack.url("/api/v1/search")).multipart(form)).await;
    let top = &answer["results"][0];
    assert_eq!(top["video_id"], photos, "{answer}");
    assert!(overlaps(top, COFFEE), "the coffee is at 8–12 s: {answer}");
    assert_eq!(top["kind"], "shot");
}

async fn websocket_streams_partials(stack: &EmbeddedStack, photos: &str) {
    let mut socket = websocket::connect(&stack.url("")).await;
    let search = json!({"type": "search", "id": "q1", "text": "a cup of coffee"});
    let (partials, done) = websocket::search(&mut socket, search, Duration::from_secs(20)).await;
    assert_eq!(done["type"], "done", "{done}");
    assert!(
        partials.iter().chain([&done]).all(|e| e["id"] == "q1"),
        "{partials:?} {done}"
    );
    // Two shards: one partial after the first shard, then done.
    assert_eq!(partials.len(), 1, "{partials:?}");
    assert_eq!(partials[0]["shards_total"], 2);
    assert_eq!(partials[0]["shards_done"], 1);
    assert_eq!(done["shards_done"], 2);
    let top = &done["results"][0];
    assert_eq!(top["video_id"], photos, "{done}");
    assert!(overlaps(top, COFFEE), "{done}");

    // Garbage gets an error event and the socket stays usable.
    socket.send(Message::text("{not json")).await.unwrap();
    let frame = tokio::time::timeout(Duration::from_secs(10), socket.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    let event: Value = serde_json::from_str(frame.to_text().unwrap()).unwrap();
    assert_eq!(event["type"], "error", "{event}");
    assert_eq!(event["code"], "bad_request", "{event}");
}

/// Speaks the NATS text protocol over a plain TCP socket: no client library
/// is needed to search.
async fn raw_nats_protocol(stack: &EmbeddedStack) {
    let address = stack.nats_url.trim_start_matches("nats://");
    let socket = tokio::net::TcpStream::connect(address).await.unwrap();
    let (read, mut write) = socket.into_split();
    let mut read = BufReader::new(read);
    let mut line = String::new();
    read.read_line(&mut line).await.unwrap();
    assert!(line.starts_with("INFO "), "{line}");
    let body = r#"{"text":"a cup of coffee","k":3}"#;
    // The embedded server admits only known users: the operator's password
    // is in the data directory.
    let connect = json!({
        "verbose": false,
        "pedantic": false,
        "headers": true,
        "user": "operator",
        "pass": stack.operator_password(),
    });
    let commands = format!(
        "CONNECT {connect}\r\nSUB _INBOX.raw 1\r\nPUB vidseek.v1.search.text _INBOX.raw {}\r\n{body}\r\nPING\r\n",
        body.len()
    );
    write.write_all(commands.as_bytes()).await.unwrap();
    let reply = tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            line.clear();
            read.read_line(&mut line).await.unwrap();
            // MSG <subject> <sid> <bytes> or HMSG <subject> <sid> <hdr> <total>
            let parts: Vec<&str> = line.split_whitespace().collect();
            let (header_len, total) = match parts.first() {
                Some(&"MSG") => (0, parts[3].parse::<usize>().unwrap()),
                Some(&"HMSG") => (parts[3].parse().unwrap(), parts[4].parse().unwrap()),
                _ => continue,
            };
            let mut payload = vec![0; total + 2];
            read.read_exact(&mut payload).await.unwrap();
            return String::from_utf8(payload[header_len..total].to_vec()).unwrap();
        }
    })
    .await
    .expect("a reply over raw NATS");
    let answer: Value = serde_json::from_str(&reply).unwrap_or_else(|e| panic!("{e}: {reply}"));
    let results = answer["results"].as_array().unwrap();
    assert_eq!(results.len(), 3, "{answer}");
    assert!(overlaps(&results[0], COFFEE), "{answer}");
}

async fn bad_requests(http: &reqwest::Client, stack: &EmbeddedStack) {
    let status = |query: Vec<(&'static str, String)>| {
        let request = http.get(stack.url("/api/v1/search")).query(&query);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            let body: Value = response.json().await.unwrap();
            (
                status,
                body["error"]["code"].as_str().unwrap_or("").to_string(),
            )
        }
    };
    assert_eq!(
        status(vec![("text", "   ".into())]).await,
        (400, "bad_request".into())
    );
    assert_eq!(
        status(vec![("text", "cat".into()), ("k", "500".into())]).await,
        (400, "bad_request".into())
    );
    assert_eq!(status(vec![("text", "x".repeat(5000))]).await.0 / 100, 4);
    let not_an_image = reqwest::multipart::Form::new().part(
        "image",
        // A GIF header declaring 16x16 px, then garbage.
        reqwest::multipart::Part::bytes(b"GIF89a\x10\x00\x10\x00 but not really".to_vec())
            .file_name("x.gif"),
    );
    let response = http
        .post(stack.url("/api/v1/search"))
        .multipart(not_an_image)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
    let response = http
        .get(stack.url("/api/v1/videos/vdoesnotexist"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 404);
    let outside = http
        .post(stack.url("/api/v1/videos"))
        .json(&json!({"path": "/etc/passwd"}))
        .send()
        .await
        .unwrap();
    assert_eq!(outside.status(), 403);
    let traversal = http
        .get(stack.url("/media/thumbs/..%2F..%2Fetc/passwd"))
        .send()
        .await
        .unwrap();
    assert!(
        traversal.status().is_client_error(),
        "{}",
        traversal.status()
    );
}

async fn segments_and_media(http: &reqwest::Client, stack: &EmbeddedStack, photos: &str) {
    let listing: Value = http
        .get(stack.url(&format!("/api/v1/videos/{photos}/segments")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let segments = listing["segments"].as_array().unwrap();
    let shots = segments.iter().filter(|s| s["kind"] == "shot").count();
    let subtitles = segments.iter().filter(|s| s["kind"] == "subtitle").count();
    assert_eq!(shots, 6, "six photos, six shots: {listing}");
    assert_eq!(subtitles, 6, "six subtitle cues: {listing}");
    // Every thumbnail exists and is a JPEG.
    for segment in segments {
        let url = stack.url(segment["thumbnail_url"].as_str().unwrap());
        let bytes = http.get(url).send().await.unwrap().bytes().await.unwrap();
        assert_eq!(&bytes[..2], &[0xFF, 0xD8], "{segment}");
    }
    // The video is served with range support.
    let response = http
        .get(stack.url(&format!("/media/videos/{photos}")))
        .header("Range", "bytes=0-99")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 206);
    assert_eq!(response.bytes().await.unwrap().len(), 100);
    let metrics = http
        .get(stack.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("vidseek_gateway_"), "{metrics}");
    // Under `up` every role runs in the gateway's process: its page shows
    // theirs too (ingest's encodes, the shards' answers to the readiness
    // probes, the finished jobs).
    for sample in [
        "vidseek_nats_requests_total{subject=\"vidseek.v1.encode.image\",outcome=\"ok\"}",
        "vidseek_encoder_batch_size_count{model=\"image\"}",
        "vidseek_ranker_ready{shard=\"0\"} 1",
        "vidseek_ingest_videos_total{outcome=\"done\"}",
    ] {
        assert!(metrics.contains(sample), "no {sample} in {metrics}");
    }
    let openapi: Value = json(http.get(stack.url("/api/v1/openapi.json"))).await;
    assert!(openapi["paths"]["/api/v1/search"].is_object(), "{openapi}");
}
