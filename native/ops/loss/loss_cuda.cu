#include "cuda/check.h"
#include "ops/loss/loss_cuda.h"

namespace m2t::cuda {
namespace {

constexpr int kThreads = 256;
constexpr float kNormEps = 1e-12f;

// Sum over the block in a fixed tree order; every thread gets the result.
__device__ double block_sum(double v) {
  __shared__ double sh[kThreads];
  __syncthreads();  // sh may still be read by a previous call
  sh[threadIdx.x] = v;
  __syncthreads();
  for (int w = kThreads / 2; w > 0; w >>= 1) {
    if (threadIdx.x < w) sh[threadIdx.x] += sh[threadIdx.x + w];
    __syncthreads();
  }
  return sh[0];
}

__global__ void l2_forward_kernel(const float* x, float* y, float* norms, int64_t D) {
  const float* r = x + blockIdx.x * D;
  double s = 0;
  for (int64_t d = threadIdx.x; d < D; d += kThreads) s += double(r[d]) * r[d];
  const float nrm = static_cast<float>(sqrt(block_sum(s)));
  const float inv = 1.0f / fmaxf(nrm, kNormEps);
  float* o = y + blockIdx.x * D;
  for (int64_t d = threadIdx.x; d < D; d += kThreads) o[d] = r[d] * inv;
  if (threadIdx.x == 0) norms[blockIdx.x] = nrm;
}

__global__ void l2_backward_kernel(const float* __restrict__ y, const float* __restrict__ norms,
                                   const float* __restrict__ dy, float* __restrict__ dx, int64_t D) {
  const float* yr = y + blockIdx.x * D;
  const float* g = dy + blockIdx.x * D;
  float* o = dx + blockIdx.x * D;
  const float nrm = norms[blockIdx.x];
  if (nrm > kNormEps) {
    double s = 0;
    for (int64_t d = threadIdx.x; d < D; d += kThreads) s += double(g[d]) * yr[d];
    const float dot = static_cast<float>(block_sum(s)), inv = 1.0f / nrm;
    for (int64_t d = threadIdx.x; d < D; d += kThreads) o[d] = (g[d] - yr[d] * dot) * inv;
  } else {
    for (int64_t d = threadIdx.x; d < D; d += kThreads) o[d] = g[d] / kNormEps;
  }
}

// Per row: ‖p‖, q = p/max(‖p‖, ε), ⟨q, k⟩ (→ row_dots), dq = −2k/B, dp = backward of the normalisation.
__global__ void m2t_rows_kernel(const float* __restrict__ p, const float* __restrict__ k, float* __restrict__ q,
                                float* __restrict__ dp, double* __restrict__ row_dots, int64_t D, float b) {
  const int64_t off = blockIdx.x * D;
  double s = 0;
  for (int64_t d = threadIdx.x; d < D; d += kThreads) s += double(p[off + d]) * p[off + d];
  const float nrm = static_cast<float>(sqrt(block_sum(s)));
  const float inv = 1.0f / fmaxf(nrm, kNormEps);
  double qk = 0, dqq = 0;
  for (int64_t d = threadIdx.x; d < D; d += kThreads) {
    const float qv = p[off + d] * inv;
    q[off + d] = qv;
    qk += double(qv) * k[off + d];
    dqq += double(-2.0f * k[off + d] / b) * qv;  // ⟨dq, q⟩ with dq rounded as the CPU rounds it
  }
  qk = block_sum(qk);
  const float dot = static_cast<float>(block_sum(dqq));
  if (threadIdx.x == 0) row_dots[blockIdx.x] = qk;
  for (int64_t d = threadIdx.x; d < D; d += kThreads) {
    const float g = -2.0f * k[off + d] / b;
    dp[off + d] = nrm > kNormEps ? (g - q[off + d] * dot) / nrm : g / kNormEps;
  }
}

__global__ void m2t_total_kernel(const double* __restrict__ row_dots, int64_t N, float* loss) {
  double s = 0;
  for (int64_t i = threadIdx.x; i < N; i += kThreads) s += row_dots[i];
  s = block_sum(s);
  if (threadIdx.x == 0) *loss = static_cast<float>(4.0 - 2.0 * s / double(N / 2));
}

void check_rows(const char* op, int64_t N, int64_t D) {
  if (N <= 0 || D <= 0 || N > 0x7fffffff)
    fail(ErrorKind::RangeError, op, ": bad shape [", N, ", ", D, "] (need 0 < N < 2^31, D > 0)");
}

}  // namespace

void l2_normalize(const float* x, float* y, float* norms, int64_t N, int64_t D, cudaStream_t stream) {
  check_rows("l2_normalize", N, D);
  l2_forward_kernel<<<static_cast<unsigned>(N), kThreads, 0, stream>>>(x, y, norms, D);
  M2T_CUDA_LAUNCH_CHECK();
}

void l2_normalize_backward(const float* y, const float* norms, const float* dy, float* dx, int64_t N, int64_t D,
                           cudaStream_t stream) {
  check_rows("l2_normalize_backward", N, D);
  l2_backward_kernel<<<static_cast<unsigned>(N), kThreads, 0, stream>>>(y, norms, dy, dx, D);
  M2T_CUDA_LAUNCH_CHECK();
}

void m2t_loss_fused(const float* p, const float* k, float* q, float* dp, float* loss, double* row_dots, int64_t N,
                    int64_t D, cudaStream_t stream) {
  check_rows("m2t_loss_fused", N, D);
  if (N % 2 != 0) fail(ErrorKind::RangeError, "m2t_loss_fused: ", N, " rows do not split into two views");
  m2t_rows_kernel<<<static_cast<unsigned>(N), kThreads, 0, stream>>>(p, k, q, dp, row_dots, D,
                                                                     static_cast<float>(N / 2));
  M2T_CUDA_LAUNCH_CHECK();
  m2t_total_kernel<<<1, kThreads, 0, stream>>>(row_dots, N, loss);
  M2T_CUDA_LAUNCH_CHECK();
}

}  // namespace m2t::cuda
