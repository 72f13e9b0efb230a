// Batch-norm passes on CPU over NHWC rows [M, C], G contiguous groups of M/G rows (one per view).
// Sums accumulate in double: a group can hold ~10^5 rows per channel.
// Activations (x, y, dy, dx) are f32 or bf16, all of one type, or — a bf16 encoder's training
// step (docs/algorithm.md, "Mixed precision") — x and dy f32 (the conv's output and the gradient
// stream) with y, x̂ and dx bf16. bf16 values are widened on load, the arithmetic is the f32
// path's, and outputs are rounded to bf16 once on the store. Statistics, γ, β and their gradients
// stay f32.
//
// NHWC rows are contiguous, so k whole rows form one flat run of L = k·C elements. Loops work on
// runs of L ≥ 256 rather than on rows of C (often 8–64 here), which keeps inner loops long and
// vectorised; per-channel vectors are tiled to length L to match.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "core/cpu_dispatch.h"
#include "ops/cpu_backend.h"

namespace m2t::cpu {
namespace {

constexpr int64_t kMinRun = 256;

int64_t rows_per_run(int64_t C) { return std::max<int64_t>(1, kMinRun / C); }

// Whether two tensors' bytes intersect (views of one arena may, or may not).
bool overlap(const Tensor& a, const Tensor& b) {
  const char *pa = static_cast<const char*>(a.raw()), *pb = static_cast<const char*>(b.raw());
  return a.nbytes() && b.nbytes() && pa < pb + b.nbytes() && pb < pa + a.nbytes();
}

std::vector<float> tile(const float* v, int64_t C, int64_t k) {
  std::vector<float> t(C * k);
  for (int64_t r = 0; r < k; ++r) std::copy(v, v + C, t.begin() + r * C);
  return t;
}

// The backward's ReLU mask is applied where dy is read (in the sums and in dx; relu_masked) instead
// of by a separate pass writing dy·[y > 0] back: the same values summed in the same order.

// The two inner loops, one run each: compiled for AVX2 and AVX-512 too in the portable build
// (core/cpu_dispatch.h), called from inside the OpenMP regions below. (a1, a2) += (x, x·y), x
// masked by [m > 0] when m is given.
M2T_CPU_CLONES void sums_run(double* a1, double* a2, const float* x, const float* y, const float* m, int64_t L) {
  if (m) {
#pragma omp simd
    for (int64_t j = 0; j < L; ++j) {
      const float d = relu_masked(x[j], m[j]);
      a1[j] += d;
      a2[j] += static_cast<double>(d) * y[j];
    }
    return;
  }
#pragma omp simd
  for (int64_t j = 0; j < L; ++j) {
    a1[j] += x[j];
    a2[j] += static_cast<double>(x[j]) * y[j];
  }
}

// The same two loops over bf16 runs (widened to f32 on load, y rounded on the store).
M2T_CPU_CLONES void sums_run(double* a1, double* a2, const uint16_t* x, const uint16_t* y, const uint16_t* m,
                             int64_t L) {
  if (m) {
#pragma omp simd
    for (int64_t j = 0; j < L; ++j) {
      const float d = relu_masked(bf16_to_f32(x[j]), m[j]);
      a1[j] += d;
      a2[j] += static_cast<double>(d) * bf16_to_f32(y[j]);
    }
    return;
  }
#pragma omp simd
  for (int64_t j = 0; j < L; ++j) {
    const float xv = bf16_to_f32(x[j]);
    a1[j] += xv;
    a2[j] += static_cast<double>(xv) * bf16_to_f32(y[j]);
  }
}

// Σ dy and Σ dy·x̂ over an f32 dy and a bf16 x̂ (bn_backward_xhat), dy masked by the bf16 y.
M2T_CPU_CLONES void sums_run(double* a1, double* a2, const float* x, const uint16_t* y, const uint16_t* m,
                             int64_t L) {
  if (m) {
#pragma omp simd
    for (int64_t j = 0; j < L; ++j) {
      const float d = relu_masked(x[j], m[j]);
      a1[j] += d;
      a2[j] += static_cast<double>(d) * bf16_to_f32(y[j]);
    }
    return;
  }
#pragma omp simd
  for (int64_t j = 0; j < L; ++j) {
    a1[j] += x[j];
    a2[j] += static_cast<double>(x[j]) * bf16_to_f32(y[j]);
  }
}

// The statistics' (Σx, Σx²): sums_run with y = x, each x loaded and widened once (the same doubles
// summed in the same order; ~30 % less time than loading x twice, measured on [32,28,28,256] f32).
M2T_CPU_CLONES void sums_sq_run(double* a1, double* a2, const float* x, int64_t L) {
#pragma omp simd
  for (int64_t j = 0; j < L; ++j) {
    const double d = x[j];
    a1[j] += d;
    a2[j] += d * d;
  }
}

M2T_CPU_CLONES void sums_sq_run(double* a1, double* a2, const uint16_t* x, int64_t L) {
#pragma omp simd
  for (int64_t j = 0; j < L; ++j) {
    const double d = bf16_to_f32(x[j]);
    a1[j] += d;
    a2[j] += d * d;
  }
}

// bf16 y from f32 x (and bf16 w): bn_apply's f32 → bf16 normalisation (plus a bf16 residual R when
// given) and bn_backward_xhat's dx (x = dy masked by [m > 0] when m is given).
M2T_CPU_CLONES void affine_run(uint16_t* y, const float* x, const uint16_t* w, const uint16_t* m, const uint16_t* R,
                               int64_t L, const float* A, const float* B, const float* Mu, const float* S, bool relu) {
  if (w && m) {
#pragma omp simd
    for (int64_t j = 0; j < L; ++j)
      y[j] = f32_to_bf16(A[j] * relu_masked(x[j], m[j]) + B[j] * (bf16_to_f32(w[j]) - Mu[j]) + S[j]);
  } else if (w) {
#pragma omp simd
    for (int64_t j = 0; j < L; ++j) y[j] = f32_to_bf16(A[j] * x[j] + B[j] * (bf16_to_f32(w[j]) - Mu[j]) + S[j]);
  } else if (R) {
    const float lo = relu ? 0.0f : -INFINITY;
#pragma omp simd
    for (int64_t j = 0; j < L; ++j) y[j] = f32_to_bf16(std::max(A[j] * x[j] + S[j] + bf16_to_f32(R[j]), lo));
  } else if (relu) {
#pragma omp simd
    for (int64_t j = 0; j < L; ++j) y[j] = f32_to_bf16(std::max(A[j] * x[j] + S[j], 0.0f));
  } else {
#pragma omp simd
    for (int64_t j = 0; j < L; ++j) y[j] = f32_to_bf16(A[j] * x[j] + S[j]);
  }
}

// y = A·x + S (+ R when given; then ReLU if relu) and x̂ = (x − Mu)·Is, both rounded to bf16, over
// one f32 run.
M2T_CPU_CLONES void norm_run(uint16_t* y, uint16_t* xh, const float* x, const uint16_t* R, int64_t L, const float* A,
                             const float* S, const float* Mu, const float* Is, bool relu) {
  const float lo = relu ? 0.0f : -INFINITY;
  if (R) {
#pragma omp simd
    for (int64_t j = 0; j < L; ++j) {
      y[j] = f32_to_bf16(std::max(A[j] * x[j] + S[j] + bf16_to_f32(R[j]), lo));
      xh[j] = f32_to_bf16((x[j] - Mu[j]) * Is[j]);
    }
    return;
  }
#pragma omp simd
  for (int64_t j = 0; j < L; ++j) {
    y[j] = f32_to_bf16(std::max(A[j] * x[j] + S[j], lo));
    xh[j] = f32_to_bf16((x[j] - Mu[j]) * Is[j]);
  }
}

M2T_CPU_CLONES void affine_run(uint16_t* y, const uint16_t* x, const uint16_t* w, const uint16_t* m,
                               const uint16_t* R, int64_t L, const float* A, const float* B, const float* Mu,
                               const float* S, bool relu) {
  if (w && m) {
#pragma omp simd
    for (int64_t j = 0; j < L; ++j)
      y[j] = f32_to_bf16(A[j] * relu_masked(bf16_to_f32(x[j]), m[j]) + B[j] * (bf16_to_f32(w[j]) - Mu[j]) + S[j]);
  } else if (w) {
#pragma omp simd
    for (int64_t j = 0; j < L; ++j)
      y[j] = f32_to_bf16(A[j] * bf16_to_f32(x[j]) + B[j] * (bf16_to_f32(w[j]) - Mu[j]) + S[j]);
  } else if (R) {
    const float lo = relu ? 0.0f : -INFINITY;
#pragma omp simd
    for (int64_t j = 0; j < L; ++j)
      y[j] = f32_to_bf16(std::max(A[j] * bf16_to_f32(x[j]) + S[j] + bf16_to_f32(R[j]), lo));
  } else if (relu) {
#pragma omp simd
    for (int64_t j = 0; j < L; ++j) y[j] = f32_to_bf16(std::max(A[j] * bf16_to_f32(x[j]) + S[j], 0.0f));
  } else {
#pragma omp simd
    for (int64_t j = 0; j < L; ++j) y[j] = f32_to_bf16(A[j] * bf16_to_f32(x[j]) + S[j]);
  }
}

// y = A·x + B·(w − Mu) + S (w may be null; then + R when given, then ReLU if relu), elementwise over
// one run; with w, x may be masked by [m > 0] (m given: the backward's dy and its ReLU mask). A·x + S
// is rounded to f32 before R is added: the bits of the unfused affine map then residual add.
M2T_CPU_CLONES void affine_run(float* y, const float* x, const float* w, const float* m, const float* R, int64_t L,
                               const float* A, const float* B, const float* Mu, const float* S, bool relu) {
  if (w && m) {
#pragma omp simd
    for (int64_t j = 0; j < L; ++j) y[j] = A[j] * relu_masked(x[j], m[j]) + B[j] * (w[j] - Mu[j]) + S[j];
  } else if (w) {
#pragma omp simd
    for (int64_t j = 0; j < L; ++j) y[j] = A[j] * x[j] + B[j] * (w[j] - Mu[j]) + S[j];
  } else if (R) {
    const float lo = relu ? 0.0f : -INFINITY;
#pragma omp simd
    for (int64_t j = 0; j < L; ++j) y[j] = std::max(A[j] * x[j] + S[j] + R[j], lo);
  } else if (relu) {
#pragma omp simd
    for (int64_t j = 0; j < L; ++j) y[j] = std::max(A[j] * x[j] + S[j], 0.0f);
  } else {
#pragma omp simd
    for (int64_t j = 0; j < L; ++j) y[j] = A[j] * x[j] + S[j];
  }
}

// u[i], or u[i]·[m[i] > 0] when a mask m is given.
template <typename TU, typename TM>
float masked_load(const TU* u, const TM* m, int64_t i) {
  return m ? relu_masked(load(u[i]), m[i]) : load(u[i]);
}

// (s1[c], s2[c]) = Σ over rows [r0, r1) of (d[i], d[i]·v[i]), d = u masked by [m > 0] (m may be
// null), where i runs over channel c's elements. One pass; double accumulators per thread, one
// per element of a run, folded into channels at the end.
template <typename TU, typename TV>
void channel_sums(const TU* u, const TV* v, const TV* m, int64_t r0, int64_t r1, int64_t C, double* s1, double* s2) {
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
      const int64_t base = (r0 + q * k) * C;
      if constexpr (std::is_same_v<TU, TV>) {
        if (static_cast<const void*>(u) == v && !m) {  // bn_stats: Σx, Σx²
          sums_sq_run(a1, a2, u + base, L);
          continue;
        }
      }
      sums_run(a1, a2, u + base, v + base, m ? m + base : nullptr, L);
    }
#pragma omp critical
    for (int64_t j = 0; j < L; ++j) {
      s1[j % C] += a1[j];
      s2[j % C] += a2[j];
    }
  }
  for (int64_t i = (r0 + runs * k) * C; i < r1 * C; ++i) {
    const float d = masked_load(u, m, i);
    s1[i % C] += d;
    s2[i % C] += static_cast<double>(d) * load(v[i]);
  }
}

// dst[i] = a[c]·u[i] + b[c]·(v[i] − m[c]) + s[c] (v may be null; then + res[i] when res is given;
// ReLU if relu) over rows [r0, r1); with v, u may be masked by [mask > 0] (the backward's dy).
template <typename TD, typename TU, typename TV>
void affine_rows(TD* dst, const TU* u, const TV* v, const TV* mask, const TD* res, int64_t r0, int64_t r1, int64_t C,
                 const float* a, const float* b, const float* m, const float* s, bool relu) {
  const int64_t k = rows_per_run(C), L = k * C;
  const std::vector<float> ta = tile(a, C, k), ts = tile(s, C, k), tb = v ? tile(b, C, k) : std::vector<float>(),
                           tm = v ? tile(m, C, k) : std::vector<float>();
  const float *A = ta.data(), *B = tb.data(), *S = ts.data(), *Mu = tm.data();
  const int64_t runs = (r1 - r0) / k;
#pragma omp parallel for schedule(static)
  for (int64_t q = 0; q < runs; ++q) {
    const int64_t base = (r0 + q * k) * C;
    affine_run(dst + base, u + base, v ? v + base : nullptr, v && mask ? mask + base : nullptr,
               !v && res ? res + base : nullptr, L, A, B, Mu, S, relu);
  }
  for (int64_t r = r0 + runs * k; r < r1; ++r)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t i = r * C + c;
      float y = a[c] * masked_load(u, v ? mask : nullptr, i) + (v ? b[c] * (load(v[i]) - m[c]) : 0.0f) + s[c];
      if (!v && res) y += load(res[i]);
      store(dst[i], relu ? std::max(y, 0.0f) : y);
    }
}

}  // namespace

// mean = Σx/n, biased variance = Σx²/n − mean² (in double: exact enough for float inputs).
void CpuBackend::bn_stats(const Tensor& x, int64_t C, int G, Tensor& mean_t, Tensor& var_t) {
  const int64_t M = x.numel() / C, Mg = M / G;
  mean_t.resize({G * C});
  var_t.resize({G * C});
  float* mean = mean_t.data();
  float* var = var_t.data();
  std::vector<double> s1(C), s2(C);
  for (int g = 0; g < G; ++g) {
    with_act_type(x.dtype(), "batch norm", [&](auto t) {
      using T = decltype(t);
      channel_sums<T, T>(elems<T>(x), elems<T>(x), nullptr, g * Mg, (g + 1) * Mg, C, s1.data(), s2.data());
    });
    for (int64_t c = 0; c < C; ++c) {
      const double m = s1[c] / Mg;
      mean[g * C + c] = static_cast<float>(m);
      var[g * C + c] = static_cast<float>(std::max(s2[c] / Mg - m * m, 0.0));
    }
  }
}

namespace {
// Error unless the residual r (when given) has y's dtype and x's element count.
void check_residual(const char* what, const Tensor* r, const Tensor& x, DType y) {
  if (!r) return;
  M2T_CHECK(r->dtype() == y && r->numel() == x.numel(), what, ": residual ", dtype_name(r->dtype()), " ",
            shape_str(r->shape()), ", expected ", dtype_name(y), " ", shape_str(x.shape()));
}
}  // namespace

void CpuBackend::bn_apply(const Tensor& x, int64_t C, int G, const Tensor& scale_t, const Tensor& shift_t,
                          const Tensor* residual, bool relu, Tensor& y) {
  const float* scale = scale_t.data();
  const float* shift = shift_t.data();
  const int64_t M = x.numel() / C, Mg = M / G;
  if (x.dtype() == DType::F32 && y.dtype() == DType::BF16) {
    M2T_CHECK(!overlap(x, y), "batch norm: a bf16 output overlaps its f32 input");
    check_residual("batch norm", residual, x, DType::BF16);
    // A bf16 encoder's f32 conv output, normalised into its bf16 activation.
    y.resize(x.shape());
    const uint16_t* r = residual ? elems<uint16_t>(*residual) : nullptr;
    for (int g = 0; g < G; ++g)
      affine_rows<uint16_t, float, uint16_t>(elems<uint16_t>(y), x.data(), nullptr, nullptr, r, g * Mg, (g + 1) * Mg,
                                             C, scale + g * C, nullptr, nullptr, shift + g * C, relu);
    return;
  }
  if (y.raw() != x.raw()) y.resize_as(x.shape(), x.dtype(), "batch norm");
  check_dtypes("batch norm", x.dtype(), {&y});
  check_residual("batch norm", residual, x, x.dtype());
  with_act_type(x.dtype(), "batch norm", [&](auto t) {
    using T = decltype(t);
    const T* r = residual ? elems<T>(*residual) : nullptr;
    for (int g = 0; g < G; ++g)
      affine_rows<T, T, T>(elems<T>(y), elems<T>(x), nullptr, nullptr, r, g * Mg, (g + 1) * Mg, C, scale + g * C,
                           nullptr, nullptr, shift + g * C, relu);
  });
}

void CpuBackend::bn_apply_xhat(const Tensor& x, int64_t C, int G, const Tensor& scale_t, const Tensor& shift_t,
                               const Tensor& mean_t, const Tensor& invstd_t, const Tensor* residual, bool relu,
                               Tensor& y, Tensor& xhat) {
  M2T_CHECK(x.dtype() == DType::F32, "batch norm (x̂): input is ", dtype_name(x.dtype()), ", expected f32");
  y.resize_as(x.shape(), DType::BF16, "batch norm (x̂)");
  xhat.resize_as(x.shape(), DType::BF16, "batch norm (x̂)");
  M2T_CHECK(!overlap(y, x) && !overlap(xhat, x) && !overlap(xhat, y),
            "batch norm (x̂): outputs alias each other or the input");
  check_residual("batch norm (x̂)", residual, x, DType::BF16);
  M2T_CHECK(!residual || !overlap(*residual, xhat), "batch norm (x̂): the residual overlaps x̂");
  const uint16_t* pr = residual ? elems<uint16_t>(*residual) : nullptr;
  const int64_t M = x.numel() / C, Mg = M / G;
  const int64_t k = rows_per_run(C), L = k * C;
  const float* px = x.data();
  uint16_t* py = elems<uint16_t>(y);
  uint16_t* ph = elems<uint16_t>(xhat);
  for (int g = 0; g < G; ++g) {
    const float *a = scale_t.data() + g * C, *s = shift_t.data() + g * C, *mu = mean_t.data() + g * C,
                *is = invstd_t.data() + g * C;
    const std::vector<float> ta = tile(a, C, k), ts = tile(s, C, k), tm = tile(mu, C, k), ti = tile(is, C, k);
    const int64_t r0 = g * Mg, r1 = r0 + Mg, runs = Mg / k;
#pragma omp parallel for schedule(static)
    for (int64_t q = 0; q < runs; ++q) {
      const int64_t base = (r0 + q * k) * C;
      norm_run(py + base, ph + base, px + base, pr ? pr + base : nullptr, L, ta.data(), ts.data(), tm.data(),
               ti.data(), relu);
    }
    for (int64_t i = (r0 + runs * k) * C; i < r1 * C; ++i) {
      const int64_t c = i % C;
      float v = a[c] * px[i] + s[c];
      if (pr) v += load(pr[i]);
      store(py[i], relu ? std::max(v, 0.0f) : v);
      store(ph[i], (px[i] - mu[c]) * is[c]);
    }
  }
}

// With x̂ = (x − μ)·s (s = invstd), per group and channel:
//   dβ = Σ dy,  dγ = Σ dy·x̂,  dx = γ·s·(dy − dβ/M − x̂·dγ/M) = a·dy − e·(x − μ) − b,
// a = γs, b = γs·dβ/M, e = γs²·dγ/M. dy·[y > 0] in place of dy when the ReLU output y is given.
namespace {
template <typename T>
void bn_backward_rows(const T* px, const T* pdy, const T* py, T* pdx, int64_t C, int G, int64_t Mg, const float* mean,
                      const float* invstd, const float* gamma, float* dgamma, float* dbeta) {
  std::vector<double> sdy(C), sdyx(C);
  std::vector<float> a(C), e(C), shift(C);
  for (int g = 0; g < G; ++g) {
    const int64_t r0 = g * Mg, r1 = r0 + Mg;
    const float* mu = mean + g * C;
    const float* is = invstd + g * C;
    // Σ dy·(x − μ) = Σ dy·x − μ·Σ dy
    channel_sums<T, T>(pdy, px, py, r0, r1, C, sdy.data(), sdyx.data());
    for (int64_t c = 0; c < C; ++c) {
      sdyx[c] -= mu[c] * sdy[c];
      const double dgam = sdyx[c] * is[c];
      dgamma[c] += static_cast<float>(dgam);
      dbeta[c] += static_cast<float>(sdy[c]);
      a[c] = gamma[c] * is[c];
      e[c] = static_cast<float>(-gamma[c] * is[c] * is[c] * dgam / Mg);
      shift[c] = static_cast<float>(-gamma[c] * is[c] * sdy[c] / Mg);
    }
    affine_rows<T, T, T>(pdx, pdy, px, py, nullptr, r0, r1, C, a.data(), e.data(), mu, shift.data(), false);
  }
}
}  // namespace

void CpuBackend::bn_backward(const Tensor& x, const Tensor* y_relu, const Tensor& dy, int64_t C, int G,
                             const Tensor& mean_t, const Tensor& invstd_t, const Tensor& gamma_t, Tensor& dx,
                             Tensor& dgamma_t, Tensor& dbeta_t) {
  const float* mean = mean_t.data();
  const float* invstd = invstd_t.data();
  const float* gamma = gamma_t.data();
  float* dgamma = dgamma_t.data();
  float* dbeta = dbeta_t.data();
  const int64_t M = x.numel() / C, Mg = M / G;
  check_dtypes("batch norm backward", x.dtype(), {&dy});
  M2T_CHECK(dy.numel() == x.numel(), "batch norm backward: dy ", shape_str(dy.shape()), " and x ",
            shape_str(x.shape()), " differ");
  if (y_relu) {
    check_dtypes("batch norm backward", x.dtype(), {y_relu});
    M2T_CHECK(y_relu->numel() == x.numel(), "batch norm backward: y ", shape_str(y_relu->shape()), " and x ",
              shape_str(x.shape()), " differ");
  }
  dx.resize_as(x.shape(), x.dtype(), "batch norm backward");
  check_dtypes("batch norm backward", x.dtype(), {&dx});
  with_act_type(x.dtype(), "batch norm backward", [&](auto t) {
    using T = decltype(t);
    bn_backward_rows<T>(elems<T>(x), elems<T>(dy), y_relu ? elems<T>(*y_relu) : nullptr, elems<T>(dx), C, G, Mg, mean,
                        invstd, gamma, dgamma, dbeta);
  });
}

// From x̂ = (x − μ)·s instead of x: dγ = Σ dy·x̂ and dx = a·dy + e′·x̂ + b, a = γs,
// e′ = −γs·dγ/M, b = −γs·dβ/M (the form above with e·(x − μ) = (e/s)·x̂).
void CpuBackend::bn_backward_xhat(const Tensor& xhat, const Tensor* y_relu, const Tensor& dy, int64_t C, int G,
                                  const Tensor& invstd_t, const Tensor& gamma_t, Tensor& dx, Tensor& dgamma_t,
                                  Tensor& dbeta_t) {
  M2T_CHECK(xhat.dtype() == DType::BF16 && dy.dtype() == DType::F32, "batch norm backward (x̂): x̂ is ",
            dtype_name(xhat.dtype()), " and dy ", dtype_name(dy.dtype()), ", expected bf16 and f32");
  M2T_CHECK(dy.numel() == xhat.numel(), "batch norm backward (x̂): dy ", shape_str(dy.shape()), " and x̂ ",
            shape_str(xhat.shape()), " differ");
  if (y_relu)
    M2T_CHECK(y_relu->dtype() == DType::BF16 && y_relu->numel() == xhat.numel(), "batch norm backward (x̂): y is ",
              dtype_name(y_relu->dtype()), " ", shape_str(y_relu->shape()), ", expected bf16 ",
              shape_str(xhat.shape()));
  dx.resize_as(xhat.shape(), DType::BF16, "batch norm backward (x̂)");
  const float* invstd = invstd_t.data();
  const float* gamma = gamma_t.data();
  float* dgamma = dgamma_t.data();
  float* dbeta = dbeta_t.data();
  const int64_t M = xhat.numel() / C, Mg = M / G;
  const uint16_t* ph = elems<uint16_t>(xhat);
  const float* pdy = dy.data();
  const uint16_t* py = y_relu ? elems<uint16_t>(*y_relu) : nullptr;
  uint16_t* pdx = elems<uint16_t>(dx);
  std::vector<double> sdy(C), sdyh(C);
  std::vector<float> a(C), e(C), shift(C), zero(C, 0.0f);
  for (int g = 0; g < G; ++g) {
    const int64_t r0 = g * Mg, r1 = r0 + Mg;
    const float* is = invstd + g * C;
    channel_sums<float, uint16_t>(pdy, ph, py, r0, r1, C, sdy.data(), sdyh.data());
    for (int64_t c = 0; c < C; ++c) {
      dgamma[c] += static_cast<float>(sdyh[c]);
      dbeta[c] += static_cast<float>(sdy[c]);
      a[c] = gamma[c] * is[c];
      e[c] = static_cast<float>(-gamma[c] * is[c] * sdyh[c] / Mg);
      shift[c] = static_cast<float>(-gamma[c] * is[c] * sdy[c] / Mg);
    }
    affine_rows<uint16_t, float, uint16_t>(pdx, pdy, ph, py, nullptr, r0, r1, C, a.data(), e.data(), zero.data(),
                                           shift.data(), false);
  }
}

// --- folding statistics into the affine map (per-channel, cheap; docs/algorithm.md, "Batch norm") ---

constexpr float kEps = 1e-5f;

static double unbias_of(int64_t n) { return n > 1 ? static_cast<double>(n) / static_cast<double>(n - 1) : 1.0; }

void CpuBackend::bn_fold_train(const Tensor& mean_t, const Tensor& var_t, int64_t n, const Tensor& gamma,
                               const Tensor& beta, Tensor& running_mean, Tensor& running_var,
                               Tensor& num_batches_tracked, Tensor& invstd_t, Tensor& scale_t, Tensor& shift_t) {
  const int64_t C = gamma.numel(), G = mean_t.numel() / C;
  invstd_t.resize({G * C});
  scale_t.resize({G * C});
  shift_t.resize({G * C});
  const float *mean = mean_t.data(), *var = var_t.data(), *g = gamma.data(), *b = beta.data();
  float *invstd = invstd_t.data(), *scale = scale_t.data(), *shift = shift_t.data();
  float *rm = running_mean.data(), *rv = running_var.data();
  const double unbias = unbias_of(n);
  for (int64_t i = 0; i < G; ++i)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t k = i * C + c;
      invstd[k] = 1.0f / std::sqrt(var[k] + kEps);
      scale[k] = g[c] * invstd[k];
      shift[k] = b[c] - mean[k] * scale[k];
      rm[c] = 0.9f * rm[c] + 0.1f * mean[k];
      rv[c] = 0.9f * rv[c] + 0.1f * static_cast<float>(var[k] * unbias);
    }
  num_batches_tracked.data()[0] += static_cast<float>(G);
}

void CpuBackend::bn_fold_infer(const Tensor& running_mean, const Tensor& running_var, const Tensor& gamma,
                               const Tensor& beta, int G, Tensor& scale_t, Tensor& shift_t) {
  const int64_t C = gamma.numel();
  scale_t.resize({G * C});
  shift_t.resize({G * C});
  const float *g = gamma.data(), *b = beta.data(), *rm = running_mean.data(), *rv = running_var.data();
  float *scale = scale_t.data(), *shift = shift_t.data();
  for (int i = 0; i < G; ++i)
    for (int64_t c = 0; c < C; ++c) {
      const float s = g[c] / std::sqrt(rv[c] + kEps);
      scale[i * C + c] = s;
      shift[i * C + c] = b[c] - rm[c] * s;
    }
}

void CpuBackend::bn_fold_momentum(const Tensor& mean_t, const Tensor& var_t, int64_t n, const Tensor& gamma,
                                  const Tensor& beta, const Tensor& running_mean, const Tensor& running_var,
                                  double alpha, bool double_unbias, Tensor& scale_t, Tensor& shift_t) {
  const int64_t C = gamma.numel(), G = mean_t.numel() / C;
  scale_t.resize({G * C});
  shift_t.resize({G * C});
  const float *mb = mean_t.data(), *vb = var_t.data(), *g = gamma.data(), *b = beta.data();
  const float *rm = running_mean.data(), *rv = running_var.data();
  float *scale = scale_t.data(), *shift = shift_t.data();
  const double unbias = unbias_of(n), extra = double_unbias ? unbias : 1.0, a = alpha;
  for (int64_t i = 0; i < G; ++i)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t k = i * C + c;
      const double v_unb = vb[k] * unbias;  // batch variance, unbiased
      const double mu_t = a * mb[k] + (1 - a) * rm[c];
      const double v_t = a * v_unb * extra + (1 - a) * rv[c];
      const double s = g[c] / std::sqrt(v_t + kEps);
      scale[k] = static_cast<float>(s);
      shift[k] = static_cast<float>(b[c] - mu_t * s);
    }
}

void CpuBackend::bn_momentum_update(const Tensor& mean_t, const Tensor& var_t, int grp, int64_t n, double alpha,
                                    bool double_unbias, bool stash_full, Tensor& stash_mean, Tensor& stash_var,
                                    Tensor& running_mean, Tensor& running_var) {
  const int64_t C = running_mean.numel();
  const float* mb = mean_t.data() + grp * C;
  const float* vb = var_t.data() + grp * C;
  float *sm = stash_mean.data(), *sv = stash_var.data(), *rm = running_mean.data(), *rv = running_var.data();
  const double unbias = unbias_of(n), extra = double_unbias ? unbias : 1.0;
  if (!stash_full) {
    for (int64_t c = 0; c < C; ++c) {
      sm[c] = mb[c];
      sv[c] = static_cast<float>(vb[c] * unbias);
    }
    return;
  }
  for (int64_t c = 0; c < C; ++c) {
    const double m = 0.5 * (mb[c] + sm[c]);
    const double v = 0.5 * (vb[c] * unbias + sv[c]) * extra;
    rm[c] = static_cast<float>(alpha * m + (1 - alpha) * rm[c]);
    rv[c] = static_cast<float>(alpha * v + (1 - alpha) * rv[c]);
  }
}

}  // namespace m2t::cpu
