//! Image queries of every size through every gateway route: phone photos of
//! 1, 5 and 20 MiB are reduced before they cross NATS (whose messages are
//! 1 MiB), anything over the documented limit is 413, and decompression
//! bombs and broken files are 4xx without reaching the query stage.

mod common;

use std::time::Duration;

use base64::Engine as _;
use common::Stack;
use futures::StreamExt;
use serde_json::{Value, json};
use vidseek_bus::query_image::{REDUCED_MAX_BYTES, REDUCED_SIDE_PX};
use vidseek_bus::rpc;
use vidseek_protocol::query::{MAX_IMAGE_BYTES, QueryInput, SearchRequest};
use vidseek_protocol::subjects;
use vidseek_tests::photos::{self, MIB};
use vidseek_tests::websocket;

/// What the fake query stage answers an image search with.
const IMAGE_TOP_HIT: &str = "vimage01-1";

/// Every search request that crosses NATS, as the query stage receives it.
struct Spy(async_nats::Subscriber);

impl Spy {
    async fn on(stack: &Stack) -> Spy {
        let subscriber = stack.nats.subscribe(subjects::SEARCH_STREAM).await.unwrap();
        stack.nats.flush().await.unwrap();
        Spy(subscriber)
    }

    async fn next(&mut self) -> SearchRequest {
        let message = tokio::time::timeout(Duration::from_secs(10), self.0.next())
            .await
            .expect("a search request within 10 s")
            .expect("subscription open");
        rpc::decode_request(&message).expect("a SearchRequest")
    }

    /// The next request is an image the encoder can take as is.
    async fn next_is_reduced(&mut self, what: &str) {
        let request = self.next().await;
        let QueryInput::Image { bytes } = request.input else {
            panic!("{what}: not an image query");
        };
        assert!(
            bytes.len() <= REDUCED_MAX_BYTES,
            "{what}: {} bytes crossed NATS",
            bytes.len()
        );
        let image = image_dimensions(&bytes);
        assert_eq!(
            image.0.max(image.1),
            REDUCED_SIDE_PX,
            "{what}: sent as {image:?}"
        );
    }
}

fn image_dimensions(bytes: &[u8]) -> (u32, u32) {
    let (w, h) = vidseek_bus::query_image::check_decodable(bytes).expect("a decodable image");
    (w, h)
}

fn form(bytes: Vec<u8>, name: &str) -> reqwest::multipart::Form {
    reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(bytes).file_name(name.to_string()),
    )
}

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn rest_multipart(stack: &Stack, bytes: Vec<u8>) -> (u16, Value) {
    json_of(
        stack
            .post_form("/api/v1/search?k=5", form(bytes, "photo.jpg"))
            .await,
    )
    .await
}

async fn rest_json(stack: &Stack, bytes: &[u8]) -> (u16, Value) {
    let body = json!({ "image_base64": base64::engine::general_purpose::STANDARD.encode(bytes) });
    json_of(
        stack
            .http
            .post(stack.url("/api/v1/search"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn rest_raw(stack: &Stack, bytes: Vec<u8>) -> (u16, Value) {
    json_of(
        stack
            .http
            .post(stack.url("/api/v1/search"))
            .header("content-type", "image/jpeg")
            .body(bytes)
            .send()
            .await
            .unwrap(),
    )
    .await
}

async fn seed(stack: &Stack, bytes: Vec<u8>) -> (u16, Value) {
    json_of(
        stack
            .post_form("/image_query", form(bytes, "photo.jpg"))
            .await,
    )
    .await
}

/// The final event of one WebSocket image search.
async fn websocket(stack: &Stack, bytes: &[u8]) -> Value {
    let mut socket = websocket::connect(&stack.url("")).await;
    let message = json!({
        "type": "search",
        "id": "big",
        "image_base64": base64::engine::general_purpose::STANDARD.encode(bytes),
    });
    websocket::search(&mut socket, message, Duration::from_secs(30))
        .await
        .1
}

fn assert_found(what: &str, (status, body): (u16, Value)) {
    assert_eq!(status, 200, "{what}: {body}");
    assert_eq!(
        body["results"][0]["segment_id"], IMAGE_TOP_HIT,
        "{what}: {body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn photos_of_1_5_and_20_mib_search_through_every_route() {
    let stack = Stack::start().await;
    let mut spy = Spy::on(&stack).await;
    let card = photos::test_card(640, 480);
    for target in [MIB, 5 * MIB, MAX_IMAGE_BYTES - 64 * 1024] {
        let photo = photos::photo_of_size(&card, target);
        let size = format!("{} KiB photo", photo.len() / 1024);

        assert_found(
            &format!("multipart, {size}"),
            rest_multipart(&stack, photo.clone()).await,
        );
        spy.next_is_reduced(&format!("multipart, {size}")).await;

        assert_found(&format!("JSON, {size}"), rest_json(&stack, &photo).await);
        spy.next_is_reduced(&format!("JSON, {size}")).await;

        assert_found(
            &format!("image body, {size}"),
            rest_raw(&stack, photo.clone()).await,
        );
        spy.next_is_reduced(&format!("image body, {size}")).await;

        let done = websocket(&stack, &photo).await;
        assert_eq!(done["type"], "done", "WebSocket, {size}: {done}");
        assert_eq!(done["results"][0]["segment_id"], IMAGE_TOP_HIT);
        spy.next_is_reduced(&format!("WebSocket, {size}")).await;

        let (status, hits) = seed(&stack, photo.clone()).await;
        assert_eq!(status, 200, "seed, {size}: {hits}");
        assert_eq!(hits[0]["id"], IMAGE_TOP_HIT, "seed, {size}: {hits}");
        spy.next_is_reduced(&format!("seed, {size}")).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn small_images_cross_as_they_are() {
    let stack = Stack::start().await;
    let mut spy = Spy::on(&stack).await;
    assert_found("tiny PNG", rest_multipart(&stack, photos::tiny_png()).await);
    let request = spy.next().await;
    assert_eq!(
        request.input,
        QueryInput::Image {
            bytes: photos::tiny_png()
        }
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn images_over_the_limit_are_413_on_every_route() {
    let stack = Stack::start().await;
    let photo = photos::photo_of_size(&photos::test_card(640, 480), MIB);
    // Still a valid JPEG, one byte over the documented limit.
    let over = photos::padded(&photo, MAX_IMAGE_BYTES + 1 - photo.len());
    for (route, (status, body)) in [
        ("multipart", rest_multipart(&stack, over.clone()).await),
        ("JSON", rest_json(&stack, &over).await),
        ("image body", rest_raw(&stack, over.clone()).await),
        ("seed", seed(&stack, over.clone()).await),
    ] {
        assert_eq!(status, 413, "{route}: {body}");
        assert_eq!(body["error"]["code"], "too_large", "{route}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains(&MAX_IMAGE_BYTES.to_string()),
            "{route}: {message}"
        );
    }
    let error = websocket(&stack, &over).await;
    assert_eq!(error["type"], "error", "{error}");
    assert_eq!(error["code"], "too_large", "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bombs_and_broken_images_are_4xx_and_never_reach_the_query_stage() {
    let stack = Stack::start().await;
    let mut spy = Spy::on(&stack).await;
    // A cut PNG, not a cut JPEG: PNG chunks are checked, while a JPEG cut
    // short may still decode (as grey below the cut).
    let png = photos::png(&photos::test_card(200, 150));
    let cases: [(&str, Vec<u8>, u16, &str); 4] = [
        (
            "a 50000x50000 PNG bomb",
            photos::png_bomb(50_000, 50_000),
            413,
            "too_large",
        ),
        (
            "a 16000x16000 PNG bomb",
            photos::png_bomb(16_000, 16_000),
            413,
            "too_large",
        ),
        (
            "a truncated PNG",
            photos::truncated(&png),
            415,
            "unsupported_media",
        ),
        (
            "text",
            b"this is not an image at all".to_vec(),
            415,
            "unsupported_media",
        ),
    ];
    for (what, bytes, status, code) in cases {
        for (route, (got, body)) in [
            ("multipart", rest_multipart(&stack, bytes.clone()).await),
            ("JSON", rest_json(&stack, &bytes).await),
            ("image body", rest_raw(&stack, bytes.clone()).await),
            ("seed", seed(&stack, bytes.clone()).await),
        ] {
            assert_eq!(got, status, "{what} over {route}: {body}");
            assert_eq!(body["error"]["code"], code, "{what} over {route}: {body}");
        }
        let error = websocket(&stack, &bytes).await;
        assert_eq!(error["type"], "error", "{what} over WebSocket: {error}");
        assert_eq!(error["code"], code, "{what} over WebSocket: {error}");
    }
    // The gateway is still up, and the first request the query stage sees
    // is this good one: none of the bad ones crossed NATS.
    assert_found("after the bad ones", rest_multipart(&stack, png).await);
    let request = spy.next().await;
    assert!(matches!(request.input, QueryInput::Image { .. }));
    let (status, _) = stack.get_json("/healthz").await;
    assert_eq!(status, 200);
}
