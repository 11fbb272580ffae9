#!/usr/bin/env bash
# Query latency end to end over HTTP and WebSocket at 10k and 100k synthetic
# segments, 1 and 2 shards, idle and under 32 clients, against the original
# design's Python backends at 10k. About 4 minutes on 2 cores.
# Usage: bench/latency/run.sh [--sizes 10000,100000] [--shards 1,2] [--seconds S]
# Result: bench/results/latency.json and bench/results/latency.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/stack_env.sh
. bench/stack_env.sh
cargo build --quiet --release -p vidseek-tests --example latency_bench
exec "$py" bench/latency/bench.py "$bin" target/release/examples/latency_bench --python "$py" "$@"
