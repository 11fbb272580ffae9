//! Query deadlines against a real nats-server, with the encoder and the two
//! ranker shards played by plain subscriptions: a query whose deadline has
//! passed is refused before any work, and a shard too slow for the deadline
//! is left out (the answer holds the other's results, `shards_done <
//! shards_total`), its late reply neither merged nor forwarded.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use futures::StreamExt;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use vidseek_bus::deadline::Deadline;
use vidseek_bus::rpc;
use vidseek_protocol::codec::{self, Format};
use vidseek_protocol::encode::EncodeTextRequest;
use vidseek_protocol::query::{SearchEvent, SearchRequest, SearchResponse, TextSearch};
use vidseek_protocol::rank::RankResponse;
use vidseek_protocol::{ErrorBody, ErrorCode, subjects};
use vidseek_query::QueryConfig;
use vidseek_tests::nats::NatsServer;

/// Longer than a shard's timeout: shard 1's answer always comes too late.
const SLOW_SHARD: Duration = Duration::from_secs(2);

struct Fakes {
    encodes: Arc<AtomicUsize>,
    /// A message once the slow shard has sent its (late) answer.
    late_answer_sent: mpsc::UnboundedReceiver<()>,
    stop: CancellationToken,
}

impl Drop for Fakes {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn shard_answer(shard: u32, video: &str, score: f32) -> RankResponse {
    serde_json::from_value(json!({
        "shard": shard,
        "segments_indexed": 1,
        "hits": [{
            "meta": {"segment_id": format!("{video}-0"), "video_id": video,
                     "video_name": format!("{video}.mp4"), "index": 0,
                     "start": 0.0, "end": 1.0, "kind": "shot"},
            "score": score,
        }],
    }))
    .unwrap()
}

async fn start(nats: &async_nats::Client) -> Fakes {
    let encodes = Arc::new(AtomicUsize::new(0));
    let mut encoder = nats.subscribe(subjects::ENCODE_TEXT).await.unwrap();
    let (client, count) = (nats.clone(), encodes.clone());
    tokio::spawn(async move {
        while let Some(message) = encoder.next().await {
            // The health probe asks for no text; queries ask for one.
            let request: Result<EncodeTextRequest, _> = rpc::decode_request(&message);
            if request.is_ok_and(|r| !r.texts.is_empty()) {
                count.fetch_add(1, Ordering::SeqCst);
            }
            let answer: vidseek_protocol::encode::EncodeTextResponse =
                serde_json::from_value(json!({
                    "vectors": [[1.0, 0.0]], "unsupported_language": [null],
                    "text_visual": {"a": 1.0, "b": 0.0}, "text_text": {"a": 1.0, "b": 0.0},
                }))
                .unwrap();
            rpc::reply(&client, &message, &Ok::<_, ErrorBody>(answer)).await;
        }
    });
    let mut fast = nats.subscribe(subjects::rank(0)).await.unwrap();
    let client = nats.clone();
    tokio::spawn(async move {
        while let Some(message) = fast.next().await {
            let answer = Ok::<_, ErrorBody>(shard_answer(0, "vfast", 0.5));
            rpc::reply(&client, &message, &answer).await;
        }
    });
    let mut slow = nats.subscribe(subjects::rank(1)).await.unwrap();
    let (client, (late_tx, late_answer_sent)) = (nats.clone(), mpsc::unbounded_channel());
    tokio::spawn(async move {
        while let Some(message) = slow.next().await {
            let (client, late_tx) = (client.clone(), late_tx.clone());
            tokio::spawn(async move {
                tokio::time::sleep(SLOW_SHARD).await;
                // Would rank first if it were merged.
                let answer = Ok::<_, ErrorBody>(shard_answer(1, "vslow", 0.9));
                rpc::reply(&client, &message, &answer).await;
                client.flush().await.unwrap();
                let _ = late_tx.send(());
            });
        }
    });
    let stop = CancellationToken::new();
    let config = QueryConfig {
        shards: 2,
        encode_timeout: Duration::from_secs(5),
        shard_timeout: Duration::from_millis(500),
    };
    tokio::spawn(vidseek_query::run(nats.clone(), config, stop.clone()));
    // Serving once a health request is answered.
    while rpc::health(nats, Duration::from_secs(5)).await.is_err() {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Fakes {
        encodes,
        late_answer_sent,
        stop,
    }
}

fn text_search() -> TextSearch {
    TextSearch {
        text: "a bicycle".into(),
        k: Some(5),
        min_score: None,
        scope: Default::default(),
    }
}

#[tokio::test]
async fn a_shard_too_slow_for_the_deadline_is_left_out_and_its_late_reply_dropped() {
    let server = NatsServer::start();
    let nats = server.client().await;
    let mut fakes = start(&nats).await;

    let answer: SearchResponse = rpc::request(
        &nats,
        subjects::SEARCH_TEXT.into(),
        &text_search(),
        Duration::from_secs(10),
        None,
    )
    .await
    .expect("an answer from the shard that was in time");
    assert_eq!((answer.shards_done, answer.shards_total), (1, 2));
    let videos: Vec<&str> = answer.results.iter().map(|h| h.video_id.as_str()).collect();
    assert_eq!(videos, ["vfast"]);
    assert!(
        answer
            .warnings
            .iter()
            .any(|w| w.code == "shard_unavailable" && w.message.contains("shard 1")),
        "{:?}",
        answer.warnings
    );
    fakes.late_answer_sent.recv().await.unwrap();

    // Streaming: the events end with `done` before the slow shard answers,
    // and its answer, when it comes, is not forwarded.
    let inbox = nats.new_inbox();
    let mut events = nats.subscribe(inbox.clone()).await.unwrap();
    let request = SearchRequest::new(
        "q-stream".into(),
        vidseek_protocol::query::QueryInput::Text {
            text: "a bicycle".into(),
        },
        Some(5),
        None,
    )
    .unwrap();
    let payload = codec::encode(Format::MsgPack, &request).unwrap();
    nats.publish_with_reply_and_headers(
        subjects::SEARCH_STREAM,
        inbox,
        rpc::msgpack_headers(Some("q-stream")),
        payload.into(),
    )
    .await
    .unwrap();
    let last = loop {
        let message = tokio::time::timeout(Duration::from_secs(10), events.next())
            .await
            .expect("an event")
            .unwrap();
        let event: SearchEvent = rpc::decode_reply(&message).expect("not an error");
        if event.is_final() {
            break event;
        }
    };
    let SearchEvent::Done {
        shards_done,
        results,
        ..
    } = last
    else {
        panic!("not done: {last:?}");
    };
    assert_eq!(shards_done, 1);
    assert_eq!(results[0].video_id, "vfast");
    fakes.late_answer_sent.recv().await.unwrap();
    nats.flush().await.unwrap();
    let after = tokio::time::timeout(Duration::from_millis(300), events.next()).await;
    assert!(after.is_err(), "an event after done: {after:?}");
}

#[tokio::test]
async fn a_query_whose_deadline_has_passed_is_refused_without_work() {
    let server = NatsServer::start();
    let nats = server.client().await;
    let fakes = start(&nats).await;
    let past = Deadline::from_unix_ms(Deadline::after(Duration::ZERO).unix_ms() - 1000);

    let body = codec::encode(Format::MsgPack, &text_search()).unwrap();
    for subject in [subjects::SEARCH_TEXT, subjects::SEARCH_STREAM] {
        let payload = if subject == subjects::SEARCH_STREAM {
            let request = SearchRequest::new(
                "q-late".into(),
                vidseek_protocol::query::QueryInput::Text {
                    text: "a bicycle".into(),
                },
                None,
                None,
            )
            .unwrap();
            codec::encode(Format::MsgPack, &request).unwrap()
        } else {
            body.clone()
        };
        let reply = nats
            .send_request(
                subject,
                async_nats::Request::new()
                    .payload(payload.into())
                    .headers(rpc::headers(None, Some(past)))
                    .timeout(Some(Duration::from_secs(10))),
            )
            .await
            .unwrap();
        let refused = rpc::decode_reply::<SearchResponse>(&reply).unwrap_err();
        assert_eq!(
            refused.error.code,
            ErrorCode::Timeout,
            "{subject}: {refused}"
        );
    }
    assert_eq!(
        fakes.encodes.load(Ordering::SeqCst),
        0,
        "nothing was encoded"
    );
}
