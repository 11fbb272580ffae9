#!/usr/bin/env bash
# Image and text encodes per second on ONNX Runtime's CPU and CUDA
# execution providers, same model pack, same batch, same process. For a
# bare CUDA machine (NVIDIA driver present): installs onnxruntime-gpu into
# its own venv and runs in well under 5 minutes.
# Usage: bench/gpu/run.sh [--seconds S] [--batch N]
# Needs a model pack: VIDSEEK_MODEL_PACK, else .vidseek/models/default
# (deploy/setup.sh builds it; copying that directory over is enough).
# Result: bench/results/gpu.json.
set -euo pipefail
cd "$(dirname "$0")/../.."
# `make bench` runs every bench: without a GPU there is nothing to compare,
# and onnxruntime-gpu is a large download.
if ! nvidia-smi >/dev/null 2>&1 && [ "${GPU_BENCH_FORCE:-0}" != 1 ]; then
  echo "bench/gpu: no NVIDIA GPU visible (nvidia-smi); skipped (GPU_BENCH_FORCE=1 runs the CPU half)"
  exit 0
fi
pack="${VIDSEEK_MODEL_PACK:-.vidseek/models/default}"
[ -f "$pack/manifest.json" ] || { echo "no model pack at $pack: run deploy/setup.sh or set VIDSEEK_MODEL_PACK" >&2; exit 1; }
venv="${GPU_BENCH_VENV:-.vidseek/gpu-venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
fi
# onnxruntime-gpu's wheels bundle no CUDA libraries; the nvidia-* wheels
# (cuDNN, cuBLAS, the CUDA runtime) come with the [cuda,cudnn] extra.
if ! "$venv/bin/python" -c "import onnxruntime, tokenizers, numpy" 2>/dev/null; then
  "$venv/bin/pip" install --quiet --upgrade pip
  "$venv/bin/pip" install --quiet "onnxruntime-gpu[cuda,cudnn]" tokenizers numpy
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>/dev/null || echo "nvidia-smi: no GPU visible" >&2
mkdir -p bench/results
exec "$venv/bin/python" bench/gpu/bench.py --pack "$pack" --out bench/results/gpu.json "$@"
