// Runtime CPU dispatch for the portable build (CMake: M2T_NATIVE_ARCH=OFF on x86-64).
// The library is compiled for x86-64-v2; a function marked M2T_CPU_CLONES is compiled three times —
// x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and the baseline — and the dynamic loader binds the best one
// for this CPU once (GNU ifunc). Mark leaf loops that vectorise: a clone's OpenMP regions are outlined
// before cloning and stay baseline, so call a marked per-row/per-chunk function from inside the region.
// Results: integer code and code compiled with -ffp-contract=off (the data library) are identical in
// every clone; elsewhere a clone may fuse a multiply-add (FMA), a difference within float32 rounding.
#pragma once

#if defined(M2T_CPU_DISPATCH) && defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define M2T_CPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define M2T_CPU_CLONES
#endif
