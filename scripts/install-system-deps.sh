#!/usr/bin/env bash
# Installs the Debian packages the native build needs (oneDNN, libjpeg-turbo, libspng/libpng,
# Gloo, GoogleTest, nlohmann-json, CMake, a C++ compiler). Skips apt when all are present.
set -euo pipefail
pkgs=(cmake g++ make ninja-build pkg-config libdnnl-dev libturbojpeg0-dev libspng-dev libpng-dev libgloo-dev
      libgtest-dev nlohmann-json3-dev ocl-icd-opencl-dev)
# --fuzz (scripts/fuzz.sh only, never a user install): clang with its libFuzzer runtime.
if [ "${1:-}" = "--fuzz" ]; then pkgs+=(clang libclang-rt-14-dev libomp-dev); fi
if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  echo "system packages: not a Debian/Ubuntu system; install CMake, a C++17 compiler, oneDNN 2.x, libjpeg-turbo,"
  echo "  libspng, GoogleTest and nlohmann-json yourself (the build stops with the name of anything missing)"
  exit 0
fi
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "system packages: all present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "system packages: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
