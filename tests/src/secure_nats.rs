//! A nats-server locked down as a production one would be: a user per role
//! with exactly the permissions of `vidseek_bus::access` (or a single
//! token), and optionally TLS with a throwaway CA made by `openssl` for the
//! test. One per test, on a random loopback port.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use vidseek_bus::NatsAccess;
use vidseek_bus::access::{self, Role, Secret};

/// Certificates signed by a CA made for one test.
pub struct TestPki {
    pub ca: PathBuf,
    pub server_cert: PathBuf,
    pub server_key: PathBuf,
    pub client_cert: PathBuf,
    pub client_key: PathBuf,
}

impl TestPki {
    /// A CA, a server certificate for 127.0.0.1 and a client certificate,
    /// written under `dir` by the `openssl` command.
    pub fn generate(dir: &Path) -> TestPki {
        let path = |name: &str| dir.join(name);
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-keyout",
                "ca.key",
                "-out",
                "ca.pem",
                "-days",
                "1",
                "-subj",
                "/CN=vidseek test CA",
            ],
        );
        for (name, usage) in [("server", "serverAuth"), ("client", "clientAuth")] {
            let ext = path(&format!("{name}.ext"));
            std::fs::write(
                &ext,
                format!("subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage={usage}\n"),
            )
            .unwrap();
            let (key, csr, pem) = (
                format!("{name}.key"),
                format!("{name}.csr"),
                format!("{name}.pem"),
            );
            openssl(
                dir,
                &[
                    "req",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-keyout",
                    &key,
                    "-out",
                    &csr,
                    "-subj",
                    &format!("/CN=vidseek {name}"),
                ],
            );
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &csr,
                    "-CA",
                    "ca.pem",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "1",
                    "-out",
                    &pem,
                    "-extfile",
                    &format!("{name}.ext"),
                ],
            );
        }
        TestPki {
            ca: path("ca.pem"),
            server_cert: path("server.pem"),
            server_key: path("server.key"),
            client_cert: path("client.pem"),
            client_key: path("client.key"),
        }
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run openssl: {e} (install it with deploy/setup.sh or apt-get install openssl)")
        });
    assert!(
        output.status.success(),
        "openssl {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// How clients must authenticate.
pub enum Auth {
    /// A user per role, with its permissions.
    Roles,
    /// One shared token, full permissions.
    Token(&'static str),
}

/// TLS the server requires.
pub struct Tls<'a> {
    pub pki: &'a TestPki,
    /// Also require a client certificate signed by the CA.
    pub verify_clients: bool,
}

pub struct SecureNats {
    child: Child,
    port: u16,
    passwords: Vec<(Role, Secret)>,
    _dir: tempfile::TempDir,
}

impl SecureNats {
    pub fn start(auth: Auth, tls: Option<Tls<'_>>) -> SecureNats {
        let dir = tempfile::tempdir().expect("temp dir for nats-server");
        let passwords: Vec<(Role, Secret)> = Role::ALL
            .iter()
            .map(|role| {
                (
                    *role,
                    Secret::new(format!("{}-{}", role.user(), std::process::id())),
                )
            })
            .collect();
        let mut config = match auth {
            Auth::Roles => {
                let users: Vec<access::User<'_>> = passwords
                    .iter()
                    .map(|(role, password)| access::User {
                        role: *role,
                        password,
                    })
                    .collect();
                access::authorization_config(&users)
            }
            Auth::Token(token) => serde_json::json!({ "authorization": { "token": token } }),
        };
        if let Some(tls) = tls {
            config["tls"] = serde_json::json!({
                "cert_file": tls.pki.server_cert,
                "key_file": tls.pki.server_key,
                "ca_file": tls.pki.ca,
                "verify": tls.verify_clients,
            });
        }
        let config_path = dir.path().join("nats-server.conf");
        std::fs::write(&config_path, config.to_string()).unwrap();
        let bin = std::env::var("NATS_SERVER_BIN").unwrap_or_else(|_| "nats-server".into());
        let mut child = Command::new(&bin)
            .arg("-c")
            .arg(&config_path)
            .args(["-a", "127.0.0.1", "-p", "-1", "-js", "-sd"])
            .arg(dir.path().join("store"))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {bin}: {e}"));
        let port = crate::nats::read_client_port(&mut child);
        SecureNats {
            child,
            port,
            passwords,
            _dir: dir,
        }
    }

    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    pub fn password(&self, role: Role) -> Secret {
        self.passwords
            .iter()
            .find(|(r, _)| *r == role)
            .map(|(_, p)| p.clone())
            .expect("a password per role")
    }

    /// How `role` connects (password, own inbox prefix).
    pub fn access(&self, role: Role) -> NatsAccess {
        NatsAccess::for_role(role, self.password(role))
    }
}

impl Drop for SecureNats {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
