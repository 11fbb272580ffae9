//! Serving NATS service endpoints: each request is handled on its own task
//! and answered in the caller's format (JSON unless it sent MessagePack),
//! errors as an [`ErrorBody`] with the error header set.

use std::future::Future;

use async_nats::Message;
use async_nats::service::endpoint::Endpoint;
use futures::StreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use vidseek_protocol::error::ErrorBody;

use crate::rpc::{decode_request, encode_reply, format_of};

/// Answers every request on `endpoint` with `handler(message)` until the
/// endpoint closes.
pub async fn serve_messages<Resp, H, Fut>(mut endpoint: Endpoint, handler: H)
where
    Resp: Serialize + Send + 'static,
    H: Fn(Message) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Result<Resp, ErrorBody>> + Send + 'static,
{
    while let Some(request) = endpoint.next().await {
        let handler = handler.clone();
        tokio::spawn(async move {
            let format = format_of(request.message.headers.as_ref());
            let result = handler(request.message.clone()).await;
            let (headers, payload) = encode_reply(format, &result);
            if let Err(err) = request.respond_with_headers(Ok(payload), headers).await {
                tracing::warn!(error = %err, "could not send reply");
            }
        });
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
