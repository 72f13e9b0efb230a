// Residual add + ReLU, ReLU backward, in-place add and scale.
#include <algorithm>

#include "ops/cpu_common.h"

namespace m2t::cpu {

void add_relu(const Tensor& a, const Tensor& b, Tensor& y) {
  if (y.data() != a.data()) y.resize(a.shape());
  const float *pa = a.data(), *pb = b.data();
  float* py = y.data();
  const int64_t n = a.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) py[i] = std::max(pa[i] + pb[i], 0.0f);
}

void relu_backward(const Tensor& y, Tensor& dy) {
  const float* py = y.data();
  float* pd = dy.data();
  const int64_t n = y.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) pd[i] = py[i] > 0.0f ? pd[i] : 0.0f;
}

void add_inplace(Tensor& y, const Tensor& x) {
  float* py = y.data();
  const float* px = x.data();
  const int64_t n = y.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) py[i] += px[i];
}

void scale(Tensor& x, float s) {
  float* p = x.data();
  const int64_t n = x.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] *= s;
}

}  // namespace m2t::cpu
