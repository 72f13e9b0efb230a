#!/usr/bin/env bash
# Installs NVIDIA's CUDA 13 toolkit pieces from PyPI into the project venv .venv-cuda/ (git-ignored), so the CUDA
# part of the native core (cmake -DM2T_CUDA=ON, see cmake/cuda.cmake) builds on a machine with no system CUDA
# and no GPU (CI). Downloads go through pip only and are cached in pip's default cache (~/.cache/pip).
#   bash scripts/setup-cuda-wheels.sh          install (idempotent; a second run only checks)
#   bash scripts/setup-cuda-wheels.sh --prefix  print the site-packages/nvidia folder cmake should search
# cmake/cuda.cmake finds the venv by itself (M2T_CUDA_WHEELS defaults to <repo>/.venv-cuda).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.venv-cuda
PY=${PYTHON:-python3}

# Pinned: the CUDA 13 wheels share site-packages/nvidia/cu13/{bin,include,lib}; cuDNN and NCCL have their own folders.
PACKAGES=(
  "nvidia-cuda-nvcc==13.*"      # nvcc, ptxas (bin/), crt headers on older 13.x
  "nvidia-cuda-crt==13.*"       # crt/host_config.h etc. (split out of nvcc in later 13.x)
  "nvidia-nvvm==13.*"           # cicc + libdevice, which nvcc calls
  "nvidia-cuda-runtime==13.*"   # cuda_runtime.h, libcudart.so.13
  "nvidia-cuda-cccl==13.*"      # CUB / Thrust / libcu++ headers
  "nvidia-cublas==13.*"         # cuBLAS + cuBLASLt
  "nvidia-cudnn-cu13==9.*"      # cuDNN 9
  "nvidia-nccl-cu13==2.*"       # NCCL
)

site() { "$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'; }

if [ "${1:-}" = "--prefix" ]; then echo "$(site)/nvidia"; exit 0; fi

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV" || { echo "setup-cuda-wheels: '$PY -m venv' failed (install python3-venv)" >&2; exit 1; }
fi
"$VENV/bin/python" -m pip install --disable-pip-version-check -q "${PACKAGES[@]}"

# The wheels ship versioned sonames only (libcudart.so.13, libcudnn.so.9, ...); the linker's -lNAME needs NAME.so.
# Unversioned links are made inside the venv only.
NV="$(site)/nvidia"
for dir in "$NV"/cu13/lib "$NV"/cudnn/lib "$NV"/nccl/lib; do
  [ -d "$dir" ] || continue
  for f in "$dir"/lib*.so.[0-9]*; do
    [ -e "$f" ] || continue
    base=$(basename "$f"); plain="${base%%.so.*}.so"
    [ -e "$dir/$plain" ] || ln -s "$base" "$dir/$plain"
  done
done
NVCC="$NV/cu13/bin/nvcc"
[ -x "$NVCC" ] || { echo "setup-cuda-wheels: no nvcc at $NVCC after install" >&2; exit 1; }
echo "setup-cuda-wheels: $("$NVCC" --version | tail -2 | head -1) in $NV"
