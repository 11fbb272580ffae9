//! Query images, reduced to what the encoder needs before they cross NATS.
//!
//! A NATS message is 1 MiB by default, while people search with phone photos
//! of 2–20 MiB. The encoder looks at a few hundred pixels a side, so every
//! edge that accepts an image (the gateway's routes, the CLI) decodes it here
//! and sends a JPEG whose longest side is at most [`REDUCED_SIDE_PX`] and
//! whose size is at most [`REDUCED_MAX_BYTES`]; the query stage uses
//! [`check_decodable`] to refuse, from the header alone, what a raw NATS
//! client sends that no stage should decode.
//!
//! Decoding is bounded before anything is allocated: the header's dimensions
//! and the decoded size are checked against [`MAX_SIDE_PX`] and
//! [`MAX_DECODED_BYTES`] (the encoder's own limits), so a small file that
//! declares an enormous picture is refused without being expanded. The work
//! is CPU-bound: call [`reduce`] from a blocking thread.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageDecoder, ImageError, ImageReader, Limits, RgbImage};
use vidseek_protocol::{ErrorBody, ErrorCode};

/// Longest side of a reduced image: well above what any model pack's encoder
/// samples (224–336 px), so reducing first does not change what it sees.
pub const REDUCED_SIDE_PX: u32 = 1024;
/// Largest reduced image: its base64 (4/3) plus a JSON envelope still fits a
/// default 1 MiB NATS message, so the CLI's JSON requests fit too.
pub const REDUCED_MAX_BYTES: usize = 700 * 1024;
/// Longest side any stage decodes.
pub const MAX_SIDE_PX: u32 = 16_384;
/// Largest decoded picture any stage allocates.
pub const MAX_DECODED_BYTES: u64 = 512 * 1024 * 1024;

/// What a NATS client that sent a too-large image should do instead.
pub const NATS_CLIENT_ADVICE: &str = "reduce the image to at most 1024 px on its longest side \
     (and under the NATS server's message limit, 1 MiB by default) before sending it, \
     or search through the HTTP API, which reduces it for you";

/// Quality steps tried, then smaller sides, until the JPEG fits the budget.
/// Noise-like photos compress worst; 512 px at quality 60 fits any picture.
const ATTEMPTS: &[(u32, u8)] = &[(1024, 90), (1024, 75), (1024, 60), (768, 60), (512, 60)];

#[derive(Debug, thiserror::Error)]
pub enum QueryImageError {
    #[error("not an image (supported: JPEG, PNG, WebP, GIF, BMP)")]
    NotAnImage,
    #[error(
        "the image is {0}; vidseek decodes at most {MAX_SIDE_PX} px a side and {mib} MiB of pixels",
        mib = MAX_DECODED_BYTES >> 20
    )]
    TooLargeToDecode(String),
    #[error("cannot decode the image: {0}")]
    Corrupt(String),
    #[error("cannot re-encode the image: {0}")]
    Encode(String),
}

impl QueryImageError {
    /// The public error: oversized pictures are `too_large`, anything that
    /// does not decode is `unsupported_media`.
    pub fn to_error_body(&self) -> ErrorBody {
        let code = match self {
            QueryImageError::NotAnImage | QueryImageError::Corrupt(_) => {
                ErrorCode::UnsupportedMedia
            }
            QueryImageError::TooLargeToDecode(_) => ErrorCode::TooLarge,
            QueryImageError::Encode(_) => ErrorCode::Internal,
        };
        ErrorBody::new(code, self.to_string())
    }
}

/// An image ready to cross NATS.
#[derive(Debug, Clone, PartialEq)]
pub struct ReducedImage {
    /// The original bytes when they already fit, else a JPEG.
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
    /// Whether `bytes` were re-encoded (false: the original is sent as is).
    pub reencoded: bool,
}

/// Decodes `bytes` within the limits and returns what the encoder needs: the
/// original when it is small, upright and fits the budget, else a JPEG no
/// larger than [`REDUCED_SIDE_PX`] a side and [`REDUCED_MAX_BYTES`], upright
/// (EXIF orientation applied) and with transparency flattened onto white,
/// as the encoder itself would flatten it.
pub fn reduce(bytes: &[u8]) -> Result<ReducedImage, QueryImageError> {
    let mut decoder = open(bytes)?;
    // Unreadable EXIF is no reason to refuse a picture that decodes.
    let orientation = decoder
        .orientation()
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    let mut image = DynamicImage::from_decoder(decoder).map_err(classify)?;
    let upright = orientation == image::metadata::Orientation::NoTransforms;
    if upright
        && image.width().max(image.height()) <= REDUCED_SIDE_PX
        && bytes.len() <= REDUCED_MAX_BYTES
    {
        return Ok(ReducedImage {
            bytes: bytes.to_vec(),
            width: image.width(),
            height: image.height(),
            reencoded: false,
        });
    }
    image.apply_orientation(orientation);
    let flat = DynamicImage::ImageRgb8(flatten_on_white(image));
    for &(side, quality) in ATTEMPTS {
        let scaled = fit_within(&flat, side);
        let mut jpeg = Vec::new();
        JpegEncoder::new_with_quality(&mut jpeg, quality)
            .encode_image(&scaled)
            .map_err(|e| QueryImageError::Encode(e.to_string()))?;
        if jpeg.len() <= REDUCED_MAX_BYTES {
            return Ok(ReducedImage {
                bytes: jpeg,
                width: scaled.width(),
                height: scaled.height(),
                reencoded: true,
            });
        }
    }
    Err(QueryImageError::Encode(format!(
        "no JPEG of the image fits in {REDUCED_MAX_BYTES} bytes"
    )))
}

/// Reads only the header: the picture's dimensions, or why no stage would
/// decode it. Cheap enough for the async runtime.
pub fn check_decodable(bytes: &[u8]) -> Result<(u32, u32), QueryImageError> {
    open(bytes).map(|decoder| decoder.dimensions())
}

/// For the query stage's public image subject, whose raw NATS clients send
/// pictures unreduced: refuses from the header alone what no stage should
/// decode, telling the client what to do instead. An empty body is left to
/// the request's own validation.
pub fn check_nats_query(bytes: &[u8]) -> Result<(), ErrorBody> {
    if bytes.is_empty() {
        return Ok(());
    }
    check_decodable(bytes).map(|_| ()).map_err(|err| {
        let mut body = err.to_error_body();
        if body.error.code == ErrorCode::TooLarge {
            body.error.message = format!("{}; {NATS_CLIENT_ADVICE}", body.error.message);
        }
        body
    })
}

/// A decoder whose picture is known to fit the limits.
fn open(bytes: &[u8]) -> Result<impl ImageDecoder + '_, QueryImageError> {
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| QueryImageError::Corrupt(e.to_string()))?;
    if reader.format().is_none() {
        return Err(QueryImageError::NotAnImage);
    }
    // Only the allocation cap goes to the decoder: the dimensions are
    // checked below, from the header, before any pixel is allocated, so the
    // error can name them.
    let mut limits = Limits::default();
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    let decoder = reader.into_decoder().map_err(classify)?;
    let (width, height) = decoder.dimensions();
    if width.max(height) > MAX_SIDE_PX || decoder.total_bytes() > MAX_DECODED_BYTES {
        return Err(QueryImageError::TooLargeToDecode(format!(
            "{width}x{height} px"
        )));
    }
    if width == 0 || height == 0 {
        return Err(QueryImageError::Corrupt(format!(
            "the image is {width}x{height} px"
        )));
    }
    Ok(decoder)
}

fn classify(error: ImageError) -> QueryImageError {
    match error {
        ImageError::Limits(e) => QueryImageError::TooLargeToDecode(format!("over a limit ({e})")),
        ImageError::Unsupported(_) => QueryImageError::NotAnImage,
        other => QueryImageError::Corrupt(other.to_string()),
    }
}

/// Composites transparent pixels onto white, as the packs' references do
/// (dropping the alpha channel would show whatever colour hides under it,
/// often black, turning a cut-out object into an object on black); opaque
/// images are only converted (or moved, when they already are RGB). The
/// encoder uses it too, so a picture looks the same at every stage.
pub fn flatten_on_white(image: DynamicImage) -> RgbImage {
    if !image.color().has_alpha() {
        return image.into_rgb8();
    }
    let rgba = image.into_rgba8();
    RgbImage::from_fn(rgba.width(), rgba.height(), |x, y| {
        let [r, g, b, a] = rgba.get_pixel(x, y).0;
        let alpha = a as f32 / 255.0;
        let blend = |c: u8| (c as f32 * alpha + 255.0 * (1.0 - alpha)).round() as u8;
        image::Rgb([blend(r), blend(g), blend(b)])
    })
}

/// Scales down (never up) so the longest side is at most `side`. The
/// `DynamicImage` method, not the generic `imageops` one: it is compiled
/// (optimised) inside the image crate, where the generic one would be
/// instantiated here, unoptimised in development builds and many times slower.
fn fit_within(image: &DynamicImage, side: u32) -> DynamicImage {
    if image.width().max(image.height()) <= side {
        return image.clone();
    }
    image.resize(side, side, FilterType::Triangle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use image::{ImageEncoder, ImageFormat, Rgb, RgbImage, Rgba, RgbaImage};

    fn encode(image: &DynamicImage, format: ImageFormat) -> Vec<u8> {
        let mut out = Vec::new();
        image.write_to(&mut Cursor::new(&mut out), format).unwrap();
        out
    }

    /// Deterministic noise: photos' fine detail is what makes them big.
    fn noisy(width: u32, height: u32) -> RgbImage {
        let mut state = 0x2545_f491_4f6c_dd1du64;
        RgbImage::from_fn(width, height, |x, y| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let n = (state & 0x3f) as u8;
            Rgb([(x % 256) as u8 / 2 + n, (y % 256) as u8 / 2 + n, 96 + n])
        })
    }

    /// A PNG whose header claims `width` x `height`, with a valid checksum,
    /// and almost no data: what a decompression bomb looks like to a decoder.
    fn png_claiming(width: u32, height: u32) -> Vec<u8> {
        let mut png = encode(&DynamicImage::new_rgb8(4, 4), ImageFormat::Png);
        png[16..20].copy_from_slice(&width.to_be_bytes());
        png[20..24].copy_from_slice(&height.to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&png[12..29]);
        png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        png
    }

    #[test]
    fn large_photos_become_small_jpegs() {
        let photo = encode(&noisy(3000, 2000).into(), ImageFormat::Png);
        assert!(photo.len() > REDUCED_MAX_BYTES);
        let reduced = reduce(&photo).unwrap();
        assert!(reduced.reencoded);
        assert_eq!((reduced.width, reduced.height), (1024, 683));
        assert!(
            reduced.bytes.len() <= REDUCED_MAX_BYTES,
            "{}",
            reduced.bytes.len()
        );
        let back = image::load_from_memory(&reduced.bytes).unwrap();
        assert_eq!((back.width(), back.height()), (1024, 683));
        assert_eq!(
            image::guess_format(&reduced.bytes).unwrap(),
            ImageFormat::Jpeg
        );
    }

    #[test]
    fn pure_noise_still_fits_the_budget() {
        let mut state = 1u32;
        let noise = RgbImage::from_fn(2048, 2048, |_, _| {
            state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let [a, b, c, _] = state.to_le_bytes();
            Rgb([a, b, c])
        });
        let reduced = reduce(&encode(&noise.into(), ImageFormat::Png)).unwrap();
        assert!(reduced.bytes.len() <= REDUCED_MAX_BYTES);
        assert!(reduced.width <= REDUCED_SIDE_PX);
    }

    #[test]
    fn small_upright_images_pass_unchanged() {
        let small = encode(&noisy(300, 200).into(), ImageFormat::Jpeg);
        let reduced = reduce(&small).unwrap();
        assert!(!reduced.reencoded);
        assert_eq!(reduced.bytes, small);
        assert_eq!((reduced.width, reduced.height), (300, 200));
    }

    #[test]
    fn exif_orientation_is_applied() {
        // TIFF header (little endian), one IFD entry: Orientation (0x0112),
        // SHORT, 1 value, 6 = rotate 90° clockwise to display.
        let mut exif = b"II*\0\x08\0\0\0\x01\0".to_vec();
        exif.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0]);
        let mut jpeg = Vec::new();
        let mut encoder = JpegEncoder::new_with_quality(&mut jpeg, 90);
        encoder.set_exif_metadata(exif).unwrap();
        let stored = noisy(400, 200);
        encoder
            .write_image(stored.as_raw(), 400, 200, image::ExtendedColorType::Rgb8)
            .unwrap();
        let reduced = reduce(&jpeg).unwrap();
        assert!(reduced.reencoded);
        assert_eq!((reduced.width, reduced.height), (200, 400));
    }

    #[test]
    fn transparency_is_flattened_onto_white() {
        let mut rgba = RgbaImage::from_pixel(1200, 10, Rgba([0, 0, 0, 0]));
        rgba.put_pixel(0, 0, Rgba([0, 0, 0, 255]));
        let png = encode(&rgba.into(), ImageFormat::Png);
        let reduced = reduce(&png).unwrap();
        let back = image::load_from_memory(&reduced.bytes).unwrap().to_rgb8();
        let centre = back.get_pixel(back.width() / 2, back.height() / 2).0;
        assert!(centre.iter().all(|&c| c > 245), "{centre:?}");
    }

    #[test]
    fn bombs_are_refused_from_the_header() {
        for (w, h) in [(50_000, 50_000), (16_000, 16_000), (MAX_SIDE_PX + 1, 1)] {
            let bomb = png_claiming(w, h);
            let err = reduce(&bomb).unwrap_err();
            assert!(
                matches!(err, QueryImageError::TooLargeToDecode(_)),
                "{w}x{h}: {err}"
            );
            assert_eq!(err.to_error_body().error.code, ErrorCode::TooLarge);
            assert!(err.to_string().contains(&format!("{w}x{h} px")), "{err}");
            assert!(check_decodable(&bomb).is_err());
        }
        assert_eq!(
            check_decodable(&png_claiming(1000, 800)).unwrap(),
            (1000, 800)
        );
        let advice = check_nats_query(&png_claiming(50_000, 50_000)).unwrap_err();
        assert!(advice.error.message.contains("1024 px"), "{advice:?}");
        assert!(advice.error.message.contains("HTTP API"), "{advice:?}");
        assert!(check_nats_query(&png_claiming(1000, 800)).is_ok());
        // Garbage after a GIF signature is read as the picture's size: here
        // 25120x29813 px, refused as too large before anything is decoded.
        let err = reduce(b"GIF89a but not really").unwrap_err();
        assert!(matches!(err, QueryImageError::TooLargeToDecode(_)), "{err}");
    }

    #[test]
    fn garbage_and_truncated_images_are_unsupported_media() {
        let err = reduce(b"definitely not an image").unwrap_err();
        assert!(matches!(err, QueryImageError::NotAnImage), "{err}");
        let photo = encode(&noisy(64, 64).into(), ImageFormat::Png);
        // A GIF header declaring 16x16, then garbage.
        let fake_gif = b"GIF89a\x10\x00\x10\x00 but not really";
        for broken in [&photo[..photo.len() / 2], &photo[..40], &fake_gif[..]] {
            let err = reduce(broken).unwrap_err();
            assert_eq!(
                err.to_error_body().error.code,
                ErrorCode::UnsupportedMedia,
                "{err}"
            );
        }
    }
}

/// Whatever bytes arrive as a query image, `reduce` answers a picture that
/// may cross NATS or an error a client can act on, and never panics.
#[cfg(test)]
mod properties {
    use super::*;
    use image::{ImageFormat, Rgb};
    use proptest::prelude::*;

    /// Small real files of every format the gateway accepts, with detail so
    /// the compressed streams are not trivial.
    fn originals() -> Vec<(ImageFormat, Vec<u8>)> {
        let picture = DynamicImage::ImageRgb8(RgbImage::from_fn(48, 32, |x, y| {
            Rgb([(x * 5) as u8, (y * 7) as u8, ((x * y) % 251) as u8])
        }));
        [
            ImageFormat::Png,
            ImageFormat::Jpeg,
            ImageFormat::Gif,
            ImageFormat::Bmp,
            ImageFormat::WebP,
        ]
        .into_iter()
        .map(|format| {
            let mut out = Vec::new();
            picture
                .write_to(&mut Cursor::new(&mut out), format)
                .unwrap();
            (format, out)
        })
        .collect()
    }

    /// A PNG's header checksum recomputed, so a mutated header is read as
    /// written instead of being refused for its checksum alone.
    fn fix_png_header_crc(png: &mut [u8]) {
        if png.len() >= 33 && png.starts_with(b"\x89PNG") {
            let mut crc = flate2::Crc::new();
            crc.update(&png[12..29]);
            png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        }
    }

    fn assert_reduced_or_refused(input: &[u8]) {
        match reduce(input) {
            Ok(reduced) => {
                let side = reduced.width.max(reduced.height);
                assert!(reduced.width > 0 && reduced.height > 0);
                assert!(side <= REDUCED_SIDE_PX, "{side} px");
                assert!(reduced.bytes.len() <= REDUCED_MAX_BYTES);
                if reduced.reencoded {
                    assert_eq!(
                        image::guess_format(&reduced.bytes).unwrap(),
                        ImageFormat::Jpeg
                    );
                    let back = image::load_from_memory(&reduced.bytes).unwrap();
                    assert_eq!(
                        (back.width(), back.height()),
                        (reduced.width, reduced.height)
                    );
                } else {
                    assert_eq!(reduced.bytes, input);
                }
            }
            Err(err) => {
                let body = err.to_error_body();
                assert!(
                    matches!(
                        body.error.code,
                        ErrorCode::UnsupportedMedia | ErrorCode::TooLarge
                    ),
                    "{err}"
                );
                assert!(!body.error.message.is_empty());
            }
        }
    }

    proptest! {
        // Each case decodes at most a few pictures; some mutations declare
        // large ones, so the count stays modest.
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn arbitrary_bytes_are_reduced_or_refused(
            bytes in prop::collection::vec(any::<u8>(), 0..2048),
        ) {
            assert_reduced_or_refused(&bytes);
            let _ = check_decodable(&bytes);
            let _ = check_nats_query(&bytes);
        }

        /// A signature followed by noise: the decoders are reached, not
        /// just the format sniffing.
        #[test]
        fn signatures_followed_by_noise_are_refused_or_reduced(
            which in 0usize..5,
            noise in prop::collection::vec(any::<u8>(), 0..512),
        ) {
            let originals = originals();
            let (_, file) = &originals[which];
            let mut bytes = file[..file.len().min(16)].to_vec();
            bytes.extend(noise);
            assert_reduced_or_refused(&bytes);
        }

        /// Real files with bytes of their headers (or anywhere) overwritten,
        /// or cut short.
        #[test]
        fn mutated_real_images_are_reduced_or_refused(
            which in 0usize..5,
            in_header in any::<bool>(),
            edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
            cut in proptest::option::of(any::<prop::sample::Index>()),
        ) {
            let (_, original) = originals().swap_remove(which);
            let mut bytes = original;
            let span = if in_header { bytes.len().min(64) } else { bytes.len() };
            for (at, byte) in edits {
                bytes[at.index(span)] = byte;
            }
            fix_png_header_crc(&mut bytes);
            if let Some(cut) = cut {
                bytes.truncate(cut.index(bytes.len()));
            }
            assert_reduced_or_refused(&bytes);
        }
    }

    #[test]
    fn the_originals_themselves_pass() {
        for (format, bytes) in originals() {
            let reduced = reduce(&bytes).unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_eq!((reduced.width, reduced.height), (48, 32), "{format:?}");
        }
    }
}
