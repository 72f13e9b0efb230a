#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages the native build needs. `npm ci` / `npm install` run it first.
#   bash scripts/install-system-deps.sh          install what is missing (as root; see below otherwise)
#   bash scripts/install-system-deps.sh --list   print the package list, one a line, and exit
#   bash scripts/install-system-deps.sh --fuzz   also clang and its libFuzzer runtime (scripts/fuzz.sh only)
# As root (CI, containers) it runs apt-get itself. As any other user it never runs sudo unasked: it prints
# the exact apt-get line and stops; M2T_SUDO=1 lets it run that line through sudo.
# M2T_EXTRA_SYSTEM_PACKAGES adds packages to the list (space-separated; used by the tests).
set -euo pipefail

# oneDNN is not among them: scripts/install-onednn.sh fetches oneDNN 3.2 from PyPI (Debian has 2.6) with
# python3-pip.
pkgs=(cmake g++ make ninja-build pkg-config python3-pip libturbojpeg0-dev libspng-dev
      libpng-dev libgloo-dev libgtest-dev nlohmann-json3-dev)
# shellcheck disable=SC2206
pkgs+=(${M2T_EXTRA_SYSTEM_PACKAGES:-})
list=0
for arg in "$@"; do
  case "$arg" in
    --list) list=1 ;;
    # --fuzz (scripts/fuzz.sh only, never a user install): clang with its libFuzzer runtime.
    --fuzz) pkgs+=(clang libclang-rt-14-dev libomp-dev) ;;
    *) echo "install-system-deps.sh: unknown argument '$arg' (expected --list and/or --fuzz)" >&2; exit 2 ;;
  esac
done

if [ "$list" = 1 ]; then
  printf '%s\n' "${pkgs[@]}"
  exit 0
fi

say() { echo "system packages: $*"; }
fail() { echo "system packages: error: $*" >&2; exit 1; }

if ! command -v dpkg-query >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
  say "not a Debian/Ubuntu system; install CMake, a C++17 compiler, python3 with pip,"
  say "  libjpeg-turbo, libspng, Gloo and nlohmann-json yourself (the build stops naming anything missing)"
  exit 0
fi

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  say "all present"
  exit 0
fi

line="apt-get install -y --no-install-recommends ${missing[*]}"
SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if [ "${M2T_SUDO:-}" != "1" ]; then
    echo "system packages: missing ${missing[*]}" >&2
    echo "  install them as root, then run npm again:" >&2
    echo "    sudo apt-get update && sudo $line" >&2
    echo "  (or set M2T_SUDO=1 to let this script run that through sudo)" >&2
    exit 1
  fi
  SUDO=(sudo)
fi

say "installing ${missing[*]}"
start=$(date +%s)
"${SUDO[@]}" apt-get update -qq || fail "'apt-get update' failed (network or apt sources?)"
# Name every package apt cannot install before asking for any, instead of letting CMake fail later.
unavailable=()
for p in "${missing[@]}"; do
  cand=$(apt-cache policy "$p" 2>/dev/null | awk '/Candidate:/ {print $2}')
  if [ -z "$cand" ] || [ "$cand" = "(none)" ]; then unavailable+=("$p"); fi
done
if [ ${#unavailable[@]} -gt 0 ]; then
  fail "no installable version of ${unavailable[*]} in the configured apt sources (Debian 12 / Ubuntu 22.04+ have them)"
fi
DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" \
  || fail "'$line' failed"
for p in "${missing[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" \
    || fail "$p is still not installed after apt-get install"
done
say "installed in $(( $(date +%s) - start )) s"
