#include <algorithm>
#include <cfloat>

#include "cuda/check.h"
#include "ops/pool/pool_cuda.h"

namespace m2t::cuda {
namespace {

__device__ __forceinline__ float load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void store(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store(__nv_bfloat16* p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }

#define M2T_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

template <typename T>
__global__ void maxpool_fwd_kernel(const T* __restrict__ x, T* __restrict__ y, int32_t* __restrict__ idx, int64_t H,
                                   int64_t W, int64_t C, int64_t Ho, int64_t Wo, int64_t n_out) {
  M2T_GRID_STRIDE(o, n_out) {
    const int64_t c = o % C, ow = (o / C) % Wo, oh = (o / C / Wo) % Ho, n = o / C / Wo / Ho;
    float best = -FLT_MAX;
    int32_t arg = -1;
    for (int kh = 0; kh < 3; ++kh) {
      const int64_t ih = oh * 2 - 1 + kh;
      if (ih < 0 || ih >= H) continue;
      for (int kw = 0; kw < 3; ++kw) {
        const int64_t iw = ow * 2 - 1 + kw;
        if (iw < 0 || iw >= W) continue;
        const int64_t i = ((n * H + ih) * W + iw) * C + c;
        const float v = load(x, i);
        if (v > best) {  // strict: the first maximum wins
          best = v;
          arg = static_cast<int32_t>(i);
        }
      }
    }
    store(y, o, best);
    idx[o] = arg;
  }
}

// Input (ih, iw) lies in the windows of outputs oh with 2·oh − 1 ≤ ih ≤ 2·oh + 1, i.e. oh ∈ [⌈(ih−1)/2⌉, ⌊(ih+1)/2⌋].
template <typename T>
__global__ void maxpool_bwd_kernel(const T* __restrict__ dy, const int32_t* __restrict__ idx, T* __restrict__ dx,
                                   int64_t H, int64_t W, int64_t C, int64_t Ho, int64_t Wo, int64_t n_in) {
  M2T_GRID_STRIDE(i, n_in) {
    const int64_t c = i % C, iw = (i / C) % W, ih = (i / C / W) % H, n = i / C / W / H;
    float s = 0.0f;
    for (int64_t oh = ih / 2; oh <= (ih + 1) / 2 && oh < Ho; ++oh) {
      if (2 * oh - 1 > ih) continue;
      for (int64_t ow = iw / 2; ow <= (iw + 1) / 2 && ow < Wo; ++ow) {
        if (2 * ow - 1 > iw) continue;
        const int64_t o = ((n * Ho + oh) * Wo + ow) * C + c;
        if (idx[o] == i) s += load(dy, o);
      }
    }
    store(dx, i, s);
  }
}

template <typename T>
__global__ void avgpool_fwd_kernel(const T* __restrict__ x, T* __restrict__ y, int64_t HW, int64_t C, int64_t NC,
                                   float inv) {
  M2T_GRID_STRIDE(j, NC) {
    const int64_t n = j / C, c = j % C;
    float s = 0.0f;
    for (int64_t p = 0; p < HW; ++p) s += load(x, (n * HW + p) * C + c);
    store(y, j, s * inv);
  }
}

template <typename T>
__global__ void avgpool_bwd_kernel(const T* __restrict__ dy, T* __restrict__ dx, int64_t HW, int64_t C, int64_t n_in,
                                   float inv) {
  M2T_GRID_STRIDE(i, n_in) {
    const int64_t c = i % C, n = i / C / HW;
    store(dx, i, load(dy, n * C + c) * inv);
  }
}

int blocks(int64_t n) { return static_cast<int>(std::min<int64_t>(std::max<int64_t>((n + 255) / 256, 1), 8192)); }

void check(const char* op, int64_t N, int64_t H, int64_t W, int64_t C) {
  if (N <= 0 || H <= 0 || W <= 0 || C <= 0 || N * H * W * C > 0x7fffffff)
    fail(ErrorKind::RangeError, op, ": bad shape [", N, ", ", H, ", ", W, ", ", C,
         "] (need positive sizes and < 2^31 elements: indices are int32)");
}

}  // namespace

template <typename T>
void maxpool_forward(const T* x, T* y, int32_t* idx, int64_t N, int64_t H, int64_t W, int64_t C, cudaStream_t stream) {
  check("maxpool_forward", N, H, W, C);
  const int64_t Ho = maxpool_out(H), Wo = maxpool_out(W), n = N * Ho * Wo * C;
  maxpool_fwd_kernel<T><<<blocks(n), 256, 0, stream>>>(x, y, idx, H, W, C, Ho, Wo, n);
  M2T_CUDA_LAUNCH_CHECK();
}

template <typename T>
void maxpool_backward(const T* dy, const int32_t* idx, T* dx, int64_t N, int64_t H, int64_t W, int64_t C,
                      cudaStream_t stream) {
  check("maxpool_backward", N, H, W, C);
  const int64_t n = N * H * W * C;
  maxpool_bwd_kernel<T><<<blocks(n), 256, 0, stream>>>(dy, idx, dx, H, W, C, maxpool_out(H), maxpool_out(W), n);
  M2T_CUDA_LAUNCH_CHECK();
}

template <typename T>
void avgpool_forward(const T* x, T* y, int64_t N, int64_t HW, int64_t C, cudaStream_t stream) {
  check("avgpool_forward", N, HW, 1, C);
  avgpool_fwd_kernel<T><<<blocks(N * C), 256, 0, stream>>>(x, y, HW, C, N * C, 1.0f / static_cast<float>(HW));
  M2T_CUDA_LAUNCH_CHECK();
}

template <typename T>
void avgpool_backward(const T* dy, T* dx, int64_t N, int64_t HW, int64_t C, cudaStream_t stream) {
  check("avgpool_backward", N, HW, 1, C);
  const int64_t n = N * HW * C;
  avgpool_bwd_kernel<T><<<blocks(n), 256, 0, stream>>>(dy, dx, HW, C, n, 1.0f / static_cast<float>(HW));
  M2T_CUDA_LAUNCH_CHECK();
}

#define M2T_POOL_INSTANTIATE(T)                                                                                  \
  template void maxpool_forward<T>(const T*, T*, int32_t*, int64_t, int64_t, int64_t, int64_t, cudaStream_t);   \
  template void maxpool_backward<T>(const T*, const int32_t*, T*, int64_t, int64_t, int64_t, int64_t,           \
                                    cudaStream_t);                                                              \
  template void avgpool_forward<T>(const T*, T*, int64_t, int64_t, int64_t, cudaStream_t);                      \
  template void avgpool_backward<T>(const T*, T*, int64_t, int64_t, int64_t, cudaStream_t);
M2T_POOL_INSTANTIATE(float)
M2T_POOL_INSTANTIATE(__nv_bfloat16)
#undef M2T_POOL_INSTANTIATE

}  // namespace m2t::cuda
