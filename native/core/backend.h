// The op interface every backend implements (CPU: oneDNN + own loops; CUDA: cuDNN/cuBLAS +
// own kernels, a later issue). Models call only this interface, never a backend directly.
//
// Conventions: activations NHWC, viewed as rows [M, C] with M = N·H·W where a per-channel op
// does not care about space. "Groups" split the batch into G equal, contiguous slices (one per
// augmented view) that get their own batch-norm statistics. Small per-channel vectors
// (mean, var, scale, shift: G·C floats) live on the host.
#pragma once
#include <cstdint>
#include <memory>

#include "core/tensor.h"

namespace m2t {

struct ConvGeom {
  int64_t cin, cout, kernel, stride, pad;
};

// One convolution layer's kernels; implementations cache their setup per input shape.
class ConvKernel {
 public:
  virtual ~ConvKernel() = default;
  // x [N,H,W,cin], w [cout,cin,k,k] (OIHW) -> y [N,Ho,Wo,cout] (resized here).
  virtual void forward(const Tensor& x, const Tensor& w, Tensor& y) = 0;
  // dy, w -> dx shaped like the forward input [N,H,W,cin] (resized here).
  virtual void backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape, Tensor& dx) = 0;
  // x, dy -> dw (OIHW, overwritten).
  virtual void backward_weights(const Tensor& x, const Tensor& dy, Tensor& dw) = 0;
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual Device device() const = 0;
  virtual std::unique_ptr<ConvKernel> make_conv(const ConvGeom& g) = 0;

  // --- batch norm (ops/batchnorm) ---
  // Per group g and channel c: mean[g·C+c], biased variance var[g·C+c] over the group's rows.
  virtual void bn_stats(const Tensor& x, int64_t C, int G, float* mean, float* var) = 0;
  // y = x·scale[g,c] + shift[g,c], then ReLU if relu. y may alias x.
  virtual void bn_apply(const Tensor& x, int64_t C, int G, const float* scale, const float* shift,
                        bool relu, Tensor& y) = 0;
  // Backward of y = (x − mean)·invstd·γ + β (then ReLU when y_relu is given: its output, for the mask).
  // Accumulates dγ, dβ; writes dx (resized). dy may be modified in place.
  virtual void bn_backward(const Tensor& x, const Tensor* y_relu, Tensor& dy, int64_t C, int G,
                           const float* mean, const float* invstd, const float* gamma, Tensor& dx,
                           float* dgamma, float* dbeta) = 0;

  // --- pooling (ops/pool) ---
  // 3x3 / stride 2 / pad 1 max pool; idx receives the argmax (flat input offset) per output.
  virtual void maxpool_forward(const Tensor& x, Tensor& y, std::vector<int32_t>& idx) = 0;
  virtual void maxpool_backward(const Tensor& dy, const std::vector<int32_t>& idx, const Shape& x_shape,
                                Tensor& dx) = 0;
  // [N,H,W,C] -> [N,C] mean over H·W, and back.
  virtual void avgpool_forward(const Tensor& x, Tensor& y) = 0;
  virtual void avgpool_backward(const Tensor& dy, const Shape& x_shape, Tensor& dx) = 0;

  // --- elementwise (ops/elementwise) ---
  // y = max(a + b, 0). y may alias a.
  virtual void add_relu(const Tensor& a, const Tensor& b, Tensor& y) = 0;
  // dy ← dy·[y > 0] in place.
  virtual void relu_backward(const Tensor& y, Tensor& dy) = 0;
  // y ← y + x
  virtual void add_inplace(Tensor& y, const Tensor& x) = 0;

  // --- linear (ops/linear): x [N,in], w [out,in], b [out] ---
  virtual void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) = 0;
  // dx (skipped when null), dw and db overwritten.
  virtual void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw,
                               Tensor& db) = 0;

  // --- normalisation and losses (ops/loss) ---
  // y = x / max(‖x‖₂, 1e-12) per row; norms saved for backward.
  virtual void l2norm_forward(const Tensor& x, Tensor& y, std::vector<float>& norms) = 0;
  virtual void l2norm_backward(const Tensor& x, const Tensor& y, const std::vector<float>& norms,
                               const Tensor& dy, Tensor& dx) = 0;
  // Momentum² Teacher loss over B pairs: q = [q1; q2], k = [k1; k2] ([2B, D], rows normalised):
  // L = mean_b 4 − 2(⟨q1,k1⟩ + ⟨q2,k2⟩); dq = ∂L/∂q.
  virtual float m2t_loss(const Tensor& q, const Tensor& k, Tensor& dq) = 0;
  // Mean cross-entropy of logits [N, K] against labels; dlogits = ∂L/∂logits (skipped when null).
  virtual float cross_entropy(const Tensor& logits, const int32_t* labels, Tensor* dlogits) = 0;

  // --- parameter updates (optim) ---
  // p_t ← τ·p_t + (1−τ)·p_s
  virtual void ema(Tensor& target, const Tensor& source, float tau) = 0;
  virtual double sum_squares(const Tensor& x) = 0;
  // buf ← μ·buf + lr_scale·(g + wd·p) (or buf = lr_scale·(g + wd·p) when first); p ← p − step·buf.
  virtual void momentum_update(Tensor& p, const Tensor& g, Tensor& buf, float wd, float momentum,
                               float lr_scale, float step, bool first) = 0;
  // x ← x·s
  virtual void scale(Tensor& x, float s) = 0;
};

// The CPU backend (ops/cpu_backend.cc). One per process is enough: kernels hold per-layer state.
Backend& cpu_backend();

}  // namespace m2t
