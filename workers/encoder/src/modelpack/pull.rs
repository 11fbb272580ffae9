//! `vidseek models pull`: the catalog of known packs and the download of one
//! pack over HTTP(S).
//!
//! A published pack is its directory served as-is under a base URL:
//! `{url}/manifest.json` and `{url}/{file}` for every file the manifest
//! lists. Per-file downloads (rather than one archive) make every file
//! resumable on its own and checkable against the sha256 in the manifest;
//! the catalog pins the manifest itself with `manifest_sha256`, so a mirror
//! (`--from`) cannot swap the model either.
//!
//! Files are downloaded into `{models}/.partial/{name}/`, resumed with HTTP
//! `Range` after an interruption (in the same pull and in the next one), and
//! the directory is renamed to `{models}/{name}` only once every checksum
//! matches, so an installed pack is always complete.

use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;

use super::{ModelPack, PackError, sha256_file};

/// Folder under the models directory that holds unfinished downloads and
/// imports; never a pack itself.
pub const PARTIAL_DIR: &str = ".partial";

/// `deploy/models/catalog.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Catalog {
    pub format: u32,
    #[serde(default)]
    pub note: String,
    pub packs: Vec<CatalogEntry>,
}

/// One known pack. `url` is `None` (or the placeholder `to-be-published`)
/// until someone publishes the pack exported by `source`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CatalogEntry {
    pub name: String,
    /// `conse` or `shared_space`.
    #[serde(default)]
    pub kind: String,
    #[serde(default)]
    pub description: String,
    /// How the pack is built or exported (a command line).
    #[serde(default)]
    pub source: String,
    /// Base URL of the published pack directory.
    #[serde(default)]
    pub url: Option<String>,
    /// sha256 of the published `manifest.json` (which holds every file's).
    #[serde(default)]
    pub manifest_sha256: Option<String>,
    #[serde(default)]
    pub languages: Vec<String>,
    #[serde(default)]
    pub licence: String,
    #[serde(default)]
    pub size_mb: Option<f64>,
    #[serde(default)]
    pub quality: String,
}

/// Placeholder URL of packs that have not been published yet.
pub const UNPUBLISHED: &str = "to-be-published";

impl Catalog {
    pub fn parse(json: &str) -> Result<Catalog, serde_json::Error> {
        serde_json::from_str(json)
    }

    pub fn get(&self, name: &str) -> Option<&CatalogEntry> {
        self.packs.iter().find(|p| p.name == name)
    }
}

impl CatalogEntry {
    /// The download URL, if the pack has been published.
    pub fn published_url(&self) -> Option<&str> {
        self.url
            .as_deref()
            .filter(|u| !u.is_empty() && *u != UNPUBLISHED)
    }
}

/// Where one pull downloads from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PullSource {
    pub name: String,
    pub base_url: String,
    /// When known (from the catalog), the manifest must hash to this.
    pub manifest_sha256: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum PullError {
    #[error(
        "no pack named {name:?} in the catalog (known: {}); pass --from URL to pull a pack \
         published elsewhere, or `vidseek models import DIR` for a local copy",
        known.join(", ")
    )]
    NotInCatalog { name: String, known: Vec<String> },
    #[error("pack {name:?} has not been published, so there is nothing to download: {how}")]
    NotPublished { name: String, how: String },
    #[error(
        "{name:?} is not a usable pack name (letters, digits, '-', '_', '.'; not starting with '.')"
    )]
    BadName { name: String },
    #[error("pack {name:?} is already installed in {}; pass --force to replace it", dir.display())]
    AlreadyInstalled { name: String, dir: PathBuf },
    #[error("{url} was not found (HTTP 404): check the pack name and the --from URL")]
    NotFound { url: String },
    #[error("{url}: HTTP {status}")]
    Http { url: String, status: u16 },
    #[error(
        "cannot download {url}: {message}. Without network access, copy a pack directory to \
         this machine and run `vidseek models import DIR`"
    )]
    Network { url: String, message: String },
    #[error(
        "checksum mismatch for {file} from {url} (expected sha256 {expected}, got {found}); the \
         download was discarded and nothing was installed"
    )]
    Checksum {
        file: String,
        url: String,
        expected: String,
        found: String,
    },
    #[error("the pack's manifest names an unsafe file path {file:?}")]
    UnsafePath { file: String },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Pack(#[from] PackError),
}

/// Picks the URL and manifest checksum for `name`: `from` overrides the
/// catalog's URL (a mirror, or a pack that is not in the catalog).
pub fn resolve(catalog: &Catalog, name: &str, from: Option<&str>) -> Result<PullSource, PullError> {
    check_name(name)?;
    let entry = catalog.get(name);
    let base_url = match (from, entry) {
        (Some(url), _) => url.to_string(),
        (None, Some(entry)) => entry
            .published_url()
            .ok_or_else(|| PullError::NotPublished {
                name: name.to_string(),
                how: how_to_get(entry),
            })?
            .to_string(),
        (None, None) => {
            return Err(PullError::NotInCatalog {
                name: name.to_string(),
                known: catalog.packs.iter().map(|p| p.name.clone()).collect(),
            });
        }
    };
    Ok(PullSource {
        name: name.to_string(),
        base_url,
        manifest_sha256: entry.and_then(|e| e.manifest_sha256.clone()),
    })
}

/// What to do about a pack without a URL: build it locally (the default
/// pack) or publish with export_clip.py.
fn how_to_get(entry: &CatalogEntry) -> String {
    match entry.source.strip_prefix("build:") {
        Some(build) => format!("it is built locally: {}", build.trim()),
        None => format!(
            "its catalog entry has no URL yet. Publish with export_clip.py: on a machine with \
             internet run `{}`, then `vidseek models import DIR` with the exported directory, or \
             serve that directory over HTTP(S) and `vidseek models pull {} --from URL`",
            entry.source.trim_start_matches("export:").trim(),
            entry.name
        ),
    }
}

/// Pack names become directory names: keep them to one plain component.
pub fn check_name(name: &str) -> Result<(), PullError> {
    let ok = !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(PullError::BadName {
            name: name.to_string(),
        })
    }
}

/// Rejects manifest file names that would escape the pack directory.
pub(crate) fn check_relative(file: &str) -> Result<(), PullError> {
    let path = Path::new(file);
    let ok = !file.is_empty() && path.components().all(|c| matches!(c, Component::Normal(_)));
    if ok {
        Ok(())
    } else {
        Err(PullError::UnsafePath {
            file: file.to_string(),
        })
    }
}

/// Told about download progress (the CLI draws a bar; tests ignore it).
pub trait PullProgress: Send + Sync {
    /// A file download (re)starts; `resumed_from` bytes are already on disk.
    fn file_started(&self, file: &str, total: Option<u64>, resumed_from: u64);
    fn advanced(&self, bytes: u64);
    fn file_finished(&self, file: &str);
}

/// Progress that is not shown.
pub struct NoProgress;

impl PullProgress for NoProgress {
    fn file_started(&self, _: &str, _: Option<u64>, _: u64) {}
    fn advanced(&self, _: u64) {}
    fn file_finished(&self, _: &str) {}
}

#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Replace an installed pack of the same name.
    pub force: bool,
    /// Tries per file; each retry resumes where the last one stopped.
    pub attempts: u32,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            force: false,
            attempts: 4,
        }
    }
}

/// An HTTP client for pulls: connection timeout and idle-read timeout, but
/// no total timeout (packs are hundreds of MB).
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(20))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("vidseek/", env!("CARGO_PKG_VERSION")))
        .build()
        .expect("a TLS backend is compiled in")
}

/// Downloads, verifies and installs a pack into `{models_dir}/{name}`;
/// returns the installed pack.
pub async fn pull(
    client: &reqwest::Client,
    source: &PullSource,
    models_dir: &Path,
    options: &PullOptions,
    progress: &dyn PullProgress,
) -> Result<ModelPack, PullError> {
    check_name(&source.name)?;
    let dest = models_dir.join(&source.name);
    if dest.exists() && !options.force {
        return Err(PullError::AlreadyInstalled {
            name: source.name.clone(),
            dir: dest,
        });
    }
    let partial = models_dir.join(PARTIAL_DIR).join(&source.name);
    create_dir(&partial).await?;
    let base = source.base_url.trim_end_matches('/');

    // The manifest is small: always fetched afresh, so a pack republished
    // under the same URL never mixes old and new files.
    let manifest_path = partial.join("manifest.json");
    let manifest_url = format!("{base}/manifest.json");
    remove_file(&manifest_path).await?;
    download(
        client,
        &manifest_url,
        &manifest_path,
        "manifest.json",
        options,
        progress,
    )
    .await?;
    if let Some(expected) = &source.manifest_sha256 {
        check_sha(&manifest_path, "manifest.json", &manifest_url, expected).await?;
    }
    let pack = ModelPack::open(&partial)?;
    for file in pack.manifest.files.keys() {
        check_relative(file)?;
    }

    for (file, expected) in &pack.manifest.files {
        let path = partial.join(file);
        let url = format!("{base}/{file}");
        if let Some(parent) = path.parent() {
            create_dir(parent).await?;
        }
        // A complete file from an earlier pull is kept; a short one resumes.
        if hash(&path)
            .await
            .is_some_and(|h| h.eq_ignore_ascii_case(expected))
        {
            continue;
        }
        download(client, &url, &path, file, options, progress).await?;
        check_sha(&path, file, &url, expected).await?;
    }
    ModelPack::open(&partial)?.verify()?;
    install(&partial, &dest, models_dir)?;
    Ok(ModelPack::open(&dest)?)
}

/// Moves a verified pack into place. With an existing pack (`--force`), the
/// old one is moved aside first, so `dest` is never a mix of both. Renames
/// only (the staging folder is on the same filesystem), so it is quick
/// enough to run from async code.
pub(crate) fn install(ready: &Path, dest: &Path, models_dir: &Path) -> Result<(), PullError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| PullError::Io { path, source }
    };
    let old = models_dir
        .join(PARTIAL_DIR)
        .join(format!(".replaced-{}", uuid::Uuid::new_v4()));
    let replacing = dest.exists();
    if replacing {
        std::fs::rename(dest, &old).map_err(io(dest))?;
    }
    if let Err(error) = std::fs::rename(ready, dest) {
        if replacing {
            let _ = std::fs::rename(&old, dest);
        }
        return Err(io(dest)(error));
    }
    if replacing {
        let _ = std::fs::remove_dir_all(&old);
    }
    Ok(())
}

/// Downloads `url` to `path`, resuming from what `path` already holds, with
/// up to `options.attempts` tries.
async fn download(
    client: &reqwest::Client,
    url: &str,
    path: &Path,
    file: &str,
    options: &PullOptions,
    progress: &dyn PullProgress,
) -> Result<(), PullError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match download_once(client, url, path, file, progress).await {
            Ok(()) => {
                progress.file_finished(file);
                return Ok(());
            }
            // Only a broken transfer is worth retrying; 404, other HTTP
            // errors and local I/O failures will not change.
            Err(error @ PullError::Network { .. }) if attempt < options.attempts.max(1) => {
                tracing::warn!(%url, attempt, %error, "download interrupted, resuming");
                tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
            }
            Err(error) => return Err(error),
        }
    }
}

async fn download_once(
    client: &reqwest::Client,
    url: &str,
    path: &Path,
    file: &str,
    progress: &dyn PullProgress,
) -> Result<(), PullError> {
    let network = |e: reqwest::Error| PullError::Network {
        url: url.to_string(),
        message: describe(&e),
    };
    let have = tokio::fs::metadata(path)
        .await
        .map(|m| m.len())
        .unwrap_or(0);
    let mut request = client.get(url);
    if have > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let response = request.send().await.map_err(network)?;
    let status = response.status();
    let (append, total) = match status.as_u16() {
        206 if have > 0 => (true, response.content_length().map(|n| n + have)),
        200 => (false, response.content_length()),
        // Our partial file is as long as (or longer than) the remote one:
        // start over; the checksum decides whether what we get is right.
        416 => {
            remove_file(path).await?;
            return Box::pin(download_once(client, url, path, file, progress)).await;
        }
        404 => {
            return Err(PullError::NotFound {
                url: url.to_string(),
            });
        }
        code => {
            return Err(PullError::Http {
                url: url.to_string(),
                status: code,
            });
        }
    };
    let mut out = tokio::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .append(append)
        .truncate(!append)
        .open(path)
        .await
        .map_err(|source| PullError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    progress.file_started(file, total, if append { have } else { 0 });
    let mut body = response.bytes_stream();
    let write_error = |source| PullError::Io {
        path: path.to_path_buf(),
        source,
    };
    while let Some(chunk) = body.next().await {
        // Whatever arrived before a failure stays on disk for the resume.
        let chunk = match chunk {
            Ok(chunk) => chunk,
            Err(error) => {
                out.flush().await.map_err(write_error)?;
                return Err(network(error));
            }
        };
        out.write_all(&chunk).await.map_err(write_error)?;
        progress.advanced(chunk.len() as u64);
    }
    out.flush().await.map_err(write_error)?;
    Ok(())
}

/// A reqwest error with its causes ("error sending request" alone does not
/// say "connection refused").
fn describe(error: &reqwest::Error) -> String {
    let mut message = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// Fails (and deletes the file, so a retry downloads it afresh) unless
/// `path` hashes to `expected`.
async fn check_sha(path: &Path, file: &str, url: &str, expected: &str) -> Result<(), PullError> {
    let found = hash(path).await.unwrap_or_default();
    if found.eq_ignore_ascii_case(expected) {
        return Ok(());
    }
    remove_file(path).await?;
    Err(PullError::Checksum {
        file: file.to_string(),
        url: url.to_string(),
        expected: expected.to_string(),
        found,
    })
}

/// sha256 of a file off the async runtime; `None` if it cannot be read.
async fn hash(path: &Path) -> Option<String> {
    let path = path.to_path_buf();
    tokio::task::spawn_blocking(move || sha256_file(&path).ok())
        .await
        .ok()
        .flatten()
}

async fn create_dir(path: &Path) -> Result<(), PullError> {
    tokio::fs::create_dir_all(path)
        .await
        .map_err(|source| PullError::Io {
            path: path.to_path_buf(),
            source,
        })
}

async fn remove_file(path: &Path) -> Result<(), PullError> {
    match tokio::fs::remove_file(path).await {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(PullError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CATALOG: &str = include_str!("../../../../deploy/models/catalog.json");

    #[test]
    fn the_shipped_catalog_parses_and_unpublished_packs_say_so() {
        let catalog = Catalog::parse(CATALOG).unwrap();
        assert!(catalog.get("openai-clip-vit-b-32").is_some());
        for entry in &catalog.packs {
            check_name(&entry.name).unwrap();
            if entry.published_url().is_none() {
                let error = resolve(&catalog, &entry.name, None).unwrap_err();
                assert!(matches!(error, PullError::NotPublished { .. }), "{error}");
                let expected = if entry.kind == "conse" {
                    "build_default_pack.py"
                } else {
                    "publish with export_clip.py"
                };
                assert!(
                    error
                        .to_string()
                        .to_lowercase()
                        .contains(&expected.to_lowercase()),
                    "{error}"
                );
            }
        }
        let mirror = resolve(&catalog, "openai-clip-vit-b-32", Some("http://h/p")).unwrap();
        assert_eq!(mirror.base_url, "http://h/p");
        assert!(matches!(
            resolve(&catalog, "nope", None),
            Err(PullError::NotInCatalog { .. })
        ));
    }

    #[test]
    fn names_and_paths_stay_inside_the_models_directory() {
        for bad in ["", ".partial", "../x", "a/b", "a b"] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        check_name("openai-clip-vit-b-32").unwrap();
        for bad in ["../x", "/etc/passwd", "a/../../b", ""] {
            assert!(check_relative(bad).is_err(), "{bad}");
        }
        check_relative("onnx/text.onnx").unwrap();
    }
}
