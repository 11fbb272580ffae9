//! No one on the NATS plane does more than their credentials allow: a real
//! nats-server configured from `vidseek_bus::access` refuses unknown and
//! wrong credentials with an error that says what to set, holds each role
//! to its permissions (the gateway cannot write the segment log, a ranker
//! cannot write the catalog, no role reads another's replies), and speaks
//! TLS with a CA given by `VIDSEEK_NATS_TLS_CA`. The embedded stack runs
//! that way too and its command-line client finds the operator's password
//! by itself.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use async_nats::jetstream;
use tokio::sync::mpsc;
use vidseek_bus::access::{Role, Secret};
use vidseek_bus::{ConnectError, NatsAccess};
use vidseek_protocol::ingest::{VideoRecord, VideoStatus};
use vidseek_protocol::subjects;
use vidseek_tests::media::scene_video;
use vidseek_tests::secure_nats::{Auth, SecureNats, TestPki, Tls};
use vidseek_tests::stack::{EmbeddedStack, vidseek_bin};

const NO_RETRY: Duration = Duration::ZERO;

/// Connects as `role` and collects the server's errors (permission
/// violations arrive asynchronously, as `-ERR` lines).
async fn connect_watched(
    url: &str,
    role: Role,
    password: Secret,
) -> (async_nats::Client, mpsc::UnboundedReceiver<String>) {
    let (errors_tx, errors) = mpsc::unbounded_channel();
    let client = async_nats::ConnectOptions::with_user_and_password(
        role.user().into(),
        password.expose().into(),
    )
    .custom_inbox_prefix(role.inbox_prefix())
    .event_callback(move |event| {
        let errors_tx = errors_tx.clone();
        async move {
            if let async_nats::Event::ServerError(error) = event {
                let _ = errors_tx.send(error.to_string());
            }
        }
    })
    .connect(url)
    .await
    .unwrap_or_else(|e| panic!("connect as {role:?}: {e}"));
    (client, errors)
}

/// The next server error within a few seconds; panics when none comes.
async fn next_violation(errors: &mut mpsc::UnboundedReceiver<String>, what: &str) -> String {
    let error = tokio::time::timeout(Duration::from_secs(5), errors.recv())
        .await
        .unwrap_or_else(|_| panic!("{what}: the server raised no error"))
        .expect("event channel open");
    assert!(
        error.to_lowercase().contains("permissions violation"),
        "{what}: {error}"
    );
    error
}

fn queued(video_id: &str, path: &str) -> VideoRecord {
    VideoRecord {
        video_id: video_id.into(),
        name: "clip.mp4".into(),
        path: path.into(),
        status: VideoStatus::Queued,
        progress: 0.0,
        error: None,
        duration: None,
        segment_count: 0,
        generation: "g1".into(),
        updated_at_ms: 0,
    }
}

async fn stream_messages(js: &jetstream::Context, stream: &str) -> u64 {
    js.get_stream(stream)
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .state
        .messages
}

#[tokio::test]
async fn unknown_and_wrong_credentials_are_refused_with_what_to_set() {
    let nats = SecureNats::start(Auth::Roles, None);
    let anonymous = vidseek_bus::connect(&nats.url(), "t", &NatsAccess::default(), NO_RETRY).await;
    let wrong = NatsAccess::for_role(Role::Gateway, Secret::new("not-the-password"));
    let wrong = vidseek_bus::connect(&nats.url(), "t", &wrong, NO_RETRY).await;
    for (what, result) in [("no credentials", anonymous), ("wrong password", wrong)] {
        match result {
            Err(err @ ConnectError::Refused { .. }) => {
                let message = err.to_string();
                assert!(message.contains("VIDSEEK_NATS_USER"), "{what}: {message}");
                assert!(
                    !message.contains("not-the-password"),
                    "{what} leaks the password: {message}"
                );
            }
            other => panic!("{what}: expected a refusal, got {other:?}"),
        }
    }
    let right = vidseek_bus::connect(&nats.url(), "t", &nats.access(Role::Gateway), NO_RETRY).await;
    right.expect("the gateway's own password is accepted");

    // The command-line client says the same, and exits non-zero.
    let output = std::process::Command::new(vidseek_bin())
        .args(["search", "a cat"])
        .env("VIDSEEK_NATS_URL", nats.url())
        .env("VIDSEEK_NATS_USER", "operator")
        .env("VIDSEEK_NATS_PASSWORD", "guessed")
        .env("VIDSEEK_DATA_DIR", tempfile::tempdir().unwrap().path())
        .output()
        .expect("run vidseek search");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    assert!(
        !stderr.contains("guessed"),
        "the password is printed: {stderr}"
    );

    // A token-protected server: the right token in, a wrong one out.
    let nats = SecureNats::start(Auth::Token("fleet-token"), None);
    let with = |token: &str| NatsAccess {
        token: Some(Secret::new(token)),
        ..NatsAccess::default()
    };
    vidseek_bus::connect(&nats.url(), "t", &with("fleet-token"), NO_RETRY)
        .await
        .expect("the right token is accepted");
    let refused = vidseek_bus::connect(&nats.url(), "t", &with("other"), NO_RETRY).await;
    assert!(
        matches!(refused, Err(ConnectError::Refused { .. })),
        "{refused:?}"
    );
}

#[tokio::test]
async fn each_role_is_held_to_its_permissions() {
    let nats = SecureNats::start(Auth::Roles, None);
    let url = nats.url();
    let operator = vidseek_bus::connect(&url, "t", &nats.access(Role::Operator), NO_RETRY)
        .await
        .unwrap();
    let admin = jetstream::new(operator.clone());
    vidseek_bus::streams::ensure_all(&admin, 1).await.unwrap();
    let catalog_stream = vidseek_bus::streams::videos_bucket_stream();

    // The ingest role writes the segment log and the catalog: the positive
    // control for the refusals below.
    let ingest = vidseek_bus::connect(&url, "t", &nats.access(Role::Ingest), NO_RETRY)
        .await
        .unwrap();
    let ingest_js = jetstream::new(ingest);
    ingest_js
        .publish(subjects::segments(0, "v1"), "entry".into())
        .await
        .unwrap()
        .await
        .expect("ingest appends to the segment log");
    let catalog = vidseek_bus::catalog::Catalog::open(&ingest_js)
        .await
        .unwrap();
    let record = queued("v1", "/media/clip.mp4");
    catalog
        .put(&record)
        .await
        .expect("ingest writes the catalog");
    assert_eq!(stream_messages(&admin, subjects::SEGMENTS_STREAM).await, 1);
    assert_eq!(stream_messages(&admin, &catalog_stream).await, 1);

    // The gateway cannot append to the segment log, nor plant a catalog
    // record (pointing at a file it would then serve).
    let (gateway, mut errors) =
        connect_watched(&url, Role::Gateway, nats.password(Role::Gateway)).await;
    gateway
        .publish(subjects::segments(0, "v2"), "forged".into())
        .await
        .unwrap();
    let error = next_violation(&mut errors, "gateway publishes a segment").await;
    assert!(error.contains("vidseek.v1.segments.0.v2"), "{error}");
    gateway
        .publish(format!("$KV.{}.v2", subjects::VIDEOS_BUCKET), "{}".into())
        .await
        .unwrap();
    next_violation(&mut errors, "gateway writes the catalog").await;
    // Nor read the replies meant for other roles.
    let _sniffer = gateway.subscribe("_INBOX.>").await.unwrap();
    next_violation(&mut errors, "gateway subscribes to every inbox").await;
    // What it may do still works: it reads the catalog.
    let gateway_catalog = vidseek_bus::catalog::Catalog::open(&jetstream::new(gateway.clone()))
        .await
        .unwrap();
    let listed = gateway_catalog
        .list()
        .await
        .expect("the gateway lists the catalog");
    assert_eq!(listed.len(), 1);

    // A ranker cannot write the catalog, whatever the client library does.
    let (ranker, mut errors) =
        connect_watched(&url, Role::Ranker, nats.password(Role::Ranker)).await;
    let ranker_catalog = vidseek_bus::catalog::Catalog::open(&jetstream::new(ranker.clone()))
        .await
        .expect("rankers may look the bucket up");
    let forged = queued("v3", "/etc/passwd");
    let put = tokio::time::timeout(Duration::from_secs(10), ranker_catalog.put(&forged)).await;
    assert!(!matches!(put, Ok(Ok(()))), "a ranker wrote the catalog");
    next_violation(&mut errors, "ranker writes the catalog").await;
    // Nor delete the segment log.
    let purge = tokio::time::timeout(
        Duration::from_secs(10),
        jetstream::new(ranker.clone())
            .get_stream(subjects::SEGMENTS_STREAM)
            .await
            .unwrap()
            .purge(),
    )
    .await;
    assert!(
        !matches!(purge, Ok(Ok(_))),
        "a ranker purged the segment log"
    );
    next_violation(&mut errors, "ranker purges the segment log").await;

    // An encoder answers encode requests and nothing else: it cannot ask
    // for an ingest.
    let (encoder, mut errors) =
        connect_watched(&url, Role::Encoder, nats.password(Role::Encoder)).await;
    encoder
        .publish(subjects::INGEST, r#"{"path": "/etc/passwd"}"#.into())
        .await
        .unwrap();
    next_violation(&mut errors, "encoder asks for an ingest").await;

    // Nothing the refused clients tried reached the streams.
    assert_eq!(stream_messages(&admin, subjects::SEGMENTS_STREAM).await, 1);
    assert_eq!(stream_messages(&admin, &catalog_stream).await, 1);
}

#[tokio::test]
async fn tls_connects_with_the_configured_ca_and_fails_clearly_without() {
    let dir = tempfile::tempdir().unwrap();
    let pki = TestPki::generate(dir.path());
    let tls = Tls {
        pki: &pki,
        verify_clients: false,
    };
    let nats = SecureNats::start(Auth::Roles, Some(tls));
    let trusted = NatsAccess {
        tls_ca: Some(pki.ca.clone()),
        require_tls: true,
        ..nats.access(Role::Operator)
    };
    let client = vidseek_bus::connect(&nats.url(), "t", &trusted, NO_RETRY)
        .await
        .expect("TLS with the test CA");
    client.flush().await.unwrap();
    assert!(client.server_info().tls_required, "the server requires TLS");

    // A client that does not know the CA cannot verify the server.
    let untrusted =
        vidseek_bus::connect(&nats.url(), "t", &nats.access(Role::Operator), NO_RETRY).await;
    match untrusted {
        Err(err @ ConnectError::Tls { .. }) => {
            assert!(err.to_string().contains("VIDSEEK_NATS_TLS_CA"), "{err}");
        }
        other => panic!("expected a TLS error, got {other:?}"),
    }

    // A client that requires TLS refuses a server without it.
    let plain = SecureNats::start(Auth::Roles, None);
    let insisting = NatsAccess {
        require_tls: true,
        ..plain.access(Role::Operator)
    };
    let refused = vidseek_bus::connect(&plain.url(), "t", &insisting, NO_RETRY).await;
    assert!(
        matches!(refused, Err(ConnectError::Tls { .. })),
        "{refused:?}"
    );

    // A server that verifies clients admits the one with a certificate from
    // its CA and no other.
    let mutual = SecureNats::start(
        Auth::Roles,
        Some(Tls {
            pki: &pki,
            verify_clients: true,
        }),
    );
    let with_cert = NatsAccess {
        tls_cert: Some(pki.client_cert.clone()),
        tls_key: Some(pki.client_key.clone()),
        ..trusted.clone()
    };
    vidseek_bus::connect(&mutual.url(), "t", &with_cert, NO_RETRY)
        .await
        .map(drop)
        .unwrap_or_else(|_| panic!("client certificate refused"));
    let password = mutual.password(Role::Operator);
    let without_cert = NatsAccess {
        password: Some(password),
        ..trusted
    };
    let refused = vidseek_bus::connect(&mutual.url(), "t", &without_cert, NO_RETRY).await;
    assert!(refused.is_err(), "a client without a certificate got in");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_stack_admits_only_its_own_users() {
    let media = tempfile::tempdir().unwrap();
    let stack = EmbeddedStack::start(media.path());
    let auth_dir = stack.data_dir.path().join("nats-auth");
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&auth_dir), 0o700);
    for role in Role::ALL {
        assert_eq!(mode(&auth_dir.join(role.user())), 0o600, "{role:?}");
    }
    assert_eq!(mode(&auth_dir.join("nats-server.conf")), 0o600);

    let anonymous =
        vidseek_bus::connect(&stack.nats_url, "t", &NatsAccess::default(), NO_RETRY).await;
    assert!(
        matches!(anonymous, Err(ConnectError::Refused { .. })),
        "{anonymous:?}"
    );

    // The gateway's own password, as `vidseek up` connects it, is held to
    // the gateway's permissions on the embedded server.
    let password = std::fs::read_to_string(auth_dir.join("gateway")).unwrap();
    let (gateway, mut errors) =
        connect_watched(&stack.nats_url, Role::Gateway, Secret::new(password.trim())).await;
    gateway
        .publish(subjects::segments(0, "forged"), "x".into())
        .await
        .unwrap();
    next_violation(&mut errors, "embedded gateway publishes a segment").await;

    // The command-line client finds the operator's password in the data
    // directory, ingests and searches; every role does its part of the work
    // as its own user.
    let video = media.path().join("scenes.mp4");
    scene_video(&video, 2, 1, "160x120");
    let vidseek = |args: &[&str]| {
        let output = std::process::Command::new(vidseek_bin())
            .args(args)
            .envs(stack.client_env())
            .output()
            .expect("run vidseek");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(output.status.success(), "vidseek {args:?}: {stderr}");
        output.stdout
    };
    vidseek(&["ingest", "--wait", video.to_str().unwrap()]);
    let answer: serde_json::Value =
        serde_json::from_slice(&vidseek(&["search", "--json", "a colourful pattern"])).unwrap();
    let hits = answer["results"].as_array().expect("results");
    assert!(!hits.is_empty(), "{answer}");
    // A delete goes gateway → ingest, which purges the segment log.
    let video_id = hits[0]["video_id"].as_str().unwrap();
    let deleted = reqwest::Client::new()
        .delete(stack.url(&format!("/api/v1/videos/{video_id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);

    let log = stack.log();
    assert!(!log.contains("Permissions Violation"), "{log}");
    assert!(
        !log.contains(&stack.operator_password()),
        "the log shows a password"
    );
}
