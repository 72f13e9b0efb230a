// Batch-norm passes on CPU over NHWC rows [M, C], G contiguous groups of M/G rows (one per view).
// Sums accumulate in double: a group can hold ~10^5 rows per channel.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "ops/cpu_common.h"

namespace m2t::cpu {
namespace {

// acc[c] += Σ_rows f(row pointer, c) for rows [r0, r1), split over threads, reduced in double.
template <typename F>
void channel_sums(int64_t r0, int64_t r1, int64_t C, double* out, F&& f) {
  std::fill(out, out + C, 0.0);
#pragma omp parallel
  {
    std::vector<double> acc(C, 0.0);
#pragma omp for schedule(static) nowait
    for (int64_t r = r0; r < r1; ++r) f(r, acc.data());
#pragma omp critical
    for (int64_t c = 0; c < C; ++c) out[c] += acc[c];
  }
}

}  // namespace

void bn_stats(const Tensor& x, int64_t C, int G, float* mean, float* var) {
  const int64_t M = x.numel() / C, Mg = M / G;
  const float* px = x.data();
  std::vector<double> s(C), mu(C);
  for (int g = 0; g < G; ++g) {
    const int64_t r0 = g * Mg, r1 = r0 + Mg;
    channel_sums(r0, r1, C, s.data(), [&](int64_t r, double* acc) {
      const float* row = px + r * C;
      for (int64_t c = 0; c < C; ++c) acc[c] += row[c];
    });
    for (int64_t c = 0; c < C; ++c) mu[c] = s[c] / Mg;
    channel_sums(r0, r1, C, s.data(), [&](int64_t r, double* acc) {
      const float* row = px + r * C;
      for (int64_t c = 0; c < C; ++c) {
        double d = row[c] - mu[c];
        acc[c] += d * d;
      }
    });
    for (int64_t c = 0; c < C; ++c) {
      mean[g * C + c] = static_cast<float>(mu[c]);
      var[g * C + c] = static_cast<float>(s[c] / Mg);
    }
  }
}

void bn_apply(const Tensor& x, int64_t C, int G, const float* scale, const float* shift, bool relu, Tensor& y) {
  const int64_t M = x.numel() / C, Mg = M / G;
  if (y.data() != x.data()) y.resize(x.shape());
  const float* px = x.data();
  float* py = y.data();
#pragma omp parallel for schedule(static)
  for (int64_t r = 0; r < M; ++r) {
    const int64_t g = r / Mg;
    const float* sc = scale + g * C;
    const float* sh = shift + g * C;
    const float* xr = px + r * C;
    float* yr = py + r * C;
    if (relu) {
      for (int64_t c = 0; c < C; ++c) yr[c] = std::max(xr[c] * sc[c] + sh[c], 0.0f);
    } else {
      for (int64_t c = 0; c < C; ++c) yr[c] = xr[c] * sc[c] + sh[c];
    }
  }
}

// With x̂ = (x − μ)·s (s = invstd), per group and channel:
//   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ·s·(dy − dβ/M − x̂·dγ/M).
void bn_backward(const Tensor& x, const Tensor* y_relu, Tensor& dy, int64_t C, int G, const float* mean,
                 const float* invstd, const float* gamma, Tensor& dx, float* dgamma, float* dbeta) {
  const int64_t M = x.numel() / C, Mg = M / G;
  const float* px = x.data();
  float* pdy = dy.data();
  if (y_relu) {
    const float* py = y_relu->data();
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < x.numel(); ++i)
      if (py[i] <= 0.0f) pdy[i] = 0.0f;
  }
  dx.resize(x.shape());
  float* pdx = dx.data();
  std::vector<double> sdy(C), sdyx(C);
  std::vector<float> k1(C), k2(C), k3(C);
  for (int g = 0; g < G; ++g) {
    const int64_t r0 = g * Mg, r1 = r0 + Mg;
    const float* mu = mean + g * C;
    const float* is = invstd + g * C;
    channel_sums(r0, r1, C, sdy.data(), [&](int64_t r, double* acc) {
      const float* d = pdy + r * C;
      for (int64_t c = 0; c < C; ++c) acc[c] += d[c];
    });
    channel_sums(r0, r1, C, sdyx.data(), [&](int64_t r, double* acc) {
      const float* d = pdy + r * C;
      const float* xr = px + r * C;
      for (int64_t c = 0; c < C; ++c) acc[c] += static_cast<double>(d[c]) * (xr[c] - mu[c]);
    });
    for (int64_t c = 0; c < C; ++c) {
      const double dgam = sdyx[c] * is[c];
      dgamma[c] += static_cast<float>(dgam);
      dbeta[c] += static_cast<float>(sdy[c]);
      // dx = a·dy − b − (x − μ)·e, with a = γs, b = γs·Σdy/M, e = γs·s·dγ/M
      k1[c] = gamma[c] * is[c];
      k2[c] = static_cast<float>(gamma[c] * is[c] * sdy[c] / Mg);
      k3[c] = static_cast<float>(gamma[c] * is[c] * is[c] * dgam / Mg);
    }
#pragma omp parallel for schedule(static)
    for (int64_t r = r0; r < r1; ++r) {
      const float* d = pdy + r * C;
      const float* xr = px + r * C;
      float* o = pdx + r * C;
      for (int64_t c = 0; c < C; ++c) o[c] = k1[c] * d[c] - k2[c] - (xr[c] - mu[c]) * k3[c];
    }
  }
}

}  // namespace m2t::cpu
