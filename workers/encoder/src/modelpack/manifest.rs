//! The `manifest.json` schema. Field names match what
//! `deploy/models/build_default_pack.py` and `export_clip.py` write.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use vidseek_protocol::encode::Calibration;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    #[serde(default)]
    pub version: u32,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub licence: String,
    /// ISO 639-1 codes the text encoder understands; `"*"` for any.
    pub languages: Vec<String>,
    pub text: TextEncoder,
    pub image: ImageEncoder,
    pub bridge: Bridge,
    pub calibration: Calibrations,
    /// Query translation tables, by source language (ISO 639-1): a query in
    /// that language is translated into one of `languages` before encoding.
    #[serde(default)]
    pub translations: BTreeMap<String, Translation>,
    /// File name → sha256 (hex).
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// A word table that turns queries in another language into text the
/// encoder understands (see `vidseek_text::translate`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Translation {
    /// `headword<TAB>english` lines in the pack directory.
    pub table: String,
    /// Where the table comes from and its licence (shown by `models list`).
    #[serde(default)]
    pub source: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerKind {
    /// A Hugging Face `tokenizer.json` (WordPiece, SentencePiece, ...).
    #[default]
    HuggingFace,
    /// OpenAI CLIP's byte-level BPE from its gzipped merges file.
    ClipBpe,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextEncoder {
    pub onnx: String,
    #[serde(default)]
    pub tokenizer_kind: TokenizerKind,
    /// `tokenizer.json` for Hugging Face tokenizers.
    #[serde(default)]
    pub tokenizer: Option<String>,
    /// Gzipped BPE merges for CLIP tokenizers.
    #[serde(default)]
    pub bpe_vocab: Option<String>,
    /// Longest input in tokens (Hugging Face tokenizers truncate to it).
    #[serde(default)]
    pub max_tokens: Option<usize>,
    /// Fixed input length (CLIP): inputs are padded to exactly this.
    #[serde(default)]
    pub context_length: Option<usize>,
    #[serde(default)]
    pub sot_id: Option<u32>,
    #[serde(default)]
    pub eot_id: Option<u32>,
    #[serde(default)]
    pub lowercase: bool,
    pub dim: usize,
    pub inputs: TextInputs,
    pub output: String,
    #[serde(default)]
    pub pad_id: u32,
}

/// ONNX input names of the text encoder; absent inputs are not fed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TextInputs {
    pub input_ids: String,
    #[serde(default)]
    pub attention_mask: Option<String>,
    #[serde(default)]
    pub token_type_ids: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ImageEncoder {
    pub onnx: String,
    pub input: String,
    /// Square input side in pixels.
    pub size: u32,
    /// Per-channel normalisation of RGB values scaled to 0..1.
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// Pooled features for image-to-image search (ConSE packs).
    #[serde(default)]
    pub features_output: Option<String>,
    /// Class probabilities that the ConSE bridge maps into text space.
    #[serde(default)]
    pub probs_output: Option<String>,
    /// Embedding in the shared text-image space (CLIP packs).
    #[serde(default)]
    pub embedding_output: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Bridge {
    /// Image and text towers share one space (CLIP family).
    SharedSpace,
    /// Convex combination of semantic embeddings: a frame's text-space vector
    /// is the probability-weighted sum of its top classes' name embeddings.
    Conse {
        /// Little-endian f32 rows, one per class, each `text.dim` long.
        concepts: String,
        labels: String,
        top_k: usize,
        /// The top classes are weighted by `probability^(1 / temperature)`:
        /// above 1 the runners-up count for more than the classifier's
        /// (overconfident) softmax gives them. 1 when absent.
        #[serde(default = "no_temperature")]
        temperature: f32,
    },
}

fn no_temperature() -> f32 {
    1.0
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Calibrations {
    pub text_visual: Calibration,
    pub text_text: Calibration,
    pub image_image: Calibration,
    /// Text queries against OCR text; without it they use `text_text`
    /// (recognised text is text matched to text, read with a few errors).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_ocr: Option<Calibration>,
}

impl Manifest {
    /// Checks that the fields each bridge and tokenizer need are present.
    pub fn validate(&self) -> Result<(), String> {
        match self.text.tokenizer_kind {
            TokenizerKind::HuggingFace if self.text.tokenizer.is_none() => {
                return Err("text.tokenizer is required for Hugging Face tokenizers".into());
            }
            TokenizerKind::ClipBpe
                if self.text.bpe_vocab.is_none()
                    || self.text.context_length.is_none()
                    || self.text.sot_id.is_none()
                    || self.text.eot_id.is_none() =>
            {
                return Err(
                    "clip_bpe tokenizers need text.bpe_vocab, context_length, sot_id and eot_id"
                        .into(),
                );
            }
            _ => {}
        }
        match &self.bridge {
            Bridge::SharedSpace if self.image.embedding_output.is_none() => {
                Err("a shared_space bridge needs image.embedding_output".into())
            }
            Bridge::Conse { .. }
                if self.image.probs_output.is_none() || self.image.features_output.is_none() =>
            {
                Err("a conse bridge needs image.probs_output and image.features_output".into())
            }
            Bridge::Conse { temperature, .. }
                if !(temperature.is_finite() && *temperature > 0.0) =>
            {
                Err(format!(
                    "bridge.temperature must be positive, not {temperature}"
                ))
            }
            _ if self.languages.is_empty() => Err("languages must not be empty".into()),
            _ => Ok(()),
        }
    }

    /// Whether queries in `language` (ISO 639-1) are understood: the text
    /// encoder reads it, or the pack translates it.
    pub fn supports_language(&self, language: &str) -> bool {
        self.languages.iter().any(|l| l == "*" || l == language)
            || self.translations.contains_key(language)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conse_manifest(bridge: &str) -> Manifest {
        let json = format!(
            r#"{{"name": "p", "languages": ["en"],
                "text": {{"onnx": "t.onnx", "tokenizer": "tokenizer.json", "dim": 2,
                         "inputs": {{"input_ids": "ids"}}, "output": "e"}},
                "image": {{"onnx": "i.onnx", "input": "x", "size": 8, "mean": [0, 0, 0],
                          "std": [1, 1, 1], "features_output": "f", "probs_output": "p"}},
                "bridge": {bridge},
                "calibration": {{"text_visual": {{"a": 1, "b": 0}}, "text_text": {{"a": 1, "b": 0}},
                                "image_image": {{"a": 1, "b": 0}}}}}}"#
        );
        serde_json::from_str(&json).unwrap()
    }

    #[test]
    fn conse_temperature_defaults_to_one_and_must_be_positive() {
        let old = conse_manifest(
            r#"{"kind": "conse", "concepts": "c.f32", "labels": "l.txt", "top_k": 3}"#,
        );
        let Bridge::Conse { temperature, .. } = old.bridge else {
            panic!("not a conse bridge");
        };
        assert_eq!(temperature, 1.0);
        assert!(old.validate().is_ok());
        let warm = conse_manifest(
            r#"{"kind": "conse", "concepts": "c.f32", "labels": "l.txt", "top_k": 3, "temperature": 2.5}"#,
        );
        assert!(matches!(warm.bridge, Bridge::Conse { temperature, .. } if temperature == 2.5));
        let zero = conse_manifest(
            r#"{"kind": "conse", "concepts": "c.f32", "labels": "l.txt", "top_k": 3, "temperature": 0}"#,
        );
        assert!(zero.validate().unwrap_err().contains("temperature"));
    }
}
