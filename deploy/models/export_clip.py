#!/usr/bin/env python3
"""Export a CLIP-family model (open_clip) to a vidseek model pack.

*** This script needs internet access (model hub) and PyTorch. It CANNOT run
*** on vidseek's build/CI machines, which reach only the package registries;
*** it has not been executed there. It is for users or maintainers with
*** internet who want a shared-space pack (much better retrieval than the
*** default ConSE pack; see catalog.json).

    python -m venv /tmp/clip-venv
    /tmp/clip-venv/bin/pip install torch open_clip_torch onnx onnxruntime==1.31.1 pillow
    /tmp/clip-venv/bin/python deploy/models/export_clip.py \\
        --model ViT-B-32 --pretrained openai --name openai-clip-vit-b-32 --out packs/openai-clip-vit-b-32 \\
        [--archive packs/openai-clip-vit-b-32.tar.gz]
    vidseek models import packs/openai-clip-vit-b-32

Other catalog entries: --model MobileCLIP-S2 --pretrained datacompdr;
--model xlm-roberta-base-ViT-B-32 --pretrained laion5b_s13b_b90k (multilingual,
HF tokenizer). Chinese-CLIP is not an open_clip model (see catalog.json).

Pack layout (same manifest format as the default pack, "bridge": shared_space):
  image.onnx  pixels f32 [N,3,S,S] -> embedding f32 [N,D]  (L2-normalised)
  text.onnx   input_ids int64 [N,context_length] -> embedding f32 [N,D] (L2-normalised)
  bpe_simple_vocab_16e6.txt.gz (CLIP BPE, tokenizer_kind clip_bpe) or
  tokenizer.json (HF tokenizer, tokenizer_kind hf, padded with pad_id)
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
import tarfile


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--pretrained", default="openai")
    ap.add_argument("--name", default=None, help="pack name (default: model-pretrained, lower case)")
    ap.add_argument("--out", required=True)
    ap.add_argument("--languages", default="en", help="comma separated ISO 639-1 codes, e.g. en or en,zh; * for any")
    ap.add_argument("--licence", default="MIT (OpenAI CLIP weights and code)")
    ap.add_argument("--archive", help="also write a .tar.gz of the pack and print its sha256 for catalog.json")
    ap.add_argument("--opset", type=int, default=17)
    a = ap.parse_args()

    import numpy as np
    import onnxruntime as ort
    import open_clip
    import torch

    name = a.name or f"{a.model}-{a.pretrained}".lower()
    os.makedirs(a.out, exist_ok=True)
    model, _, preprocess = open_clip.create_model_and_transforms(a.model, pretrained=a.pretrained)
    model.eval()
    try:  # MobileCLIP / FastViT style re-parameterisable blocks
        from timm.utils import reparameterize_model  # type: ignore
        model = reparameterize_model(model)
    except Exception:
        pass
    tokenizer = open_clip.get_tokenizer(a.model)

    size = model.visual.image_size
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    cfg = {}
    if hasattr(open_clip, "get_model_preprocess_cfg"):
        cfg = open_clip.get_model_preprocess_cfg(model)
    else:
        cfg = getattr(model.visual, "preprocess_cfg", {}) or {}
    mean = [float(x) for x in cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)]
    std = [float(x) for x in cfg.get("std", open_clip.OPENAI_DATASET_STD)]
    ctx = int(getattr(tokenizer, "context_length", 77))

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

    sample_texts = ["a photo of a cat", "a diagram", "a dog running on the beach"]
    ids = tokenizer(sample_texts)
    pix = torch.randn(2, 3, size, size)
    export_kw = dict(opset_version=a.opset, do_constant_folding=True)
    if "dynamo" in torch.onnx.export.__code__.co_varnames:
        export_kw["dynamo"] = False
    with torch.no_grad():
        torch.onnx.export(ImageTower(model), (pix,), os.path.join(a.out, "image.onnx"),
                          input_names=["pixels"], output_names=["embedding"],
                          dynamic_axes={"pixels": {0: "N"}, "embedding": {0: "N"}}, **export_kw)
        torch.onnx.export(TextTower(model), (ids,), os.path.join(a.out, "text.onnx"),
                          input_names=["input_ids"], output_names=["embedding"],
                          dynamic_axes={"input_ids": {0: "N"}, "embedding": {0: "N"}}, **export_kw)
        ref_i = ImageTower(model)(pix).numpy()
        ref_t = TextTower(model)(ids).numpy()
    got_i = ort.InferenceSession(os.path.join(a.out, "image.onnx")).run(None, {"pixels": pix.numpy()})[0]
    got_t = ort.InferenceSession(os.path.join(a.out, "text.onnx")).run(
        None, {"input_ids": ids.numpy().astype(np.int64)})[0]
    ci = float((got_i * ref_i).sum(1).min())
    ct = float((got_t * ref_t).sum(1).min())
    print(f"onnx vs torch cosine: image {ci:.6f} text {ct:.6f}")
    if ci < 0.999 or ct < 0.999:
        sys.exit("exported graphs disagree with torch")
    dim = int(got_i.shape[1])

    text = {"onnx": "text.onnx", "context_length": ctx, "dim": dim, "inputs": {"input_ids": "input_ids"},
            "output": "embedding"}
    files = ["text.onnx", "image.onnx"]
    if isinstance(tokenizer, open_clip.tokenizer.SimpleTokenizer):
        src = os.path.join(os.path.dirname(open_clip.__file__), "bpe_simple_vocab_16e6.txt.gz")
        shutil.copyfile(src, os.path.join(a.out, "bpe_simple_vocab_16e6.txt.gz"))
        enc = tokenizer.encoder
        text.update({"tokenizer_kind": "clip_bpe", "bpe_vocab": "bpe_simple_vocab_16e6.txt.gz",
                     "vocab_size": len(enc), "sot_id": int(tokenizer.sot_token_id),
                     "eot_id": int(tokenizer.eot_token_id), "lowercase": True, "pad_id": 0})
        files.append("bpe_simple_vocab_16e6.txt.gz")
    else:  # open_clip.tokenizer.HFTokenizer
        hf = tokenizer.tokenizer
        hf.backend_tokenizer.save(os.path.join(a.out, "tokenizer.json"))
        # context_length (set above) makes the worker pad every input to it.
        text.update({"tokenizer_kind": "hugging_face", "tokenizer": "tokenizer.json", "max_tokens": ctx,
                     "pad_id": int(hf.pad_token_id or 0)})
        files.append("tokenizer.json")

    manifest = {
        "name": name,
        "version": 1,
        "description": f"open_clip {a.model} ({a.pretrained}) image and text towers in one embedding space.",
        "licence": a.licence,
        "languages": a.languages.split(","),
        "text": text,
        "image": {"onnx": "image.onnx", "input": "pixels", "size": size, "mean": mean, "std": std,
                  "embedding_output": "embedding", "dim": dim},
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
    print(f"pack written to {a.out}")
    if a.archive:
        with tarfile.open(a.archive, "w:gz") as tf:
            tf.add(a.out, arcname=name)
        print(f"archive {a.archive} sha256 {sha256(a.archive)}")


if __name__ == "__main__":
    main()
