//! Where the tests find what the set-up installed: the binary, the sample
//! library, the model pack and ONNX Runtime. A missing piece fails the test
//! with the command that provides it: skipping would pass without testing.

use std::path::{Path, PathBuf};

/// The workspace root (this crate lives in `tests/`).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// The `vidseek` binary: `VIDSEEK_BIN`, else `target/debug/vidseek`. A missing
/// binary fails the test: skipping would pass without testing anything.
pub fn vidseek_bin() -> PathBuf {
    installed(
        "VIDSEEK_BIN",
        "target/debug/vidseek",
        "build it with `cargo build -p vidseek` (make test does) or set VIDSEEK_BIN",
    )
}

/// The set-up's Python (numpy, onnx, PyYAML): `VIDSEEK_TEST_PYTHON` (make
/// test sets it to the data directory's), else `.vidseek/python`.
pub fn python() -> PathBuf {
    installed(
        "VIDSEEK_TEST_PYTHON",
        ".vidseek/python/bin/python",
        "run deploy/setup.sh (make test does) or set VIDSEEK_TEST_PYTHON",
    )
}

/// The file `var` names, else `default` under the workspace root; a
/// missing one fails the test with `remedy`.
fn installed(var: &str, default: &str, remedy: &str) -> PathBuf {
    let path = std::env::var_os(var)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(default));
    assert!(path.is_file(), "{} is missing: {remedy}", path.display());
    path
}

/// A file of the sample library (`VIDSEEK_SAMPLES_DIR`, which make test
/// sets to the data directory's, else `.vidseek/samples`).
pub fn sample(name: &str) -> PathBuf {
    let dir = std::env::var_os("VIDSEEK_SAMPLES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".vidseek/samples"));
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run deploy/setup.sh (make test does) to fetch the sample library",
        path.display()
    );
    path
}

/// The model pack and ONNX Runtime the encoder needs: from the environment
/// (`. .vidseek/env`), else where deploy/setup.sh puts them.
pub fn model_env() -> Vec<(&'static str, PathBuf)> {
    let data = workspace_root().join(".vidseek");
    let pack = std::env::var_os("VIDSEEK_MODEL_PACK")
        .map(PathBuf::from)
        .unwrap_or_else(|| data.join("models/default"));
    assert!(
        pack.join("manifest.json").is_file(),
        "model pack {} is missing: run deploy/setup.sh (make test does) or set VIDSEEK_MODEL_PACK",
        pack.display()
    );
    let ort = std::env::var_os("ORT_DYLIB_PATH")
        .map(PathBuf::from)
        .or_else(|| find_onnxruntime(&data.join("python")))
        .unwrap_or_else(|| {
            panic!(
                "no ONNX Runtime library under {}: run deploy/setup.sh or set ORT_DYLIB_PATH",
                data.join("python").display()
            )
        });
    assert!(
        ort.is_file(),
        "ONNX Runtime library {} is missing: run deploy/setup.sh or set ORT_DYLIB_PATH",
        ort.display()
    );
    vec![("VIDSEEK_MODEL_PACK", pack), ("ORT_DYLIB_PATH", ort)]
}

/// `libonnxruntime.so*` somewhere under `python/lib/*/site-packages`.
fn find_onnxruntime(python: &Path) -> Option<PathBuf> {
    for version in std::fs::read_dir(python.join("lib")).ok()?.flatten() {
        let capi = version.path().join("site-packages/onnxruntime/capi");
        for file in std::fs::read_dir(capi).into_iter().flatten().flatten() {
            let name = file.file_name().to_string_lossy().into_owned();
            if name.starts_with("libonnxruntime.so") {
                return Some(file.path());
            }
        }
    }
    None
}
