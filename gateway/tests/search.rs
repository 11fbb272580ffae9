//! Search through the gateway: the streaming WebSocket, the one-shot REST
//! routes, and how failures of the query stage reach clients.

mod common;

use std::time::Duration;

use common::{KNOWN_VIDEO, Options, QUERY_OVERLOADED, QUERY_SILENT, Stack};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use vidseek_protocol::query::{MAX_IMAGE_BYTES, MAX_TEXT_CHARS};
use vidseek_tests::photos::{TINY_PNG_BASE64, tiny_png};

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

async fn connect(stack: &Stack) -> Socket {
    let (socket, _) = tokio_tungstenite::connect_async(&stack.ws_url)
        .await
        .expect("websocket handshake");
    socket
}

async fn send(socket: &mut Socket, message: Value) {
    socket
        .send(Message::text(message.to_string()))
        .await
        .unwrap();
}

/// The next JSON event; a generous bound so a broken gateway fails the test
/// instead of hanging it.
async fn next_event(socket: &mut Socket) -> Value {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("an event within 10 s")
            .expect("socket open")
            .expect("valid frame");
        if let Message::Text(text) = message {
            return serde_json::from_str(text.as_str()).unwrap();
        }
    }
}

/// Events of one search until its final one.
async fn events_until_final(socket: &mut Socket) -> Vec<Value> {
    let mut events = vec![];
    loop {
        let event = next_event(socket).await;
        let last = event["type"] != "partial";
        events.push(event);
        if last {
            return events;
        }
    }
}

#[tokio::test]
async fn websocket_streams_partials_then_done_under_the_client_id() {
    let stack = Stack::start().await;
    let mut socket = connect(&stack).await;
    send(
        &mut socket,
        json!({"type": "search", "id": "q1", "text": "a bicycle"}),
    )
    .await;
    let events = events_until_final(&mut socket).await;
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["partial", "partial", "done"]);
    for event in &events {
        assert_eq!(event["id"], "q1");
    }
    assert_eq!(events[0]["shards_done"], 1);
    assert_eq!(events[0]["shards_total"], 2);
    let done = &events[2];
    assert_eq!(done["took_ms"], 7);
    let results = done["results"].as_array().unwrap();
    assert_eq!(results.len(), 3);
    assert_eq!(results[0]["segment_id"], format!("{KNOWN_VIDEO}-1"));
    assert_eq!(
        results[0]["play_url"],
        format!("/media/videos/{KNOWN_VIDEO}")
    );

    // An image search on the same socket.
    send(
        &mut socket,
        json!({"type": "search", "id": "q2", "image_base64": TINY_PNG_BASE64, "k": 2}),
    )
    .await;
    let events = events_until_final(&mut socket).await;
    let done = events.last().unwrap();
    assert_eq!(done["type"], "done");
    assert_eq!(done["id"], "q2");
    assert_eq!(done["results"].as_array().unwrap().len(), 2);
    assert_eq!(done["results"][0]["video_id"], "vimage01");
}

#[tokio::test]
async fn websocket_runs_searches_concurrently() {
    let stack = Stack::start().await;
    let mut socket = connect(&stack).await;
    for id in ["a", "b", "c"] {
        send(
            &mut socket,
            json!({"type": "search", "id": id, "text": "cat"}),
        )
        .await;
    }
    let mut done = std::collections::BTreeSet::new();
    while done.len() < 3 {
        let event = next_event(&mut socket).await;
        assert_ne!(event["type"], "error", "{event}");
        if event["type"] == "done" {
            done.insert(event["id"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(done.into_iter().collect::<Vec<_>>(), ["a", "b", "c"]);
}

#[tokio::test]
async fn websocket_answers_bad_messages_and_stays_open() {
    let stack = Stack::start().await;
    let mut socket = connect(&stack).await;

    socket.send(Message::text("{not json")).await.unwrap();
    let event = next_event(&mut socket).await;
    assert_eq!(event["type"], "error");
    assert_eq!(event["code"], "bad_request");

    send(
        &mut socket,
        json!({"type": "search", "id": "k0", "text": "x", "k": 0}),
    )
    .await;
    let event = next_event(&mut socket).await;
    assert_eq!(
        (event["type"].as_str(), event["id"].as_str()),
        (Some("error"), Some("k0"))
    );
    assert_eq!(event["code"], "bad_request");

    send(&mut socket, json!({"type": "search", "id": "none"})).await;
    let event = next_event(&mut socket).await;
    assert_eq!(
        (event["id"].as_str(), event["code"].as_str()),
        (Some("none"), Some("bad_request"))
    );

    send(&mut socket, json!({"type": "dance", "id": "d1"})).await;
    let event = next_event(&mut socket).await;
    assert_eq!(
        (event["id"].as_str(), event["code"].as_str()),
        (Some("d1"), Some("bad_request"))
    );

    // The socket still works.
    send(
        &mut socket,
        json!({"type": "search", "id": "ok", "text": "a cat"}),
    )
    .await;
    let events = events_until_final(&mut socket).await;
    assert_eq!(events.last().unwrap()["type"], "done");
}

#[tokio::test]
async fn websocket_forwards_stage_errors() {
    let stack = Stack::start().await;
    let mut socket = connect(&stack).await;
    send(
        &mut socket,
        json!({"type": "search", "id": "busy", "text": QUERY_OVERLOADED}),
    )
    .await;
    let event = next_event(&mut socket).await;
    assert_eq!(event["type"], "error");
    assert_eq!(event["id"], "busy");
    assert_eq!(event["code"], "overloaded");
}

#[tokio::test]
async fn websocket_reports_a_missing_query_stage() {
    let stack = Stack::with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let mut socket = connect(&stack).await;
    send(
        &mut socket,
        json!({"type": "search", "id": "q", "text": "a cat"}),
    )
    .await;
    let event = next_event(&mut socket).await;
    assert_eq!(event["type"], "error");
    assert_eq!(event["code"], "unavailable");
}

#[tokio::test]
async fn rest_search_waits_for_the_final_answer() {
    let stack = Stack::start().await;
    let (status, body) = stack.get_json("/api/v1/search?text=a%20bicycle&k=2").await;
    assert_eq!(status, 200, "{body}");
    assert!(body["query_id"].as_str().is_some_and(|id| !id.is_empty()));
    assert_eq!(body["took_ms"], 7);
    let results = body["results"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["video_id"], KNOWN_VIDEO);

    // Multipart image, k in the query string (what the web UI sends).
    let form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(tiny_png()).file_name("q.png"),
    );
    let response = stack.post_form("/api/v1/search?k=10", form).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["results"][0]["video_id"], "vimage01");

    // JSON text and JSON base64 image.
    for (query, video) in [
        (json!({"text": "a cat"}), KNOWN_VIDEO),
        (json!({"image_base64": TINY_PNG_BASE64}), "vimage01"),
    ] {
        let response = stack
            .http
            .post(stack.url("/api/v1/search"))
            .json(&query)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["results"][0]["video_id"], video);
    }
}

#[tokio::test]
async fn rest_search_errors_follow_the_status_table() {
    let stack = Stack::with(Options {
        search_timeout: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    let long = "x".repeat(MAX_TEXT_CHARS + 1);
    for (path, status, code) in [
        (
            "/api/v1/search?text=cat&k=0".to_string(),
            400,
            "bad_request",
        ),
        (
            "/api/v1/search?text=cat&k=101".to_string(),
            400,
            "bad_request",
        ),
        (
            "/api/v1/search?text=cat&k=abc".to_string(),
            400,
            "bad_request",
        ),
        (
            "/api/v1/search?text=cat&min_score=2".to_string(),
            400,
            "bad_request",
        ),
        ("/api/v1/search".to_string(), 400, "bad_request"),
        ("/api/v1/search?text=%20".to_string(), 400, "bad_request"),
        // Legacy encodings are refused, not searched as replacement characters.
        ("/api/v1/search?text=%FF%FE".to_string(), 400, "bad_request"),
        (
            "/text_query?text=%D2%BB%B1%AD".to_string(),
            400,
            "bad_request",
        ),
        (format!("/api/v1/search?text={long}"), 400, "bad_request"),
        (
            format!(
                "/api/v1/search?text={}",
                QUERY_OVERLOADED.replace(' ', "%20")
            ),
            429,
            "overloaded",
        ),
        (
            format!("/api/v1/search?text={}", QUERY_SILENT.replace(' ', "%20")),
            504,
            "timeout",
        ),
    ] {
        let response = stack.http.get(stack.url(&path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), status, "{path}");
        let retry_after = response.headers().get("retry-after").cloned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{path}: {body}");
        assert!(body["error"]["message"].as_str().is_some());
        if code == "overloaded" {
            assert!(
                retry_after.is_some(),
                "overloaded answers carry Retry-After"
            );
        }
    }

    // An image over the limit is refused before it reaches NATS.
    let form = reqwest::multipart::Form::new().part(
        "image",
        reqwest::multipart::Part::bytes(vec![0u8; MAX_IMAGE_BYTES + 1]).file_name("big.png"),
    );
    let response = stack.post_form("/api/v1/search", form).await;
    assert_eq!(response.status(), 413);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "too_large");

    let response = stack
        .http
        .post(stack.url("/api/v1/search"))
        .header("content-type", "text/plain")
        .body("cat")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 415);
}

#[tokio::test]
async fn without_a_query_stage_search_is_unavailable() {
    let stack = Stack::with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let (status, body) = stack.get_json("/api/v1/search?text=cat").await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "unavailable");
    let (status, body) = stack.get_json("/healthz").await;
    assert_eq!(status, 503);
    assert_eq!(body["error"]["code"], "unavailable");
}

#[tokio::test]
async fn websocket_cancel_and_same_id_replace_the_search_in_flight() {
    let stack = Stack::with(Options {
        search_timeout: Duration::from_millis(300),
        ..Options::default()
    })
    .await;
    let mut socket = connect(&stack).await;
    // Both would time out (an error event) if they were still running.
    send(
        &mut socket,
        json!({"type": "search", "id": "gone", "text": QUERY_SILENT}),
    )
    .await;
    send(&mut socket, json!({"type": "cancel", "id": "gone"})).await;
    send(
        &mut socket,
        json!({"type": "search", "id": "same", "text": QUERY_SILENT}),
    )
    .await;
    send(
        &mut socket,
        json!({"type": "search", "id": "same", "text": "a cat"}),
    )
    .await;
    // Started last, so it times out after anything started before it would have.
    send(
        &mut socket,
        json!({"type": "search", "id": "marker", "text": QUERY_SILENT}),
    )
    .await;
    let mut seen = vec![];
    loop {
        let event = next_event(&mut socket).await;
        let (id, kind) = (
            event["id"].as_str().unwrap().to_string(),
            event["type"].clone(),
        );
        if id == "marker" {
            assert_eq!(event["code"], "timeout");
            break;
        }
        seen.push((id, kind));
    }
    assert!(seen.iter().all(|(id, _)| id == "same"), "{seen:?}");
    assert_eq!(seen.last().unwrap().1, "done", "{seen:?}");
    assert_eq!(
        seen.len(),
        3,
        "two partials and done of the second search only: {seen:?}"
    );
}
