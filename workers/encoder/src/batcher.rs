//! Micro-batching in front of an ONNX session. The session lives on its own
//! OS thread (inference is CPU-bound and `Session::run` needs `&mut`); async
//! callers hand it requests through a bounded queue and wait on a oneshot.
//! The thread drains whatever requests are waiting into one batch, so under
//! load many small requests cost one model call. A short batching window
//! lets requests that arrive just after the first one (a query beside a
//! running ingest, several users typing at once) join it: one forward pass of
//! a few items costs little more than one of a single item, while back-to-back
//! passes each pay the full fixed cost. A batch closes when the window ends
//! or it is full, whichever comes first. The window only opens while the
//! encoder is behind its traffic: when the batch's first request was
//! queued before the last call ended. A request that
//! finds the thread free runs at once, as there is nothing to share a pass
//! with; so does each query of one client searching again and again,
//! however quickly, as its next query only comes after the last answer.
//! A full queue is answered at
//! once with [`BatchError::Overloaded`] instead of letting latency grow.
//! A model call that panics fails its own batch only: the thread, and the
//! encoder with it, keeps serving.

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum BatchError {
    #[error("the {0} encoder is overloaded; retry shortly")]
    Overloaded(&'static str),
    #[error("the {0} encoder has stopped")]
    Stopped(&'static str),
    #[error("{0}")]
    Failed(String),
}

struct Request<I, O> {
    items: Vec<I>,
    queued: Instant,
    reply: oneshot::Sender<Result<Vec<O>, BatchError>>,
}

/// Handle to a batching thread; cheap to clone.
pub struct Batcher<I, O> {
    name: &'static str,
    queue: SyncSender<Request<I, O>>,
}

impl<I, O> Clone for Batcher<I, O> {
    fn clone(&self) -> Self {
        Batcher {
            name: self.name,
            queue: self.queue.clone(),
        }
    }
}

impl<I: Send + 'static, O: Send + 'static> Batcher<I, O> {
    /// Starts the thread. `run` maps a batch of items to one output per item.
    /// `queue_depth` requests may wait; `max_batch` items go into one call;
    /// a batch waits at most `window` after its first request for others.
    pub fn spawn<F>(
        name: &'static str,
        queue_depth: usize,
        max_batch: usize,
        window: Duration,
        mut run: F,
    ) -> Self
    where
        F: FnMut(Vec<I>) -> Result<Vec<O>, String> + Send + 'static,
    {
        let (queue, requests) = mpsc::sync_channel::<Request<I, O>>(queue_depth);
        std::thread::Builder::new()
            .name(format!("vidseek-{name}-encoder"))
            .spawn(move || batch_loop(name, requests, max_batch, window, &mut run))
            .expect("spawn encoder thread");
        Batcher { name, queue }
    }

    /// Encodes `items`, batched with whatever else is waiting.
    pub async fn submit(&self, items: Vec<I>) -> Result<Vec<O>, BatchError> {
        if items.is_empty() {
            return Ok(vec![]);
        }
        let (reply, answer) = oneshot::channel();
        let request = Request {
            items,
            queued: Instant::now(),
            reply,
        };
        match self.queue.try_send(request) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(BatchError::Overloaded(self.name)),
            Err(TrySendError::Disconnected(_)) => return Err(BatchError::Stopped(self.name)),
        }
        answer.await.map_err(|_| BatchError::Stopped(self.name))?
    }
}

fn batch_loop<I, O, F>(
    name: &'static str,
    requests: Receiver<Request<I, O>>,
    max_batch: usize,
    window: Duration,
    run: &mut F,
) where
    F: FnMut(Vec<I>) -> Result<Vec<O>, String>,
{
    // When the last model call ended, before its answers went out.
    let mut last_call_ended: Option<Instant> = None;
    while let Ok(first) = requests.recv() {
        // A request queued before the last call ended waited for it: traffic
        // this dense (ingest frames, several searches) is likely to go on,
        // so others may join within the window. A client's next query is
        // queued only after its answer, so it never counts.
        let behind = last_call_ended.is_some_and(|ended| first.queued < ended);
        let closes = Instant::now() + if behind { window } else { Duration::ZERO };
        let mut batch = vec![first];
        let mut size = batch[0].items.len();
        while size < max_batch {
            // A zero window (or one already over) still takes whatever is
            // queued: recv_timeout with no time left is a try_recv.
            let left = closes.saturating_duration_since(Instant::now());
            match requests.recv_timeout(left) {
                Ok(next) => {
                    size += next.items.len();
                    batch.push(next);
                }
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
        let counts: Vec<usize> = batch.iter().map(|r| r.items.len()).collect();
        let mut replies = Vec::with_capacity(batch.len());
        let mut items = Vec::with_capacity(size);
        for request in batch {
            items.extend(request.items);
            replies.push(request.reply);
        }
        use vidseek_bus::metrics;
        metrics::observe(metrics::ENCODER_BATCH_SIZE, &[("model", name)], size as f64);
        let started = Instant::now();
        // The model and the tokenizer are foreign code on odd inputs; a
        // panic there must not end the thread that every later request needs.
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| run(items)))
            .unwrap_or_else(|panic| {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown cause".into());
                tracing::error!(panic = what, "encoder call panicked; the batch failed");
                Err(format!("the encoder failed on this input ({what})"))
            });
        metrics::observe(
            metrics::ENCODER_BATCH_DURATION,
            &[("model", name)],
            started.elapsed().as_secs_f64(),
        );
        last_call_ended = Some(Instant::now());
        match result {
            Ok(outputs) if outputs.len() == size => {
                let mut outputs = outputs.into_iter();
                for (reply, count) in replies.into_iter().zip(counts) {
                    let _ = reply.send(Ok(outputs.by_ref().take(count).collect()));
                }
            }
            Ok(outputs) => {
                let message = format!(
                    "encoder returned {} outputs for {size} inputs",
                    outputs.len()
                );
                for reply in replies {
                    let _ = reply.send(Err(BatchError::Failed(message.clone())));
                }
            }
            Err(message) => {
                for reply in replies {
                    let _ = reply.send(Err(BatchError::Failed(message.clone())));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::channel;

    /// Tags each output with the number of the model call that made it.
    type Tagging = Batcher<u32, (u32, u32)>;

    /// A batcher whose first call waits for `release`, after telling
    /// `started`: `queue_depth` requests may wait, `max_batch` items go into
    /// one call, and a batch waits up to `window` for others.
    fn gated(
        queue_depth: usize,
        max_batch: usize,
        window: Duration,
    ) -> (Tagging, Receiver<()>, std::sync::mpsc::Sender<()>) {
        let (started_tx, started) = channel();
        let (release, release_rx) = channel::<()>();
        let mut calls = 0;
        let batcher = Batcher::spawn(
            "test",
            queue_depth,
            max_batch,
            window,
            move |items: Vec<u32>| {
                calls += 1;
                if calls == 1 {
                    started_tx.send(()).unwrap();
                    release_rx.recv().unwrap();
                }
                Ok(items.into_iter().map(|i| (i, calls)).collect())
            },
        );
        (batcher, started, release)
    }

    // current_thread runtime: after spawn + yield_now, every spawned task has
    // been polled once, i.e. has queued its request.
    #[tokio::test(flavor = "current_thread")]
    async fn requests_waiting_together_share_one_call() {
        let (batcher, started, release) = gated(16, 64, Duration::ZERO);
        let first = tokio::spawn({
            let b = batcher.clone();
            async move { b.submit(vec![1]).await }
        });
        tokio::task::yield_now().await;
        started.recv().unwrap();
        let rest: Vec<_> = (2..5)
            .map(|i| {
                let b = batcher.clone();
                tokio::spawn(async move { b.submit(vec![i, i * 10]).await })
            })
            .collect();
        tokio::task::yield_now().await;
        release.send(()).unwrap();
        assert_eq!(first.await.unwrap().unwrap(), vec![(1, 1)]);
        for (i, handle) in (2..5).zip(rest) {
            // Outputs come back to the right caller, in order, from call 2.
            assert_eq!(handle.await.unwrap().unwrap(), vec![(i, 2), (i * 10, 2)]);
        }
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_panicking_model_call_fails_its_batch_and_the_thread_lives_on() {
        let batcher = Batcher::spawn("test", 4, 64, Duration::ZERO, |items: Vec<u32>| {
            assert!(!items.contains(&13), "unlucky input");
            Ok(items)
        });
        match batcher.submit(vec![13]).await {
            Err(BatchError::Failed(message)) => {
                assert!(message.contains("unlucky input"), "{message}")
            }
            other => panic!("expected Failed, got {other:?}"),
        }
        assert_eq!(batcher.submit(vec![1, 2]).await, Ok(vec![1, 2]));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_queue_answers_overloaded_at_once() {
        let (batcher, started, release) = gated(1, 64, Duration::ZERO);
        let busy = tokio::spawn({
            let b = batcher.clone();
            async move { b.submit(vec![1]).await }
        });
        tokio::task::yield_now().await;
        started.recv().unwrap();
        let queued = tokio::spawn({
            let b = batcher.clone();
            async move { b.submit(vec![2]).await }
        });
        tokio::task::yield_now().await;
        assert_eq!(
            batcher.submit(vec![3]).await,
            Err(BatchError::Overloaded("test"))
        );
        release.send(()).unwrap();
        assert_eq!(busy.await.unwrap(), Ok(vec![(1, 1)]));
        assert_eq!(queued.await.unwrap(), Ok(vec![(2, 2)]));
    }

    /// Submits `item` on a task of its own and lets it queue its request.
    async fn queued(
        batcher: &Tagging,
        item: u32,
    ) -> tokio::task::JoinHandle<Result<Vec<(u32, u32)>, BatchError>> {
        let handle = tokio::spawn({
            let b = batcher.clone();
            async move { b.submit(vec![item]).await }
        });
        tokio::task::yield_now().await;
        handle
    }

    // The model thread runs on real time, so these use real time too: a
    // window far longer than any scheduling delay, closed by the size cap.
    #[tokio::test(flavor = "current_thread")]
    async fn a_request_that_waited_for_a_call_opens_the_window_for_others() {
        let (batcher, started, release) = gated(16, 2, Duration::from_secs(60));
        let running = queued(&batcher, 0).await;
        started.recv().unwrap();
        // Arrives while call 1 runs: the encoder is behind its traffic.
        let waiting = queued(&batcher, 1).await;
        release.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Ok(vec![(0, 1)]));
        // Well after the thread has taken the waiting request: without a
        // window it would already be running alone.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let joining = batcher.submit(vec![2]).await;
        assert_eq!(waiting.await.unwrap(), Ok(vec![(1, 2)]));
        assert_eq!(joining, Ok(vec![(2, 2)]));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_lone_waiting_request_waits_out_the_window_then_runs_alone() {
        let window = Duration::from_millis(40);
        let (batcher, started, release) = gated(16, 8, window);
        let running = queued(&batcher, 6).await;
        started.recv().unwrap();
        let waiting = queued(&batcher, 7).await;
        let released = Instant::now();
        release.send(()).unwrap();
        assert_eq!(running.await.unwrap(), Ok(vec![(6, 1)]));
        assert_eq!(waiting.await.unwrap(), Ok(vec![(7, 2)]));
        assert!(released.elapsed() >= window, "{:?}", released.elapsed());
    }

    #[tokio::test(flavor = "current_thread")]
    async fn back_to_back_requests_of_one_client_never_wait_for_the_window() {
        // A client that searches again as soon as it has its answer finds
        // the thread free every time; the 1 h window would hold any of
        // these requests past the timeout.
        let (batcher, started, release) = gated(16, 8, Duration::from_secs(3600));
        release.send(()).unwrap();
        for item in 1..=5 {
            let answer =
                tokio::time::timeout(Duration::from_secs(30), batcher.submit(vec![item])).await;
            assert_eq!(answer, Ok(Ok(vec![(item, item)])));
        }
        started.recv().unwrap();
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_full_batch_does_not_wait_for_the_window() {
        let (batcher, _started, release) = gated(16, 2, Duration::from_secs(3600));
        release.send(()).unwrap();
        // Two items fill the batch at once; only a window that ignored the
        // cap would hold them past the timeout.
        let answer =
            tokio::time::timeout(Duration::from_secs(30), batcher.submit(vec![1, 2])).await;
        assert_eq!(answer, Ok(Ok(vec![(1, 1), (2, 1)])));
    }
}
