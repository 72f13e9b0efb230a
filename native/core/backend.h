// The op interface every backend implements: one class per device (CPU: ops/cpu_backend.h,
// oneDNN + own loops; CUDA later: cuDNN/cuBLAS + own kernels). Each method is defined in its op's
// room (ops/<op>/<op>_<device>.cc), so a new op is one line here, one file per backend and one
// test (parameterised over every backend built). Models call only this interface.
//
// Conventions: activations NHWC, viewed as rows [M, C] with M = N·H·W where a per-channel op
// does not care about space. "Groups" split the batch into G equal, contiguous slices (one per
// augmented view) that get their own batch-norm statistics. Every tensor argument lives on the
// backend's device, per-channel statistics included: a step never waits on the host. Scalars
// passed by value (learning rate, α, τ) are host-side schedule values.
//
// Activation dtypes (docs/algorithm.md, "Mixed precision"): the encoder's ops — convolution, batch
// norm, pooling, the elementwise ops — take activations and their gradients as f32 or bf16 and
// compute in f32 inside; an op's activation output takes its activation input's dtype (a fresh
// output tensor is made so; an existing one of another dtype is an Error, Tensor::resize_as).
// Per-channel statistics, parameters, gradients of parameters and everything else stay f32.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "core/param.h"
#include "core/tensor.h"

namespace m2t {

struct ConvGeom {
  int64_t cin, cout, kernel, stride, pad;
  // F32, or BF16 for mixed precision: x, dy, y and dx are bf16 tensors, the f32 master weights
  // are cast to bf16 by the kernel, products accumulate in f32 and dw is written f32
  // (docs/algorithm.md, "Mixed precision"). make_conv throws Error naming the CPU's ISA when the
  // machine has no bf16 convolution.
  DType compute = DType::F32;
};


// One convolution layer's kernels; implementations cache their setup per input shape.
class ConvKernel {
 public:
  virtual ~ConvKernel() = default;
  // x [N,H,W,cin], w [cout,cin,k,k] (OIHW) -> y [N,Ho,Wo,cout] (resized here). x, y: the compute type.
  virtual void forward(const Tensor& x, const Tensor& w, Tensor& y) = 0;
  // dy, w -> dx shaped like the forward input [N,H,W,cin] (resized here). dy, dx: the compute type.
  virtual void backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape, Tensor& dx) = 0;
  // x, dy (the compute type) -> dw (f32, OIHW, overwritten).
  virtual void backward_weights(const Tensor& x, const Tensor& dy, Tensor& dw) = 0;
};

// Momentum-BN options of one layer (docs/algorithm.md, "Momentum BN").
struct MomentumBnOptions {
  int64_t total_pairs = 1;    // K: α = (cos(π·pairs/K) + 1)/2
  bool double_unbias = true;  // quirk 1: extra n/(n−1) on the (already unbiased) variance
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  // The device's caching allocator; every tensor on this device takes its storage from it.
  virtual Allocator& allocator() = 0;
  // dst ← src where one of them is on this device and the other on it or the host.
  virtual void copy(Tensor& dst, const Tensor& src) = 0;
  virtual void fill_zero(Tensor& t) = 0;
  virtual void fill(Tensor& t, float v) = 0;

  // --- convolution (ops/conv) ---
  virtual std::unique_ptr<ConvKernel> make_conv(const ConvGeom& g) = 0;

  // --- batch norm (ops/batchnorm); per-channel vectors are [G·C] tensors, g-major ---
  // mean[g·C+c], biased variance var[g·C+c] over group g's rows.
  virtual void bn_stats(const Tensor& x, int64_t C, int G, Tensor& mean, Tensor& var) = 0;
  // Training BN: from each group's batch statistics (n rows per group), the affine map
  // scale = γ/sqrt(var + ε), shift = β − mean·scale, invstd for backward; running statistics
  // updated once per group with momentum 0.1 and the unbiased variance; num_batches_tracked += G.
  virtual void bn_fold_train(const Tensor& mean, const Tensor& var, int64_t n, const Tensor& gamma, const Tensor& beta,
                             Tensor& running_mean, Tensor& running_var, Tensor& num_batches_tracked, Tensor& invstd,
                             Tensor& scale, Tensor& shift) = 0;
  // Inference BN: the affine map from the running statistics, repeated for G groups.
  virtual void bn_fold_infer(const Tensor& running_mean, const Tensor& running_var, const Tensor& gamma,
                             const Tensor& beta, int G, Tensor& scale, Tensor& shift) = 0;
  // Momentum BN, normalisation: per group μ = α·mean + (1−α)·rm, v = α·var·u·e + (1−α)·rv with
  // u = n/(n−1) and e = u under quirk 1 (else 1); scale/shift as above.
  virtual void bn_fold_momentum(const Tensor& mean, const Tensor& var, int64_t n, const Tensor& gamma,
                                const Tensor& beta, const Tensor& running_mean, const Tensor& running_var,
                                double alpha, bool double_unbias, Tensor& scale, Tensor& shift) = 0;
  // Momentum BN, statistics of group g (one call of the reference): with an empty stash, stash
  // (mean, unbiased var); else combine with the stash, rm ← α·m̄ + (1−α)·rm,
  // rv ← α·v̄·e + (1−α)·rv, and the stash empties. The caller tracks which (stash_full).
  virtual void bn_momentum_update(const Tensor& mean, const Tensor& var, int g, int64_t n, double alpha,
                                  bool double_unbias, bool stash_full, Tensor& stash_mean, Tensor& stash_var,
                                  Tensor& running_mean, Tensor& running_var) = 0;
  // y = x·scale[g,c] + shift[g,c] (+ residual when given: a residual block's last BN, its shortcut
  // add and ReLU in one pass), then ReLU if relu. y may alias x. y has x's dtype, or is bf16 for an
  // f32 x (a bf16 encoder's conv output normalised: statistics of the f32 values); the residual has
  // y's dtype and shape. The affine map is rounded to f32 before the residual is added (the fp32
  // bits of bn_apply then add_relu); a bf16 y is rounded once, at the end.
  virtual void bn_apply(const Tensor& x, int64_t C, int G, const Tensor& scale, const Tensor& shift,
                        const Tensor* residual, bool relu, Tensor& y) = 0;
  // Training BN of a bf16 encoder: bn_apply's y (bf16) from f32 x (and a bf16 residual), and the
  // normalised input x̂ = (x − mean)·invstd (bf16: centred and unit-scale, it rounds without
  // cancellation), what bn_backward_xhat reads instead of x.
  virtual void bn_apply_xhat(const Tensor& x, int64_t C, int G, const Tensor& scale, const Tensor& shift,
                             const Tensor& mean, const Tensor& invstd, const Tensor* residual, bool relu, Tensor& y,
                             Tensor& xhat) = 0;
  // Backward of y = (x − mean)·invstd·γ + β (then ReLU when y_relu is given: its output, for the mask
  // [y > 0], applied where dy is read; dy itself is not written). Accumulates dγ, dβ; writes dx (resized).
  virtual void bn_backward(const Tensor& x, const Tensor* y_relu, const Tensor& dy, int64_t C, int G,
                           const Tensor& mean, const Tensor& invstd, const Tensor& gamma, Tensor& dx, Tensor& dgamma,
                           Tensor& dbeta) = 0;
  // The same backward from x̂ (bn_apply_xhat; bf16), a bf16 y_relu and an f32 dy (the gradient stream):
  // dγ = Σ dy·x̂, dβ = Σ dy, dx = γ·invstd·(dy − dβ/M − x̂·dγ/M) written bf16 (what the convolution's backward reads).
  virtual void bn_backward_xhat(const Tensor& xhat, const Tensor* y_relu, const Tensor& dy, int64_t C, int G,
                                const Tensor& invstd, const Tensor& gamma, Tensor& dx, Tensor& dgamma,
                                Tensor& dbeta) = 0;

  // --- pooling (ops/pool) ---
  // 3x3 / stride 2 / pad 1 max pool; idx (i32, made so here) receives the argmax (flat input
  // offset) per output.
  virtual void maxpool_forward(const Tensor& x, Tensor& y, Tensor& idx) = 0;
  virtual void maxpool_backward(const Tensor& dy, const Tensor& idx, const Shape& x_shape,
                                Tensor& dx) = 0;
  // [N,H,W,C] -> [N,C] mean over H·W, and back. The pooled features y and their gradient dy are
  // f32 whatever x is (the heads' input: the encoder's bf16 → f32 boundary); dx keeps its dtype
  // (f32 when it has none yet).
  virtual void avgpool_forward(const Tensor& x, Tensor& y) = 0;
  virtual void avgpool_backward(const Tensor& dy, const Shape& x_shape, Tensor& dx) = 0;

  // --- elementwise (ops/elementwise) ---
  // y = max(a + b, 0). y may alias a.
  virtual void add_relu(const Tensor& a, const Tensor& b, Tensor& y) = 0;
  // dy ← dy·[y > 0] in place.
  virtual void relu_backward(const Tensor& y, Tensor& dy) = 0;
  // y ← y + x
  virtual void add_inplace(Tensor& y, const Tensor& x) = 0;
  // dx ← (dx + g)·[y > 0]: a residual block's two input-gradient paths summed and masked by the ReLU
  // that produced its input y (add_inplace then relu_backward in one pass). dx and g of one dtype.
  virtual void add_relu_backward(Tensor& dx, const Tensor& g, const Tensor& y) = 0;
  // x ← x·s (f32)
  virtual void scale(Tensor& x, float s) = 0;
  // dst ← src converted to dst's dtype (f32 ↔ bf16, round to nearest even; the same dtype copies),
  // resized to src's shape: the image batch entering a bf16 encoder.
  virtual void cast(const Tensor& src, Tensor& dst) = 0;
  // y = [a; b] along dim 0 (resized): the two views as one batch, [x1; x2] or [x2; x1].
  virtual void concat2(const Tensor& a, const Tensor& b, Tensor& y) = 0;

  // --- linear (ops/linear): x [N,in], w [out,in], b [out] ---
  virtual void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) = 0;
  // dx (skipped when null), dw and db overwritten.
  virtual void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw,
                               Tensor& db) = 0;

  // --- normalisation and losses (ops/loss) ---
  // y = x / max(‖x‖₂, 1e-12) per row; norms [N] saved for backward.
  virtual void l2norm_forward(const Tensor& x, Tensor& y, Tensor& norms) = 0;
  virtual void l2norm_backward(const Tensor& x, const Tensor& y, const Tensor& norms, const Tensor& dy,
                               Tensor& dx) = 0;
  // Momentum² Teacher loss over B pairs: q = [q1; q2], k = [k1; k2] ([2B, D], rows normalised):
  // L = mean_b 4 − 2(⟨q1,k1⟩ + ⟨q2,k2⟩) into loss [1]; dq = ∂L/∂q.
  virtual void m2t_loss(const Tensor& q, const Tensor& k, Tensor& dq, Tensor& loss) = 0;
  // Mean cross-entropy of logits [N, K] against labels (i32 [N], on this device; the caller checked them
  // against [0, K)) into loss [1]; dlogits = ∂L/∂logits (skipped when null).
  virtual void cross_entropy(const Tensor& logits, const Tensor& labels, Tensor* dlogits, Tensor& loss) = 0;
  // counts (i32 [2], made so here) ← rows of logits [N, K] whose label ranks first / within the first five
  // (ties count for it).
  virtual void count_correct(const Tensor& logits, const Tensor& labels, Tensor& counts) = 0;

  // --- parameter updates (ops/update); whole flat arenas at once ---
  // The divergence check rides on the updates: given a `nonfinite` flag ([1] on this device), an update adds
  // Σ x·0 over the values it wrote, which is NaN exactly when one of them is NaN or infinite (and stays NaN
  // whatever the summation order), so a step learns whether its state is finite without a second pass.
  // flag[0] += Σ x·0 over x (the same check for tensors no update writes, e.g. BN running statistics).
  virtual void accumulate_nonfinite(const Tensor& x, Tensor& flag) = 0;
  // p_t ← τ·p_t + (1−τ)·p_s
  virtual void ema(Tensor& target, const Tensor& source, float tau, Tensor* nonfinite) = 0;
  virtual double sum_squares(const Tensor& x) = 0;
  // buf ← μ·buf + lr_scale·(g + wd·p) (or buf = lr_scale·(g + wd·p) when first); p ← p − step·buf.
  virtual void momentum_update(Tensor& p, const Tensor& g, Tensor& buf, float wd, float momentum,
                               float lr_scale, float step, bool first, Tensor* nonfinite) = 0;
  // SGD over a flat arena: momentum_update with lr_scale 1, step lr.
  virtual void sgd_update(Tensor& p, const Tensor& g, Tensor& buf, float wd, float momentum, float lr,
                          bool first, Tensor* nonfinite) = 0;
  // LARS over a flat arena (docs/algorithm.md, "LARS"): per segment, actual_lr = lr·η·‖p‖/(‖g‖ + wd·‖p‖)
  // for LARS-adapted segments with ‖p‖·‖g‖ > 1e-8 (else lr), norms computed here;
  // buf ← μ·buf + actual_lr·(g + wd·p); p ← p − buf.
  virtual void lars_update(Tensor& p, const Tensor& g, Tensor& buf, const std::vector<Segment>& segments, double lr,
                           double eta, double wd, float momentum, Tensor* nonfinite) = 0;
};

// The backend of `dev`; throws Error ("... not built") for a device this build cannot drive.
Backend& backend_for(Device dev);
// The CPU backend. One per process is enough: kernels hold per-layer state.
Backend& cpu_backend();
// Devices this build drives and this machine has: "cpu" always, "cuda:N" per visible GPU.
std::vector<std::string> available_backends();
// Every backend built and usable here (the op tests run over each).
std::vector<Backend*> built_backends();

}  // namespace m2t
