#!/usr/bin/env bash
# Encoder throughput against Python onnxruntime on the same model files, and
# 1 vs 2 single-thread encoder processes. About 2 minutes.
# Usage: bench/encoder/run.sh [--seconds S]
# Result: bench/results/encoder.json and bench/results/encoder.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/stack_env.sh
. bench/stack_env.sh
cargo build --quiet --release -p vidseek-encoder --example encode_bench
exec "$py" bench/encoder/bench.py target/release/examples/encode_bench "$@"
