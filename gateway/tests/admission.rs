//! Bounded under load: a search over the gateway's limit is answered 429
//! with `Retry-After`, a WebSocket over its own limit gets an `overloaded`
//! event and stays open, a handshake over the socket limit is 429, and a
//! NATS service at its limit answers `overloaded` with a retry hint. Each
//! limit is set to 1 and held by a search the fake query stage never
//! answers.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_nats::service::ServiceExt;
use common::{Options, QUERY_SILENT, Stack};
use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{Notify, mpsc};
use tokio_tungstenite::tungstenite::Message;
use vidseek_bus::deadline::Deadline;
use vidseek_bus::rpc;
use vidseek_bus::service::{Admission, RETRY_AFTER};
use vidseek_protocol::{ErrorBody, ErrorCode, subjects};
use vidseek_tests::websocket;

fn silent_path() -> String {
    format!("/api/v1/search?text={}", QUERY_SILENT.replace(' ', "%20"))
}

/// Returns once the query stage has received a search: from then on the
/// search holds its place at the gateway.
async fn search_arrives(searches: &mut async_nats::Subscriber) {
    tokio::time::timeout(Duration::from_secs(10), searches.next())
        .await
        .expect("the held search reaches NATS")
        .expect("subscription open");
}

async fn stack_with(tune: fn(&mut vidseek_gateway::GatewayConfig)) -> Stack {
    Stack::with(Options {
        search_timeout: Duration::from_secs(3),
        tune,
        ..Options::default()
    })
    .await
}

#[tokio::test]
async fn a_search_over_the_gateways_limit_is_429_with_retry_after() {
    let stack = stack_with(|config| config.max_searches = 1).await;
    let mut searches = stack.nats.subscribe(subjects::SEARCH_STREAM).await.unwrap();
    stack.nats.flush().await.unwrap();
    let held = tokio::spawn(stack.http.get(stack.url(&silent_path())).send());
    search_arrives(&mut searches).await;

    for path in [
        "/api/v1/search?text=a%20bicycle",
        "/text_query?text=a%20bicycle",
    ] {
        let response = stack.http.get(stack.url(path)).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 429, "{path}");
        assert_eq!(response.headers()["retry-after"], "1", "{path}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "overloaded", "{path}: {body}");
    }
    // The refused searches never reached the query stage.
    let more = tokio::time::timeout(Duration::from_millis(200), searches.next()).await;
    assert!(more.is_err(), "a refused search reached the query stage");

    // The held search ends (the query stage is silent: 504) and frees its place.
    assert_eq!(held.await.unwrap().unwrap().status().as_u16(), 504);
    let (status, body) = stack.get_json("/api/v1/search?text=a%20bicycle").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_websocket_over_its_limit_gets_overloaded_and_stays_open() {
    let stack = stack_with(|config| config.max_searches_per_socket = 1).await;
    let mut searches = stack.nats.subscribe(subjects::SEARCH_STREAM).await.unwrap();
    stack.nats.flush().await.unwrap();
    let mut socket = websocket::connect(&stack.base).await;
    let held = json!({"type": "search", "id": "held", "text": QUERY_SILENT});
    socket.send(Message::text(held.to_string())).await.unwrap();
    search_arrives(&mut searches).await;

    let timeout = Duration::from_secs(10);
    let extra = json!({"type": "search", "id": "extra", "text": "a bicycle"});
    let (partials, event) = websocket::search(&mut socket, extra, timeout).await;
    assert!(partials.is_empty());
    assert_eq!(event["type"], "error");
    assert_eq!(event["id"], "extra");
    assert_eq!(event["code"], "overloaded", "{event}");

    // Cancelling the held search frees the socket's place; the same socket
    // searches again.
    socket
        .send(Message::text(
            json!({"type": "cancel", "id": "held"}).to_string(),
        ))
        .await
        .unwrap();
    let again = json!({"type": "search", "id": "again", "text": "a bicycle"});
    let (_, done) = websocket::search(&mut socket, again, timeout).await;
    assert_eq!(done["type"], "done", "{done}");
    assert_eq!(done["id"], "again");
}

#[tokio::test]
async fn a_websocket_over_the_gateways_socket_limit_is_429() {
    let stack = stack_with(|config| config.max_websockets = 1).await;
    let first = websocket::connect(&stack.base).await;
    match tokio_tungstenite::connect_async(&stack.ws_url).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status().as_u16(), 429);
            assert!(response.headers().contains_key("retry-after"));
        }
        other => panic!("a second socket was not refused: {:?}", other.map(|_| ())),
    }
    // Once the first socket is gone, its place is free again.
    drop(first);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if tokio_tungstenite::connect_async(&stack.ws_url)
            .await
            .is_ok()
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the place never came free"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_nats_service_at_its_limit_answers_overloaded_and_skips_expired_work() {
    let stack = Stack::with(Options {
        workers: false,
        ..Options::default()
    })
    .await;
    let service = stack
        .nats
        .service_builder()
        .start("admission-test", "0.0.1")
        .await
        .unwrap();
    let endpoint = service
        .endpoint_builder()
        .name("slow")
        .add("test.slow")
        .await
        .unwrap();
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let release = Arc::new(Notify::new());
    let handled = Arc::new(AtomicUsize::new(0));
    let (r, h) = (release.clone(), handled.clone());
    tokio::spawn(vidseek_bus::service::serve_messages_with(
        endpoint,
        Admission::new(1),
        move |_| {
            let (started, release, handled) = (started_tx.clone(), r.clone(), h.clone());
            async move {
                handled.fetch_add(1, Ordering::SeqCst);
                let _ = started.send(());
                release.notified().await;
                Ok::<_, ErrorBody>("done".to_string())
            }
        },
    ));
    stack.nats.flush().await.unwrap();

    let nats = stack.nats.clone();
    let wait = Duration::from_secs(10);
    let held = tokio::spawn(async move {
        rpc::request::<_, String>(&nats, "test.slow".into(), &(), wait, None).await
    });
    started
        .recv()
        .await
        .expect("the first request is being worked on");

    let refused = rpc::request::<_, String>(&stack.nats, "test.slow".into(), &(), wait, None)
        .await
        .unwrap_err();
    assert_eq!(refused.error.code, ErrorCode::Overloaded, "{refused}");
    assert_eq!(
        refused.error.retry_after_ms,
        Some(RETRY_AFTER.as_millis() as u64)
    );

    // A request whose deadline has passed is refused without being handled,
    // even though the endpoint is busy.
    let past = Deadline::from_unix_ms(Deadline::after(Duration::ZERO).unix_ms() - 1000);
    let reply = stack
        .nats
        .send_request(
            "test.slow",
            async_nats::Request::new()
                .payload(Vec::new().into())
                .headers(rpc::headers(None, Some(past))),
        )
        .await
        .unwrap();
    let expired = rpc::decode_reply::<String>(&reply).unwrap_err();
    assert_eq!(expired.error.code, ErrorCode::Timeout, "{expired}");

    release.notify_one();
    assert_eq!(held.await.unwrap().unwrap(), "done");
    assert_eq!(
        handled.load(Ordering::SeqCst),
        1,
        "only the admitted request ran"
    );
}
