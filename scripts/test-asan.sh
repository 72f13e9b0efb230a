#!/usr/bin/env bash
# Standing guard (issue 13): AddressSanitizer + UndefinedBehaviorSanitizer (UB fatal) build of the
# core, the data layer, the addon and the native tests in build-asan/, then ctest and the jest
# suites that drive the binding, with node preloading the sanitizer runtimes.
#   scripts/test-asan.sh            (npm run test:asan)
set -euo pipefail
cd "$(dirname "$0")/.."
export CMAKE_BUILD_PARALLEL_LEVEL="${CMAKE_BUILD_PARALLEL_LEVEL:-2}"
start=$(date +%s)
mkdir -p build-asan
npx cmake-js compile -O build-asan --CDM2T_SANITIZE=ON --CDM2T_BUILD_TESTS=ON >build-asan/build.log 2>&1 || { tail -50 build-asan/build.log; exit 1; }
echo "asan: build $(( $(date +%s) - start )) s"

# Leaks are not hunted here (node and the static oneDNN caches keep memory to exit).
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:check_initialization_order=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
start=$(date +%s)
ctest --test-dir build-asan --output-on-failure --no-tests=error -j2
echo "asan: ctest $(( $(date +%s) - start )) s"

# The suites that exercise the binding: the engine, the data layer's objects, object lifetime
# under GC, the N-API argument fuzz, bad sizes and non-finite state.
start=$(date +%s)
LD_PRELOAD="$(gcc -print-file-name=libasan.so) $(gcc -print-file-name=libubsan.so)" M2T_ADDON_DIR=build-asan/Release \
  npx jest test/engine.test.ts test/api.test.ts test/harden-engine.test.ts test/harden-lifetime.test.ts \
    test/harden-napi-fuzz.test.ts test/data-datasets.test.ts test/data-loader.test.ts
echo "asan: jest $(( $(date +%s) - start )) s"
