//! The ONNX Runtime environment and sessions. The shared library is loaded at
//! run time (`ort`'s load-dynamic): from `ORT_DYLIB_PATH`, else from the
//! PyPI `onnxruntime` wheel that the set-up installs in the data directory.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use ort::environment::Environment;
use ort::session::Session;

/// ONNX Runtime allows one environment per process; every session shares it.
static ENVIRONMENT: OnceLock<Result<Environment, String>> = OnceLock::new();

/// Finds the ONNX Runtime library: `ORT_DYLIB_PATH`, else the wheel in
/// `{data_dir}/python`.
pub fn find_library(data_dir: &Path) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("ORT_DYLIB_PATH") {
        return Some(PathBuf::from(path));
    }
    let lib = data_dir.join("python/lib");
    let pythons = std::fs::read_dir(&lib).ok()?;
    for python in pythons.flatten() {
        let capi = python.path().join("site-packages/onnxruntime/capi");
        let Ok(files) = std::fs::read_dir(&capi) else {
            continue;
        };
        let mut candidates: Vec<PathBuf> = files
            .flatten()
            .map(|f| f.path())
            .filter(|p| {
                p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("libonnxruntime.so"))
            })
            .collect();
        candidates.sort();
        if let Some(found) = candidates.pop() {
            return Some(found);
        }
    }
    None
}

/// Loads the library once and returns the process-wide environment.
pub fn environment(library: &Path) -> Result<&'static Environment, String> {
    ENVIRONMENT
        .get_or_init(|| {
            let builder = ort::init_from(library).map_err(|e| {
                format!(
                    "cannot load ONNX Runtime from {}: {e} (run deploy/setup.sh, or set ORT_DYLIB_PATH)",
                    library.display()
                )
            })?;
            builder
                .with_name("vidseek")
                .build()
                .map_err(|e| format!("cannot start ONNX Runtime: {e}"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Opens a model with `threads` intra-op threads, on the execution provider
/// `VIDSEEK_ENCODER_PROVIDER` names (see [`Provider::from_env`]).
pub fn session(environment: &Environment, model: &Path, threads: usize) -> Result<Session, String> {
    let fail = |e: &dyn std::fmt::Display| format!("cannot load model {}: {e}", model.display());
    let builder = || {
        Session::builder(environment)
            .map_err(|e| fail(&e))?
            .with_intra_threads(threads)
            .map_err(|e| fail(&e))
    };
    let provider = Provider::from_env();
    if provider == Provider::Cuda {
        let cuda = builder()?
            .with_execution_providers([ort::ep::CUDA::default().build().error_on_failure()])
            .map_err(|e| e.to_string())
            .and_then(|mut b| b.commit_from_file(model).map_err(|e| e.to_string()));
        match cuda {
            Ok(session) => {
                log_provider_once("cuda", None);
                return Ok(session);
            }
            // The CPU wheel, no GPU or a missing CUDA library: the encoder
            // still runs, on the CPU, and says so.
            Err(err) => log_provider_once("cpu", Some(&err)),
        }
    } else {
        log_provider_once("cpu", None);
    }
    builder()?.commit_from_file(model).map_err(|e| fail(&e))
}

/// The ONNX Runtime execution provider the encoder asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Provider {
    Cpu,
    /// CUDA (the `onnxruntime-gpu` wheel as `ORT_DYLIB_PATH`), falling back
    /// to the CPU when it cannot start.
    Cuda,
}

impl Provider {
    /// `VIDSEEK_ENCODER_PROVIDER=cuda|cpu` (default cpu; anything else is
    /// cpu with a warning).
    pub fn from_env() -> Provider {
        match std::env::var("VIDSEEK_ENCODER_PROVIDER").as_deref() {
            Ok("cuda") => Provider::Cuda,
            Ok("cpu") | Err(_) => Provider::Cpu,
            Ok(other) => {
                tracing::warn!(
                    provider = other,
                    "unknown VIDSEEK_ENCODER_PROVIDER; using cpu"
                );
                Provider::Cpu
            }
        }
    }
}

/// One line per process saying where the models run (text and image
/// sessions are opened separately; they share a provider).
fn log_provider_once(provider: &str, cuda_error: Option<&str>) {
    static LOGGED: OnceLock<()> = OnceLock::new();
    LOGGED.get_or_init(|| match cuda_error {
        None => tracing::info!(provider, "ONNX Runtime execution provider"),
        Some(error) => tracing::warn!(
            provider,
            error,
            "CUDA execution provider unavailable; ONNX Runtime runs on the CPU"
        ),
    });
}
