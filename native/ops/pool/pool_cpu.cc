// Max pool 3x3 / stride 2 / pad 1 and global average pool, NHWC, over f32 or bf16 activations
// (comparisons and sums in f32; bf16 results rounded once on the store).
#include <cfloat>
#include <vector>

#include "core/allocator.h"
#include "core/cpu_dispatch.h"
#include "core/error.h"
#include "ops/cpu_backend.h"

namespace m2t::cpu {
namespace {

// One input pixel's channels against an output pixel's running maxima (strict: the first maximum
// wins, as in PyTorch), compiled for AVX2 and AVX-512 too (core/cpu_dispatch.h); exact comparisons,
// so every clone gives the same result.
#define M2T_MAX_RUN(T)                                                                          \
  M2T_CPU_CLONES void max_run(float* best, int32_t* idx, const T* x, int64_t i0, int64_t C) {   \
    _Pragma("omp simd") for (int64_t c = 0; c < C; ++c) {                                       \
      const float v = load(x[c]);                                                                \
      if (v > best[c]) {                                                                         \
        best[c] = v;                                                                             \
        idx[c] = static_cast<int32_t>(i0 + c);                                                   \
      }                                                                                          \
    }                                                                                            \
  }
M2T_MAX_RUN(float)
M2T_MAX_RUN(uint16_t)

}  // namespace

void CpuBackend::maxpool_forward(const Tensor& x, Tensor& y, Tensor& idx_t) {
  const int64_t N = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  const int64_t Ho = (H + 2 - 3) / 2 + 1, Wo = (W + 2 - 3) / 2 + 1;
  y.resize_as({N, Ho, Wo, C}, x.dtype(), "maxpool");
  if (idx_t.dtype() != DType::I32) idx_t = Tensor(y.shape(), x.device(), DType::I32);
  idx_t.resize(y.shape());
  int32_t* idx = static_cast<int32_t*>(idx_t.raw());
  with_act_type(x.dtype(), "maxpool", [&](auto t) {
    using T = decltype(t);
    const T* px = elems<T>(x);
    T* py = elems<T>(y);
#pragma omp parallel for collapse(2) schedule(static)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t oh = 0; oh < Ho; ++oh) {
        std::vector<float> best(C);  // the running maxima of one output pixel, in f32
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const int64_t o = ((n * Ho + oh) * Wo + ow) * C;
          for (int64_t c = 0; c < C; ++c) best[c] = -FLT_MAX;
          for (int64_t kh = 0; kh < 3; ++kh) {
            const int64_t ih = oh * 2 - 1 + kh;
            if (ih < 0 || ih >= H) continue;
            for (int64_t kw = 0; kw < 3; ++kw) {
              const int64_t iw = ow * 2 - 1 + kw;
              if (iw < 0 || iw >= W) continue;
              const int64_t i = ((n * H + ih) * W + iw) * C;
              max_run(best.data(), idx + o, px + i, i, C);
            }
          }
          // A maximum is one of the inputs: storing it in their type is exact.
          for (int64_t c = 0; c < C; ++c) store(py[o + c], best[c]);
        }
      }
  });
}

void CpuBackend::maxpool_backward(const Tensor& dy, const Tensor& idx_t, const Shape& x_shape, Tensor& dx) {
  M2T_CHECK(idx_t.dtype() == DType::I32 && idx_t.numel() == dy.numel(), "maxpool backward: argmax ",
            shape_str(idx_t.shape()), " does not match ", shape_str(dy.shape()));
  const int32_t* idx = static_cast<const int32_t*>(idx_t.raw());
  dx.resize_as(x_shape, dy.dtype(), "maxpool backward");
  const int64_t N = x_shape[0], per_n = dy.numel() / N, per_x = dx.numel() / N;
  if (dy.dtype() == DType::F32) {
    dx.zero();
    const float* pdy = dy.data();
    float* pdx = dx.data();
    // Windows overlap only within one image: parallel over images is race-free.
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = n * per_n; o < (n + 1) * per_n; ++o) pdx[idx[o]] += pdy[o];
    return;
  }
  with_act_type(dy.dtype(), "maxpool backward", [&](auto t) {
    using T = decltype(t);
    const T* pdy = elems<T>(dy);
    T* pdx = elems<T>(dx);
    // bf16: an input pixel collects up to four outputs' gradients; sum them in an f32 image per
    // thread (a workspace, noted as such) and round each sum once.
#pragma omp parallel
    {
      thread_local std::vector<float> acc;
      if (acc.size() < static_cast<size_t>(per_x)) {
        note_workspace(static_cast<std::ptrdiff_t>((per_x - acc.size()) * sizeof(float)));
        acc.resize(per_x);
      }
#pragma omp for schedule(static)
      for (int64_t n = 0; n < N; ++n) {
        std::fill(acc.begin(), acc.begin() + per_x, 0.0f);
        const int64_t base = n * per_x;
        for (int64_t o = n * per_n; o < (n + 1) * per_n; ++o) acc[idx[o] - base] += load(pdy[o]);
        for (int64_t i = 0; i < per_x; ++i) store(pdx[base + i], acc[i]);
      }
    }
  });
}

void CpuBackend::avgpool_forward(const Tensor& x, Tensor& y) {
  const int64_t N = x.dim(0), HW = x.dim(1) * x.dim(2), C = x.dim(3);
  y.resize_as({N, C}, DType::F32, "avgpool");
  float* py = y.data();
  with_act_type(x.dtype(), "avgpool", [&](auto t) {
    using T = decltype(t);
    const T* px = elems<T>(x);
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n) {
      float* o = py + n * C;
      for (int64_t c = 0; c < C; ++c) o[c] = 0.0f;
      for (int64_t p = 0; p < HW; ++p) {
        const T* r = px + (n * HW + p) * C;
        for (int64_t c = 0; c < C; ++c) o[c] += load(r[c]);
      }
      const float inv = 1.0f / static_cast<float>(HW);
      for (int64_t c = 0; c < C; ++c) o[c] *= inv;
    }
  });
}

void CpuBackend::avgpool_backward(const Tensor& dy, const Shape& x_shape, Tensor& dx) {
  check_dtypes("avgpool backward", DType::F32, {&dy});
  const int64_t N = x_shape[0], HW = x_shape[1] * x_shape[2], C = x_shape[3];
  dx.resize(x_shape);
  const float* pdy = dy.data();
  const float inv = 1.0f / static_cast<float>(HW);
  with_act_type(dx.dtype(), "avgpool backward", [&](auto t) {
    using T = decltype(t);
    T* pdx = elems<T>(dx);
#pragma omp parallel for schedule(static)
    for (int64_t n = 0; n < N; ++n)
      for (int64_t p = 0; p < HW; ++p) {
        T* r = pdx + (n * HW + p) * C;
        for (int64_t c = 0; c < C; ++c) store(r[c], pdy[n * C + c] * inv);
      }
  });
}

}  // namespace m2t::cpu
