//! `vidseek models import DIR`: installs a pack directory that is already on
//! this machine (exported with `export_clip.py`, built by
//! `build_default_pack.py`, or copied from a machine with internet). The
//! source is verified first and the copy again before it is renamed into
//! place, so a bad copy never becomes an installed pack.

use std::path::{Path, PathBuf};

use super::pull::{PARTIAL_DIR, PullError, check_name, check_relative};
use super::{ModelPack, PackError};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error(transparent)]
    Pull(#[from] PullError),
    #[error(transparent)]
    Pack(#[from] PackError),
    #[error("{} is already installed in the models directory itself", dir.display())]
    SameDirectory { dir: PathBuf },
    #[error("cannot copy {} to {}: {source}", from.display(), to.display())]
    Copy {
        from: PathBuf,
        to: PathBuf,
        source: std::io::Error,
    },
}

/// Copies the pack at `source` into `{models_dir}/{name}` (`name` defaults to
/// the manifest's). Only `manifest.json` and the files the manifest lists
/// are copied. Blocking file I/O: call it from a blocking context.
pub fn import(
    source: &Path,
    models_dir: &Path,
    name: Option<&str>,
    force: bool,
) -> Result<ModelPack, ImportError> {
    let pack = ModelPack::open(source)?;
    for file in pack.manifest.files.keys() {
        check_relative(file)?;
    }
    pack.verify()?;
    let name = name.unwrap_or(&pack.manifest.name).to_string();
    check_name(&name)?;
    let dest = models_dir.join(&name);
    if same_dir(source, &dest) {
        return Err(ImportError::SameDirectory { dir: dest });
    }
    if dest.exists() && !force {
        return Err(PullError::AlreadyInstalled { name, dir: dest }.into());
    }
    let staging = models_dir
        .join(PARTIAL_DIR)
        .join(format!("{name}.import-{}", uuid::Uuid::new_v4()));
    let result = copy_pack(&pack, &staging).and_then(|()| {
        ModelPack::open(&staging)?.verify()?;
        Ok(super::pull::install(&staging, &dest, models_dir)?)
    });
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result?;
    Ok(ModelPack::open(&dest)?)
}

fn copy_pack(pack: &ModelPack, staging: &Path) -> Result<(), ImportError> {
    let names =
        std::iter::once("manifest.json").chain(pack.manifest.files.keys().map(String::as_str));
    for file in names {
        let from = pack.dir.join(file);
        let to = staging.join(file);
        let copy_error = |source| ImportError::Copy {
            from: from.clone(),
            to: to.clone(),
            source,
        };
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent).map_err(copy_error)?;
        }
        std::fs::copy(&from, &to).map_err(copy_error)?;
    }
    Ok(())
}

fn same_dir(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}
