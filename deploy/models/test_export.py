#!/usr/bin/env python3
"""Rust-vs-torch parity of packs made by export_clip.py (run by test_export.sh).

For each architecture, with random weights from a fixed seed:
  1. export_clip.export() writes the pack (and checks ONNX Runtime vs torch);
  2. `vidseek models import` installs it in a scratch data directory;
  3. `vidseek models embed --json` embeds the texts and images below with the
     Rust encoder (Rust tokenizer, Rust image decoding and preprocessing,
     ONNX Runtime through the ort crate);
  4. the torch model embeds the same inputs: texts through the library's own
     tokenizer, images as the same pixels.
For every input:
  cosine   cosine(Rust vector, torch vector), must be >= 0.999;
  err/gap  |Rust - torch| over the distance from torch's vector to the
           nearest torch vector of ANOTHER input of the same kind, must be
           <= 0.05. Random weights map many inputs close to one direction
           (MobileCLIP's images: cosines > 0.9999 between different images),
           where a cosine alone would also pass for the wrong input; this
           says Rust's vector is far nearer to the right input than any other
           input is.

Image rows:
  pixels   SxS PNGs: nothing is resized, both sides see identical pixels;
  resized  larger, non-square PNG/JPEG: Rust decodes, resizes the shorter
           side (triangle filter) and crops the centre; torch gets the same
           steps done with PIL (bilinear, which is a triangle filter too);
  library  the same files through the library's own transform (open_clip:
           bicubic resize + centre crop; cn_clip: bicubic squash to SxS):
           how much vidseek's preprocessing differs from the reference one.
           Reported, not checked.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import export_clip  # noqa: E402

THRESHOLD = 0.999
MAX_ERROR_TO_GAP = 0.05
SEED = 7

ARCHITECTURES = {
    # label: (family, model)
    "ViT-B-32": ("open_clip", "ViT-B-32"),
    "MobileCLIP-S2": ("open_clip", "MobileCLIP-S2"),
    "cn_clip-ViT-B-16": ("cn_clip", "ViT-B-16"),
}

CLIP_TEXTS = [
    "a photo of a cat",
    "A black bicycle leaning against a wall.",
    "  Hello,   WORLD!!  It's the dog's toy; they'll've gone... ",
    "café crème brûlée &amp; a naïve coöperation",
    "一只猫在沙发上睡觉",
    "🚀 rocket launch at night 🌙",
    " ".join(f"word{i}" for i in range(100)),  # longer than 77 tokens
    "",
]
CN_TEXTS = [
    "一只猫在沙发上睡觉",
    "一个人在海边跳舞",
    "一杯咖啡",
    "繁體中文：一隻貓在窗邊",
    "一只 tabby 猫 in the garden",
    "A photo of a DOG, running on the Beach!",
    "café crème brûlée",
    "🚀火箭发射",
    "长" * 80,  # longer than 52 tokens
    "",
]


def make_images(directory, size):
    """Synthetic test images (no photo set is needed); returns [(group, path)]."""
    shutil.rmtree(directory, ignore_errors=True)
    os.makedirs(directory)
    rng = np.random.default_rng(SEED)
    out = []

    def save(group, name, image, **kw):
        path = os.path.join(directory, name)
        image.save(path, **kw)
        out.append((group, path))

    def shapes(w, h):
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([x / w * 255, y / h * 255, (x + y) / (w + h) * 255], -1).astype(np.uint8)
        image = Image.fromarray(base)
        d = ImageDraw.Draw(image)
        d.ellipse([w * 0.2, h * 0.2, w * 0.55, h * 0.7], fill=(220, 40, 40))
        d.rectangle([w * 0.6, h * 0.1, w * 0.9, h * 0.5], fill=(30, 30, 200))
        d.line([0, h - 1, w - 1, 0], fill=(255, 255, 255), width=max(2, w // 60))
        return image

    def blobs(w, h):  # low-frequency colour field, like out-of-focus scenery
        small = Image.fromarray(rng.integers(0, 256, (4, 4, 3), dtype=np.uint8))
        return small.resize((w, h), Image.BICUBIC).filter(ImageFilter.GaussianBlur(radius=2))

    save("pixels", "noise.png", Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)))
    save("pixels", "shapes.png", shapes(size, size))
    cells = (np.indices((size, size)).sum(0) // max(1, size // 8)) % 2
    save("pixels", "checker.png", Image.fromarray((cells * 255).astype(np.uint8)).convert("RGB"))
    save("pixels", "blobs.png", blobs(size, size))
    save("resized", "shapes-640x360.png", shapes(640, 360))
    save("resized", "blobs-300x500.jpg", blobs(300, 500), quality=92)
    return out


def vidseek_pixels(path, size, mean, std):
    """vidseek's preprocessing (workers/encoder/src/image.rs) done with PIL."""
    image = Image.open(path).convert("RGB")
    w, h = image.size
    scale = size / max(1, min(w, h))
    rw, rh = max(round(w * scale), size), max(round(h * scale), size)
    if (rw, rh) != (w, h):
        image = image.resize((rw, rh), Image.BILINEAR)
    x0, y0 = (rw - size) // 2, (rh - size) // 2
    a = np.asarray(image.crop((x0, y0, x0 + size, y0 + size)), dtype=np.float32) / 255.0
    a = (a - np.array(mean, np.float32)) / np.array(std, np.float32)
    return a.transpose(2, 0, 1)


def run(cmd, **kw):
    result = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if result.returncode != 0:
        sys.exit(f"failed ({result.returncode}): {' '.join(cmd)}\n{result.stdout}\n{result.stderr}")
    return result.stdout


def normalise(v):
    v = np.asarray(v, dtype=np.float64)
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def check(label, family, model_name, args, work):
    import torch

    started = time.time()
    name = "test-" + label.lower()
    out = os.path.join(work, "export", name)
    shutil.rmtree(out, ignore_errors=True)
    print(f"==> {label}: export ({family} {model_name}, random weights, seed {SEED})", flush=True)
    export_args = export_clip.parse_args([
        "--family", family, "--model", model_name, "--pretrained", "none", "--seed", str(SEED),
        "--name", name, "--out", out, "--licence", "test pack, random weights"])
    loaded = export_clip.export(export_args)
    exported = time.time()

    data = os.path.join(work, "data")
    vidseek = [args.vidseek, "--data-dir", data, "models"]
    print(run(vidseek + ["import", out, "--force"]).strip(), flush=True)

    texts = CN_TEXTS if family == "cn_clip" else CLIP_TEXTS
    images = make_images(os.path.join(work, "images", str(loaded.size)), loaded.size)
    cmd = vidseek + ["embed", "--pack", name, "--json", "--ort-library", args.ort_library]
    for t in texts:
        cmd += ["--text", t]
    for _, path in images:
        cmd += ["--image", path]
    rust = json.loads(run(cmd))
    embedded = time.time()
    if [t["text"] for t in rust["texts"]] != texts or len(rust["images"]) != len(images):
        sys.exit(f"vidseek models embed answered for other inputs: {rust['texts']}")

    model = loaded.model
    with torch.no_grad():
        want_t = normalise(model.encode_text(loaded.tokenize(texts)).numpy())
        pixels = np.stack([vidseek_pixels(p, loaded.size, loaded.mean, loaded.std) for _, p in images])
        want_i = normalise(model.encode_image(torch.from_numpy(pixels)).numpy())
        library = torch.stack([loaded.preprocess(Image.open(p)) for _, p in images])
        want_lib = normalise(model.encode_image(library).numpy())
    got_t = normalise([t["vector"] for t in rust["texts"]])
    got_i = normalise([i["text_space"] for i in rust["images"]])
    got_ii = normalise([i["image_space"] for i in rust["images"]])

    def compare(got, want, i):
        """cosine(rust, torch) for input i, and the distance from Rust's vector
        to torch's over the distance from torch's to the nearest OTHER input's."""
        gaps = np.linalg.norm(want - want[i], axis=1)
        gaps[i] = np.inf
        return float(got[i] @ want[i]), float(np.linalg.norm(got[i] - want[i]) / gaps.min())

    rows = []
    for i, text in enumerate(texts):
        rows.append((label, "text", text, *compare(got_t, want_t, i), True))
    for i, (group, path) in enumerate(images):
        (cos, ratio), (cos2, ratio2) = compare(got_i, want_i, i), compare(got_ii, want_i, i)
        rows.append((label, f"image {group}", os.path.basename(path), min(cos, cos2), max(ratio, ratio2), True))
    for i, (group, path) in enumerate(images):
        if group == "resized":
            rows.append((label, "image library", os.path.basename(path), *compare(got_i, want_lib, i), False))
    timing = {"export_s": round(exported - started, 1), "import_embed_s": round(embedded - exported, 1),
              "torch_s": round(time.time() - embedded, 1)}
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
        shutil.rmtree(os.path.join(data, "models", name), ignore_errors=True)
    return rows, timing


def shown(text, width):
    text = repr(text)
    return text if len(text) <= width else text[: width - 4] + "…" + text[-3:]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--vidseek", required=True, help="the vidseek binary")
    ap.add_argument("--ort-library", required=True, help="libonnxruntime.so for the Rust encoder")
    ap.add_argument("--work", required=True, help="scratch directory (exports, scratch data dir)")
    ap.add_argument("--only", action="append", choices=list(ARCHITECTURES), help="run only these")
    ap.add_argument("--keep", action="store_true", help="keep the exported and imported packs")
    args = ap.parse_args()
    os.makedirs(args.work, exist_ok=True)

    rows, timings = [], {}
    for label in args.only or list(ARCHITECTURES):
        family, model_name = ARCHITECTURES[label]
        r, timings[label] = check(label, family, model_name, args, args.work)
        rows += r

    print(f"\n{'architecture':<17} {'input':<16} {'':<40} {'cosine':>9} {'err/gap':>8}")
    failed = 0
    for label, kind, item, cos, ratio, gated in rows:
        bad = cos < THRESHOLD or ratio > MAX_ERROR_TO_GAP
        verdict = ("FAIL" if bad else "ok") if gated else "info"
        failed += gated and bad
        print(f"{label:<17} {kind:<16} {shown(item, 40):<40} {cos:>9.6f} {ratio:>8.5f}  {verdict}")
    print()
    for label in timings:
        mine = [r for r in rows if r[0] == label and r[5]]
        print(f"{label}: {len(mine)} inputs, lowest cosine {min(r[3] for r in mine):.6f}, "
              f"highest err/gap {max(r[4] for r in mine):.5f}; {timings[label]}")
    with open(os.path.join(args.work, "results.json"), "w", encoding="utf-8") as f:
        json.dump({"rows": rows, "timings": timings, "threshold": THRESHOLD, "max_error_to_gap": MAX_ERROR_TO_GAP}, f, ensure_ascii=False, indent=1)
    checked = sum(1 for r in rows if r[5])
    print(f"{checked - failed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
