//! The image tower: decode and preprocess (on the caller's blocking pool),
//! then one batched model call that yields both the image-space vector and
//! the text-space vector (through the pack's bridge).

use std::io::Cursor;

use image::imageops::FilterType;
use image::{ImageReader, Limits, RgbImage};
use ort::session::Session;
use ort::value::Tensor;
use vidseek_protocol::encode::ImageVectors;
use vidseek_protocol::error::ErrorCode;

use crate::modelpack::{Bridge, ImageEncoder, ModelPack};

use super::{l2_normalise, runtime};

// The largest decoded image accepted bounds memory for hostile inputs (a
// tiny PNG can claim 100k x 100k pixels); the same limits as the gateway's.
use vidseek_bus::query_image::{MAX_DECODED_BYTES, MAX_SIDE_PX, flatten_on_white};

/// A preprocessed image: CHW f32, `size * size * 3` values.
pub struct Pixels(Vec<f32>);

/// Decodes an encoded image (JPEG, PNG, WebP, GIF, BMP) and preprocesses it
/// as the pack's image encoder expects. Errors say whether the picture is
/// too large to decode (`too_large`) or not a picture we read
/// (`unsupported_media`).
pub fn preprocess(bytes: &[u8], spec: &ImageEncoder) -> Result<Pixels, (ErrorCode, String)> {
    let unsupported = |message: String| (ErrorCode::UnsupportedMedia, message);
    let mut reader = ImageReader::new(Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| unsupported(format!("unreadable image: {e}")))?;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE_PX);
    limits.max_image_height = Some(MAX_SIDE_PX);
    limits.max_alloc = Some(MAX_DECODED_BYTES);
    reader.limits(limits);
    if reader.format().is_none() {
        return Err(unsupported(
            "not an image (supported: JPEG, PNG, WebP, GIF, BMP)".into(),
        ));
    }
    let image = reader.decode().map_err(|e| match e {
        image::ImageError::Limits(limit) => (
            ErrorCode::TooLarge,
            format!(
                "the picture is too large to decode ({limit}); reduce it to at most {} px on its longest side",
                vidseek_bus::query_image::REDUCED_SIDE_PX
            ),
        ),
        other => unsupported(format!("cannot decode image: {other}")),
    })?;
    Ok(to_pixels(&flatten_on_white(image), spec))
}

/// Resizes the shorter side to `size`, centre-crops a square, normalises.
pub fn to_pixels(image: &RgbImage, spec: &ImageEncoder) -> Pixels {
    let size = spec.size;
    let (w, h) = image.dimensions();
    let scale = size as f32 / w.min(h).max(1) as f32;
    let (rw, rh) = (
        ((w as f32 * scale).round() as u32).max(size),
        ((h as f32 * scale).round() as u32).max(size),
    );
    let resized = image::imageops::resize(image, rw, rh, FilterType::Triangle);
    let (x0, y0) = ((rw - size) / 2, (rh - size) / 2);
    let plane = (size * size) as usize;
    let mut data = vec![0f32; plane * 3];
    for y in 0..size {
        for x in 0..size {
            let pixel = resized.get_pixel(x0 + x, y0 + y);
            let offset = (y * size + x) as usize;
            for c in 0..3 {
                data[c * plane + offset] = (pixel[c] as f32 / 255.0 - spec.mean[c]) / spec.std[c];
            }
        }
    }
    Pixels(data)
}

/// The ConSE bridge's class-name embeddings and how they are weighted.
struct Concepts {
    rows: Vec<f32>,
    dim: usize,
    top_k: usize,
    temperature: f32,
}

/// A loaded image encoder. Owned by its batching thread.
pub struct ImageModel {
    session: Session,
    spec: ImageEncoder,
    concepts: Option<Concepts>,
}

impl ImageModel {
    pub fn load(
        pack: &ModelPack,
        environment: &ort::environment::Environment,
        threads: usize,
    ) -> Result<Self, String> {
        let spec = pack.manifest.image.clone();
        let concepts = match &pack.manifest.bridge {
            Bridge::SharedSpace => None,
            Bridge::Conse {
                concepts,
                top_k,
                temperature,
                ..
            } => {
                let path = pack.file(concepts);
                let bytes = std::fs::read(&path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                let dim = pack.manifest.text.dim;
                if bytes.len() % (4 * dim) != 0 {
                    return Err(format!(
                        "{} is not a matrix of {dim}-dim rows",
                        path.display()
                    ));
                }
                let rows = bytes
                    .chunks_exact(4)
                    .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                    .collect();
                Some(Concepts {
                    rows,
                    dim,
                    top_k: *top_k,
                    temperature: *temperature,
                })
            }
        };
        Ok(ImageModel {
            session: runtime::session(environment, &pack.file(&spec.onnx), threads)?,
            spec,
            concepts,
        })
    }

    pub fn encode(&mut self, images: Vec<Pixels>) -> Result<Vec<ImageVectors>, String> {
        let batch = images.len();
        let size = self.spec.size as i64;
        let mut data = Vec::with_capacity(images.iter().map(|p| p.0.len()).sum());
        for pixels in images {
            data.extend(pixels.0);
        }
        let input =
            Tensor::from_array(([batch as i64, 3, size, size], data)).map_err(|e| e.to_string())?;
        let outputs = self
            .session
            .run(ort::inputs![self.spec.input.as_str() => input])
            .map_err(|e| format!("image encoder failed: {e}"))?;
        let matrix = |name: &str| -> Result<(usize, Vec<f32>), String> {
            let (shape, values) = outputs[name]
                .try_extract_tensor::<f32>()
                .map_err(|e| format!("image encoder output {name}: {e}"))?;
            if shape.len() != 2 || shape[0] as usize != batch {
                return Err(format!("image encoder output {name} has shape {shape:?}"));
            }
            Ok((shape[1] as usize, values.to_vec()))
        };
        match (&self.concepts, &self.spec.embedding_output) {
            (None, Some(name)) => {
                let (dim, values) = matrix(name)?;
                Ok(values
                    .chunks(dim)
                    .map(|row| {
                        let v = l2_normalise(row.to_vec());
                        ImageVectors {
                            text_space: v.clone(),
                            image_space: v,
                        }
                    })
                    .collect())
            }
            (Some(concepts), _) => {
                let features = self.spec.features_output.as_deref().unwrap_or("features");
                let probs = self.spec.probs_output.as_deref().unwrap_or("probs");
                let (fdim, features) = matrix(features)?;
                let (classes, probs) = matrix(probs)?;
                if classes * concepts.dim != concepts.rows.len() {
                    return Err(format!(
                        "the pack has {} concept rows for {classes} classes",
                        concepts.rows.len() / concepts.dim
                    ));
                }
                Ok(features
                    .chunks(fdim)
                    .zip(probs.chunks(classes))
                    .map(|(f, p)| ImageVectors {
                        text_space: conse(p, concepts),
                        image_space: l2_normalise(f.to_vec()),
                    })
                    .collect())
            }
            (None, None) => Err("the pack's image encoder has no embedding output".into()),
        }
    }
}

/// Sum of the top-k classes' name embeddings, each weighted by its
/// probability raised to `1 / temperature`.
fn conse(probs: &[f32], concepts: &Concepts) -> Vec<f32> {
    let mut order: Vec<usize> = (0..probs.len()).collect();
    let k = concepts.top_k.min(order.len());
    order.select_nth_unstable_by(k.saturating_sub(1), |&a, &b| probs[b].total_cmp(&probs[a]));
    let exponent = 1.0 / concepts.temperature;
    let mut vector = vec![0f32; concepts.dim];
    for &class in &order[..k] {
        let weight = probs[class].max(0.0).powf(exponent);
        let row = &concepts.rows[class * concepts.dim..(class + 1) * concepts.dim];
        for (v, r) in vector.iter_mut().zip(row) {
            *v += weight * r;
        }
    }
    l2_normalise(vector)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(size: u32) -> ImageEncoder {
        ImageEncoder {
            onnx: String::new(),
            input: "pixels".into(),
            size,
            mean: [0.5; 3],
            std: [0.5; 3],
            features_output: None,
            probs_output: None,
            embedding_output: None,
        }
    }

    #[test]
    fn conse_weights_the_top_classes() {
        let concepts = Concepts {
            rows: vec![1.0, 0.0, 0.0, 1.0, 0.6, 0.8],
            dim: 2,
            top_k: 2,
            temperature: 1.0,
        };
        let v = conse(&[0.1, 0.7, 0.2], &concepts);
        // Classes 1 and 2 only: 0.7*(0,1) + 0.2*(0.6,0.8) = (0.12, 0.86).
        let norm = (0.12f32 * 0.12 + 0.86 * 0.86).sqrt();
        assert!((v[0] - 0.12 / norm).abs() < 1e-5 && (v[1] - 0.86 / norm).abs() < 1e-5);
    }

    #[test]
    fn temperature_lifts_the_runners_up() {
        let concepts = Concepts {
            rows: vec![1.0, 0.0, 0.0, 1.0],
            dim: 2,
            top_k: 2,
            temperature: 2.0,
        };
        let v = conse(&[0.81, 0.09], &concepts);
        // Weights 0.81^0.5 = 0.9 and 0.09^0.5 = 0.3: (0.9, 0.3) normalised,
        // where temperature 1 gives (0.81, 0.09).
        let norm = (0.9f32 * 0.9 + 0.3 * 0.3).sqrt();
        assert!((v[0] - 0.9 / norm).abs() < 1e-5 && (v[1] - 0.3 / norm).abs() < 1e-5);
    }

    #[test]
    fn preprocessing_crops_the_centre_and_normalises() {
        // 40x20: white left half, black right half; the centre crop of the
        // 20x10 -> 8x8... resized image keeps both halves.
        let image = RgbImage::from_fn(40, 20, |x, _| {
            if x < 20 {
                [255; 3].into()
            } else {
                [0; 3].into()
            }
        });
        let Pixels(data) = to_pixels(&image, &spec(8));
        assert_eq!(data.len(), 3 * 64);
        assert!(
            (data[0] - 1.0).abs() < 1e-3,
            "top-left is white: {}",
            data[0]
        );
        assert!(
            (data[7] + 1.0).abs() < 1e-3,
            "top-right is black: {}",
            data[7]
        );
    }

    #[test]
    fn garbage_and_huge_images_are_refused() {
        let Err((code, message)) = preprocess(b"definitely not an image", &spec(8)) else {
            panic!("text decoded as an image");
        };
        assert_eq!(code, ErrorCode::UnsupportedMedia);
        assert!(message.contains("not an image"), "{message}");
        // A PNG header claiming 100000 x 100000 pixels.
        let mut png = Vec::new();
        RgbImage::new(4, 4)
            .write_to(&mut Cursor::new(&mut png), image::ImageFormat::Png)
            .unwrap();
        png[16..20].copy_from_slice(&100_000u32.to_be_bytes());
        png[20..24].copy_from_slice(&100_000u32.to_be_bytes());
        // The header chunk's checksum, so the decoder reads the size at all.
        let mut crc = flate2::Crc::new();
        crc.update(&png[12..29]);
        png[29..33].copy_from_slice(&crc.sum().to_be_bytes());
        let truncated = png[..png.len() / 2].to_vec();
        let Err((code, message)) = preprocess(&png, &spec(8)) else {
            panic!("a 100000 px picture decoded");
        };
        assert_eq!(code, ErrorCode::TooLarge, "{message}");
        assert!(preprocess(&truncated, &spec(8)).is_err());
    }
}
