#!/usr/bin/env bash
# The ranker's exact scan and HNSW search at 10k, 100k and 1M synthetic
# segments against an exact numpy (BLAS) scan of the same matrix, in the
# same run; restart from a snapshot against a full replay; memory.
# Usage: bench/ranker/run.sh [--sizes 10000,100000,1000000] [--rounds 3]
# Result: bench/results/ranker.json and bench/results/ranker.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
cargo build --quiet --release -p vidseek-ranker --example rank_bench
exec .vidseek/python/bin/python bench/ranker/compare.py target/release/examples/rank_bench "$@"
