//! vidseek's front door: the HTTP API, the search WebSocket, the media files
//! and the web UI.
//!
//! The gateway holds no index and runs no model. Every search becomes a
//! MessagePack request on NATS to the query stage, whose per-shard partial
//! answers are streamed straight on to the browser; every ingest or delete
//! becomes a request to the ingest workers; the video list and segment lists
//! are read from JetStream (the catalog bucket and the segment log). It also
//! serves the original seed design's routes so pages written for it keep
//! working, and `/metrics` and `/healthz` for operators.

mod auth;
mod error;
mod metrics;
mod openapi;
mod query_string;
mod routes;
mod search;
mod segments;
mod static_files;
mod ws;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use axum::serve::ListenerExt;
use tokio::sync::watch;
use tokio_util::task::TaskTracker;
use tower_http::cors::CorsLayer;
use tower_http::trace::TraceLayer;
use vidseek_bus::catalog::Catalog;
use vidseek_bus::media_store::{MediaStore, MediaStoreKind};
use vidseek_bus::service::Admission;

pub use error::{ApiError, GatewayError, status_of};

/// Default cap on one uploaded video.
pub const DEFAULT_MAX_UPLOAD_BYTES: u64 = 2 * 1024 * 1024 * 1024;
/// Default wait for the query stage's next event.
pub const DEFAULT_SEARCH_TIMEOUT: Duration = Duration::from_secs(10);
/// Default bound on searches in flight across every route; the query
/// stage's own bound per endpoint is the same.
pub const DEFAULT_MAX_SEARCHES: usize = 256;
/// Default bound on open WebSockets.
pub const DEFAULT_MAX_WEBSOCKETS: usize = 1024;
/// Default bound on searches one WebSocket has in flight.
pub const DEFAULT_MAX_SEARCHES_PER_SOCKET: usize = 16;
/// Default bound on uploads being received at once (each streams to disk).
pub const DEFAULT_MAX_UPLOADS: usize = 8;

/// What the gateway needs besides its NATS connection and listener.
#[derive(Debug, Clone)]
pub struct GatewayConfig {
    /// Uploads go to `{data_dir}/library/uploads`, thumbnails are read from
    /// `{data_dir}/thumbs`, unless `media_store` says NATS (then uploads
    /// only pass through the data directory).
    pub data_dir: PathBuf,
    /// Where thumbnails and uploaded videos live.
    pub media_store: MediaStoreKind,
    /// When set, ingest and delete require `Authorization: Bearer <token>`.
    pub api_token: Option<String>,
    /// Reads need the token too: searches (HTTP, WebSocket, seed routes),
    /// the video list, segments, media and thumbnails. Without a token set,
    /// every read is refused rather than left open.
    pub api_token_reads: bool,
    /// Directories video files may be served from (the ingest service's
    /// media roots, resolved when the gateway starts): a catalog record
    /// pointing elsewhere, which anyone who can write to NATS could plant,
    /// is not served.
    pub media_roots: Vec<PathBuf>,
    /// Web origins (`https://host:port`) whose pages may call the API and
    /// open the WebSocket; `*` allows any. Empty (the default): no CORS
    /// headers, and a browser WebSocket only from the gateway's own pages.
    pub cors_origins: Vec<String>,
    /// Largest accepted upload, in bytes.
    pub max_upload_bytes: u64,
    /// How long a search may go without an event from the query stage;
    /// also the deadline each search carries to the workers.
    pub search_timeout: Duration,
    /// Searches in flight at once over every route (REST, seed, WebSocket);
    /// one more is answered 429 `overloaded` with `Retry-After`.
    pub max_searches: usize,
    /// Open WebSockets; one more handshake is answered 429.
    pub max_websockets: usize,
    /// Searches one WebSocket may have in flight; one more gets an
    /// `overloaded` error event and the socket stays open.
    pub max_searches_per_socket: usize,
    /// Uploads received at once; one more is answered 429.
    pub max_uploads: usize,
}

impl GatewayConfig {
    /// Defaults for `data_dir`: media from its `library/` (uploads) and
    /// `samples/`, as the ingest service's defaults.
    pub fn new(data_dir: impl Into<PathBuf>) -> GatewayConfig {
        let data_dir = data_dir.into();
        GatewayConfig {
            media_roots: vec![data_dir.join("library"), data_dir.join("samples")],
            data_dir,
            media_store: MediaStoreKind::Files,
            api_token: None,
            api_token_reads: false,
            cors_origins: Vec::new(),
            max_upload_bytes: DEFAULT_MAX_UPLOAD_BYTES,
            search_timeout: DEFAULT_SEARCH_TIMEOUT,
            max_searches: DEFAULT_MAX_SEARCHES,
            max_websockets: DEFAULT_MAX_WEBSOCKETS,
            max_searches_per_socket: DEFAULT_MAX_SEARCHES_PER_SOCKET,
            max_uploads: DEFAULT_MAX_UPLOADS,
        }
    }
}

/// Everything handlers share; cheap to clone.
#[derive(Clone)]
pub(crate) struct AppState {
    pub config: Arc<GatewayConfig>,
    pub nats: async_nats::Client,
    pub js: async_nats::jetstream::Context,
    pub catalog: Catalog,
    /// The object store buckets, when media live in NATS.
    pub media: Option<MediaStore>,
    pub segments: segments::SegmentCache,
    pub metrics: metrics::Metrics,
    /// Reduces image queries before they cross NATS, a bounded number at once.
    pub images: search::ImageReducer,
    /// Admission to searches, WebSockets and uploads (see [`GatewayConfig`]).
    pub searches: Admission,
    pub websockets: Admission,
    pub uploads: Admission,
    /// Open WebSockets, which a stopping gateway waits for: graceful
    /// shutdown of the HTTP server does not cover upgraded connections.
    pub sockets: TaskTracker,
    /// Flips to true when the server shuts down; long-lived WebSockets watch it
    /// because graceful shutdown does not wait for upgraded connections.
    pub shutdown: watch::Receiver<bool>,
}

/// Serves the gateway on `listener` until `shutdown` completes, then stops
/// accepting connections and lets in-flight requests finish.
pub async fn serve(
    mut config: GatewayConfig,
    nats: async_nats::Client,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), GatewayError> {
    // Upload paths go to the ingest workers, which may run elsewhere and check
    // them against absolute media roots: make them absolute here.
    config.data_dir = absolute_data_dir(&config.data_dir)?;
    // Resolved once here, so serving a video resolves only the file's path.
    // A root that does not exist yet keeps its path as given.
    for root in &mut config.media_roots {
        if let Ok(resolved) = root.canonicalize() {
            *root = resolved;
        }
    }
    let js = async_nats::jetstream::new(nats.clone());
    // Whichever process starts first creates the streams, so the gateway can
    // come up before any worker and still list an (empty) library.
    vidseek_bus::streams::ensure_all(&js, 1).await?;
    let catalog = Catalog::open(&js).await?;
    let media = match config.media_store {
        MediaStoreKind::Files => None,
        MediaStoreKind::Nats => Some(MediaStore::open(&js).await?),
    };
    let (stop_tx, stop_rx) = watch::channel(false);
    let images = search::ImageReducer::for_this_machine(config.search_timeout);
    let sockets = TaskTracker::new();
    // A stopping gateway lets WebSocket searches already admitted finish;
    // they end within the search timeout either way.
    let socket_grace = config.search_timeout + Duration::from_secs(1);
    let state = AppState {
        searches: Admission::new(config.max_searches),
        websockets: Admission::new(config.max_websockets),
        uploads: Admission::new(config.max_uploads),
        sockets: sockets.clone(),
        config: Arc::new(config),
        nats,
        js,
        catalog,
        media,
        segments: segments::SegmentCache::default(),
        metrics: metrics::Metrics::default(),
        images,
        shutdown: stop_rx,
    };
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "gateway listening");
    }
    let signal = async move {
        shutdown.await;
        tracing::info!("gateway shutting down");
        let _ = stop_tx.send(true);
    };
    // Small writes go out at once: a WebSocket search sends several small
    // frames (each shard's partial, then done), and under Nagle's algorithm
    // each after the first waited for the client's delayed ACK (~40 ms).
    let listener = listener.tap_io(|stream| {
        if let Err(err) = stream.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY on a connection");
        }
    });
    // Stops accepting, then waits for the requests in flight.
    axum::serve(listener, router(state))
        .with_graceful_shutdown(signal)
        .await
        .map_err(GatewayError::Serve)?;
    sockets.close();
    if tokio::time::timeout(socket_grace, sockets.wait())
        .await
        .is_err()
    {
        tracing::warn!("WebSockets still open after the grace period; closing them");
    }
    Ok(())
}

fn absolute_data_dir(dir: &std::path::Path) -> Result<PathBuf, GatewayError> {
    let failed = |source| GatewayError::DataDir {
        path: dir.to_path_buf(),
        source,
    };
    std::fs::create_dir_all(dir).map_err(failed)?;
    dir.canonicalize().map_err(failed)
}

fn router(state: AppState) -> Router {
    use routes::{health, media, scores, search as search_routes, seed, videos};

    let seed_routes = Router::new()
        .route("/text_query", get(seed::text_query))
        .route(
            "/image_query",
            axum::routing::post(seed::image_query).layer(DefaultBodyLimit::max(SEARCH_BODY_LIMIT)),
        )
        .route("/video_library", get(seed::video_library))
        .route("/video_player", get(seed::video_player));

    let cors = cors_layer(&state.config.cors_origins);
    Router::new()
        .route(
            "/api/v1/search",
            get(search_routes::search_get).merge(
                axum::routing::post(search_routes::search_post)
                    .layer(DefaultBodyLimit::max(SEARCH_BODY_LIMIT)),
            ),
        )
        .route("/api/v1/ws", get(ws::upgrade))
        .route(
            "/api/v1/videos",
            get(videos::list).merge(
                // Uploads are limited while streaming, against the configured cap.
                axum::routing::post(videos::create).layer(DefaultBodyLimit::disable()),
            ),
        )
        .route(
            "/api/v1/videos/{id}",
            get(videos::get_one).delete(videos::delete),
        )
        .route("/api/v1/videos/{id}/segments", get(videos::segments))
        .route(
            "/api/v1/videos/{id}/scores",
            get(scores::scores_get).merge(
                axum::routing::post(scores::scores_post)
                    .layer(DefaultBodyLimit::max(SEARCH_BODY_LIMIT)),
            ),
        )
        .route("/media/videos/{id}", get(media::video))
        .route("/media/thumbs/{id}/{file}", get(media::thumbnail))
        .merge(seed_routes)
        // Every route above reads or changes the library; those below and
        // the web UI's files stay open for probes and the login-less UI.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard_reads,
        ))
        .route("/healthz", get(health::healthz))
        .route("/metrics", get(metrics::render))
        .route("/api/v1/openapi.json", get(openapi::spec))
        .fallback(static_files::serve)
        .layer(axum::middleware::from_fn(query_string::require_utf8))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .layer(TraceLayer::new_for_http())
        .layer(cors)
        .with_state(state)
}

/// CORS for the configured origins only (pages such as the seed design's,
/// served elsewhere); with none configured, browsers keep other origins out.
fn cors_layer(origins: &[String]) -> CorsLayer {
    use axum::http::{HeaderValue, Method, header};
    use tower_http::cors::AllowOrigin;
    if origins.is_empty() {
        return CorsLayer::new();
    }
    let allow = if origins.iter().any(|o| o == "*") {
        AllowOrigin::any()
    } else {
        AllowOrigin::list(
            origins
                .iter()
                .filter_map(|o| HeaderValue::from_str(o.trim_end_matches('/')).ok()),
        )
    };
    CorsLayer::new()
        .allow_origin(allow)
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([header::CONTENT_TYPE, header::AUTHORIZATION])
}

/// Largest search request body: a base64 image in JSON is 4/3 of the image,
/// plus room for the other fields or multipart framing.
pub(crate) const SEARCH_BODY_LIMIT: usize =
    vidseek_protocol::query::MAX_IMAGE_BYTES / 3 * 4 + 64 * 1024;
