#!/usr/bin/env bash
# Ingest throughput on a 720p clip: end to end through `vidseek up` (decode,
# cuts, frames, thumbnails, encoding, segment log) and the media side alone,
# beside a plain `ffmpeg -i FILE -f null -` decode timed in the same run.
# About 2 minutes on 2 cores.
# Usage: bench/ingest/run.sh [--clip FILE] [--repeat N]
# Default clip: .vidseek/samples/bigbuckbunny.mp4 looped to 30 s (made once
# in .vidseek/cache/bench/). Result: bench/results/ingest.json and ingest.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=bench/stack_env.sh
. bench/stack_env.sh
cargo build --quiet --release -p vidseek-media --example ingest_bench
exec "$py" bench/ingest/e2e.py "$bin" target/release/examples/ingest_bench --data "$data" "$@"
