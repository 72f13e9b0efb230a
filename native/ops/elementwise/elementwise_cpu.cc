// Residual add + ReLU, ReLU backward, in-place add and scale, and the two-view concat.
#include <algorithm>
#include <cstring>

#include "core/error.h"

#include "ops/cpu_backend.h"

namespace m2t::cpu {

void CpuBackend::add_relu(const Tensor& a, const Tensor& b, Tensor& y) {
  if (y.data() != a.data()) y.resize(a.shape());
  const float *pa = a.data(), *pb = b.data();
  float* py = y.data();
  const int64_t n = a.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) py[i] = std::max(pa[i] + pb[i], 0.0f);
}

void CpuBackend::relu_backward(const Tensor& y, Tensor& dy) {
  const float* py = y.data();
  float* pd = dy.data();
  const int64_t n = y.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) pd[i] = py[i] > 0.0f ? pd[i] : 0.0f;
}

void CpuBackend::add_inplace(Tensor& y, const Tensor& x) {
  float* py = y.data();
  const float* px = x.data();
  const int64_t n = y.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) py[i] += px[i];
}

void CpuBackend::scale(Tensor& x, float s) {
  float* p = x.data();
  const int64_t n = x.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] *= s;
}

void CpuBackend::concat2(const Tensor& a, const Tensor& b, Tensor& y) {
  M2T_CHECK(a.ndim() >= 1 && a.shape() == b.shape(), "concat: shapes ", shape_str(a.shape()), " and ",
            shape_str(b.shape()), " differ");
  M2T_CHECK(!y.same_storage(a) && !y.same_storage(b), "concat: output aliases an input");
  Shape s = a.shape();
  s[0] *= 2;
  y.resize(s);
  std::memcpy(y.data(), a.data(), a.nbytes());
  std::memcpy(y.data() + a.numel(), b.data(), b.nbytes());
}

}  // namespace m2t::cpu
