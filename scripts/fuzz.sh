#!/usr/bin/env bash
# Standing guard (issue 13): libFuzzer over the safetensors reader and the checkpoint loaders,
# with AddressSanitizer + UBSan, for a fixed budget. Installs clang (Debian) on first use only.
#   scripts/fuzz.sh [seconds=60]
# Seeds: native/io/fuzz/corpus (small real checkpoints, committed). New inputs go to a scratch
# corpus under build-fuzz/, so the repository's corpus stays small. Exit non-zero on a finding
# (the crashing input is left in build-fuzz/ as crash-*).
set -euo pipefail
cd "$(dirname "$0")/.."
secs="${1:-60}"
bash scripts/install-system-deps.sh --fuzz
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
san="-fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -Wno-pass-failed"
cmake -S . -B build-fuzz -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
  -DCMAKE_BUILD_TYPE=Release -DM2T_FUZZ=ON -DM2T_BUILD_TESTS=OFF \
  -DCMAKE_CXX_FLAGS="$san" -DCMAKE_EXE_LINKER_FLAGS="-fsanitize=address,undefined" >/dev/null
start=$(date +%s)
cmake --build build-fuzz --target m2t_fuzz_checkpoint
echo "fuzz: build $(( $(date +%s) - start )) s"
mkdir -p build-fuzz/corpus
cd build-fuzz
# detect_leaks=0: the models are built once and kept (static); a leak is not what we hunt here.
ASAN_OPTIONS=detect_leaks=0 ./native/m2t_fuzz_checkpoint -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
  -max_len=131072 -print_final_stats=1 corpus ../native/io/fuzz/corpus 2>&1 | tee fuzz.log | grep -E "INITED|DONE|stat::|ERROR|SUMMARY" || true
grep -q "^Done\|DONE" fuzz.log && ! grep -q "ERROR: \(AddressSanitizer\|UndefinedBehaviorSanitizer\|libFuzzer\)" fuzz.log
