// Residual add + ReLU, ReLU backward, in-place add (also fused with a ReLU mask) and scale, the two-view concat and the f32 ↔ bf16
// cast. Activations f32 or bf16 (core/backend.h); bf16 arithmetic happens in f32 and rounds once
// on the store.
#include <algorithm>
#include <cstring>

#include "core/cpu_dispatch.h"
#include "core/error.h"

#include "ops/cpu_backend.h"

namespace m2t::cpu {
namespace {

// The loops, one chunk each, compiled for AVX2 and AVX-512 too (core/cpu_dispatch.h: the library's
// baseline is x86-64-v2) and called from the OpenMP regions below. Elementwise and exact apart
// from the one rounding of a bf16 store, so every clone gives the same bits.
constexpr int64_t kChunk = 8192;

template <typename F>
void chunked(int64_t n, F&& f) {
  const int64_t chunks = (n + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static)
  for (int64_t q = 0; q < chunks; ++q) f(q * kChunk, std::min(kChunk, n - q * kChunk));
}

#define M2T_ADD_RELU_RUN(T)                                                              \
  M2T_CPU_CLONES void add_relu_run(T* y, const T* a, const T* b, int64_t L) {            \
    _Pragma("omp simd") for (int64_t i = 0; i < L; ++i) store(y[i], std::max(load(a[i]) + load(b[i]), 0.0f)); \
  }
M2T_ADD_RELU_RUN(float)
M2T_ADD_RELU_RUN(uint16_t)

#define M2T_ADD_RUN(T)                                                                   \
  M2T_CPU_CLONES void add_run(T* y, const T* x, int64_t L) {                             \
    _Pragma("omp simd") for (int64_t i = 0; i < L; ++i) store(y[i], load(y[i]) + load(x[i])); \
  }
M2T_ADD_RUN(float)
M2T_ADD_RUN(uint16_t)

// Zeroing is exact in either type: the kept values are not re-rounded.
#define M2T_MASK_RUN(TY, TD)                                                             \
  M2T_CPU_CLONES void mask_run(const TY* y, TD* d, int64_t L) {                          \
    _Pragma("omp simd") for (int64_t i = 0; i < L; ++i) d[i] = load(y[i]) > 0.0f ? d[i] : TD{0}; \
  }
M2T_MASK_RUN(float, float)
M2T_MASK_RUN(float, uint16_t)
M2T_MASK_RUN(uint16_t, float)
M2T_MASK_RUN(uint16_t, uint16_t)

// d ← (d + g)·[y > 0]: add_run then mask_run per element, the same values (the sum rounded by the
// store, +0 where masked).
#define M2T_ADD_MASK_RUN(TY, TD)                                                         \
  M2T_CPU_CLONES void add_mask_run(TD* d, const TD* g, const TY* y, int64_t L) {         \
    _Pragma("omp simd") for (int64_t i = 0; i < L; ++i)                                  \
        store(d[i], relu_masked(load(d[i]) + load(g[i]), y[i]));                          \
  }
M2T_ADD_MASK_RUN(float, float)
M2T_ADD_MASK_RUN(float, uint16_t)
M2T_ADD_MASK_RUN(uint16_t, float)
M2T_ADD_MASK_RUN(uint16_t, uint16_t)

}  // namespace

void CpuBackend::add_relu(const Tensor& a, const Tensor& b, Tensor& y) {
  check_dtypes("add_relu", a.dtype(), {&b});
  if (y.raw() != a.raw()) y.resize_as(a.shape(), a.dtype(), "add_relu");
  check_dtypes("add_relu", a.dtype(), {&y});
  with_act_type(a.dtype(), "add_relu", [&](auto t) {
    using T = decltype(t);
    const T *pa = elems<T>(a), *pb = elems<T>(b);
    T* py = elems<T>(y);
    chunked(a.numel(), [&](int64_t i, int64_t L) { add_relu_run(py + i, pa + i, pb + i, L); });
  });
}

// y and dy each f32 or bf16 (a bf16 encoder masks its f32 gradient stream with bf16 outputs).
void CpuBackend::relu_backward(const Tensor& y, Tensor& dy) {
  M2T_CHECK(y.numel() == dy.numel(), "relu_backward: y ", shape_str(y.shape()), " and dy ", shape_str(dy.shape()),
            " differ");
  with_act_type(y.dtype(), "relu_backward", [&](auto ty) {
    with_act_type(dy.dtype(), "relu_backward", [&](auto td) {
      using TY = decltype(ty);
      using TD = decltype(td);
      const TY* py = elems<TY>(y);
      TD* pd = elems<TD>(dy);
      chunked(y.numel(), [&](int64_t i, int64_t L) { mask_run(py + i, pd + i, L); });
    });
  });
}

void CpuBackend::add_inplace(Tensor& y, const Tensor& x) {
  check_dtypes("add_inplace", y.dtype(), {&x});
  with_act_type(y.dtype(), "add_inplace", [&](auto t) {
    using T = decltype(t);
    T* py = elems<T>(y);
    const T* px = elems<T>(x);
    chunked(y.numel(), [&](int64_t i, int64_t L) { add_run(py + i, px + i, L); });
  });
}

void CpuBackend::add_relu_backward(Tensor& dx, const Tensor& g, const Tensor& y) {
  check_dtypes("add_relu_backward", dx.dtype(), {&g});
  M2T_CHECK(dx.numel() == g.numel() && dx.numel() == y.numel(), "add_relu_backward: dx ", shape_str(dx.shape()),
            ", g ", shape_str(g.shape()), " and y ", shape_str(y.shape()), " differ");
  with_act_type(y.dtype(), "add_relu_backward", [&](auto ty) {
    with_act_type(dx.dtype(), "add_relu_backward", [&](auto td) {
      using TY = decltype(ty);
      using TD = decltype(td);
      const TY* py = elems<TY>(y);
      const TD* pg = elems<TD>(g);
      TD* pd = elems<TD>(dx);
      chunked(dx.numel(), [&](int64_t i, int64_t L) { add_mask_run(pd + i, pg + i, py + i, L); });
    });
  });
}

void CpuBackend::scale(Tensor& x, float s) {
  check_dtypes("scale", DType::F32, {&x});
  float* p = x.data();
  const int64_t n = x.numel();
#pragma omp parallel for simd schedule(static)
  for (int64_t i = 0; i < n; ++i) p[i] *= s;
}

void CpuBackend::concat2(const Tensor& a, const Tensor& b, Tensor& y) {
  M2T_CHECK(a.ndim() >= 1 && a.shape() == b.shape(), "concat: shapes ", shape_str(a.shape()), " and ",
            shape_str(b.shape()), " differ");
  check_dtypes("concat", a.dtype(), {&b});
  M2T_CHECK(!y.same_storage(a) && !y.same_storage(b), "concat: output aliases an input");
  Shape s = a.shape();
  s[0] *= 2;
  y.resize_as(s, a.dtype(), "concat");
  std::memcpy(y.raw(), a.raw(), a.nbytes());
  std::memcpy(static_cast<char*>(y.raw()) + a.nbytes(), b.raw(), b.nbytes());
}

void CpuBackend::cast(const Tensor& src, Tensor& dst) {
  M2T_CHECK(!dst.same_storage(src), "cast: output aliases the input");
  dst.resize(src.shape());
  const int64_t n = src.numel();
  if (src.dtype() == dst.dtype()) {
    if (n) std::memcpy(dst.raw(), src.raw(), src.nbytes());
    return;
  }
  with_act_type(src.dtype(), "cast", [&](auto ts) {
    with_act_type(dst.dtype(), "cast", [&](auto td) {
      using S = decltype(ts);
      using D = decltype(td);
      const S* ps = elems<S>(src);
      D* pd = elems<D>(dst);
#pragma omp parallel for simd schedule(static)
      for (int64_t i = 0; i < n; ++i) store(pd[i], load(ps[i]));
    });
  });
}

}  // namespace m2t::cpu
