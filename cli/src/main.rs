//! `vidseek`: the one binary of the system. `up` runs the whole stack in one
//! process (with a child nats-server); `gateway` and `worker --role ...` run
//! one part each, for a fleet on a shared NATS; `search`, `ingest` and
//! `models` are the command-line client.

mod client;
mod embedded_nats;
mod metrics;
mod models;
mod nats_access;
mod stack;
mod status;

use std::path::PathBuf;

use clap::builder::BoolishValueParser;
use clap::{ArgAction, Args, Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(name = "vidseek", version, about = "Search video segments by text or image", long_about = None)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

/// Settings every subcommand shares.
#[derive(Args, Clone, Debug)]
pub struct Common {
    /// Data directory: NATS store, thumbnails, uploads, model packs, samples.
    #[arg(
        long,
        global = true,
        env = "VIDSEEK_DATA_DIR",
        default_value = ".vidseek"
    )]
    pub data_dir: PathBuf,
    /// NATS server to use. `up` starts its own when unset; the other
    /// commands default to nats://127.0.0.1:4222.
    #[arg(long, global = true, env = "VIDSEEK_NATS_URL")]
    pub nats_url: Option<String>,
    /// Log as JSON lines instead of text.
    #[arg(long, global = true, env = "VIDSEEK_LOG_JSON")]
    pub log_json: bool,
    /// Colon-separated directories server-side paths may come from
    /// (default: DATA_DIR/samples; DATA_DIR/library, where uploads go, is
    /// always allowed). Ingest refuses other paths and the gateway serves
    /// no video file outside them.
    #[arg(long, global = true, env = "VIDSEEK_MEDIA_ROOTS")]
    pub media_roots: Option<String>,
    #[command(flatten)]
    pub nats_access: nats_access::NatsAccessArgs,
    /// Replicas of the ingest queue, the segment log and the catalog (3 on a
    /// 3-node NATS cluster). Applied at start to streams that exist too;
    /// unset keeps what they have (new ones get 1).
    #[arg(long, global = true, env = "VIDSEEK_REPLICAS")]
    pub replicas: Option<usize>,
    /// Where thumbnails and uploaded videos live: `files` (the data
    /// directory) or `nats` (JetStream object store buckets, replicated like
    /// the streams: no disk shared between gateways and ingest workers).
    #[arg(
        long,
        global = true,
        env = "VIDSEEK_MEDIA_STORE",
        default_value = "files"
    )]
    pub media_store: vidseek_bus::media_store::MediaStoreKind,
}

impl Common {
    /// How a process of `role` authenticates to NATS (see
    /// [`nats_access::NatsAccessArgs::for_role`]).
    pub fn nats_access(&self, role: vidseek_bus::access::Role) -> vidseek_bus::NatsAccess {
        self.nats_access.for_role(role, &self.data_dir)
    }

    pub fn nats_url(&self) -> String {
        self.nats_url
            .clone()
            .unwrap_or_else(|| "nats://127.0.0.1:4222".into())
    }

    /// The media roots: the data directory's library (uploads) and
    /// `--media-roots`, else the sample library.
    pub fn media_roots(&self) -> Vec<PathBuf> {
        let mut roots = vec![self.data_dir.join("library")];
        match &self.media_roots {
            Some(list) => {
                roots.extend(std::env::split_paths(list).filter(|p| !p.as_os_str().is_empty()))
            }
            None => roots.push(self.data_dir.join("samples")),
        }
        roots
    }
}

#[derive(Subcommand)]
enum Command {
    /// Run the whole stack: nats-server, gateway, query stage, encoder,
    /// ranker shards and ingest, then ingest the sample library.
    Up(UpArgs),
    /// Run the HTTP/WebSocket gateway only.
    Gateway(GatewayArgs),
    /// Run one worker role.
    Worker(WorkerArgs),
    /// Search from the command line (over NATS).
    Search(client::SearchArgs),
    /// Ingest server-side video files or directories (over NATS).
    Ingest(client::IngestArgs),
    /// List, download, import and verify model packs.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Show the fleet: instances of every role, shards and replicas,
    /// streams, queue depths (over NATS).
    Status(status::StatusArgs),
}

#[derive(Args, Clone, Debug)]
pub struct GatewayArgs {
    /// Address the HTTP server listens on (port 0 picks a free port).
    #[arg(long, env = "VIDSEEK_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: String,
    /// When set, ingest and delete require `Authorization: Bearer <token>`.
    #[arg(long, env = "VIDSEEK_API_TOKEN", hide_env_values = true)]
    pub api_token: Option<String>,
    /// Require the API token for reads too: searches (HTTP, WebSocket, seed
    /// routes), the video list, segments, media and thumbnails. The bundled
    /// web UI sends no token, so it needs reads open (the default).
    #[arg(long, env = "VIDSEEK_API_TOKEN_READS", default_value_t = false, action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    pub api_token_reads: bool,
    /// Largest upload accepted, in MiB.
    #[arg(long, env = "VIDSEEK_MAX_UPLOAD_MB", default_value_t = 2048)]
    pub max_upload_mb: u64,
    /// Seconds a search may wait for the workers.
    #[arg(long, env = "VIDSEEK_SEARCH_TIMEOUT_S", default_value_t = 10)]
    pub search_timeout_s: u64,
    /// Searches in flight at once over HTTP, the seed routes and WebSockets;
    /// more are answered 429 with Retry-After.
    #[arg(long, env = "VIDSEEK_MAX_SEARCHES", default_value_t = vidseek_gateway::DEFAULT_MAX_SEARCHES)]
    pub max_searches: usize,
    /// Open WebSockets; more handshakes are answered 429.
    #[arg(long, env = "VIDSEEK_MAX_WEBSOCKETS", default_value_t = vidseek_gateway::DEFAULT_MAX_WEBSOCKETS)]
    pub max_websockets: usize,
    /// Searches one WebSocket may have in flight; more get an `overloaded`
    /// error event.
    #[arg(long, env = "VIDSEEK_MAX_SEARCHES_PER_SOCKET", default_value_t = vidseek_gateway::DEFAULT_MAX_SEARCHES_PER_SOCKET)]
    pub max_searches_per_socket: usize,
    /// Uploads received at once; more are answered 429.
    #[arg(long, env = "VIDSEEK_MAX_UPLOADS", default_value_t = vidseek_gateway::DEFAULT_MAX_UPLOADS)]
    pub max_uploads: usize,
    /// Comma-separated web origins (`http://host:port`) whose pages may call
    /// the API and open the WebSocket, e.g. where the original seed page is
    /// served; `*` for any. Default: none (the gateway's own pages only).
    #[arg(long, env = "VIDSEEK_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,
}

/// Settings of the worker roles.
#[derive(Args, Clone, Debug)]
pub struct WorkerSettings {
    /// Number of ranker shards (every process of a fleet must agree).
    #[arg(long, env = "VIDSEEK_SHARDS", default_value_t = 2)]
    pub shards: u32,
    /// Model pack directory (default: DATA_DIR/models/default).
    #[arg(long, env = "VIDSEEK_MODEL_PACK")]
    pub model_pack: Option<PathBuf>,
    /// ONNX Runtime shared library (default: found in DATA_DIR/python).
    #[arg(long, env = "ORT_DYLIB_PATH")]
    pub ort_library: Option<PathBuf>,
    /// Intra-op threads per ONNX session (default: half the cores under
    /// `up`, where rankers and ffmpeg share the process; all cores for a
    /// `worker --role encoder`).
    #[arg(long, env = "VIDSEEK_ENCODER_THREADS")]
    pub encoder_threads: Option<usize>,
    /// Milliseconds a model call waits after its first text or image for
    /// others to share the forward pass (0: only those already waiting).
    #[arg(long, env = "VIDSEEK_ENCODER_BATCH_WINDOW_MS", default_value_t = 2)]
    pub encoder_batch_window_ms: u64,
    /// Seconds an ingest job may go without a heartbeat before another
    /// worker takes it over.
    #[arg(long, env = "VIDSEEK_INGEST_ACK_WAIT_S", default_value_t = 30)]
    pub ingest_ack_wait_s: u64,
    /// Seconds an ingest job may make no progress before its worker stops it
    /// and hands it back to the queue (a hung decode or encoder).
    #[arg(long, env = "VIDSEEK_INGEST_STALL_S", default_value_t = 300)]
    pub ingest_stall_s: u64,
    /// Text ingest reads from the picture when a request does not say: off,
    /// captions (burned-in subtitles: the lower band, a few samples a
    /// second, from the same decode as the shots; and subtitle tracks made
    /// of pictures: PGS, DVB, VobSub) or all (also each shot's on-screen
    /// text: one more frame decode and recognition per shot).
    #[arg(long, env = "VIDSEEK_OCR", default_value = "captions", value_parser = parse_ocr_mode)]
    pub ocr: vidseek_protocol::ingest::OcrMode,
    /// tesseract processes one ingest job runs at once (default: half the
    /// cores, at least one).
    #[arg(long, env = "VIDSEEK_OCR_THREADS")]
    pub ocr_threads: Option<usize>,
    /// tesseract languages for OCR, `+`-separated (installed traineddata).
    #[arg(long, env = "VIDSEEK_OCR_LANGUAGES", default_value = "chi_sim+eng")]
    pub ocr_languages: String,
    /// Where rankers keep index snapshots, one directory per shard
    /// (default: DATA_DIR/ranker).
    #[arg(long, env = "VIDSEEK_RANKER_SNAPSHOT_DIR")]
    pub ranker_snapshot_dir: Option<PathBuf>,
    /// Seconds between snapshots of a ranker index that changed; one is
    /// also written on a graceful stop (0: no snapshots, every start
    /// replays the whole segment log).
    #[arg(long, env = "VIDSEEK_RANKER_SNAPSHOT_S", default_value_t = 300)]
    pub ranker_snapshot_s: u64,
    /// Rows of a shard's vector space below which a query scans every row
    /// exactly; from there on an HNSW graph proposes the candidates.
    #[arg(long, env = "VIDSEEK_RANKER_EXACT_BELOW", default_value_t = vidseek_ranker::DEFAULT_EXACT_BELOW)]
    pub ranker_exact_below: usize,
    /// Requests each service endpoint of a worker (search, encode, rank,
    /// ingest) works on at once; more are answered `overloaded` with a
    /// retry hint.
    #[arg(long, env = "VIDSEEK_MAX_IN_FLIGHT", default_value_t = vidseek_bus::service::DEFAULT_MAX_IN_FLIGHT)]
    pub max_in_flight: usize,
}

#[derive(Args, Clone, Debug)]
struct UpArgs {
    #[command(flatten)]
    gateway: GatewayArgs,
    #[command(flatten)]
    workers: WorkerSettings,
    /// Address of the embedded nats-server (port 0 picks a free port).
    #[arg(long, env = "VIDSEEK_NATS_ADDR", default_value = "127.0.0.1:4222")]
    nats_addr: String,
    /// Ingest the sample library in DATA_DIR/samples at start-up.
    #[arg(long, env = "VIDSEEK_SAMPLES", default_value_t = true, action = ArgAction::Set, value_parser = BoolishValueParser::new())]
    samples: bool,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum Role {
    Encoder,
    Ranker,
    Query,
    Ingest,
}

#[derive(Args, Clone, Debug)]
struct WorkerArgs {
    /// Which role to run.
    #[arg(long, value_enum)]
    role: Role,
    /// The shard a ranker serves (0..SHARDS).
    #[arg(long, default_value_t = 0)]
    shard: u32,
    /// Address to serve Prometheus metrics on (`GET /metrics`), e.g.
    /// 0.0.0.0:9100; unset: none. (`up` and the gateway serve theirs on the
    /// gateway's `/metrics`.)
    #[arg(long, env = "VIDSEEK_METRICS_ADDR")]
    metrics_addr: Option<String>,
    #[command(flatten)]
    settings: WorkerSettings,
}

fn parse_ocr_mode(text: &str) -> Result<vidseek_protocol::ingest::OcrMode, String> {
    vidseek_protocol::ingest::OcrMode::parse(text)
        .ok_or_else(|| format!("`{text}` is not off, captions or all"))
}

fn init_tracing(json: bool) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,ort=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        builder.json().init();
    } else {
        builder.init();
    }
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.common.log_json);
    let runtime = tokio::runtime::Runtime::new().expect("tokio runtime");
    let result = runtime.block_on(async move {
        let common = cli.common;
        match cli.command {
            Command::Up(args) => {
                stack::up(
                    &common,
                    &args.gateway,
                    &args.workers,
                    &args.nats_addr,
                    args.samples,
                )
                .await
            }
            Command::Gateway(args) => stack::gateway(&common, &args).await,
            Command::Worker(args) => {
                stack::worker(
                    &common,
                    args.role,
                    args.shard,
                    &args.settings,
                    args.metrics_addr.as_deref(),
                )
                .await
            }
            Command::Search(args) => client::search(&common, args).await,
            Command::Ingest(args) => client::ingest(&common, args).await,
            Command::Status(args) => status::run(&common, args).await,
            Command::Models(command) => models::run(command, &common.data_dir).await,
        }
    });
    // Blocking work still running (an ffmpeg pipe being read) must not keep
    // a stopped process alive.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("vidseek: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
