#!/usr/bin/env python3
"""Generate a TINY random-weight model pack for plumbing tests (milliseconds, no downloads).

    python deploy/models/make_fixture_pack.py --out DIR --kind conse|clip [--bpe PATH]

The pack has exactly the manifest shape, file names, ONNX input/output names
and dtypes of a real pack, but dims are tiny (text/shared dim 8, image
features 16, 10 classes, image size 32) and the weights are random with a
fixed seed, so the output is byte-for-byte deterministic.

kind conse  (like the default pack):
  text.onnx   input_ids, attention_mask, token_type_ids int64 [N,T] -> embedding f32 [N,8]
              (masked mean of token embeddings, L2-normalised: the same text
              always gives the same vector, texts sharing words are close)
  image.onnx  pixels f32 [N,3,32,32] -> features f32 [N,16], probs f32 [N,10]
  tokenizer.json  HF tokenizers WordLevel file ([PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3),
              lowercase + whitespace split, "[CLS] $A [SEP]", truncation 16, no padding
  classes.txt 10 names; concepts.f32 [10 x 8] = text embeddings of the names,
              so the text "a cat" is nearest to the concept "cat".
kind clip   (like a CLIP-family pack, "bridge": {"kind": "shared_space"}):
  text.onnx   input_ids int64 [N,77] -> embedding f32 [N,8] (mean over ids != 0, L2)
  image.onnx  pixels f32 [N,3,32,32] -> embedding f32 [N,8] (L2-normalised)
  bpe_vocab.txt.gz  a tiny merges file in the format of CLIP's
              bpe_simple_vocab_16e6.txt.gz ("#version: 0.2" + merges), so vocab
              ids are: 256 bytes, 256 bytes+"</w>", merges, <|startoftext|>,
              <|endoftext|> (sot_id/eot_id/vocab_size are in the manifest).
              --bpe PATH copies a real CLIP vocabulary instead (49408 tokens).
"""
from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import shutil
import sys

import numpy as np

try:
    import onnx
    from onnx import TensorProto as TP
    from onnx import helper, numpy_helper
except ImportError:  # pragma: no cover
    sys.exit("make_fixture_pack.py needs the `onnx` package (deploy/models/requirements.txt)")

SEED = 1234
DIM = 8
FEAT = 16
SIZE = 32
MAX_TOKENS = 16
CLASSES = ["cat", "dog", "car", "tree", "boat", "house", "bird", "flower", "person", "ball"]
WORDS = ["a", "an", "the", "of", "on", "in", "with", "and", "photo", "picture", "red", "blue",
         "green", "small", "big", "running", "sitting", "street", "water", "sky", "man", "woman",
         "kitten", "puppy", "road", "garden", "sea", "playing"]
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def sha(path):
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


def t(name, arr):
    return numpy_helper.from_array(np.ascontiguousarray(arr), name)


def save(graph, path, doc):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)],
                          producer_name="vidseek-fixture", producer_version="1", doc_string=doc)
    m.ir_version = 8
    onnx.checker.check_model(m)
    onnx.save_model(m, path)


def l2norm_nodes(src, out, prefix):
    return [
        helper.make_node("Mul", [src, src], [prefix + "sq"]),
        helper.make_node("ReduceSum", [prefix + "sq", "axes1"], [prefix + "ss"], keepdims=1),
        helper.make_node("Sqrt", [prefix + "ss"], [prefix + "n"]),
        helper.make_node("Max", [prefix + "n", "eps"], [prefix + "nc"]),
        helper.make_node("Div", [src, prefix + "nc"], [out]),
    ]


def text_onnx_conse(path, word_emb, type_emb):
    nodes = [
        helper.make_node("Gather", ["word_emb", "input_ids"], ["we"]),
        helper.make_node("Gather", ["type_emb", "token_type_ids"], ["te"]),
        helper.make_node("Add", ["we", "te"], ["x"]),
        helper.make_node("Cast", ["attention_mask"], ["m"], to=TP.FLOAT),
        helper.make_node("Unsqueeze", ["m", "axes_last"], ["m3"]),
        helper.make_node("Mul", ["x", "m3"], ["xm"]),
        helper.make_node("ReduceSum", ["xm", "axes1"], ["s"], keepdims=0),
        helper.make_node("ReduceSum", ["m3", "axes1"], ["c0"], keepdims=0),
        helper.make_node("Max", ["c0", "eps"], ["c"]),
        helper.make_node("Div", ["s", "c"], ["mean"]),
    ] + l2norm_nodes("mean", "embedding", "n_")
    g = helper.make_graph(
        nodes, "fixture-text-conse",
        [helper.make_tensor_value_info(n, TP.INT64, ["N", "T"])
         for n in ("input_ids", "attention_mask", "token_type_ids")],
        [helper.make_tensor_value_info("embedding", TP.FLOAT, ["N", DIM])],
        [t("word_emb", word_emb), t("type_emb", type_emb), t("axes1", np.array([1], np.int64)),
         t("axes_last", np.array([-1], np.int64)), t("eps", np.array(1e-9, np.float32))])
    save(g, path, "vidseek test fixture: random-weight text tower (conse)")


def text_onnx_clip(path, word_emb, ctx):
    nodes = [
        helper.make_node("Gather", ["word_emb", "input_ids"], ["we"]),
        helper.make_node("Greater", ["input_ids", "zero_i"], ["nz"]),
        helper.make_node("Cast", ["nz"], ["m"], to=TP.FLOAT),
        helper.make_node("Unsqueeze", ["m", "axes_last"], ["m3"]),
        helper.make_node("Mul", ["we", "m3"], ["xm"]),
        helper.make_node("ReduceSum", ["xm", "axes1"], ["s"], keepdims=0),
        helper.make_node("ReduceSum", ["m3", "axes1"], ["c0"], keepdims=0),
        helper.make_node("Max", ["c0", "eps"], ["c"]),
        helper.make_node("Div", ["s", "c"], ["mean"]),
    ] + l2norm_nodes("mean", "embedding", "n_")
    g = helper.make_graph(
        nodes, "fixture-text-clip",
        [helper.make_tensor_value_info("input_ids", TP.INT64, ["N", ctx])],
        [helper.make_tensor_value_info("embedding", TP.FLOAT, ["N", DIM])],
        [t("word_emb", word_emb), t("zero_i", np.array(0, np.int64)), t("axes1", np.array([1], np.int64)),
         t("axes_last", np.array([-1], np.int64)), t("eps", np.array(1e-9, np.float32))])
    save(g, path, "vidseek test fixture: random-weight text tower (clip)")


def image_onnx(path, rng, kind):
    conv_w = rng.normal(0, 0.3, (FEAT, 3, 3, 3)).astype(np.float32)
    conv_b = rng.normal(0, 0.1, (FEAT,)).astype(np.float32)
    inits = [t("conv_w", conv_w), t("conv_b", conv_b), t("axes1", np.array([1], np.int64)),
             t("eps", np.array(1e-9, np.float32))]
    nodes = [
        helper.make_node("Conv", ["pixels", "conv_w", "conv_b"], ["c"], kernel_shape=[3, 3], strides=[2, 2],
                         pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["gap"]),
        helper.make_node("Flatten", ["gap"], ["feat"], axis=1),
    ]
    if kind == "conse":
        fc_w = rng.normal(0, 1.0, (FEAT, len(CLASSES))).astype(np.float32)
        fc_b = rng.normal(0, 0.1, (len(CLASSES),)).astype(np.float32)
        inits += [t("fc_w", fc_w), t("fc_b", fc_b)]
        nodes += [
            helper.make_node("Identity", ["feat"], ["features"]),
            helper.make_node("Gemm", ["feat", "fc_w", "fc_b"], ["logits"]),
            helper.make_node("Softmax", ["logits"], ["probs"], axis=-1),
        ]
        outputs = [helper.make_tensor_value_info("features", TP.FLOAT, ["N", FEAT]),
                   helper.make_tensor_value_info("probs", TP.FLOAT, ["N", len(CLASSES)])]
    else:
        proj = rng.normal(0, 1.0, (FEAT, DIM)).astype(np.float32)
        inits += [t("proj", proj)]
        nodes += [helper.make_node("MatMul", ["feat", "proj"], ["e"])] + l2norm_nodes("e", "embedding", "n_")
        outputs = [helper.make_tensor_value_info("embedding", TP.FLOAT, ["N", DIM])]
    g = helper.make_graph(nodes, f"fixture-image-{kind}",
                          [helper.make_tensor_value_info("pixels", TP.FLOAT, ["N", 3, SIZE, SIZE])],
                          outputs, inits)
    save(g, path, f"vidseek test fixture: random-weight image tower ({kind})")


def wordlevel_tokenizer(vocab):
    """An HF tokenizers JSON (same schema as BERT's tokenizer.json) with a WordLevel model."""
    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"]
    return {
        "version": "1.0",
        "truncation": {"max_length": MAX_TOKENS, "strategy": "LongestFirst", "stride": 0},
        "padding": None,
        "added_tokens": [{"id": i, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
                          "normalized": False, "special": True} for i, s in enumerate(special)],
        "normalizer": {"type": "Lowercase"},
        "pre_tokenizer": {"type": "Whitespace"},
        "post_processor": {
            "type": "TemplateProcessing",
            "single": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                       {"SpecialToken": {"id": "[SEP]", "type_id": 0}}],
            "pair": [{"SpecialToken": {"id": "[CLS]", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}},
                     {"SpecialToken": {"id": "[SEP]", "type_id": 1}}],
            "special_tokens": {"[CLS]": {"id": "[CLS]", "ids": [2], "tokens": ["[CLS]"]},
                               "[SEP]": {"id": "[SEP]", "ids": [3], "tokens": ["[SEP]"]}},
        },
        "decoder": None,
        "model": {"type": "WordLevel", "vocab": vocab, "unk_token": "[UNK]"},
    }


def tiny_bpe(words):
    """Merges (CLIP format) that build each word + '</w>' left to right."""
    merges = []
    seen = set()
    for w in words:
        parts = list(w[:-1]) + [w[-1] + "</w>"]
        while len(parts) > 1:
            pair = (parts[0], parts[1])
            if pair not in seen:
                seen.add(pair)
                merges.append(pair)
            parts = [parts[0] + parts[1]] + parts[2:]
    return merges


def write_gz(path, text):
    # fixed mtime and no file name so the bytes are deterministic
    with open(path, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as f:
            f.write(text.encode("utf-8"))


def base_manifest(kind):
    return {
        "name": f"fixture-{kind}",
        "version": 1,
        "description": f"TINY random-weight {kind} pack for plumbing tests (make_fixture_pack.py); "
                       "its scores mean nothing.",
        "licence": "Apache-2.0 (generated test fixture)",
        "languages": ["en"],
        "calibration": {"text_visual": {"a": 10.0, "b": -3.0}, "text_text": {"a": 10.0, "b": -5.0},
                        "image_image": {"a": 10.0, "b": -5.0}},
    }


def make_conse(out, rng):
    vocab_list = ["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + CLASSES + WORDS
    vocab = {w: i for i, w in enumerate(vocab_list)}
    word_emb = rng.normal(0, 1, (len(vocab_list), DIM)).astype(np.float32)
    type_emb = (rng.normal(0, 0.1, (2, DIM))).astype(np.float32)
    text_onnx_conse(os.path.join(out, "text.onnx"), word_emb, type_emb)
    image_onnx(os.path.join(out, "image.onnx"), rng, "conse")
    with open(os.path.join(out, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(wordlevel_tokenizer(vocab), f, indent=1)
    with open(os.path.join(out, "classes.txt"), "w", encoding="utf-8") as f:
        f.writelines(c + "\n" for c in CLASSES)
    # concept i = embedding of "[CLS] name [SEP]", computed like text.onnx does
    conc = []
    for c in CLASSES:
        ids = [vocab["[CLS]"], vocab[c], vocab["[SEP]"]]
        e = (word_emb[ids] + type_emb[0]).astype(np.float32).mean(0)
        conc.append(e / max(np.linalg.norm(e), 1e-9))
    np.asarray(conc, "<f4").tofile(os.path.join(out, "concepts.f32"))
    m = base_manifest("conse")
    m.update({
        "text": {"onnx": "text.onnx", "tokenizer": "tokenizer.json", "max_tokens": MAX_TOKENS, "dim": DIM,
                 "inputs": {"input_ids": "input_ids", "attention_mask": "attention_mask",
                            "token_type_ids": "token_type_ids"},
                 "output": "embedding", "pad_id": 0},
        "image": {"onnx": "image.onnx", "input": "pixels", "size": SIZE, "mean": [0.5, 0.5, 0.5],
                  "std": [0.5, 0.5, 0.5], "features_output": "features", "features_dim": FEAT,
                  "probs_output": "probs"},
        "bridge": {"kind": "conse", "concepts": "concepts.f32", "labels": "classes.txt", "top_k": 3},
    })
    return m, ["text.onnx", "image.onnx", "tokenizer.json", "concepts.f32", "classes.txt"]


def make_clip(out, rng, bpe):
    ctx = 77
    if bpe:
        shutil.copyfile(bpe, os.path.join(out, "bpe_vocab.txt.gz"))
        with gzip.open(bpe, "rt", encoding="utf-8") as f:
            n_merges = len(f.read().split("\n")[1:49152 - 256 - 2 + 1])
    else:
        merges = tiny_bpe(CLASSES + WORDS)
        write_gz(os.path.join(out, "bpe_vocab.txt.gz"),
                 "#version: 0.2 (vidseek tiny test vocabulary)\n" + "".join(f"{a} {b}\n" for a, b in merges))
        n_merges = len(merges)
    vocab_size = 512 + n_merges + 2
    sot, eot = vocab_size - 2, vocab_size - 1
    word_emb = rng.normal(0, 1, (vocab_size, DIM)).astype(np.float32)
    text_onnx_clip(os.path.join(out, "text.onnx"), word_emb, ctx)
    image_onnx(os.path.join(out, "image.onnx"), rng, "clip")
    m = base_manifest("clip")
    m.update({
        "text": {"onnx": "text.onnx", "tokenizer_kind": "clip_bpe", "bpe_vocab": "bpe_vocab.txt.gz",
                 "context_length": ctx, "vocab_size": vocab_size, "sot_id": sot, "eot_id": eot,
                 "lowercase": True, "dim": DIM, "inputs": {"input_ids": "input_ids"},
                 "output": "embedding", "pad_id": 0},
        "image": {"onnx": "image.onnx", "input": "pixels", "size": SIZE, "mean": CLIP_MEAN, "std": CLIP_STD,
                  "embedding_output": "embedding", "dim": DIM},
        "bridge": {"kind": "shared_space"},
    })
    m["calibration"]["text_visual"] = {"a": 100.0, "b": -25.0}
    return m, ["text.onnx", "image.onnx", "bpe_vocab.txt.gz"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", required=True)
    ap.add_argument("--kind", choices=["conse", "clip"], default="conse")
    ap.add_argument("--bpe", help="clip only: a real bpe_simple_vocab_16e6.txt.gz to use instead of the tiny one")
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    rng = np.random.default_rng(SEED)
    m, files = make_conse(a.out, rng) if a.kind == "conse" else make_clip(a.out, rng, a.bpe)
    m["files"] = {f: sha(os.path.join(a.out, f)) for f in files}
    order = ["name", "version", "description", "licence", "languages", "text", "image", "bridge",
             "calibration", "files"]
    m = {k: m[k] for k in order}
    with open(os.path.join(a.out, "manifest.json"), "w", encoding="utf-8") as f:
        json.dump(m, f, indent=1)
        f.write("\n")
    print(f"fixture pack ({a.kind}) written to {a.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
