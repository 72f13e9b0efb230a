// Batch-norm passes on CPU over NHWC rows [M, C], G contiguous groups of M/G rows (one per view).
// Sums accumulate in double: a group can hold ~10^5 rows per channel.
//
// NHWC rows are contiguous, so k whole rows form one flat run of L = k·C elements. Loops work on
// runs of L ≥ 256 rather than on rows of C (often 8–64 here), which keeps inner loops long and
// vectorised; per-channel vectors are tiled to length L to match.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/cpu_common.h"

namespace m2t::cpu {
namespace {

constexpr int64_t kMinRun = 256;

int64_t rows_per_run(int64_t C) { return std::max<int64_t>(1, kMinRun / C); }

std::vector<float> tile(const float* v, int64_t C, int64_t k) {
  std::vector<float> t(C * k);
  for (int64_t r = 0; r < k; ++r) std::copy(v, v + C, t.begin() + r * C);
  return t;
}

// (s1[c], s2[c]) = Σ over rows [r0, r1) of (u[i], u[i]·v[i]) (v = u when null), where i runs
// over channel c's elements. One pass; double accumulators per thread, one per element of a run,
// folded into channels at the end.
void channel_sums(const float* u, const float* v, int64_t r0, int64_t r1, int64_t C, double* s1, double* s2) {
  if (!v) v = u;
  const int64_t k = rows_per_run(C), L = k * C;
  const int64_t runs = (r1 - r0) / k;
  std::fill(s1, s1 + C, 0.0);
  std::fill(s2, s2 + C, 0.0);
#pragma omp parallel
  {
    std::vector<double> acc(2 * L, 0.0);
    double* a1 = acc.data();
    double* a2 = acc.data() + L;
#pragma omp for schedule(static) nowait
    for (int64_t q = 0; q < runs; ++q) {
      const float* x = u + (r0 + q * k) * C;
      const float* y = v + (r0 + q * k) * C;
#pragma omp simd
      for (int64_t j = 0; j < L; ++j) {
        a1[j] += x[j];
        a2[j] += static_cast<double>(x[j]) * y[j];
      }
    }
#pragma omp critical
    for (int64_t j = 0; j < L; ++j) {
      s1[j % C] += a1[j];
      s2[j % C] += a2[j];
    }
  }
  for (int64_t i = (r0 + runs * k) * C; i < r1 * C; ++i) {
    s1[i % C] += u[i];
    s2[i % C] += static_cast<double>(u[i]) * v[i];
  }
}

// dst[i] = a[c]·u[i] + b[c]·(v[i] − m[c]) + s[c] (v may be null; ReLU if relu) over rows [r0, r1).
void affine_rows(float* dst, const float* u, const float* v, int64_t r0, int64_t r1, int64_t C, const float* a,
                 const float* b, const float* m, const float* s, bool relu) {
  const int64_t k = rows_per_run(C), L = k * C;
  const std::vector<float> ta = tile(a, C, k), ts = tile(s, C, k), tb = v ? tile(b, C, k) : std::vector<float>(),
                           tm = v ? tile(m, C, k) : std::vector<float>();
  const float *A = ta.data(), *B = tb.data(), *S = ts.data(), *Mu = tm.data();
  const int64_t runs = (r1 - r0) / k;
#pragma omp parallel for schedule(static)
  for (int64_t q = 0; q < runs; ++q) {
    const int64_t base = (r0 + q * k) * C;
    const float* x = u + base;
    float* y = dst + base;
    if (v) {
      const float* w = v + base;
#pragma omp simd
      for (int64_t j = 0; j < L; ++j) y[j] = A[j] * x[j] + B[j] * (w[j] - Mu[j]) + S[j];
    } else if (relu) {
#pragma omp simd
      for (int64_t j = 0; j < L; ++j) y[j] = std::max(A[j] * x[j] + S[j], 0.0f);
    } else {
#pragma omp simd
      for (int64_t j = 0; j < L; ++j) y[j] = A[j] * x[j] + S[j];
    }
  }
  for (int64_t r = r0 + runs * k; r < r1; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = r * C + c;
      float y = a[c] * u[i] + (v ? b[c] * (v[i] - m[c]) : 0.0f) + s[c];
      dst[i] = relu ? std::max(y, 0.0f) : y;
    }
}

}  // namespace

// mean = Σx/n, biased variance = Σx²/n − mean² (in double: exact enough for float inputs).
void bn_stats(const Tensor& x, int64_t C, int G, float* mean, float* var) {
  const int64_t M = x.numel() / C, Mg = M / G;
  std::vector<double> s1(C), s2(C);
  for (int g = 0; g < G; ++g) {
    channel_sums(x.data(), nullptr, g * Mg, (g + 1) * Mg, C, s1.data(), s2.data());
    for (int64_t c = 0; c < C; ++c) {
      const double m = s1[c] / Mg;
      mean[g * C + c] = static_cast<float>(m);
      var[g * C + c] = static_cast<float>(std::max(s2[c] / Mg - m * m, 0.0));
    }
  }
}

void bn_apply(const Tensor& x, int64_t C, int G, const float* scale, const float* shift, bool relu, Tensor& y) {
  const int64_t M = x.numel() / C, Mg = M / G;
  if (y.data() != x.data()) y.resize(x.shape());
  for (int g = 0; g < G; ++g)
    affine_rows(y.data(), x.data(), nullptr, g * Mg, (g + 1) * Mg, C, scale + g * C, nullptr, nullptr, shift + g * C,
                relu);
}

// With x̂ = (x − μ)·s (s = invstd), per group and channel:
//   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ·s·(dy − dβ/M − x̂·dγ/M) = a·dy − e·(x − μ) − b,
// a = γs, b = γs·dβ/M, e = γs²·dγ/M.
void bn_backward(const Tensor& x, const Tensor* y_relu, Tensor& dy, int64_t C, int G, const float* mean,
                 const float* invstd, const float* gamma, Tensor& dx, float* dgamma, float* dbeta) {
  const int64_t M = x.numel() / C, Mg = M / G;
  const float* px = x.data();
  float* pdy = dy.data();
  if (y_relu) {
    const float* py = y_relu->data();
    const int64_t n = x.numel();
#pragma omp parallel for simd schedule(static)
    for (int64_t i = 0; i < n; ++i) pdy[i] = py[i] > 0.0f ? pdy[i] : 0.0f;
  }
  dx.resize(x.shape());
  std::vector<double> sdy(C), sdyx(C);
  std::vector<float> a(C), e(C), shift(C);
  for (int g = 0; g < G; ++g) {
    const int64_t r0 = g * Mg, r1 = r0 + Mg;
    const float* mu = mean + g * C;
    const float* is = invstd + g * C;
    // Σ dy·(x − μ) = Σ dy·x − μ·Σ dy
    channel_sums(pdy, px, r0, r1, C, sdy.data(), sdyx.data());
    for (int64_t c = 0; c < C; ++c) {
      sdyx[c] -= mu[c] * sdy[c];
      const double dgam = sdyx[c] * is[c];
      dgamma[c] += static_cast<float>(dgam);
      dbeta[c] += static_cast<float>(sdy[c]);
      a[c] = gamma[c] * is[c];
      e[c] = static_cast<float>(-gamma[c] * is[c] * is[c] * dgam / Mg);
      shift[c] = static_cast<float>(-gamma[c] * is[c] * sdy[c] / Mg);
    }
    affine_rows(dx.data(), pdy, px, r0, r1, C, a.data(), e.data(), mu, shift.data(), false);
  }
}

}  // namespace m2t::cpu
