//! `vidseek status`: the fleet as NATS sees it. Every role announces itself
//! through the NATS service API, so one `$SRV.INFO` and one `$SRV.STATS`
//! scatter find each instance (role, version, model pack, shard, segments,
//! readiness, requests and errors) without a registry of our own; the
//! JetStream API adds the streams' replicas and lag and the ingest queue's
//! depth, and the query stage's health probe says whether search answers.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;
use async_nats::jetstream;
use async_nats::service::{Info, Stats};
use clap::Args;
use futures::StreamExt;
use serde::Serialize;
use vidseek_bus::media_store::{THUMBS_BUCKET, UPLOADS_BUCKET, bucket_stream};
use vidseek_protocol::query::HealthReport;
use vidseek_protocol::subjects;

use crate::Common;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Print JSON instead of tables.
    #[arg(long)]
    json: bool,
    /// Milliseconds to gather discovery answers: instances answer once each
    /// and nothing marks the last one.
    #[arg(long, default_value_t = 1000)]
    wait_ms: u64,
}

/// Everything `vidseek status` reports.
#[derive(Debug, Serialize)]
pub struct FleetStatus {
    /// The query stage's health probe, or why it did not answer.
    pub health: Result<HealthReport, String>,
    pub instances: Vec<Instance>,
    pub streams: Vec<StreamStatus>,
    /// The ingest workers' shared consumer; `None` before a worker started.
    pub ingest_queue: Option<QueueDepth>,
}

#[derive(Debug, Serialize)]
pub struct Instance {
    /// `encoder`, `ranker`, `query`, `ingest` (the service name without
    /// its `vidseek-` prefix).
    pub role: String,
    pub id: String,
    pub version: String,
    pub description: String,
    /// Encoders: the model pack they serve.
    pub model_pack: Option<String>,
    /// Rankers: the shard, its segments in memory, and whether the replica
    /// has replayed its log (answers queries).
    pub shard: Option<u32>,
    pub segments: Option<u64>,
    pub ready: Option<bool>,
    pub requests: usize,
    pub errors: usize,
    pub average_ms: f64,
}

#[derive(Debug, Serialize)]
pub struct StreamStatus {
    pub name: String,
    pub replicas: usize,
    pub messages: u64,
    pub bytes: u64,
    /// Server holding the leader copy (`None` on a single server).
    pub leader: Option<String>,
    pub followers: Vec<Follower>,
}

#[derive(Debug, Serialize)]
pub struct Follower {
    pub server: String,
    pub current: bool,
    pub offline: bool,
    /// Operations the follower is behind the leader.
    pub lag: u64,
}

#[derive(Debug, Serialize)]
pub struct QueueDepth {
    /// Jobs waiting for a worker.
    pub pending: u64,
    /// Jobs a worker holds and has not finished.
    pub ack_pending: usize,
    pub redelivered: usize,
}

pub async fn run(common: &Common, args: StatusArgs) -> anyhow::Result<()> {
    let nats = crate::client::connect(common).await?;
    let status = gather(&nats, Duration::from_millis(args.wait_ms)).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&status)?);
    } else {
        print!("{}", render(&status));
    }
    Ok(())
}

/// Collects the fleet's state; `window` bounds the wait for discovery.
pub async fn gather(nats: &async_nats::Client, window: Duration) -> anyhow::Result<FleetStatus> {
    let (infos, stats, health) = tokio::join!(
        scatter::<Info>(nats, "$SRV.INFO", window),
        scatter::<Stats>(nats, "$SRV.STATS", window),
        vidseek_bus::rpc::health(nats, Duration::from_secs(3)),
    );
    let stats: BTreeMap<String, Stats> = stats?.into_iter().map(|s| (s.id.clone(), s)).collect();
    let mut instances: Vec<Instance> = infos?
        .into_iter()
        .filter(|info| info.name.starts_with("vidseek-"))
        .map(|info| instance(info, &stats))
        .collect();
    instances.sort_by(|a, b| (&a.role, a.shard, &a.id).cmp(&(&b.role, b.shard, &b.id)));

    let js = jetstream::new(nats.clone());
    let mut streams = vec![];
    for name in [
        subjects::INGEST_JOBS_STREAM.to_string(),
        subjects::SEGMENTS_STREAM.to_string(),
        vidseek_bus::streams::videos_bucket_stream(),
        bucket_stream(THUMBS_BUCKET),
        bucket_stream(UPLOADS_BUCKET),
    ] {
        // A stream not created yet (nothing started) is not an error.
        let Ok(mut stream) = js.get_stream(&name).await else {
            continue;
        };
        let info = stream
            .info()
            .await
            .with_context(|| format!("stream {name}"))?;
        let cluster = info.cluster.clone().unwrap_or_default();
        streams.push(StreamStatus {
            name,
            replicas: info.config.num_replicas,
            messages: info.state.messages,
            bytes: info.state.bytes,
            leader: cluster.leader,
            followers: cluster
                .replicas
                .into_iter()
                .map(|peer| Follower {
                    server: peer.name,
                    current: peer.current,
                    offline: peer.offline,
                    lag: peer.lag.unwrap_or(0),
                })
                .collect(),
        });
    }
    let ingest_queue = match js.get_stream(subjects::INGEST_JOBS_STREAM).await {
        Ok(stream) => match stream
            .get_consumer::<jetstream::consumer::pull::Config>(subjects::INGEST_JOBS_CONSUMER)
            .await
        {
            Ok(mut consumer) => consumer.info().await.ok().map(|info| QueueDepth {
                pending: info.num_pending,
                ack_pending: info.num_ack_pending,
                redelivered: info.num_redelivered,
            }),
            Err(_) => None,
        },
        Err(_) => None,
    };
    Ok(FleetStatus {
        health: health.map_err(|err| err.to_string()),
        instances,
        streams,
        ingest_queue,
    })
}

/// Publishes to a discovery subject and gathers the answers that arrive
/// within `window`.
async fn scatter<T: serde::de::DeserializeOwned>(
    nats: &async_nats::Client,
    subject: &str,
    window: Duration,
) -> anyhow::Result<Vec<T>> {
    let inbox = nats.new_inbox();
    let mut replies = nats.subscribe(inbox.clone()).await?;
    nats.publish_with_reply(subject.to_string(), inbox, "".into())
        .await?;
    nats.flush().await?;
    let deadline = tokio::time::Instant::now() + window;
    let mut found = vec![];
    while let Ok(Some(message)) = tokio::time::timeout_at(deadline, replies.next()).await {
        match serde_json::from_slice(&message.payload) {
            Ok(value) => found.push(value),
            Err(err) => tracing::warn!(subject, error = %err, "unreadable discovery answer"),
        }
    }
    Ok(found)
}

fn instance(info: Info, stats: &BTreeMap<String, Stats>) -> Instance {
    let stats = stats.get(&info.id);
    let endpoints = stats.map(|s| s.endpoints.as_slice()).unwrap_or_default();
    let requests = endpoints.iter().map(|e| e.requests).sum();
    let errors = endpoints.iter().map(|e| e.errors).sum();
    let busy: Duration = endpoints.iter().map(|e| e.processing_time).sum();
    // What a ranker's stats handler reports about its shard.
    let data = endpoints.iter().find_map(|e| e.data.clone());
    let field = |key: &str| data.as_ref().and_then(|d| d.get(key).cloned());
    Instance {
        role: info
            .name
            .strip_prefix("vidseek-")
            .unwrap_or(&info.name)
            .to_string(),
        id: info.id,
        version: info.version,
        description: info.description,
        model_pack: info.metadata.get("model_pack").cloned(),
        shard: field("shard").and_then(|v| v.as_u64()).map(|s| s as u32),
        segments: field("segments").and_then(|v| v.as_u64()),
        ready: field("ready").and_then(|v| v.as_bool()),
        requests,
        errors,
        average_ms: if requests == 0 {
            0.0
        } else {
            busy.as_secs_f64() * 1000.0 / requests as f64
        },
    }
}

/// The human-readable form: one line of health, then instances, streams
/// and the ingest queue as aligned tables.
pub fn render(status: &FleetStatus) -> String {
    let mut out = String::new();
    match &status.health {
        Ok(report) => out.push_str(&format!(
            "search: {} (encoder {}, {}/{} shards ready, {} segments indexed{})\n\n",
            if report.ready() { "ready" } else { "NOT READY" },
            if report.encoder { "up" } else { "missing" },
            report.shards_ready,
            report.shards_total,
            report.segments_indexed,
            match report.segments_settling {
                0 => String::new(),
                n => format!(", {n} still entering the approximate index"),
            }
        )),
        Err(err) => out.push_str(&format!("search: NOT READY ({err})\n\n")),
    }
    let dash = || "-".to_string();
    let mut rows = vec![row([
        "ROLE", "INSTANCE", "VERSION", "SHARD", "SEGMENTS", "READY", "PACK", "REQUESTS", "ERRORS",
        "AVG MS",
    ])];
    for i in &status.instances {
        rows.push(vec![
            i.role.clone(),
            i.id.clone(),
            i.version.clone(),
            i.shard.map_or_else(dash, |s| s.to_string()),
            i.segments.map_or_else(dash, |s| s.to_string()),
            i.ready
                .map_or_else(dash, |r| if r { "yes" } else { "no" }.to_string()),
            i.model_pack.clone().unwrap_or_else(dash),
            i.requests.to_string(),
            i.errors.to_string(),
            format!("{:.1}", i.average_ms),
        ]);
    }
    out.push_str(&table(&rows));
    out.push('\n');
    let mut rows = vec![row([
        "STREAM",
        "REPLICAS",
        "MESSAGES",
        "BYTES",
        "LEADER",
        "FOLLOWERS (lag)",
    ])];
    for s in &status.streams {
        let followers: Vec<String> = s
            .followers
            .iter()
            .map(|f| {
                let state = if f.offline {
                    "offline"
                } else if f.current {
                    "current"
                } else {
                    "behind"
                };
                format!("{} {state} ({})", f.server, f.lag)
            })
            .collect();
        rows.push(vec![
            s.name.clone(),
            s.replicas.to_string(),
            s.messages.to_string(),
            s.bytes.to_string(),
            s.leader.clone().unwrap_or_else(dash),
            if followers.is_empty() {
                dash()
            } else {
                followers.join(", ")
            },
        ]);
    }
    out.push_str(&table(&rows));
    out.push('\n');
    match &status.ingest_queue {
        Some(q) => out.push_str(&format!(
            "ingest queue: {} waiting, {} in progress, {} redelivered\n",
            q.pending, q.ack_pending, q.redelivered
        )),
        None => out.push_str("ingest queue: no ingest worker has started\n"),
    }
    out
}

fn row<const N: usize>(cells: [&str; N]) -> Vec<String> {
    cells.iter().map(|c| c.to_string()).collect()
}

/// Left-aligned columns two spaces apart.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align_columns() {
        let rows = vec![row(["A", "BB"]), row(["ccc", "d"])];
        assert_eq!(table(&rows), "A    BB\nccc  d\n");
    }
}
