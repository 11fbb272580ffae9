//! Starting roles: all of them in one process (`up`) or one per process.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use vidseek_encoder::{Encoder, EncoderConfig, runtime};
use vidseek_ingest::IngestConfig;
use vidseek_protocol::query::HealthReport;
use vidseek_query::QueryConfig;
use vidseek_ranker::RankerConfig;

use vidseek_bus::NatsAccess;
use vidseek_bus::access::Role as Identity;

use crate::embedded_nats::{Credentials, NatsServer};
use crate::{Common, GatewayArgs, Role, WorkerSettings};

/// How long a stopping process waits for each part's work in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(15);

/// Cancels the token on Ctrl-C or SIGTERM.
fn shutdown_on_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("SIGTERM handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        tracing::info!("shutting down");
        cancel.cancel();
    });
    token
}

/// `embedded`: the encoder shares its process with the rankers, ingest's
/// ffmpeg and the gateway, so by default each ONNX session gets half the
/// cores (text and image sessions busy at once then fill them, not twice
/// over); an encoder in its own process gets them all.
fn encoder_config(
    common: &Common,
    settings: &WorkerSettings,
    embedded: bool,
) -> anyhow::Result<EncoderConfig> {
    let pack_dir = settings
        .model_pack
        .clone()
        .unwrap_or_else(|| common.data_dir.join("models/default"));
    let ort_library = settings
        .ort_library
        .clone()
        .or_else(|| runtime::find_library(&common.data_dir))
        .context(
            "no ONNX Runtime library: run deploy/setup.sh (or `make up`), or set ORT_DYLIB_PATH",
        )?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let default_threads = if embedded { (cores / 2).max(1) } else { cores };
    Ok(EncoderConfig {
        pack_dir,
        ort_library,
        threads: settings.encoder_threads.unwrap_or(default_threads).max(1),
        max_batch: 32,
        batch_window: Duration::from_millis(settings.encoder_batch_window_ms),
        queue_depth: 256,
    })
}

fn ingest_config(common: &Common, settings: &WorkerSettings) -> IngestConfig {
    IngestConfig {
        data_dir: absolute(&common.data_dir),
        media_store: common.media_store,
        media_roots: common.media_roots(),
        shards: settings.shards,
        ack_wait: Duration::from_secs(settings.ingest_ack_wait_s.max(1)),
        stall_timeout: Duration::from_secs(settings.ingest_stall_s.max(1)),
        max_deliver: 5,
        encode_timeout: Duration::from_secs(60),
        ocr: settings.ocr,
        ocr_threads: settings.ocr_threads.unwrap_or_else(|| {
            std::thread::available_parallelism().map_or(1, |n| (n.get() / 2).max(1))
        }),
        ocr_languages: settings.ocr_languages.clone(),
    }
}

fn query_config(settings: &WorkerSettings) -> QueryConfig {
    QueryConfig {
        shards: settings.shards,
        encode_timeout: Duration::from_secs(10),
        shard_timeout: Duration::from_secs(5),
    }
}

fn ranker_config(common: &Common, settings: &WorkerSettings, shard: u32) -> RankerConfig {
    let snapshots = settings.ranker_snapshot_s > 0;
    let root = settings
        .ranker_snapshot_dir
        .clone()
        .unwrap_or_else(|| common.data_dir.join("ranker"));
    RankerConfig {
        shard,
        snapshot_dir: snapshots.then(|| absolute(&root.join(shard.to_string()))),
        snapshot_interval: Duration::from_secs(settings.ranker_snapshot_s),
        exact_below: settings.ranker_exact_below,
    }
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// What every role of a process shares.
struct Roles<'a> {
    common: &'a Common,
    settings: &'a WorkerSettings,
    shutdown: &'a CancellationToken,
}

impl Roles<'_> {
    /// Starts `role` on `tasks`, connected as `nats`; the encoder role needs
    /// its loaded models.
    fn spawn(
        &self,
        tasks: &mut JoinSet<anyhow::Result<()>>,
        nats: &async_nats::Client,
        role: Role,
        shard: u32,
        encoder: Option<Encoder>,
    ) {
        let (nats, shutdown) = (nats.clone(), self.shutdown.clone());
        // Log lines name the role that wrote them, also under `up` where all
        // roles share one process.
        let name = format!("{role:?}").to_lowercase();
        let span = match role {
            Role::Ranker => tracing::info_span!("role", role = name, shard),
            _ => tracing::info_span!("role", role = name),
        };
        match role {
            Role::Encoder => {
                let encoder = encoder.expect("encoder loaded before spawning");
                tasks.spawn(
                    async move { Ok(vidseek_encoder::serve(nats, encoder, shutdown).await?) }
                        .instrument(span),
                );
            }
            Role::Ranker => {
                let config = ranker_config(self.common, self.settings, shard);
                tasks.spawn(
                    async move { Ok(vidseek_ranker::run(nats, config, shutdown).await?) }
                        .instrument(span),
                );
            }
            Role::Query => {
                let config = query_config(self.settings);
                tasks.spawn(
                    async move { Ok(vidseek_query::run(nats, config, shutdown).await?) }
                        .instrument(span),
                );
            }
            Role::Ingest => {
                let config = ingest_config(self.common, self.settings);
                let (n, c, s) = (nats.clone(), config.clone(), shutdown.clone());
                tasks.spawn(
                    async move { Ok(vidseek_ingest::run_service(n, c, s).await?) }
                        .instrument(span.clone()),
                );
                tasks.spawn(
                    async move { Ok(vidseek_ingest::run_worker(nats, config, shutdown).await?) }
                        .instrument(span),
                );
            }
        }
    }
}

fn load_encoder(
    common: &Common,
    settings: &WorkerSettings,
    embedded: bool,
) -> anyhow::Result<Encoder> {
    let config = encoder_config(common, settings, embedded)?;
    let encoder = Encoder::load(&config).with_context(|| {
        format!(
            "cannot load model pack {} (run deploy/setup.sh to build the default pack)",
            config.pack_dir.display()
        )
    })?;
    tracing::info!(pack = encoder.manifest().name, "model pack loaded");
    Ok(encoder)
}

/// Waits for every task; the first failure stops the rest.
async fn supervise(
    mut tasks: JoinSet<anyhow::Result<()>>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut first_error = None;
    while let Some(result) = tasks.join_next().await {
        let result = result.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(err) = result {
            if first_error.is_none() {
                tracing::error!(error = %format!("{err:#}"), "a role stopped; shutting down");
                first_error = Some(err);
            }
            shutdown.cancel();
        } else if !shutdown.is_cancelled() {
            shutdown.cancel();
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// Part of the embedded stack: its roles and the token that stops them.
struct Tier {
    stop: CancellationToken,
    tasks: JoinSet<anyhow::Result<()>>,
}

impl Tier {
    fn new() -> Tier {
        Tier {
            stop: CancellationToken::new(),
            tasks: JoinSet::new(),
        }
    }
}

/// Returns when the first role of any tier ends, with its result.
async fn first_exit(tiers: &mut [Tier]) -> anyhow::Result<()> {
    let exits: Vec<_> = tiers
        .iter_mut()
        .filter(|tier| !tier.tasks.is_empty())
        .map(|tier| Box::pin(tier.tasks.join_next()))
        .collect();
    if exits.is_empty() {
        return futures::future::pending().await;
    }
    match futures::future::select_all(exits).await.0 {
        Some(result) => result.map_err(anyhow::Error::from).and_then(|r| r),
        None => Ok(()),
    }
}

/// Runs `tiers` until `shutdown` fires or a role stops, then stops them in
/// order, each once the one before has finished and the requests the
/// process had in flight are answered: the gateway first (it finishes its
/// HTTP requests and WebSocket searches while the stages it calls still
/// run), then the query stage and ingest (a job in progress is handed
/// back), then the encoder and rankers they call. The first role's failure
/// is the result.
async fn supervise_in_order(
    mut tiers: Vec<Tier>,
    shutdown: CancellationToken,
) -> anyhow::Result<()> {
    let mut errors = Vec::new();
    tokio::select! {
        _ = shutdown.cancelled() => {}
        result = first_exit(&mut tiers) => errors.extend(result.err()),
    }
    if let Some(err) = errors.first() {
        tracing::error!(error = %format!("{err:#}"), "a role stopped; shutting down");
    }
    for mut tier in tiers {
        tier.stop.cancel();
        let stopped = tokio::time::timeout(SHUTDOWN_GRACE, async {
            while let Some(result) = tier.tasks.join_next().await {
                errors.extend(result.map_err(anyhow::Error::from).and_then(|r| r).err());
            }
        })
        .await;
        if stopped.is_err() {
            tracing::warn!("roles still running after the grace period; stopping them");
            tier.tasks.shutdown().await;
        }
        if !vidseek_bus::service::wait_for_in_flight(SHUTDOWN_GRACE).await {
            tracing::warn!("requests still in flight after the grace period");
        }
    }
    errors.into_iter().next().map_or(Ok(()), Err)
}

/// Closes a connection gracefully: what was published (replies included)
/// reaches the server, then every subscription is drained.
async fn drain(nats: &async_nats::Client) {
    let drained = tokio::time::timeout(Duration::from_secs(5), async {
        let _ = nats.flush().await;
        nats.drain().await
    })
    .await;
    if !matches!(drained, Ok(Ok(()))) {
        tracing::warn!("could not drain the NATS connection");
    }
}

impl From<Role> for Identity {
    fn from(role: Role) -> Identity {
        match role {
            Role::Encoder => Identity::Encoder,
            Role::Ranker => Identity::Ranker,
            Role::Query => Identity::Query,
            Role::Ingest => Identity::Ingest,
        }
    }
}

fn client_name(role: Role) -> String {
    format!("vidseek-{role:?}").to_lowercase()
}

async fn connect(url: &str, name: &str, access: &NatsAccess) -> anyhow::Result<async_nats::Client> {
    // In the embedded stack the server may still be starting; in a fleet a
    // node may be restarting.
    vidseek_bus::connect(url, name, access, Duration::from_secs(30))
        .await
        .with_context(|| format!("cannot connect to NATS at {url}"))
}

/// Creates the streams, or brings them to `VIDSEEK_REPLICAS`, and holds
/// this process to the shard count the segment log records (`shards`: the
/// count it routes with, `None` when it does not route).
async fn configure_streams(
    nats: &async_nats::Client,
    common: &Common,
    shards: Option<u32>,
) -> anyhow::Result<()> {
    let js = async_nats::jetstream::new(nats.clone());
    let layout = vidseek_bus::streams::Layout {
        replicas: common.replicas,
        shards,
    };
    vidseek_bus::streams::configure(&js, layout).await?;
    Ok(())
}

async fn bind(addr: &str) -> anyhow::Result<tokio::net::TcpListener> {
    tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr} (set VIDSEEK_HTTP_ADDR)"))
}

fn gateway_config(common: &Common, args: &GatewayArgs) -> vidseek_gateway::GatewayConfig {
    vidseek_gateway::GatewayConfig {
        data_dir: absolute(&common.data_dir),
        media_store: common.media_store,
        api_token: args.api_token.clone().filter(|t| !t.is_empty()),
        api_token_reads: args.api_token_reads,
        media_roots: common.media_roots().iter().map(|p| absolute(p)).collect(),
        cors_origins: args
            .cors_origins
            .iter()
            .map(|o| o.trim().to_string())
            .filter(|o| !o.is_empty())
            .collect(),
        max_upload_bytes: args.max_upload_mb * 1024 * 1024,
        search_timeout: Duration::from_secs(args.search_timeout_s.max(1)),
        max_searches: args.max_searches,
        max_websockets: args.max_websockets,
        max_searches_per_socket: args.max_searches_per_socket,
        max_uploads: args.max_uploads,
    }
}

pub async fn gateway(common: &Common, args: &GatewayArgs) -> anyhow::Result<()> {
    let shutdown = shutdown_on_signal();
    let access = common.nats_access(Identity::Gateway);
    let nats = connect(&common.nats_url(), "vidseek-gateway", &access).await?;
    configure_streams(&nats, common, None).await?;
    let listener = bind(&args.http_addr).await?;
    eprintln!("vidseek gateway: http://{}", listener.local_addr()?);
    let stop = shutdown.clone();
    vidseek_gateway::serve(
        gateway_config(common, args),
        nats.clone(),
        listener,
        async move { stop.cancelled().await },
    )
    .await?;
    drain(&nats).await;
    Ok(())
}

pub async fn worker(
    common: &Common,
    role: Role,
    shard: u32,
    settings: &WorkerSettings,
    metrics_addr: Option<&str>,
) -> anyhow::Result<()> {
    if role == Role::Ranker && shard >= settings.shards {
        bail!(
            "--shard {shard} is out of range: there are {} shards (VIDSEEK_SHARDS)",
            settings.shards
        );
    }
    let shutdown = shutdown_on_signal();
    if let Some(addr) = metrics_addr {
        crate::metrics::serve(addr, shutdown.clone()).await?;
    }
    let encoder = match role {
        Role::Encoder => Some(load_encoder(common, settings, false)?),
        _ => None,
    };
    let access = common.nats_access(role.into());
    let nats = connect(&common.nats_url(), &client_name(role), &access).await?;
    if role != Role::Encoder {
        configure_streams(&nats, common, Some(settings.shards)).await?;
    }
    let mut tasks = JoinSet::new();
    let roles = Roles {
        common,
        settings,
        shutdown: &shutdown,
    };
    vidseek_bus::service::set_max_in_flight(settings.max_in_flight);
    roles.spawn(&mut tasks, &nats, role, shard, encoder);
    eprintln!("vidseek worker {role:?} running");
    let result = supervise(tasks, shutdown).await;
    // The role's endpoints have stopped taking requests; answer those it
    // took, then leave.
    if !vidseek_bus::service::wait_for_in_flight(SHUTDOWN_GRACE).await {
        tracing::warn!("requests still in flight after the grace period");
    }
    drain(&nats).await;
    result
}

/// Asks the query stage for health until the stack can answer queries.
async fn wait_until_ready(
    nats: &async_nats::Client,
    shutdown: &CancellationToken,
) -> anyhow::Result<HealthReport> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
    loop {
        if shutdown.is_cancelled() {
            bail!("stopped before the stack was ready");
        }
        let report = vidseek_bus::rpc::health(nats, Duration::from_secs(3)).await;
        match report {
            Ok(report) if report.ready() => return Ok(report),
            _ if tokio::time::Instant::now() > deadline => {
                bail!("the stack did not become ready in 5 minutes")
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

pub async fn up(
    common: &Common,
    gateway_args: &GatewayArgs,
    settings: &WorkerSettings,
    nats_addr: &str,
    samples: bool,
) -> anyhow::Result<()> {
    let shutdown = shutdown_on_signal();
    let data_dir = absolute(&common.data_dir);
    std::fs::create_dir_all(data_dir.join("library/uploads"))
        .with_context(|| format!("cannot create the data directory {}", data_dir.display()))?;
    let mut encoder = Some(load_encoder(common, settings, true)?);
    // The embedded server has a user per role; an external one is used with
    // the configured credentials.
    let credentials = match &common.nats_url {
        Some(_) => None,
        None => Some(Credentials::prepare(&data_dir)?),
    };
    let nats_server = match &credentials {
        Some(credentials) => {
            Some(NatsServer::start(nats_addr, &data_dir.join("nats"), &credentials.config).await?)
        }
        None => None,
    };
    let access = |identity: Identity| match &credentials {
        Some(credentials) => credentials.access(identity),
        None => common.nats_access(identity),
    };
    let url = nats_server
        .as_ref()
        .map_or_else(|| common.nats_url(), |s| s.url.clone());
    let stop_nats = CancellationToken::new();
    let nats_supervisor = nats_server
        .map(|server| tokio::spawn(server.supervise(stop_nats.clone(), shutdown.clone())));
    let nats = connect(&url, "vidseek-up", &access(Identity::Operator)).await?;
    configure_streams(&nats, common, Some(settings.shards)).await?;

    vidseek_bus::service::set_max_in_flight(settings.max_in_flight);
    // Stopped in this order (see `supervise_in_order`).
    let (mut gateway_tier, mut front, mut back) = (Tier::new(), Tier::new(), Tier::new());
    let front_roles = Roles {
        common,
        settings,
        shutdown: &front.stop,
    };
    let back_roles = Roles {
        common,
        settings,
        shutdown: &back.stop,
    };
    // Each role connects as itself, so the server holds it to its own
    // permissions; the ranker shards share one connection.
    let mut clients = Vec::new();
    for role in [Role::Encoder, Role::Ranker, Role::Query, Role::Ingest] {
        let client = connect(&url, &client_name(role), &access(role.into())).await?;
        clients.push((role, client));
    }
    for (role, client) in &clients {
        match role {
            Role::Encoder => back_roles.spawn(&mut back.tasks, client, *role, 0, encoder.take()),
            Role::Ranker => {
                for shard in 0..settings.shards {
                    back_roles.spawn(&mut back.tasks, client, *role, shard, None);
                }
            }
            Role::Query | Role::Ingest => {
                front_roles.spawn(&mut front.tasks, client, *role, 0, None)
            }
        }
    }
    let listener = bind(&gateway_args.http_addr).await?;
    let http = listener.local_addr()?;
    let gateway_nats = connect(&url, "vidseek-gateway", &access(Identity::Gateway)).await?;
    let stop = gateway_tier.stop.clone();
    let config = gateway_config(common, gateway_args);
    let client = gateway_nats.clone();
    gateway_tier.tasks.spawn(async move {
        Ok(vidseek_gateway::serve(
            config,
            client,
            listener,
            async move { stop.cancelled().await },
        )
        .await?)
    });
    let mut tiers = vec![gateway_tier, front, back];

    let report = tokio::select! {
        report = wait_until_ready(&nats, &shutdown) => report?,
        result = first_exit(&mut tiers) => {
            result?;
            bail!("a role stopped during start-up")
        }
    };
    eprintln!(
        "vidseek ready: http://{http} ({} shards, {} segments indexed, NATS {url})",
        report.shards_total, report.segments_indexed
    );
    if credentials.is_some() {
        eprintln!(
            "vidseek: NATS admits known users only; the operator's password is in {}",
            crate::embedded_nats::password_file(&data_dir, Identity::Operator).display()
        );
    }
    if samples {
        let samples_dir = data_dir.join("samples");
        match crate::client::submit_directory(&nats, &samples_dir).await {
            Ok(0) => eprintln!(
                "vidseek: no sample videos in {} (run deploy/setup.sh)",
                samples_dir.display()
            ),
            Ok(n) => eprintln!(
                "vidseek: ingesting {n} sample videos from {}",
                samples_dir.display()
            ),
            Err(err) => eprintln!("vidseek: cannot ingest the sample library: {err:#}"),
        }
    }
    let result = supervise_in_order(tiers, shutdown).await;
    for client in clients.iter().map(|(_, c)| c).chain([&gateway_nats, &nats]) {
        drain(client).await;
    }
    // The server stops after every role, so none of them sees NATS vanish
    // while it drains.
    stop_nats.cancel();
    let nats_result = match nats_supervisor {
        Some(task) => task.await.context("the nats-server supervisor panicked")?,
        None => Ok(()),
    };
    // The server's failure is the cause when both failed.
    nats_result.and(result)
}
