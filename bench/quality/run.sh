#!/usr/bin/env bash
# Retrieval-quality benchmark (see bench/quality/README.md).
#
#   bench/quality/run.sh [quality.py options, e.g. --per-clip 16 --seed N]
#
# Run by `make bench` from the repository root with .vidseek/env loaded; runs
# on its own too (it loads the env file and builds the release binary when
# missing). Writes bench/results/quality.json.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
# shellcheck source=../stack_env.sh
. "$repo/bench/stack_env.sh"
for cmd in ffmpeg ffprobe dpkg-deb apt-get; do
  command -v "$cmd" >/dev/null || { echo "quality: $cmd not found" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vidseek-quality.XXXXXX")
cleanup() { [ -n "${KEEP_WORK:-}" ] && echo "work dir kept: $work" >&2 || rm -rf "$work"; }
trap cleanup EXIT
mkdir -p bench/results
VIDSEEK_BIN=$bin "$py" "$here/quality.py" --bin "$bin" --pack "$VIDSEEK_MODEL_PACK" \
  --cache "$data/cache/bench" --work "$work" --out bench/results/quality.json "$@"
