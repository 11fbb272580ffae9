"""Encoder throughput: vidseek's encoder (Rust, ONNX Runtime through `ort`)
against Python onnxruntime on the same model files, text and image, batch 1
and 32, one intra-op thread each, alternated in one run; then 1 against 2
single-thread encoder processes, each pinned to its own core.

Usage: bench.py RUST_EXAMPLE [--seconds S] [--out-dir DIR]
Writes DIR/encoder.json and DIR/encoder.md."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(__file__))
from onnx_py import ImageTower, TextTower  # noqa: E402

WORDS = "a person riding bicycle down the street at night with red lights".split()


def texts(batch, round_):
    """The same query-like texts as encode_bench.rs, so batches pad alike."""
    out = []
    for i in range(batch):
        n = 3 + (i + round_) % 9
        words = [WORDS[(i % 5 + j) % len(WORDS)] for j in range(n)]
        out.append(" ".join(words))
    return out


def python_rate(tower, kind, batch, seconds, jpeg):
    def call(r):
        tower.encode(texts(batch, r) if kind == "text" else [jpeg] * batch)

    for r in range(2):
        call(r)
    calls, started = 0, time.perf_counter()
    while time.perf_counter() - started < seconds:
        call(calls)
        calls += 1
    elapsed = time.perf_counter() - started
    return calls * batch / elapsed


def rust_command(example, args, kind, batch, threads, seconds, jpeg):
    return [example, "--pack", args.pack, "--ort", args.ort, "--kind", kind,
            "--batch", str(batch), "--threads", str(threads),
            "--seconds", str(seconds), "--image", jpeg]


def rust_rate(example, args, kind, batch, seconds, jpeg):
    out = subprocess.run(rust_command(example, args, kind, batch, 1, seconds, jpeg),
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])["items_per_s"]


def pinned(example, args, core, seconds, jpeg, kind, batch):
    command = rust_command(example, args, kind, batch, 1, seconds, jpeg)
    if shutil.which("taskset"):
        command = ["taskset", "-c", str(core)] + command
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


def scaling(example, args, seconds, jpeg, kind, batch):
    """Items/s of one pinned single-thread process, then of two at once."""
    one = pinned(example, args, 0, seconds, jpeg, kind, batch)
    single = json.loads(one.communicate()[0].strip().splitlines()[-1])["items_per_s"]
    pair = [pinned(example, args, core, seconds, jpeg, kind, batch) for core in (0, 1)]
    rates = [json.loads(p.communicate()[0].strip().splitlines()[-1])["items_per_s"] for p in pair]
    return single, rates


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("example")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--out-dir", default="bench/results")
    parser.add_argument("--pack", default=os.environ.get("VIDSEEK_MODEL_PACK", ".vidseek/models/default"))
    parser.add_argument("--ort", default=os.environ.get("ORT_DYLIB_PATH"))
    parser.add_argument("--video", default=".vidseek/samples/bikes.mp4")
    args = parser.parse_args()

    work = tempfile.mkdtemp(prefix="vidseek-encoder-bench-")
    jpeg_path = os.path.join(work, "frame.jpg")
    # An ingest-sized frame (short side 256) of the sample video.
    subprocess.run(["ffmpeg", "-v", "error", "-ss", "2", "-i", args.video, "-frames:v", "1",
                    "-vf", "scale=-2:256", "-y", jpeg_path], check=True)
    jpeg = open(jpeg_path, "rb").read()
    towers = {"text": TextTower(args.pack, threads=1), "image": ImageTower(args.pack, threads=1)}

    rows = []
    for kind in ("text", "image"):
        for batch in (1, 32):
            # Alternate which side goes first, best of two rounds each.
            rust, py = [], []
            for round_ in range(2):
                sides = [("rust", None), ("py", None)]
                if round_ % 2:
                    sides.reverse()
                for side, _ in sides:
                    if side == "rust":
                        rust.append(rust_rate(args.example, args, kind, batch, args.seconds, jpeg_path))
                    else:
                        py.append(python_rate(towers[kind], kind, batch, args.seconds, jpeg))
            row = {"kind": kind, "batch": batch, "threads": 1,
                   "vidseek_items_per_s": max(rust), "python_items_per_s": max(py),
                   "ratio": max(rust) / max(py)}
            print(json.dumps(row), flush=True)
            rows.append(row)

    scale = []
    for kind, batch in (("text", 1), ("image", 8)):
        single, pair = scaling(args.example, args, args.seconds, jpeg_path, kind, batch)
        entry = {"kind": kind, "batch": batch, "one_process_items_per_s": single,
                 "two_processes_items_per_s": pair, "speed_up": sum(pair) / single,
                 "target_speed_up": 1.6}
        print(json.dumps(entry), flush=True)
        scale.append(entry)

    shutil.rmtree(work, ignore_errors=True)
    result = {"cores": os.cpu_count(), "seconds_per_measure": args.seconds,
              "throughput": rows, "scaling": scale}
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "encoder.json"), "w") as f:
        json.dump(result, f, indent=1)
    lines = ["# Encoder bench", "",
             f"{os.cpu_count()} cores; one intra-op thread per session; best of 2 alternated rounds of {args.seconds:g} s.", "",
             "| tower | batch | vidseek items/s | Python onnxruntime items/s | ratio |", "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['kind']} | {r['batch']} | {r['vidseek_items_per_s']:.1f} | "
                     f"{r['python_items_per_s']:.1f} | {r['ratio']:.2f}x |")
    lines += ["", "| 1 vs 2 single-thread encoder processes (pinned) | one | two (sum) | speed-up (target 1.6x) |",
              "|---|---|---|---|"]
    for s in scale:
        lines.append(f"| {s['kind']} batch {s['batch']} | {s['one_process_items_per_s']:.1f} | "
                     f"{sum(s['two_processes_items_per_s']):.1f} | {s['speed_up']:.2f}x |")
    with open(os.path.join(args.out_dir, "encoder.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
