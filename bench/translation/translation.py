#!/usr/bin/env python3
"""Chinese query translation quality: Tux Paint's Chinese captions, searched
among all its English captions (bench/translation/README.md).

For every stamp with an English and a zh_CN caption, the Chinese caption is
turned into English by each system, embedded with the default pack's text
encoder (all-MiniLM-L6-v2) and ranked against the embeddings of every English
caption; a hit is the stamp's own caption. Systems, all in the same run:

* raw: the Chinese text as it is (what an English-only pack sees);
* naive: jieba words, the first CC-CEDICT gloss of each, function words
  dropped (the starting point measured before vidseek translated queries);
* vidseek: the `query_translation` the real stack reports for the query
  (`vidseek up`, empty library, `GET /api/v1/search`).

Captions are reported in two groups: the 80 stamps bench/quality reports
(never used to choose translation rules) and the development rest.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.parse

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "bench", "quality"))
sys.path.insert(0, os.path.join(REPO, "deploy", "models"))
import packlib as P  # noqa: E402
import quality as Q  # noqa: E402
import zh_en_table as Z  # noqa: E402

KS = (1, 5, 10)
JIEBA = "jieba==0.42.1"


def captions(root):
    """[(png, en, zh)] for every stamp with both captions, one per caption."""
    out, seen = [], set()
    for dp, _, fs in sorted(os.walk(root)):
        for f in sorted(fs):
            txt = os.path.join(dp, f[:-4] + ".txt")
            if not f.endswith(".png") or not os.path.exists(txt):
                continue
            en, zh = Q.read_caption(txt)
            if not en or not Q.CJK.search(zh) or en.lower() in seen:
                continue
            seen.add(en.lower())
            out.append((os.path.join(dp, f), en, zh))
    return out


def import_jieba(cache):
    """Python jieba for the naive baseline, installed into the bench cache."""
    target = os.path.join(cache, "pylib")
    if not os.path.isdir(os.path.join(target, "jieba")):
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "--no-deps", "--target", target, JIEBA], check=True)
    sys.path.insert(0, target)
    import jieba
    jieba.setLogLevel(60)
    return jieba


def naive_translator(cache):
    jieba = import_jieba(cache)
    cedict = P.source_file(Z.CEDICT, Z.CEDICT_FILE, cache, prefer_installed=False)
    first = {}
    for head, _pinyin, glosses in Z.parse_cedict(cedict):
        if head not in first and glosses and glosses[0]:
            first[head] = glosses[0]
    drop = set(Z.FUNCTION_WORDS)

    def translate(zh):
        words = [w.strip() for w in jieba.lcut(zh, HMM=False)]
        return " ".join(first[w] for w in words if w and w not in drop and w in first) or zh
    return translate


def recall(queries, keys, truth):
    """R@k of each query's own key (row truth[i]) among all keys."""
    scores = queries @ keys.T
    own = scores[np.arange(len(truth)), truth]
    ranks = (scores > own[:, None]).sum(axis=1)  # 0 = first
    return {f"R@{k}": round(float((ranks < k).mean()), 3) for k in KS}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", default=os.environ.get("VIDSEEK_BIN", os.path.join(REPO, "target/release/vidseek")))
    ap.add_argument("--pack", default=os.environ.get("VIDSEEK_MODEL_PACK"))
    ap.add_argument("--cache", required=True)
    ap.add_argument("--work", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--dump", help="also write every development caption's translations here (TSV)")
    a = ap.parse_args()
    if not a.pack:
        raise SystemExit("VIDSEEK_MODEL_PACK (or --pack) is not set; source .vidseek/env")
    t0 = time.time()
    root = Q.fetch_stamps(a.cache)
    rows = captions(root)
    reported_clips, _dev, _n = Q.split_stamps(root, Q.PER_CLIP, Q.SEED)
    reported = {png for _stem, _desc, stamps in reported_clips for png, _en, _zh in stamps}
    groups = {
        "reported_80": [i for i, r in enumerate(rows) if r[0] in reported],
        "development": [i for i, r in enumerate(rows) if r[0] not in reported],
    }
    Q.log(f"{len(rows)} captions ({len(groups['reported_80'])} of the reported stamps)")

    naive = naive_translator(a.cache)
    systems = {"raw": [zh for _, _, zh in rows], "naive": [naive(zh) for _, _, zh in rows]}
    stack = Q.Stack(a.bin, os.path.join(a.work, "data"), os.path.join(a.work, "media"),
                    os.path.join(a.work, "vidseek.log"))
    try:
        searched, started = [], time.time()
        for _, _, zh in rows:
            answer = stack.get("/api/v1/search?k=1&text=" + urllib.parse.quote(zh))
            searched.append((answer.get("query_translation") or {}).get("text", zh))
        per_query_ms = 1000 * (time.time() - started) / len(rows)
    finally:
        stack.stop()
    systems["vidseek"] = searched

    enc = P.TextEncoder(a.pack)
    keys = enc.encode([en for _, en, _ in rows])
    results = {}
    for name, texts in systems.items():
        vecs = enc.encode(texts)
        results[name] = {g: recall(vecs[idx], keys, np.array(idx)) for g, idx in groups.items()}
        results[name]["all"] = recall(vecs, keys, np.arange(len(rows)))
    examples = [{"zh": rows[i][2], "en": rows[i][1], "naive": systems["naive"][i],
                 "vidseek": systems["vidseek"][i]} for i in groups["reported_80"][:12]]
    out = {"captions": len(rows), "groups": {g: len(v) for g, v in groups.items()},
           "search_ms_per_query": round(per_query_ms, 1), "results": results,
           "examples": examples, "seconds": round(time.time() - t0, 1)}
    if a.dump:
        with open(a.dump, "w", encoding="utf-8") as f:
            for i in groups["development"]:
                f.write(f"{rows[i][2]}\t{systems['vidseek'][i]}\t{rows[i][1]}\n")
    os.makedirs(os.path.dirname(os.path.abspath(a.out)), exist_ok=True)
    with open(a.out, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
    print(f"\nChinese caption -> English caption among all {len(rows)} (R@1 / R@5 / R@10)")
    print(f"| system | {' | '.join(groups)} | all |")
    print("|---|---|---|---|")
    for name, r in results.items():
        cells = [" / ".join(f"{r[g][f'R@{k}']:.3f}" for k in KS) for g in [*groups, "all"]]
        print(f"| {name} | {' | '.join(cells)} |")
    for e in examples[:6]:
        print(f"  {e['zh']}  ->  {e['vidseek']}   (caption: {e['en']})")


if __name__ == "__main__":
    main()
