//! A real `nats-server` with JetStream, one per test: a random port and its
//! own store directory, so tests run in parallel without sharing state.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct NatsServer {
    child: Child,
    port: u16,
    _store: tempfile::TempDir,
}

impl NatsServer {
    /// Starts `nats-server` (from `NATS_SERVER_BIN` or `PATH`) and waits until
    /// it accepts clients. Panics with a hint when the binary is missing.
    pub fn start() -> NatsServer {
        let store = tempfile::tempdir().expect("temp dir for JetStream");
        let (child, port) = spawn(store.path(), "-1");
        NatsServer {
            child,
            port,
            _store: store,
        }
    }

    /// SIGKILLs the server (a crash: nothing flushed on the way out) and
    /// starts it again on the same port with the same JetStream store, as a
    /// supervisor would.
    pub fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, port) = spawn(self._store.path(), &self.port.to_string());
        assert_eq!(port, self.port, "nats-server came back on another port");
        self.child = child;
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Connects a client to this server.
    pub async fn client(&self) -> async_nats::Client {
        async_nats::connect(self.url())
            .await
            .expect("connect to the test nats-server")
    }

    pub fn store_dir(&self) -> &Path {
        self._store.path()
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `nats-server` on `port` ("-1": a random one) storing JetStream in
/// `store`; returns it and the port it listens on.
fn spawn(store: &Path, port: &str) -> (Child, u16) {
    let bin = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into());
    let mut child = Command::new(&bin)
        .args(["-a", "127.0.0.1", "-p", port, "-js", "-sd"])
        .arg(store)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot start {bin}: {e} (install it with deploy/setup.sh or apt-get install nats-server)")
        });
    let port = read_client_port(&mut child);
    (child, port)
}

/// Reads the server's log until it says where it listens for clients; the
/// rest of the log is drained in the background so the pipe never fills.
pub(crate) fn read_client_port(child: &mut Child) -> u16 {
    let stderr = child.stderr.take().expect("piped stderr");
    let mut lines = BufReader::new(stderr).lines();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = vec![];
    while Instant::now() < deadline {
        let Some(Ok(line)) = lines.next() else { break };
        if let Some(rest) = line.split("Listening for client connections on ").nth(1) {
            let port = rest
                .trim()
                .rsplit(':')
                .next()
                .and_then(|p| p.parse().ok())
                .unwrap_or_else(|| panic!("unexpected nats-server line: {line}"));
            std::thread::spawn(move || lines.for_each(drop));
            return port;
        }
        seen.push(line);
    }
    panic!("nats-server did not start:\n{}", seen.join("\n"));
}
