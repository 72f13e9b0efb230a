#include "models/resnet.h"

#include <cmath>

#include "core/error.h"
#include "core/settings.h"

namespace m2t {
namespace {

struct ArchSpec {
  const char* name;
  bool bottleneck;
  int blocks[4];
};
constexpr ArchSpec kArchs[] = {
    {"resnet18", false, {2, 2, 2, 2}},   {"resnet34", false, {3, 4, 6, 3}},
    {"resnet50", true, {3, 4, 6, 3}},    {"resnet101", true, {3, 4, 23, 3}},
    {"resnet152", true, {3, 8, 36, 3}},
};

const ArchSpec* find_arch(const std::string& name) {
  for (const auto& a : kArchs)
    if (name == a.name) return &a;
  return nullptr;
}

int64_t scaled(int64_t c, double width) { return std::max<int64_t>(1, std::lround(c * width)); }

// The projection shortcut (1x1 conv with the stride → BN), when present.
struct Downsample {
  Downsample(Backend& be, const std::string& p, int64_t cin, int64_t cout, int64_t stride, DType ct)
      : conv(be, p + ".downsample.0.weight", cin, cout, 1, stride, 0, ct), bn(p + ".downsample.1", cout, be.device()) {}
  Conv2d conv;
  BatchNorm bn;
  Tensor a, b, da, dx;
};

// What both block kinds share: their (conv, BN) units in PyTorch's order, and the shortcut.
class BlockBase : public Block {
 public:
  void register_in(Registry& r) override {
    for (auto [conv, bn] : units_) {
      conv->register_in(r);
      bn->register_in(r);
    }
  }
  void init(uint64_t seed) override {
    for (auto [conv, bn] : units_) init_conv_weight(conv->weight, seed);
  }
  std::vector<BatchNorm*> bns() override {
    std::vector<BatchNorm*> v;
    for (auto [conv, bn] : units_) v.push_back(bn);
    return v;
  }

 protected:
  // Call at the end of the derived constructor, after units_ holds the main path.
  void add_shortcut(Backend& be, const std::string& p, int64_t cin, int64_t cout, int64_t stride, DType ct) {
    if (stride == 1 && cin == cout) return;
    down_ = std::make_unique<Downsample>(be, p, cin, cout, stride, ct);
    units_.emplace_back(&down_->conv, &down_->bn);
  }
  const Tensor& shortcut_forward(Backend& be, const Tensor& x, int G, BnMode mode) {
    if (!down_) return x;
    down_->conv.forward(x, down_->a);
    down_->bn.forward(be, down_->a, down_->b, G, mode, false);
    return down_->b;
  }
  // g = ∂L/∂(main + shortcut); adds the shortcut's input gradient into dx.
  void shortcut_backward(Backend& be, Tensor& g, Tensor& dx) {
    if (!down_) return be.add_inplace(dx, g);
    down_->bn.backward(be, down_->a, down_->b, g, down_->da);
    down_->conv.backward(*x_, down_->da, &down_->dx);
    be.add_inplace(dx, down_->dx);
  }

  std::vector<std::pair<Conv2d*, BatchNorm*>> units_;
  std::unique_ptr<Downsample> down_;
  const Tensor* x_ = nullptr;
};

// 3x3 → BN → ReLU → 3x3 → BN, + shortcut, ReLU.
class BasicBlock final : public BlockBase {
 public:
  BasicBlock(Backend& be, const std::string& p, int64_t cin, int64_t planes, int64_t stride, DType ct)
      : conv1_(be, p + ".conv1.weight", cin, planes, 3, stride, 1, ct),
        bn1_(p + ".bn1", planes, be.device()),
        conv2_(be, p + ".conv2.weight", planes, planes, 3, 1, 1, ct),
        bn2_(p + ".bn2", planes, be.device()) {
    units_ = {{&conv1_, &bn1_}, {&conv2_, &bn2_}};
    add_shortcut(be, p, cin, planes, stride, ct);
  }
  void forward(Backend& be, const Tensor& x, int G, BnMode mode) override {
    x_ = &x;
    conv1_.forward(x, a1_);
    bn1_.forward(be, a1_, r1_, G, mode, true);
    conv2_.forward(r1_, a2_);
    bn2_.forward(be, a2_, b2_, G, mode, false);
    be.add_relu(b2_, shortcut_forward(be, x, G, mode), out);
  }
  void backward(Backend& be, Tensor& dout, Tensor& dx) override {
    be.relu_backward(out, dout);  // dout is now ∂L/∂(b2 + shortcut)
    bn2_.backward(be, a2_, b2_, dout, da2_);
    conv2_.backward(r1_, da2_, &dr1_);
    bn1_.backward(be, a1_, r1_, dr1_, da1_);
    conv1_.backward(*x_, da1_, &dx);
    shortcut_backward(be, dout, dx);
  }

 private:
  Conv2d conv1_;
  BatchNorm bn1_;
  Conv2d conv2_;
  BatchNorm bn2_;
  Tensor a1_, r1_, a2_, b2_, da2_, dr1_, da1_;
};

// 1x1 → BN → ReLU → 3x3 (stride) → BN → ReLU → 1x1 (4·planes) → BN, + shortcut, ReLU.
class BottleneckBlock final : public BlockBase {
 public:
  BottleneckBlock(Backend& be, const std::string& p, int64_t cin, int64_t planes, int64_t stride, DType ct)
      : conv1_(be, p + ".conv1.weight", cin, planes, 1, 1, 0, ct),
        bn1_(p + ".bn1", planes, be.device()),
        conv2_(be, p + ".conv2.weight", planes, planes, 3, stride, 1, ct),
        bn2_(p + ".bn2", planes, be.device()),
        conv3_(be, p + ".conv3.weight", planes, planes * 4, 1, 1, 0, ct),
        bn3_(p + ".bn3", planes * 4, be.device()) {
    units_ = {{&conv1_, &bn1_}, {&conv2_, &bn2_}, {&conv3_, &bn3_}};
    add_shortcut(be, p, cin, planes * 4, stride, ct);
  }
  void forward(Backend& be, const Tensor& x, int G, BnMode mode) override {
    x_ = &x;
    conv1_.forward(x, a1_);
    bn1_.forward(be, a1_, r1_, G, mode, true);
    conv2_.forward(r1_, a2_);
    bn2_.forward(be, a2_, r2_, G, mode, true);
    conv3_.forward(r2_, a3_);
    bn3_.forward(be, a3_, b3_, G, mode, false);
    be.add_relu(b3_, shortcut_forward(be, x, G, mode), out);
  }
  void backward(Backend& be, Tensor& dout, Tensor& dx) override {
    be.relu_backward(out, dout);
    bn3_.backward(be, a3_, b3_, dout, da3_);
    conv3_.backward(r2_, da3_, &dr2_);
    bn2_.backward(be, a2_, r2_, dr2_, da2_);
    conv2_.backward(r1_, da2_, &dr1_);
    bn1_.backward(be, a1_, r1_, dr1_, da1_);
    conv1_.backward(*x_, da1_, &dx);
    shortcut_backward(be, dout, dx);
  }

 private:
  Conv2d conv1_;
  BatchNorm bn1_;
  Conv2d conv2_;
  BatchNorm bn2_;
  Conv2d conv3_;
  BatchNorm bn3_;
  Tensor a1_, r1_, a2_, r2_, a3_, b3_, da3_, dr2_, da2_, dr1_, da1_;
};

}  // namespace

void validate(const EncoderConfig& cfg) {
  check_setting("arch", cfg.arch);
  check_setting("width", cfg.width);
  check_setting("precision", cfg.precision);
}

ResNet::ResNet(Backend& be, const EncoderConfig& cfg, const std::string& prefix) : be_(be), cfg_(cfg) {
  validate(cfg);
  const ArchSpec& a = *find_arch(cfg.arch);
  const int64_t stem = scaled(64, cfg.width);
  const DType ct = cfg.conv_compute();
  if (cfg.small_stem)
    conv1_ = std::make_unique<Conv2d>(be, prefix + "conv1.weight", 3, stem, 3, 1, 1, ct);
  else
    conv1_ = std::make_unique<Conv2d>(be, prefix + "conv1.weight", 3, stem, 7, 2, 3, ct);
  bn1_ = std::make_unique<BatchNorm>(prefix + "bn1", stem, be.device());
  int64_t cin = stem;
  for (int s = 0; s < 4; ++s) {
    const int64_t planes = scaled(64 << s, cfg.width);
    for (int i = 0; i < a.blocks[s]; ++i) {
      const int64_t stride = (s > 0 && i == 0) ? 2 : 1;
      const std::string p = prefix + "layer" + std::to_string(s + 1) + "." + std::to_string(i);
      if (a.bottleneck) {
        blocks_.push_back(std::make_unique<BottleneckBlock>(be, p, cin, planes, stride, ct));
        cin = planes * 4;
      } else {
        blocks_.push_back(std::make_unique<BasicBlock>(be, p, cin, planes, stride, ct));
        cin = planes;
      }
    }
  }
  feat_ = cin;
}

void ResNet::register_in(Registry& r) {
  conv1_->register_in(r);
  bn1_->register_in(r);
  for (auto& b : blocks_) b->register_in(r);
}

void ResNet::init(uint64_t seed) {
  init_conv_weight(conv1_->weight, seed);
  for (auto& b : blocks_) b->init(seed);
}

std::vector<BatchNorm*> ResNet::bns() {
  std::vector<BatchNorm*> v{bn1_.get()};
  for (auto& b : blocks_)
    for (BatchNorm* bn : b->bns()) v.push_back(bn);
  return v;
}

const Tensor& ResNet::forward(const Tensor& x, int G, BnMode mode) {
  M2T_CHECK(x.ndim() == 4 && x.dim(3) == 3, "encoder input must be [N, H, W, 3] (NHWC), got ",
            shape_str(x.shape()));
  x_ = &x;
  conv1_->forward(x, c1_);
  bn1_->forward(be_, c1_, r1_, G, mode, true);
  const Tensor* h = &r1_;
  if (!cfg_.small_stem) {
    be_.maxpool_forward(r1_, p_, pool_idx_);
    h = &p_;
  }
  for (auto& b : blocks_) {
    b->forward(be_, *h, G, mode);
    h = &b->out;
  }
  be_.avgpool_forward(*h, feat_out_);
  return feat_out_;
}

void ResNet::backward(const Tensor& dfeat) {
  const Tensor& last = blocks_.back()->out;
  be_.avgpool_backward(dfeat, last.shape(), g0_);
  // Walk the blocks backwards, ping-ponging the gradient between g0_ and g1_.
  Tensor* g = &g0_;
  Tensor* gnext = &g1_;
  if (on_grad_ready && block_params_.empty())
    for (auto& b : blocks_) {
      Registry r;
      b->register_in(r);
      block_params_.push_back(r.params());
    }
  for (size_t i = blocks_.size(); i-- > 0;) {
    blocks_[i]->backward(be_, *g, *gnext);
    std::swap(g, gnext);
    if (on_grad_ready)
      for (Param* p : block_params_[i]) on_grad_ready(*p);
  }
  if (!cfg_.small_stem) {
    be_.maxpool_backward(*g, pool_idx_, r1_.shape(), dr1_);
    g = &dr1_;
  }
  bn1_->backward(be_, c1_, r1_, *g, dc1_);
  conv1_->backward(*x_, dc1_, nullptr);  // no gradient for the images
  if (on_grad_ready) {
    on_grad_ready(conv1_->weight);
    on_grad_ready(bn1_->gamma);
    on_grad_ready(bn1_->beta);
  }
}

}  // namespace m2t
