//! The child nats-server of the embedded stack: JetStream stored under the
//! data directory, restarted on the same port if it dies (clients reconnect
//! and JetStream reopens its store), stopped with the stack.
//!
//! It never runs open: on first start [`Credentials::prepare`] generates a
//! password per role in `DATA_DIR/nats-auth/` (readable by the owner only)
//! and writes the server configuration giving each role exactly the
//! permissions of `vidseek_bus::access`; the operator's password is the one
//! the command-line client and the `nats` CLI use.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use vidseek_bus::access::{self, NatsAccess, Role, Secret};

/// Restarts tried in a row before the stack gives up on its nats-server.
const RESTART_ATTEMPTS: u32 = 3;

pub struct NatsServer {
    child: Child,
    pub url: String,
    /// Where it listens and stores, to start it again the same way.
    host: String,
    port: u16,
    store_dir: PathBuf,
    config: PathBuf,
}

/// The embedded server's users: one generated password per [`Role`].
pub struct Credentials {
    passwords: Vec<(Role, Secret)>,
    /// The nats-server configuration written from them.
    pub config: PathBuf,
}

/// Where the embedded server's credentials and configuration live.
pub fn credentials_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("nats-auth")
}

/// The file holding `role`'s password (the operator's is
/// `DATA_DIR/nats-auth/operator`).
pub fn password_file(data_dir: &Path, role: Role) -> PathBuf {
    credentials_dir(data_dir).join(role.user())
}

/// The embedded server's password for `role`, if `vidseek up` generated one
/// in this data directory and it is readable.
pub fn stored_password(data_dir: &Path, role: Role) -> Option<Secret> {
    let text = std::fs::read_to_string(password_file(data_dir, role)).ok()?;
    let password = text.trim();
    (!password.is_empty()).then(|| Secret::new(password))
}

impl Credentials {
    /// Reads the passwords in `data_dir`, generating those missing, and
    /// (re)writes the server configuration, so permissions follow the code
    /// of this version while passwords stay stable across restarts.
    pub fn prepare(data_dir: &Path) -> anyhow::Result<Credentials> {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        let dir = credentials_dir(data_dir);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        // Tighten a directory made by hand or by an older version.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict {}", dir.display()))?;
        let mut passwords = Vec::with_capacity(Role::ALL.len());
        for role in Role::ALL {
            let password = match stored_password(data_dir, role) {
                Some(password) => password,
                None => {
                    let password = Secret::new(random_password()?);
                    write_private(&password_file(data_dir, role), password.expose())?;
                    password
                }
            };
            passwords.push((role, password));
        }
        let users: Vec<access::User<'_>> = passwords
            .iter()
            .map(|(role, password)| access::User {
                role: *role,
                password,
            })
            .collect();
        let config = dir.join("nats-server.conf");
        let text = serde_json::to_string_pretty(&access::authorization_config(&users))
            .expect("a JSON value always serialises");
        write_private(&config, &text)?;
        Ok(Credentials { passwords, config })
    }

    /// How `role` connects to the embedded server.
    pub fn access(&self, role: Role) -> NatsAccess {
        let password = self
            .passwords
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, p)| p.clone())
            .expect("a password for every role");
        NatsAccess::for_role(role, password)
    }
}

/// 192 random bits, hex-encoded.
fn random_password() -> anyhow::Result<String> {
    use std::io::Read;
    let mut bytes = [0u8; 24];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("cannot read /dev/urandom for a NATS password")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Writes `text` to `path` readable by the owner only, replacing it whole
/// (a crash mid-write leaves the old file).
fn write_private(path: &Path, text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let partial = path.with_extension("partial");
    let _ = std::fs::remove_file(&partial);
    let written = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&partial)
        .and_then(|mut file| {
            file.write_all(text.as_bytes())?;
            file.sync_all()
        })
        .and_then(|()| std::fs::rename(&partial, path));
    written.with_context(|| format!("cannot write {}", path.display()))
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
    /// Starts nats-server on `addr` (`host:port`, port 0 for any free port)
    /// with the users and permissions of `config` (see [`Credentials`]).
    pub async fn start(addr: &str, store_dir: &Path, config: &Path) -> anyhow::Result<NatsServer> {
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
            .arg("-c")
            .arg(config)
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
            config: config.to_path_buf(),
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
                match NatsServer::start(&addr, &self.store_dir, &self.config).await {
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
