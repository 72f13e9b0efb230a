// Finite-difference gradient checks against double-precision reference forwards.
// For an op y = f(x) the tests use the scalar L = Σ_i w_i·y_i with fixed random w, so the
// analytical input gradient under test is backward(dy = w).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace m2t::test {

using Vec = std::vector<double>;

inline Vec random_vec(int64_t n, uint64_t seed, double lo = -1, double hi = 1) {
  Vec v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * rng::uniform53(seed, i);
  return v;
}

inline Tensor to_tensor(const Vec& v, const Shape& s) {
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<float>(v[i]);
  return t;
}

inline Vec to_vec(const Tensor& t) { return Vec(t.data(), t.data() + t.numel()); }

inline double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Expects `got` (float32 op output) to match the double reference within rel (of max |ref|).
inline void expect_close(const Tensor& got, const Vec& ref, double rel, const char* what) {
  ASSERT_EQ(static_cast<size_t>(got.numel()), ref.size()) << what;
  double num = 0, den = 1e-12;
  for (size_t i = 0; i < ref.size(); ++i) {
    num = std::max(num, std::fabs(got.data()[i] - ref[i]));
    den = std::max(den, std::fabs(ref[i]));
  }
  EXPECT_LE(num / den, rel) << what << ": max abs error " << num << " vs max |ref| " << den;
}

// Central differences of L at up to `samples` coordinates of x (spread over the whole vector),
// compared with the analytical gradient `ana` relative to max |ana|.
inline void expect_gradient(const std::function<double(const Vec&)>& L, Vec x, const Tensor& ana, double rel,
                            const char* what, int samples = 64, double h = 1e-5) {
  ASSERT_EQ(static_cast<size_t>(ana.numel()), x.size()) << what;
  double scale = 1e-12;
  for (int64_t i = 0; i < ana.numel(); ++i) scale = std::max(scale, std::fabs(static_cast<double>(ana.data()[i])));
  const int64_t n = static_cast<int64_t>(x.size());
  const int64_t stride = std::max<int64_t>(1, n / samples);
  double worst = 0;
  int64_t worst_i = -1;
  for (int64_t i = 0; i < n; i += stride) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double lp = L(x);
    x[i] = x0 - h;
    const double lm = L(x);
    x[i] = x0;
    const double fd = (lp - lm) / (2 * h);
    const double err = std::fabs(fd - ana.data()[i]) / scale;
    if (err > worst) {
      worst = err;
      worst_i = i;
    }
  }
  EXPECT_LE(worst, rel) << what << ": worst relative gradient error at index " << worst_i;
}

}  // namespace m2t::test
