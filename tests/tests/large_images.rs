//! Photos of every size against the real stack (`vidseek up`, the real
//! model pack): a frame of the sample slideshow, upscaled with grain into
//! 1, 5 and 20 MiB JPEGs like a camera's, searched over REST, WebSocket,
//! the seed route and the CLI must find the segment it came from. Over the
//! limit, decompression bombs, broken files and raw NATS clients with
//! pictures too large get clear errors, and the stack stays up.

use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use vidseek_protocol::query::MAX_IMAGE_BYTES;
use vidseek_protocol::subjects;
use vidseek_tests::photos::{self, MIB};
use vidseek_tests::requests::{Reply, request};
use vidseek_tests::stack::{EmbeddedStack, sample, vidseek_bin};
use vidseek_tests::websocket;

/// The coffee photo is shown from 8 s to 12 s of the slideshow.
const COFFEE: (f64, f64) = (8.0, 12.0);
const COFFEE_AT: f64 = 10.0;

fn overlaps(start: f64, end: f64) -> bool {
    start < COFFEE.1 && end > COFFEE.0
}

fn assert_coffee_first(what: &str, results: &Value) {
    let top = &results[0];
    let (start, end) = (top["start"].as_f64(), top["end"].as_f64());
    assert!(
        matches!((start, end), (Some(s), Some(e)) if overlaps(s, e)),
        "{what}: the coffee photo is at 8–12 s, the top hit is {top}"
    );
}

fn form(bytes: &[u8]) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(bytes.to_vec()).file_name("photo.jpg"),
    )
}

async fn rest(http: &reqwest::Client, stack: &EmbeddedStack, bytes: &[u8]) -> (u16, Value) {
    let response = http
        .post(stack.url("/api/v1/search?k=3"))
        .multipart(form(bytes))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

async fn websocket_final(stack: &EmbeddedStack, bytes: &[u8]) -> Value {
    let mut socket = websocket::connect(&stack.url("")).await;
    let message = json!({
        "type": "search",
        "id": "photo",
        "k": 3,
        "image_base64": base64::engine::general_purpose::STANDARD.encode(bytes),
    });
    websocket::search(&mut socket, message, Duration::from_secs(60))
        .await
        .1
}

/// The seed route answers segment ids; `/video_library` gives their times.
async fn seed_top_segment(http: &reqwest::Client, stack: &EmbeddedStack, bytes: &[u8]) -> Value {
    let response = http
        .post(stack.url("/image_query"))
        .multipart(form(bytes))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let hits: Value = response.json().await.unwrap();
    let id = hits[0]["id"].as_str().expect("a top hit").to_string();
    http.get(stack.url("/video_library"))
        .query(&[("id", id)])
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// `vidseek search --image FILE --json`, which talks to NATS directly.
fn cli_search(stack: &EmbeddedStack, file: &Path) -> (bool, String, String) {
    let output = std::process::Command::new(vidseek_bin())
        .args(["search", "-k", "3", "--json", "--image"])
        .arg(file)
        .envs(stack.client_env())
        .output()
        .expect("run vidseek search");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_of_every_size_find_their_segment_from_every_entry_point() {
    let media = tempfile::tempdir().unwrap();
    for name in ["photos.mp4", "photos.srt"] {
        std::fs::copy(sample(name), media.path().join(name)).unwrap();
    }
    let stack = EmbeddedStack::start(media.path());
    let http = reqwest::Client::new();
    stack
        .ingest_and_wait(&http, &media.path().join("photos.mp4"))
        .await;
    let coffee = photos::video_frame(&sample("photos.mp4"), COFFEE_AT);

    for target in [MIB, 5 * MIB, MAX_IMAGE_BYTES - 64 * 1024] {
        let photo = photos::photo_of_size(&coffee, target);
        let what = format!("a {:.1} MiB photo", photo.len() as f64 / MIB as f64);

        let (status, answer) = rest(&http, &stack, &photo).await;
        assert_eq!(status, 200, "REST, {what}: {answer}");
        assert_coffee_first(&format!("REST, {what}"), &answer["results"]);

        let done = websocket_final(&stack, &photo).await;
        assert_eq!(done["type"], "done", "WebSocket, {what}: {done}");
        assert_coffee_first(&format!("WebSocket, {what}"), &done["results"]);

        let entry = seed_top_segment(&http, &stack, &photo).await;
        assert_coffee_first(&format!("seed route, {what}"), &json!([entry]));

        let file = media.path().join("query.jpg");
        std::fs::write(&file, &photo).unwrap();
        let (ok, stdout, stderr) = cli_search(&stack, &file);
        assert!(ok, "CLI, {what}: {stderr}");
        let answer: Value = serde_json::from_str(&stdout).expect("the CLI prints JSON");
        assert_coffee_first(&format!("CLI, {what}"), &answer["results"]);
    }

    over_the_limit(&http, &stack, media.path()).await;
    bombs_and_broken_files(&http, &stack).await;
    raw_nats_clients(&stack).await;

    // Every process is still up and answering.
    let health = http.get(stack.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200, "{}", stack.log());
}

async fn over_the_limit(http: &reqwest::Client, stack: &EmbeddedStack, dir: &Path) {
    let photo = photos::photo_of_size(&photos::test_card(640, 480), MIB);
    let over = photos::padded(&photo, MAX_IMAGE_BYTES + 1 - photo.len());
    let (status, answer) = rest(http, stack, &over).await;
    assert_eq!(status, 413, "{answer}");
    assert_eq!(answer["error"]["code"], "too_large");

    let file = dir.join("too-big.jpg");
    std::fs::write(&file, &over).unwrap();
    let (ok, _, stderr) = cli_search(stack, &file);
    assert!(!ok, "the CLI refuses a file over the limit");
    assert!(stderr.contains(&MAX_IMAGE_BYTES.to_string()), "{stderr}");
}

async fn bombs_and_broken_files(http: &reqwest::Client, stack: &EmbeddedStack) {
    let broken = photos::truncated(&photos::png(&photos::test_card(200, 150)));
    for (what, bytes, status, code) in [
        ("bomb", photos::png_bomb(50_000, 50_000), 413, "too_large"),
        ("truncated PNG", broken, 415, "unsupported_media"),
        ("text", b"not a picture".to_vec(), 415, "unsupported_media"),
    ] {
        let (got, answer) = rest(http, stack, &bytes).await;
        assert_eq!(got, status, "{what}: {answer}");
        assert_eq!(answer["error"]["code"], code, "{what}: {answer}");
        let error = websocket_final(stack, &bytes).await;
        assert_eq!(error["code"], code, "{what} over WebSocket: {error}");
    }
}

/// `vidseek.v1.search.image` takes raw bytes from any NATS client: what fits
/// a message works, a message over the server's limit is refused by NATS
/// itself, and a small file declaring an enormous picture is refused by the
/// query stage with a message that says what to do instead.
async fn raw_nats_clients(stack: &EmbeddedStack) {
    let client = stack.nats_client().await;
    let max_payload = client.server_info().max_payload;
    let coffee = photos::video_frame(&sample("photos.mp4"), COFFEE_AT);

    let big = photos::photo_of_size(&coffee, 2 * MIB);
    assert!(big.len() > max_payload);
    let refused = client
        .request(subjects::SEARCH_IMAGE, big.into())
        .await
        .expect_err("NATS refuses a message over max_payload");
    assert!(refused.to_string().contains("payload"), "{refused}");

    // Reduced as the advice says, the same photo is found.
    let reduced = vidseek_bus::query_image::reduce(&photos::photo_of_size(&coffee, 2 * MIB))
        .unwrap()
        .bytes;
    match request(
        &client,
        subjects::SEARCH_IMAGE,
        reduced,
        Duration::from_secs(30),
    )
    .await
    {
        Reply::Ok(answer) => assert_coffee_first("raw NATS, reduced", &answer["results"]),
        other => panic!("raw NATS, reduced: {other:?}"),
    }

    let bomb = photos::png_bomb(50_000, 50_000);
    match request(
        &client,
        subjects::SEARCH_IMAGE,
        bomb,
        Duration::from_secs(30),
    )
    .await
    {
        Reply::Error { code, message } => {
            assert_eq!(code, "too_large", "{message}");
            assert!(message.contains("50000x50000"), "{message}");
            assert!(
                message.contains("1024 px") && message.contains("HTTP API"),
                "{message}"
            );
        }
        other => panic!("raw NATS bomb: {other:?}"),
    }
}
