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
  // The type of the encoder's stored activations (batch-norm outputs, x̂, block outputs; the
  // convolutions' type). Conv outputs before batch norm and gradients stay f32 (EncoderPlan).
  DType activation_dtype() const { return conv_compute(); }
};

// Throws RangeError naming `arch` or `width` when they are not valid (ranges: the settings table).
void validate(const EncoderConfig& cfg);

// How an encoder lays its activations out: its part of the memory plan (MemoryPlan below).
// Every activation is a view of one of two arenas:
// - saved: what the backward reads, kept from the forward (only when the encoder trains): the stem's
//   conv and BN outputs, the pool output, and per block each conv output, each BN+ReLU output, the
//   block output and the shortcut conv output — each once, never a copy. bf16 keeps each batch
//   norm's x̂ (bf16) in place of its conv output (which then lives in work slot A, f32);
// - work: kWorkSlots slots of the largest activation, shared by every layer in turn (and, through
//   use_arenas, by the teacher and the student): P0/P1 ping-pong the block inputs/outputs of a
//   forward that keeps nothing and the block gradients of the backward; A/B/C hold a block's
//   temporaries (its BN outputs nothing reads later, its gradient buffers), alternating so that each
//   op's input and output never share a slot.
// The saved arena and the converted images hold the activation dtype (act_bytes each: 4 for fp32,
// 2 for bf16, EncoderConfig::activation_dtype); the work arena is f32 (conv outputs and gradients
// are f32 in either precision), a bf16 tensor in a slot taking its first bytes. Sizes count
// elements of the arena's type, each tensor rounded up to 64 bytes (aligned views).
struct EncoderPlan {
  static constexpr int kWorkSlots = 5;
  int64_t params = 0;   // trainable elements
  int64_t buffers = 0;  // BN running statistics and counters
  int64_t feat = 0;     // feature width
  int64_t act_bytes = 4;  // bytes per activation element
  int64_t saved = 0;    // the saved arena (when training), act_bytes elements
  int64_t slot = 0;     // one work slot, f32 elements
  int64_t image = 0;    // the input images converted to bf16 (bf16 only; the first conv's input)
  int64_t pool_idx = 0; // i32 argmax of the max pool (when training with the ImageNet stem)
  int64_t work() const { return kWorkSlots * slot; }
  // Bytes of the encoder's own activation storage: arenas and converted input.
  int64_t activation_bytes(bool keep) const { return act_bytes * ((keep ? saved : 0) + image) + 4 * work(); }
};
// The plan for an input [n, h, w, 3] (n = h = w = 0: parameters only). Pure: allocates nothing.
EncoderPlan plan_encoder(const EncoderConfig& cfg, int64_t n, int64_t h, int64_t w);

// Bytes a model holds while it trains on a batch, by category: what the engine states before it
// allocates (plan_m2t, plan_probe) and refuses configurations with. Everything here comes from the
// device's caching allocator; oneDNN's workspaces (scratchpads, reordered weights) are measured,
// not planned (ops/cpu_backend.h, workspace_bytes()).
struct MemoryPlan {
  int64_t parameters = 0;   // the trained model's values and BN statistics
  int64_t gradients = 0;
  int64_t optimizer = 0;    // momentum buffers
  int64_t teacher = 0;      // the teacher's values and statistics (Momentum² Teacher only)
  int64_t activations = 0;  // activation arenas, heads, inputs
  int64_t state_floats = 0; // elements of the state dict (model, no optimizer): exact
  int64_t model() const { return parameters + gradients + optimizer + teacher; }
  int64_t total() const { return model() + activations; }
};

// Binds a block's tensors to arena views (see EncoderPlan).
struct ArenaBinder {
  Tensor* saved = nullptr;  // null: the forward keeps nothing (teacher, frozen encoder)
  Tensor* work = nullptr;
  int64_t slot = 0;       // f32 elements
  DType act = DType::F32; // the stored activations' type (the saved arena's)
  int64_t act_bytes = 4;  // of act
  int64_t off = 0;  // next free element of `saved`
  enum Slot { P0 = 0, P1 = 1, A = 2, B = 3, C = 4 };
  Tensor keep(const Shape& s);
  // Work slot i as an activation (act) or an f32 tensor (conv outputs, gradient stream).
  Tensor at(int i, const Shape& s) const { return work->view(i * slot, s, act); }
  Tensor at_f32(int i, const Shape& s) const { return work->view(i * slot, s); }
  // Saved when the forward keeps, else work slot i.
  Tensor keep_or(int i, const Shape& s) { return saved ? keep(s) : at(i, s); }
  // A conv output that batch norm reads: fp32 keeps it (the backward reads it) like keep_or;
  // bf16 leaves it f32 in work slot i (the backward reads x̂, xhat()).
  Tensor conv_out(int i, const Shape& s) { return act == DType::F32 ? keep_or(i, s) : at_f32(i, s); }
  // bf16 training: the saved x̂ of the BN after that conv; else no tensor.
  Tensor xhat(const Shape& s) { return act != DType::F32 && saved ? keep(s) : Tensor(); }
};

class Block {
 public:
  virtual ~Block() = default;
  virtual void register_in(Registry& r) = 0;
  virtual void init(uint64_t seed) = 0;
  virtual void forward(Backend& be, const Tensor& x, int G, BnMode mode) = 0;
  // dsum = ∂L/∂(main + shortcut): the gradient at the block's output ReLU, already masked by [out > 0]
  // (the following block's backward leaves it so, for the next); may be clobbered. Writes dx = ∂L/∂x,
  // or, when relu_input (x is the previous block's ReLU output), ∂L/∂x·[x > 0]: that block's dsum, its
  // mask applied in the same pass as the residual add.
  virtual void backward(Backend& be, Tensor& dsum, Tensor& dx, bool relu_input) = 0;
  virtual std::vector<BatchNorm*> bns() = 0;
  // Binds every activation (and gradient buffer, when b.saved) for input shape `in` to arena
  // views; the output goes to work slot out_slot when nothing is kept. Returns the output shape.
  virtual Shape bind(ArenaBinder& b, const Shape& in, int out_slot) = 0;
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
  // Memory plan (EncoderPlan): whether the forward keeps what a backward needs (default true;
  // false for the teacher and frozen encoders, whose activations are then all transient), and the
  // arenas to use (default: the encoder's own). Both take effect at the next forward.
  void set_keep_for_backward(bool keep) { keep_ = keep; }
  void use_arenas(Tensor* saved, Tensor* work) { saved_src_ = saved, work_src_ = work; }

 private:
  void bind(const Shape& x);
  Backend& be_;
  EncoderConfig cfg_;
  int64_t feat_;
  std::unique_ptr<Conv2d> conv1_;
  std::unique_ptr<BatchNorm> bn1_;
  std::vector<std::unique_ptr<Block>> blocks_;
  const Tensor* x_ = nullptr;
  Tensor xin_;  // bf16 encoders: the input images converted once (the first conv reads them, forward and backward)
  Tensor c1_, xc1_, r1_, p_, feat_out_;  // xc1_: bn1's x̂ (bf16 training)
  Tensor pool_idx_;  // i32 argmax of the max pool, on the device
  Tensor g0_, g1_, dr1_, dc1_;
  std::vector<std::vector<Param*>> block_params_;  // per block, for on_grad_ready
  bool keep_ = true;
  Tensor* saved_src_ = nullptr;
  Tensor* work_src_ = nullptr;
  Tensor own_saved_, own_work_;
};

}  // namespace m2t
