#!/usr/bin/env python3
"""Export a CLIP-family model (open_clip, or Chinese-CLIP's cn_clip) to a vidseek model pack.

With trained weights this needs a machine that reaches the model hub (open_clip
and cn_clip download their checkpoints from it) and PyTorch. With
`--pretrained none` it builds the architecture with random weights (seeded)
and needs no hub: `make test-export` does that to prove this script, the pack
import and the Rust encoder on real architectures (see README.md beside this
file, "CLIP-family packs").

    python3 -m venv /tmp/clip-venv
    /tmp/clip-venv/bin/pip install torch torchvision open_clip_torch==3.3.0 cn_clip==1.6.0 \\
        onnx==1.23.2 onnxruntime==1.31.1 tokenizers==0.23.3 pillow
    /tmp/clip-venv/bin/python deploy/models/export_clip.py \\
        --model ViT-B-32 --pretrained openai --name openai-clip-vit-b-32 --out packs/openai-clip-vit-b-32 \\
        [--archive packs/openai-clip-vit-b-32.tar.gz]
    vidseek models import packs/openai-clip-vit-b-32

(`deploy/models/test_export.sh --venv-only DIR` builds such a venv from pinned
wheels, CPU use only.) Other catalog entries: `--model MobileCLIP-S2
--pretrained datacompdr`; `--model xlm-roberta-base-ViT-B-32 --pretrained
laion5b_s13b_b90k` (multilingual, HF tokenizer); `--family cn_clip --model
ViT-B-16 --pretrained hub` (Chinese-CLIP; `--pretrained FILE.pt` takes a
checkpoint you downloaded, e.g. clip_cn_vit-b-16.pt).

Pack layout (same manifest format as the default pack, "bridge": shared_space):
  image.onnx  pixels f32 [N,3,S,S] -> embedding f32 [N,D]  (L2-normalised)
  text.onnx   input_ids int64 [N,context_length] -> embedding f32 [N,D] (L2-normalised)
  bpe_simple_vocab_16e6.txt.gz (CLIP BPE, tokenizer_kind clip_bpe) or
  tokenizer.json (HF tokenizer, tokenizer_kind hugging_face, padded with pad_id
  to context_length; cn_clip's BERT vocabulary becomes a WordPiece tokenizer.json)

Images: vidseek resizes the shorter side to S and crops the centre, as
open_clip's default transform does (cn_clip's own transform squashes the
whole image to SxS instead; the crop keeps the aspect ratio).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tarfile
from dataclasses import dataclass
from typing import Any, Callable

# Texts the export checks the text graph and the tokenizer with.
SAMPLE_TEXTS = ["a photo of a cat", "a diagram", "a dog running on the beach", "一只猫在沙发上睡觉"]


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


@dataclass
class Loaded:
    """A CLIP model ready to export, and what the pack needs to know about it."""

    model: Any  # the torch module as its library builds it (reference for checks)
    export_model: Any  # what is exported (MobileCLIP: re-parameterised copy)
    tokenize: Callable[[list], Any]  # texts -> LongTensor [N, context_length]
    preprocess: Callable[[Any], Any]  # the library's own image transform: PIL image -> [3,S,S]
    size: int
    mean: list
    std: list
    context_length: int
    write_tokenizer: Callable[[str], dict]  # pack dir -> manifest text fields, writes its files
    description: str


def is_random(pretrained):
    return pretrained is None or pretrained.lower() == "none"


def load_open_clip(a) -> Loaded:
    import open_clip
    import torch

    pretrained = None if is_random(a.pretrained) else a.pretrained
    torch.manual_seed(a.seed)
    model, _, preprocess = open_clip.create_model_and_transforms(a.model, pretrained=pretrained)
    model.eval()
    export_model = model
    if any(hasattr(m, "reparameterize") for m in model.modules()):
        # MobileCLIP / FastViT blocks fold their branches for inference; the
        # folded network computes the same function, faster.
        from timm.utils import reparameterize_model

        export_model = reparameterize_model(model)
        export_model.eval()
        print("re-parameterised the model for inference (folded branches)")
    tokenizer = open_clip.get_tokenizer(a.model)
    cfg = open_clip.get_model_preprocess_cfg(model)
    size = cfg.get("size", getattr(model.visual, "image_size", 224))
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    mean = [float(x) for x in cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)]
    std = [float(x) for x in cfg.get("std", open_clip.OPENAI_DATASET_STD)]
    if cfg.get("resize_mode", "shortest") != "shortest":
        print(f"warning: {a.model} resizes images with mode {cfg['resize_mode']!r}; vidseek resizes the "
              "shorter side and crops the centre", file=sys.stderr)
    ctx = int(getattr(tokenizer, "context_length", 77))

    def write_tokenizer(out):
        if isinstance(tokenizer, open_clip.tokenizer.SimpleTokenizer):
            src = os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
            shutil.copyfile(src, os.path.join(out, "bpe_simple_vocab_16e6.txt.gz"))
            return {"tokenizer_kind": "clip_bpe", "bpe_vocab": "bpe_simple_vocab_16e6.txt.gz",
                    "vocab_size": len(tokenizer.encoder), "sot_id": int(tokenizer.sot_token_id),
                    "eot_id": int(tokenizer.eot_token_id), "lowercase": True, "pad_id": 0}
        # open_clip.tokenizer.HFTokenizer (e.g. xlm-roberta text towers)
        hf = tokenizer.tokenizer
        hf.backend_tokenizer.save(os.path.join(out, "tokenizer.json"))
        return {"tokenizer_kind": "hugging_face", "tokenizer": "tokenizer.json", "max_tokens": ctx,
                "pad_id": int(hf.pad_token_id or 0)}

    source = "random weights, seed %d" % a.seed if pretrained is None else pretrained
    return Loaded(model=model, export_model=export_model, tokenize=lambda texts: tokenizer(texts),
                  preprocess=preprocess,
                  size=size, mean=mean, std=std, context_length=ctx, write_tokenizer=write_tokenizer,
                  description=f"open_clip {a.model} ({source}) image and text towers in one embedding space.")


# cn_clip's public names for its architectures (cn_clip.clip.utils._MODEL_INFO).
CN_CLIP_STRUCT = {
    "ViT-B-16": ("ViT-B-16@RoBERTa-wwm-ext-base-chinese", 224),
    "ViT-L-14": ("ViT-L-14@RoBERTa-wwm-ext-base-chinese", 224),
    "ViT-L-14-336": ("ViT-L-14-336@RoBERTa-wwm-ext-base-chinese", 336),
    "ViT-H-14": ("ViT-H-14@RoBERTa-wwm-ext-large-chinese", 224),
    "RN50": ("RN50@RBT3-chinese", 224),
}
CN_CLIP_CONTEXT = 52  # every published Chinese-CLIP model


def bert_tokenizer_json(vocab_txt, out_path, context_length):
    """cn_clip's FullTokenizer (BERT basic + WordPiece, lower case) as a HF tokenizer.json.

    Truncation happens inside the tokenizer so that a long text still ends
    with [SEP], as cn_clip.clip.tokenize does.
    """
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    with open(vocab_txt, encoding="utf-8") as f:
        vocab = {line.rstrip("\n"): i for i, line in enumerate(f)}
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]", max_input_chars_per_word=200))
    # strip_accents=None follows lowercase (True), like BERT's do_lower_case.
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=None, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    tok.enable_truncation(max_length=context_length)
    tok.save(out_path)
    return tok, vocab


def load_cn_clip(a) -> Loaded:
    import torch
    import cn_clip.clip as cn
    from cn_clip.clip.utils import create_model

    if a.model not in CN_CLIP_STRUCT:
        sys.exit(f"cn_clip models: {', '.join(CN_CLIP_STRUCT)}")
    struct, size = CN_CLIP_STRUCT[a.model]
    torch.manual_seed(a.seed)
    if is_random(a.pretrained):
        model, source = create_model(struct), "random weights, seed %d" % a.seed
    elif a.pretrained == "hub":
        model, _ = cn.load_from_name(a.model, device="cpu", download_root=a.download_root)
        source = "OFA-Sys checkpoint"
    else:  # a checkpoint file
        model = create_model(struct, torch.load(a.pretrained, map_location="cpu"))
        source = os.path.basename(a.pretrained)
    model = model.float().eval()  # create_model keeps fp16 weights for GPUs
    vocab_txt = os.path.join(os.path.dirname(cn.__file__), "vocab.txt")

    def write_tokenizer(out):
        tok, vocab = bert_tokenizer_json(vocab_txt, os.path.join(out, "tokenizer.json"), CN_CLIP_CONTEXT)
        # The tokenizer.json must give exactly cn_clip's ids.
        want = cn.tokenize(SAMPLE_TEXTS + [" ".join(["word"] * 80)], context_length=CN_CLIP_CONTEXT).tolist()
        for text, ids in zip(SAMPLE_TEXTS + [" ".join(["word"] * 80)], want):
            got = tok.encode(text).ids
            if got != [i for i in ids if i != 0]:
                sys.exit(f"tokenizer.json disagrees with cn_clip on {text!r}: {got} vs {ids}")
        return {"tokenizer_kind": "hugging_face", "tokenizer": "tokenizer.json",
                "max_tokens": CN_CLIP_CONTEXT, "pad_id": vocab["[PAD]"]}

    return Loaded(model=model, export_model=model,
                  tokenize=lambda texts: cn.tokenize(texts, context_length=CN_CLIP_CONTEXT),
                  preprocess=cn.image_transform(size),
                  size=size, mean=[0.48145466, 0.4578275, 0.40821073], std=[0.26862954, 0.26130258, 0.27577711],
                  context_length=CN_CLIP_CONTEXT, write_tokenizer=write_tokenizer,
                  description=f"Chinese-CLIP {a.model} ({source}) image and text towers in one embedding space.")


def towers(torch, model):
    class ImageTower(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, pixels):
            e = self.m.encode_image(pixels)
            return e / e.norm(dim=-1, keepdim=True)

    class TextTower(torch.nn.Module):
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, input_ids):
            e = self.m.encode_text(input_ids)
            return e / e.norm(dim=-1, keepdim=True)

    # eval() on the wrappers too: the exporter restores the wrapper's mode
    # afterwards, and train(True) on a fresh wrapper would switch dropout on
    # in the model (BERT in cn_clip) for everything that runs after it.
    return ImageTower(model).eval(), TextTower(model).eval()


def parse_args(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--family", choices=["open_clip", "cn_clip"], default="open_clip")
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--pretrained", default="openai",
                    help="open_clip pretrained tag; 'none' for random weights (no download); "
                         "cn_clip: 'hub', a checkpoint file, or 'none'")
    ap.add_argument("--seed", type=int, default=0, help="torch seed for --pretrained none")
    ap.add_argument("--download-root", default=None, help="cn_clip checkpoint cache (default ~/.cache/clip)")
    ap.add_argument("--name", default=None, help="pack name (default: model-pretrained, lower case)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--languages", default=None,
                    help="comma separated ISO 639-1 codes, e.g. en or zh,en; * for any "
                         "(default: en; zh,en for cn_clip)")
    ap.add_argument("--licence", default=None,
                    help="licence text for the manifest (default: MIT, with whose weights and code)")
    ap.add_argument("--archive", help="also write a .tar.gz of the pack and print its sha256 for catalog.json")
    ap.add_argument("--opset", type=int, default=17)
    return ap.parse_args(argv)


def export(a) -> Loaded:
    """Writes the pack directory a.out; returns the loaded model (for callers that compare)."""
    import numpy as np
    import onnxruntime as ort
    import torch

    loaded = (load_cn_clip if a.family == "cn_clip" else load_open_clip)(a)
    pretrained = "random" if is_random(a.pretrained) else os.path.basename(a.pretrained)
    cn = a.family == "cn_clip"
    name = a.name or f"{'chinese-clip-' if cn else ''}{a.model}-{pretrained}".lower()
    languages = a.languages or ("zh,en" if cn else "en")
    licence = a.licence or ("MIT (Chinese-CLIP code and weights)" if cn else "MIT (OpenAI CLIP weights and code)")
    os.makedirs(a.out, exist_ok=True)
    image_tower, text_tower = towers(torch, loaded.export_model)
    ref_image, ref_text = towers(torch, loaded.model)

    ids = loaded.tokenize(SAMPLE_TEXTS)
    pix = torch.randn(2, 3, loaded.size, loaded.size, generator=torch.Generator().manual_seed(a.seed))
    export_kw = dict(opset_version=a.opset, do_constant_folding=True)
    if "dynamo" in torch.onnx.export.__code__.co_varnames:
        export_kw["dynamo"] = False  # the TorchScript exporter handles dynamic_axes and needs no onnxscript
    # Exported with autograd on: under no_grad nn.MultiheadAttention takes its
    # fused fast path (aten::_native_multi_head_attention), which has no ONNX
    # symbolic. The graph is the same either way.
    torch.onnx.export(image_tower, (pix,), os.path.join(a.out, "image.onnx"),
                      input_names=["pixels"], output_names=["embedding"],
                      dynamic_axes={"pixels": {0: "N"}, "embedding": {0: "N"}}, **export_kw)
    torch.onnx.export(text_tower, (ids,), os.path.join(a.out, "text.onnx"),
                      input_names=["input_ids"], output_names=["embedding"],
                      dynamic_axes={"input_ids": {0: "N"}, "embedding": {0: "N"}}, **export_kw)
    with torch.no_grad():
        want_i = ref_image(pix).numpy()
        want_t = ref_text(ids).numpy()
    got_i = ort.InferenceSession(os.path.join(a.out, "image.onnx")).run(None, {"pixels": pix.numpy()})[0]
    got_t = ort.InferenceSession(os.path.join(a.out, "text.onnx")).run(
        None, {"input_ids": ids.numpy().astype(np.int64)})[0]
    ci = float((got_i * want_i).sum(1).min())
    ct = float((got_t * want_t).sum(1).min())
    print(f"onnx vs torch cosine (lowest): image {ci:.6f} text {ct:.6f}")
    if ci < 0.999 or ct < 0.999:
        sys.exit("exported graphs disagree with torch")
    dim = int(got_i.shape[1])

    text = {"onnx": "text.onnx", "context_length": loaded.context_length, "dim": dim,
            "inputs": {"input_ids": "input_ids"}, "output": "embedding"}
    text.update(loaded.write_tokenizer(a.out))
    files = ["text.onnx", "image.onnx", text.get("bpe_vocab") or text["tokenizer"]]

    manifest = {
        "name": name,
        "version": 1,
        "description": loaded.description,
        "licence": licence,
        "languages": languages.split(","),
        "text": text,
        "image": {"onnx": "image.onnx", "input": "pixels", "size": loaded.size, "mean": loaded.mean,
                  "std": loaded.std, "embedding_output": "embedding", "dim": dim},
        "bridge": {"kind": "shared_space"},
        # Rough defaults for CLIP cosines (matching text-image pairs ~0.3, others
        # ~0.15-0.2; near-duplicate images > 0.9): check on your own data.
        "calibration": {"text_visual": {"a": 50.0, "b": -12.5}, "text_text": {"a": 20.0, "b": -16.0},
                        "image_image": {"a": 15.0, "b": -12.0}},
        "files": {f: sha256(os.path.join(a.out, f)) for f in files},
    }
    with open(os.path.join(a.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(f"pack {name} written to {a.out}")
    if a.archive:
        with tarfile.open(a.archive, "w:gz") as tf:
            tf.add(a.out, arcname=name)
        print(f"archive {a.archive} sha256 {sha256(a.archive)}")
    return loaded


if __name__ == "__main__":
    export(parse_args())
