//! How vidseek processes talk over NATS.
//!
//! Both the gateway and the workers use this crate, and neither depends on the
//! other: typed request/reply with the protocol's codec and error mapping
//! ([`rpc`]), the JetStream streams and buckets every role expects
//! ([`streams`]), and the video catalog kept in a key-value bucket
//! ([`catalog`]), the segment log the index is rebuilt from
//! ([`segment_log`]), query images reduced to fit a NATS message
//! ([`query_image`]), the serving loop every role's endpoints share, with
//! its admission limit ([`service`]), and query deadlines ([`deadline`]).

pub mod catalog;
pub mod deadline;
pub mod query_image;
pub mod rpc;
pub mod segment_log;
pub mod service;
pub mod streams;

use std::time::Duration;

/// Connects to NATS, retrying for a while: in the embedded stack the server
/// may still be starting, and in a cluster a node may be restarting.
pub async fn connect(
    url: &str,
    name: &str,
) -> Result<async_nats::Client, async_nats::ConnectError> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = async_nats::ConnectOptions::new()
            .name(name)
            .retry_on_initial_connect()
            .connection_timeout(Duration::from_secs(5))
            .max_reconnects(None)
            .connect(url);
        // retry_on_initial_connect makes connect() return at once and keep
        // trying in the background; wait for the first real connection so
        // callers can rely on JetStream being reachable.
        let client = attempt.await?;
        let connected = tokio::time::timeout(Duration::from_secs(10), async {
            while client.connection_state() != async_nats::connection::State::Connected {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await;
        if connected.is_ok() || tokio::time::Instant::now() > deadline {
            return Ok(client);
        }
    }
}
