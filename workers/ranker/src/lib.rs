//! The ranker role: one shard's segments in memory, rebuilt by replaying the
//! shard's segment log and kept current by following it. It answers
//! `vidseek.v1.rank.{shard}` with the shard's own top-k; replicas of a shard
//! share the subject's queue group, so each query reaches one of them.
//! A replica answers `unavailable` until it has replayed the log, so a
//! restarting shard never serves a partial index as if it were complete.
//!
//! The index ([`store::SegmentIndex`]) sits behind a `RwLock`. A scan runs
//! on tokio's blocking pool under the read lock; the log follower takes the
//! write lock only to apply one entry (one part of a video: at most a few
//! hundred rows copied), so a reader waits at most one entry's apply, and an
//! update waits at most for the scans already running. Rows enter the
//! approximate graphs ([`ann`]) in batches under the read lock, beside the
//! scans, between log entries.
//!
//! With a snapshot directory, the index is written there ([`snapshot`])
//! every `snapshot_interval` while it changes and on a graceful stop, and a
//! starting ranker loads it and follows the log only after the sequence it
//! was taken at. A snapshot that is corrupt, of another format or stale is
//! refused with a log line and the whole log is replayed instead.

pub mod ann;
pub mod index;
mod lexical;
pub mod snapshot;
pub mod store;
#[cfg(test)]
mod testing;

use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_nats::service::ServiceExt;
use tokio_util::sync::CancellationToken;
use vidseek_bus::segment_log::{self, LogFollower, LogPosition};
use vidseek_protocol::error::{ErrorBody, ErrorCode};
use vidseek_protocol::rank::{
    RankRequest, RankResponse, ScoreVideoRequest, ScoreVideoResponse, SegmentLookup, SegmentRecord,
};
use vidseek_protocol::subjects;

pub use index::{answer, top_k, top_k_where};
pub use store::{DEFAULT_EXACT_BELOW, SegmentIndex};

/// Rows inserted into a graph per batch: large enough to use every core,
/// small enough that a log entry waits little behind one.
const SETTLE_BATCH: usize = 1024;

/// How a ranker runs.
#[derive(Debug, Clone)]
pub struct RankerConfig {
    pub shard: u32,
    /// This shard's snapshot directory; `None`: no snapshots, every start
    /// replays the whole log.
    pub snapshot_dir: Option<PathBuf>,
    /// How often a changed index is written to its snapshot.
    pub snapshot_interval: Duration,
    /// Rows of a space below which queries scan it exactly.
    pub exact_below: usize,
}

impl RankerConfig {
    /// Shard `shard` without snapshots, with the default exact-scan size.
    pub fn new(shard: u32) -> RankerConfig {
        RankerConfig {
            shard,
            snapshot_dir: None,
            snapshot_interval: Duration::from_secs(300),
            exact_below: DEFAULT_EXACT_BELOW,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum RankerError {
    #[error(transparent)]
    Log(#[from] vidseek_bus::segment_log::SegmentLogError),
    #[error(transparent)]
    Streams(#[from] vidseek_bus::streams::StreamSetupError),
    #[error("cannot start the ranker service: {0}")]
    Service(async_nats::Error),
}

#[derive(Default)]
struct Shard {
    segments: SegmentIndex,
    ready: bool,
    /// Stream sequence of the last log entry applied.
    applied: u64,
}

/// Runs a ranker for `config.shard` until `shutdown` fires.
pub async fn run(
    nats: async_nats::Client,
    config: RankerConfig,
    shutdown: CancellationToken,
) -> Result<(), RankerError> {
    let started = Instant::now();
    let shard = config.shard;
    let js = jetstream::new(nats.clone());
    vidseek_bus::streams::ensure_all(&js, 1).await?;
    let log = segment_log::position(&js).await?;
    let (segments, applied) = restore(&config, log).await;
    let state = Arc::new(RwLock::new(Shard {
        segments,
        ready: false,
        applied,
    }));
    let mut follower = LogFollower::open_after(&js, subjects::segments_of_shard(shard), applied)
        .await?
        .resuming();
    let snapshot_to = config
        .snapshot_dir
        .clone()
        .map(|dir| (dir, log.created_unix_ns));

    let service = nats
        .service_builder()
        .description(format!("vidseek ranker, shard {shard}"))
        // `$SRV.STATS` carries each replica's size and readiness, which is
        // what `vidseek status` shows per shard.
        .stats_handler({
            let state = state.clone();
            move |_, _| {
                let state = read(&state);
                serde_json::json!({
                    "shard": shard,
                    "segments": state.segments.len(),
                    "ready": state.ready,
                })
            }
        })
        .start(subjects::SERVICE_RANKER, env!("CARGO_PKG_VERSION"))
        .await
        .map_err(RankerError::Service)?;
    let endpoint = service
        .endpoint_builder()
        .name(format!("shard-{shard}"))
        .queue_group(format!("rank-{shard}"))
        .add(subjects::rank(shard))
        .await
        .map_err(RankerError::Service)?;

    let add = |name: String, subject: String| {
        service
            .endpoint_builder()
            .name(name)
            .queue_group(format!("rank-{shard}"))
            .add(subject)
    };
    let scores_endpoint = add(
        format!("shard-{shard}-scores"),
        subjects::rank_scores(shard),
    )
    .await
    .map_err(RankerError::Service)?;
    let segment_endpoint = add(
        format!("shard-{shard}-segment"),
        subjects::rank_segment(shard),
    )
    .await
    .map_err(RankerError::Service)?;

    let serving = async {
        tokio::join!(
            serve_blocking(endpoint, shard, &state, rank),
            serve_blocking(scores_endpoint, shard, &state, score_video),
            serve_blocking(segment_endpoint, shard, &state, look_up_segment),
        )
    };
    let following = async {
        let mut snapshotted = (applied, Instant::now());
        // Set when a graph refuses rows; retried after the next entry.
        let mut settle_failed = false;
        loop {
            let (ready, unsettled, current) = {
                let mut shard_state = write(&state);
                if follower.caught_up() && !shard_state.ready {
                    shard_state.ready = true;
                    tracing::info!(
                        shard,
                        segments = shard_state.segments.len(),
                        ready_after_ms = started.elapsed().as_millis() as u64,
                        "shard ready"
                    );
                }
                let unsettled = shard_state.segments.unsettled() > 0;
                report(shard, &shard_state);
                (shard_state.ready, unsettled, shard_state.applied)
            };
            if let Some((dir, log_created)) = &snapshot_to
                && ready
                && current != snapshotted.0
                && snapshotted.1.elapsed() >= config.snapshot_interval
            {
                save_snapshot(&state, dir, *log_created, false).await;
                snapshotted = (current, Instant::now());
            }
            let entry = if ready && unsettled && !settle_failed {
                // A waiting log entry goes first; otherwise one batch of
                // rows enters its graph.
                tokio::select! {
                    biased;
                    entry = follower.next() => entry,
                    () = std::future::ready(()) => {
                        settle_failed = !settle_batch(&state).await;
                        continue;
                    }
                }
            } else {
                follower.next().await
            };
            match entry {
                Some(Ok(entry)) => {
                    let mut shard_state = write(&state);
                    shard_state.segments.apply(entry);
                    shard_state.applied = follower.last_sequence();
                    settle_failed = false;
                }
                Some(Err(err)) => {
                    tracing::error!(shard, error = %err, "skipping unreadable segment-log entry");
                    write(&state).applied = follower.last_sequence();
                }
                None => return,
            }
        }
    };
    tokio::select! {
        _ = shutdown.cancelled() => {}
        _ = serving => {}
        _ = following => tracing::error!(shard, "segment log closed"),
    }
    let _ = service.stop().await;
    if let Some((dir, log_created)) = &snapshot_to
        && read(&state).ready
    {
        save_snapshot(&state, dir, *log_created, true).await;
    }
    Ok(())
}

/// The index from the snapshot, if there is a usable one, and the log
/// sequence to follow from; otherwise an empty index and 0 (the whole log).
async fn restore(config: &RankerConfig, log: LogPosition) -> (SegmentIndex, u64) {
    let empty = || (SegmentIndex::with_exact_below(config.exact_below), 0);
    let Some(dir) = config.snapshot_dir.clone() else {
        return empty();
    };
    let (shard, exact_below) = (config.shard, config.exact_below);
    let loaded = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        snapshot::read(&dir, &log, exact_below).map(|loaded| (loaded, started.elapsed()))
    })
    .await;
    match loaded {
        Ok(Ok(((index, applied), took))) => {
            tracing::info!(
                shard,
                segments = index.len(),
                sequence = applied.sequence,
                load_ms = took.as_millis() as u64,
                "loaded the index snapshot; following the log after it"
            );
            (index, applied.sequence)
        }
        Ok(Err(snapshot::SnapshotError::Missing(dir))) => {
            tracing::info!(shard, dir = %dir.display(), "no index snapshot; replaying the whole segment log");
            empty()
        }
        Ok(Err(err)) => {
            tracing::warn!(shard, error = %err, "refusing the index snapshot; rebuilding from the whole segment log");
            empty()
        }
        Err(err) => {
            tracing::error!(shard, error = %err, "loading the index snapshot panicked; replaying the whole segment log");
            empty()
        }
    }
}

/// Writes the index to its snapshot. While running it holds the read lock
/// (queries go on, the log waits); at `stopping` the write lock, so that no
/// graph batch still running can change a graph while it is saved.
async fn save_snapshot(
    state: &Arc<RwLock<Shard>>,
    dir: &std::path::Path,
    log_created: i64,
    stopping: bool,
) {
    let (state, dir) = (state.clone(), dir.to_path_buf());
    let written = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let write_with = |shard: &Shard| {
            let applied = snapshot::Applied {
                log_created_unix_ns: log_created,
                sequence: shard.applied,
            };
            snapshot::write(&dir, &shard.segments, applied).map(|bytes| (bytes, shard.applied))
        };
        let written = if stopping {
            write_with(&write(&state))
        } else {
            write_with(&read(&state))
        };
        written.map(|(bytes, sequence)| (bytes, sequence, started.elapsed()))
    })
    .await;
    match written {
        Ok(Ok((bytes, sequence, took))) => {
            tracing::info!(
                bytes,
                sequence,
                took_ms = took.as_millis() as u64,
                "index snapshot written"
            )
        }
        Ok(Err(err)) => tracing::error!(error = %err, "cannot write the index snapshot"),
        Err(err) => tracing::error!(error = %err, "writing the index snapshot panicked"),
    }
}

/// Inserts one batch of waiting rows into its graph; false if the graph
/// refused them.
async fn settle_batch(state: &Arc<RwLock<Shard>>) -> bool {
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let Some(batch) = write(&state).segments.unsettled_batch(SETTLE_BATCH) else {
            return false;
        };
        let settled = read(&state).segments.settle(&batch);
        if settled {
            write(&state).segments.settled(&batch);
        }
        settled
    })
    .await
    .unwrap_or(false)
}

// A panic during a scan holds only the read lock, which does not poison it;
// `apply` has no fallible step, so a panic there would be a bug in the index.
// Either way a poisoned lock is used as it is rather than taking every later
// request down with it.
fn read(state: &RwLock<Shard>) -> RwLockReadGuard<'_, Shard> {
    state.read().unwrap_or_else(PoisonError::into_inner)
}

fn write(state: &RwLock<Shard>) -> RwLockWriteGuard<'_, Shard> {
    state.write().unwrap_or_else(PoisonError::into_inner)
}

/// Serves `endpoint` with `answer`, off the async runtime (scans are
/// CPU-bound), once the shard is ready.
async fn serve_blocking<Req, Resp>(
    endpoint: async_nats::service::endpoint::Endpoint,
    shard: u32,
    state: &Arc<RwLock<Shard>>,
    answer: fn(u32, &Shard, Req) -> Result<Resp, ErrorBody>,
) where
    Req: serde::de::DeserializeOwned + Send + 'static,
    Resp: serde::Serialize + Send + 'static,
{
    let state = state.clone();
    vidseek_bus::service::serve(endpoint, move |request: Req| {
        let state = state.clone();
        async move {
            tokio::task::spawn_blocking(move || {
                let state = read(&state);
                answer(shard, ready(shard, &state)?, request)
            })
            .await
            .unwrap_or_else(|err| {
                tracing::error!(shard, error = %err, "a rank request panicked");
                Err(ErrorBody::new(ErrorCode::Internal, "the ranker failed"))
            })
        }
    })
    .await
}

/// The shard's size and readiness, as this process's metrics show them.
fn report(shard: u32, state: &Shard) {
    use vidseek_bus::metrics;
    let label = shard.to_string();
    let labels = [("shard", label.as_str())];
    metrics::set(
        metrics::RANKER_SEGMENTS,
        &labels,
        state.segments.len() as f64,
    );
    metrics::set(
        metrics::RANKER_READY,
        &labels,
        f64::from(u8::from(state.ready)),
    );
}

/// The shard, once it has replayed its log.
fn ready(shard: u32, state: &Shard) -> Result<&Shard, ErrorBody> {
    if state.ready {
        Ok(state)
    } else {
        Err(ErrorBody::new(
            ErrorCode::Unavailable,
            format!("shard {shard} is still loading its segment log"),
        ))
    }
}

fn rank(shard: u32, state: &Shard, request: RankRequest) -> Result<RankResponse, ErrorBody> {
    request.validate()?;
    Ok(RankResponse {
        shard,
        segments_indexed: state.segments.len() as u64,
        segments_settling: state.segments.unsettled() as u64,
        hits: index::answer(&state.segments, &request),
    })
}

fn score_video(
    _shard: u32,
    state: &Shard,
    request: ScoreVideoRequest,
) -> Result<ScoreVideoResponse, ErrorBody> {
    request.query.validate()?;
    let mut slots = state.segments.video_slots(&request.video_id);
    // In time order: a video's shots and its cues interleave along it.
    slots.sort_by(|&a, &b| {
        let (a, b) = (
            state.segments.segment(a as usize),
            state.segments.segment(b as usize),
        );
        a.start.total_cmp(&b.start).then(a.index.cmp(&b.index))
    });
    Ok(ScoreVideoResponse {
        segments: index::score_slots(&state.segments, &request.query, &slots),
    })
}

fn look_up_segment(
    shard: u32,
    state: &Shard,
    request: SegmentLookup,
) -> Result<SegmentRecord, ErrorBody> {
    state.segments.record(&request.segment_id).ok_or_else(|| {
        ErrorBody::new(
            ErrorCode::NotFound,
            format!("shard {shard} holds no segment {:?}", request.segment_id),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use vidseek_protocol::encode::Calibration;
    use vidseek_protocol::rank::{
        KindCalibration, SegmentKind, SegmentLogEntry, SegmentMeta, SegmentRecord, Space,
    };

    fn loaded_shard() -> RwLock<Shard> {
        let mut shard = Shard {
            ready: true,
            ..Shard::default()
        };
        shard.segments.apply(SegmentLogEntry::Upsert {
            video_id: "v".into(),
            generation: "g".into(),
            part: 0,
            parts: 1,
            segments: vec![SegmentRecord {
                meta: SegmentMeta {
                    segment_id: "v-0".into(),
                    video_id: "v".into(),
                    video_name: "v.mp4".into(),
                    index: 0,
                    start: 0.0,
                    end: 1.0,
                    kind: SegmentKind::Shot,
                    text: None,
                },
                text_vector: vec![1.0, 0.0],
                image_vector: None,
                terms: vec![],
            }],
        });
        RwLock::new(shard)
    }

    fn request(k: usize) -> RankRequest {
        let cal = Calibration { a: 1.0, b: 0.0 };
        RankRequest {
            space: Space::Text,
            vector: vec![1.0, 0.0],
            k,
            calibration: KindCalibration {
                shot: cal,
                subtitle: cal,
                ocr: None,
            },
            min_score: 0.0,
            terms: vec![],
            filter: Default::default(),
            exclude: vec![],
            group_by_video: false,
            blend: None,
        }
    }

    #[test]
    fn a_hostile_request_is_refused_and_the_shard_keeps_answering() {
        let state = loaded_shard();
        // Before validation this asked the heap for usize::MAX + 1 slots.
        let error = rank(0, &read(&state), request(usize::MAX)).expect_err("refused");
        assert_eq!(error.error.code, ErrorCode::BadRequest);
        let answer = rank(0, &read(&state), request(10)).expect("still serving");
        assert_eq!(answer.hits.len(), 1);
    }

    #[test]
    fn a_poisoned_lock_does_not_stop_the_shard() {
        let state = loaded_shard();
        let _ = std::panic::catch_unwind(|| {
            let _guard = state.write().unwrap();
            panic!("a bug while holding the lock");
        });
        assert!(state.is_poisoned());
        assert_eq!(rank(0, &read(&state), request(5)).unwrap().hits.len(), 1);
    }
}
