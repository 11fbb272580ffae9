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
# shellcheck source=../stack_env.sh
. "$repo/bench/stack_env.sh"
work=$(mktemp -d "${TMPDIR:-/tmp}/vidseek-translation.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir -p bench/results "$work/media"
VIDSEEK_BIN=$bin "$py" "$here/translation.py" --bin "$bin" --pack "$VIDSEEK_MODEL_PACK" \
  --cache "$data/cache/bench" --work "$work" --out bench/results/translation.json "$@"
