// Finite-difference gradient checks against double-precision reference forwards.
// For an op y = f(x) the tests use the scalar L = Σ_i w_i·y_i with fixed random w, so the
// analytical input gradient under test is backward(dy = w).
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <vector>

#include "core/backend.h"
#include "core/rng.h"
#include "core/tensor.h"

namespace m2t::test {

using Vec = std::vector<double>;

// The device op tests put their inputs on: the backend under test (BackendTest sets it).
inline Device& current_device() {
  static Device d = Device::cpu();
  return d;
}

// Op tests run once per backend built: TEST_P on a fixture derived from BackendTest, then
// M2T_INSTANTIATE_BACKENDS(Fixture).
class BackendTest : public ::testing::TestWithParam<Backend*> {
 protected:
  void SetUp() override { current_device() = GetParam()->device(); }
  void TearDown() override { current_device() = Device::cpu(); }
  Backend& backend() { return *GetParam(); }
};

inline std::string backend_param_name(const ::testing::TestParamInfo<Backend*>& info) {
  std::string s = info.param->device().str();
  for (char& c : s)
    if (c == ':') c = '_';
  return s;
}

#define M2T_INSTANTIATE_BACKENDS(Fixture) \
  INSTANTIATE_TEST_SUITE_P(Backends, Fixture, ::testing::ValuesIn(::m2t::built_backends()), \
                           ::m2t::test::backend_param_name)

// A tensor's values on the host (bf16 widened to f32).
inline std::vector<float> host(const Tensor& t) {
  std::vector<float> v(t.numel());
  if (t.dtype() == DType::BF16) {
    std::vector<uint16_t> b(t.numel());
    t.copy_to_host(b.data());
    for (size_t i = 0; i < b.size(); ++i) v[i] = bf16_to_f32(b[i]);
    return v;
  }
  t.copy_to_host(v.data());
  return v;
}

inline Vec random_vec(int64_t n, uint64_t seed, double lo = -1, double hi = 1) {
  Vec v(n);
  for (int64_t i = 0; i < n; ++i) v[i] = lo + (hi - lo) * rng::uniform53(seed, i);
  return v;
}

inline Tensor to_tensor(const Vec& v, const Shape& s, Device dev = current_device()) {
  Tensor t(s);
  for (int64_t i = 0; i < t.numel(); ++i) t.data()[i] = static_cast<float>(v[i]);
  return t.to(dev);
}

// v with every value rounded to bf16 (what a bf16 tensor of v holds).
inline Vec bf16_rounded(Vec v) {
  for (double& d : v) d = round_bf16(static_cast<float>(d));
  return v;
}

// v as a bf16 tensor on dev (values rounded to nearest even).
inline Tensor to_bf16_tensor(const Vec& v, const Shape& s, Device dev = current_device()) {
  Tensor t(s, dev, DType::BF16);
  backend_for(dev).cast(to_tensor(v, s, dev), t);
  return t;
}

// The bf16 kernels' contract (docs/algorithm.md, "Mixed precision"): `got`, a bf16 op's output, is
// `ref` — the f32 op's output on the same bf16-rounded inputs — rounded once to bf16. Rounding
// moves a value by at most half a bf16 ulp (2^-9 to 2^-8 of it); the tolerance is one ulp of
// ref[i] (an f32 difference of summation order may push a value across a rounding midpoint) plus
// abs_floor·max|ref| (values near zero, where cancellation leaves f32 accumulation error above their
// own ulp). `got` must also differ from `ref` somewhere when must_round: the bf16 path really ran
// and rounded (an f32 result would pass the tolerance but fail this).
inline void expect_bf16_of(const Tensor& got, const Tensor& ref, const char* what, double abs_floor = 1e-6,
                           bool must_round = true) {
  ASSERT_EQ(got.dtype(), DType::BF16) << what;
  ASSERT_EQ(got.numel(), ref.numel()) << what;
  const std::vector<float> g = host(got), r = host(ref);
  double mag = 0;
  for (float v : r) mag = std::max(mag, std::fabs(static_cast<double>(v)));
  double worst = 0;
  int64_t worst_i = -1, rounded = 0;
  for (size_t i = 0; i < r.size(); ++i) {
    int e = 0;
    std::frexp(r[i], &e);  // |r| in [2^(e-1), 2^e): the bf16 ulp is 2^(e-8)
    const double tol = (r[i] != 0 ? std::ldexp(1.0, e - 8) : 0.0) + abs_floor * mag;
    const double err = std::fabs(static_cast<double>(g[i]) - r[i]) / std::max(tol, 1e-30);
    if (err > worst) worst = err, worst_i = static_cast<int64_t>(i);
    rounded += g[i] != r[i];
  }
  EXPECT_LE(worst, 1.0) << what << ": element " << worst_i << " is " << g[std::max<int64_t>(worst_i, 0)]
                        << ", the f32 op gives " << r[std::max<int64_t>(worst_i, 0)] << " (beyond one bf16 ulp)";
  if (must_round) EXPECT_GT(rounded, 0) << what << ": equals the f32 result everywhere: nothing was rounded to bf16";
}

inline Vec to_vec(const Tensor& t) {
  const std::vector<float> h = host(t);
  return Vec(h.begin(), h.end());
}

inline double dot(const Vec& a, const Vec& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

// Expects `got` (float32 op output) to match the double reference within rel (of max |ref|).
inline void expect_close(const Tensor& got, const Vec& ref, double rel, const char* what) {
  ASSERT_EQ(static_cast<size_t>(got.numel()), ref.size()) << what;
  const std::vector<float> g = host(got);
  double num = 0, den = 1e-12;
  for (size_t i = 0; i < ref.size(); ++i) {
    num = std::max(num, std::fabs(g[i] - ref[i]));
    den = std::max(den, std::fabs(ref[i]));
  }
  EXPECT_LE(num / den, rel) << what << ": max abs error " << num << " vs max |ref| " << den;
}

// Central differences of L at up to `samples` coordinates of x (spread over the whole vector),
// compared with the analytical gradient `ana` relative to max |ana|.
inline void expect_gradient(const std::function<double(const Vec&)>& L, Vec x, const Tensor& ana, double rel,
                            const char* what, int samples = 64, double h = 1e-5) {
  ASSERT_EQ(static_cast<size_t>(ana.numel()), x.size()) << what;
  const std::vector<float> a = host(ana);
  double scale = 1e-12;
  for (int64_t i = 0; i < ana.numel(); ++i) scale = std::max(scale, std::fabs(static_cast<double>(a[i])));
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
    const double err = std::fabs(fd - a[i]) / scale;
    if (err > worst) {
      worst = err;
      worst_i = i;
    }
  }
  EXPECT_LE(worst, rel) << what << ": worst relative gradient error at index " << worst_i;
}

}  // namespace m2t::test
