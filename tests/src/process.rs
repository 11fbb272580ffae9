//! vidseek roles as separate OS processes (`vidseek gateway`, `vidseek worker
//! --role ...`) on a test's own nats-server: what a fleet looks like, so tests
//! can SIGKILL one part and watch the rest carry on.
//!
//! Each process runs in its own process group, so killing it also kills the
//! ffmpeg children an ingest worker starts (a crashed machine loses those
//! too). Logs go to files in the fleet's temp directory and are printed when
//! the test panics.

use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::nats::NatsServer;
use crate::paths::model_env;
pub use crate::paths::{sample, vidseek_bin, workspace_root};

/// One vidseek process. Killed (with its process group) on drop.
pub struct Process {
    pub name: String,
    child: Child,
    log: PathBuf,
    /// Killed on purpose by the test: its exit is not a failure.
    killed: bool,
}

impl Process {
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Whether the process has exited.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }

    /// SIGKILLs the process and its children (ffmpeg) and reaps it.
    pub fn kill(&mut self) {
        self.killed = true;
        // The child leads its own group (process_group(0)), so -pid names
        // the group. `kill` rather than libc keeps the crate free of unsafe.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Freezes the process (SIGSTOP): it keeps its connections but answers
    /// nothing, so work routed to it piles up in flight, as on a machine
    /// that hangs before it dies.
    pub fn freeze(&mut self) {
        let status = Command::new("kill")
            .args(["-STOP", &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "cannot SIGSTOP {}", self.name);
    }

    /// Waits until a line of the log contains `needle`; returns that line.
    pub fn wait_for_line(&mut self, needle: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = self.log().lines().find(|l| l.contains(needle)) {
                return line.to_string();
            }
            if let Some(status) = self.exited() {
                panic!(
                    "{} exited ({status}) before logging {needle:?}:\n{}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < deadline,
                "{} did not log {needle:?} within {timeout:?}:\n{}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Settings shared by every process of a fleet.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    pub shards: u32,
    /// Seconds before an unacknowledged ingest job is redelivered.
    pub ingest_ack_wait_s: u64,
}

impl Default for FleetConfig {
    fn default() -> Self {
        FleetConfig {
            shards: 2,
            ingest_ack_wait_s: 30,
        }
    }
}

/// A nats-server plus any number of vidseek processes sharing one data
/// directory and one media root.
pub struct Fleet {
    // Processes are declared before the server so they are dropped (killed)
    // first and do not log reconnect noise.
    processes: Vec<Process>,
    pub nats: NatsServer,
    pub config: FleetConfig,
    dir: tempfile::TempDir,
    media_root: PathBuf,
    model_env: Vec<(&'static str, PathBuf)>,
    bin: PathBuf,
}

impl Fleet {
    /// Starts a nats-server; `media_root` is the only directory ingest may read.
    pub fn start(media_root: &Path, config: FleetConfig) -> Fleet {
        let bin = vidseek_bin();
        let model_env = model_env();
        let dir = tempfile::tempdir().expect("fleet temp dir");
        std::fs::create_dir_all(dir.path().join("data")).expect("data dir");
        std::fs::create_dir_all(dir.path().join("logs")).expect("logs dir");
        Fleet {
            processes: vec![],
            nats: NatsServer::start(),
            config,
            dir,
            media_root: media_root.to_path_buf(),
            model_env,
            bin,
        }
    }

    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// Starts `vidseek ARGS` with the fleet's environment; `name` labels its log.
    pub fn spawn(&mut self, name: &str, args: &[&str], extra_env: &[(&str, &str)]) -> usize {
        let log = self.dir.path().join("logs").join(format!(
            "{}-{}.log",
            self.processes.len(),
            name.replace([' ', '/'], "_")
        ));
        let file = std::fs::File::create(&log).expect("log file");
        let mut command = Command::new(&self.bin);
        command
            .args(args)
            .env("VIDSEEK_NATS_URL", self.nats.url())
            .env("VIDSEEK_DATA_DIR", self.data_dir())
            .env("VIDSEEK_SHARDS", self.config.shards.to_string())
            .env("VIDSEEK_MEDIA_ROOTS", &self.media_root)
            .env(
                "VIDSEEK_INGEST_ACK_WAIT_S",
                self.config.ingest_ack_wait_s.to_string(),
            )
            // Two cores and several encoders: one ONNX thread each keeps
            // them from fighting over the CPU.
            .env("VIDSEEK_ENCODER_THREADS", "1")
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info,ort=warn".into()),
            )
            // Plain text: the logs end up in files and test output.
            .env("NO_COLOR", "1")
            .env_remove("VIDSEEK_HTTP_ADDR")
            .env_remove("VIDSEEK_API_TOKEN")
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file handle"))
            .stderr(file)
            .process_group(0);
        for (key, value) in &self.model_env {
            command.env(key, value);
        }
        for (key, value) in extra_env {
            command.env(key, value);
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.bin.display()));
        self.processes.push(Process {
            name: name.to_string(),
            child,
            log,
            killed: false,
        });
        self.processes.len() - 1
    }

    /// Starts `vidseek worker --role ROLE [--shard N]`.
    pub fn worker(&mut self, role: &str, shard: Option<u32>) -> usize {
        let mut args = vec!["worker", "--role", role];
        let shard_arg = shard.map(|s| s.to_string());
        let name = match &shard_arg {
            Some(s) => {
                args.extend(["--shard", s.as_str()]);
                format!("{role}-shard{s}")
            }
            None => role.to_string(),
        };
        self.spawn(&name, &args, &[])
    }

    /// Starts `vidseek gateway` on a free port; returns its base URL.
    pub fn gateway(&mut self) -> String {
        self.gateway_on("127.0.0.1:0").1
    }

    /// Starts `vidseek gateway` listening on `address` (`host:port`, port 0
    /// for a free one); returns its process index and base URL.
    pub fn gateway_on(&mut self, address: &str) -> (usize, String) {
        let index = self.spawn("gateway", &["gateway"], &[("VIDSEEK_HTTP_ADDR", address)]);
        let line = self.processes[index]
            .wait_for_line("vidseek gateway: http://", Duration::from_secs(60));
        let url = line
            .split("vidseek gateway: ")
            .nth(1)
            .expect("gateway address")
            .trim()
            .to_string();
        (index, url)
    }

    pub fn process(&mut self, index: usize) -> &mut Process {
        &mut self.processes[index]
    }

    /// Waits until the query stage reports an encoder and every shard ready,
    /// failing early if a process died.
    pub async fn wait_until_ready(&mut self, client: &async_nats::Client, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            self.assert_all_running();
            let report = vidseek_bus::rpc::health(client, Duration::from_secs(3)).await;
            match report {
                Ok(report) if report.ready() => return,
                _ if Instant::now() > deadline => {
                    self.dump_logs();
                    panic!(
                        "the fleet was not ready within {timeout:?}; last health answer: {report:?}"
                    );
                }
                _ => {}
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Waits until video `id` is ready, asking the gateway at `base`, and
    /// returns its record; panics when its ingest fails, takes over 100 s or
    /// a process dies meanwhile.
    pub async fn wait_ready_over_http(
        &mut self,
        http: &reqwest::Client,
        base: &str,
        id: &str,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(100);
        loop {
            self.assert_all_running();
            let record: serde_json::Value = http
                .get(format!("{base}/api/v1/videos/{id}"))
                .send()
                .await
                .expect("GET video")
                .json()
                .await
                .expect("video JSON");
            match record["status"].as_str() {
                Some("ready") => return record,
                Some("failed") => panic!("video {id} failed: {record}"),
                _ => {}
            }
            assert!(
                Instant::now() < deadline,
                "video {id} not ready in time: {record}"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Panics (with the logs) if any process that was not killed has exited.
    pub fn assert_all_running(&mut self) {
        let dead: Vec<String> = self
            .processes
            .iter_mut()
            .filter(|p| !p.killed)
            .filter_map(|p| p.exited().map(|status| format!("{} ({status})", p.name)))
            .collect();
        if !dead.is_empty() {
            self.dump_logs();
            panic!("vidseek processes exited: {}", dead.join(", "));
        }
    }

    /// Kills process `index` (and its children) with SIGKILL.
    pub fn kill(&mut self, index: usize) {
        self.processes[index].kill();
    }

    /// Prints the log of every process to stderr (the test's output).
    pub fn dump_logs(&self) {
        for process in &self.processes {
            let log = process.log();
            // The tail is where a failure shows; whole logs drown it.
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(150)..];
            eprintln!(
                "----- {} (pid {}) log, last {} lines -----\n{}",
                process.name,
                process.pid(),
                tail.len(),
                tail.join("\n")
            );
        }
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.dump_logs();
        }
        for process in &mut self.processes {
            process.kill();
        }
    }
}
