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
data=${VIDSEEK_DATA_DIR:-$repo/.vidseek}
if [ -z "${VIDSEEK_MODEL_PACK:-}" ] || [ -z "${ORT_DYLIB_PATH:-}" ]; then
  [ -f "$data/env" ] || { echo "quality: $data/env missing; run 'make setup' first" >&2; exit 1; }
  # shellcheck disable=SC1091
  . "$data/env"
fi
bin=${VIDSEEK_BIN:-$repo/target/release/vidseek}
if [ ! -x "$bin" ]; then
  export PATH="$PATH:$HOME/.cargo/bin"
  cargo build --release -p vidseek
fi
py=$data/python/bin/python
[ -x "$py" ] || { echo "quality: $py missing; run 'make setup' first" >&2; exit 1; }
for cmd in ffmpeg ffprobe dpkg-deb apt-get; do
  command -v "$cmd" >/dev/null || { echo "quality: $cmd not found" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/vidseek-quality.XXXXXX")
cleanup() { [ -n "${KEEP_WORK:-}" ] && echo "work dir kept: $work" >&2 || rm -rf "$work"; }
trap cleanup EXIT
mkdir -p bench/results
VIDSEEK_BIN=$bin "$py" "$here/quality.py" --bin "$bin" --pack "$VIDSEEK_MODEL_PACK" \
  --cache "$data/cache/bench" --work "$work" --out bench/results/quality.json "$@"
