// Multiply-accumulate rate of one core: f32 FMA (vfmadd231ps, 16 MACs) against bf16 dot products
// (vdpbf16ps, 32 MACs: pairs of bf16 products summed into f32), 24 independent register chains
// each, so throughput, not latency, is timed. Says what bf16 arithmetic can gain on this CPU
// without AMX: where vdpbf16ps retires at half FMA's instruction rate, bf16 convolutions cannot
// beat f32 ones. Prints one JSON line.
#include <immintrin.h>

#include <chrono>
#include <cstdio>

#define R24(X) \
  X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)

int main() {
  const long n = 50000000;
#define DECL(i) __m512 a##i = _mm512_set1_ps(i * 1e-9f);
  R24(DECL)
  const __m512 x = _mm512_set1_ps(1.0f), y = _mm512_set1_ps(1e-8f);
  const __m512bh xb = (__m512bh)_mm512_set1_epi16(0x3f80), yb = (__m512bh)_mm512_set1_epi16(0x3000);
  const auto t0 = std::chrono::steady_clock::now();
#define FMA(i) a##i = _mm512_fmadd_ps(x, y, a##i);
  for (long k = 0; k < n; ++k) {
    R24(FMA)
    asm volatile("" ::: "memory");
  }
  const auto t1 = std::chrono::steady_clock::now();
#define DP(i) a##i = _mm512_dpbf16_ps(a##i, xb, yb);
  for (long k = 0; k < n; ++k) {
    R24(DP)
    asm volatile("" ::: "memory");
  }
  const auto t2 = std::chrono::steady_clock::now();
  float s = 0;
#define SUM(i) s += _mm512_reduce_add_ps(a##i);
  R24(SUM)
  const double f = std::chrono::duration<double>(t1 - t0).count(), b = std::chrono::duration<double>(t2 - t1).count();
  const double fma = n * 24.0 * 16 / f / 1e9, dp = n * 24.0 * 32 / b / 1e9;
  std::printf("{\"f32_fma_gmac_per_s\":%.2f,\"bf16_dp_gmac_per_s\":%.2f,\"bf16_over_f32\":%.2f,\"checksum\":%g}\n", fma, dp,
              dp / fma, s);
}
