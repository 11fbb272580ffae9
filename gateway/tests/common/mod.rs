//! A gateway on a random port against a real nats-server, with the workers'
//! side played by plain NATS subscriptions in the test process.

#![allow(dead_code)] // each test file uses a different part of the harness

use std::time::Duration;

use async_nats::Message;
use futures::StreamExt;
use tokio::sync::{mpsc, oneshot};
use vidseek_bus::catalog::Catalog;
use vidseek_bus::rpc;
use vidseek_gateway::{GatewayConfig, GatewayError};
use vidseek_protocol::codec::Format;
use vidseek_protocol::ingest::{
    DeleteVideo, IngestAccepted, IngestRequest, VideoDeleted, VideoRecord, VideoStatus,
};
use vidseek_protocol::query::{
    HealthReport, QueryInput, SearchEvent, SearchHit, SearchRequest, play_url, thumbnail_url,
};
use vidseek_protocol::rank::{SegmentKind, SegmentMeta, SegmentRecord, segment_id};
use vidseek_protocol::{ErrorBody, ErrorCode, subjects};
use vidseek_tests::nats::NatsServer;

/// Text queries the fake query stage treats specially.
pub const QUERY_OVERLOADED: &str = "make it overloaded";
pub const QUERY_SILENT: &str = "never answer this";
/// Files whose ingest the fake ingest service refuses.
pub const UNSUPPORTED_SUFFIX: &str = ".unsupported";
pub const KNOWN_VIDEO: &str = "vbikes01";

pub struct Options {
    pub workers: bool,
    pub api_token: Option<String>,
    pub api_token_reads: bool,
    pub max_upload_bytes: u64,
    pub search_timeout: Duration,
    pub cors_origins: Vec<String>,
    /// Any other setting (the admission limits).
    pub tune: fn(&mut GatewayConfig),
}

impl Default for Options {
    fn default() -> Self {
        Options {
            workers: true,
            cors_origins: vec![],
            api_token: None,
            api_token_reads: false,
            max_upload_bytes: 1024 * 1024,
            search_timeout: Duration::from_secs(1),
            tune: |_| {},
        }
    }
}

pub struct Stack {
    pub nats: async_nats::Client,
    pub js: async_nats::jetstream::Context,
    pub base: String,
    pub ws_url: String,
    pub data_dir: tempfile::TempDir,
    pub http: reqwest::Client,
    /// Every ingest request the fake ingest service received.
    pub ingests: mpsc::UnboundedReceiver<IngestRequest>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<Result<(), GatewayError>>>,
    _nats_server: NatsServer,
}

impl Stack {
    pub async fn start() -> Stack {
        Stack::with(Options::default()).await
    }

    pub async fn with(options: Options) -> Stack {
        let nats_server = NatsServer::start();
        let nats = nats_server.client().await;
        let js = async_nats::jetstream::new(nats.clone());
        vidseek_bus::streams::ensure_all(&js, 1).await.unwrap();
        let (ingest_tx, ingests) = mpsc::unbounded_channel();
        if options.workers {
            spawn_fake_workers(&nats, ingest_tx).await;
        }
        let data_dir = tempfile::tempdir().unwrap();
        let mut config = GatewayConfig::new(data_dir.path());
        config.api_token = options.api_token;
        config.api_token_reads = options.api_token_reads;
        config.max_upload_bytes = options.max_upload_bytes;
        config.search_timeout = options.search_timeout;
        config.cors_origins = options.cors_origins;
        (options.tune)(&mut config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let server = tokio::spawn(vidseek_gateway::serve(
            config,
            nats.clone(),
            listener,
            async move {
                let _ = stopped.await;
            },
        ));
        Stack {
            nats,
            js,
            base: format!("http://{addr}"),
            ws_url: format!("ws://{addr}/api/v1/ws"),
            data_dir,
            http: reqwest::Client::new(),
            ingests,
            stop: Some(stop),
            server: Some(server),
            _nats_server: nats_server,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        let status = response.status().as_u16();
        (
            status,
            response.json().await.unwrap_or(serde_json::Value::Null),
        )
    }

    /// Posts a multipart form to `path`.
    pub async fn post_form(&self, path: &str, form: reqwest::multipart::Form) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// Stops the gateway and returns what `serve` returned.
    pub async fn shutdown(mut self) -> Result<(), GatewayError> {
        let _ = self.stop.take().unwrap().send(());
        self.server.take().unwrap().await.unwrap()
    }

    /// Catalog record plus two shot segments and a subtitle segment, with a
    /// real file for the video (inside the default media roots) and
    /// thumbnails on disk.
    pub async fn seed_video(&self, video_id: &str, content: &[u8]) -> VideoRecord {
        let media = self.data_dir.path().join("library/media");
        std::fs::create_dir_all(&media).unwrap();
        let path = media.join(format!("{video_id}.mp4"));
        std::fs::write(&path, content).unwrap();
        self.seed_video_at(video_id, &path).await
    }

    /// As [`Stack::seed_video`], for a file that already exists anywhere.
    pub async fn seed_video_at(&self, video_id: &str, path: &std::path::Path) -> VideoRecord {
        let record = VideoRecord {
            video_id: video_id.into(),
            name: format!("{video_id}.mp4"),
            path: path.to_string_lossy().into_owned(),
            status: VideoStatus::Ready,
            progress: 1.0,
            error: None,
            duration: Some(30.0),
            segment_count: 3,
            generation: "g1".into(),
            updated_at_ms: 1,
        };
        Catalog::open(&self.js)
            .await
            .unwrap()
            .put(&record)
            .await
            .unwrap();
        let segments = (0..3)
            .map(|index| SegmentRecord {
                meta: SegmentMeta {
                    segment_id: segment_id(video_id, index),
                    video_id: video_id.into(),
                    video_name: record.name.clone(),
                    index,
                    start: index as f64 * 10.0 + 2.5,
                    end: index as f64 * 10.0 + 9.0,
                    kind: if index == 2 {
                        SegmentKind::Subtitle
                    } else {
                        SegmentKind::Shot
                    },
                    text: (index == 2).then(|| "a bicycle by the wall".to_string()),
                },
                text_vector: vec![0.6, 0.8],
                image_vector: None,
                terms: vec![],
            })
            .collect();
        vidseek_bus::segment_log::replace_video(&self.js, 0, video_id, "g1", segments)
            .await
            .unwrap();
        let thumbs = self.data_dir.path().join("thumbs").join(video_id);
        std::fs::create_dir_all(&thumbs).unwrap();
        for index in 0..3 {
            std::fs::write(
                thumbs.join(format!("{index}.jpg")),
                b"\xff\xd8\xff fake jpeg",
            )
            .unwrap();
        }
        record
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

pub fn hit(video_id: &str, index: u32, score: f32) -> SearchHit {
    SearchHit {
        video_id: video_id.into(),
        video_name: format!("{video_id}.mp4"),
        segment_id: segment_id(video_id, index),
        start: index as f64 * 10.0 + 2.5,
        end: index as f64 * 10.0 + 9.0,
        score,
        kind: SegmentKind::Shot,
        text: None,
        thumbnail_url: thumbnail_url(video_id, index),
        play_url: play_url(video_id),
        more_in_video: None,
    }
}

async fn spawn_fake_workers(
    nats: &async_nats::Client,
    ingests: mpsc::UnboundedSender<IngestRequest>,
) {
    let mut searches = nats.subscribe(subjects::SEARCH_STREAM).await.unwrap();
    let client = nats.clone();
    tokio::spawn(async move {
        while let Some(message) = searches.next().await {
            let client = client.clone();
            tokio::spawn(async move { answer_search(&client, message).await });
        }
    });

    let mut health = nats.subscribe(subjects::HEALTH).await.unwrap();
    let client = nats.clone();
    tokio::spawn(async move {
        while let Some(message) = health.next().await {
            let report = HealthReport {
                encoder: true,
                shards_total: 2,
                shards_ready: 2,
                segments_indexed: 3,
                segments_settling: 0,
            };
            rpc::reply(&client, &message, &Ok::<_, ErrorBody>(report)).await;
        }
    });

    let mut ingest = nats.subscribe(subjects::INGEST).await.unwrap();
    let client = nats.clone();
    tokio::spawn(async move {
        while let Some(message) = ingest.next().await {
            let result = rpc::decode_request::<IngestRequest>(&message).and_then(|request| {
                let refused = request.path.ends_with(UNSUPPORTED_SUFFIX);
                let _ = ingests.send(request);
                if refused {
                    Err(ErrorBody::new(
                        ErrorCode::UnsupportedMedia,
                        "no video stream",
                    ))
                } else {
                    Ok(IngestAccepted {
                        video_id: "vnew0001".into(),
                        status: VideoStatus::Queued,
                    })
                }
            });
            rpc::reply(&client, &message, &result).await;
        }
    });

    let mut delete = nats.subscribe(subjects::INGEST_DELETE).await.unwrap();
    let client = nats.clone();
    tokio::spawn(async move {
        while let Some(message) = delete.next().await {
            let result = rpc::decode_request::<DeleteVideo>(&message).and_then(|request| {
                if request.video_id == KNOWN_VIDEO {
                    Ok(VideoDeleted {
                        video_id: request.video_id,
                        segments_removed: 3,
                    })
                } else {
                    Err(ErrorBody::new(ErrorCode::NotFound, "no such video"))
                }
            });
            rpc::reply(&client, &message, &result).await;
        }
    });
    // The subscriptions must be known to the server before the gateway sends.
    nats.flush().await.unwrap();
}

/// Two partials (one per fake shard), then done; the hits reveal what was asked.
async fn answer_search(client: &async_nats::Client, message: Message) {
    let request: SearchRequest = match rpc::decode_request(&message) {
        Ok(request) => request,
        Err(body) => return publish(client, &message, Err(body)).await,
    };
    let id = request.query_id.clone();
    let first_video = match &request.input {
        QueryInput::Text { text } if text == QUERY_SILENT => return,
        QueryInput::Text { text } if text == QUERY_OVERLOADED => {
            let event = SearchEvent::error(&id, ErrorBody::new(ErrorCode::Overloaded, "busy"));
            return publish(client, &message, Ok(event)).await;
        }
        QueryInput::Text { .. } => KNOWN_VIDEO,
        QueryInput::Image { .. } => "vimage01",
        QueryInput::TextAndImage { .. } => "vboth001",
        QueryInput::Like { .. } => "vlike001",
    };
    let shard0 = vec![hit(first_video, 1, 0.9), hit(first_video, 0, 0.5)];
    let mut merged = shard0.clone();
    merged.insert(1, hit("vother01", 0, 0.7));
    merged.truncate(request.k);
    let events = [
        SearchEvent::Partial {
            id: id.clone(),
            shards_done: 1,
            shards_total: 2,
            results: shard0,
        },
        SearchEvent::Partial {
            id: id.clone(),
            shards_done: 2,
            shards_total: 2,
            results: merged.clone(),
        },
        SearchEvent::Done {
            id: id.clone(),
            took_ms: 7,
            shards_done: 2,
            shards_total: 2,
            results: merged,
            warnings: vec![],
            query_translation: None,
        },
    ];
    for event in events {
        publish(client, &message, Ok(event)).await;
    }
}

async fn publish(
    client: &async_nats::Client,
    message: &Message,
    event: Result<SearchEvent, ErrorBody>,
) {
    let (headers, payload) = rpc::encode_reply(Format::MsgPack, &event);
    client
        .publish_with_headers(message.reply.clone().unwrap(), headers, payload)
        .await
        .unwrap();
}
