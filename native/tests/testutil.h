// Helpers shared by the native tests.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace m2t::test {

// The golden files' deterministic generator (tools/golden/SCHEMA.md):
// gen(name)[i] = float32(offset + scale·(2·u(name, i) − 1)), u with 24 random bits.
inline void gen_fill(float* out, int64_t n, const std::string& name, double offset, double scale) {
  const uint64_t key = rng::fnv1a64(name);
  for (int64_t i = 0; i < n; ++i) out[i] = static_cast<float>(offset + scale * (2.0 * rng::uniform24(key, i) - 1.0));
}

inline Tensor gen(const std::string& name, const Shape& shape, double offset = 0.0, double scale = 1.0) {
  Tensor t(shape);
  gen_fill(t.data(), t.numel(), name, offset, scale);
  return t;
}

// Class labels as the ops and the probe take them: an i32 tensor on `dev`.
inline Tensor to_labels(const std::vector<int32_t>& v, Device dev = Device::cpu()) {
  Tensor t({static_cast<int64_t>(v.size())}, Device::cpu(), DType::I32);
  t.copy_from_host(v.data());
  return t.to(dev);
}

// NCHW → NHWC (images as the golden script stores them → our layout).
inline Tensor nchw_to_nhwc(const Tensor& x) {
  const int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  Tensor y({N, H, W, C});
  for (int64_t n = 0; n < N; ++n)
    for (int64_t c = 0; c < C; ++c)
      for (int64_t h = 0; h < H; ++h)
        for (int64_t w = 0; w < W; ++w) y.data()[((n * H + h) * W + w) * C + c] = x.data()[((n * C + c) * H + h) * W + w];
  return y;
}

// max |a − b| / (atol_scale + max |b|): error relative to the reference's magnitude.
inline double rel_err(const float* a, const float* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    num = std::max(num, std::fabs(static_cast<double>(a[i]) - b[i]));
    den = std::max(den, std::fabs(static_cast<double>(b[i])));
  }
  return num / std::max(den, 1e-12);
}

inline double rel_err(const float* a, const double* b, int64_t n) {
  double num = 0, den = 0;
  for (int64_t i = 0; i < n; ++i) {
    num = std::max(num, std::fabs(a[i] - b[i]));
    den = std::max(den, std::fabs(b[i]));
  }
  return num / std::max(den, 1e-12);
}

inline double rel_err(const Tensor& a, const Tensor& b) {
  EXPECT_EQ(a.numel(), b.numel());
  return rel_err(a.data(), b.data(), std::min(a.numel(), b.numel()));
}

}  // namespace m2t::test
