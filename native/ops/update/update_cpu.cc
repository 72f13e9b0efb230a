// Parameter updates: teacher EMA, squared norms (LARS), momentum SGD/LARS steps over flat arenas.
#include <cmath>

#include "ops/cpu_backend.h"

namespace m2t::cpu {

void CpuBackend::ema(Tensor& target, const Tensor& source, float tau) {
  float* t = target.data();
  const float* s = source.data();
  const int64_t n = target.numel();
  const float one_minus = 1.0f - tau;
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) t[i] = tau * t[i] + one_minus * s[i];
}

namespace {

double sum_squares_range(const float* p, int64_t n) {
  double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(p[i]) * p[i];
  return s;
}

void momentum_range(float* pp, const float* pg, float* pb, int64_t n, float wd, float momentum, float lr_scale,
                    float step, bool first) {
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float d = lr_scale * (pg[i] + wd * pp[i]);
    pb[i] = first ? d : momentum * pb[i] + d;
    pp[i] -= step * pb[i];
  }
}

}  // namespace

double CpuBackend::sum_squares(const Tensor& x) { return sum_squares_range(x.data(), x.numel()); }

// SGD (PyTorch): lr_scale = 1, step = lr.  LARS (docs/algorithm.md, "LARS"): lr_scale = actual_lr, step = 1.
void CpuBackend::momentum_update(Tensor& p, const Tensor& g, Tensor& buf, float wd, float momentum, float lr_scale, float step,
                     bool first) {
  momentum_range(p.data(), g.data(), buf.data(), p.numel(), wd, momentum, lr_scale, step, first);
}

void CpuBackend::sgd_update(Tensor& p, const Tensor& g, Tensor& buf, float wd, float momentum, float lr, bool first) {
  momentum_range(p.data(), g.data(), buf.data(), p.numel(), wd, momentum, 1.0f, lr, first);
}

// Per segment: the LARS trust ratio from ‖p‖ and ‖g‖ (in double, as the reference's float64
// scalars), then the momentum step with step size 1.
void CpuBackend::lars_update(Tensor& p, const Tensor& g, Tensor& buf, const std::vector<Segment>& segments, double lr,
                             double eta, double wd, float momentum) {
  for (const Segment& s : segments) {
    float* pp = p.data() + s.offset;
    const float* pg = g.data() + s.offset;
    double actual = lr;
    if (s.lars_adapted) {
      const double pn = std::sqrt(sum_squares_range(pp, s.numel)), gn = std::sqrt(sum_squares_range(pg, s.numel));
      if (pn * gn > 1e-8) actual = lr * eta * pn / (gn + wd * pn);
    }
    momentum_range(pp, pg, buf.data() + s.offset, s.numel, static_cast<float>(wd), momentum,
                   static_cast<float>(actual), 1.0f, false);
  }
}

}  // namespace m2t::cpu
