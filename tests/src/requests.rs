//! Talking to a fleet the way outside clients do: JSON over NATS request/
//! reply, NATS service discovery and the video catalog.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use futures::StreamExt;
use vidseek_bus::catalog::Catalog;
use vidseek_protocol::ingest::{VideoRecord, VideoStatus};
use vidseek_protocol::subjects;

/// What a request/reply exchange came to.
#[derive(Debug)]
pub enum Reply {
    /// A JSON result.
    Ok(serde_json::Value),
    /// A well-formed error reply: `{"error": {"code", "message"}}` with the
    /// `Vidseek-Error` header naming the same code.
    Error { code: String, message: String },
    /// Nobody answered before the client's deadline.
    ClientTimeout,
    /// The server said no one subscribes to the subject.
    NoResponders,
    /// Anything else: a reply that is not what the contract promises.
    Malformed(String),
}

/// Sends `body` to `subject` and classifies the answer.
pub async fn request(
    client: &async_nats::Client,
    subject: &str,
    body: Vec<u8>,
    deadline: Duration,
) -> Reply {
    // The request carries the deadline itself: the client's default (10 s)
    // would cut off a stage that is still within its own deadline.
    let request = async_nats::Request::new()
        .payload(body.into())
        .timeout(Some(deadline));
    let sent = tokio::time::timeout(
        deadline + Duration::from_secs(1),
        client.send_request(subject.to_string(), request),
    );
    let message = match sent.await {
        Err(_) => return Reply::ClientTimeout,
        Ok(Err(err)) => {
            return match err.kind() {
                async_nats::RequestErrorKind::TimedOut => Reply::ClientTimeout,
                async_nats::RequestErrorKind::NoResponders => Reply::NoResponders,
                _ => Reply::Malformed(err.to_string()),
            };
        }
        Ok(Ok(message)) => message,
    };
    let value: serde_json::Value = match serde_json::from_slice(&message.payload) {
        Ok(value) => value,
        Err(err) => {
            return Reply::Malformed(format!(
                "not JSON ({err}): {}",
                String::from_utf8_lossy(&message.payload)
            ));
        }
    };
    let header = message
        .headers
        .as_ref()
        .and_then(|h| h.get(subjects::HEADER_ERROR))
        .map(|v| v.as_str().to_string());
    match (header, value.get("error")) {
        (None, None) => Reply::Ok(value),
        (Some(header), Some(error)) => {
            let code = error["code"].as_str().unwrap_or_default().to_string();
            let message = error["message"].as_str().unwrap_or_default().to_string();
            if code != header || message.is_empty() {
                return Reply::Malformed(format!("error header {header:?} with body {value}"));
            }
            Reply::Error { code, message }
        }
        (header, _) => Reply::Malformed(format!("error header {header:?} with body {value}")),
    }
}

/// JSON request that must succeed; panics with the reply otherwise.
pub async fn request_ok(
    client: &async_nats::Client,
    subject: &str,
    body: &serde_json::Value,
    deadline: Duration,
) -> serde_json::Value {
    match request(client, subject, body.to_string().into_bytes(), deadline).await {
        Reply::Ok(value) => value,
        other => panic!("{subject} {body} failed: {other:?}"),
    }
}

/// Instance ids answering `$SRV.PING.{service}`. Discovery is a scatter with
/// no end marker, so replies are gathered until `expect` instances answered
/// or `window` passed, whichever comes first.
pub async fn service_instances(
    client: &async_nats::Client,
    service: &str,
    expect: usize,
    window: Duration,
) -> BTreeSet<String> {
    let inbox = client.new_inbox();
    let mut replies = client.subscribe(inbox.clone()).await.expect("subscribe");
    client
        .publish_with_reply(format!("$SRV.PING.{service}"), inbox, "".into())
        .await
        .expect("publish ping");
    let mut ids = BTreeSet::new();
    let deadline = tokio::time::Instant::now() + window;
    while ids.len() < expect {
        match tokio::time::timeout_at(deadline, replies.next()).await {
            Ok(Some(message)) => {
                let value: serde_json::Value =
                    serde_json::from_slice(&message.payload).expect("ping reply is JSON");
                assert_eq!(value["name"], service, "ping reply of another service");
                ids.insert(value["id"].as_str().expect("ping reply id").to_string());
            }
            _ => break,
        }
    }
    ids
}

/// Polls the catalog until `done(record)` holds; returns that record.
/// `check` runs between polls so the caller can fail fast (a dead worker).
pub async fn wait_for_video(
    catalog: &Catalog,
    video_id: &str,
    timeout: Duration,
    mut done: impl FnMut(&VideoRecord) -> bool,
    mut check: impl FnMut(),
) -> VideoRecord {
    let deadline = Instant::now() + timeout;
    let mut last = None;
    loop {
        check();
        if let Some(record) = catalog.get(video_id).await.expect("read the catalog") {
            if done(&record) {
                return record;
            }
            last = Some(record);
        }
        assert!(
            Instant::now() < deadline,
            "video {video_id} did not reach the expected state within {timeout:?}; last record: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// True once the video is ready or failed.
pub fn finished(record: &VideoRecord) -> bool {
    matches!(record.status, VideoStatus::Ready | VideoStatus::Failed)
}

/// Polls discovery until exactly `count` instances of `service` answer.
pub async fn wait_for_instances(
    client: &async_nats::Client,
    service: &str,
    count: usize,
    timeout: Duration,
) -> BTreeSet<String> {
    let deadline = Instant::now() + timeout;
    loop {
        // Asking for one more than `count` makes the window the only end of
        // a poll, so an extra instance is seen rather than cut off.
        let ids = service_instances(client, service, count + 1, Duration::from_millis(500)).await;
        if ids.len() == count {
            return ids;
        }
        assert!(
            Instant::now() < deadline,
            "$SRV.PING.{service} still answers {ids:?} after {timeout:?}, expected {count}"
        );
    }
}
