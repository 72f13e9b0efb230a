#!/usr/bin/env bash
# Makes .venv-test/: CPU PyTorch + torchvision + timm + tensorboard from PyPI, for the tests that
# check exports and logs in Python (test/export-python.test.ts, test/tensorboard.test.ts). Those
# tests print a skip reason when the venv is absent; nothing else needs Python.
#
# On Linux x86_64 the PyPI torch wheel is a CUDA build: libtorch links the CUDA libraries, so even
# CPU use must find them (checked: `pip install --no-deps torch torchvision` fails at `import torch`
# with "libcudart.so.12: cannot open shared object file"). PyPI has no CPU-only build, so the
# nvidia-* wheels torch names are installed (~3 GB) but not triton (GPU kernel compiler, unused).
#
#   bash scripts/setup-python-venv.sh            # → .venv-test/
#   M2T_VENV=/path bash scripts/setup-python-venv.sh
set -euo pipefail
cd "$(dirname "$0")/.."
VENV="${M2T_VENV:-.venv-test}"
PY="${PYTHON:-python3}"

TORCH="torch==2.9.1"
TORCHVISION="torchvision==0.24.1"

if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/pip" install --disable-pip-version-check --no-input -q)
"${PIP[@]}" --no-deps "$TORCH" "$TORCHVISION"
# torch's nvidia-* requirements whose markers hold here (none on macOS), without triton.
mapfile -t NVIDIA < <("$VENV/bin/python" - <<'PY'
import importlib.metadata as m
from pip._vendor.packaging.requirements import Requirement
for r in map(Requirement, m.requires("torch") or []):
    if r.name.startswith("nvidia-") and (r.marker is None or r.marker.evaluate({"extra": ""})):
        print(f"{r.name}{r.specifier}")
PY
)
if [ "${#NVIDIA[@]}" -gt 0 ]; then "${PIP[@]}" --no-deps "${NVIDIA[@]}"; fi
# What torch/torchvision import at run time (their own requirements minus the nvidia-*/triton wheels).
# pip reports torch's missing triton as a conflict: expected, filtered.
quiet() { "$@" 2> >(grep -v -e 'requires triton' -e "dependency resolver does not currently" -e 'dependency conflicts' >&2); }
quiet "${PIP[@]}" filelock typing-extensions 'sympy>=1.13.3' networkx jinja2 fsspec numpy pillow safetensors
# timm (its requirements: torch, torchvision, pyyaml, huggingface_hub, safetensors) and tensorboard.
quiet "${PIP[@]}" --no-deps timm==1.0.22
quiet "${PIP[@]}" pyyaml huggingface_hub tensorboard
"$VENV/bin/python" - <<'PY'
import torch, torchvision, timm, tensorboard
x = torchvision.models.resnet18().eval()(torch.zeros(1, 3, 32, 32))
print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, timm {timm.__version__}, tensorboard {tensorboard.__version__}: ok, cuda={torch.cuda.is_available()}")
PY
