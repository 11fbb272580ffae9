# Sourced by the benches that run the real stack (bench/quality, bench/translation):
# from the repository root, loads .vidseek/env when the model pack and ONNX
# Runtime are not already set, builds the release binary when missing, and
# sets $data, $bin and $py (the set-up's Python). Needs `make setup` first.
name=$(basename "$(dirname "${BASH_SOURCE[1]}")")
data=${VIDSEEK_DATA_DIR:-$PWD/.vidseek}
if [ -z "${VIDSEEK_MODEL_PACK:-}" ] || [ -z "${ORT_DYLIB_PATH:-}" ]; then
  [ -f "$data/env" ] || { echo "$name: $data/env missing; run 'make setup' first" >&2; exit 1; }
  # shellcheck disable=SC1091
  . "$data/env"
fi
bin=${VIDSEEK_BIN:-$PWD/target/release/vidseek}
if [ ! -x "$bin" ]; then
  export PATH="$PATH:$HOME/.cargo/bin"
  cargo build --release -p vidseek
fi
py=$data/python/bin/python
[ -x "$py" ] || { echo "$name: $py missing; run 'make setup' first" >&2; exit 1; }
