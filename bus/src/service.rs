//! Serving NATS service endpoints: each request is handled on its own task
//! and answered in the caller's format (JSON unless it sent MessagePack),
//! errors as an [`ErrorBody`] with the error header set.
//!
//! Every endpoint is bounded. It works on at most its [`Admission`] limit of
//! requests at once (by default [`max_in_flight`], set for a process by
//! `VIDSEEK_MAX_IN_FLIGHT`); one more is answered at once with `overloaded`
//! and a retry hint, never queued. A request whose [`Deadline`] has passed is
//! answered `timeout` without being handled. Handlers run as tasks of the
//! process's in-flight tracker, so a stopping process, once its endpoints
//! have stopped taking requests, waits for the answers it owes
//! ([`wait_for_in_flight`]) before it closes its connection.
//!
//! Every request is counted and timed by subject ([`crate::metrics`]) and
//! handled inside a `request` span carrying its subject and, when the caller
//! sent one, its query id: every log line written for a query, in whichever
//! role, can be joined on that id.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use async_nats::Message;
use async_nats::service::endpoint::Endpoint;
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::task::TaskTracker;
use tracing::Instrument;
use vidseek_protocol::error::ErrorBody;

use crate::deadline::Deadline;
use crate::metrics;
use crate::rpc::{decode_request, encode_reply, format_of, query_id_of};

/// Requests one endpoint works on at once unless the process says otherwise:
/// enough for the encoder's batching queue (256) to fill, while a flood of
/// at most 1 MiB messages holds a bounded amount of memory.
pub const DEFAULT_MAX_IN_FLIGHT: usize = 256;
/// How long an `overloaded` answer asks the caller to wait: about one
/// request's time, after which a slot has usually come free.
pub const RETRY_AFTER: Duration = Duration::from_millis(250);

static MAX_IN_FLIGHT: AtomicUsize = AtomicUsize::new(DEFAULT_MAX_IN_FLIGHT);
static IN_FLIGHT: LazyLock<TaskTracker> = LazyLock::new(TaskTracker::new);

/// Sets the per-endpoint limit of the endpoints this process starts from
/// now on (`VIDSEEK_MAX_IN_FLIGHT`).
pub fn set_max_in_flight(limit: usize) {
    MAX_IN_FLIGHT.store(limit.max(1), Ordering::Relaxed);
}

/// The per-endpoint limit endpoints get by default.
pub fn max_in_flight() -> usize {
    MAX_IN_FLIGHT.load(Ordering::Relaxed)
}

/// A bound on the requests one endpoint works on at once.
#[derive(Clone, Debug)]
pub struct Admission {
    permits: Arc<Semaphore>,
    limit: usize,
}

impl Admission {
    pub fn new(limit: usize) -> Admission {
        let limit = limit.max(1);
        Admission {
            permits: Arc::new(Semaphore::new(limit)),
            limit,
        }
    }

    /// The process's per-endpoint limit ([`max_in_flight`]).
    pub fn per_endpoint() -> Admission {
        Admission::new(max_in_flight())
    }

    /// A slot for one request of `what`, or `overloaded` with a retry hint.
    pub fn try_admit(&self, what: &str) -> Result<OwnedSemaphorePermit, ErrorBody> {
        self.permits.clone().try_acquire_owned().map_err(|_| {
            ErrorBody::overloaded(
                format!(
                    "{what} is working on {} requests, its limit; retry shortly",
                    self.limit
                ),
                RETRY_AFTER,
            )
        })
    }

    /// Admits `message` unless its deadline has passed (`timeout`) or the
    /// endpoint is full (`overloaded`); a refusal is counted as the
    /// subject's answer.
    pub fn admit(&self, message: &Message) -> Result<Admitted, ErrorBody> {
        let what = message.subject.as_str();
        let admitted = Deadline::of(message.headers.as_ref())
            .map_or(Ok(()), |deadline| deadline.check(what))
            .and_then(|()| self.try_admit(what));
        match admitted {
            Ok(permit) => Ok(Admitted {
                _permit: permit,
                subject: what.to_string(),
                started: Instant::now(),
                outcome: "streamed",
            }),
            Err(refusal) => {
                metrics::request_answered(what, refusal.error.code.as_str(), Duration::ZERO);
                Err(refusal)
            }
        }
    }
}

/// An admitted request: holds its slot, and counts and times the request
/// when dropped. A request answered by a stream of messages keeps the
/// outcome `streamed` (its events say how it ended).
#[derive(Debug)]
pub struct Admitted {
    _permit: OwnedSemaphorePermit,
    subject: String,
    started: Instant,
    outcome: &'static str,
}

impl Admitted {
    /// Sets the outcome counted when the request is let go.
    pub fn answered(&mut self, outcome: &'static str) {
        self.outcome = outcome;
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        metrics::request_answered(&self.subject, self.outcome, self.started.elapsed());
    }
}

/// The span a request is handled in: its subject, and its query id when the
/// caller sent one.
pub fn request_span(message: &Message) -> tracing::Span {
    let subject = message.subject.as_str();
    match query_id_of(message) {
        Some(query_id) => tracing::info_span!("request", subject, query_id),
        None => tracing::info_span!("request", subject),
    }
}

/// Runs `work` as one of the process's in-flight requests, in the span it
/// is started from (the role's), so its log lines say whose they are.
pub fn spawn_in_flight<F>(work: F) -> tokio::task::JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    IN_FLIGHT.spawn(work.in_current_span())
}

/// Requests this process is answering right now.
pub fn in_flight() -> usize {
    IN_FLIGHT.len()
}

/// Waits up to `grace` for the requests in flight to be answered; true when
/// all were. Call it once the endpoints have stopped taking requests.
pub async fn wait_for_in_flight(grace: Duration) -> bool {
    IN_FLIGHT.close();
    let finished = tokio::time::timeout(grace, IN_FLIGHT.wait()).await.is_ok();
    IN_FLIGHT.reopen();
    finished
}

/// Answers every request on `endpoint` with `handler(message)` until the
/// endpoint closes, within the process's per-endpoint limit.
pub async fn serve_messages<Resp, H, Fut>(endpoint: Endpoint, handler: H)
where
    Resp: Serialize + Send + 'static,
    H: Fn(Message) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, ErrorBody>> + Send + 'static,
{
    serve_messages_with(endpoint, Admission::per_endpoint(), handler).await
}

/// [`serve_messages`] within `admission`'s limit.
pub async fn serve_messages_with<Resp, H, Fut>(
    mut endpoint: Endpoint,
    admission: Admission,
    handler: H,
) where
    Resp: Serialize + Send + 'static,
    H: Fn(Message) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, ErrorBody>> + Send + 'static,
{
    while let Some(request) = endpoint.next().await {
        let format = format_of(request.message.headers.as_ref());
        let permit = match admission.admit(&request.message) {
            Ok(permit) => permit,
            Err(refusal) => {
                // Answered here, without a task: refusing must cost less
                // than the work it refuses.
                tracing::debug!(subject = %request.message.subject, error = %refusal, "request refused");
                let (headers, payload) = encode_reply::<()>(format, &Err(refusal));
                if let Err(err) = request.respond_with_headers(Ok(payload), headers).await {
                    tracing::warn!(error = %err, "could not send reply");
                }
                continue;
            }
        };
        let handler = handler.clone();
        let span = request_span(&request.message);
        spawn_in_flight(
            async move {
                let mut admitted = permit;
                let result = handler(request.message.clone()).await;
                let outcome = metrics::outcome(&result);
                admitted.answered(outcome);
                let (headers, payload) = encode_reply(format, &result);
                if let Err(err) = request.respond_with_headers(Ok(payload), headers).await {
                    tracing::warn!(error = %err, "could not send reply");
                }
                drop(admitted);
                tracing::debug!(outcome, "request answered");
            }
            .instrument(span),
        );
    }
}

/// Like [`serve_messages`], with the request body decoded as `Req`; a body
/// that does not decode is answered with a `bad_request` error.
pub async fn serve<Req, Resp, H, Fut>(endpoint: Endpoint, handler: H)
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
    H: Fn(Req) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, ErrorBody>> + Send + 'static,
{
    serve_messages(endpoint, move |message: Message| {
        let handler = handler.clone();
        async move { handler(decode_request::<Req>(&message)?).await }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use vidseek_protocol::ErrorCode;

    fn message(deadline: Option<Deadline>) -> Message {
        let mut headers = async_nats::HeaderMap::new();
        if let Some(deadline) = deadline {
            deadline.insert_into(&mut headers);
        }
        Message {
            subject: "vidseek.v1.rank.0".into(),
            reply: None,
            payload: Default::default(),
            headers: Some(headers),
            status: None,
            description: None,
            length: 0,
        }
    }

    #[test]
    fn a_full_endpoint_refuses_with_a_retry_hint_until_a_slot_frees() {
        let admission = Admission::new(1);
        let held = admission.admit(&message(None)).expect("first admitted");
        let refusal = admission.admit(&message(None)).unwrap_err();
        assert_eq!(refusal.error.code, ErrorCode::Overloaded);
        assert_eq!(
            refusal.error.retry_after_ms,
            Some(RETRY_AFTER.as_millis() as u64)
        );
        drop(held);
        assert!(admission.admit(&message(None)).is_ok());
    }

    #[test]
    fn an_expired_deadline_is_refused_without_taking_a_slot() {
        let admission = Admission::new(1);
        let past = Deadline::from_unix_ms(1);
        let refusal = admission.admit(&message(Some(past))).unwrap_err();
        assert_eq!(refusal.error.code, ErrorCode::Timeout);
        let future = Deadline::after(Duration::from_secs(10));
        assert!(admission.admit(&message(Some(future))).is_ok());
    }
}
