//! The ranker role: one shard's segments in memory, rebuilt by replaying the
//! shard's segment log and kept current by following it. It answers
//! `vidseek.v1.rank.{shard}` with the shard's own top-k; replicas of a shard
//! share the subject's queue group, so each query reaches one of them.
//! A replica answers `unavailable` until it has replayed the log, so a
//! restarting shard never serves a partial index as if it were complete.

pub mod index;
mod lexical;

use std::sync::{Arc, RwLock};

use async_nats::jetstream;
use async_nats::service::ServiceExt;
use tokio_util::sync::CancellationToken;
use vidseek_bus::segment_log::{LogFollower, SegmentSet};
use vidseek_protocol::error::{ErrorBody, ErrorCode};
use vidseek_protocol::rank::{RankRequest, RankResponse};
use vidseek_protocol::subjects;

pub use index::top_k;

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
    segments: SegmentSet,
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
            async move { rank(shard, &state, request) }
        })
    };
    let following = async {
        loop {
            if follower.caught_up() {
                let mut shard_state = state.write().expect("ranker lock");
                if !shard_state.ready {
                    shard_state.ready = true;
                    tracing::info!(shard, segments = shard_state.segments.len(), "shard ready");
                }
            }
            match follower.next().await {
                Some(Ok(entry)) => state.write().expect("ranker lock").segments.apply(entry),
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

fn rank(
    shard: u32,
    state: &RwLock<Shard>,
    request: RankRequest,
) -> Result<RankResponse, ErrorBody> {
    let state = state.read().expect("ranker lock");
    if !state.ready {
        return Err(ErrorBody::new(
            ErrorCode::Unavailable,
            format!("shard {shard} is still loading its segment log"),
        ));
    }
    let hits = if request.k == 0 {
        vec![]
    } else {
        top_k(state.segments.iter(), &request)
    };
    Ok(RankResponse {
        shard,
        segments_indexed: state.segments.len() as u64,
        hits,
    })
}
