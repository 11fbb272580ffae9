//! Graceful shutdown: SIGTERM while searches are in flight answers every
//! one of them (no reset connection, no error), then the process exits 0:
//! `vidseek up`, and in a fleet the gateway and the query stage's worker
//! signalled together.

use std::time::{Duration, Instant};

use futures::StreamExt;
use vidseek_protocol::subjects;
use vidseek_tests::process::{Fleet, FleetConfig};
use vidseek_tests::stack::EmbeddedStack;

/// Searches sent at once; the signal comes once all have reached the query
/// stage, while they wait their turn at the encoder.
const SEARCHES: usize = 8;

#[tokio::test]
async fn sigterm_answers_the_searches_in_flight_then_exits_0() {
    let media = tempfile::tempdir().unwrap();
    let mut stack = EmbeddedStack::start(media.path());
    let nats = stack.nats_client().await;
    let mut arriving = nats.subscribe(subjects::SEARCH_STREAM).await.unwrap();
    nats.flush().await.unwrap();

    let searches = searches_in_flight(&stack.http, &mut arriving).await;
    sigterm(stack.pid());
    for search in searches {
        let (status, body) = search
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("a search in flight got no answer: {e}\n{}", stack.log()));
        assert_eq!(status, 200, "{body}\n{}", stack.log());
        assert!(body["results"].is_array(), "{body}");
    }
    let exit = stack.wait_exit(Duration::from_secs(60)).unwrap_or_else(|| {
        panic!(
            "vidseek up still running 60 s after SIGTERM\n{}",
            stack.log()
        )
    });
    assert!(exit.success(), "exit status {exit}\n{}", stack.log());
}

fn sigterm(pid: u32) {
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Sends [`SEARCHES`] text searches to the gateway at `base` and returns
/// once every one has reached the query stage (seen on `arriving`): the
/// gateway owes each an answer. A new connection per request, so nothing
/// rides on an idle keep-alive connection the stopping server may close.
async fn searches_in_flight(
    base: &str,
    arriving: &mut async_nats::Subscriber,
) -> Vec<tokio::task::JoinHandle<Result<(u16, serde_json::Value), reqwest::Error>>> {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let searches = (0..SEARCHES)
        .map(|i| {
            let request = http
                .get(format!("{base}/api/v1/search"))
                .query(&[("text", format!("a red bicycle number {i}"))]);
            tokio::spawn(async move {
                let response = request.send().await?;
                let status = response.status().as_u16();
                Ok((status, response.json().await?))
            })
        })
        .collect();
    for _ in 0..SEARCHES {
        tokio::time::timeout(Duration::from_secs(60), arriving.next())
            .await
            .expect("the searches reach the query stage")
            .expect("subscription open");
    }
    searches
}

#[tokio::test]
async fn sigterm_to_a_gateway_and_a_query_worker_answers_their_searches_then_exits_0() {
    let media = tempfile::tempdir().unwrap();
    let mut fleet = Fleet::start(media.path(), FleetConfig::default());
    let base = fleet.gateway();
    let gateway = 0;
    fleet.worker("encoder", None);
    fleet.worker("ranker", Some(0));
    fleet.worker("ranker", Some(1));
    let query = fleet.worker("query", None);
    let nats = fleet.nats.client().await;
    fleet
        .wait_until_ready(&nats, Duration::from_secs(120))
        .await;
    let mut arriving = nats.subscribe(subjects::SEARCH_STREAM).await.unwrap();
    nats.flush().await.unwrap();

    let searches = searches_in_flight(&base, &mut arriving).await;
    sigterm(fleet.process(gateway).pid());
    sigterm(fleet.process(query).pid());
    for search in searches {
        let (status, body) = search.await.unwrap().unwrap_or_else(|e| {
            fleet.dump_logs();
            panic!("a search in flight got no answer: {e}")
        });
        assert_eq!(status, 200, "{body}");
    }
    for index in [gateway, query] {
        let deadline = Instant::now() + Duration::from_secs(60);
        let process = fleet.process(index);
        let exit = loop {
            if let Some(exit) = process.exited() {
                break exit;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running\n{}",
                process.name,
                process.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(
            exit.success(),
            "{} exited {exit}\n{}",
            process.name,
            process.log()
        );
    }
}
