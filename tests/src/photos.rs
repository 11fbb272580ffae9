//! Query pictures made on the spot (ffmpeg and the image crate): photos of a chosen file size (what a
//! phone or camera produces), and the broken images users and attackers send.

use std::io::Cursor;
use std::path::Path;

use image::{ImageFormat, RgbImage};

use crate::media::run_ffmpeg;

pub const MIB: usize = 1024 * 1024;

/// A valid 2x2 PNG, base64: the smallest real image query.
pub const TINY_PNG_BASE64: &str = "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGM8UaHBwMDAxMDAwMDAAAARqgFsecZ2JgAAAABJRU5ErkJggg==";

/// [`TINY_PNG_BASE64`] as bytes.
pub fn tiny_png() -> Vec<u8> {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD
        .decode(TINY_PNG_BASE64)
        .expect("valid base64")
}

/// A synthetic picture with shapes and gradients, for tests that need an
/// image but no particular content.
pub fn test_card(width: u32, height: u32) -> RgbImage {
    RgbImage::from_fn(width, height, |x, y| {
        let (u, v) = (x * 255 / width.max(1), y * 255 / height.max(1));
        let square = (x / 40 + y / 40) % 2 == 0;
        image::Rgb([u as u8, v as u8, if square { 200 } else { 40 }])
    })
}

/// One frame of a video, at its own resolution.
pub fn video_frame(video: &Path, at_secs: f64) -> RgbImage {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("frame.png");
    run_ffmpeg(
        &[
            "-ss".into(),
            at_secs.to_string(),
            "-i".into(),
            video.display().to_string(),
            "-frames:v".into(),
            "1".into(),
            out.display().to_string(),
        ],
        "a video frame",
    );
    image::open(&out).expect("ffmpeg wrote a PNG").to_rgb8()
}

/// A frame of the sample photos video's coffee photo (8–12 s), cropped and
/// scaled, as a JPEG: a realistic image query for it.
pub fn coffee_picture(dir: &Path) -> Vec<u8> {
    let out = dir.join("coffee.jpg");
    run_ffmpeg(
        &[
            "-ss".into(),
            "10".into(),
            "-i".into(),
            crate::paths::sample("photos.mp4").display().to_string(),
            "-frames:v".into(),
            "1".into(),
            "-vf".into(),
            "crop=iw*0.8:ih*0.8,scale=300:-2".into(),
            out.display().to_string(),
        ],
        "the coffee picture",
    );
    std::fs::read(out).expect("ffmpeg wrote the picture")
}

/// Grain strength (ffmpeg's `noise` filter) beyond which a photo stops
/// looking like one; larger files then come from more pixels.
const MAX_GRAIN: u32 = 40;

/// A JPEG of `picture` upscaled to at least 4000 px wide, with sensor-like
/// grain, whose size is between 90 % and 100 % of `target` bytes. At 4000 px
/// the grain is adjusted (a camera's file size comes from its noise and
/// detail); past what heavy grain gives, the pixel count. ffmpeg does the
/// pixel work: tests build without optimisation.
pub fn photo_of_size(picture: &RgbImage, target: usize) -> Vec<u8> {
    let dir = tempfile::tempdir().expect("temp dir");
    let source = dir.path().join("source.png");
    std::fs::write(&source, png(picture)).expect("write the source picture");
    let out = dir.path().join("photo.jpg");
    let make = |width: u32, grain: u32| -> Vec<u8> {
        run_ffmpeg(
            &[
                "-i".into(),
                source.display().to_string(),
                "-vf".into(),
                format!("scale={width}:-2:flags=bicubic,noise=alls={grain}:allf=u"),
                "-q:v".into(),
                "2".into(),
                "-frames:v".into(),
                "1".into(),
                out.display().to_string(),
            ],
            "a photo",
        );
        std::fs::read(&out).expect("ffmpeg wrote the photo")
    };
    let fits = |jpeg: &[u8]| (target / 100 * 90..=target).contains(&jpeg.len());
    let clean = make(4000, 0);
    assert!(
        clean.len() <= target,
        "a 4000 px photo is {} bytes even without grain, over the {target} asked for",
        clean.len()
    );
    // The most grain a 4000 px photo of at most `target` bytes takes
    // (bisection: the size follows the grain), then as many more pixels at
    // that grain as the target allows (the size follows the pixel count,
    // unlike the whole-numbered grain, smoothly).
    let (mut grain, mut best) = (0, clean);
    let heavy = make(4000, MAX_GRAIN);
    if heavy.len() <= target {
        (grain, best) = (MAX_GRAIN, heavy);
    } else {
        let mut over = MAX_GRAIN;
        while over - grain > 1 {
            let middle = (grain + over) / 2;
            let jpeg = make(4000, middle);
            if jpeg.len() <= target {
                (grain, best) = (middle, jpeg);
            } else {
                over = middle;
            }
        }
    }
    let mut width = 4000.0;
    for _ in 0..8 {
        if fits(&best) {
            return best;
        }
        width *= (target as f64 * 0.95 / best.len() as f64).sqrt();
        best = make(width.round() as u32 / 2 * 2, grain);
    }
    panic!("no photo of about {target} bytes after 8 tries");
}

/// `picture` as a PNG.
pub fn png(picture: &RgbImage) -> Vec<u8> {
    let mut png = Vec::new();
    picture
        .write_to(&mut Cursor::new(&mut png), ImageFormat::Png)
        .expect("PNG encoding");
    png
}

/// `photo` made `extra` bytes bigger, still a valid JPEG: decoders stop at
/// the end-of-image marker and ignore what trails it.
pub fn padded(photo: &[u8], extra: usize) -> Vec<u8> {
    let mut out = photo.to_vec();
    out.resize(photo.len() + extra, 0);
    out
}

/// A PNG whose header, checksum included, claims `width` x `height` pixels
/// but which carries almost no data: a decompression bomb as a decoder
/// first sees it (a real one would inflate to gigabytes).
pub fn png_bomb(width: u32, height: u32) -> Vec<u8> {
    let mut png = png(&RgbImage::new(4, 4));
    // Signature (8), IHDR length and type (8), then width and height.
    png[16..20].copy_from_slice(&width.to_be_bytes());
    png[20..24].copy_from_slice(&height.to_be_bytes());
    let mut crc = flate2::Crc::new();
    crc.update(&png[12..29]);
    png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
    png
}

/// The first half of a valid photo: what an interrupted upload leaves.
pub fn truncated(photo: &[u8]) -> Vec<u8> {
    photo[..photo.len() / 2].to_vec()
}
