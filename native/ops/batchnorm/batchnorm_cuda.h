// Batch norm on CUDA over NHWC rows [M, C] in G contiguous groups of Mg = M/G rows (one per view), as
// batchnorm_cpu.cc and models/layers.cc do on the host. Free launchers on raw device pointers + a stream.
// Reductions are deterministic and atomic-free: per (group, row-chunk, channel) partial sums in double,
// folded over chunks in a fixed order by a one-thread-per-channel kernel.
// T is float or __nv_bfloat16 (activations); statistics, γ/β, running stats and scale/shift are fp32.
#pragma once
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace m2t::cuda {

constexpr int kBnMaxGroups = 8;
constexpr float kBnEps = 1e-5f;

// Doubles of workspace the statistics and backward launchers need for (M, C, G).
int64_t bn_workspace_doubles(int64_t M, int64_t C, int G);

// y = x·scale[g,c] + shift[g,c] (+ residual) (then ReLU if relu). y may alias x; residual may be null.
template <typename T>
void bn_apply(const T* x, const T* residual, T* y, int64_t M, int64_t C, int G, const float* scale,
              const float* shift, bool relu, cudaStream_t stream);

// Student (train-mode) BN, spec §2: per group biased mean/var; mean, var, invstd, scale, shift are [G·C] outputs
// (invstd = 1/sqrt(var + ε)); running_mean/var (may be null) ← 0.9·r + 0.1·stat once per group, in group order,
// with the unbiased variance; then y = bn_apply(...). 3 launches.
template <typename T>
void bn_train_forward(const T* x, T* y, int64_t M, int64_t C, int G, const float* gamma, const float* beta,
                      float* mean, float* var, float* invstd, float* scale, float* shift, float* running_mean,
                      float* running_var, bool relu, double* workspace, cudaStream_t stream);

// Backward of bn_train_forward with the saved mean/invstd: dy is masked by y > 0 when y_relu is given (dy itself
// is not modified); dgamma[c] += Σ dy·x̂, dbeta[c] += Σ dy over all groups; dx = γs·(dy − Σdy/Mg − x̂·Σdy·x̂/Mg)
// per group. coef: 3·G·C floats of scratch. dx must not alias dy or x. 3 launches.
template <typename T>
void bn_train_backward(const T* x, const T* y_relu, const T* dy, T* dx, int64_t M, int64_t C, int G,
                       const float* mean, const float* invstd, const float* gamma, float* dgamma, float* dbeta,
                       float* coef, double* workspace, cudaStream_t stream);

// Teacher momentum BN (spec §2; the algorithm of models/layers.cc BatchNorm::momentum_forward). The scalar
// state lives on the host and advances there without a device sync; the per-channel state (running stats,
// stash) lives on the device.
struct MomentumBnState {
  double alpha = 1.0;         // α: 1 → 0 along a cosine over total_pairs
  int64_t pairs = 0;          // completed pairs
  bool stash_full = false;    // the one-slot stash holds (μ_b, v_b) of the first call of a pair
  int64_t total_pairs = 1;    // K
  bool double_unbias = true;  // quirk 1: extra n/(n−1) on the already unbiased variance
};
// Normalises every group with μ_t = α·μ_b + (1−α)·running_mean, v_t = α·v_b·n/(n−1)[·n/(n−1)] + (1−α)·running_var
// (pre-update α and running stats), writes scale/shift [G·C] and y; then, in group order, stashes or completes
// pairs (running stats ← α·pair average + (1−α)·running, α advances). state is updated on return. 3 launches.
template <typename T>
void momentum_bn_forward(const T* x, T* y, int64_t M, int64_t C, int G, const float* gamma, const float* beta,
                         float* running_mean, float* running_var, float* stash_mean, float* stash_var,
                         MomentumBnState& state, float* scale, float* shift, bool relu, double* workspace,
                         cudaStream_t stream);

}  // namespace m2t::cuda
