//! OpenAI CLIP's byte-level BPE tokenizer (placeholder until implemented).

use crate::modelpack::ModelPack;

pub struct ClipTokenizer;

impl ClipTokenizer {
    pub fn from_manifest(_pack: &ModelPack) -> Result<ClipTokenizer, String> {
        Err("CLIP BPE tokenizer is not available in this build".into())
    }

    pub fn encode(&self, _text: &str) -> Vec<u32> {
        vec![]
    }
}
