//! The text tower: tokenize, pad the batch, run, L2-normalise.

use std::borrow::Cow;

use ort::session::{Session, SessionInputValue};
use ort::value::Tensor;

use crate::modelpack::{ModelPack, TextEncoder, TokenizerKind};

use super::clip_bpe::ClipTokenizer;
use super::{l2_normalise, runtime};

enum Tokenizer {
    HuggingFace(Box<tokenizers::Tokenizer>),
    Clip(Box<ClipTokenizer>),
}

impl Tokenizer {
    fn load(pack: &ModelPack) -> Result<Tokenizer, String> {
        let spec = &pack.manifest.text;
        match spec.tokenizer_kind {
            TokenizerKind::HuggingFace => {
                let file = pack.file(spec.tokenizer.as_deref().unwrap_or("tokenizer.json"));
                let tokenizer = tokenizers::Tokenizer::from_file(&file)
                    .map_err(|e| format!("cannot load tokenizer {}: {e}", file.display()))?;
                Ok(Tokenizer::HuggingFace(Box::new(tokenizer)))
            }
            TokenizerKind::ClipBpe => {
                ClipTokenizer::from_manifest(pack).map(|t| Tokenizer::Clip(Box::new(t)))
            }
        }
    }

    fn encode(&self, texts: &[String], max_tokens: usize) -> Result<Vec<Vec<u32>>, String> {
        match self {
            Tokenizer::HuggingFace(tokenizer) => {
                let encodings = tokenizer
                    .encode_batch(texts.to_vec(), true)
                    .map_err(|e| format!("tokenizer failed: {e}"))?;
                Ok(encodings
                    .into_iter()
                    .map(|e| {
                        let mut ids = e.get_ids().to_vec();
                        ids.truncate(max_tokens);
                        ids
                    })
                    .collect())
            }
            Tokenizer::Clip(tokenizer) => Ok(texts.iter().map(|t| tokenizer.encode(t)).collect()),
        }
    }
}

/// A loaded text encoder. Owned by its batching thread.
pub struct TextModel {
    session: Session,
    tokenizer: Tokenizer,
    spec: TextEncoder,
}

impl TextModel {
    pub fn load(
        pack: &ModelPack,
        environment: &ort::environment::Environment,
        threads: usize,
    ) -> Result<Self, String> {
        let spec = pack.manifest.text.clone();
        Ok(TextModel {
            session: runtime::session(environment, &pack.file(&spec.onnx), threads)?,
            tokenizer: Tokenizer::load(pack)?,
            spec,
        })
    }

    /// One L2-normalised vector per text.
    pub fn encode(&mut self, texts: Vec<String>) -> Result<Vec<Vec<f32>>, String> {
        let max_tokens = self
            .spec
            .context_length
            .or(self.spec.max_tokens)
            .unwrap_or(512);
        let ids = self.tokenizer.encode(&texts, max_tokens)?;
        // Fixed-length models (CLIP) get exactly context_length; the others
        // the longest input of the batch.
        let width = self
            .spec
            .context_length
            .unwrap_or_else(|| ids.iter().map(Vec::len).max().unwrap_or(1).max(1));
        let batch = ids.len();
        let mut input_ids = vec![self.spec.pad_id as i64; batch * width];
        let mut mask = vec![0i64; batch * width];
        for (row, tokens) in ids.iter().enumerate() {
            for (col, &token) in tokens.iter().take(width).enumerate() {
                input_ids[row * width + col] = token as i64;
                mask[row * width + col] = 1;
            }
        }
        let shape = [batch as i64, width as i64];
        let tensor = |data: Vec<i64>| -> Result<SessionInputValue<'static>, String> {
            Ok(Tensor::from_array((shape, data))
                .map_err(|e| e.to_string())?
                .into())
        };
        let names = &self.spec.inputs;
        let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> =
            vec![(names.input_ids.clone().into(), tensor(input_ids)?)];
        if let Some(name) = &names.attention_mask {
            inputs.push((name.clone().into(), tensor(mask)?));
        }
        if let Some(name) = &names.token_type_ids {
            inputs.push((name.clone().into(), tensor(vec![0; batch * width])?));
        }
        let outputs = self
            .session
            .run(inputs)
            .map_err(|e| format!("text encoder failed: {e}"))?;
        let (out_shape, data) = outputs[self.spec.output.as_str()]
            .try_extract_tensor::<f32>()
            .map_err(|e| format!("text encoder output {}: {e}", self.spec.output))?;
        let dim = self.spec.dim;
        if out_shape.len() != 2 || out_shape[1] as usize != dim || data.len() != batch * dim {
            return Err(format!(
                "text encoder output has shape {out_shape:?}, expected [{batch}, {dim}]"
            ));
        }
        Ok(data
            .chunks(dim)
            .map(|row| l2_normalise(row.to_vec()))
            .collect())
    }
}
