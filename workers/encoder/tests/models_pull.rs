//! `models pull` and `models import` against a tiny HTTP server on
//! 127.0.0.1:0 that serves a generated pack, honours `Range`, and can cut a
//! transfer half-way (as a flaky network does). The pack's files are random
//! bytes: pull and import only check manifests and checksums, never load
//! the models.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use vidseek_encoder::modelpack::import::{ImportError, import};
use vidseek_encoder::modelpack::pull::{
    NoProgress, PullError, PullOptions, PullSource, check_name, pull,
};
use vidseek_encoder::modelpack::{ModelPack, PackError};

const BIG: usize = 300_000;

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Deterministic pseudo-random bytes (no rand dependency needed).
fn bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect()
}

/// A CLIP-shaped pack: manifest.json plus its three files.
fn fixture_pack() -> BTreeMap<String, Vec<u8>> {
    let mut files = BTreeMap::new();
    files.insert("text.onnx".to_string(), bytes(1, BIG));
    files.insert("image.onnx".to_string(), bytes(2, 50_000));
    files.insert("bpe_vocab.txt.gz".to_string(), bytes(3, 1_000));
    let sums: BTreeMap<&String, String> = files.iter().map(|(f, b)| (f, sha(b))).collect();
    let manifest = serde_json::json!({
        "name": "fixture-clip", "version": 1, "description": "test pack", "licence": "test",
        "languages": ["en"],
        "text": {"onnx": "text.onnx", "tokenizer_kind": "clip_bpe", "bpe_vocab": "bpe_vocab.txt.gz",
                 "context_length": 77, "sot_id": 632, "eot_id": 633, "lowercase": true, "dim": 8,
                 "inputs": {"input_ids": "input_ids"}, "output": "embedding", "pad_id": 0},
        "image": {"onnx": "image.onnx", "input": "pixels", "size": 32, "mean": [0.5, 0.5, 0.5],
                  "std": [0.5, 0.5, 0.5], "embedding_output": "embedding"},
        "bridge": {"kind": "shared_space"},
        "calibration": {"text_visual": {"a": 1.0, "b": 0.0}, "text_text": {"a": 1.0, "b": 0.0},
                        "image_image": {"a": 1.0, "b": 0.0}},
        "files": sums,
    });
    files.insert(
        "manifest.json".to_string(),
        serde_json::to_vec_pretty(&manifest).unwrap(),
    );
    files
}

/// What the server saw: request path and the first byte asked for.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    path: String,
    range_start: Option<u64>,
}

struct Server {
    base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Paths whose next GET is cut after half the body.
    cut_next: Arc<Mutex<HashSet<String>>>,
}

impl Server {
    /// Serves `files` under `/pack/`.
    async fn start(files: BTreeMap<String, Vec<u8>>) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}/pack", listener.local_addr().unwrap());
        let files: Arc<HashMap<String, Vec<u8>>> = Arc::new(
            files
                .into_iter()
                .map(|(f, b)| (format!("/pack/{f}"), b))
                .collect(),
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let cut_next = Arc::new(Mutex::new(HashSet::new()));
        let (s, c) = (seen.clone(), cut_next.clone());
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(socket, files.clone(), s.clone(), c.clone()));
            }
        });
        Server {
            base,
            seen,
            cut_next,
        }
    }

    fn cut_next(&self, file: &str) {
        self.cut_next
            .lock()
            .unwrap()
            .insert(format!("/pack/{file}"));
    }

    fn seen(&self, file: &str) -> Vec<Option<u64>> {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.path == format!("/pack/{file}"))
            .map(|s| s.range_start)
            .collect()
    }
}

/// One HTTP/1.1 exchange per connection (`Connection: close`).
async fn serve(
    mut socket: tokio::net::TcpStream,
    files: Arc<HashMap<String, Vec<u8>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    cut_next: Arc<Mutex<HashSet<String>>>,
) {
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match socket.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let head = String::from_utf8_lossy(&head).to_string();
    let path = head.split_whitespace().nth(1).unwrap_or("/").to_string();
    let range_start = head.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        if !name.eq_ignore_ascii_case("range") {
            return None;
        }
        value
            .trim()
            .strip_prefix("bytes=")?
            .trim_end_matches('-')
            .parse::<u64>()
            .ok()
    });
    seen.lock().unwrap().push(Seen {
        path: path.clone(),
        range_start,
    });
    let Some(data) = files.get(&path) else {
        let _ = socket
            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            .await;
        return;
    };
    let start = range_start.unwrap_or(0) as usize;
    if start >= data.len() && start > 0 {
        let _ = socket
            .write_all(
                format!(
                    "HTTP/1.1 416 Range Not Satisfiable\r\nContent-Range: bytes */{}\r\n\
                     Content-Length: 0\r\nConnection: close\r\n\r\n",
                    data.len()
                )
                .as_bytes(),
            )
            .await;
        return;
    }
    let body = &data[start..];
    let status = if range_start.is_some() {
        format!(
            "206 Partial Content\r\nContent-Range: bytes {start}-{}/{}",
            data.len() - 1,
            data.len()
        )
    } else {
        "200 OK".to_string()
    };
    let header = format!(
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: application/octet-stream\r\n\
         Connection: close\r\n\r\n",
        body.len()
    );
    let cut = cut_next.lock().unwrap().remove(&path);
    let _ = socket.write_all(header.as_bytes()).await;
    if cut {
        // Half the promised body, then a hang-up: the client sees a
        // truncated transfer.
        let _ = socket.write_all(&body[..body.len() / 2]).await;
        let _ = socket.flush().await;
        return;
    }
    let _ = socket.write_all(body).await;
}

fn source(server: &Server) -> PullSource {
    PullSource {
        name: "fixture-clip".into(),
        base_url: server.base.clone(),
        manifest_sha256: None,
    }
}

fn client() -> reqwest::Client {
    vidseek_encoder::modelpack::pull::client()
}

fn installed(models: &Path) -> PathBuf {
    models.join("fixture-clip")
}

#[tokio::test]
async fn pull_installs_a_verified_pack() {
    let files = fixture_pack();
    let manifest_sha = sha(&files["manifest.json"]);
    let server = Server::start(files.clone()).await;
    let models = tempfile::tempdir().unwrap();
    let source = PullSource {
        manifest_sha256: Some(manifest_sha),
        ..source(&server)
    };
    let pack = pull(
        &client(),
        &source,
        models.path(),
        &PullOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(pack.dir, installed(models.path()));
    ModelPack::open(&pack.dir).unwrap().verify().unwrap();
    for (file, data) in &files {
        assert_eq!(&std::fs::read(pack.dir.join(file)).unwrap(), data, "{file}");
    }
    assert!(!models.path().join(".partial/fixture-clip").exists());

    // A second pull refuses to overwrite without --force, and replaces with it.
    let again = pull(
        &client(),
        &source,
        models.path(),
        &PullOptions::default(),
        &NoProgress,
    )
    .await;
    assert!(matches!(again, Err(PullError::AlreadyInstalled { .. })));
    let forced = PullOptions {
        force: true,
        ..PullOptions::default()
    };
    pull(&client(), &source, models.path(), &forced, &NoProgress)
        .await
        .unwrap()
        .verify()
        .unwrap();
}

#[tokio::test]
async fn an_interrupted_download_resumes_with_range() {
    let files = fixture_pack();
    let server = Server::start(files.clone()).await;
    let models = tempfile::tempdir().unwrap();

    // Within one pull: the first transfer is cut, the retry resumes.
    server.cut_next("text.onnx");
    let pack = pull(
        &client(),
        &source(&server),
        models.path(),
        &PullOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(
        std::fs::read(pack.dir.join("text.onnx")).unwrap(),
        files["text.onnx"]
    );
    let requests = server.seen("text.onnx");
    assert_eq!(requests.len(), 2, "{requests:?}");
    assert_eq!(requests[0], None);
    let resumed_at = requests[1].expect("the retry asks for a range");
    assert!(resumed_at > 0 && resumed_at < BIG as u64, "{resumed_at}");

    // Across pulls: with one attempt the pull fails, keeps the partial file,
    // and the next pull asks only for the rest.
    let other = tempfile::tempdir().unwrap();
    server.cut_next("text.onnx");
    let once = PullOptions {
        attempts: 1,
        ..PullOptions::default()
    };
    let error = pull(
        &client(),
        &source(&server),
        other.path(),
        &once,
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, PullError::Network { .. }), "{error}");
    assert!(error.to_string().contains("models import"), "{error}");
    assert!(!installed(other.path()).exists());
    let partial = other.path().join(".partial/fixture-clip/text.onnx");
    let kept = std::fs::metadata(&partial).unwrap().len();
    assert!(kept > 0 && kept < BIG as u64, "{kept}");
    pull(
        &client(),
        &source(&server),
        other.path(),
        &once,
        &NoProgress,
    )
    .await
    .unwrap();
    assert_eq!(server.seen("text.onnx").last(), Some(&Some(kept)));
    assert_eq!(
        std::fs::read(installed(other.path()).join("text.onnx")).unwrap(),
        files["text.onnx"]
    );
}

#[tokio::test]
async fn a_checksum_mismatch_installs_nothing() {
    let mut files = fixture_pack();
    files.get_mut("image.onnx").unwrap()[10] ^= 0xFF;
    let server = Server::start(files).await;
    let models = tempfile::tempdir().unwrap();
    let error = pull(
        &client(),
        &source(&server),
        models.path(),
        &PullOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap_err();
    match &error {
        PullError::Checksum { file, .. } => assert_eq!(file, "image.onnx"),
        other => panic!("expected a checksum error, got {other}"),
    }
    assert!(
        error.to_string().contains("nothing was installed"),
        "{error}"
    );
    assert!(!installed(models.path()).exists());
    // The bad file is not kept for a resume.
    assert!(
        !models
            .path()
            .join(".partial/fixture-clip/image.onnx")
            .exists()
    );

    // A manifest that does not match the catalog's pin is refused too.
    let server = Server::start(fixture_pack()).await;
    let pinned = PullSource {
        manifest_sha256: Some("0".repeat(64)),
        ..source(&server)
    };
    let error = pull(
        &client(),
        &pinned,
        models.path(),
        &PullOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&error, PullError::Checksum { file, .. } if file == "manifest.json"),
        "{error}"
    );
    assert!(!installed(models.path()).exists());
}

#[tokio::test]
async fn missing_packs_and_dead_servers_give_clear_errors() {
    let server = Server::start(fixture_pack()).await;
    let models = tempfile::tempdir().unwrap();
    let missing = PullSource {
        base_url: format!("{}/../nothing-here", server.base),
        ..source(&server)
    };
    let error = pull(
        &client(),
        &missing,
        models.path(),
        &PullOptions::default(),
        &NoProgress,
    )
    .await
    .unwrap_err();
    assert!(matches!(error, PullError::NotFound { .. }), "{error}");
    assert!(error.to_string().contains("404"), "{error}");

    // A port nobody listens on: what an offline machine sees.
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let offline = PullSource {
        base_url: format!("http://{closed}/pack"),
        ..source(&server)
    };
    let once = PullOptions {
        attempts: 1,
        ..PullOptions::default()
    };
    let error = pull(&client(), &offline, models.path(), &once, &NoProgress)
        .await
        .unwrap_err();
    assert!(matches!(error, PullError::Network { .. }), "{error}");
    assert!(
        error.to_string().contains("vidseek models import"),
        "{error}"
    );
    assert!(!installed(models.path()).exists());
    assert!(check_name("../evil").is_err());
}

#[test]
fn import_copies_a_verified_pack_and_refuses_a_corrupt_one() {
    let source_dir = tempfile::tempdir().unwrap();
    for (file, data) in fixture_pack() {
        std::fs::write(source_dir.path().join(file), data).unwrap();
    }
    // Stray files beside the pack are not copied.
    std::fs::write(source_dir.path().join("notes.txt"), "scratch").unwrap();
    let models = tempfile::tempdir().unwrap();
    let pack = import(source_dir.path(), models.path(), None, false).unwrap();
    assert_eq!(pack.dir, installed(models.path()));
    pack.verify().unwrap();
    assert!(!pack.dir.join("notes.txt").exists());

    let renamed = import(source_dir.path(), models.path(), Some("mine"), false).unwrap();
    assert_eq!(renamed.dir, models.path().join("mine"));
    assert!(matches!(
        import(source_dir.path(), models.path(), None, false),
        Err(ImportError::Pull(PullError::AlreadyInstalled { .. }))
    ));

    std::fs::write(source_dir.path().join("image.onnx"), b"corrupt").unwrap();
    let error = import(source_dir.path(), models.path(), Some("bad"), false).unwrap_err();
    assert!(
        matches!(error, ImportError::Pack(PackError::Checksum { .. })),
        "{error}"
    );
    assert!(!models.path().join("bad").exists());
}
