// Max pool 3x3 / stride 2 / pad 1 and global average pool, NHWC.
#include <cfloat>

#include "core/error.h"
#include "ops/cpu_backend.h"

namespace m2t::cpu {

void CpuBackend::maxpool_forward(const Tensor& x, Tensor& y, Tensor& idx_t) {
  const int64_t N = x.dim(0), H = x.dim(1), W = x.dim(2), C = x.dim(3);
  const int64_t Ho = (H + 2 - 3) / 2 + 1, Wo = (W + 2 - 3) / 2 + 1;
  y.resize({N, Ho, Wo, C});
  if (idx_t.dtype() != DType::I32) idx_t = Tensor(y.shape(), x.device(), DType::I32);
  idx_t.resize(y.shape());
  int32_t* idx = static_cast<int32_t*>(idx_t.raw());
  const float* px = x.data();
  float* py = y.data();
#pragma omp parallel for collapse(2) schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow) {
        const int64_t o = ((n * Ho + oh) * Wo + ow) * C;
        for (int64_t c = 0; c < C; ++c) py[o + c] = -FLT_MAX;
        for (int64_t kh = 0; kh < 3; ++kh) {
          const int64_t ih = oh * 2 - 1 + kh;
          if (ih < 0 || ih >= H) continue;
          for (int64_t kw = 0; kw < 3; ++kw) {
            const int64_t iw = ow * 2 - 1 + kw;
            if (iw < 0 || iw >= W) continue;
            const int64_t i = ((n * H + ih) * W + iw) * C;
            for (int64_t c = 0; c < C; ++c)
              if (px[i + c] > py[o + c]) {  // strict: the first maximum wins, as in PyTorch
                py[o + c] = px[i + c];
                idx[o + c] = static_cast<int32_t>(i + c);
              }
          }
        }
      }
}

void CpuBackend::maxpool_backward(const Tensor& dy, const Tensor& idx_t, const Shape& x_shape, Tensor& dx) {
  M2T_CHECK(idx_t.dtype() == DType::I32 && idx_t.numel() == dy.numel(), "maxpool backward: argmax ",
            shape_str(idx_t.shape()), " does not match ", shape_str(dy.shape()));
  const int32_t* idx = static_cast<const int32_t*>(idx_t.raw());
  dx.resize(x_shape);
  dx.zero();
  const float* pdy = dy.data();
  float* pdx = dx.data();
  const int64_t N = x_shape[0], per_n = dy.numel() / N;
  // Windows overlap only within one image: parallel over images is race-free.
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = n * per_n; o < (n + 1) * per_n; ++o) pdx[idx[o]] += pdy[o];
}

void CpuBackend::avgpool_forward(const Tensor& x, Tensor& y) {
  const int64_t N = x.dim(0), HW = x.dim(1) * x.dim(2), C = x.dim(3);
  y.resize({N, C});
  const float* px = x.data();
  float* py = y.data();
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n) {
    float* o = py + n * C;
    for (int64_t c = 0; c < C; ++c) o[c] = 0.0f;
    for (int64_t p = 0; p < HW; ++p) {
      const float* r = px + (n * HW + p) * C;
      for (int64_t c = 0; c < C; ++c) o[c] += r[c];
    }
    const float inv = 1.0f / static_cast<float>(HW);
    for (int64_t c = 0; c < C; ++c) o[c] *= inv;
  }
}

void CpuBackend::avgpool_backward(const Tensor& dy, const Shape& x_shape, Tensor& dx) {
  const int64_t N = x_shape[0], HW = x_shape[1] * x_shape[2], C = x_shape[3];
  dx.resize(x_shape);
  const float* pdy = dy.data();
  float* pdx = dx.data();
  const float inv = 1.0f / static_cast<float>(HW);
#pragma omp parallel for schedule(static)
  for (int64_t n = 0; n < N; ++n)
    for (int64_t p = 0; p < HW; ++p) {
      float* r = pdx + (n * HW + p) * C;
      for (int64_t c = 0; c < C; ++c) r[c] = pdy[n * C + c] * inv;
    }
}

}  // namespace m2t::cpu
