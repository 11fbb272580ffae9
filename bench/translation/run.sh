#!/usr/bin/env bash
# Chinese query translation benchmark (see bench/translation/README.md).
#
#   bench/translation/run.sh [--dump FILE]   (FILE: development captions and their translations)
#
# Run by `make bench` with .vidseek/env loaded; runs on its own too. Writes
# bench/results/translation.json and prints a table.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/../.." && pwd)
cd "$repo"
data=${VIDSEEK_DATA_DIR:-$repo/.vidseek}
if [ -z "${VIDSEEK_MODEL_PACK:-}" ] || [ -z "${ORT_DYLIB_PATH:-}" ]; then
  [ -f "$data/env" ] || { echo "translation: $data/env missing; run 'make setup' first" >&2; exit 1; }
  # shellcheck disable=SC1091
  . "$data/env"
fi
bin=${VIDSEEK_BIN:-$repo/target/release/vidseek}
if [ ! -x "$bin" ]; then
  export PATH="$PATH:$HOME/.cargo/bin"
  cargo build --release -p vidseek
fi
py=$data/python/bin/python
[ -x "$py" ] || { echo "translation: $py missing; run 'make setup' first" >&2; exit 1; }
work=$(mktemp -d "${TMPDIR:-/tmp}/vidseek-translation.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p bench/results "$work/media"
VIDSEEK_BIN=$bin "$py" "$here/translation.py" --bin "$bin" --pack "$VIDSEEK_MODEL_PACK" \
  --cache "$data/cache/bench" --work "$work" --out bench/results/translation.json "$@"
