#!/usr/bin/env bash
# Browser tests of web/ and of the seed page against the real stack.
# Installs playwright-core from the lock file (only when node_modules is older
# than it; playwright-core never downloads a browser: Debian's chromium is
# used), then runs node's test runner. Arguments: test files and/or options
# for `node --test`, e.g. `run.sh ui.test.js --test-name-pattern=seed`.
#
# Environment: VIDSEEK_BIN (default ../../target/debug/vidseek),
# VIDSEEK_TEST_PHOTOS (the sample photos.mp4, with photos.srt beside it) and/or
# VIDSEEK_TEST_VIDEO (any real video), VIDSEEK_TEST_QUERY (optional),
# VIDSEEK_MODEL_PACK / ORT_DYLIB_PATH / NATS_SERVER_BIN (passed through to
# `vidseek up`), CHROMIUM_BIN (default /usr/bin/chromium).
set -euo pipefail
cd "$(dirname "$0")"

installed=node_modules/.package-lock.json
if [ ! -f "$installed" ] || [ package-lock.json -nt "$installed" ] || [ package.json -nt "$installed" ]; then
  npm ci --no-audit --no-fund
fi

options=()
files=()
for arg in "$@"; do
  case "$arg" in
    -*) options+=("$arg") ;;
    *) files+=("$arg") ;;
  esac
done
if [ ${#files[@]} -eq 0 ]; then
  files=(./*.test.js)
fi
exec node --test --test-concurrency=1 "${options[@]}" "${files[@]}"
