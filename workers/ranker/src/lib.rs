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
//! update waits at most for the scans already running.

pub mod index;
mod lexical;
pub mod store;

use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use async_nats::jetstream;
use async_nats::service::ServiceExt;
use tokio_util::sync::CancellationToken;
use vidseek_bus::segment_log::LogFollower;
use vidseek_protocol::error::{ErrorBody, ErrorCode};
use vidseek_protocol::rank::{RankRequest, RankResponse};
use vidseek_protocol::subjects;

pub use index::top_k;
pub use store::SegmentIndex;

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
}

/// Runs shard `shard` until `shutdown` fires.
pub async fn run(
    nats: async_nats::Client,
    shard: u32,
    shutdown: CancellationToken,
) -> Result<(), RankerError> {
    let js = jetstream::new(nats.clone());
    vidseek_bus::streams::ensure_all(&js, 1).await?;
    let state = Arc::new(RwLock::new(Shard::default()));
    let mut follower = LogFollower::open(&js, subjects::segments_of_shard(shard)).await?;

    let service = nats
        .service_builder()
        .description(format!("vidseek ranker, shard {shard}"))
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

    let serving = {
        let state = state.clone();
        vidseek_bus::service::serve(endpoint, move |request: RankRequest| {
            let state = state.clone();
            async move {
                tokio::task::spawn_blocking(move || rank(shard, &state, request))
                    .await
                    .unwrap_or_else(|err| {
                        tracing::error!(shard, error = %err, "a rank request panicked");
                        Err(ErrorBody::new(ErrorCode::Internal, "the ranker failed"))
                    })
            }
        })
    };
    let following = async {
        loop {
            if follower.caught_up() {
                let mut shard_state = write(&state);
                if !shard_state.ready {
                    shard_state.ready = true;
                    tracing::info!(shard, segments = shard_state.segments.len(), "shard ready");
                }
            }
            match follower.next().await {
                Some(Ok(entry)) => write(&state).segments.apply(entry),
                Some(Err(err)) => {
                    tracing::error!(shard, error = %err, "skipping unreadable segment-log entry")
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
    Ok(())
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

fn rank(
    shard: u32,
    state: &RwLock<Shard>,
    request: RankRequest,
) -> Result<RankResponse, ErrorBody> {
    request.validate()?;
    let state = read(state);
    if !state.ready {
        return Err(ErrorBody::new(
            ErrorCode::Unavailable,
            format!("shard {shard} is still loading its segment log"),
        ));
    }
    let hits = top_k(&state.segments, &request);
    Ok(RankResponse {
        shard,
        segments_indexed: state.segments.len() as u64,
        hits,
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
            },
            min_score: 0.0,
            terms: vec![],
        }
    }

    #[test]
    fn a_hostile_request_is_refused_and_the_shard_keeps_answering() {
        let state = loaded_shard();
        // Before validation this asked the heap for usize::MAX + 1 slots.
        let error = rank(0, &state, request(usize::MAX)).expect_err("refused");
        assert_eq!(error.error.code, ErrorCode::BadRequest);
        let answer = rank(0, &state, request(10)).expect("still serving");
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
        assert_eq!(rank(0, &state, request(5)).unwrap().hits.len(), 1);
    }
}
