//! Who may do what on NATS, and how a process proves who it is.
//!
//! [`Role`] names every identity vidseek connects as and [`Role::permissions`]
//! is the one place that says which subjects each may publish to and
//! subscribe to: the embedded nats-server's configuration is written from it
//! ([`authorization_config`]) and a fleet's server can be configured the same
//! way. The lists are derived from `vidseek_protocol::subjects` and the
//! streams of [`crate::streams`], so a subject renamed there is renamed here.
//! [`NatsAccess`] holds a process's credentials and TLS settings, and
//! [`crate::connect`] uses it.

use std::fmt;
use std::path::PathBuf;

use vidseek_protocol::subjects;

use crate::media_store;

/// An identity on the bus. Each role of the stack connects as its own user,
/// so a compromised or buggy role can do only what its work needs.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Role {
    /// HTTP/WebSocket front door: asks for searches, ingests and deletes;
    /// reads the catalog and the segment log; writes neither. Reads
    /// thumbnails and writes uploads when they live in NATS.
    Gateway,
    /// Query stage: answers searches by asking encoders and ranker shards.
    Query,
    /// Encoder workers: answer encode requests, nothing else.
    Encoder,
    /// Ranker shards: answer rank requests and replay the segment log.
    Ranker,
    /// Ingest workers: the only writers of the segment log, the catalog,
    /// the ingest job queue and the thumbnails.
    Ingest,
    /// The operator (and `vidseek up` itself): everything, as the command
    /// line client and the `nats` CLI need.
    Operator,
}

/// What one user may publish to and subscribe to (NATS subject patterns).
/// Anything not listed is refused by the server with a permissions violation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Permissions {
    pub publish: Vec<String>,
    pub subscribe: Vec<String>,
}

/// Every request-reply answer goes to the asker's inbox, so whoever answers
/// requests publishes there.
const ANY_INBOX: &str = "_INBOX.>";
/// Where service discovery (`$SRV.PING|INFO|STATS`, e.g. `nats micro ls`)
/// reaches every service.
const SERVICE_DISCOVERY: &str = "$SRV.>";
/// Flow-control replies of the push consumers behind key-value listings.
const FLOW_CONTROL: &str = "$JS.FC.>";

impl Role {
    pub const ALL: [Role; 6] = [
        Role::Gateway,
        Role::Query,
        Role::Encoder,
        Role::Ranker,
        Role::Ingest,
        Role::Operator,
    ];

    /// The user name this role connects as.
    pub fn user(self) -> &'static str {
        match self {
            Role::Gateway => "gateway",
            Role::Query => "query",
            Role::Encoder => "encoder",
            Role::Ranker => "ranker",
            Role::Ingest => "ingest",
            Role::Operator => "operator",
        }
    }

    /// Prefix of this role's reply inboxes. Each role subscribes only to its
    /// own, so no role can read the answers meant for another.
    pub fn inbox_prefix(self) -> String {
        format!("_INBOX.{}", self.user())
    }

    pub fn permissions(self) -> Permissions {
        let own_inbox = format!("{}.>", self.inbox_prefix());
        let (publish, subscribe): (Vec<String>, Vec<String>) = match self {
            Role::Gateway => (
                [
                    subjects::SEARCH_STREAM,
                    subjects::SCORES,
                    subjects::HEALTH,
                    subjects::INGEST,
                    subjects::INGEST_DELETE,
                ]
                .map(String::from)
                .into_iter()
                .chain(stream_setup())
                .chain(catalog_reads())
                .chain(segment_log_reads())
                .chain(object_reads(media_store::THUMBS_BUCKET))
                .chain(object_reads(media_store::UPLOADS_BUCKET))
                .chain(object_writes(media_store::UPLOADS_BUCKET))
                .collect(),
                vec![own_inbox],
            ),
            Role::Query => (
                [
                    ANY_INBOX,
                    subjects::ENCODE_TEXT,
                    subjects::ENCODE_IMAGE,
                    subjects::RANK_ALL,
                ]
                .map(String::from)
                .into(),
                [
                    subjects::SEARCH,
                    subjects::SEARCH_TEXT,
                    subjects::SEARCH_IMAGE,
                    subjects::SEARCH_STREAM,
                    subjects::SCORES,
                    subjects::HEALTH,
                    SERVICE_DISCOVERY,
                ]
                .map(String::from)
                .into_iter()
                .chain([own_inbox])
                .collect(),
            ),
            Role::Encoder => (
                vec![ANY_INBOX.into()],
                [
                    subjects::ENCODE_TEXT,
                    subjects::ENCODE_IMAGE,
                    SERVICE_DISCOVERY,
                ]
                .map(String::from)
                .into(),
            ),
            Role::Ranker => (
                [ANY_INBOX.to_string()]
                    .into_iter()
                    .chain(stream_setup())
                    .chain(segment_log_reads())
                    .collect(),
                vec![
                    subjects::RANK_ALL.into(),
                    SERVICE_DISCOVERY.into(),
                    own_inbox,
                ],
            ),
            Role::Ingest => (
                [
                    ANY_INBOX,
                    subjects::ENCODE_TEXT,
                    subjects::ENCODE_IMAGE,
                    subjects::INGEST_JOBS_SUBJECT,
                    "vidseek.v1.segments.>",
                ]
                .map(String::from)
                .into_iter()
                .chain([format!("$KV.{}.>", subjects::VIDEOS_BUCKET)])
                .chain([js_api("STREAM.PURGE", subjects::SEGMENTS_STREAM)])
                .chain(stream_setup())
                .chain(catalog_reads())
                .chain(segment_log_reads())
                .chain(job_queue_consumer())
                .chain(object_writes(media_store::THUMBS_BUCKET))
                .chain(object_reads(media_store::UPLOADS_BUCKET))
                .chain(object_writes(media_store::UPLOADS_BUCKET))
                .collect(),
                vec![
                    subjects::INGEST.into(),
                    subjects::INGEST_DELETE.into(),
                    SERVICE_DISCOVERY.into(),
                    own_inbox,
                ],
            ),
            Role::Operator => (vec![">".into()], vec![">".into()]),
        };
        Permissions { publish, subscribe }
    }
}

fn js_api(operation: &str, target: &str) -> String {
    format!("$JS.API.{operation}.{target}")
}

/// What [`crate::streams::ensure_all`] asks: look up each stream and create
/// it when missing. Updating or deleting a stream is the operator's.
fn stream_setup() -> Vec<String> {
    [
        subjects::INGEST_JOBS_STREAM.to_string(),
        subjects::SEGMENTS_STREAM.to_string(),
        crate::streams::videos_bucket_stream(),
        media_store::bucket_stream(media_store::THUMBS_BUCKET),
        media_store::bucket_stream(media_store::UPLOADS_BUCKET),
    ]
    .iter()
    .flat_map(|stream| {
        [
            js_api("STREAM.INFO", stream),
            js_api("STREAM.CREATE", stream),
        ]
    })
    .collect()
}

/// Reading the catalog: direct gets of single keys, the stream's subject
/// list that lists the keys, and ephemeral consumers that watch them.
fn catalog_reads() -> Vec<String> {
    let stream = crate::streams::videos_bucket_stream();
    let mut allowed = vec![
        js_api("DIRECT.GET", &format!("{stream}.>")),
        js_api("STREAM.INFO", &stream),
    ];
    allowed.extend(ephemeral_consumers(&stream));
    allowed.push(FLOW_CONTROL.into());
    allowed
}

/// Replaying the segment log through ordered consumers.
fn segment_log_reads() -> Vec<String> {
    ephemeral_consumers(subjects::SEGMENTS_STREAM)
}

/// Reading objects of an object store bucket by direct gets (see
/// [`media_store::MediaStore::get`]): a record by its subject, the next
/// chunk by a request to the stream itself.
fn object_reads(bucket: &str) -> Vec<String> {
    let stream = media_store::bucket_stream(bucket);
    vec![
        js_api("DIRECT.GET", &format!("{stream}.>")),
        js_api("DIRECT.GET", &stream),
    ]
}

/// Putting and deleting objects: publishing chunks and metadata, looking up
/// what a name held (a direct get) and purging the chunks it replaces.
fn object_writes(bucket: &str) -> Vec<String> {
    let stream = media_store::bucket_stream(bucket);
    vec![
        format!("$O.{bucket}.>"),
        js_api("DIRECT.GET", &format!("{stream}.>")),
        js_api("STREAM.PURGE", &stream),
    ]
}

/// Creating, pulling from, inspecting and removing consumers of `stream`.
fn ephemeral_consumers(stream: &str) -> Vec<String> {
    vec![
        js_api("CONSUMER.CREATE", stream),
        js_api("CONSUMER.CREATE", &format!("{stream}.>")),
        js_api("CONSUMER.MSG.NEXT", &format!("{stream}.*")),
        js_api("CONSUMER.INFO", &format!("{stream}.*")),
        js_api("CONSUMER.DELETE", &format!("{stream}.*")),
    ]
}

/// The ingest workers' durable consumer of the job queue, and their acks
/// (done, failed, still working).
fn job_queue_consumer() -> Vec<String> {
    let consumer = format!(
        "{}.{}",
        subjects::INGEST_JOBS_STREAM,
        subjects::INGEST_JOBS_CONSUMER
    );
    vec![
        js_api("CONSUMER.INFO", &consumer),
        js_api("CONSUMER.CREATE", &consumer),
        js_api("CONSUMER.CREATE", &format!("{consumer}.>")),
        js_api("CONSUMER.DURABLE.CREATE", &consumer),
        js_api("CONSUMER.MSG.NEXT", &consumer),
        format!("$JS.ACK.{consumer}.>"),
    ]
}

/// A user of the generated server configuration: a role and its password.
pub struct User<'a> {
    pub role: Role,
    pub password: &'a Secret,
}

/// The `authorization` block of a nats-server configuration giving each of
/// `users` exactly [`Role::permissions`]. JSON is valid nats-server
/// configuration syntax, and quoting every string keeps `$JS...` subjects
/// from being read as variables.
pub fn authorization_config(users: &[User<'_>]) -> serde_json::Value {
    let users: Vec<serde_json::Value> = users
        .iter()
        .map(|user| {
            let permissions = user.role.permissions();
            serde_json::json!({
                "user": user.role.user(),
                "password": user.password.expose(),
                "permissions": {
                    "publish": { "allow": permissions.publish },
                    "subscribe": { "allow": permissions.subscribe },
                },
            })
        })
        .collect();
    serde_json::json!({ "authorization": { "users": users } })
}

/// A secret string that never shows in `Debug` output or logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send or store it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// How a process authenticates to NATS and whether it trusts the server,
/// as a fleet configures it (`VIDSEEK_NATS_*`). Empty: no credentials and
/// plain TCP unless the server asks for TLS.
#[derive(Clone, Debug, Default)]
pub struct NatsAccess {
    pub user: Option<String>,
    pub password: Option<Secret>,
    pub token: Option<Secret>,
    /// A `.creds` file (user JWT and NKey seed), as `nsc` writes them.
    pub creds_file: Option<PathBuf>,
    /// An NKey seed (`SU...`) for a user the server knows by its public key.
    pub nkey_seed: Option<Secret>,
    /// PEM file of the CA that signed the server's certificate.
    pub tls_ca: Option<PathBuf>,
    /// PEM client certificate and key, for servers that verify clients.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Refuse to talk to a server that does not offer TLS.
    pub require_tls: bool,
    /// Reply inboxes under this prefix instead of `_INBOX` (see
    /// [`Role::inbox_prefix`]).
    pub inbox_prefix: Option<String>,
}

impl NatsAccess {
    /// Password authentication as `role`, with its own inbox prefix.
    pub fn for_role(role: Role, password: Secret) -> NatsAccess {
        NatsAccess {
            user: Some(role.user().to_string()),
            password: Some(password),
            inbox_prefix: Some(role.inbox_prefix()),
            ..NatsAccess::default()
        }
    }

    /// True when any credential is set.
    pub fn has_credentials(&self) -> bool {
        self.user.is_some()
            || self.token.is_some()
            || self.creds_file.is_some()
            || self.nkey_seed.is_some()
    }

    /// Connect options carrying these settings. `creds` is the content of
    /// [`NatsAccess::creds_file`], read once by the caller.
    pub(crate) fn options(
        &self,
        creds: Option<&str>,
    ) -> std::io::Result<async_nats::ConnectOptions> {
        let mut options = async_nats::ConnectOptions::new();
        if let Some(creds) = creds {
            options = options.credentials(creds)?;
        }
        if let (Some(user), password) = (&self.user, &self.password) {
            let password = password.as_ref().map_or("", Secret::expose);
            options = options.user_and_password(user.clone(), password.to_string());
        }
        if let Some(token) = &self.token {
            options = options.token(token.expose().to_string());
        }
        if let Some(seed) = &self.nkey_seed {
            options = options.nkey(seed.expose().to_string());
        }
        if let Some(ca) = &self.tls_ca {
            options = options.add_root_certificates(ca.clone());
        }
        if let (Some(cert), Some(key)) = (&self.tls_cert, &self.tls_key) {
            options = options.add_client_certificate(cert.clone(), key.clone());
        }
        if let Some(prefix) = &self.inbox_prefix {
            options = options.custom_inbox_prefix(prefix);
        }
        Ok(options.require_tls(self.require_tls))
    }
}

/// Why a process could not connect to NATS, with what to do about it.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "NATS at {url} refused the credentials ({source}): set VIDSEEK_NATS_USER and VIDSEEK_NATS_PASSWORD, VIDSEEK_NATS_TOKEN, VIDSEEK_NATS_CREDS or VIDSEEK_NATS_NKEY to an account the server knows (the embedded stack's are in DATA_DIR/nats-auth/)"
    )]
    Refused {
        url: String,
        source: async_nats::ConnectError,
    },
    #[error(
        "TLS with NATS at {url} failed ({source}): set VIDSEEK_NATS_TLS_CA to the CA that signed the server's certificate (and VIDSEEK_NATS_TLS_CERT/VIDSEEK_NATS_TLS_KEY if it asks for a client certificate)"
    )]
    Tls {
        url: String,
        source: async_nats::ConnectError,
    },
    #[error("cannot reach NATS at {url}: {source}")]
    Unreachable {
        url: String,
        source: async_nats::ConnectError,
    },
    #[error("cannot read the NATS credentials file {path}: {source}", path = path.display())]
    CredsFile {
        path: PathBuf,
        source: std::io::Error,
    },
}

impl ConnectError {
    /// Classifies a failed attempt; `Err` (the error back) when it is worth
    /// retrying: the server may still be starting.
    pub(crate) fn classify(
        url: &str,
        source: async_nats::ConnectError,
    ) -> Result<ConnectError, async_nats::ConnectError> {
        use async_nats::ConnectErrorKind as Kind;
        let url = url.to_string();
        match source.kind() {
            Kind::AuthorizationViolation | Kind::Authentication => {
                Ok(ConnectError::Refused { url, source })
            }
            Kind::Tls => Ok(ConnectError::Tls { url, source }),
            // A failed handshake (an unknown CA, a server without TLS) comes
            // back as an I/O error wrapping the TLS library's.
            Kind::Io if is_tls_failure(&source) => Ok(ConnectError::Tls { url, source }),
            Kind::ServerParse => Ok(ConnectError::Unreachable { url, source }),
            Kind::Dns | Kind::TimedOut | Kind::Io | Kind::MaxReconnects => Err(source),
        }
    }
}

fn is_tls_failure(error: &async_nats::ConnectError) -> bool {
    let mut cause = std::error::Error::source(error);
    while let Some(error) = cause {
        if error.is::<async_nats::rustls::Error>()
            || error
                .downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .is_some_and(|inner| inner.is::<async_nats::rustls::Error>())
        {
            return true;
        }
        cause = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ingest_writes_the_segment_log_and_the_catalog() {
        let catalog_write = format!("$KV.{}.>", subjects::VIDEOS_BUCKET);
        for role in Role::ALL {
            let publish = role.permissions().publish;
            let writes = publish.contains(&"vidseek.v1.segments.>".to_string())
                && publish.contains(&catalog_write);
            let expected = matches!(role, Role::Ingest);
            assert_eq!(writes, expected, "{role:?}");
            if !matches!(role, Role::Ingest | Role::Operator) {
                assert!(
                    !publish
                        .iter()
                        .any(|s| s.starts_with("vidseek.v1.segments") || s.starts_with("$KV.")),
                    "{role:?}: {publish:?}"
                );
            }
        }
    }

    #[test]
    fn roles_subscribe_to_their_own_inboxes_only() {
        for role in [Role::Gateway, Role::Query, Role::Ranker, Role::Ingest] {
            let subscribe = role.permissions().subscribe;
            assert!(subscribe.contains(&format!("_INBOX.{}.>", role.user())));
            assert!(!subscribe.contains(&ANY_INBOX.to_string()), "{role:?}");
        }
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let access = NatsAccess::for_role(Role::Gateway, Secret::new("hunter2"));
        let shown = format!("{access:?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("gateway"), "{shown}");
    }

    #[test]
    fn server_config_quotes_every_subject() {
        let password = Secret::new("pw");
        let config = authorization_config(&[User {
            role: Role::Ingest,
            password: &password,
        }]);
        let text = config.to_string();
        assert!(
            text.contains("\"$JS.API.STREAM.PURGE.VIDSEEK_SEGMENTS\""),
            "{text}"
        );
        assert_eq!(config["authorization"]["users"][0]["user"], "ingest");
    }
}
