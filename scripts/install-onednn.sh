#!/usr/bin/env bash
# Puts oneDNN 3.2 (libdnnl.so.3, headers, CMake config) into .deps/onednn, from Intel's PyPI wheels
# pinned by hash in scripts/onednn-requirements.txt. `npm ci` / `npm install` run it after the system packages.
# Why not Debian's libdnnl-dev: it is oneDNN 2.6, whose bf16 backward convolutions on AMX take ~35 % longer
# (tools/bench/conv-ceiling: ResNet-50 112 px b16 453 vs 337 ms a step; fp32 the same).
#   bash scripts/install-onednn.sh     download and unpack if .deps/onednn is missing or another version
# Needs python3 with pip (Debian: python3-pip, installed by scripts/install-system-deps.sh). pip's cache is used.
# M2T_ONEDNN_ROOT (a oneDNN 3.x prefix of your own) skips the download; CMake then uses that prefix.
set -euo pipefail
cd "$(dirname "$0")/.."
say() { echo "oneDNN: $*"; }
if [ -n "${M2T_ONEDNN_ROOT:-}" ]; then
  say "using M2T_ONEDNN_ROOT=$M2T_ONEDNN_ROOT"
  exit 0
fi
PREFIX=.deps/onednn
REQ=scripts/onednn-requirements.txt
STAMP="$PREFIX/.requirements"
if [ -f "$STAMP" ] && cmp -s "$STAMP" "$REQ" && [ -f "$PREFIX/lib/cmake/dnnl/dnnl-config.cmake" ]; then
  say "present in $PREFIX"
  exit 0
fi
PY="${PYTHON:-python3}"
if ! "$PY" -m pip --version >/dev/null 2>&1; then
  echo "oneDNN: error: '$PY -m pip' is not available: install python3-pip (Debian), or set M2T_ONEDNN_ROOT" >&2
  exit 1
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
say "downloading the pinned wheels from PyPI (scripts/onednn-requirements.txt)"
"$PY" -m pip download --disable-pip-version-check --no-input -q --no-deps --only-binary=:all: \
  --require-hashes -r "$REQ" -d "$tmp"
rm -rf "$PREFIX"
mkdir -p "$PREFIX"
# A wheel is a zip; these keep their files under <name>.data/data/{include,lib,share}.
"$PY" - "$tmp" "$PREFIX" <<'PY'
import os, stat, sys, zipfile, glob
src, dst = sys.argv[1], sys.argv[2]
for whl in sorted(glob.glob(os.path.join(src, "*.whl"))):
    with zipfile.ZipFile(whl) as z:
        for info in z.infolist():
            parts = info.filename.split("/")
            if len(parts) < 4 or not parts[0].endswith(".data") or parts[1] != "data" or info.is_dir():
                continue
            out = os.path.join(dst, *parts[2:])
            os.makedirs(os.path.dirname(out), exist_ok=True)
            with z.open(info) as f, open(out, "wb") as g:
                g.write(f.read())
            if (info.external_attr >> 16) & stat.S_IXUSR:
                os.chmod(out, 0o755)
PY
# The wheel stores libdnnl.so, .so.3 and .so.3.x as three copies: keep one, link the others.
full=$(cd "$PREFIX/lib" && ls libdnnl.so.*.* | head -1)
(cd "$PREFIX/lib" && ln -sf "$full" libdnnl.so.3 && ln -sf libdnnl.so.3 libdnnl.so)
cp "$REQ" "$STAMP"
say "installed in $PREFIX ($(du -sh "$PREFIX" | cut -f1))"
