//! Segment covers: pick a frame that shows something, write it as a small
//! JPEG without ever exposing a half-written file to the web server.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use image::RgbImage;
use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;

use super::error::{MediaError, Result};

/// Width of written thumbnails (narrower frames are not enlarged).
pub const THUMBNAIL_WIDTH: u32 = 320;

/// JPEG quality of thumbnails: small files, no visible blocking at 320 px.
const THUMBNAIL_QUALITY: u8 = 80;

/// Mean luma below which a frame counts as dark (fades, black frames), or
/// above which as blank (white flashes, title cards).
const DARK_LUMA: f64 = 28.0;
const BLANK_LUMA: f64 = 235.0;

/// Picks the frame that best represents a segment: the one with the most
/// luma contrast (standard deviation), with mostly dark or blank frames
/// ranked after any that are not. Ties go to the frame nearest the middle.
/// `None` only for an empty slice.
pub fn pick_thumbnail(frames: &[RgbImage]) -> Option<usize> {
    let middle = frames.len() / 2;
    let mut order: Vec<usize> = (0..frames.len()).collect();
    order.sort_by_key(|&i| i.abs_diff(middle));
    let mut best: Option<(usize, f64)> = None;
    for i in order {
        let score = interest(&frames[i]);
        if best.is_none_or(|(_, s)| score > s) {
            best = Some((i, score));
        }
    }
    best.map(|(i, _)| i)
}

/// Luma standard deviation, heavily discounted for dark or blank frames.
fn interest(frame: &RgbImage) -> f64 {
    // Every 4th pixel is plenty for a mean and a spread.
    let (mut n, mut sum, mut sum_sq) = (0f64, 0f64, 0f64);
    for px in frame.pixels().step_by(4) {
        let [r, g, b] = px.0;
        let y = 0.299 * f64::from(r) + 0.587 * f64::from(g) + 0.114 * f64::from(b);
        n += 1.0;
        sum += y;
        sum_sq += y * y;
    }
    if n == 0.0 {
        return 0.0;
    }
    let mean = sum / n;
    let spread = (sum_sq / n - mean * mean).max(0.0).sqrt();
    if !(DARK_LUMA..=BLANK_LUMA).contains(&mean) {
        // Still comparable among themselves, but below any normal frame
        // (whose spread is at most 128).
        spread / 1000.0
    } else {
        spread + 1.0
    }
}

/// Writes `frame` as a JPEG thumbnail [`THUMBNAIL_WIDTH`] pixels wide to
/// `path`, creating parent directories. The file appears atomically: it is
/// written beside its destination and renamed into place.
pub fn write_thumbnail(frame: &RgbImage, path: &Path) -> Result<()> {
    let fail = |message: String| MediaError::Thumbnail {
        path: path.to_owned(),
        message,
    };
    let (w, h) = frame.dimensions();
    if w == 0 || h == 0 {
        return Err(fail("the frame is empty".into()));
    }
    let resized;
    let image = if w > THUMBNAIL_WIDTH {
        let height =
            ((f64::from(h) * f64::from(THUMBNAIL_WIDTH) / f64::from(w)).round() as u32).max(1);
        resized = image::imageops::resize(frame, THUMBNAIL_WIDTH, height, FilterType::Triangle);
        &resized
    } else {
        frame
    };
    let mut jpeg = Vec::new();
    JpegEncoder::new_with_quality(&mut jpeg, THUMBNAIL_QUALITY)
        .encode_image(image)
        .map_err(|e| fail(e.to_string()))?;
    write_atomically(path, &jpeg).map_err(|e| fail(e.to_string()))
}

/// Writes `bytes` to a temporary sibling of `path`, then renames it over
/// `path`: readers see the old file or the new one, never a torn one.
fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path.file_name().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "the path has no file name",
        )
    })?;
    // Unique per process and call, so concurrent writers never share one.
    let tmp = dir.join(format!(
        ".{}.{}-{}.tmp",
        name.to_string_lossy(),
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut file = std::fs::File::create(&tmp)?;
        // No fsync: rename alone keeps readers from seeing a torn file, and
        // a thumbnail lost in a power cut is re-made by re-ingesting; a sync
        // per segment would cost more than decoding it.
        file.write_all(bytes)?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(v: u8) -> RgbImage {
        RgbImage::from_pixel(64, 36, image::Rgb([v, v, v]))
    }

    fn stripes(lo: u8, hi: u8) -> RgbImage {
        RgbImage::from_fn(64, 36, |x, _| {
            let v = if x % 8 < 4 { lo } else { hi };
            image::Rgb([v, v, v])
        })
    }

    #[test]
    fn prefers_detail_over_black_blank_and_flat() {
        let frames = vec![flat(0), stripes(60, 200), flat(255), flat(128)];
        assert_eq!(pick_thumbnail(&frames), Some(1));
        // A dark but detailed frame loses to a plain mid-grey one with detail.
        let frames = vec![stripes(0, 40), stripes(100, 130)];
        assert_eq!(pick_thumbnail(&frames), Some(1));
        // All black: still one, the middle.
        assert_eq!(pick_thumbnail(&[flat(0), flat(0), flat(0)]), Some(1));
        assert_eq!(pick_thumbnail(&[]), None);
    }

    #[test]
    fn writes_a_small_jpeg_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a/b/thumb.jpg");
        let frame = RgbImage::from_fn(455, 256, |x, y| {
            image::Rgb([(x % 256) as u8, (y % 256) as u8, 90])
        });
        write_thumbnail(&frame, &path).unwrap();
        let back = image::open(&path).unwrap();
        assert_eq!((back.width(), back.height()), (320, 180));
        // Only the thumbnail is left behind, no temporary file.
        let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![std::ffi::OsString::from("thumb.jpg")]);
        // Overwriting works too.
        write_thumbnail(&flat(10), &path).unwrap();
        assert_eq!(image::open(&path).unwrap().width(), 64);
    }
}
