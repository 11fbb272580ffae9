//! Which files may be ingested, and what a video's id is.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use vidseek_protocol::error::{ErrorBody, ErrorCode};

/// Bytes hashed at each end of a file for its id.
const ID_SAMPLE_BYTES: u64 = 1024 * 1024;

/// Resolves a user-given path to a canonical file inside one of `roots`.
/// Symlinks and `..` are resolved first, so neither can escape a root.
pub fn resolve_media_path(path: &str, roots: &[PathBuf]) -> Result<PathBuf, ErrorBody> {
    // No file name holds a NUL byte; without this it reads as "not found".
    if path.contains('\0') {
        return Err(ErrorBody::new(
            ErrorCode::BadRequest,
            "path contains a NUL byte",
        ));
    }
    let given = Path::new(path);
    if !given.is_absolute() {
        return Err(ErrorBody::new(
            ErrorCode::BadRequest,
            format!("path must be absolute: {path}"),
        ));
    }
    let canonical = given
        .canonicalize()
        .map_err(|e| ErrorBody::new(ErrorCode::NotFound, format!("cannot open {path}: {e}")))?;
    let inside = roots
        .iter()
        .filter_map(|root| root.canonicalize().ok())
        .any(|root| canonical.starts_with(root));
    if !inside {
        let allowed: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        return Err(ErrorBody::new(
            ErrorCode::ForbiddenPath,
            format!(
                "{path} is outside the media roots ({}); set VIDSEEK_MEDIA_ROOTS to allow it",
                allowed.join(":")
            ),
        ));
    }
    if !canonical.is_file() {
        return Err(ErrorBody::new(
            ErrorCode::BadRequest,
            format!("{path} is not a file"),
        ));
    }
    Ok(canonical)
}

/// A video's id from its content: the size and the first and last MiB.
/// The same file ingested twice (under any name) is one video; reading two
/// MiB keeps this instant for multi-gigabyte files.
pub fn video_id(path: &Path) -> std::io::Result<String> {
    let mut file = std::fs::File::open(path)?;
    let size = file.metadata()?.len();
    let mut hasher = Sha256::new();
    hasher.update(size.to_le_bytes());
    let mut buffer = Vec::with_capacity(ID_SAMPLE_BYTES as usize);
    (&mut file).take(ID_SAMPLE_BYTES).read_to_end(&mut buffer)?;
    hasher.update(&buffer);
    if size > ID_SAMPLE_BYTES {
        buffer.clear();
        file.seek(SeekFrom::Start(
            size.saturating_sub(ID_SAMPLE_BYTES).max(ID_SAMPLE_BYTES),
        ))?;
        file.take(ID_SAMPLE_BYTES).read_to_end(&mut buffer)?;
        hasher.update(&buffer);
    }
    Ok(id_of(hasher))
}

/// A letter first and no '-', so ids are valid NATS tokens and KV keys and
/// segment ids (`{video}-{index}`) split back.
fn id_of(hasher: Sha256) -> String {
    format!("v{}", &hex::encode(hasher.finalize())[..16])
}

/// The id of an upload in the NATS object store, from its size and the
/// SHA-256 digest the store recorded: the same file uploaded twice is one
/// video, without reading it back.
pub fn video_id_of_upload(size: u64, digest: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(size.to_le_bytes());
    hasher.update(digest.as_bytes());
    id_of(hasher)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_must_stay_inside_the_roots() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let inside_file = root.path().join("a.mp4");
        std::fs::write(&inside_file, b"x").unwrap();
        let outside_file = outside.path().join("b.mp4");
        std::fs::write(&outside_file, b"x").unwrap();
        let roots = vec![root.path().to_path_buf()];

        assert!(resolve_media_path(inside_file.to_str().unwrap(), &roots).is_ok());
        let sneaky = format!(
            "{}/../{}/b.mp4",
            root.path().display(),
            outside.path().file_name().unwrap().to_str().unwrap()
        );
        let code = |p: &str| resolve_media_path(p, &roots).unwrap_err().error.code;
        assert_eq!(code(&sneaky), ErrorCode::ForbiddenPath);
        assert_eq!(
            code(outside_file.to_str().unwrap()),
            ErrorCode::ForbiddenPath
        );
        assert_eq!(code("relative.mp4"), ErrorCode::BadRequest);
        assert_eq!(
            code(&format!("{}/a.mp4\0.srt", root.path().display())),
            ErrorCode::BadRequest
        );
        assert_eq!(
            code(&format!("{}/missing.mp4", root.path().display())),
            ErrorCode::NotFound
        );
        assert_eq!(code(root.path().to_str().unwrap()), ErrorCode::BadRequest);
        #[cfg(unix)]
        {
            let link = root.path().join("link.mp4");
            std::os::unix::fs::symlink(&outside_file, &link).unwrap();
            assert_eq!(code(link.to_str().unwrap()), ErrorCode::ForbiddenPath);
        }
    }

    #[test]
    fn ids_follow_content_not_names() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b, c) = (
            dir.path().join("a"),
            dir.path().join("b"),
            dir.path().join("c"),
        );
        let big: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&a, &big).unwrap();
        std::fs::write(&b, &big).unwrap();
        let mut changed = big.clone();
        *changed.last_mut().unwrap() ^= 1;
        std::fs::write(&c, &changed).unwrap();
        let id = video_id(&a).unwrap();
        assert_eq!(id, video_id(&b).unwrap());
        assert_ne!(id, video_id(&c).unwrap());
        assert!(id.starts_with('v') && id.len() == 17 && !id.contains('-'));
    }
}
