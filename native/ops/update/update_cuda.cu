#include <algorithm>

#include "cuda/check.h"
#include "ops/update/update_cuda.h"

namespace m2t::cuda {
namespace {

constexpr int kThreads = 256;

int blocks_for(int64_t n) {
  // Grid-stride loops: enough blocks to fill any current card, never more than the work needs.
  const int64_t b = (n + kThreads - 1) / kThreads;
  return static_cast<int>(b < 4096 ? (b > 0 ? b : 1) : 4096);
}

__global__ void ema_kernel(float* __restrict__ t, const float* __restrict__ s, int64_t n, float tau) {
  const float one_minus = 1.0f - tau;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x)
    t[i] = tau * t[i] + one_minus * s[i];
}

__global__ void sgd_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ buf, int64_t n,
                           float lr, float mu, float wd, bool first) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const float d = g[i] + wd * p[i];
    const float b = first ? d : mu * buf[i] + d;
    buf[i] = b;
    p[i] -= lr * b;
  }
}

// Block sum of two doubles in a fixed tree order (deterministic); result valid in thread 0.
__device__ void block_sum2(double& a, double& b) {
  __shared__ double sa[kThreads], sb[kThreads];
  sa[threadIdx.x] = a;
  sb[threadIdx.x] = b;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) {
      sa[threadIdx.x] += sa[threadIdx.x + w];
      sb[threadIdx.x] += sb[threadIdx.x + w];
    }
    __syncthreads();
  }
  a = sa[0];
  b = sb[0];
}

// Stage 1: one block per chunk writes (Σp², Σg²) of its chunk.
__global__ void lars_partial_kernel(const float* __restrict__ p, const float* __restrict__ g,
                                    const LarsChunk* __restrict__ chunks, double* __restrict__ partial) {
  const LarsChunk c = chunks[blockIdx.x];
  double sp = 0, sg = 0;
  for (int j = threadIdx.x; j < c.length; j += kThreads) {
    const double x = p[c.begin + j], y = g[c.begin + j];
    sp += x * x;
    sg += y * y;
  }
  block_sum2(sp, sg);
  if (threadIdx.x == 0) {
    partial[2 * blockIdx.x] = sp;
    partial[2 * blockIdx.x + 1] = sg;
  }
}

// Stage 2: one block per tensor folds its chunks' partials in order into the two norms.
__global__ void lars_norm_kernel(const double* __restrict__ partial, const int32_t* __restrict__ first_chunk,
                                 double* __restrict__ norms) {
  const int t = blockIdx.x;
  double sp = 0, sg = 0;
  for (int k = first_chunk[t] + threadIdx.x; k < first_chunk[t + 1]; k += kThreads) {
    sp += partial[2 * k];
    sg += partial[2 * k + 1];
  }
  block_sum2(sp, sg);
  if (threadIdx.x == 0) {
    norms[2 * t] = sqrt(sp);
    norms[2 * t + 1] = sqrt(sg);
  }
}

// Stage 3: one block per chunk applies the update with its tensor's rate.
__global__ void lars_update_kernel(float* __restrict__ p, const float* __restrict__ g, float* __restrict__ buf,
                                   const LarsChunk* __restrict__ chunks, const uint8_t* __restrict__ adapt,
                                   const double* __restrict__ norms, double lr, float mu, float wd, double eta) {
  const LarsChunk c = chunks[blockIdx.x];
  const double pn = norms[2 * c.tensor], gn = norms[2 * c.tensor + 1];
  double r = lr;  // in double, as the CPU optimizer computes it
  if (adapt[c.tensor] && pn * gn > 1e-8) r = lr * eta * pn / (gn + double(wd) * pn);
  const float rate = static_cast<float>(r);
  for (int j = threadIdx.x; j < c.length; j += kThreads) {
    const int64_t i = c.begin + j;
    const float b = mu * buf[i] + rate * (g[i] + wd * p[i]);
    buf[i] = b;
    p[i] -= b;
  }
}

}  // namespace

void ema(float* teacher, const float* student, int64_t n, float tau, cudaStream_t stream) {
  if (n <= 0) return;
  ema_kernel<<<blocks_for(n), kThreads, 0, stream>>>(teacher, student, n, tau);
  M2T_CUDA_LAUNCH_CHECK();
}

void sgd(float* p, const float* g, float* buf, int64_t n, float lr, float momentum, float wd, bool first,
         cudaStream_t stream) {
  if (n <= 0) return;
  sgd_kernel<<<blocks_for(n), kThreads, 0, stream>>>(p, g, buf, n, lr, momentum, wd, first);
  M2T_CUDA_LAUNCH_CHECK();
}

LarsPlan lars_plan(const std::vector<LarsTensor>& tensors) {
  LarsPlan plan;
  plan.first_chunk.reserve(tensors.size() + 1);
  for (size_t t = 0; t < tensors.size(); ++t) {
    const LarsTensor& x = tensors[t];
    if (x.size < 0 || x.offset < 0) fail(ErrorKind::RangeError, "lars_plan: tensor ", t, " has a negative extent");
    plan.first_chunk.push_back(static_cast<int32_t>(plan.chunks.size()));
    plan.adapt.push_back(x.adapt ? 1 : 0);
    for (int64_t b = 0; b < x.size; b += kLarsChunk)
      plan.chunks.push_back({x.offset + b, static_cast<int32_t>(std::min<int64_t>(kLarsChunk, x.size - b)),
                             static_cast<int32_t>(t)});
  }
  plan.first_chunk.push_back(static_cast<int32_t>(plan.chunks.size()));
  return plan;
}

void lars(float* p, const float* g, float* buf, const LarsChunk* chunks, int32_t n_chunks, const int32_t* first_chunk,
          const uint8_t* adapt, int32_t n_tensors, double* partial, double* norms, double lr, float momentum, float wd,
          double eta, cudaStream_t stream) {
  if (n_tensors <= 0) return;
  if (n_chunks > 0) {
    lars_partial_kernel<<<n_chunks, kThreads, 0, stream>>>(p, g, chunks, partial);
    M2T_CUDA_LAUNCH_CHECK();
  }
  lars_norm_kernel<<<n_tensors, kThreads, 0, stream>>>(partial, first_chunk, norms);
  M2T_CUDA_LAUNCH_CHECK();
  if (n_chunks > 0) {
    lars_update_kernel<<<n_chunks, kThreads, 0, stream>>>(p, g, buf, chunks, adapt, norms, lr, momentum, wd, eta);
    M2T_CUDA_LAUNCH_CHECK();
  }
}

}  // namespace m2t::cuda
