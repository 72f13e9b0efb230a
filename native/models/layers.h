// Layers with explicit forward/backward over the Backend. A layer remembers what its backward
// needs from the last forward; inputs are held by the caller (the block or model).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "models/module.h"

namespace m2t {

class Conv2d {
 public:
  // compute: the convolution's arithmetic (BF16: mixed precision, ConvGeom); weights stay f32.
  Conv2d(Backend& be, std::string name, int64_t cin, int64_t cout, int64_t k, int64_t stride, int64_t pad,
         DType compute = DType::F32);
  void register_in(Registry& r) { r.param(weight); }
  void forward(const Tensor& x, Tensor& y) { kernel_->forward(x, weight.value, y); }
  // Writes weight.grad; writes dx unless it is null.
  void backward(const Tensor& x, const Tensor& dy, Tensor* dx);

  Param weight;

 private:
  std::unique_ptr<ConvKernel> kernel_;
};

// How a BatchNorm normalises (docs/algorithm.md, "Batch norm").
enum class BnMode {
  Train,     // batch statistics per group (view); running stats updated once per group, momentum 0.1
  Momentum,  // the teacher's momentum BN: α-mixed statistics, pair-averaged running-stat updates
  Infer,     // running statistics
};

class BatchNorm {
 public:
  static constexpr float kEps = 1e-5f;
  BatchNorm(std::string name, int64_t channels, Device dev = Device::cpu());
  void register_in(Registry& r);
  // x: NHWC or [N, C]; G groups along N. relu fuses a ReLU after the affine map. xhat (a bf16
  // encoder's training forward: f32 x, bf16 y): also write x̂ = (x − μ)·invstd there, bf16, which
  // the backward then reads instead of x (docs/algorithm.md, "Mixed precision"); Train mode only.
  // residual (y's dtype and shape): y = ReLU?(BN(x) + residual), a residual block's last BN, shortcut
  // add and ReLU in one pass; the backward then takes dy = ∂L/∂(BN(x) + residual), the ReLU's mask
  // already applied by the caller (who needs that gradient for the residual's path too).
  void forward(Backend& be, const Tensor& x, Tensor& y, int G, BnMode mode, bool relu, Tensor* xhat = nullptr,
               const Tensor* residual = nullptr);
  // Train mode only. y is the forward output (needed for the ReLU mask when relu; applied as dy is read).
  // x is the forward's input; unused (may be overwritten) when the forward wrote x̂.
  void backward(Backend& be, const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx);

  int64_t channels() const { return C_; }
  const std::string& name() const { return name_; }

  Param gamma, beta;
  Tensor running_mean, running_var, num_batches_tracked;
  // Momentum-BN state (teacher only): α and completed pairs (host-side schedule state), whether
  // the one-slot stash of (μ_b, v_b) holds a first call, and the stash itself (on the device).
  MomentumBnOptions mbn;
  double alpha = 1.0;
  int64_t pairs = 0;
  bool stash_full = false;
  Tensor stash_mean, stash_var;

 private:
  std::string name_;
  int64_t C_;
  int G_ = 1;
  bool relu_ = false;
  const Tensor* xhat_ = nullptr;  // where the last forward wrote x̂, if it did
  Tensor mean_, var_, invstd_, scale_, shift_;  // [G·C] on the device
};

class Linear {
 public:
  Linear(std::string name, int64_t in, int64_t out, Device dev = Device::cpu());
  void register_in(Registry& r) {
    r.param(weight);
    r.param(bias);
  }
  void forward(Backend& be, const Tensor& x, Tensor& y) { be.linear_forward(x, weight.value, bias.value, y); }
  void backward(Backend& be, const Tensor& x, const Tensor& dy, Tensor* dx) {
    be.linear_backward(x, weight.value, dy, dx, weight.grad, bias.grad);
  }
  Param weight, bias;
};

// Linear → BN1d → ReLU → Linear: the projector and the predictor (docs/algorithm.md, "The model"). Names fc.{i}, fc.{i+1}, fc.{i+3}.
class Mlp {
 public:
  Mlp(const std::string& prefix, int first_index, int64_t in, int64_t hidden, int64_t out,
      Device dev = Device::cpu());
  void register_in(Registry& r);
  void init(uint64_t seed);
  void forward(Backend& be, const Tensor& x, Tensor& y, int G, BnMode mode);
  void backward(Backend& be, const Tensor& dy, Tensor& dx);

  Linear l0;
  BatchNorm bn;
  Linear l3;

 private:
  const Tensor* x_ = nullptr;
  Tensor h0_, h1_, dh1_, dh0_;
};

}  // namespace m2t
