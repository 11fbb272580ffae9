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

/// Opens a model with `threads` intra-op threads.
pub fn session(environment: &Environment, model: &Path, threads: usize) -> Result<Session, String> {
    let fail = |e: &dyn std::fmt::Display| format!("cannot load model {}: {e}", model.display());
    Session::builder(environment)
        .map_err(|e| fail(&e))?
        .with_intra_threads(threads)
        .map_err(|e| fail(&e))?
        .commit_from_file(model)
        .map_err(|e| fail(&e))
}
