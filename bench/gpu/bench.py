"""CPU against CUDA: the pack's text and image towers, one batch, each
provider timed for the same number of seconds after a warm-up. The CUDA
session is created with only CUDAExecutionProvider requested and its
providers are checked, so a silent CPU fallback is reported as such."""
import argparse
import json
import os
import time

import numpy as np
import onnxruntime as ort
from tokenizers import Tokenizer

TEXTS = [
    "a black bicycle leaning against a wall",
    "a cat sleeping on a sofa",
    "a rocket launching at night",
    "people dancing on the beach at sunset",
]


def text_inputs(pack, manifest, batch):
    spec = manifest["text"]
    tokenizer = Tokenizer.from_file(os.path.join(pack, spec["tokenizer"]))
    tokenizer.enable_truncation(spec.get("max_tokens", 128))
    tokenizer.enable_padding(pad_id=spec.get("pad_id", 0))
    encodings = tokenizer.encode_batch([TEXTS[i % len(TEXTS)] for i in range(batch)])
    ids = np.array([e.ids for e in encodings], dtype=np.int64)
    mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
    names = spec["inputs"]
    feeds = {names["input_ids"]: ids, names["attention_mask"]: mask}
    if names.get("token_type_ids"):
        feeds[names["token_type_ids"]] = np.zeros_like(ids)
    return os.path.join(pack, spec["onnx"]), feeds


def image_inputs(pack, manifest, batch):
    spec = manifest["image"]
    size = spec["size"]
    pixels = np.random.default_rng(0).standard_normal((batch, 3, size, size)).astype(np.float32)
    return os.path.join(pack, spec["onnx"]), {spec["input"]: pixels}


def session(model, provider, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    return ort.InferenceSession(model, options, providers=[provider])


def rate(sess, feeds, batch, seconds):
    for _ in range(3):
        sess.run(None, feeds)
    runs, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        sess.run(None, feeds)
        runs += 1
    elapsed = time.perf_counter() - start
    return {"items_per_s": runs * batch / elapsed, "ms_per_batch": 1000 * elapsed / runs, "runs": runs}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--pack", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    with open(os.path.join(args.pack, "manifest.json")) as f:
        manifest = json.load(f)
    available = ort.get_available_providers()
    result = {
        "onnxruntime": ort.__version__,
        "available_providers": available,
        "pack": manifest["name"],
        "batch": args.batch,
        "cpu_threads": args.threads,
        "seconds_per_measure": args.seconds,
        "towers": {},
    }
    for tower, make in (("text", text_inputs), ("image", image_inputs)):
        model, feeds = make(args.pack, manifest, args.batch)
        row = {"cpu": rate(session(model, "CPUExecutionProvider", args.threads), feeds, args.batch, args.seconds)}
        if "CUDAExecutionProvider" in available:
            try:
                cuda = session(model, "CUDAExecutionProvider", args.threads)
                used = cuda.get_providers()
                if "CUDAExecutionProvider" not in used:
                    row["cuda"] = {"error": f"session fell back to {used}"}
                else:
                    row["cuda"] = rate(cuda, feeds, args.batch, args.seconds)
                    row["cuda_over_cpu"] = row["cuda"]["items_per_s"] / row["cpu"]["items_per_s"]
            except Exception as err:  # a missing CUDA library surfaces here
                row["cuda"] = {"error": str(err)}
        else:
            row["cuda"] = {"error": "CUDAExecutionProvider not available in this onnxruntime"}
        result["towers"][tower] = row
        print(tower, json.dumps(row))
    with open(args.out, "w") as f:
        json.dump(result, f, indent=2)
    print("wrote", args.out)


if __name__ == "__main__":
    main()
