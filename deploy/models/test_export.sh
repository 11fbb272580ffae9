#!/usr/bin/env bash
# `make test-export`: proves deploy/models/export_clip.py on real CLIP
# architectures with random weights (no model hub): export each to a pack,
# install it with `vidseek models import`, embed texts and images with the
# Rust encoder (`vidseek models embed --json`) and compare with torch on the
# same inputs. Prints a table of cosines; exits non-zero when one is < 0.999.
#
#   deploy/models/test_export.sh [test_export.py options, e.g. --only ViT-B-32]
#   deploy/models/test_export.sh --venv-only     # just build the export venv
#
# The export venv lives in DATA/export-venv and its wheels in
# DATA/cache/export-wheels (DATA: $VIDSEEK_DATA_DIR, default .vidseek): the
# first run downloads about 2.7 GB (torch and the CUDA libraries it links),
# later runs reuse the venv, and a rebuilt venv installs from the cached
# wheels without the network. The main DATA/python venv is not touched.
# VIDSEEK_BIN=... uses that vidseek binary instead of building target/debug.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
data=$(cd "$root" && mkdir -p "${VIDSEEK_DATA_DIR:-.vidseek}" && cd "${VIDSEEK_DATA_DIR:-.vidseek}" && pwd)
venv=$data/export-venv
wheels=$data/cache/export-wheels
requirements=$here/test_export.requirements.txt
py=${PYTHON:-python3}

build_venv() {
  local hash marker pip
  hash=$(sha256sum "$requirements" | cut -c1-16)
  marker=$venv/.vidseek-export-deps-$hash
  if [ -f "$marker" ] && [ -x "$venv/bin/python" ]; then
    return 0
  fi
  local started=$SECONDS
  if [ ! -x "$venv/bin/python" ]; then
    "$py" -m venv "$venv" || {
      echo "cannot create a venv with $py (on Debian: apt-get install -y python3-venv)" >&2
      exit 1
    }
  fi
  mkdir -p "$wheels"
  pip=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
  # Offline from the cache when it has every wheel; otherwise fetch the
  # missing ones (pip download skips files it already has).
  if ! "${pip[@]}" install --no-deps --no-index --find-links "$wheels" -r "$requirements" 2>/dev/null; then
    echo "==> downloading the export wheels into $wheels (about 2.7 GB on the first run)" >&2
    "${pip[@]}" download --no-deps --only-binary :all: -d "$wheels" -r "$requirements"
    "${pip[@]}" install --no-deps --no-index --find-links "$wheels" -r "$requirements"
  fi
  rm -f "$venv"/.vidseek-export-deps-*
  touch "$marker"
  echo "==> export venv ready in $venv ($((SECONDS - started)) s)" >&2
}

build_venv
if [ "${1:-}" = "--venv-only" ]; then
  exit 0
fi

bin=${VIDSEEK_BIN:-}
if [ -z "$bin" ]; then
  (cd "$root" && ${CARGO:-cargo} build -p vidseek)
  bin=$(cd "$root" && realpath "${CARGO_TARGET_DIR:-target}")/debug/vidseek
fi
# The Rust encoder loads ONNX Runtime from the export venv's wheel (the same
# version deploy/setup.sh installs), unless ORT_DYLIB_PATH says otherwise.
ort=${ORT_DYLIB_PATH:-$(ls "$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.* | sort | tail -n1)}
exec "$venv/bin/python" "$here/test_export.py" --vidseek "$bin" --ort-library "$ort" \
  --work "$data/export-test" "$@"
