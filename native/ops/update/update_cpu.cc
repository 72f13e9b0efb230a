// Parameter updates: teacher EMA, squared norms (LARS), momentum SGD/LARS steps.
#include "ops/cpu_common.h"

namespace m2t::cpu {

void ema(Tensor& target, const Tensor& source, float tau) {
  float* t = target.data();
  const float* s = source.data();
  const int64_t n = target.numel();
  const float one_minus = 1.0f - tau;
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) t[i] = tau * t[i] + one_minus * s[i];
}

double sum_squares(const Tensor& x) {
  const float* p = x.data();
  const int64_t n = x.numel();
  double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(p[i]) * p[i];
  return s;
}

// SGD (PyTorch): lr_scale = 1, step = lr.  LARS (spec §4): lr_scale = actual_lr, step = 1.
void momentum_update(Tensor& p, const Tensor& g, Tensor& buf, float wd, float momentum, float lr_scale, float step,
                     bool first) {
  float* pp = p.data();
  const float* pg = g.data();
  float* pb = buf.data();
  const int64_t n = p.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float d = lr_scale * (pg[i] + wd * pp[i]);
    pb[i] = first ? d : momentum * pb[i] + d;
    pp[i] -= step * pb[i];
  }
}

}  // namespace m2t::cpu
