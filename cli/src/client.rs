//! The command-line client: search and ingest over NATS.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use vidseek_bus::catalog::Catalog;
use vidseek_bus::query_image;
use vidseek_bus::rpc;
use vidseek_protocol::ingest::{IngestAccepted, IngestRequest, OcrMode, VideoStatus};
use vidseek_protocol::query::{
    Grouping, MAX_IMAGE_BYTES, QueryBody, SearchBody, SearchFilter, SearchResponse, SearchScope,
};
use vidseek_protocol::rank::SegmentKind;
use vidseek_protocol::subjects;

use crate::Common;

/// Extensions treated as videos when a directory is ingested.
const VIDEO_EXTENSIONS: &[&str] = &[
    "mp4", "m4v", "mkv", "webm", "avi", "mov", "mpg", "mpeg", "ts", "ogv",
];

#[derive(Args, Debug)]
pub struct SearchArgs {
    /// What to look for, in words.
    #[arg(required_unless_present_any = ["image", "like"])]
    text: Option<String>,
    /// Search with a picture (up to 20 MiB; it is reduced to 1024 px before
    /// it is sent). With a text too, both count (see --image-weight).
    #[arg(long)]
    image: Option<PathBuf>,
    /// With both a text and --image: the picture's weight, 0..1.
    #[arg(long, requires_all = ["text", "image"])]
    image_weight: Option<f32>,
    /// More like this segment (an id from an earlier answer, VIDEO-INDEX).
    #[arg(long, conflicts_with_all = ["text", "image"])]
    like: Option<String>,
    /// Only in this video (repeatable).
    #[arg(long = "video", value_name = "VIDEO_ID")]
    videos: Vec<String>,
    /// Only segments that end after this second.
    #[arg(long)]
    from: Option<f64>,
    /// Only segments that start before this second.
    #[arg(long)]
    to: Option<f64>,
    /// Only this kind of match: shot, subtitle or ocr (repeatable).
    #[arg(long = "kind", value_parser = parse_kind)]
    kinds: Vec<SegmentKind>,
    /// One result per video, saying how many more of it matched.
    #[arg(long)]
    group_by_video: bool,
    /// Drop results below this confidence (0..1).
    #[arg(long)]
    min_score: Option<f32>,
    /// Number of results.
    #[arg(short, default_value_t = 10)]
    k: usize,
    /// Print the JSON answer.
    #[arg(long)]
    json: bool,
}

fn parse_kind(value: &str) -> Result<SegmentKind, String> {
    serde_json::from_value(serde_json::Value::String(value.to_string()))
        .map_err(|_| format!("{value:?} is not shot, subtitle or ocr"))
}

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// Video files or directories (searched recursively). Paths must be
    /// inside the workers' media roots.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Wait until every video is ready or failed, showing progress.
    #[arg(long)]
    wait: bool,
    /// Text to read from the picture: off, captions (burned-in subtitles,
    /// and subtitle tracks made of pictures: PGS, DVB, VobSub) or all (also
    /// on-screen text of each shot). Default: the ingest workers'
    /// VIDSEEK_OCR.
    #[arg(long, value_parser = crate::parse_ocr_mode)]
    ocr: Option<OcrMode>,
}

/// Connects as the operator: the configured credentials, else those `vidseek
/// up` generated in the data directory.
pub(crate) async fn connect(common: &Common) -> anyhow::Result<async_nats::Client> {
    let url = common.nats_url();
    let access = common.nats_access(vidseek_bus::access::Role::Operator);
    vidseek_bus::connect(&url, "vidseek-cli", &access, Duration::ZERO)
        .await
        .with_context(|| {
            format!(
                "cannot connect to NATS at {url} (is `vidseek up` running? set VIDSEEK_NATS_URL)"
            )
        })
}

pub async fn search(common: &Common, args: SearchArgs) -> anyhow::Result<()> {
    let nats = connect(common).await?;
    let timeout = Duration::from_secs(30);
    let image_base64 = match &args.image {
        Some(image) => Some(base64_encode(&read_query_image(image).await?)),
        None => None,
    };
    let body = SearchBody {
        query: QueryBody {
            text: args.text.clone(),
            image_base64,
            image_weight: args.image_weight,
            like: args.like.clone(),
        },
        k: Some(args.k),
        min_score: args.min_score,
        scope: SearchScope {
            filter: SearchFilter {
                videos: args.videos.clone(),
                from: args.from,
                to: args.to,
                kinds: args.kinds.clone(),
            },
            group: args.group_by_video.then_some(Grouping::Video),
        },
    };
    let response: SearchResponse =
        rpc::request(&nats, subjects::SEARCH.to_string(), &body, timeout, None)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {}", e.error.code.as_str(), e.error.message))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&response)?);
        return Ok(());
    }
    for warning in &response.warnings {
        eprintln!("warning: {}", warning.message);
    }
    if response.results.is_empty() {
        println!("no matching segments ({} ms)", response.took_ms);
    }
    for (rank, hit) in response.results.iter().enumerate() {
        let more = match hit.more_in_video {
            Some(more) if more > 0 => format!("  (+{more} more in this video)"),
            _ => String::new(),
        };
        println!(
            "{:>2}. {:.3}  {}  {:>7.2}s–{:<7.2}s  {}  {}{more}",
            rank + 1,
            hit.score,
            hit.video_name,
            hit.start,
            hit.end,
            hit.segment_id,
            hit.text.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

/// Reads a query image and reduces it, as the gateway does, to what the
/// encoder needs: a phone photo would not fit in a NATS message.
async fn read_query_image(path: &Path) -> anyhow::Result<Vec<u8>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if bytes.len() > MAX_IMAGE_BYTES {
        bail!(
            "{} is {} bytes; the limit is {MAX_IMAGE_BYTES}",
            path.display(),
            bytes.len()
        );
    }
    let reduced = tokio::task::spawn_blocking(move || query_image::reduce(&bytes))
        .await
        .context("image decoding failed")?
        .with_context(|| format!("{} cannot be searched with", path.display()))?;
    Ok(reduced.bytes)
}

fn base64_encode(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Video files under `path` (or `path` itself), sorted.
fn video_files(path: &Path) -> anyhow::Result<Vec<PathBuf>> {
    if path.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut found = vec![];
    let mut pending = vec![path.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?
        {
            let path = entry?.path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| VIDEO_EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

async fn submit(
    nats: &async_nats::Client,
    path: &Path,
    ocr: Option<OcrMode>,
) -> anyhow::Result<IngestAccepted> {
    let absolute = std::path::absolute(path)?;
    let request = IngestRequest {
        path: absolute.to_string_lossy().into_owned(),
        name: None,
        subtitles: None,
        ocr,
    };
    rpc::request(
        nats,
        subjects::INGEST.to_string(),
        &request,
        Duration::from_secs(30),
        None,
    )
    .await
    .map_err(|e| {
        anyhow::anyhow!(
            "{}: {}: {}",
            path.display(),
            e.error.code.as_str(),
            e.error.message
        )
    })
}

/// Submits every video under `dir`; returns how many were accepted.
pub async fn submit_directory(nats: &async_nats::Client, dir: &Path) -> anyhow::Result<usize> {
    if !dir.is_dir() {
        return Ok(0);
    }
    let mut accepted = 0;
    for file in video_files(dir)? {
        match submit(nats, &file, None).await {
            Ok(_) => accepted += 1,
            Err(err) => eprintln!("vidseek: {err:#}"),
        }
    }
    Ok(accepted)
}

pub async fn ingest(common: &Common, args: IngestArgs) -> anyhow::Result<()> {
    let nats = connect(common).await?;
    let mut accepted = vec![];
    let mut failures = 0;
    for path in &args.paths {
        for file in video_files(path)? {
            match submit(&nats, &file, args.ocr).await {
                Ok(ok) => {
                    println!("{}  {}  queued", ok.video_id, file.display());
                    accepted.push((ok.video_id, file));
                }
                Err(err) => {
                    eprintln!("error: {err:#}");
                    failures += 1;
                }
            }
        }
    }
    if args.wait && !accepted.is_empty() {
        failures += wait_for(&nats, &accepted).await?;
    }
    if failures > 0 {
        bail!("{failures} video(s) could not be ingested");
    }
    Ok(())
}

/// Shows a progress bar per video until each is ready or failed; returns
/// the number that failed.
async fn wait_for(
    nats: &async_nats::Client,
    videos: &[(String, PathBuf)],
) -> anyhow::Result<usize> {
    let catalog = Catalog::open(&async_nats::jetstream::new(nats.clone())).await?;
    let bars = MultiProgress::new();
    let style =
        ProgressStyle::with_template("{bar:30} {percent:>3}% {msg}").expect("valid template");
    let tracked: Vec<(String, ProgressBar)> = videos
        .iter()
        .map(|(id, path)| {
            let bar = bars.add(ProgressBar::new(1000).with_style(style.clone()));
            bar.set_message(format!("{}", path.display()));
            (id.clone(), bar)
        })
        .collect();
    let mut failed = 0;
    let mut open: Vec<usize> = (0..tracked.len()).collect();
    while !open.is_empty() {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let mut still_open = vec![];
        for i in open {
            let (id, bar) = &tracked[i];
            match catalog.get(id).await? {
                Some(record) if record.status == VideoStatus::Ready => {
                    bar.set_position(1000);
                    bar.finish_with_message(format!(
                        "{} ready: {} segments",
                        record.name, record.segment_count
                    ));
                }
                Some(record) if record.status == VideoStatus::Failed => {
                    failed += 1;
                    bar.abandon_with_message(format!(
                        "{} failed: {}",
                        record.name,
                        record.error.unwrap_or_default()
                    ));
                }
                Some(record) => {
                    bar.set_position((record.progress.clamp(0.0, 1.0) * 1000.0) as u64);
                    still_open.push(i);
                }
                None => {
                    failed += 1;
                    bar.abandon_with_message("deleted while ingesting");
                }
            }
        }
        open = still_open;
    }
    Ok(failed)
}
