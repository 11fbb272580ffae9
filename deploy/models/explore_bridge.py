#!/usr/bin/env python3
"""Compare ConSE concept prompt templates and top_k on scikit-image photos.

    python deploy/models/explore_bridge.py --pack DIR

Needs a built pack (for text.onnx, image.onnx, tokenizer.json) and
scikit-image. Prints text->image retrieval R@1/R@5/MRR for each template and
top_k, plus the cosine statistics used to choose the calibration.
It is a development tool: build_default_pack.py hard-codes the choice.
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import packlib as P  # noqa: E402
import build_default_pack as B  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pack", required=True)
    ap.add_argument("--templates", default="name,photo,lemmas,name+def,lemmas+def,ensemble")
    ap.add_argument("--stamps", help="extracted Debian tuxpaint-stamps-default: .../usr/share/tuxpaint/stamps "
                                     "(photo cut-outs with English captions): a larger benchmark")
    a = ap.parse_args()
    if a.stamps:
        return stamps_benchmark(a)
    enc = P.TextEncoder(a.pack)
    classes = P.imagenet_classes()
    imgs = P.eval_images()
    sess = P.ort_session(os.path.join(a.pack, "image.onnx"))
    feats, probs = sess.run(["features", "probs"], {"pixels": np.stack([x for _, x in imgs])})
    caps, owner = [], []
    for i, (_, cs) in enumerate(P.EVAL_SET):
        caps += cs
        owner += [i] * len(cs)
    owner = np.array(owner)
    tv = enc.encode(caps)
    print(f"{len(imgs)} images, {len(caps)} captions")
    print(f"{'template':12s} {'k':>4s}  R@1   R@5   MRR   pos   neg   neg95")
    for t in a.templates.split(","):
        cm = B.concept_matrix(enc, classes, t)
        for k in (1, 3, 5, 10, 20, 50, 1000):
            iv = P.conse(probs, cm, k)
            m = P.retrieval_metrics(tv, owner, iv)
            print(f"{t:12s} {k:4d}  {m['R@1']:.2f}  {m['R@5']:.2f}  {m['MRR']:.2f}  "
                  f"{m['pos_mean']:.2f}  {m['neg_mean']:.2f}  {m['neg_p95']:.2f}")
    # per-query ranks with the built pack's concepts
    cm = np.fromfile(os.path.join(a.pack, "concepts.f32"), "<f4").reshape(1000, -1)
    iv = P.conse(probs, cm, B.TOP_K)
    m = P.retrieval_metrics(tv, owner, iv)
    print("\nper caption (pack concepts, top_k=%d): rank, cosine" % B.TOP_K)
    for q, c in enumerate(caps):
        print(f"  {m['ranks'][q]:2d} {m['pos'][q]:.2f}  {c!r} -> {P.EVAL_SET[owner[q]][0]}")
    print("negatives: mean %.3f p95 %.3f max %.3f" % (m["neg"].mean(), np.percentile(m["neg"], 95), m["neg"].max()))
    # image-image: centre crop 80% / flip vs others
    feats_n = feats / np.linalg.norm(feats, axis=1, keepdims=True)
    d = P.skimage_dir()
    aug = []
    for n, _ in P.EVAL_SET:
        rgb = P.load_rgb(os.path.join(d, n))
        h, w = rgb.shape[:2]
        crop = rgb[h // 10: h - h // 10, w // 10: w - w // 10][:, ::-1]
        aug.append(P.preprocess(np.ascontiguousarray(crop)))
    fa = sess.run(["features"], {"pixels": np.stack(aug)})[0]
    fa /= np.linalg.norm(fa, axis=1, keepdims=True)
    s = fa @ feats_n.T
    pos = np.diag(s)
    neg = s[~np.eye(len(s), dtype=bool)]
    print("image-image (crop+flip vs original): pos mean %.3f min %.3f; neg mean %.3f p95 %.3f max %.3f"
          % (pos.mean(), pos.min(), neg.mean(), np.percentile(neg, 95), neg.max()))
    a_ = enc.encode([p[0] for p in P.TEXT_PAIRS])
    b_ = enc.encode([p[1] for p in P.TEXT_PAIRS])
    cs = (a_ * b_).sum(1)
    rel = np.array([p[2] for p in P.TEXT_PAIRS])
    print("text-text: related %s unrelated %s" % (np.round(cs[rel], 2), np.round(cs[~rel], 2)))


def load_stamps(root):
    pairs = []
    for dp, _, fs in os.walk(root):
        for f in sorted(fs):
            if not f.endswith(".png"):
                continue
            txt = os.path.join(dp, f[:-4] + ".txt")
            if not os.path.exists(txt):
                continue
            cap = open(txt, encoding="utf-8", errors="replace").readline().strip()
            if cap:
                pairs.append((os.path.join(dp, f), cap))
    return sorted(pairs)


def stamps_benchmark(a):
    enc = P.TextEncoder(a.pack)
    classes = P.imagenet_classes()
    pairs = load_stamps(a.stamps)
    cache = os.path.join(a.pack, "..", "stamps_probs.npz")
    if os.path.exists(cache):
        z = np.load(cache)
        feats, probs = z["feats"], z["probs"]
    else:
        sess = P.ort_session(os.path.join(a.pack, "image.onnx"))
        fs, ps = [], []
        for s in range(0, len(pairs), 32):
            x = np.stack([P.preprocess(P.load_rgb(p)) for p, _ in pairs[s:s + 32]])
            f, p = sess.run(["features", "probs"], {"pixels": x})
            fs.append(f)
            ps.append(p)
        feats, probs = np.concatenate(fs), np.concatenate(ps)
        np.savez(cache, feats=feats, probs=probs)
    caps = [c for _, c in pairs]
    tv = enc.encode(caps)
    owner = np.arange(len(pairs))
    print(f"stamps benchmark: {len(pairs)} images, one caption each")
    print(f"{'template':12s} {'k':>4s}  R@1   R@5   R@10  MRR   pos   neg   neg95")
    for t in a.templates.split(","):
        cm = B.concept_matrix(enc, classes, t)
        for k in (1, 5, 10, 20, 50, 1000):
            iv = P.conse(probs, cm, k)
            sims = tv @ iv.T
            ranks = (sims > sims[owner, owner][:, None]).sum(1) + 1
            pos = sims[owner, owner]
            neg = sims[~np.eye(len(sims), dtype=bool)]
            print(f"{t:12s} {k:4d}  {(ranks <= 1).mean():.3f} {(ranks <= 5).mean():.3f} {(ranks <= 10).mean():.3f} "
                  f"{(1 / ranks).mean():.3f} {pos.mean():.2f}  {neg.mean():.2f}  {np.percentile(neg, 95):.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
