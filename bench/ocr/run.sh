#!/usr/bin/env bash
# Burned-in caption OCR on real footage: character error rate, cue timing,
# Chinese phrase-query R@1 through `vidseek up`, and OCR cost. A few minutes
# on 2 cores. Needs `deploy/setup.sh --for test` (tesseract, CJK fonts).
# Usage: bench/ocr/run.sh [--threads N]
# Result: bench/results/ocr.json and ocr.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/stack_env.sh
. bench/stack_env.sh
cargo build --quiet --release -p vidseek-media --example ocr_bench
exec "$py" bench/ocr/ocr.py "$bin" target/release/examples/ocr_bench --data "$data" "$@"
