// Parameter updates: teacher EMA, squared norms (LARS), momentum SGD/LARS steps over flat arenas.
// Each update can also add Σ x·0 over what it wrote to a non-finite flag (core/backend.h): one
// multiply-add per element in the loop that writes it, instead of a second pass over the state.
#include <cmath>

#include "core/error.h"
#include "ops/cpu_backend.h"

namespace m2t::cpu {

namespace {

float* flag_of(Tensor* f) {
  if (!f) return nullptr;
  M2T_CHECK(f->numel() == 1 && f->dtype() == DType::F32, "non-finite flag must be one f32, got ",
            shape_str(f->shape()));
  return f->data();
}

// Σ x·0 over x[0..n): 0 when every x is finite, NaN otherwise.
float zero_sum(const float* x, int64_t n) {
  float acc = 0;
#pragma omp parallel for simd reduction(+ : acc) schedule(static) if (n > (int64_t(1) << 15))
  for (int64_t i = 0; i < n; ++i) acc += x[i] * 0.0f;
  return acc;
}

double sum_squares_range(const float* p, int64_t n) {
  double s = 0;
#pragma omp parallel for reduction(+ : s) schedule(static)
  for (int64_t i = 0; i < n; ++i) s += static_cast<double>(p[i]) * p[i];
  return s;
}

// buf ← μ·buf + lr_scale·(g + wd·p) (buf = that when first); p ← p − step·buf; flag += Σ p·0 when given
// (computed either way: one multiply-add per element, a loop body of one shape).
void momentum_range(float* pp, const float* pg, float* pb, int64_t n, float wd, float momentum, float lr_scale,
                    float step, bool first, float* flag) {
  float acc = 0;
#pragma omp parallel for simd reduction(+ : acc) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    const float d = lr_scale * (pg[i] + wd * pp[i]);
    pb[i] = first ? d : momentum * pb[i] + d;
    pp[i] -= step * pb[i];
    acc += pp[i] * 0.0f;
  }
  if (flag) *flag += acc;
}

}  // namespace

void CpuBackend::accumulate_nonfinite(const Tensor& x, Tensor& flag) {
  M2T_CHECK(x.dtype() == DType::F32, "accumulate_nonfinite: f32 tensor expected, got ", dtype_name(x.dtype()));
  *flag_of(&flag) += zero_sum(x.data(), x.numel());
}

void CpuBackend::ema(Tensor& target, const Tensor& source, float tau, Tensor* nonfinite) {
  float* t = target.data();
  const float* s = source.data();
  const int64_t n = target.numel();
  const float one_minus = 1.0f - tau;
  float acc = 0;
#pragma omp parallel for simd reduction(+ : acc) schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    t[i] = tau * t[i] + one_minus * s[i];
    acc += t[i] * 0.0f;
  }
  if (float* flag = flag_of(nonfinite)) *flag += acc;
}

double CpuBackend::sum_squares(const Tensor& x) { return sum_squares_range(x.data(), x.numel()); }

// SGD (PyTorch): lr_scale = 1, step = lr.  LARS (docs/algorithm.md, "LARS"): lr_scale = actual_lr, step = 1.
void CpuBackend::momentum_update(Tensor& p, const Tensor& g, Tensor& buf, float wd, float momentum, float lr_scale,
                                 float step, bool first, Tensor* nonfinite) {
  momentum_range(p.data(), g.data(), buf.data(), p.numel(), wd, momentum, lr_scale, step, first, flag_of(nonfinite));
}

void CpuBackend::sgd_update(Tensor& p, const Tensor& g, Tensor& buf, float wd, float momentum, float lr, bool first,
                            Tensor* nonfinite) {
  momentum_range(p.data(), g.data(), buf.data(), p.numel(), wd, momentum, 1.0f, lr, first, flag_of(nonfinite));
}

// Per segment: the LARS trust ratio from ‖p‖ and ‖g‖ (in double, as the reference's float64
// scalars), then the momentum step with step size 1. Padding between segments is never written
// (it stays zero), so the flag covers exactly the parameters.
void CpuBackend::lars_update(Tensor& p, const Tensor& g, Tensor& buf, const std::vector<Segment>& segments, double lr,
                             double eta, double wd, float momentum, Tensor* nonfinite) {
  float* flag = flag_of(nonfinite);
  for (const Segment& s : segments) {
    float* pp = p.data() + s.offset;
    const float* pg = g.data() + s.offset;
    double actual = lr;
    if (s.lars_adapted) {
      const double pn = std::sqrt(sum_squares_range(pp, s.numel)), gn = std::sqrt(sum_squares_range(pg, s.numel));
      if (pn * gn > 1e-8) actual = lr * eta * pn / (gn + wd * pn);
    }
    momentum_range(pp, pg, buf.data() + s.offset, s.numel, static_cast<float>(wd), momentum,
                   static_cast<float>(actual), 1.0f, false, flag);
  }
}

}  // namespace m2t::cpu
