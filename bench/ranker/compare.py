"""The ranker's index against an exact numpy (BLAS) scan of the same matrix,
timed in the same run.

For each size, `rank_bench` builds a shard index of synthetic clustered unit
vectors (decoding and applying log entries as a ranker does, then building
the HNSW graphs) and dumps the matrix and queries; then, alternating, the
ranker's exact scan, numpy's `matrix @ query` + `argpartition`, and the
ranker's approximate search answer the same queries. Recall@10 is the share
of numpy's exact top-10 that the approximate search returns. At the end the
index is written to a snapshot, dropped, loaded back and given a tail of
log entries: the restart from a snapshot, against the full replay (decode,
apply, graph build) measured while building.

Writes bench/results/ranker.json and bench/results/ranker.md.
Each side runs `--rounds` times, alternating, and the best round of each
(lowest median) is compared: the machines these run on are shared and noisy.

Usage: compare.py BENCH_BINARY [--sizes 10000,100000,1000000] [--rounds 3]
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
QUERIES = {10_000: 500, 100_000: 200, 1_000_000: 100}
DIM = 384  # the default model pack's dimension (all-MiniLM-L6-v2)
K = 10
# Issue 9's targets.
TARGET_SPEEDUP_1M = 10.0
TARGET_RECALL = 0.95
TARGET_MEMORY_RATIO = 1.3
TARGET_RESTART_S = 10.0


def percentiles(latencies_ms):
    ordered = np.sort(np.asarray(latencies_ms))
    pick = lambda p: float(ordered[int(round(p / 100 * (len(ordered) - 1)))])
    return {"p50": pick(50), "p95": pick(95), "p99": pick(99), "mean": float(ordered.mean())}


def load(directory, rows, queries):
    matrix = np.fromfile(directory / "matrix.f32", dtype="<f4").reshape(rows, DIM)
    query_rows = np.fromfile(directory / "queries.f32", dtype="<f4").reshape(queries, DIM)
    return matrix, query_rows


def numpy_scan(matrix, query_rows):
    def top(q):
        scores = matrix @ q
        best = np.argpartition(-scores, K)[:K]
        return best[np.argsort(-scores[best])]
    for q in query_rows[:3]:
        top(q)
    latencies, tops = [], []
    started = time.perf_counter()
    for q in query_rows:
        t = time.perf_counter()
        best = top(q)
        latencies.append((time.perf_counter() - t) * 1e3)
        tops.append(best.tolist())
    total = time.perf_counter() - started
    return {"latency_ms": percentiles(latencies), "queries_per_second": len(query_rows) / total}, tops


class Bench:
    """One rank_bench process: it builds the index once, then answers commands."""

    def __init__(self, binary, rows, queries, dump):
        self.process = subprocess.Popen(
            [binary, "--rows", str(rows), "--queries", str(queries), "--dim", str(DIM),
             "--k", str(K), "--dump", str(dump)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.build = self.read()

    def read(self):
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"rank_bench exited with {self.process.wait()}")
        return json.loads(line)

    def ask(self, command):
        self.process.stdin.write(command + "\n")
        self.process.stdin.flush()
        return self.read()

    def close(self):
        self.process.stdin.close()
        self.process.wait()


def best_round(rounds):
    """The least disturbed round: the one with the lowest median latency."""
    best = min(rounds, key=lambda r: r["latency_ms"]["p50"])
    return dict(best, round_p50s_ms=[r["latency_ms"]["p50"] for r in rounds])


def overlap(tops, reference):
    return float(np.mean([len(set(a) & set(b)) / K for a, b in zip(tops, reference)]))


def measure(binary, rows, rounds):
    queries = QUERIES.get(rows, 100)
    directory = Path(tempfile.mkdtemp(prefix="rank_bench_"))
    try:
        started = time.perf_counter()
        bench = Bench(binary, rows, queries, directory)
        print(f"{rows:>9} rows: built in {time.perf_counter() - started:.0f} s "
              f"(graphs {bench.build['graph_build_s']:.0f} s)", file=sys.stderr)
        matrix, query_rows = load(directory, rows, queries)
        (directory / "matrix.f32").unlink()
        exact_rounds, numpy_rounds, ann_rounds = [], [], []
        # Rounds alternate, so a burst of load from other processes hits
        # every side alike; each side's best round is compared.
        for _ in range(rounds):
            exact_rounds.append(bench.ask("exact"))
            result, numpy_tops = numpy_scan(matrix, query_rows)
            numpy_rounds.append(result)
            ann_rounds.append(bench.ask("ann"))
        del matrix
        restart = bench.ask(f"snapshot {directory / 'snapshot'}")
        bench.close()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    exact_tops = exact_rounds[-1].pop("tops")
    ann_tops = ann_rounds[-1].pop("tops")
    for r in exact_rounds + ann_rounds:
        r.pop("tops", None)
    exact, numpy, ann = best_round(exact_rounds), best_round(numpy_rounds), best_round(ann_rounds)
    speedup = lambda side: {p: numpy["latency_ms"][p] / side["latency_ms"][p] for p in ("p50", "p95", "p99")}
    build = bench.build
    entry = {
        "rows": rows,
        "queries": queries,
        "build": build,
        "exact": exact,
        "ann": ann,
        "numpy": numpy,
        "exact_top10_agreement_with_numpy": overlap(exact_tops, numpy_tops),
        "ann_recall_at_10": overlap(ann_tops, numpy_tops),
        "exact_speedup_vs_numpy": speedup(exact),
        "ann_speedup_vs_numpy": speedup(ann),
        "restart": dict(restart,
                        full_replay_serving_exact_s=build["replay_decode_apply_s"],
                        full_replay_with_graphs_s=build["replay_decode_apply_s"] + build["graph_build_s"]),
    }
    print(f"{rows:>9} rows: exact p50 {exact['latency_ms']['p50']:.2f} ms, "
          f"ann p50 {ann['latency_ms']['p50']:.3f} ms, numpy p50 {numpy['latency_ms']['p50']:.2f} ms, "
          f"ann {entry['ann_speedup_vs_numpy']['p50']:.1f}x numpy, recall@10 {entry['ann_recall_at_10']:.3f}, "
          f"memory {build['memory']['index_over_raw']:.3f}x raw, "
          f"snapshot load {restart['load_s']:.1f} s", file=sys.stderr)
    return entry


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    results = [measure(args.binary, rows, args.rounds) for rows in sizes]
    report = {
        "bench": "ranker",
        "what": "top-10 text ranking of synthetic clustered unit vectors: the vidseek ranker's exact scan "
                "and approximate (HNSW) search against numpy (BLAS) in the same run; restart from a snapshot "
                "against a full replay; memory against the raw vector bytes",
        "dim": DIM,
        "k": K,
        "rounds": args.rounds,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "numpy": np.__version__},
        "targets": {"ann_speedup_vs_numpy_at_1m": TARGET_SPEEDUP_1M, "recall_at_10": TARGET_RECALL,
                    "memory_over_raw": TARGET_MEMORY_RATIO, "restart_from_snapshot_s_at_1m": TARGET_RESTART_S},
        "results": results,
    }
    out_dir = ROOT / "bench" / "results"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "ranker.json").write_text(json.dumps(report, indent=2) + "\n")
    (out_dir / "ranker.md").write_text(summary(report))
    print(f"wrote {out_dir / 'ranker.json'} and ranker.md", file=sys.stderr)


def verdict(ok, missed):
    return "met" if ok else f"missed: {missed}"


def summary(report):
    lines = [
        "# Ranker: exact scan and HNSW against numpy",
        "",
        f"Top-{report['k']} over synthetic clustered unit vectors of dimension {report['dim']}, "
        f"{report['machine']['cpus']} CPUs, numpy {report['machine']['numpy']}. "
        "Latency is per query, one query at a time; speed-up is numpy's latency over the ranker's; "
        "recall@10 is the share of numpy's exact top-10 the approximate search returns. "
        f"Best of {report['rounds']} alternating rounds per side.",
        "",
        "| rows | exact p50 / p99 ms | HNSW p50 / p99 ms | numpy p50 / p99 ms | exact vs numpy | HNSW vs numpy "
        "| HNSW recall@10 | exact agreement | memory / raw (bytes per segment) | peak RSS | graph build s |",
        "|---:|---|---|---|---:|---:|---:|---:|---|---:|---:|",
    ]
    for r in report["results"]:
        el, al, nl = r["exact"]["latency_ms"], r["ann"]["latency_ms"], r["numpy"]["latency_ms"]
        mem = r["build"]["memory"]
        lines.append(
            f"| {r['rows']:,} | {el['p50']:.2f} / {el['p99']:.2f} | {al['p50']:.3f} / {al['p99']:.3f} "
            f"| {nl['p50']:.2f} / {nl['p99']:.2f} | {r['exact_speedup_vs_numpy']['p50']:.2f}× "
            f"| {r['ann_speedup_vs_numpy']['p50']:.1f}× | {r['ann_recall_at_10']:.3f} "
            f"| {r['exact_top10_agreement_with_numpy']:.3f} "
            f"| {mem['index_over_raw']:.3f}× ({mem['index_bytes_per_segment']:.0f} B) "
            f"| {mem['peak_rss_bytes'] / 2**20:.0f} MiB ({mem['peak_rss_bytes'] / mem['raw_vector_bytes']:.2f}× raw) "
            f"| {r['build']['graph_build_s']:.1f} |"
        )
    lines += [
        "",
        "Restart (in process; a real restart adds the NATS connection and, for a full replay, "
        "the transfer of every log entry):",
        "",
        "| rows | snapshot bytes | write s | load s | + 10-entry tail s | serving from snapshot s "
        "| full replay: decode + apply s (serving, exact scans) | + graph build s (HNSW speed) | same answers |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in report["results"]:
        s = r["restart"]
        lines.append(
            f"| {r['rows']:,} | {s['snapshot_bytes'] / 2**20:.0f} MiB | {s['write_s']:.1f} | {s['load_s']:.2f} "
            f"| {s['tail_apply_s']:.3f} | {s['serving_after_s']:.2f} | {s['full_replay_serving_exact_s']:.1f} "
            f"| {s['full_replay_with_graphs_s']:.1f} | {s['same_answers_after_load']} |"
        )
    lines.append("")
    largest = max(report["results"], key=lambda r: r["rows"])
    n = f"{largest['rows']:,} rows"
    speedup, recall = largest["ann_speedup_vs_numpy"]["p50"], largest["ann_recall_at_10"]
    lines.append(f"**Ranking at {n}, target ≥ {TARGET_SPEEDUP_1M:.0f}× numpy: {speedup:.1f}× "
                 f"({verdict(speedup >= TARGET_SPEEDUP_1M, f'{TARGET_SPEEDUP_1M / speedup:.1f}× short')}).**")
    lines.append(f"**Recall@10 at {n}, target ≥ {TARGET_RECALL}: {recall:.3f} "
                 f"({verdict(recall >= TARGET_RECALL, f'{TARGET_RECALL - recall:.3f} short')}).**")
    serving = largest["restart"]["serving_after_s"]
    lines.append(f"**Serving from a snapshot at {n}, target ≤ {TARGET_RESTART_S:.0f} s: {serving:.1f} s "
                 f"({verdict(serving <= TARGET_RESTART_S, f'{serving - TARGET_RESTART_S:.1f} s over')}).**")
    worst = max(r["build"]["memory"]["index_over_raw"] for r in report["results"])
    lines.append(f"**Memory, target ≤ {TARGET_MEMORY_RATIO}× the raw vector bytes: worst {worst:.3f}× "
                 f"({verdict(worst <= TARGET_MEMORY_RATIO, f'{worst / TARGET_MEMORY_RATIO:.2f}× over')}).** "
                 "Counted from the index's own capacities (matrix, segment table, strings, per-video maps, "
                 "HNSW graphs with their int8 vectors); see bench/ranker/README.md for why.")
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
