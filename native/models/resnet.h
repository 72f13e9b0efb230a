// ResNet encoders, torchvision v1.5 topology (docs/algorithm.md, "The model"), NHWC, with a width multiplier and an
// optional small-image stem. forward() takes G groups (views) for per-view BN statistics.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/settings.h"
#include "models/layers.h"

namespace m2t {

// Defaults, ranges and docs: core/engine_settings.json.
struct EncoderConfig {
  std::string arch = setting_default_string("arch");  // resnet18/34/50/101/152
  double width = setting_default_number("width");
  bool small_stem = setting_default_bool("smallStem");
  // "fp32" or "bf16": the convolutions' arithmetic (docs/algorithm.md, "Mixed precision").
  std::string precision = setting_default_string("precision");
  DType conv_compute() const { return precision == "bf16" ? DType::BF16 : DType::F32; }
};

// Throws RangeError naming `arch` or `width` when they are not valid (ranges: the settings table).
void validate(const EncoderConfig& cfg);

class Block {
 public:
  virtual ~Block() = default;
  virtual void register_in(Registry& r) = 0;
  virtual void init(uint64_t seed) = 0;
  virtual void forward(Backend& be, const Tensor& x, int G, BnMode mode) = 0;
  virtual void backward(Backend& be, Tensor& dout, Tensor& dx) = 0;  // dout may be clobbered
  virtual std::vector<BatchNorm*> bns() = 0;
  Tensor out;
};

class ResNet {
 public:
  ResNet(Backend& be, const EncoderConfig& cfg, const std::string& prefix);
  void register_in(Registry& r);
  void init(uint64_t seed);
  // x [N,H,W,3] → features [N, feature_dim()]. The result stays valid until the next forward.
  const Tensor& forward(const Tensor& x, int G, BnMode mode);
  // dfeat [N, feature_dim()] → parameter gradients (written, not accumulated, except BN's which
  // the caller zeroes first).
  void backward(const Tensor& dfeat);
  // Called during backward() with each parameter whose gradient is final (after each block, then the
  // stem): what lets the gradient all-reduce of data-parallel training start before the backward ends.
  std::function<void(const Param&)> on_grad_ready;
  int64_t feature_dim() const { return feat_; }
  std::vector<BatchNorm*> bns();

 private:
  Backend& be_;
  EncoderConfig cfg_;
  int64_t feat_;
  std::unique_ptr<Conv2d> conv1_;
  std::unique_ptr<BatchNorm> bn1_;
  std::vector<std::unique_ptr<Block>> blocks_;
  const Tensor* x_ = nullptr;
  Tensor c1_, r1_, p_, feat_out_;
  Tensor pool_idx_;  // i32 argmax of the max pool, on the device
  Tensor g0_, g1_, dr1_, dc1_;
  std::vector<std::vector<Param*>> block_params_;  // per block, for on_grad_ready
};

}  // namespace m2t
