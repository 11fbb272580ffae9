//! The embedded stack (`vidseek up`) as a child process: its own data
//! directory, random HTTP and NATS ports, the real model pack.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use crate::paths::model_env;
pub use crate::paths::{sample, vidseek_bin, workspace_root};

pub struct EmbeddedStack {
    child: Child,
    pub http: String,
    pub nats_url: String,
    pub data_dir: tempfile::TempDir,
    log: PathBuf,
}

impl EmbeddedStack {
    /// Starts `vidseek up` with `media_root` as the only media root and
    /// waits for its ready line.
    pub fn start(media_root: &Path) -> EmbeddedStack {
        EmbeddedStack::start_with_env(media_root, &[])
    }

    /// As [`EmbeddedStack::start`], with extra environment variables.
    pub fn start_with_env(media_root: &Path, env: &[(&str, &std::ffi::OsStr)]) -> EmbeddedStack {
        let data_dir = tempfile::tempdir().expect("temp data dir");
        let log = data_dir.path().join("vidseek.log");
        let mut command = Command::new(vidseek_bin());
        command
            .arg("up")
            .env("VIDSEEK_DATA_DIR", data_dir.path())
            .env("VIDSEEK_HTTP_ADDR", "127.0.0.1:0")
            .env("VIDSEEK_NATS_ADDR", "127.0.0.1:0")
            .env("VIDSEEK_SAMPLES", "0")
            .env("VIDSEEK_MEDIA_ROOTS", media_root)
            .env_remove("VIDSEEK_NATS_URL")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command.envs(model_env());
        command.envs(env.iter().copied());
        let mut child = command.spawn().expect("start vidseek up");
        let stderr = child.stderr.take().expect("piped");
        let (ready_tx, ready) = mpsc::channel();
        let log_path = log.clone();
        // Copy the log to a file (shown when a test fails) and report the
        // ready line.
        std::thread::spawn(move || {
            let mut file = std::fs::File::create(&log_path).expect("log file");
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                use std::io::Write;
                let _ = writeln!(file, "{line}");
                if line.starts_with("vidseek ready: ") {
                    let _ = ready_tx.send(line);
                }
            }
        });
        let mut stack = EmbeddedStack {
            child,
            http: String::new(),
            nats_url: String::new(),
            data_dir,
            log,
        };
        let line = match ready.recv_timeout(Duration::from_secs(180)) {
            Ok(line) => line,
            Err(_) => panic!("vidseek up did not become ready:\n{}", stack.log()),
        };
        // "vidseek ready: http://HOST:PORT (... NATS nats://HOST:PORT)"
        stack.http = line
            .split_whitespace()
            .nth(2)
            .expect("http url in the ready line")
            .to_string();
        stack.nats_url = line
            .split("NATS ")
            .nth(1)
            .and_then(|rest| rest.strip_suffix(')'))
            .expect("nats url in the ready line")
            .to_string();
        stack
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.http)
    }

    /// The operator's NATS password, which `vidseek up` generated in the
    /// data directory (its embedded nats-server refuses anonymous clients).
    pub fn operator_password(&self) -> String {
        let file = self.data_dir.path().join("nats-auth/operator");
        std::fs::read_to_string(&file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()))
            .trim()
            .to_string()
    }

    /// A NATS client of this stack, connected as the operator.
    pub async fn nats_client(&self) -> async_nats::Client {
        async_nats::ConnectOptions::with_user_and_password(
            "operator".into(),
            self.operator_password(),
        )
        .connect(&self.nats_url)
        .await
        .expect("connect to the stack's NATS as the operator")
    }

    /// Environment for a `vidseek` client command run against this stack:
    /// its NATS, and its data directory, where the command finds the
    /// operator's credentials by itself.
    pub fn client_env(&self) -> [(&'static str, std::ffi::OsString); 2] {
        [
            ("VIDSEEK_NATS_URL", self.nats_url.clone().into()),
            ("VIDSEEK_DATA_DIR", self.data_dir.path().into()),
        ]
    }

    /// The stack's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Submits a server-side file over `POST /api/v1/videos`; returns its
    /// video id.
    pub async fn submit(&self, http: &reqwest::Client, path: &Path) -> String {
        let accepted: serde_json::Value = http
            .post(self.url("/api/v1/videos"))
            .json(&serde_json::json!({ "path": path }))
            .send()
            .await
            .expect("POST /api/v1/videos")
            .json()
            .await
            .expect("a JSON answer");
        assert_eq!(accepted["status"], "queued", "{accepted}");
        accepted["video_id"]
            .as_str()
            .expect("a video id")
            .to_string()
    }

    /// Waits until video `id` is ready and returns its record; panics when
    /// its ingest fails or takes over three minutes.
    pub async fn wait_ready(&self, http: &reqwest::Client, id: &str) -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(180);
        loop {
            let record: serde_json::Value = http
                .get(self.url(&format!("/api/v1/videos/{id}")))
                .send()
                .await
                .expect("GET /api/v1/videos/{id}")
                .json()
                .await
                .expect("a JSON answer");
            match record["status"].as_str() {
                Some("ready") => return record,
                Some("failed") => panic!("ingest failed: {record}"),
                _ if std::time::Instant::now() > deadline => panic!("ingest too slow: {record}"),
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
    }

    /// [`EmbeddedStack::submit`], then [`EmbeddedStack::wait_ready`].
    pub async fn ingest_and_wait(&self, http: &reqwest::Client, path: &Path) -> String {
        let id = self.submit(http, path).await;
        self.wait_ready(http, &id).await;
        id
    }

    /// Process id of `vidseek up`.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits up to `timeout` for `vidseek up` to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }
}

impl Drop for EmbeddedStack {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("--- vidseek up log ---\n{}", self.log());
        }
        // SIGTERM first: `up` stops its child nats-server on the way out.
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        for _ in 0..100 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
