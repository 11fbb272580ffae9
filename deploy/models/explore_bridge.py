#!/usr/bin/env python3
"""Choose the default pack's ConSE bridge settings and fit its calibration.

    python deploy/models/explore_bridge.py --pack DIR --stamps CACHE [--report | --shipped]
    python deploy/models/explore_bridge.py --pack DIR     (scikit-image smoke set)

--stamps: bench/quality's cache directory (e.g. .vidseek/cache/bench; the
stamps .deb is fetched there when missing). The stamps are split exactly as
the bench splits them (quality.split_stamps): the reported sample is never
used for a choice; everything is chosen on the development split, the other
eligible stamps of the bench's themes. Runs the pack's ONNX models in Python
over the stamps (as ingest would see them), grid-searches prompt template,
top_k, temperature and WordNet hypernyms, compares frame poolings, and fits
sigmoid(a*cos+b) for text_visual, text_text and image_image by logistic
regression. --report then scores the reported split once, before and after;
--shipped skips the search and evaluates build_default_pack.py's settings.

Without --stamps it prints retrieval on the 16 scikit-image photos for each
template and top_k, and the cosine statistics there. A development tool:
build_default_pack.py holds the chosen values.
"""
import argparse
import hashlib
import io
import json
import os
import re
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(HERE)), "bench", "quality"))
import packlib as P  # noqa: E402
import build_default_pack as B  # noqa: E402
import quality as Q  # noqa: E402  (the bench's split, frames and query images)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--pack", required=True)
    ap.add_argument("--templates", default="name,photo,lemmas,name+def,lemmas+def,ensemble")
    ap.add_argument("--stamps", help="bench/quality's cache directory (e.g. .vidseek/cache/bench): tune on the "
                                     "development split of its stamps instead")
    ap.add_argument("--per-clip", type=int, default=None, help="as bench/quality (default: its own)")
    ap.add_argument("--seed", type=int, default=None, help="as bench/quality (default: its own)")
    ap.add_argument("--pack-cache", default=None, help="build cache for the timm class lists")
    ap.add_argument("--report", action="store_true", help="after choosing, also score the reported split")
    ap.add_argument("--shipped", action="store_true", help="skip the search: pooling, calibration (and --report) "
                                                           "for build_default_pack.py's settings")
    a = ap.parse_args()
    if a.stamps:
        a.per_clip = a.per_clip or Q.PER_CLIP
        a.seed = a.seed or Q.SEED
        a.templates = a.templates.replace("name,photo,", "")
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
        cm = B.concept_matrix(enc.encode, classes, None, t, {"mode": "none"})
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


# --------------------------------------------------------------------------
# Tuning on bench/quality's development split (--stamps)
# --------------------------------------------------------------------------

# What ingest does to a frame before the encoder sees it
# (workers/media/src/frames.rs SampleOptions, workers/ingest/src/job.rs).
FRAME_SHORT_SIDE = 256
FRAME_JPEG_QUALITY = 90
# Three views of a stamp as a moving camera would show it, (fill, shift):
# the bench's stamps are still pictures, so its segments' frames are alike
# and cannot tell frame poolings apart.
CAMERA_VIEWS = [(0.85, (0.0, 0.0)), (1.0, (0.08, 0.05)), (0.6, (-0.12, -0.06))]
DRAWS = 50


def ingest_frame(frame):
    """RGB array of a 640x480 frame after ingest's scaling and JPEG round trip."""
    from PIL import Image
    w, h = frame.size
    s = FRAME_SHORT_SIDE / min(w, h)
    im = frame.resize((round(w * s), round(h * s)), Image.BILINEAR)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=FRAME_JPEG_QUALITY)
    return P.load_rgb(io.BytesIO(buf.getvalue()))


def stamp_arrays(pack, stamps, cache_dir):
    """Per stamp: frame probs [N,1000] and features, the camera views' probs
    [N,V,1000], and the image query's features; cached per image.onnx."""
    from PIL import Image
    man = json.load(open(os.path.join(pack, "manifest.json")))
    img = man["image"]
    key = hashlib.sha256((P.sha256_file(os.path.join(pack, img["onnx"])) +
                          "".join(p for p, _, _ in stamps)).encode()).hexdigest()[:16]
    path = os.path.join(cache_dir, f"stamps-{key}.npz")
    if os.path.exists(path):
        z = np.load(path)
        return {k: z[k] for k in z.files}
    sess = P.ort_session(os.path.join(pack, img["onnx"]))

    def run(rgbs):
        fs, ps = [], []
        for s in range(0, len(rgbs), 32):
            x = np.stack([P.preprocess(r, img["size"], img["mean"], img["std"]) for r in rgbs[s:s + 32]])
            f, p = sess.run([img["features_output"], img["probs_output"]], {img["input"]: x})
            fs.append(f)
            ps.append(p)
        return np.concatenate(fs), np.concatenate(ps)

    P.log(f"running image.onnx over {len(stamps)} stamps (frames, camera views, image queries)")
    out = {}
    out["frame_feats"], out["frame_probs"] = run([ingest_frame(Q.frame_for(p)) for p, _, _ in stamps])
    views = [ingest_frame(Q.frame_for(p, fill, shift)) for p, _, _ in stamps for fill, shift in CAMERA_VIEWS]
    out["view_probs"] = run(views)[1].reshape(len(stamps), len(CAMERA_VIEWS), -1)
    queries = [P.load_rgb(io.BytesIO(Q.query_image(p))) for p, _, _ in stamps]
    out["query_feats"] = run(queries)[0]
    os.makedirs(cache_dir, exist_ok=True)
    np.savez(path, **out)
    return out


class Embedder:
    """text.onnx with a memory of what it has embedded (the grid reuses prompts)."""

    def __init__(self, pack):
        self.enc = P.TextEncoder(pack)
        self.seen = {}

    def __call__(self, texts):
        new = sorted({t for t in texts if t not in self.seen})
        if new:
            for t, v in zip(new, self.enc.encode(new, batch=128)):
                self.seen[t] = v
        return np.stack([self.seen[t] for t in texts])


def bench_draws(themes, n, per_clip, seed):
    """n bench-shaped candidate sets (per_clip stamps of each theme) as index arrays."""
    rng = np.random.default_rng(seed)
    starts = np.cumsum([0] + [len(t) for t in themes])
    return [np.concatenate([s + rng.choice(len(t), per_clip, replace=False) for s, t in zip(starts, themes)])
            for _ in range(n)]


def retrieval(text_vecs, frame_vecs, draws, asked=None):
    """Mean R@1/5/10 and MRR of query i finding frame i among each draw's
    candidates; asked[i] False: stamp i has no query (still a candidate)."""
    r = {"R@1": 0.0, "R@5": 0.0, "R@10": 0.0, "MRR": 0.0}
    for idx in draws:
        sims = text_vecs[idx] @ frame_vecs[idx].T
        ranks = ((sims > np.diag(sims)[:, None]).sum(1) + 1)
        if asked is not None:
            ranks = ranks[asked[idx]]
        for k in (1, 5, 10):
            r[f"R@{k}"] += (ranks <= k).mean() / len(draws)
        r["MRR"] += (1.0 / ranks).mean() / len(draws)
    return r


def extended_conse(probs, bank, spec, top_k, temperature):
    """Hypernyms as concepts of their own, top_k taken over classes and
    ancestors together (an ancestor's probability: the sum of its classes')."""
    own, anc, he = bank
    kept = sorted({h for a in anc for h in a})
    col = {h: i for i, h in enumerate(kept)}
    up = np.zeros((len(anc), len(kept)))
    for c, a in enumerate(anc):
        for h in a:
            up[c, col[h]] = spec["weight"]
    p = np.asarray(probs, np.float64) ** (1.0 / temperature)
    ext = np.concatenate([p, p @ up], axis=1)
    return P.conse(ext, np.concatenate([own, np.stack([he[h] for h in kept])]), top_k)


def fit_calibration(pos, neg):
    """(a, b) of sigmoid(a*cos + b) by logistic regression, matching and
    non-matching pairs weighted to equal total weight (Newton's method)."""
    x = np.concatenate([pos, neg]).astype(np.float64)
    y = np.concatenate([np.ones(len(pos)), np.zeros(len(neg))])
    w = np.concatenate([np.full(len(pos), 0.5 / len(pos)), np.full(len(neg), 0.5 / len(neg))])
    X = np.stack([x, np.ones_like(x)], 1)
    beta = np.zeros(2)
    for _ in range(100):
        p = P.sigmoid(X @ beta)
        g = X.T @ (w * (p - y))
        H = (X * (w * p * (1 - p))[:, None]).T @ X + 1e-9 * np.eye(2)
        step = np.linalg.solve(H, g)
        beta -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(beta[0]), float(beta[1])


class GenericWords:
    """Turns a caption into the query a user with a generic word would type:
    its head noun (the last WordNet noun, proper names and function words
    skipped) replaced by the first lemma of its most common sense's direct
    hypernym: "A wombat." -> "A marsupial.", "Two wild boars." -> "Two swine."."""

    SKIP = set("a an the of and or to in on at by for with from is are was be it its this that two three "
               "one my your our their his her very little big small colorful".split())

    def __init__(self, nouns, wn_dir=P.WORDNET_DIR):
        self.nouns = nouns
        self.index = {}
        for line in open(os.path.join(wn_dir, "index.noun"), encoding="utf-8"):
            if not line.startswith("  "):
                t = line.split()
                # synset_cnt offsets end the line, most common sense first
                self.index[t[0].replace("_", " ")] = t[-int(t[2])]
        self.irregular = dict(line.split()[:2] for line in open(os.path.join(wn_dir, "noun.exc"), encoding="utf-8"))

    def lemma(self, phrase):
        last = phrase.split(" ")[-1]
        head = phrase[:len(phrase) - len(last)]
        cands = [last, self.irregular.get(last, "")]
        if last.endswith("ies"):
            cands.append(last[:-3] + "y")
        if last.endswith("es"):
            cands.append(last[:-2])
        if last.endswith("s") and not last.endswith("ss"):
            cands.append(last[:-1])
        for c in cands:
            if c and head + c in self.index:
                return head + c
        return None

    def __call__(self, caption):
        first = re.split(r"[.!?—(]", caption.strip())[0]  # the first clause names the thing
        words = [w.strip(",;:\"'“”‘’") for w in first.split()]
        for end in range(len(words), 0, -1):
            for start in range(max(0, end - 3), end):
                span = words[start:end]
                if not all(span) or span[-1].lower() in self.SKIP or any(w[:1].isupper() for w in span[1:]) \
                        or (start > 0 and span[0][:1].isupper()) or span[-1].isdigit():
                    continue
                found = self.lemma(" ".join(span).lower())
                if found is None:
                    continue
                hyper = self.nouns[self.index[found]][1]
                if not hyper:
                    return None
                generic = self.nouns[hyper[0]][0][0]
                return " ".join(words[:start] + [generic] + words[end:]).strip() + "."
        return None


def stamps_benchmark(a):
    root = Q.fetch_stamps(a.stamps)
    clips, development, _ = Q.split_stamps(root, a.per_clip, a.seed)
    dev_themes = [s for _, s in development]
    dev = [s for t in dev_themes for s in t]
    reported = [s for _, _, st in clips for s in st]
    arrays = stamp_arrays(a.pack, dev + reported, os.path.join(a.stamps, "tuner"))
    nd = len(dev)
    D = {k: v[:nd] for k, v in arrays.items()}
    R = {k: v[nd:] for k, v in arrays.items()}
    embed = Embedder(a.pack)
    classes = P.imagenet_classes(a.pack_cache)
    nouns = P.wordnet_nouns()
    caps = embed([c for _, c, _ in dev])
    to_generic = GenericWords(nouns)
    generic = [to_generic(c) for _, c, _ in dev]
    asked = np.array([g is not None for g in generic])
    gen = np.zeros_like(caps)
    gen[asked] = embed([g for g in generic if g])
    draws = bench_draws(dev_themes, DRAWS, a.per_clip, 1)
    print(f"development split: {nd} stamps (themes {[len(t) for t in dev_themes]}); {DRAWS} bench-shaped "
          f"draws of {a.per_clip} per theme; reported split ({len(reported)}) untouched.\n"
          f"Queries: each stamp's caption, and for {asked.sum()} of them a generic one (the caption's noun "
          f"replaced by its WordNet hypernym), e.g. " +
          "; ".join(f"{dev[i][1]!r} -> {generic[i]!r}" for i in np.flatnonzero(asked)[:4]) +
          ".\nChoice: the best mean of the two MRRs.")

    def evaluate(frame_vecs):
        r = retrieval(caps, frame_vecs, draws)
        g = retrieval(gen, frame_vecs, draws, asked)
        return {"caption": r, "generic": g, "score": (r["MRR"] + g["MRR"]) / 2}

    def show(label, e):
        r, g = e["caption"], e["generic"]
        print(f"{label:52s} {r['R@1']:.3f} {r['R@5']:.3f} {r['R@10']:.3f} {r['MRR']:.3f} | "
              f"{g['R@1']:.3f} {g['R@5']:.3f} {g['MRR']:.3f}", flush=True)

    hdr = f"{'':52s} caption: R@1 R@5  R@10  MRR  | generic: R@1 R@5 MRR"
    best = None

    def consider(e, cfg):
        nonlocal best
        if best is None or e["score"] > best[0]["score"]:
            best = (e, cfg)

    if a.shipped:
        return choose_and_report(a, dict(template=B.CONCEPT_TEMPLATE, top_k=B.TOP_K, temperature=B.TEMPERATURE,
                                         hypernyms=B.HYPERNYMS), locals())
    print("\n1. prompt template x top_k x temperature (no hypernyms)\n" + hdr)
    for tpl in a.templates.split(","):
        cm = B.concept_matrix(embed, classes, nouns, tpl, {"mode": "none"})
        for k in (5, 10, 20, 50, 1000):
            for t in (1.0, 2.0, 3.0):
                e = evaluate(P.conse(D["frame_probs"], cm, k, t))
                show(f"{tpl} k={k} T={t}", e)
                consider(e, dict(template=tpl, top_k=k, temperature=t, hypernyms={"mode": "none"}))
    print("best so far:", json.dumps(best[1]))
    tpl, k0, t0 = best[1]["template"], best[1]["top_k"], best[1]["temperature"]

    print(f"\n2. WordNet hypernyms ({tpl}, k={k0}, T={t0})\n" + hdr)
    own = B.concept_matrix(embed, classes, nouns, tpl, {"mode": "none"})
    for mode in ("prompts", "inherit", "extended"):
        for steps in (1, 2, 3, 5):
            for cover in (150, 400, 1000):
                if mode == "extended":
                    anc = B.class_ancestors(classes, nouns, steps, cover)
                    kept = sorted({h for x in anc for h in x})
                    bank = (own, anc, dict(zip(kept, embed([B.hypernym_prompt(nouns[h][0]) for h in kept]))))
                for w in ((0.1, 0.25, 0.5, 1.0) if mode != "prompts" else (0.25, 0.5, 1.0, 2.0)):
                    spec = {"mode": mode, "max_steps": steps, "max_classes": cover, "weight": w}
                    if mode == "extended":
                        e = evaluate(extended_conse(D["frame_probs"], bank, spec, k0, t0))
                    else:
                        e = evaluate(P.conse(D["frame_probs"], B.concept_matrix(embed, classes, nouns, tpl, spec),
                                             k0, t0))
                    show(f"{mode} steps<={steps} classes<={cover} w={w}", e)
                    if mode == "extended":
                        if e["score"] > best[0]["score"]:
                            print("  (better than the best shippable setting; extended needs a bridge change)")
                    else:
                        consider(e, dict(best[1], hypernyms=spec))
    print("best so far:", json.dumps(best[1]))

    print("\n3. top_k x temperature again, with the chosen concepts\n" + hdr)
    cfg = best[1]
    cm = B.concept_matrix(embed, classes, nouns, cfg["template"], cfg["hypernyms"])
    for k in (5, 10, 20, 30, 50):
        for t in (1.0, 1.5, 2.0, 2.5, 3.0, 4.0):
            e = evaluate(P.conse(D["frame_probs"], cm, k, t))
            show(f"k={k} T={t}", e)
            consider(e, dict(cfg, top_k=k, temperature=t))
    return choose_and_report(a, best[1], locals())


def choose_and_report(a, cfg, env):
    """Pooling and calibration for the chosen setting cfg; the reported split
    with --report. env: stamps_benchmark's data and helpers."""
    D, R, caps, gen, asked, embed, classes, nouns = (env[k] for k in (
        "D", "R", "caps", "gen", "asked", "embed", "classes", "nouns"))
    evaluate, show, hdr, nd, reported, to_generic = (env[k] for k in (
        "evaluate", "show", "hdr", "nd", "reported", "to_generic"))
    cm = B.concept_matrix(embed, classes, nouns, cfg["template"], cfg["hypernyms"])
    k, t = cfg["top_k"], cfg["temperature"]
    print("chosen:", json.dumps(cfg))
    show("chosen, development split", evaluate(P.conse(D["frame_probs"], cm, k, t)))

    print("\n4. frame pooling over a moving camera's 3 views\n" + hdr)
    vp = D["view_probs"]
    per_view = [P.conse(vp[:, v], cm, k, t) for v in range(vp.shape[1])]
    pooled = {
        "mean of frame vectors (ingest today)": sum(per_view),
        "max of frame vectors": np.max(per_view, axis=0),
        "ConSE of mean probabilities": P.conse(vp.mean(1), cm, k, t),
        "ConSE of max probabilities": P.conse(vp.max(1), cm, k, t),
    }
    for name, v in pooled.items():
        show(name, evaluate(v / np.linalg.norm(v, axis=1, keepdims=True)))

    print("\n5. calibration, fitted on the development split (every pair; matching and other pairs "
          "weighted equally)")
    off = ~np.eye(nd, dtype=bool)
    sims = caps @ P.conse(D["frame_probs"], cm, k, t).T
    ff = D["frame_feats"] / np.linalg.norm(D["frame_feats"], axis=1, keepdims=True)
    qf = D["query_feats"] / np.linalg.norm(D["query_feats"], axis=1, keepdims=True)
    isims = qf @ ff.T
    tsims = (gen @ caps.T)[asked][:, asked]
    fits = {
        "text_visual": ("caption vs its frame's ConSE vector", np.diag(sims), sims[off]),
        "text_text": ("generic query vs the caption it came from",
                      np.diag(tsims), tsims[~np.eye(len(tsims), dtype=bool)]),
        "image_image": ("image query (70 % crop, half size) vs frame features", np.diag(isims), isims[off]),
    }
    cal = {}
    for name, (what, pos, neg) in fits.items():
        a_, b_ = fit_calibration(pos, neg)
        cal[name] = {"a": round(a_, 2), "b": round(b_, 2)}
        print(f"  {name:12s} ({what}): a={a_:.2f} b={b_:.2f}, 0.5 at cos {-b_ / a_:.3f}; matching cos mean "
              f"{pos.mean():.3f}, others mean {neg.mean():.3f} p95 {np.percentile(neg, 95):.3f}; confidence "
              f"matching median {np.median(P.sigmoid(a_ * pos + b_)):.2f}, others mean "
              f"{P.sigmoid(a_ * neg + b_).mean():.2f}")
    print("CALIBRATION =", json.dumps(cal))

    if a.report:
        print(f"\n6. the reported split ({len(reported)} stamps ranked among themselves, as in the bench)\n" + hdr)
        rcaps = embed([c for _, c, _ in reported])
        rgen_txt = [to_generic(c) for _, c, _ in reported]
        rasked = np.array([g is not None for g in rgen_txt])
        rgen = np.zeros_like(rcaps)
        rgen[rasked] = embed([g for g in rgen_txt if g])
        one = [np.arange(len(reported))]

        def rshow(label, v):
            show(label, {"caption": retrieval(rcaps, v, one), "generic": retrieval(rgen, v, one, rasked)})

        rshow("before: lemmas+def, k=20, T=1",
              P.conse(R["frame_probs"], B.concept_matrix(embed, classes, nouns, "lemmas+def", {"mode": "none"}),
                      20, 1.0))
        rshow("after: the chosen setting", P.conse(R["frame_probs"], cm, k, t))


if __name__ == "__main__":
    main()
