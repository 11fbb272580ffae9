//! The search WebSocket: the browser sends searches, the gateway streams each
//! one's partial top-k as ranker shards answer, then the final result.
//!
//! Client → server: `{"type":"search","id":"q1","text":"..."}`,
//! `{"type":"search","id":"q2","image_base64":"..."}`, both, or
//! `{"type":"search","id":"q3","like":"SEGMENT_ID"}`, with any option of
//! `POST /api/v1/search` ([`SearchBody`]: `k`, `min_score`, `videos`,
//! `from`, `to`, `kinds`, `group`); and `{"type":"cancel","id":"q1"}`.
//! Server → client: [`SearchEvent`]s as JSON text, addressed with the client's
//! id. Several searches may run at once; a new search with an id already in
//! flight replaces it. A malformed message is answered with an `error` event
//! and the socket stays open, and so is a search over the socket's limit or
//! the gateway's (`overloaded`). A handshake over the gateway's limit of
//! open sockets is answered 429. When the gateway stops, a socket reads no
//! more searches, lets those in flight finish, then closes.
//!
//! One reader loop dispatches, one writer task owns the socket's sink and
//! drains a bounded queue, so a slow browser slows its own searches only.

use std::collections::HashMap;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use futures::{Sink, SinkExt, Stream, StreamExt};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use vidseek_protocol::query::{SearchBody, SearchEvent};
use vidseek_protocol::{ErrorBody, ErrorCode};

use crate::error::ApiError;
use crate::{AppState, SEARCH_BODY_LIMIT, search};

/// Messages waiting for the socket; searches wait when it is full.
const WRITE_QUEUE: usize = 64;
/// Client ids are echoed back; keep them short.
const MAX_ID_CHARS: usize = 128;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum ClientMessage {
    Search {
        id: String,
        #[serde(flatten)]
        query: SearchBody,
    },
    Cancel {
        id: String,
    },
}

/// `GET /api/v1/ws`
#[utoipa::path(get, path = "/api/v1/ws", tag = "search",
    description = "WebSocket. Send `{\"type\":\"search\",\"id\",\"text\"|\"image_base64\",\"k\"?}`; \
                   receive `partial` events as shards answer, then `done` or `error` (SearchEvent as JSON).",
    responses((status = 101, description = "Switching to the WebSocket protocol", body = SearchEvent)))]
pub async fn upgrade(
    State(state): State<AppState>,
    headers: axum::http::HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    // Browsers send any page's cookies-free WebSocket anywhere and CORS does
    // not apply to it, so the Origin is checked here: the gateway's own pages
    // and the configured origins only. Clients that are not browsers send no
    // Origin and are let in.
    if let Some(origin) = headers.get(axum::http::header::ORIGIN)
        && !origin_allowed(
            origin,
            headers.get(axum::http::header::HOST),
            &state.config.cors_origins,
        )
    {
        return crate::error::ApiError::new(
            ErrorCode::Forbidden,
            "WebSocket connections are accepted from this gateway's pages and the origins in VIDSEEK_CORS_ORIGINS",
        )
        .into_response();
    }
    let admitted = match state.websockets.try_admit("the gateway's WebSocket") {
        Ok(admitted) => admitted,
        Err(body) => return ApiError::from(body).into_response(),
    };
    // Browsers send a message as one frame, so the frame limit must allow
    // the largest accepted image too.
    // Counted before the 101 goes out, so the gauge never lags a client that
    // is already connected; a failed upgrade drops the guard again.
    let open = state.metrics.websocket_opened();
    let sockets = state.sockets.clone();
    ws.max_message_size(SEARCH_BODY_LIMIT)
        .max_frame_size(SEARCH_BODY_LIMIT)
        .on_upgrade(move |socket: WebSocket| {
            sockets.track_future(async move {
                let _open = (open, admitted);
                let (sink, stream) = socket.split();
                run(state, sink, stream).await;
            })
        })
}

/// Whether a browser page at `origin` may open the socket: same host as the
/// request (the gateway's own page), or a configured origin.
fn origin_allowed(
    origin: &axum::http::HeaderValue,
    host: Option<&axum::http::HeaderValue>,
    configured: &[String],
) -> bool {
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let same_host = host.and_then(|h| h.to_str().ok()).is_some_and(|host| {
        origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest == host)
    });
    same_host
        || configured
            .iter()
            .any(|o| o == "*" || o.trim_end_matches('/') == origin)
}

/// Serves one socket until the client leaves or the gateway shuts down.
/// Generic over the socket halves so the protocol is testable with channels.
async fn run<S, R>(state: AppState, mut sink: S, mut incoming: R)
where
    S: Sink<Message> + Unpin + Send + 'static,
    R: Stream<Item = Result<Message, axum::Error>> + Unpin,
{
    let (tx, mut rx) = mpsc::channel::<Message>(WRITE_QUEUE);
    let writer = tokio::spawn(async move {
        while let Some(message) = rx.recv().await {
            let closing = matches!(message, Message::Close(_));
            if sink.send(message).await.is_err() || closing {
                break;
            }
        }
        let _ = sink.close().await;
    });

    let mut searches: HashMap<String, JoinHandle<()>> = HashMap::new();
    let mut shutdown = state.shutdown.clone();
    loop {
        let message = tokio::select! {
            message = incoming.next() => Some(message),
            _ = shutdown.wait_for(|stopping| *stopping) => None,
        };
        let Some(message) = message else {
            // The gateway is stopping: searches already admitted get their
            // answers (each ends within the search timeout), then the close.
            let running: Vec<_> = searches.drain().map(|(_, search)| search).collect();
            let aborts: Vec<_> = running.iter().map(JoinHandle::abort_handle).collect();
            let grace = state.config.search_timeout;
            let _ = tokio::time::timeout(grace, futures::future::join_all(running)).await;
            aborts.iter().for_each(|search| search.abort());
            let _ = tx.send(Message::Close(None)).await;
            break;
        };
        match message {
            None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break,
            Some(Ok(Message::Text(text))) => {
                handle_text(&state, &tx, &mut searches, text.as_str()).await;
            }
            Some(Ok(Message::Binary(_))) => {
                send_error(
                    &tx,
                    "",
                    ErrorBody::new(ErrorCode::BadRequest, "send JSON text messages"),
                )
                .await;
            }
            // Pings are answered by the WebSocket layer itself.
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
        }
    }
    for search in searches.values() {
        search.abort();
    }
    drop(tx);
    let _ = writer.await;
}

async fn handle_text(
    state: &AppState,
    tx: &mpsc::Sender<Message>,
    searches: &mut HashMap<String, JoinHandle<()>>,
    text: &str,
) {
    let message: ClientMessage = match serde_json::from_str(text) {
        Ok(message) => message,
        Err(err) => {
            // Answer under the client's id when the message had one, so the
            // UI can tell which of its searches failed.
            let id = serde_json::from_str::<serde_json::Value>(text)
                .ok()
                .and_then(|v| v.get("id").and_then(|id| id.as_str()).map(str::to_string))
                .filter(|id| id.chars().count() <= MAX_ID_CHARS)
                .unwrap_or_default();
            send_error(
                tx,
                &id,
                ErrorBody::new(ErrorCode::BadRequest, format!("malformed message: {err}")),
            )
            .await;
            return;
        }
    };
    match message {
        ClientMessage::Cancel { id } => {
            if let Some(search) = searches.remove(&id) {
                search.abort();
            }
        }
        ClientMessage::Search { id, query } => {
            if id.is_empty() || id.chars().count() > MAX_ID_CHARS {
                let body = ErrorBody::new(
                    ErrorCode::BadRequest,
                    format!("id must be 1..{MAX_ID_CHARS} characters"),
                );
                send_error(tx, "", body).await;
                return;
            }
            if let Some(previous) = searches.remove(&id) {
                previous.abort();
            }
            searches.retain(|_, search| !search.is_finished());
            let per_socket = state.config.max_searches_per_socket;
            if searches.len() >= per_socket {
                let body = ErrorBody::overloaded(
                    format!("at most {per_socket} searches at once per connection"),
                    vidseek_bus::service::RETRY_AFTER,
                );
                send_error(tx, &id, body).await;
                return;
            }
            let admitted = match search::admit(state) {
                Ok(admitted) => admitted,
                Err(body) => {
                    send_error(tx, &id, body).await;
                    return;
                }
            };
            let request = search::Asked::from_body(query)
                .map_err(|err: ApiError| err.body())
                .and_then(search::build_request);
            let request = match request {
                Ok(request) => request,
                Err(body) => {
                    send_error(tx, &id, body).await;
                    return;
                }
            };
            let task = tokio::spawn(stream_search(
                state.clone(),
                tx.clone(),
                id.clone(),
                admitted,
                request,
            ));
            searches.insert(id, task);
        }
    }
}

async fn stream_search(
    state: AppState,
    tx: mpsc::Sender<Message>,
    id: String,
    admitted: search::Admitted,
    request: vidseek_protocol::query::SearchRequest,
) {
    // Admitted by now (the socket's and the gateway's limits), so decoding
    // its image may start.
    let mut stream = match search::start(&state, admitted, request).await {
        Ok(stream) => stream,
        Err(body) => {
            send_error(&tx, &id, body).await;
            return;
        }
    };
    tracing::debug!(query_id = stream.query_id(), client_id = %id, "websocket search sent");
    while let Some(event) = stream.next().await {
        if send_event(&tx, event.with_id(&id)).await.is_err() {
            // The socket is gone; dropping the stream unsubscribes.
            return;
        }
    }
}

async fn send_event(tx: &mpsc::Sender<Message>, event: SearchEvent) -> Result<(), ()> {
    let json = match serde_json::to_string(&event) {
        Ok(json) => json,
        Err(err) => {
            tracing::error!(error = %err, "cannot encode a search event");
            return Ok(());
        }
    };
    tx.send(Message::Text(json.into())).await.map_err(|_| ())
}

async fn send_error(tx: &mpsc::Sender<Message>, id: &str, body: ErrorBody) {
    let _ = send_event(tx, SearchEvent::error(id, body)).await;
}
