//! The child nats-server of the embedded stack: JetStream stored under the
//! data directory, restarted on the same port if it dies (clients reconnect
//! and JetStream reopens its store), stopped with the stack.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;

/// Restarts tried in a row before the stack gives up on its nats-server.
const RESTART_ATTEMPTS: u32 = 3;

pub struct NatsServer {
    child: Child,
    pub url: String,
    /// Where it listens and stores, to start it again the same way.
    host: String,
    port: u16,
    store_dir: PathBuf,
}

/// `NATS_SERVER_BIN`, else `nats-server` on PATH, else Debian's /usr/sbin.
fn find_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("NATS_SERVER_BIN") {
        return bin.into();
    }
    let on_path = std::env::var_os("PATH")
        .map(|paths| std::env::split_paths(&paths).any(|p| p.join("nats-server").is_file()))
        .unwrap_or(false);
    if on_path || !Path::new("/usr/sbin/nats-server").is_file() {
        "nats-server".into()
    } else {
        "/usr/sbin/nats-server".into()
    }
}

impl NatsServer {
    /// Starts nats-server on `addr` (`host:port`, port 0 for any free port).
    pub async fn start(addr: &str, store_dir: &Path) -> anyhow::Result<NatsServer> {
        let (host, port) = addr
            .rsplit_once(':')
            .with_context(|| format!("VIDSEEK_NATS_ADDR must be host:port, got {addr}"))?;
        let port: u16 = port
            .parse()
            .with_context(|| format!("bad port in {addr}"))?;
        std::fs::create_dir_all(store_dir)
            .with_context(|| format!("cannot create {}", store_dir.display()))?;
        let binary = find_binary();
        let mut child = Command::new(&binary)
            .args(["-a", host, "-p"])
            .arg(if port == 0 { "-1".to_string() } else { port.to_string() })
            .arg("-js")
            .arg("-sd")
            .arg(store_dir)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {} (install it with `make up`, deploy/setup.sh or apt-get install nats-server, or point VIDSEEK_NATS_URL at a server)",
                    binary.display()
                )
            })?;
        let mut lines = BufReader::new(child.stderr.take().expect("piped")).lines();
        let mut log = vec![];
        let found = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
                    return rest
                        .trim()
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.parse::<u16>().ok());
                }
                log.push(line);
            }
            None
        })
        .await;
        let Ok(Some(port)) = found else {
            let _ = child.kill().await;
            bail!("nats-server did not start:\n{}", log.join("\n"));
        };
        // Keep draining its log so the pipe never blocks the server.
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                tracing::debug!(target: "nats-server", "{line}");
            }
        });
        Ok(NatsServer {
            child,
            url: format!("nats://{host}:{port}"),
            host: host.to_string(),
            port,
            store_dir: store_dir.to_path_buf(),
        })
    }

    /// Keeps the server running until `stop` fires, then stops it. A server
    /// that exits on its own is started again on the same port and store;
    /// when that fails `RESTART_ATTEMPTS` times in a row, `failed` is
    /// cancelled (the stack shuts down) and the error says why.
    pub async fn supervise(
        mut self,
        stop: CancellationToken,
        failed: CancellationToken,
    ) -> anyhow::Result<()> {
        loop {
            let status = tokio::select! {
                _ = stop.cancelled() => {
                    self.stop().await;
                    return Ok(());
                }
                status = self.child.wait() => status,
            };
            let status = status.map_or_else(|e| e.to_string(), |s| s.to_string());
            tracing::error!(%status, url = self.url, "nats-server exited; restarting it");
            let mut last_error = None;
            for attempt in 1..=RESTART_ATTEMPTS {
                let addr = format!("{}:{}", self.host, self.port);
                match NatsServer::start(&addr, &self.store_dir).await {
                    Ok(server) => {
                        tracing::info!(url = server.url, attempt, "nats-server restarted");
                        self = server;
                        last_error = None;
                        break;
                    }
                    Err(err) => {
                        tracing::warn!(attempt, error = %format!("{err:#}"), "nats-server restart failed");
                        last_error = Some(err);
                        tokio::time::sleep(Duration::from_millis(500 * u64::from(attempt))).await;
                    }
                }
            }
            if let Some(err) = last_error {
                failed.cancel();
                return Err(err.context(format!(
                    "the embedded nats-server ({}) exited ({status}) and could not be restarted",
                    self.url
                )));
            }
        }
    }

    pub async fn stop(&mut self) {
        // SIGTERM lets JetStream flush; kill if it does not exit in time.
        if let Some(pid) = self.child.id() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status()
                .await;
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            let _ = self.child.kill().await;
        }
    }
}
