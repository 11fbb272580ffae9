//! A NATS cluster of real `nats-server` processes on loopback, one per test:
//! JetStream on every node, so streams can have three replicas and a node
//! can be killed while the others carry on. Ports are picked free just
//! before the start (routes need them known in advance, unlike `-p -1`).

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Node {
    child: Option<Child>,
    client_port: u16,
}

pub struct NatsCluster {
    nodes: Vec<Node>,
    dir: tempfile::TempDir,
}

/// Free loopback ports, held together so they differ, then released.
fn free_ports(n: usize) -> Vec<u16> {
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").expect("bind a free port"))
        .collect();
    listeners
        .iter()
        .map(|l| l.local_addr().expect("local addr").port())
        .collect()
}

/// The configuration of node `index` of a cluster whose nodes listen for
/// clients on `client_ports` and for routes on `route_ports`.
pub fn node_config(
    index: usize,
    client_ports: &[u16],
    route_ports: &[u16],
    store_dir: &std::path::Path,
) -> String {
    let routes: Vec<String> = route_ports
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != index)
        .map(|(_, port)| format!("    \"nats://127.0.0.1:{port}\""))
        .collect();
    format!(
        "server_name: \"n{index}\"\n\
         listen: \"127.0.0.1:{client}\"\n\
         jetstream {{\n  store_dir: \"{store}\"\n}}\n\
         cluster {{\n  name: \"vidseek-test\"\n  listen: \"127.0.0.1:{route}\"\n  routes: [\n{routes}\n  ]\n}}\n",
        client = client_ports[index],
        store = store_dir.display(),
        route = route_ports[index],
        routes = routes.join(",\n"),
    )
}

/// vidseek's streams: the ingest queue, the segment log, the catalog and
/// the media buckets (thumbnails, uploads).
const STREAMS: [&str; 5] = [
    vidseek_protocol::subjects::INGEST_JOBS_STREAM,
    vidseek_protocol::subjects::SEGMENTS_STREAM,
    "KV_vidseek_videos",
    "OBJ_vidseek_thumbs",
    "OBJ_vidseek_uploads",
];

/// `(configured replicas, peers besides the leader)` of every stream.
pub async fn replicas(js: &async_nats::jetstream::Context) -> Vec<(usize, usize)> {
    let mut found = vec![];
    for name in STREAMS {
        let mut stream = js.get_stream(name).await.expect("stream exists");
        let info = stream.info().await.expect("stream info");
        let peers = info.cluster.as_ref().map_or(0, |c| c.replicas.len());
        found.push((info.config.num_replicas, peers));
    }
    found
}

/// Polls until every stream has `expected` replicas: the followers join a
/// moment after the update is accepted.
pub async fn wait_for_replicas(js: &async_nats::jetstream::Context, expected: Vec<(usize, usize)>) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let found = replicas(js).await;
        if found == expected {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "streams have {found:?} (replicas, followers), expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

impl NatsCluster {
    /// Starts `size` nodes (from `NATS_SERVER_BIN` or `PATH`) and waits until
    /// JetStream has a meta leader, i.e. a stream can be created.
    pub fn start(size: usize) -> NatsCluster {
        let dir = tempfile::tempdir().expect("cluster temp dir");
        let ports = free_ports(2 * size);
        let (client_ports, route_ports) = ports.split_at(size);
        let bin = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into());
        let nodes = (0..size)
            .map(|index| {
                let store = dir.path().join(format!("n{index}"));
                let config = dir.path().join(format!("n{index}.conf"));
                std::fs::write(
                    &config,
                    node_config(index, client_ports, route_ports, &store),
                )
                .expect("write node config");
                let log = std::fs::File::create(dir.path().join(format!("n{index}.log")))
                    .expect("node log");
                let child = Command::new(&bin)
                    .arg("-c")
                    .arg(&config)
                    .stdout(Stdio::null())
                    .stderr(log)
                    .spawn()
                    .unwrap_or_else(|e| {
                        panic!("cannot start {bin}: {e} (install it with deploy/setup.sh)")
                    });
                Node {
                    child: Some(child),
                    client_port: client_ports[index],
                }
            })
            .collect();
        NatsCluster { nodes, dir }
    }

    /// Every node's client URL.
    pub fn urls(&self) -> Vec<String> {
        (0..self.nodes.len()).map(|i| self.node_url(i)).collect()
    }

    /// The URL of node `index`: a client connected there learns the other
    /// nodes from the server and fails over to them.
    pub fn node_url(&self, index: usize) -> String {
        format!("nats://127.0.0.1:{}", self.nodes[index].client_port)
    }

    /// A client that may connect to any node and fails over between them.
    pub async fn client(&self) -> async_nats::Client {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match async_nats::connect(self.urls()).await {
                Ok(client) => return client,
                Err(err) if Instant::now() > deadline => {
                    panic!("cannot connect to the test cluster: {err}\n{}", self.logs())
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    }

    /// Waits until JetStream answers on the cluster: a meta leader is elected
    /// and `$JS.API.INFO` replies without an error.
    pub async fn wait_for_jetstream(&self, client: &async_nats::Client) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let reply = tokio::time::timeout(
                Duration::from_secs(2),
                client.request("$JS.API.INFO", "".into()),
            )
            .await;
            if let Ok(Ok(message)) = reply {
                let value: serde_json::Value =
                    serde_json::from_slice(&message.payload).unwrap_or_default();
                if value.get("error").is_none() && value.get("type").is_some() {
                    return;
                }
            }
            assert!(
                Instant::now() < deadline,
                "JetStream not ready on the cluster within 60 s:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// SIGKILLs node `index`.
    pub fn kill(&mut self, index: usize) {
        if let Some(mut child) = self.nodes[index].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Every node's log (for failure messages).
    pub fn logs(&self) -> String {
        (0..self.nodes.len())
            .map(|i| {
                let log = std::fs::read_to_string(self.dir.path().join(format!("n{i}.log")))
                    .unwrap_or_default();
                let lines: Vec<&str> = log.lines().collect();
                format!(
                    "----- nats n{i}, last lines -----\n{}",
                    lines[lines.len().saturating_sub(40)..].join("\n")
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for NatsCluster {
    fn drop(&mut self) {
        for index in 0..self.nodes.len() {
            self.kill(index);
        }
    }
}
