#!/usr/bin/env bash
# What the portable build costs: bench:step and bench:data on the default build (x86-64-v2 + AVX2/AVX-512
# clones of the hot kernels), on a -march=native build and (--baseline) on x86-64-v2 without the clones,
# interleaved in one run so machine load hits all alike. Builds build-native/ (and build-baseline/) if absent.
#   bash tools/bench/portable-vs-native.sh [--baseline] [--rounds 2] [--budget 8] [--threads 1]
set -euo pipefail
cd "$(dirname "$0")/../.."
rounds=2 budget=8 threads=1 baseline=0
while [ $# -gt 0 ]; do
  case "$1" in
    --rounds) rounds=$2; shift 2;; --budget) budget=$2; shift 2;; --threads) threads=$2; shift 2;;
    --baseline) baseline=1; shift;; *) echo "unknown flag $1" >&2; exit 2;;
  esac
done
declare -A addon=([portable]=build/Release [native]=build-native/Release)
[ -f "${addon[portable]}/m2t.node" ] || npx cmake-js compile
[ -f "${addon[native]}/m2t.node" ] || npx cmake-js compile -O build-native --CDM2T_NATIVE_ARCH=ON
builds=(portable native)
if [ "$baseline" = 1 ]; then
  addon[baseline]=build-baseline/Release
  [ -f "${addon[baseline]}/m2t.node" ] || npx cmake-js compile -O build-baseline --CDM2T_CPU_DISPATCH=OFF
  builds+=(baseline)
fi
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq "$rounds"); do
  for b in "${builds[@]}"; do
    echo "== round $r, $b build (${addon[$b]})"
    M2T_ADDON_DIR="${addon[$b]}" npx tsx tools/bench/step.ts --threads "$threads" --budget "$budget" --no-torch | tail -n +2
    M2T_ADDON_DIR="${addon[$b]}" npx tsx tools/data/bench.ts --images 320 --python /nonexistent 2>&1 | grep -E '^ *(threads|[0-9]+ )' || true
  done
done
