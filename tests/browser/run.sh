#!/usr/bin/env bash
# Browser tests of web/ and of the seed page against the real stack.
# Installs playwright-core from the lock file (only when node_modules is older
# than it; playwright-core never downloads a browser: Debian's chromium is
# used), then runs node's test runner. Extra arguments go to `node --test`.
#
# Environment: VIDSEEK_BIN (default ../../target/debug/vidseek),
# VIDSEEK_TEST_VIDEO (a real mp4, required), VIDSEEK_TEST_IMAGE (optional),
# VIDSEEK_MODEL_PACK / ORT_DYLIB_PATH (passed through to `vidseek up`).
set -euo pipefail
cd "$(dirname "$0")"

installed=node_modules/.package-lock.json
if [ ! -f "$installed" ] || [ package-lock.json -nt "$installed" ] || [ package.json -nt "$installed" ]; then
  npm ci --no-audit --no-fund
fi

if [ $# -eq 0 ]; then
  set -- ./*.test.js
fi
exec node --test --test-concurrency=1 "$@"
