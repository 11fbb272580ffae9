//! How the command's processes authenticate to NATS and trust its TLS:
//! the `VIDSEEK_NATS_*` settings a fleet gives every process, and, when none
//! is set, the passwords `vidseek up` generated in the data directory.

use std::convert::Infallible;
use std::path::{Path, PathBuf};

use clap::Args;
use vidseek_bus::access::{NatsAccess, Role, Secret};

use crate::embedded_nats;

/// Credentials and TLS for NATS. Secrets are best given as environment
/// variables (command lines are visible to other local users).
#[derive(Args, Clone, Debug, Default)]
pub struct NatsAccessArgs {
    /// NATS user name (with VIDSEEK_NATS_PASSWORD). Unset: the password
    /// `vidseek up` generated for the role in DATA_DIR/nats-auth/, if any.
    #[arg(long, global = true, env = "VIDSEEK_NATS_USER")]
    pub nats_user: Option<String>,
    /// NATS password of VIDSEEK_NATS_USER.
    #[arg(long, global = true, env = "VIDSEEK_NATS_PASSWORD", hide_env_values = true, value_parser = secret)]
    pub nats_password: Option<Secret>,
    /// NATS authentication token.
    #[arg(long, global = true, env = "VIDSEEK_NATS_TOKEN", hide_env_values = true, value_parser = secret)]
    pub nats_token: Option<Secret>,
    /// NATS credentials file (user JWT and NKey seed, as `nsc` writes it).
    #[arg(long, global = true, env = "VIDSEEK_NATS_CREDS")]
    pub nats_creds: Option<PathBuf>,
    /// NKey seed (`SU...`) of a NATS user known by its public key.
    #[arg(long, global = true, env = "VIDSEEK_NATS_NKEY", hide_env_values = true, value_parser = secret)]
    pub nats_nkey: Option<Secret>,
    /// PEM file of the CA that signed the NATS server's certificate.
    #[arg(long, global = true, env = "VIDSEEK_NATS_TLS_CA")]
    pub nats_tls_ca: Option<PathBuf>,
    /// PEM client certificate, for NATS servers that verify clients (with
    /// VIDSEEK_NATS_TLS_KEY).
    #[arg(
        long,
        global = true,
        env = "VIDSEEK_NATS_TLS_CERT",
        requires = "nats_tls_key"
    )]
    pub nats_tls_cert: Option<PathBuf>,
    /// PEM private key of VIDSEEK_NATS_TLS_CERT.
    #[arg(
        long,
        global = true,
        env = "VIDSEEK_NATS_TLS_KEY",
        requires = "nats_tls_cert"
    )]
    pub nats_tls_key: Option<PathBuf>,
    /// Refuse a NATS server that does not offer TLS.
    #[arg(long, global = true, env = "VIDSEEK_NATS_REQUIRE_TLS")]
    pub nats_require_tls: bool,
}

fn secret(value: &str) -> Result<Secret, Infallible> {
    Ok(Secret::new(value))
}

impl NatsAccessArgs {
    /// How a process running as `role` connects: the configured credentials,
    /// else the embedded stack's password for `role` in `data_dir`, else none.
    pub fn for_role(&self, role: Role, data_dir: &Path) -> NatsAccess {
        let mut access = NatsAccess {
            user: self.nats_user.clone(),
            password: self.nats_password.clone(),
            token: self.nats_token.clone(),
            creds_file: self.nats_creds.clone(),
            nkey_seed: self.nats_nkey.clone(),
            tls_ca: self.nats_tls_ca.clone(),
            tls_cert: self.nats_tls_cert.clone(),
            tls_key: self.nats_tls_key.clone(),
            require_tls: self.nats_require_tls,
            inbox_prefix: Some(role.inbox_prefix()),
        };
        if !access.has_credentials()
            && let Some(password) = embedded_nats::stored_password(data_dir, role)
        {
            access.user = Some(role.user().to_string());
            access.password = Some(password);
        }
        access
    }
}
