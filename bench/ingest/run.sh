#!/usr/bin/env bash
# Media-side ingest throughput (probe + shots + frames + thumbnails) against a
# plain `ffmpeg -i FILE -f null -` decode of the same file, timed in one run.
# Usage: bench/ingest/run.sh [FILE] [--repeat N] [--out PATH]
# Default FILE: .vidseek/samples/bikes.mp4. Result: bench/results/ingest.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
# The dev profile already optimises dependencies and the work is in ffmpeg;
# pass CARGO_PROFILE=release for a release build.
exec cargo run --quiet --profile "${CARGO_PROFILE:-dev}" -p vidseek-media --example ingest_bench -- "$@"
