//! The query stage: the public search subjects. A query is encoded by the
//! encoder service, scattered to every ranker shard at once, and the shards'
//! top-k lists are merged as they arrive. `vidseek.v1.search.stream` (the
//! gateway's subject) publishes the improved top-k after each shard answers,
//! then a final event; `vidseek.v1.search.text|image` answer once, in JSON
//! unless the caller sent MessagePack, so any NATS client can search.
//!
//! Every query has a deadline: the one its `Vidseek-Deadline` header carries
//! (the gateway sets it), never later than this stage's own budget. A query
//! whose deadline has passed is answered `timeout` before any work; the
//! encoder and the shards are asked with the time that is left, and a shard
//! that has not answered by then is left out of the merge (its answer, if it
//! comes, is dropped), so the answer holds the others' results with
//! `shards_done < shards_total` and a warning.

mod merge;

use std::time::{Duration, Instant};

use async_nats::Message;
use async_nats::service::ServiceExt;
use base64::Engine;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use tokio_util::sync::CancellationToken;
use vidseek_bus::deadline::Deadline;
use vidseek_bus::rpc;
use vidseek_bus::service::Admission;
use vidseek_protocol::codec::Format;
use vidseek_protocol::encode::{
    EncodeImageRequest, EncodeImageResponse, EncodeTextRequest, EncodeTextResponse,
};
use vidseek_protocol::error::{ErrorBody, ErrorCode};
use vidseek_protocol::query::{
    HealthReport, ImageSearch, QueryInput, QueryTranslation, SearchEvent, SearchRequest,
    SearchResponse, TextSearch, Warning,
};
use vidseek_protocol::rank::{KindCalibration, RankRequest, RankResponse, Space};
use vidseek_protocol::subjects;

pub use merge::Merged;

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error("cannot start the query service: {0}")]
    Service(async_nats::Error),
    #[error("cannot subscribe to {subject}: {source}")]
    Subscribe {
        subject: &'static str,
        source: async_nats::SubscribeError,
    },
}

#[derive(Debug, Clone)]
pub struct QueryConfig {
    /// Number of ranker shards queries are scattered to.
    pub shards: u32,
    /// Deadline for the encoder's answer.
    pub encode_timeout: Duration,
    /// Deadline for each shard's answer.
    pub shard_timeout: Duration,
}

/// A query ready to scatter, and what the user should be told about it.
struct Encoded {
    rank_request: RankRequest,
    warnings: Vec<Warning>,
    query_translation: Option<QueryTranslation>,
}

impl QueryConfig {
    /// The latest deadline this stage gives a query: the encoder's time
    /// plus a shard's, from when it arrives.
    fn own_deadline(&self) -> Deadline {
        Deadline::after(self.encode_timeout + self.shard_timeout)
    }

    /// The deadline of a query arriving in `message`.
    fn deadline_of(&self, message: &Message) -> Deadline {
        let own = self.own_deadline();
        Deadline::of(message.headers.as_ref()).map_or(own, |carried| carried.min(own))
    }
}

#[derive(Clone)]
struct QueryStage {
    nats: async_nats::Client,
    config: QueryConfig,
}

/// Serves the search and health subjects until `shutdown` fires.
pub async fn run(
    nats: async_nats::Client,
    config: QueryConfig,
    shutdown: CancellationToken,
) -> Result<(), QueryError> {
    let stage = QueryStage {
        nats: nats.clone(),
        config,
    };
    let service = nats
        .service_builder()
        .description("vidseek search: encode, scatter to shards, merge")
        .start(subjects::SERVICE_QUERY, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(QueryError::Service)?;
    let add = |name: &'static str, subject: &'static str| {
        let service = &service;
        async move {
            service
                .endpoint_builder()
                .name(name)
                .add(subject)
                .await
                .map_err(QueryError::Service)
        }
    };
    let text = add("text", subjects::SEARCH_TEXT).await?;
    let image = add("image", subjects::SEARCH_IMAGE).await?;
    let health = add("health", subjects::HEALTH).await?;
    // The streaming subject answers with several messages, which the service
    // API's one-reply requests cannot express: a plain queue subscription.
    let mut stream = nats
        .queue_subscribe(subjects::SEARCH_STREAM, "vidseek-query".to_string())
        .await
        .map_err(|source| QueryError::Subscribe {
            subject: subjects::SEARCH_STREAM,
            source,
        })?;

    // The one-shot subjects differ only in how a request is read.
    let serve_once = |endpoint, parse: fn(&Message) -> Result<SearchRequest, ErrorBody>| {
        let s = stage.clone();
        vidseek_bus::service::serve_messages(endpoint, move |message| {
            let stage = s.clone();
            async move {
                let deadline = stage.config.deadline_of(&message);
                stage.search_once(parse(&message)?, deadline).await
            }
        })
    };
    let serve_text = serve_once(text, text_request);
    let serve_image = serve_once(image, image_request);
    let s = stage.clone();
    let serve_health = vidseek_bus::service::serve_messages(health, move |_| {
        let stage = s.clone();
        async move { Ok::<_, ErrorBody>(stage.health().await) }
    });
    let serve_stream = async {
        // Bounded like the service endpoints: a query over the limit (or
        // past its deadline) is answered at once, without a task.
        let admission = Admission::per_endpoint();
        while let Some(message) = stream.next().await {
            match admission.admit(&message) {
                Ok(permit) => {
                    let stage = stage.clone();
                    vidseek_bus::service::spawn_in_flight(async move {
                        let _permit = permit;
                        stage.search_streaming(message).await
                    });
                }
                Err(refusal) => rpc::reply(&nats, &message, &Err::<(), _>(refusal)).await,
            }
        }
    };
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = futures::future::join4(serve_text, serve_image, serve_health, serve_stream) => {}
    }
    let _ = service.stop().await;
    Ok(())
}

fn new_query_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `{"text", "k"?, "min_score"?}` in JSON or MessagePack.
fn text_request(message: &Message) -> Result<SearchRequest, ErrorBody> {
    let body: TextSearch = rpc::decode_request(message)?;
    SearchRequest::new(
        rpc::query_id_of(message).unwrap_or_else(new_query_id),
        QueryInput::Text { text: body.text },
        body.k,
        body.min_score,
    )
}

/// Raw image bytes, or `{"image_base64", "k"?, "min_score"?}`.
fn image_request(message: &Message) -> Result<SearchRequest, ErrorBody> {
    let query_id = rpc::query_id_of(message).unwrap_or_else(new_query_id);
    let looks_structured = rpc::format_of(message.headers.as_ref()) == Format::MsgPack
        || message.payload.first() == Some(&b'{');
    let (bytes, k, min_score) = if looks_structured {
        let body: ImageSearch = rpc::decode_request(message)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body.image_base64.trim())
            .map_err(|e| {
                ErrorBody::new(
                    ErrorCode::BadRequest,
                    format!("image_base64 is not base64: {e}"),
                )
            })?;
        (bytes, body.k, body.min_score)
    } else {
        (message.payload.to_vec(), None, None)
    };
    // Raw NATS clients send pictures unreduced: refuse from the header alone
    // what no stage should decode, saying what to send instead.
    vidseek_bus::query_image::check_nats_query(&bytes)?;
    SearchRequest::new(query_id, QueryInput::Image { bytes }, k, min_score)
}

impl QueryStage {
    /// Runs a search to the end and returns the final answer.
    async fn search_once(
        &self,
        request: SearchRequest,
        deadline: Deadline,
    ) -> Result<SearchResponse, ErrorBody> {
        let query_id = request.query_id.clone();
        let mut last = None;
        self.search(request, deadline, |event| last = Some(event))
            .await;
        match last {
            Some(SearchEvent::Done {
                took_ms,
                shards_done,
                shards_total,
                results,
                warnings,
                query_translation,
                ..
            }) => Ok(SearchResponse {
                query_id,
                took_ms,
                shards_done,
                shards_total,
                results,
                warnings,
                query_translation,
            }),
            Some(SearchEvent::Error { code, message, .. }) => Err(ErrorBody::new(code, message)),
            _ => Err(ErrorBody::new(
                ErrorCode::Internal,
                "search ended without an answer",
            )),
        }
    }

    /// Answers a streaming search: every event goes to the reply subject.
    async fn search_streaming(&self, message: Message) {
        let Some(reply_to) = message.reply.clone() else {
            return;
        };
        let request: Result<SearchRequest, ErrorBody> = rpc::decode_request(&message);
        let format = rpc::format_of(message.headers.as_ref());
        let deadline = self.config.deadline_of(&message);
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let query_id = rpc::query_id_of(&message).unwrap_or_default();
        let publisher = {
            let nats = self.nats.clone();
            async move {
                while let Some(event) = rx.recv().await {
                    // An error ends the stream as an error reply (header and
                    // `{"error": ...}`), like every other subject's.
                    let event = match event {
                        SearchEvent::Error { code, message, .. } => {
                            Err(ErrorBody::new(code, message))
                        }
                        event => Ok(event),
                    };
                    let (headers, payload) = rpc::encode_reply(format, &event);
                    if let Err(err) = nats
                        .publish_with_headers(reply_to.clone(), headers, payload)
                        .await
                    {
                        tracing::warn!(error = %err, "could not publish search event");
                        return;
                    }
                }
            }
        };
        let searching = async move {
            // Revalidated: the stream subject is open to any NATS client.
            // Pictures from raw clients are checked from the header, as on
            // the one-shot image subject.
            let request = request.and_then(|r| {
                if let QueryInput::Image { bytes } = &r.input {
                    vidseek_bus::query_image::check_nats_query(bytes)?;
                }
                SearchRequest::new(r.query_id, r.input, Some(r.k), Some(r.min_score))
            });
            match request {
                Ok(request) => {
                    self.search(request, deadline, |event| drop(tx.send(event)))
                        .await
                }
                Err(body) => drop(tx.send(SearchEvent::error(query_id, body))),
            }
        };
        futures::future::join(searching, publisher).await;
    }

    /// Encodes the query, scatters it to the shards and reports every
    /// improvement through `emit`: partial events, then done or error.
    /// `shards_done` counts the shards whose results are merged.
    async fn search(
        &self,
        request: SearchRequest,
        deadline: Deadline,
        mut emit: impl FnMut(SearchEvent),
    ) {
        let started = Instant::now();
        let id = request.query_id.clone();
        if let Err(body) = deadline.check("search") {
            return emit(SearchEvent::error(id, body));
        }
        let Encoded {
            rank_request,
            mut warnings,
            query_translation,
        } = match self.encode(&request, deadline).await {
            Ok(encoded) => encoded,
            Err(body) => return emit(SearchEvent::error(id, body)),
        };
        let shards_total = self.config.shards;
        // Each shard gets the time left, at most its own timeout: an answer
        // after that is not waited for and never merged.
        let shard_deadline = deadline.min(Deadline::after(self.config.shard_timeout));
        let mut pending: FuturesUnordered<_> = (0..shards_total)
            .map(|shard| {
                let nats = self.nats.clone();
                let rank_request = rank_request.clone();
                let id = id.clone();
                async move {
                    let answer: Result<RankResponse, ErrorBody> = rpc::request_until(
                        &nats,
                        subjects::rank(shard),
                        &rank_request,
                        shard_deadline,
                        Some(&id),
                    )
                    .await;
                    (shard, answer)
                }
            })
            .collect();
        let mut merged = Merged::new(request.k);
        let mut shards_done = 0;
        let mut last_failure = None;
        while let Some((shard, answer)) = pending.next().await {
            match answer {
                Ok(response) => {
                    shards_done += 1;
                    merged.add(response.hits);
                }
                Err(body) => {
                    warnings.push(Warning {
                        code: "shard_unavailable".into(),
                        message: format!(
                            "shard {shard} did not answer ({}): results may be incomplete",
                            body.error.message
                        ),
                    });
                    last_failure = Some(body.error.code);
                    continue;
                }
            }
            if shards_done < shards_total {
                emit(SearchEvent::Partial {
                    id: id.clone(),
                    shards_done,
                    shards_total,
                    results: merged.hits(),
                });
            }
        }
        if shards_done == 0 && shards_total > 0 {
            let body = match last_failure {
                Some(ErrorCode::Timeout) => ErrorBody::new(
                    ErrorCode::Timeout,
                    "no ranker shard answered before the query's deadline",
                ),
                _ => ErrorBody::new(
                    ErrorCode::Unavailable,
                    "no ranker shard answered; is the index loaded?",
                ),
            };
            return emit(SearchEvent::error(id, body));
        }
        emit(SearchEvent::Done {
            id,
            took_ms: started.elapsed().as_millis() as u64,
            shards_done,
            shards_total,
            results: merged.hits(),
            warnings,
            query_translation,
        });
    }

    /// The query's vector, the space and calibration to rank in, and any
    /// warning the encoder raised.
    async fn encode(
        &self,
        request: &SearchRequest,
        deadline: Deadline,
    ) -> Result<Encoded, ErrorBody> {
        let id = Some(request.query_id.as_str());
        let deadline = deadline.min(Deadline::after(self.config.encode_timeout));
        let mut warnings = vec![];
        let mut query_translation = None;
        let mut terms = vec![];
        let (space, vector, calibration) = match &request.input {
            QueryInput::Text { text } => {
                let encoded: EncodeTextResponse = rpc::request_with_retry_until(
                    &self.nats,
                    subjects::ENCODE_TEXT,
                    &EncodeTextRequest {
                        texts: vec![text.clone()],
                    },
                    deadline,
                    id,
                )
                .await?;
                if let Some(Some(language)) = encoded.unsupported_language.first() {
                    warnings.push(Warning {
                        code: "language_unsupported".into(),
                        message: format!(
                            "the installed model pack does not understand this query's language ({language}); results are unreliable. Install a multilingual pack (vidseek models list)."
                        ),
                    });
                }
                query_translation = encoded.translations.into_iter().next().flatten();
                // Lexical terms come from the query as typed: a Chinese query
                // matches Chinese cues, an English name matches itself.
                terms = vidseek_text::terms::terms(text);
                let vector = encoded.vectors.into_iter().next().ok_or_else(|| {
                    ErrorBody::new(ErrorCode::Internal, "the encoder returned no vector")
                })?;
                (
                    Space::Text,
                    vector,
                    KindCalibration {
                        shot: encoded.text_visual,
                        subtitle: encoded.text_text,
                        ocr: encoded.text_ocr,
                    },
                )
            }
            QueryInput::Image { bytes } => {
                let encoded: EncodeImageResponse = rpc::request_with_retry_until(
                    &self.nats,
                    subjects::ENCODE_IMAGE,
                    &EncodeImageRequest {
                        images: vec![serde_bytes::ByteBuf::from(bytes.clone())],
                    },
                    deadline,
                    id,
                )
                .await?;
                let vectors = encoded.vectors.into_iter().next().ok_or_else(|| {
                    ErrorBody::new(ErrorCode::Internal, "the encoder returned no vector")
                })?;
                (
                    Space::Image,
                    vectors.image_space,
                    KindCalibration {
                        shot: encoded.image_image,
                        subtitle: encoded.image_image,
                        ocr: None,
                    },
                )
            }
        };
        Ok(Encoded {
            rank_request: RankRequest {
                space,
                vector,
                k: request.k,
                calibration,
                min_score: request.min_score,
                terms,
            },
            warnings,
            query_translation,
        })
    }

    /// Whether an encoder answers and how many shards have loaded their log.
    async fn health(&self) -> HealthReport {
        let timeout = Duration::from_secs(2);
        let nothing = EncodeTextRequest { texts: vec![] };
        let encoder = rpc::request::<_, EncodeTextResponse>(
            &self.nats,
            subjects::ENCODE_TEXT.to_string(),
            &nothing,
            timeout,
            None,
        );
        let probe = RankRequest {
            space: Space::Text,
            vector: vec![],
            k: 0,
            calibration: KindCalibration {
                shot: vidseek_protocol::encode::Calibration { a: 1.0, b: 0.0 },
                subtitle: vidseek_protocol::encode::Calibration { a: 1.0, b: 0.0 },
                ocr: None,
            },
            min_score: 0.0,
            terms: vec![],
        };
        let shards = futures::future::join_all((0..self.config.shards).map(|shard| {
            rpc::request::<_, RankResponse>(
                &self.nats,
                subjects::rank(shard),
                &probe,
                timeout,
                None,
            )
        }));
        let (encoder, shards) = futures::future::join(encoder, shards).await;
        let ready: Vec<RankResponse> = shards.into_iter().filter_map(Result::ok).collect();
        HealthReport {
            encoder: encoder.is_ok(),
            shards_total: self.config.shards,
            shards_ready: ready.len() as u32,
            segments_indexed: ready.iter().map(|r| r.segments_indexed).sum(),
        }
    }
}
