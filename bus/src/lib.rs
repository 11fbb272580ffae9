//! How vidseek processes talk over NATS.
//!
//! Both the gateway and the workers use this crate, and neither depends on the
//! other: typed request/reply with the protocol's codec and error mapping
//! ([`rpc`]), who may do what on the bus and how a process connects
//! ([`access`]), the JetStream streams and buckets every role expects
//! ([`streams`]), and the video catalog kept in a key-value bucket
//! ([`catalog`]), the segment log the index is rebuilt from
//! ([`segment_log`]), query images reduced to fit a NATS message
//! ([`query_image`]), the serving loop every role's endpoints share, with
//! its admission limit ([`service`]), query deadlines ([`deadline`]) and
//! the roles' Prometheus metrics ([`metrics`]), and where thumbnails and
//! uploads live ([`media_store`]).

pub mod access;
pub mod catalog;
pub mod deadline;
pub mod media_store;
pub mod metrics;
pub mod query_image;
pub mod rpc;
pub mod segment_log;
pub mod service;
pub mod streams;

use std::time::Duration;

pub use access::{ConnectError, NatsAccess};

/// The servers of a `VIDSEEK_NATS_URL`: one URL, or several of one cluster
/// separated by commas (blanks around them ignored).
pub fn server_urls(url: &str) -> Vec<&str> {
    url.split(',')
        .map(str::trim)
        .filter(|u| !u.is_empty())
        .collect()
}

/// Connects to NATS as `access` says, retrying an unreachable server for
/// `retry_for`: in the embedded stack the server may still be starting, and
/// in a cluster a node may be restarting. `url` may list several servers of
/// a cluster separated by commas: the first that answers is used, and the
/// others are where the client goes when that one is lost (besides those
/// the cluster announces). Refused credentials and failed TLS are not
/// retried: they fail at once with what to set.
pub async fn connect(
    url: &str,
    name: &str,
    access: &NatsAccess,
    retry_for: Duration,
) -> Result<async_nats::Client, ConnectError> {
    let creds = match &access.creds_file {
        Some(path) => Some(tokio::fs::read_to_string(path).await.map_err(|source| {
            ConnectError::CredsFile {
                path: path.clone(),
                source,
            }
        })?),
        None => None,
    };
    let deadline = tokio::time::Instant::now() + retry_for;
    loop {
        let options = access
            .options(creds.as_deref())
            .map_err(|source| ConnectError::CredsFile {
                path: access.creds_file.clone().unwrap_or_default(),
                source,
            })?
            .name(name)
            .connection_timeout(Duration::from_secs(5))
            // A permissions violation otherwise shows only as a timeout.
            .event_callback(|event| async move {
                match event {
                    async_nats::Event::ServerError(error) => {
                        tracing::error!(%error, "NATS server error")
                    }
                    async_nats::Event::ClientError(error) => {
                        tracing::warn!(%error, "NATS client error")
                    }
                    event => tracing::debug!(%event, "NATS connection event"),
                }
            })
            // Once connected, a lost server is waited for indefinitely.
            .max_reconnects(None);
        let failed = match options.connect(server_urls(url)).await {
            Ok(client) => return Ok(client),
            Err(err) => err,
        };
        match ConnectError::classify(url, failed) {
            Ok(fatal) => return Err(fatal),
            Err(source) if tokio::time::Instant::now() > deadline => {
                return Err(ConnectError::Unreachable {
                    url: url.to_string(),
                    source,
                });
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::server_urls;

    #[test]
    fn a_server_list_splits_on_commas() {
        assert_eq!(server_urls("nats://a:4222"), ["nats://a:4222"]);
        assert_eq!(
            server_urls("nats://a:4222, nats://b:4222,,tls://c:4222 "),
            ["nats://a:4222", "nats://b:4222", "tls://c:4222"]
        );
    }
}
