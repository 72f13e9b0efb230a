#include <algorithm>
#include <cmath>

#include "cuda/check.h"
#include "ops/batchnorm/batchnorm_cuda.h"

namespace m2t::cuda {
namespace {

constexpr int kTx = 32, kTy = 8;  // sums: 32 channels × 8 row lanes per block
constexpr int kMinChunkRows = 256;
constexpr int kMaxBlocks = 2048;  // enough partial-sum blocks to fill an H100 several times over

__device__ __forceinline__ float load(const float* p, int64_t i) { return p[i]; }
__device__ __forceinline__ float load(const __nv_bfloat16* p, int64_t i) { return __bfloat162float(p[i]); }
__device__ __forceinline__ void store(float* p, int64_t i, float v) { p[i] = v; }
__device__ __forceinline__ void store(__nv_bfloat16* p, int64_t i, float v) { p[i] = __float2bfloat16_rn(v); }

struct Chunks {
  int count;             // per group
  int64_t rows;          // per chunk (the last may be shorter)
};
Chunks chunks_for(int64_t Mg, int64_t C, int G) {
  const int64_t tiles = (C + kTx - 1) / kTx;
  const int64_t by_size = std::max<int64_t>(1, (Mg + kMinChunkRows - 1) / kMinChunkRows);
  const int64_t by_grid = std::max<int64_t>(1, kMaxBlocks / (tiles * G));
  const int count = static_cast<int>(std::min(by_size, by_grid));
  return {count, (Mg + count - 1) / count};
}

void check_shape(const char* op, int64_t M, int64_t C, int G) {
  if (C <= 0 || M <= 0 || G <= 0 || G > kBnMaxGroups || M % G != 0)
    fail(ErrorKind::RangeError, op, ": bad shape M=", M, " C=", C, " G=", G, " (need M, C > 0, 1 ≤ G ≤ ",
         kBnMaxGroups, ", G divides M)");
}

// Per (group g = blockIdx.z, chunk k = blockIdx.y, channel c): forward  s1 = Σ x, s2 = Σ x²;
// backward  s1 = Σ d, s2 = Σ d·(x − μ[g,c]) with d = dy masked by y > 0 when y_relu is given.
// Written to s[(0|1)·G·chunks·C + (g·chunks + k)·C + c]; the 8 row lanes fold in a fixed order.
template <typename T, bool kBackward>
__global__ void sums_kernel(const T* __restrict__ x, const T* __restrict__ dy, const T* __restrict__ y_relu,
                            const float* __restrict__ mean, int64_t Mg, int64_t C, int64_t chunk_rows, double* s) {
  const int64_t c = blockIdx.x * int64_t(kTx) + threadIdx.x;
  const int g = blockIdx.z, k = blockIdx.y, chunks = gridDim.y;
  const int64_t r0 = g * Mg + k * chunk_rows, r1 = min(r0 + chunk_rows, (g + 1) * Mg);
  double a1 = 0, a2 = 0;
  if (c < C) {
    const double mu = kBackward ? double(mean[g * C + c]) : 0.0;
    for (int64_t r = r0 + threadIdx.y; r < r1; r += kTy) {
      const int64_t i = r * C + c;
      const double v = load(x, i);
      if (kBackward) {
        double d = load(dy, i);
        if (y_relu && !(load(y_relu, i) > 0.0f)) d = 0.0;
        a1 += d;
        a2 += d * (v - mu);
      } else {
        a1 += v;
        a2 += v * v;
      }
    }
  }
  __shared__ double sh[2][kTy][kTx];
  sh[0][threadIdx.y][threadIdx.x] = a1;
  sh[1][threadIdx.y][threadIdx.x] = a2;
  __syncthreads();
  if (threadIdx.y == 0 && c < C) {
    double t1 = 0, t2 = 0;
    for (int j = 0; j < kTy; ++j) {
      t1 += sh[0][j][threadIdx.x];
      t2 += sh[1][j][threadIdx.x];
    }
    const int64_t G = gridDim.z, o = (int64_t(g) * chunks + k) * C + c;
    s[o] = t1;
    s[G * chunks * C + o] = t2;
  }
}

// Σ over chunks, in chunk order, of one channel's partial sums for group g.
__device__ void fold(const double* s, int g, int chunks, int G, int64_t C, int64_t c, double& t1, double& t2) {
  t1 = 0;
  t2 = 0;
  const int64_t half = int64_t(G) * chunks * C;
  for (int k = 0; k < chunks; ++k) {
    const int64_t o = (int64_t(g) * chunks + k) * C + c;
    t1 += s[o];
    t2 += s[half + o];
  }
}

// Biased statistics as batchnorm_cpu.cc's bn_stats rounds them: mean = Σx/n, var = max(Σx²/n − mean², 0).
__device__ void group_stats(const double* s, int g, int chunks, int G, int64_t C, int64_t c, int64_t Mg, float& m,
                            float& v) {
  double t1, t2;
  fold(s, g, chunks, G, C, c, t1, t2);
  const double md = t1 / Mg;
  m = static_cast<float>(md);
  v = static_cast<float>(fmax(t2 / Mg - md * md, 0.0));
}

__global__ void train_finalize_kernel(const double* __restrict__ s, int chunks, int G, int64_t C, int64_t Mg,
                                      const float* __restrict__ gamma, const float* __restrict__ beta, float* mean,
                                      float* var, float* invstd, float* scale, float* shift, float* running_mean,
                                      float* running_var) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  const double unbias = Mg > 1 ? double(Mg) / double(Mg - 1) : 1.0;
  for (int g = 0; g < G; ++g) {
    float m, v;
    group_stats(s, g, chunks, G, C, c, Mg, m, v);
    const int64_t k = g * C + c;
    const float is = 1.0f / sqrtf(v + kBnEps);
    mean[k] = m;
    var[k] = v;
    invstd[k] = is;
    scale[k] = gamma[c] * is;
    shift[k] = beta[c] - m * scale[k];
    if (running_mean) running_mean[c] = 0.9f * running_mean[c] + 0.1f * m;
    if (running_var) running_var[c] = 0.9f * running_var[c] + 0.1f * static_cast<float>(v * unbias);
  }
}

// The host passes α at the call's start and after each pair this call completes (the host computes the cosine,
// so host and device state never diverge by a libm ulp).
struct MomentumStep {
  double alpha[kBnMaxGroups / 2 + 1];
  int stash_full;
  int double_unbias;
};

__global__ void momentum_finalize_kernel(const double* __restrict__ s, int chunks, int G, int64_t C, int64_t Mg,
                                         const float* __restrict__ gamma, const float* __restrict__ beta, float* rm,
                                         float* rv, float* stash_mean, float* stash_var, MomentumStep step,
                                         float* scale, float* shift) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  const double unbias = Mg > 1 ? double(Mg) / double(Mg - 1) : 1.0;
  const double extra = step.double_unbias ? unbias : 1.0;
  float mb[kBnMaxGroups], vb[kBnMaxGroups];
  const double a = step.alpha[0];
  for (int g = 0; g < G; ++g) {
    group_stats(s, g, chunks, G, C, c, Mg, mb[g], vb[g]);
    const double v_unb = vb[g] * unbias;
    const double mu_t = a * mb[g] + (1 - a) * rm[c];
    const double v_t = a * v_unb * extra + (1 - a) * rv[c];
    const double sc = gamma[c] / sqrt(v_t + kBnEps);
    scale[g * C + c] = static_cast<float>(sc);
    shift[g * C + c] = static_cast<float>(beta[c] - mu_t * sc);
  }
  bool full = step.stash_full;
  int done = 0;
  for (int g = 0; g < G; ++g) {
    if (!full) {
      stash_mean[c] = mb[g];
      stash_var[c] = static_cast<float>(vb[g] * unbias);
      full = true;
      continue;
    }
    const double al = step.alpha[done];
    const double m = 0.5 * (mb[g] + stash_mean[c]);  // float sum, as the host code adds two floats
    const double v = 0.5 * (vb[g] * unbias + stash_var[c]) * extra;
    rm[c] = static_cast<float>(al * m + (1 - al) * rm[c]);
    rv[c] = static_cast<float>(al * v + (1 - al) * rv[c]);
    full = false;
    ++done;
  }
}

// dβ = Σd, dγ = Σd·x̂ per group; coefficients of dx = a·d + e·(x − μ) + b (batchnorm_cpu.cc's bn_backward).
__global__ void backward_finalize_kernel(const double* __restrict__ s, int chunks, int G, int64_t C, int64_t Mg,
                                         const float* __restrict__ invstd, const float* __restrict__ gamma,
                                         float* dgamma, float* dbeta, float* coef) {
  const int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x;
  if (c >= C) return;
  const int64_t GC = int64_t(G) * C;
  float dg = dgamma[c], db = dbeta[c];
  for (int g = 0; g < G; ++g) {
    double sdy, sdyx;
    fold(s, g, chunks, G, C, c, sdy, sdyx);
    const int64_t k = g * C + c;
    const float is = invstd[k];
    const double dgam = sdyx * is;
    dg += static_cast<float>(dgam);
    db += static_cast<float>(sdy);
    coef[k] = gamma[c] * is;
    coef[GC + k] = static_cast<float>(-gamma[c] * is * is * dgam / Mg);
    coef[2 * GC + k] = static_cast<float>(-gamma[c] * is * sdy / Mg);
  }
  dgamma[c] = dg;
  dbeta[c] = db;
}

template <typename T>
__global__ void apply_kernel(const T* x, const T* __restrict__ residual, T* y, int64_t n, int64_t C, int64_t Mg,
                             const float* __restrict__ scale, const float* __restrict__ shift, bool relu) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / C, c = i - r * C, k = (r / Mg) * C + c;
    float v = load(x, i) * scale[k] + shift[k];
    if (residual) v += load(residual, i);
    store(y, i, relu ? fmaxf(v, 0.0f) : v);
  }
}

template <typename T>
__global__ void backward_dx_kernel(const T* __restrict__ x, const T* __restrict__ y_relu, const T* __restrict__ dy,
                                   T* __restrict__ dx, int64_t n, int64_t C, int64_t Mg, int64_t GC,
                                   const float* __restrict__ mean, const float* __restrict__ coef) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t r = i / C, c = i - r * C, k = (r / Mg) * C + c;
    float d = load(dy, i);
    if (y_relu && !(load(y_relu, i) > 0.0f)) d = 0.0f;
    store(dx, i, coef[k] * d + coef[GC + k] * (load(x, i) - mean[k]) + coef[2 * GC + k]);
  }
}

int elementwise_blocks(int64_t n) { return static_cast<int>(std::clamp<int64_t>((n + 255) / 256, 1, 8192)); }
int channel_blocks(int64_t C) { return static_cast<int>((C + 127) / 128); }

template <typename T, bool kBackward>
Chunks launch_sums(const T* x, const T* dy, const T* y_relu, const float* mean, int64_t M, int64_t C, int G,
                   double* ws, cudaStream_t stream) {
  const int64_t Mg = M / G;
  const Chunks ch = chunks_for(Mg, C, G);
  const dim3 grid(static_cast<unsigned>((C + kTx - 1) / kTx), ch.count, G), block(kTx, kTy);
  sums_kernel<T, kBackward><<<grid, block, 0, stream>>>(x, dy, y_relu, mean, Mg, C, ch.rows, ws);
  M2T_CUDA_LAUNCH_CHECK();
  return ch;
}

}  // namespace

int64_t bn_workspace_doubles(int64_t M, int64_t C, int G) {
  check_shape("bn_workspace_doubles", M, C, G);
  return 2 * int64_t(G) * chunks_for(M / G, C, G).count * C;
}

template <typename T>
void bn_apply(const T* x, const T* residual, T* y, int64_t M, int64_t C, int G, const float* scale,
              const float* shift, bool relu, cudaStream_t stream) {
  check_shape("bn_apply", M, C, G);
  const int64_t n = M * C;
  apply_kernel<T><<<elementwise_blocks(n), 256, 0, stream>>>(x, residual, y, n, C, M / G, scale, shift, relu);
  M2T_CUDA_LAUNCH_CHECK();
}

template <typename T>
void bn_train_forward(const T* x, T* y, int64_t M, int64_t C, int G, const float* gamma, const float* beta,
                      float* mean, float* var, float* invstd, float* scale, float* shift, float* running_mean,
                      float* running_var, bool relu, double* workspace, cudaStream_t stream) {
  check_shape("bn_train_forward", M, C, G);
  const Chunks ch = launch_sums<T, false>(x, nullptr, nullptr, nullptr, M, C, G, workspace, stream);
  train_finalize_kernel<<<channel_blocks(C), 128, 0, stream>>>(workspace, ch.count, G, C, M / G, gamma, beta, mean,
                                                               var, invstd, scale, shift, running_mean, running_var);
  M2T_CUDA_LAUNCH_CHECK();
  bn_apply<T>(x, nullptr, y, M, C, G, scale, shift, relu, stream);
}

template <typename T>
void bn_train_backward(const T* x, const T* y_relu, const T* dy, T* dx, int64_t M, int64_t C, int G,
                       const float* mean, const float* invstd, const float* gamma, float* dgamma, float* dbeta,
                       float* coef, double* workspace, cudaStream_t stream) {
  check_shape("bn_train_backward", M, C, G);
  const Chunks ch = launch_sums<T, true>(x, dy, y_relu, mean, M, C, G, workspace, stream);
  backward_finalize_kernel<<<channel_blocks(C), 128, 0, stream>>>(workspace, ch.count, G, C, M / G, invstd, gamma,
                                                                  dgamma, dbeta, coef);
  M2T_CUDA_LAUNCH_CHECK();
  const int64_t n = M * C;
  backward_dx_kernel<T><<<elementwise_blocks(n), 256, 0, stream>>>(x, y_relu, dy, dx, n, C, M / G, int64_t(G) * C,
                                                                   mean, coef);
  M2T_CUDA_LAUNCH_CHECK();
}

template <typename T>
void momentum_bn_forward(const T* x, T* y, int64_t M, int64_t C, int G, const float* gamma, const float* beta,
                         float* running_mean, float* running_var, float* stash_mean, float* stash_var,
                         MomentumBnState& state, float* scale, float* shift, bool relu, double* workspace,
                         cudaStream_t stream) {
  check_shape("momentum_bn_forward", M, C, G);
  if (state.total_pairs <= 0) fail(ErrorKind::RangeError, "momentum_bn_forward: total_pairs must be > 0");
  // Walk the stash on the host exactly as the kernel does, recording α after each completed pair.
  MomentumStep step{};
  step.stash_full = state.stash_full;
  step.double_unbias = state.double_unbias;
  MomentumBnState next = state;
  int done = 0;
  step.alpha[0] = next.alpha;
  for (int g = 0; g < G; ++g) {
    if (!next.stash_full) {
      next.stash_full = true;
      continue;
    }
    next.stash_full = false;
    next.pairs += 1;
    next.alpha = (std::cos(M_PI * static_cast<double>(next.pairs) / static_cast<double>(next.total_pairs)) + 1.0) / 2.0;
    step.alpha[++done] = next.alpha;
  }
  const Chunks ch = launch_sums<T, false>(x, nullptr, nullptr, nullptr, M, C, G, workspace, stream);
  momentum_finalize_kernel<<<channel_blocks(C), 128, 0, stream>>>(workspace, ch.count, G, C, M / G, gamma, beta,
                                                                  running_mean, running_var, stash_mean, stash_var,
                                                                  step, scale, shift);
  M2T_CUDA_LAUNCH_CHECK();
  bn_apply<T>(x, nullptr, y, M, C, G, scale, shift, relu, stream);
  state = next;
}

#define M2T_BN_INSTANTIATE(T)                                                                                       \
  template void bn_apply<T>(const T*, const T*, T*, int64_t, int64_t, int, const float*, const float*, bool,       \
                            cudaStream_t);                                                                          \
  template void bn_train_forward<T>(const T*, T*, int64_t, int64_t, int, const float*, const float*, float*,       \
                                    float*, float*, float*, float*, float*, float*, bool, double*, cudaStream_t);  \
  template void bn_train_backward<T>(const T*, const T*, const T*, T*, int64_t, int64_t, int, const float*,        \
                                     const float*, const float*, float*, float*, float*, double*, cudaStream_t);   \
  template void momentum_bn_forward<T>(const T*, T*, int64_t, int64_t, int, const float*, const float*, float*,    \
                                       float*, float*, float*, MomentumBnState&, float*, float*, bool, double*,    \
                                       cudaStream_t);
M2T_BN_INSTANTIATE(float)
M2T_BN_INSTANTIATE(__nv_bfloat16)
#undef M2T_BN_INSTANTIATE

}  // namespace m2t::cuda
