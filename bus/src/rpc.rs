//! Typed request/reply over NATS.
//!
//! Requests inside vidseek are MessagePack; replies come back in the format of
//! the request, so a JSON client (the `nats` CLI) gets JSON. An error reply
//! carries an [`ErrorBody`] and the `Vidseek-Error` header, which lets any
//! client tell it from a result without guessing from the body.

use std::time::Duration;

use async_nats::{HeaderMap, Message, RequestErrorKind};
use bytes::Bytes;
use serde::{Serialize, de::DeserializeOwned};
use vidseek_protocol::codec::{self, CONTENT_TYPE, Format};
use vidseek_protocol::subjects::{HEADER_ERROR, HEADER_QUERY_ID};
use vidseek_protocol::{ErrorBody, ErrorCode};

use crate::deadline::Deadline;

/// The format a message was sent in.
pub fn format_of(headers: Option<&HeaderMap>) -> Format {
    Format::from_content_type(
        headers
            .and_then(|h| h.get(CONTENT_TYPE))
            .map(|v| v.as_str()),
    )
}

/// The query id a message carries, if any.
pub fn query_id_of(message: &Message) -> Option<String> {
    message
        .headers
        .as_ref()
        .and_then(|h| h.get(HEADER_QUERY_ID))
        .map(|v| v.as_str().to_string())
}

/// Decodes a request body in the format its headers announce.
pub fn decode_request<T: DeserializeOwned>(message: &Message) -> Result<T, ErrorBody> {
    codec::decode(format_of(message.headers.as_ref()), &message.payload)
        .map_err(|e| e.to_error_body())
}

/// Encodes a reply (result or error) in `format`, with the headers that say which.
pub fn encode_reply<T: Serialize>(
    format: Format,
    result: &Result<T, ErrorBody>,
) -> (HeaderMap, Bytes) {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, format.content_type());
    let encoded = match result {
        Ok(value) => codec::encode(format, value),
        Err(body) => {
            headers.insert(HEADER_ERROR, body.error.code.as_str());
            codec::encode(format, body)
        }
    };
    match encoded {
        Ok(bytes) => (headers, Bytes::from(bytes)),
        Err(err) => {
            // Only reachable if a type cannot be represented in the format;
            // fall back to JSON, which every client reads.
            let body = ErrorBody::new(ErrorCode::Internal, err.to_string());
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, Format::Json.content_type());
            headers.insert(HEADER_ERROR, body.error.code.as_str());
            let bytes = codec::encode(Format::Json, &body).unwrap_or_default();
            (headers, Bytes::from(bytes))
        }
    }
}

/// Publishes `result` to `message`'s reply subject in the format of `message`.
pub async fn reply<T: Serialize>(
    client: &async_nats::Client,
    message: &Message,
    result: &Result<T, ErrorBody>,
) {
    let Some(reply_to) = message.reply.clone() else {
        tracing::debug!(subject = %message.subject, "request without reply subject; nothing to answer");
        return;
    };
    let (headers, payload) = encode_reply(format_of(message.headers.as_ref()), result);
    if let Err(err) = client
        .publish_with_headers(reply_to, headers, payload)
        .await
    {
        tracing::warn!(error = %err, "could not publish reply");
    }
}

/// Decodes a reply: the error body when the error header is set, else `T`.
pub fn decode_reply<T: DeserializeOwned>(message: &Message) -> Result<T, ErrorBody> {
    let format = format_of(message.headers.as_ref());
    let is_error = message
        .headers
        .as_ref()
        .is_some_and(|h| h.get(HEADER_ERROR).is_some());
    if is_error {
        return Err(
            codec::decode::<ErrorBody>(format, &message.payload).unwrap_or_else(|e| {
                ErrorBody::new(ErrorCode::Internal, format!("undecodable error reply: {e}"))
            }),
        );
    }
    codec::decode(format, &message.payload)
        .map_err(|e| ErrorBody::new(ErrorCode::Internal, format!("undecodable reply: {e}")))
}

/// [`request`] to a stateless service in a queue group, retried once: a
/// replica that dies holding the request never answers, and the retry goes
/// (through the queue group) to one that is alive. The first try gets a
/// third of `budget`, the retry the rest.
pub async fn request_with_retry<Req: Serialize, Resp: DeserializeOwned>(
    client: &async_nats::Client,
    subject: &str,
    body: &Req,
    budget: Duration,
    query_id: Option<&str>,
) -> Result<Resp, ErrorBody> {
    request_with_retry_until(client, subject, body, Deadline::after(budget), query_id).await
}

/// [`request_with_retry`] within a query's deadline, which travels with
/// both tries.
pub async fn request_with_retry_until<Req: Serialize, Resp: DeserializeOwned>(
    client: &async_nats::Client,
    subject: &str,
    body: &Req,
    deadline: Deadline,
    query_id: Option<&str>,
) -> Result<Resp, ErrorBody> {
    if deadline.expired() {
        return Err(deadline.exceeded(subject));
    }
    let first_try = deadline.remaining() / 3;
    let first = send(
        client,
        subject.to_string(),
        body,
        first_try,
        headers(query_id, Some(deadline)),
    )
    .await;
    match first {
        Err(error)
            if matches!(
                error.error.code,
                ErrorCode::Timeout | ErrorCode::Unavailable
            ) && !deadline.expired() =>
        {
            tracing::warn!(subject, error = %error.error.message, "no answer; retrying once");
            request_until(client, subject.to_string(), body, deadline, query_id).await
        }
        other => other,
    }
}

/// Asks the query stage whether the stack can answer queries.
pub async fn health(
    client: &async_nats::Client,
    timeout: Duration,
) -> Result<vidseek_protocol::query::HealthReport, ErrorBody> {
    request(
        client,
        vidseek_protocol::subjects::HEALTH.to_string(),
        &(),
        timeout,
        None,
    )
    .await
}

/// Headers of an internal MessagePack request.
pub fn msgpack_headers(query_id: Option<&str>) -> HeaderMap {
    headers(query_id, None)
}

/// Headers of an internal MessagePack request that carries a deadline.
pub fn headers(query_id: Option<&str>, deadline: Option<Deadline>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(CONTENT_TYPE, Format::MsgPack.content_type());
    if let Some(id) = query_id {
        headers.insert(HEADER_QUERY_ID, id);
    }
    if let Some(deadline) = deadline {
        deadline.insert_into(&mut headers);
    }
    headers
}

/// Sends a MessagePack request and decodes the typed reply. Transport failures
/// become the error codes clients see: nobody listening is `unavailable`, a
/// slow answer is `timeout`.
pub async fn request<Req: Serialize, Resp: DeserializeOwned>(
    client: &async_nats::Client,
    subject: String,
    request: &Req,
    timeout: Duration,
    query_id: Option<&str>,
) -> Result<Resp, ErrorBody> {
    send(client, subject, request, timeout, msgpack_headers(query_id)).await
}

/// [`request`] carrying `deadline`, waiting for the answer until then: an
/// answer that would come later is not waited for (and, sent to an inbox
/// nobody reads any more, is dropped by the server). A deadline already
/// passed is `timeout` without sending anything.
pub async fn request_until<Req: Serialize, Resp: DeserializeOwned>(
    client: &async_nats::Client,
    subject: String,
    request: &Req,
    deadline: Deadline,
    query_id: Option<&str>,
) -> Result<Resp, ErrorBody> {
    let timeout = deadline.remaining();
    if timeout.is_zero() {
        return Err(deadline.exceeded(&subject));
    }
    send(
        client,
        subject,
        request,
        timeout,
        headers(query_id, Some(deadline)),
    )
    .await
}

async fn send<Req: Serialize, Resp: DeserializeOwned>(
    client: &async_nats::Client,
    subject: String,
    request: &Req,
    timeout: Duration,
    headers: HeaderMap,
) -> Result<Resp, ErrorBody> {
    let started = std::time::Instant::now();
    let query_id = headers.get(HEADER_QUERY_ID).map(|v| v.as_str().to_string());
    let result = exchange(client, subject.clone(), request, timeout, headers).await;
    let outcome = crate::metrics::outcome(&result);
    crate::metrics::call_answered(&subject, outcome, started.elapsed());
    tracing::debug!(
        subject,
        query_id,
        outcome,
        took_ms = started.elapsed().as_millis() as u64,
        "request sent"
    );
    result
}

async fn exchange<Req: Serialize, Resp: DeserializeOwned>(
    client: &async_nats::Client,
    subject: String,
    request: &Req,
    timeout: Duration,
    headers: HeaderMap,
) -> Result<Resp, ErrorBody> {
    let payload = codec::encode(Format::MsgPack, request).map_err(|e| e.to_error_body())?;
    let nats_request = async_nats::Request::new()
        .payload(Bytes::from(payload))
        .headers(headers)
        .timeout(Some(timeout));
    let reply = client
        .send_request(subject.clone(), nats_request)
        .await
        .map_err(|err| match err.kind() {
            RequestErrorKind::TimedOut => ErrorBody::new(
                ErrorCode::Timeout,
                format!("{subject} did not answer within {} ms", timeout.as_millis()),
            ),
            RequestErrorKind::NoResponders => ErrorBody::new(
                ErrorCode::Unavailable,
                format!("no worker serves {subject}"),
            ),
            RequestErrorKind::MaxPayloadExceeded => ErrorBody::new(
                ErrorCode::TooLarge,
                format!("request to {subject} is too large: {err}"),
            ),
            _ => ErrorBody::new(
                ErrorCode::Unavailable,
                format!("request to {subject} failed: {err}"),
            ),
        })?;
    decode_reply(&reply)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(headers: HeaderMap, payload: Bytes) -> Message {
        Message {
            subject: "s".into(),
            reply: None,
            payload,
            headers: Some(headers),
            status: None,
            description: None,
            length: 0,
        }
    }

    #[test]
    fn replies_roundtrip_in_both_formats() {
        for format in [Format::Json, Format::MsgPack] {
            let ok: Result<Vec<u32>, ErrorBody> = Ok(vec![1, 2]);
            let (headers, payload) = encode_reply(format, &ok);
            assert_eq!(decode_reply::<Vec<u32>>(&message(headers, payload)), ok);

            let err: Result<Vec<u32>, ErrorBody> =
                Err(ErrorBody::new(ErrorCode::Overloaded, "busy"));
            let (headers, payload) = encode_reply(format, &err);
            assert_eq!(headers.get(HEADER_ERROR).unwrap().as_str(), "overloaded");
            assert_eq!(decode_reply::<Vec<u32>>(&message(headers, payload)), err);
        }
    }

    #[test]
    fn json_error_reply_is_the_public_shape() {
        let err: Result<(), ErrorBody> =
            Err(ErrorBody::new(ErrorCode::BadRequest, "text is empty"));
        let (_, payload) = encode_reply(Format::Json, &err);
        assert_eq!(
            std::str::from_utf8(&payload).unwrap(),
            r#"{"error":{"code":"bad_request","message":"text is empty"}}"#
        );
    }
}
