//! Model packs: a directory with a `manifest.json` naming ONNX encoders, a
//! tokenizer, image preprocessing, the bridge between image and text space,
//! score calibration and checksums. Workers only ever read the manifest, so
//! any pack of a supported shape runs without code changes.

pub mod import;
mod manifest;
pub mod pull;

pub use manifest::{
    Bridge, Calibrations, ImageEncoder, Manifest, TextEncoder, TextInputs, TokenizerKind,
};

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[derive(Debug, thiserror::Error)]
pub enum PackError {
    #[error("model pack {dir}: cannot read manifest.json: {source}")]
    ReadManifest {
        dir: PathBuf,
        source: std::io::Error,
    },
    #[error("model pack {dir}: invalid manifest.json: {source}")]
    ParseManifest {
        dir: PathBuf,
        source: serde_json::Error,
    },
    #[error("model pack {dir}: {message}")]
    Invalid { dir: PathBuf, message: String },
    #[error("model pack {dir}: file {file} is missing or unreadable: {source}")]
    MissingFile {
        dir: PathBuf,
        file: String,
        source: std::io::Error,
    },
    #[error("model pack {dir}: checksum mismatch for {file} (expected {expected}, found {found})")]
    Checksum {
        dir: PathBuf,
        file: String,
        expected: String,
        found: String,
    },
}

/// A model pack on disk.
#[derive(Debug, Clone)]
pub struct ModelPack {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl ModelPack {
    /// Reads and validates the manifest (no checksums: see [`ModelPack::verify`]).
    pub fn open(dir: &Path) -> Result<ModelPack, PackError> {
        let path = dir.join("manifest.json");
        let text = std::fs::read_to_string(&path).map_err(|source| PackError::ReadManifest {
            dir: dir.to_path_buf(),
            source,
        })?;
        let manifest: Manifest =
            serde_json::from_str(&text).map_err(|source| PackError::ParseManifest {
                dir: dir.to_path_buf(),
                source,
            })?;
        manifest.validate().map_err(|message| PackError::Invalid {
            dir: dir.to_path_buf(),
            message,
        })?;
        Ok(ModelPack {
            dir: dir.to_path_buf(),
            manifest,
        })
    }

    /// Path of a file named by the manifest.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// Checks every file listed in the manifest against its sha256.
    pub fn verify(&self) -> Result<(), PackError> {
        for (file, expected) in &self.manifest.files {
            let found = sha256_file(&self.file(file)).map_err(|source| PackError::MissingFile {
                dir: self.dir.clone(),
                file: file.clone(),
                source,
            })?;
            if !found.eq_ignore_ascii_case(expected) {
                return Err(PackError::Checksum {
                    dir: self.dir.clone(),
                    file: file.clone(),
                    expected: expected.clone(),
                    found,
                });
            }
        }
        Ok(())
    }
}

/// Hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher)?;
    Ok(hex::encode(hasher.finalize()))
}
