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
    HealthReport, ImageSearch, QueryInput, QueryTranslation, ScoresBody, ScoresRequest, SearchBody,
    SearchEvent, SearchFilter, SearchRequest, SearchResponse, SearchScope, SegmentScore,
    TextSearch, VideoScores, Warning, decode_image_base64,
};
use vidseek_protocol::rank::{
    Blend, KindCalibration, MAX_RANK_TERMS, RankRequest, RankResponse, ScoreVideoRequest,
    ScoreVideoResponse, SegmentLookup, SegmentRecord, Space, parse_segment_id,
};
use vidseek_protocol::sharding::shard_of;
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

/// A query as the rankers take it, before k and filters are added, and
/// what the user should be told about it.
struct Query {
    space: Space,
    vector: Vec<f32>,
    calibration: KindCalibration,
    terms: Vec<String>,
    blend: Option<Blend>,
    exclude: Vec<String>,
    warnings: Vec<Warning>,
    translation: Option<QueryTranslation>,
}

impl Query {
    fn new(space: Space, vector: Vec<f32>, calibration: KindCalibration) -> Query {
        Query {
            space,
            vector,
            calibration,
            terms: vec![],
            blend: None,
            exclude: vec![],
            warnings: vec![],
            translation: None,
        }
    }
}

fn no_vector() -> ErrorBody {
    ErrorBody::new(ErrorCode::Internal, "the encoder returned no vector")
}

/// Text queries match shots, cues and on-screen text, each calibrated.
fn text_calibration(encoded: &EncodeTextResponse) -> KindCalibration {
    KindCalibration {
        shot: encoded.text_visual,
        subtitle: encoded.text_text,
        ocr: encoded.text_ocr,
    }
}

/// Image queries match only shots (cues have no picture).
fn image_calibration(encoded: &EncodeImageResponse) -> KindCalibration {
    KindCalibration {
        shot: encoded.image_image,
        subtitle: encoded.image_image,
        ocr: None,
    }
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
    let any = add("search", subjects::SEARCH).await?;
    let scores = add("scores", subjects::SCORES).await?;
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
    let serve_any = serve_once(any, any_request);
    let s = stage.clone();
    let serve_scores = vidseek_bus::service::serve_messages(scores, move |message| {
        let stage = s.clone();
        async move {
            let deadline = stage.config.deadline_of(&message);
            let body: ScoresBody = rpc::decode_request(&message)?;
            let request =
                body.into_request(rpc::query_id_of(&message).unwrap_or_else(new_query_id))?;
            check_query_images(&request.input)?;
            stage.scores(request, deadline).await
        }
    });
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
        _ = futures::future::join(serve_any, serve_scores) => {}
    }
    let _ = service.stop().await;
    Ok(())
}

fn new_query_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// `{"text", "k"?, "min_score"?, filters?}` in JSON or MessagePack.
fn text_request(message: &Message) -> Result<SearchRequest, ErrorBody> {
    let body: TextSearch = rpc::decode_request(message)?;
    SearchRequest::new(
        rpc::query_id_of(message).unwrap_or_else(new_query_id),
        QueryInput::Text { text: body.text },
        body.k,
        body.min_score,
    )?
    .with_scope(body.scope.filter, body.scope.group.is_some())
}

/// Any search, as `POST /api/v1/search` takes it ([`SearchBody`]).
fn any_request(message: &Message) -> Result<SearchRequest, ErrorBody> {
    let body: SearchBody = rpc::decode_request(message)?;
    let request = body.into_request(rpc::query_id_of(message).unwrap_or_else(new_query_id))?;
    check_query_images(&request.input)?;
    Ok(request)
}

/// Raw NATS clients send pictures unreduced: refuse from the header alone
/// what no stage should decode, saying what to send instead.
fn check_query_images(input: &QueryInput) -> Result<(), ErrorBody> {
    match input {
        QueryInput::Image { bytes } | QueryInput::TextAndImage { bytes, .. } => {
            vidseek_bus::query_image::check_nats_query(bytes)
        }
        QueryInput::Text { .. } | QueryInput::Like { .. } => Ok(()),
    }
}

/// Raw image bytes, or `{"image_base64", "k"?, "min_score"?}`.
fn image_request(message: &Message) -> Result<SearchRequest, ErrorBody> {
    let query_id = rpc::query_id_of(message).unwrap_or_else(new_query_id);
    let looks_structured = rpc::format_of(message.headers.as_ref()) == Format::MsgPack
        || message.payload.first() == Some(&b'{');
    let (bytes, k, min_score, scope) = if looks_structured {
        let body: ImageSearch = rpc::decode_request(message)?;
        let bytes = decode_image_base64(&body.image_base64)?;
        (bytes, body.k, body.min_score, body.scope)
    } else {
        (message.payload.to_vec(), None, None, SearchScope::default())
    };
    let input = QueryInput::Image { bytes };
    check_query_images(&input)?;
    SearchRequest::new(query_id, input, k, min_score)?
        .with_scope(scope.filter, scope.group.is_some())
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
                check_query_images(&r.input)?;
                SearchRequest::new(r.query_id, r.input, Some(r.k), Some(r.min_score))?
                    .with_scope(r.filter, r.group_by_video)
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

    /// The rank request for a search, and what the user should be told.
    async fn encode(
        &self,
        request: &SearchRequest,
        deadline: Deadline,
    ) -> Result<Encoded, ErrorBody> {
        let query = self
            .encode_query(&request.input, &request.query_id, deadline)
            .await?;
        Ok(Encoded {
            rank_request: RankRequest {
                space: query.space,
                vector: query.vector,
                k: request.k,
                calibration: query.calibration,
                min_score: request.min_score,
                terms: query.terms,
                filter: request.filter.clone(),
                exclude: query.exclude,
                group_by_video: request.group_by_video,
                blend: query.blend,
            },
            warnings: query.warnings,
            query_translation: query.translation,
        })
    }

    /// What any query asks the rankers, whatever its form.
    async fn encode_query(
        &self,
        input: &QueryInput,
        query_id: &str,
        deadline: Deadline,
    ) -> Result<Query, ErrorBody> {
        let deadline = deadline.min(Deadline::after(self.config.encode_timeout));
        match input {
            QueryInput::Text { text } => self.encode_text(text, query_id, deadline).await,
            QueryInput::Image { bytes } => self.encode_image(bytes, query_id, deadline).await,
            QueryInput::TextAndImage {
                text,
                bytes,
                image_weight,
            } => {
                let (words, picture) = futures::future::join(
                    self.encode_text(text, query_id, deadline),
                    self.encode_image(bytes, query_id, deadline),
                )
                .await;
                let (mut words, picture) = (words?, picture?);
                words.blend = Some(Blend {
                    space: picture.space,
                    vector: picture.vector,
                    calibration: picture.calibration,
                    weight: *image_weight,
                });
                Ok(words)
            }
            QueryInput::Like { segment_id } => self.like(segment_id, query_id, deadline).await,
        }
    }

    async fn encode_text(
        &self,
        text: &str,
        query_id: &str,
        deadline: Deadline,
    ) -> Result<Query, ErrorBody> {
        let encoded = self
            .text_encoding(vec![text.to_string()], query_id, deadline)
            .await?;
        let mut warnings = vec![];
        if let Some(Some(language)) = encoded.unsupported_language.first() {
            warnings.push(Warning {
                code: "language_unsupported".into(),
                message: format!(
                    "the installed model pack does not understand this query's language ({language}); results are unreliable. Install a multilingual pack (vidseek models list)."
                ),
            });
        }
        let vector = encoded.vectors.first().cloned().ok_or_else(no_vector)?;
        let calibration = text_calibration(&encoded);
        Ok(Query {
            // Lexical terms come from the query as typed: a Chinese query
            // matches Chinese cues, an English name matches itself.
            terms: vidseek_text::terms::terms(text),
            warnings,
            translation: encoded.translations.into_iter().next().flatten(),
            ..Query::new(Space::Text, vector, calibration)
        })
    }

    async fn encode_image(
        &self,
        bytes: &[u8],
        query_id: &str,
        deadline: Deadline,
    ) -> Result<Query, ErrorBody> {
        let image = serde_bytes::ByteBuf::from(bytes.to_vec());
        let encoded = self.image_encoding(vec![image], query_id, deadline).await?;
        let vectors = encoded.vectors.first().cloned().ok_or_else(no_vector)?;
        Ok(Query {
            ..Query::new(
                Space::Image,
                vectors.image_space,
                image_calibration(&encoded),
            )
        })
    }

    /// "More like this": the segment's own stored vector, read from its
    /// shard; a shot's picture, or the words of a cue or of on-screen text
    /// (with their terms). The encoders are asked only for calibration.
    async fn like(
        &self,
        segment_id: &str,
        query_id: &str,
        deadline: Deadline,
    ) -> Result<Query, ErrorBody> {
        let (video_id, _) = parse_segment_id(segment_id).ok_or_else(|| {
            ErrorBody::new(
                ErrorCode::BadRequest,
                format!("{segment_id:?} is not a segment id"),
            )
        })?;
        let shard = shard_of(video_id, self.config.shards);
        let record: SegmentRecord = rpc::request_until(
            &self.nats,
            subjects::rank_segment(shard),
            &SegmentLookup {
                segment_id: segment_id.to_string(),
            },
            deadline.min(Deadline::after(self.config.shard_timeout)),
            Some(query_id),
        )
        .await?;
        let exclude = vec![segment_id.to_string()];
        if let Some(vector) = record.image_vector {
            let encoded = self.image_encoding(vec![], query_id, deadline).await?;
            return Ok(Query {
                exclude,
                ..Query::new(Space::Image, vector, image_calibration(&encoded))
            });
        }
        let encoded = self.text_encoding(vec![], query_id, deadline).await?;
        let mut terms = record.terms;
        terms.truncate(MAX_RANK_TERMS);
        Ok(Query {
            terms,
            exclude,
            ..Query::new(Space::Text, record.text_vector, text_calibration(&encoded))
        })
    }

    /// Text vectors (none for no texts: the calibration alone).
    async fn text_encoding(
        &self,
        texts: Vec<String>,
        query_id: &str,
        deadline: Deadline,
    ) -> Result<EncodeTextResponse, ErrorBody> {
        rpc::request_with_retry_until(
            &self.nats,
            subjects::ENCODE_TEXT,
            &EncodeTextRequest { texts },
            deadline,
            Some(query_id),
        )
        .await
    }

    /// Image vectors (none for no images: the calibration alone).
    async fn image_encoding(
        &self,
        images: Vec<serde_bytes::ByteBuf>,
        query_id: &str,
        deadline: Deadline,
    ) -> Result<EncodeImageResponse, ErrorBody> {
        rpc::request_with_retry_until(
            &self.nats,
            subjects::ENCODE_IMAGE,
            &EncodeImageRequest { images },
            deadline,
            Some(query_id),
        )
        .await
    }

    /// Every segment of one video scored against a query, by the shard
    /// that holds the video.
    async fn scores(
        &self,
        request: ScoresRequest,
        deadline: Deadline,
    ) -> Result<VideoScores, ErrorBody> {
        deadline.check("scores")?;
        let query = self
            .encode_query(&request.input, &request.query_id, deadline)
            .await?;
        let shard = shard_of(&request.video_id, self.config.shards);
        let score_request = ScoreVideoRequest {
            video_id: request.video_id.clone(),
            query: RankRequest {
                space: query.space,
                vector: query.vector,
                // Scores cover every segment: no k, no floor.
                k: 0,
                calibration: query.calibration,
                min_score: 0.0,
                terms: query.terms,
                filter: SearchFilter::default(),
                exclude: vec![],
                group_by_video: false,
                blend: query.blend,
            },
        };
        let answer: ScoreVideoResponse = rpc::request_until(
            &self.nats,
            subjects::rank_scores(shard),
            &score_request,
            deadline.min(Deadline::after(self.config.shard_timeout)),
            Some(&request.query_id),
        )
        .await?;
        if answer.segments.is_empty() {
            return Err(ErrorBody::new(
                ErrorCode::NotFound,
                format!("no indexed segments of video {:?}", request.video_id),
            ));
        }
        Ok(VideoScores {
            query_id: request.query_id,
            video_id: request.video_id,
            segments: answer
                .segments
                .into_iter()
                .map(|ranked| SegmentScore {
                    segment_id: ranked.meta.segment_id,
                    index: ranked.meta.index,
                    start: ranked.meta.start,
                    end: ranked.meta.end,
                    kind: ranked.meta.kind,
                    score: ranked.score,
                })
                .collect(),
            warnings: query.warnings,
            query_translation: query.translation,
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
            filter: Default::default(),
            exclude: vec![],
            group_by_video: false,
            blend: None,
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
            segments_settling: ready.iter().map(|r| r.segments_settling).sum(),
        }
    }
}
