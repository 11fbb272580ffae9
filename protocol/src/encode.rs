//! Encoders turn queries and frames into vectors. Encoders own the model pack,
//! so they also hand out the pack's score calibration: every other stage stays
//! agnostic of which model produced the vectors.

use serde::{Deserialize, Serialize};

/// Maps a cosine similarity to a 0..1 confidence: `sigmoid(a * cos + b)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Calibration {
    pub a: f32,
    pub b: f32,
}

impl Calibration {
    pub fn confidence(&self, cosine: f32) -> f32 {
        1.0 / (1.0 + (-(self.a * cosine + self.b)).exp())
    }
}

/// Most texts or images in one encode request. Ingest sends 32 subtitle
/// cues or one segment's frames at a time; more is one client taking the
/// model thread from everyone else.
pub const MAX_ENCODE_ITEMS: usize = 256;
/// Longest text encoded, in characters (queries stop at 1000; subtitle cues
/// are rarely past a few hundred).
pub const MAX_ENCODE_TEXT_CHARS: usize = 10_000;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodeTextRequest {
    pub texts: Vec<String>,
}

impl EncodeTextRequest {
    /// Floods and overlong texts are refused. An empty list is the health
    /// probe; an empty text is encoded (as the tokenizer's empty sequence),
    /// since public edges refuse empty queries before they get here.
    pub fn validate(&self) -> Result<(), crate::ErrorBody> {
        use crate::{ErrorBody, ErrorCode};
        if self.texts.len() > MAX_ENCODE_ITEMS {
            return Err(ErrorBody::new(
                ErrorCode::TooLarge,
                format!(
                    "{} texts in one request; the limit is {MAX_ENCODE_ITEMS}",
                    self.texts.len()
                ),
            ));
        }
        for (i, text) in self.texts.iter().enumerate() {
            let chars = text.chars().count();
            if chars > MAX_ENCODE_TEXT_CHARS {
                return Err(ErrorBody::new(
                    ErrorCode::TooLarge,
                    format!("text {i} is {chars} characters; the limit is {MAX_ENCODE_TEXT_CHARS}"),
                ));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodeTextResponse {
    /// One L2-normalised vector per text, in the pack's text space.
    pub vectors: Vec<Vec<f32>>,
    /// Per text: the detected language when the pack does not cover it.
    pub unsupported_language: Vec<Option<String>>,
    /// Per text: what was encoded in its place when the pack translated it.
    #[serde(default)]
    pub translations: Vec<Option<crate::query::QueryTranslation>>,
    /// Text query against visual (shot) segments.
    pub text_visual: Calibration,
    /// Text query against subtitle segments.
    pub text_text: Calibration,
    /// Text query against text recognised in the picture (`ocr` segments),
    /// when the pack calibrates it apart from `text_text`.
    #[serde(default)]
    pub text_ocr: Option<Calibration>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodeImageRequest {
    pub images: Vec<serde_bytes::ByteBuf>,
}

impl EncodeImageRequest {
    pub fn validate(&self) -> Result<(), crate::ErrorBody> {
        if self.images.len() > MAX_ENCODE_ITEMS {
            return Err(crate::ErrorBody::new(
                crate::ErrorCode::TooLarge,
                format!(
                    "{} images in one request; the limit is {MAX_ENCODE_ITEMS}",
                    self.images.len()
                ),
            ));
        }
        Ok(())
    }
}

/// An image's two views: comparable with text queries, and with image queries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageVectors {
    pub text_space: Vec<f32>,
    pub image_space: Vec<f32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EncodeImageResponse {
    pub vectors: Vec<ImageVectors>,
    pub image_image: Calibration,
}

/// Scales a vector to unit length (a zero vector stays zero): every
/// embedding on the wire is L2-normalised, so a dot product is a cosine.
pub fn l2_normalise(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::roundtrip::assert_roundtrip;

    #[test]
    fn messages_roundtrip() {
        let cal = Calibration { a: 10.0, b: -3.0 };
        assert_roundtrip(&EncodeTextRequest {
            texts: vec!["a cat".into(), "一只猫".into()],
        });
        assert_roundtrip(&EncodeTextResponse {
            vectors: vec![vec![0.5, -0.25]],
            unsupported_language: vec![Some("ja".into())],
            translations: vec![Some(crate::query::QueryTranslation {
                language: "zh".into(),
                text: "a cup of coffee".into(),
            })],
            text_visual: cal,
            text_text: cal,
            text_ocr: Some(cal),
        });
        assert_roundtrip(&EncodeImageRequest {
            images: vec![serde_bytes::ByteBuf::from(vec![1u8, 2, 3])],
        });
        assert_roundtrip(&EncodeImageResponse {
            vectors: vec![ImageVectors {
                text_space: vec![1.0],
                image_space: vec![0.0, 1.0],
            }],
            image_image: cal,
        });
    }

    #[test]
    fn calibration_is_monotonic_and_bounded() {
        let cal = Calibration { a: 10.0, b: -3.0 };
        assert!((cal.confidence(0.3) - 0.5).abs() < 1e-6);
        assert!(cal.confidence(0.9) > cal.confidence(0.2));
        assert!(cal.confidence(-1.0) >= 0.0 && cal.confidence(1.0) <= 1.0);
    }
}
