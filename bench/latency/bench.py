"""Query latency end to end (HTTP and WebSocket, loopback) of `vidseek up`
at 10k and 100k synthetic segments, 1 and 2 shards, idle and under 32
concurrent clients; beside the original design's Python backends at 10k
segments, timed in the same run.

Usage: bench.py VIDSEEK_BIN CLIENT [--sizes 10000,100000] [--shards 1,2]
                [--seconds S] [--out-dir DIR]
Writes DIR/latency.json and DIR/latency.md."""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import stack  # noqa: E402  (bench/stack.py)
SEGMENTS_PER_VIDEO = 1000


def run_client(client, *args):
    out = subprocess.run([client, *map(str, args)], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{client} {' '.join(map(str, args))} failed:\n{out.stderr}")
    lines = out.stdout.strip().splitlines()
    return json.loads(lines[-1]) if lines else None


def seed_baseline(args, work, client):
    """The original backends at 10k segments: a handful of sequential queries."""
    vectors = os.path.join(work, "vectors.txt")
    py = args.python
    subprocess.run([py, os.path.join(HERE, "seed_backend.py"), "write", "--vectors", vectors,
                    "--count", "10000", "--dim", "384"], check=True)
    children = []

    def start(*role):
        child = subprocess.Popen([py, os.path.join(HERE, "seed_backend.py"), *role],
                                 stdout=subprocess.PIPE, text=True)
        children.append(child)
        return int(child.stdout.readline().split()[-1])

    try:
        model = start("model", "--pack", args.pack)
        search = start("search", "--vectors", vectors,
                       "--model-url", f"http://127.0.0.1:{model}/encode_text")
        base = f"http://127.0.0.1:{search}"
        run_client(client, "measure", "--url", base, "--mode", "seed", "--clients", 1,
                   "--requests", 1, "--seconds", 60)
        return run_client(client, "measure", "--url", base, "--mode", "seed", "--clients", 1,
                          "--requests", args.seed_requests, "--seconds", 60)
    finally:
        for child in children:
            child.kill()
            child.wait()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("client")
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--shards", default="1,2")
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--seed-requests", type=int, default=5)
    parser.add_argument("--out-dir", default="bench/results")
    parser.add_argument("--python", default=".vidseek/python/bin/python")
    parser.add_argument("--pack", default=os.environ.get("VIDSEEK_MODEL_PACK", ".vidseek/models/default"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    work = tempfile.mkdtemp(prefix="vidseek-latency-bench-")
    rows = []
    try:
        for shards in [int(s) for s in args.shards.split(",")]:
            child, http, nats, data = stack.start(args.binary, work, shards=shards, name=f"shards-{shards}")
            try:
                seeded = 0
                for size in sizes:
                    videos = (size - seeded) // SEGMENTS_PER_VIDEO
                    started = time.time()
                    run_client(args.client, "seed", "--nats", nats, "--data", data,
                               "--shards", shards,
                               "--videos", videos, "--segments", SEGMENTS_PER_VIDEO,
                               "--dim", 384, "--first", seeded // SEGMENTS_PER_VIDEO)
                    seeded = size
                    # A shard builds its graphs at a few thousand rows a second.
                    stack.wait_indexed(http, size, timeout=max(600, size // 700))
                    print(f"{shards} shard(s): {size} segments seeded and indexed in "
                          f"{time.time() - started:.1f} s", flush=True)
                    # Warm the encoder and the connection pools.
                    run_client(args.client, "measure", "--url", http, "--clients", 2,
                               "--requests", 10, "--seconds", 10)
                    modes = ["http", "ws"] + (["seed"] if size == sizes[0] else [])
                    for mode in modes:
                        for clients in (1, 32):
                            result = run_client(args.client, "measure", "--url", http,
                                                "--mode", mode, "--clients", clients,
                                                "--requests", 400 if clients == 1 else 100,
                                                "--seconds", args.seconds)
                            result.update(segments=size, shards=shards)
                            print(json.dumps(result), flush=True)
                            rows.append(result)
            finally:
                stack.stop(child)
        seed = seed_baseline(args, work, args.client)
        print(json.dumps({"seed_baseline": seed}), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    write_results(args, rows, seed)


def write_results(args, rows, seed):
    def find(mode, clients, size, shards):
        for r in rows:
            if (r["mode"], r["clients"], r["segments"], r["shards"]) == (mode, clients, size, shards):
                return r
        return None

    seed_p50 = seed["done_ms"]["p50"]
    ratios = []
    for r in rows:
        if r["segments"] == 10000 and r["clients"] == 1 and r["done_ms"]:
            ratios.append({"mode": r["mode"], "shards": r["shards"],
                           "seed_p50_over_vidseek_p50": seed_p50 / r["done_ms"]["p50"]})
    result = {"cores": os.cpu_count(), "seconds_per_cell": args.seconds, "runs": rows,
              "seed_baseline_10k": seed, "speed_up_vs_seed": ratios,
              "targets": {"p50_ms_at_100k": 15, "p99_ms_at_100k": 50, "speed_up_vs_seed_at_10k": 100}}
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "latency.json"), "w") as f:
        json.dump(result, f, indent=1)

    def ms(d, key):
        return f"{d[key]:.1f}" if d else "-"

    lines = ["# Query latency, end to end over loopback", "",
             f"{os.cpu_count()} cores, `vidseek up` release build, synthetic 384-d unit vectors, "
             f"text queries through the real default pack; {args.seconds} s per cell "
             "(1 client: up to 400 queries; 32 clients: up to 100 each).", "",
             "| segments | shards | route | clients | p50 ms | p95 ms | p99 ms | first partial p50 ms | queries/s | errors |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        route = {"http": "GET /api/v1/search", "ws": "WebSocket", "seed": "GET /text_query"}[r["mode"]]
        lines.append(f"| {r['segments']} | {r['shards']} | {route} | {r['clients']} | "
                     f"{ms(r['done_ms'], 'p50')} | {ms(r['done_ms'], 'p95')} | {ms(r['done_ms'], 'p99')} | "
                     f"{ms(r['first_partial_ms'], 'p50')} | {r['queries_per_s']:.1f} | {r['errors']} |")
    lines += ["", f"Seed baseline (Python backends, 10k segments, {seed['done_ms']['count']} sequential "
              f"queries): p50 {seed_p50:.0f} ms, p99 {seed['done_ms']['p99']:.0f} ms.", "",
              "| route at 10k, 1 client | shards | seed p50 / vidseek p50 (target 100x) |", "|---|---|---|"]
    for q in ratios:
        lines.append(f"| {q['mode']} | {q['shards']} | {q['seed_p50_over_vidseek_p50']:.0f}x |")
    with open(os.path.join(args.out_dir, "latency.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
