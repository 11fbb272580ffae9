//! Running one search against the query stage and streaming its events.
//!
//! The request goes to [`subjects::SEARCH_STREAM`] with a private inbox as its
//! reply subject; the query stage answers on that inbox with one
//! [`SearchEvent::Partial`] per shard, then a final `Done` or `Error`. Each
//! route (WebSocket, REST, seed) consumes the same [`SearchStream`], and
//! every image query is reduced here, in [`start`], before it crosses NATS.
//!
//! A search is admitted first ([`admit`]: a bounded number at once over
//! every route, more is `overloaded`), before its body is read or its image
//! decoded, and carries a deadline of one search timeout to the workers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::Subscriber;
use futures::StreamExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use vidseek_bus::deadline::Deadline;
use vidseek_bus::query_image;
use vidseek_bus::rpc;
use vidseek_protocol::codec::{self, Format};
use vidseek_protocol::query::{QueryInput, SearchEvent, SearchRequest, SearchResponse};
use vidseek_protocol::subjects;
use vidseek_protocol::{ErrorBody, ErrorCode};

use crate::AppState;
use crate::metrics::Metrics;
pub use crate::routes::search::Asked;

/// A search in flight. Dropping it unsubscribes the inbox, so late replies of
/// an abandoned search are discarded by the server rather than by us.
pub struct SearchStream {
    query_id: String,
    inbox: Subscriber,
    idle_timeout: Duration,
    started: Instant,
    finished: bool,
    metrics: Metrics,
    _admitted: Admitted,
}

/// A search's place among those in flight; the place frees when the search
/// (its [`SearchStream`]) is dropped.
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
}

/// Admits one search, or `overloaded` when the gateway has its limit of
/// searches in flight.
pub fn admit(state: &AppState) -> Result<Admitted, ErrorBody> {
    state
        .searches
        .try_admit("the gateway's search")
        .map(|permit| Admitted { _permit: permit })
}

/// A fresh query id.
pub fn new_query_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Validates a query into a request with a fresh query id.
pub fn build_request(asked: Asked) -> Result<SearchRequest, ErrorBody> {
    SearchRequest::new(new_query_id(), asked.input, asked.k, asked.min_score)?
        .with_scope(asked.scope.filter, asked.scope.group.is_some())
}

/// Decodes query images off the async runtime, a bounded number at once:
/// each may hold up to [`query_image::MAX_DECODED_BYTES`] while it is reduced.
#[derive(Clone)]
pub struct ImageReducer {
    permits: Arc<Semaphore>,
    /// How long an image may wait for a free decoder before `overloaded`.
    queue_wait: Duration,
}

impl ImageReducer {
    pub fn new(concurrency: usize, queue_wait: Duration) -> ImageReducer {
        ImageReducer {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            queue_wait,
        }
    }

    /// One decoder per core, at most four: beyond that, decoding large
    /// photos only adds memory, not throughput.
    pub fn for_this_machine(queue_wait: Duration) -> ImageReducer {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ImageReducer::new(cores.min(4), queue_wait)
    }

    /// Replaces an image query's bytes (alone or with text) by what the
    /// encoder needs.
    pub async fn reduce(&self, input: QueryInput) -> Result<QueryInput, ErrorBody> {
        match input {
            QueryInput::Image { bytes } => Ok(QueryInput::Image {
                bytes: self.reduce_bytes(bytes).await?,
            }),
            QueryInput::TextAndImage {
                text,
                bytes,
                image_weight,
            } => Ok(QueryInput::TextAndImage {
                text,
                bytes: self.reduce_bytes(bytes).await?,
                image_weight,
            }),
            input @ (QueryInput::Text { .. } | QueryInput::Like { .. }) => Ok(input),
        }
    }

    async fn reduce_bytes(&self, bytes: Vec<u8>) -> Result<Vec<u8>, ErrorBody> {
        let permit = tokio::time::timeout(self.queue_wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| {
                ErrorBody::new(
                    ErrorCode::Overloaded,
                    "every image decoder is busy; retry in a moment",
                )
            })?
            .map_err(|_| ErrorBody::new(ErrorCode::Unavailable, "the gateway is stopping"))?;
        let original = bytes.len();
        let reduced = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            query_image::reduce(&bytes)
        })
        .await
        .map_err(|e| ErrorBody::new(ErrorCode::Internal, format!("image decoding failed: {e}")))?
        .map_err(|e| e.to_error_body())?;
        tracing::debug!(
            original,
            reduced = reduced.bytes.len(),
            width = reduced.width,
            height = reduced.height,
            "query image reduced"
        );
        Ok(reduced.bytes)
    }
}

/// Reduces an image query, then publishes `request` and returns the stream
/// of its events.
#[tracing::instrument(skip_all, fields(query_id = %request.query_id))]
pub async fn start(
    state: &AppState,
    admitted: Admitted,
    mut request: SearchRequest,
) -> Result<SearchStream, ErrorBody> {
    let nats = &state.nats;
    let deadline = Deadline::after(state.config.search_timeout);
    request.input = state.images.reduce(request.input).await?;
    let payload = codec::encode(Format::MsgPack, &request).map_err(|e| e.to_error_body())?;
    // The server would refuse it with a bare "max payload exceeded"; a
    // reduced image only gets here on a server configured below 1 MiB.
    let max_payload = nats.server_info().max_payload;
    if payload.len() > max_payload {
        return Err(ErrorBody::new(
            ErrorCode::TooLarge,
            format!(
                "the query is {} bytes once reduced; the NATS server's message limit (max_payload) is {max_payload}",
                payload.len()
            ),
        ));
    }
    let inbox_subject = nats.new_inbox();
    // Subscribe first: the first partial can arrive before publish returns.
    let inbox = nats
        .subscribe(inbox_subject.clone())
        .await
        .map_err(|e| ErrorBody::new(ErrorCode::Unavailable, format!("NATS: {e}")))?;
    nats.publish_with_reply_and_headers(
        subjects::SEARCH_STREAM,
        inbox_subject,
        rpc::headers(Some(&request.query_id), Some(deadline)),
        payload.into(),
    )
    .await
    .map_err(|e| ErrorBody::new(ErrorCode::Unavailable, format!("NATS: {e}")))?;
    Ok(SearchStream {
        query_id: request.query_id,
        inbox,
        idle_timeout: state.config.search_timeout,
        started: Instant::now(),
        finished: false,
        metrics: state.metrics.clone(),
        _admitted: admitted,
    })
}

impl SearchStream {
    pub fn query_id(&self) -> &str {
        &self.query_id
    }

    /// The next event, or `None` after the final one. Transport trouble is
    /// reported as a final error event, so callers handle one shape only.
    pub async fn next(&mut self) -> Option<SearchEvent> {
        if self.finished {
            return None;
        }
        let event = match tokio::time::timeout(self.idle_timeout, self.inbox.next()).await {
            Err(_) => SearchEvent::error(
                &self.query_id,
                ErrorBody::new(
                    ErrorCode::Timeout,
                    format!(
                        "the query stage sent nothing for {} ms",
                        self.idle_timeout.as_millis()
                    ),
                ),
            ),
            Ok(None) => SearchEvent::error(
                &self.query_id,
                ErrorBody::new(ErrorCode::Unavailable, "the NATS connection closed"),
            ),
            Ok(Some(message)) if message.status == Some(async_nats::StatusCode::NO_RESPONDERS) => {
                SearchEvent::error(
                    &self.query_id,
                    ErrorBody::new(
                        ErrorCode::Unavailable,
                        "no query stage is running; start the workers",
                    ),
                )
            }
            Ok(Some(message)) => match rpc::decode_reply::<SearchEvent>(&message) {
                Ok(event) => event,
                Err(body) => SearchEvent::error(&self.query_id, body),
            },
        };
        if event.is_final() {
            self.finished = true;
            let outcome = match &event {
                SearchEvent::Done { .. } => "done",
                _ => "error",
            };
            self.metrics
                .observe_search(outcome, self.started.elapsed().as_secs_f64());
        }
        Some(event)
    }

    /// Waits for the final event and turns it into the one-shot answer.
    pub async fn finish(mut self) -> Result<SearchResponse, ErrorBody> {
        while let Some(event) = self.next().await {
            match event {
                SearchEvent::Partial { .. } => continue,
                SearchEvent::Done {
                    took_ms,
                    shards_done,
                    shards_total,
                    results,
                    warnings,
                    query_translation,
                    ..
                } => {
                    return Ok(SearchResponse {
                        query_id: self.query_id.clone(),
                        took_ms,
                        shards_done,
                        shards_total,
                        results,
                        warnings,
                        query_translation,
                    });
                }
                SearchEvent::Error { code, message, .. } => {
                    return Err(ErrorBody::new(code, message));
                }
            }
        }
        Err(ErrorBody::new(
            ErrorCode::Internal,
            "search stream ended without a final event",
        ))
    }
}

/// Validates, sends and waits: what the REST and seed routes need.
pub async fn run_to_completion(
    state: &AppState,
    admitted: Admitted,
    asked: Asked,
) -> Result<SearchResponse, ErrorBody> {
    let request = build_request(asked)?;
    let stream = start(state, admitted, request).await?;
    tracing::debug!(query_id = stream.query_id(), "search sent");
    stream.finish().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn busy_decoders_answer_overloaded_instead_of_queueing() {
        let reducer = ImageReducer::new(1, Duration::from_millis(20));
        let _busy = reducer.permits.clone().acquire_owned().await.unwrap();
        let image = QueryInput::Image {
            bytes: vec![0x89, b'P', b'N', b'G'],
        };
        let err = reducer.reduce(image).await.unwrap_err();
        assert_eq!(err.error.code, ErrorCode::Overloaded);
        // Text needs no decoder.
        let text = QueryInput::Text { text: "a".into() };
        assert_eq!(reducer.reduce(text.clone()).await.unwrap(), text);
    }
}
