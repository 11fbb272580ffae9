# Sourced by the benches that run the real stack (bench/quality, bench/translation):
# from the repository root, loads .vidseek/env when the model pack and ONNX
# Runtime are not already set, brings the release binary up to date, and
# sets $data, $bin and $py (the set-up's Python). Needs `make setup` first.
name=$(basename "$(dirname "${BASH_SOURCE[1]}")")
data=${VIDSEEK_DATA_DIR:-$PWD/.vidseek}
if [ -z "${VIDSEEK_MODEL_PACK:-}" ] || [ -z "${ORT_DYLIB_PATH:-}" ]; then
  [ -f "$data/env" ] || { echo "$name: $data/env missing; run 'make setup' first" >&2; exit 1; }
  # shellcheck disable=SC1091
  . "$data/env"
fi
# The release binary is brought up to date (a no-op when it is), so a
# bench never measures yesterday's code; VIDSEEK_BIN points elsewhere.
if [ -n "${VIDSEEK_BIN:-}" ]; then
  bin=$VIDSEEK_BIN
else
  export PATH="$PATH:$HOME/.cargo/bin"
  cargo build --quiet --release -p vidseek
  bin=$PWD/target/release/vidseek
fi
py=$data/python/bin/python
[ -x "$py" ] || { echo "$name: $py missing; run 'make setup' first" >&2; exit 1; }
