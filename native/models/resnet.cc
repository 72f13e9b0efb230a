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

// Output size of every strided layer here: 3x3/pad 1, 1x1/pad 0, the 7x7/2/pad 3 stem, the 3x3/2/pad 1 pool.
int64_t strided(int64_t h, int64_t stride) { return (h - 1) / stride + 1; }
// Elements of `bytes`-sized type for shape s, rounded up to whole 64 bytes.
int64_t rounded(const Shape& s, int64_t bytes) {
  const int64_t per = 64 / bytes;
  return (numel_of(s) + per - 1) / per * per;
}

// A block's activation shapes for input `in`: a1 = conv1's output (and bn1's), a2 = conv2's, out
// = the block's (conv3's for a bottleneck, conv2's for a basic block; the shortcut's).
struct BlockShapes {
  Shape a1, a2, out;
  bool down;
};
BlockShapes block_shapes(bool bottleneck, const Shape& in, int64_t planes, int64_t stride) {
  const int64_t n = in[0], oh = strided(in[1], stride), ow = strided(in[2], stride);
  const int64_t cout = bottleneck ? 4 * planes : planes;
  BlockShapes s;
  s.a1 = bottleneck ? Shape{n, in[1], in[2], planes} : Shape{n, oh, ow, planes};
  s.a2 = {n, oh, ow, planes};
  s.out = {n, oh, ow, cout};
  s.down = stride != 1 || in[3] != cout;
  return s;
}

// The projection shortcut (1x1 conv with the stride → BN), when present.
struct Downsample {
  Downsample(Backend& be, const std::string& p, int64_t cin, int64_t cout, int64_t stride, DType ct)
      : conv(be, p + ".downsample.0.weight", cin, cout, 1, stride, 0, ct), bn(p + ".downsample.1", cout, be.device()) {}
  Conv2d conv;
  BatchNorm bn;
  Tensor a, xh, b, da, dx;
};

// The x̂ a training BN saves (bf16 encoders bind one when training), else null.
Tensor* xhat_for(Tensor& xh, BnMode mode) { return xh.raw() && mode == BnMode::Train ? &xh : nullptr; }

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
    down_->bn.forward(be, down_->a, down_->b, G, mode, false, xhat_for(down_->xh, mode));
    return down_->b;
  }
  // g = ∂L/∂(main + shortcut); adds the shortcut's input gradient into dx (the main path's), masked by
  // [x > 0] when relu_input (Block::backward).
  void shortcut_backward(Backend& be, Tensor& g, Tensor& dx, bool relu_input) {
    if (down_) {
      down_->bn.backward(be, down_->a, down_->b, g, down_->da);
      down_->conv.backward(*x_, down_->da, &down_->dx);
    }
    const Tensor& dshort = down_ ? down_->dx : g;
    if (relu_input)
      be.add_relu_backward(dx, dshort, *x_);
    else
      be.add_inplace(dx, dshort);
  }

  // The shortcut's tensors (a block's output shape `out`, input `in`); see BasicBlock::bind.
  void bind_shortcut(ArenaBinder& b, const Shape& in, const Shape& out) {
    if (!down_) return;
    down_->a = b.conv_out(ArenaBinder::A, out);
    down_->xh = b.xhat(out);
    down_->b = b.at(ArenaBinder::C, out);
    if (b.saved) {
      down_->da = b.at(ArenaBinder::B, out);
      down_->dx = b.at_f32(ArenaBinder::C, in);
    }
  }
  Tensor bind_out(ArenaBinder& b, const Shape& s, int out_slot) { return b.saved ? b.keep(s) : b.at(out_slot, s); }

  std::vector<std::pair<Conv2d*, BatchNorm*>> units_;
  std::unique_ptr<Downsample> down_;
  const Tensor* x_ = nullptr;
  int64_t planes_ = 0, stride_ = 1;
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
    planes_ = planes, stride_ = stride;
  }
  // Kept: a1, r1, a2, out (+ the shortcut conv's output). Transient: the shortcut BN's output (C).
  // Forward keeping nothing: shortcut A → C, a1 A → r1 B → a2 A, bn2(a2) + shortcut → out P.
  // Backward: da2 A → dr1 B → da1 A → dx (the caller's), shortcut da B → dx C.
  Shape bind(ArenaBinder& b, const Shape& in, int out_slot) override {
    using S = ArenaBinder;
    const BlockShapes s = block_shapes(false, in, planes_, stride_);
    a1_ = b.conv_out(S::A, s.a1);
    xh1_ = b.xhat(s.a1);
    r1_ = b.keep_or(S::B, s.a1);
    a2_ = b.conv_out(S::A, s.out);
    xh2_ = b.xhat(s.out);
    bind_shortcut(b, in, s.out);
    out = bind_out(b, s.out, out_slot);
    if (b.saved) {
      da2_ = b.at(S::A, s.out);
      dr1_ = b.at_f32(S::B, s.a1);
      da1_ = b.at(S::A, s.a1);
    }
    return s.out;
  }
  void forward(Backend& be, const Tensor& x, int G, BnMode mode) override {
    x_ = &x;
    // The shortcut first: its conv output takes work slot A, which the main path's conv outputs reuse.
    const Tensor& shortcut = shortcut_forward(be, x, G, mode);
    conv1_.forward(x, a1_);
    bn1_.forward(be, a1_, r1_, G, mode, true, xhat_for(xh1_, mode));
    conv2_.forward(r1_, a2_);
    bn2_.forward(be, a2_, out, G, mode, true, xhat_for(xh2_, mode), &shortcut);
  }
  void backward(Backend& be, Tensor& dsum, Tensor& dx, bool relu_input) override {
    bn2_.backward(be, a2_, out, dsum, da2_);
    conv2_.backward(r1_, da2_, &dr1_);
    bn1_.backward(be, a1_, r1_, dr1_, da1_);
    conv1_.backward(*x_, da1_, &dx);
    shortcut_backward(be, dsum, dx, relu_input);
  }

 private:
  Conv2d conv1_;
  BatchNorm bn1_;
  Conv2d conv2_;
  BatchNorm bn2_;
  Tensor a1_, xh1_, r1_, a2_, xh2_, da2_, dr1_, da1_;
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
    planes_ = planes, stride_ = stride;
  }
  // Kept: a1, r1, a2, r2, a3, out (+ the shortcut conv's output). Transient: the shortcut BN's output
  // (C). Forward keeping nothing: shortcut A → C, a1 A → r1 B → a2 A → r2 B → a3 A, bn3(a3) + shortcut
  // → out P. Backward: da3 A → dr2 B → da2 A → dr1 B → da1 A → dx, shortcut da B → dx C.
  Shape bind(ArenaBinder& b, const Shape& in, int out_slot) override {
    using S = ArenaBinder;
    const BlockShapes s = block_shapes(true, in, planes_, stride_);
    a1_ = b.conv_out(S::A, s.a1);
    xh1_ = b.xhat(s.a1);
    r1_ = b.keep_or(S::B, s.a1);
    a2_ = b.conv_out(S::A, s.a2);
    xh2_ = b.xhat(s.a2);
    r2_ = b.keep_or(S::B, s.a2);
    a3_ = b.conv_out(S::A, s.out);
    xh3_ = b.xhat(s.out);
    bind_shortcut(b, in, s.out);
    out = bind_out(b, s.out, out_slot);
    if (b.saved) {
      da3_ = b.at(S::A, s.out);
      dr2_ = b.at_f32(S::B, s.a2);
      da2_ = b.at(S::A, s.a2);
      dr1_ = b.at_f32(S::B, s.a1);
      da1_ = b.at(S::A, s.a1);
    }
    return s.out;
  }
  void forward(Backend& be, const Tensor& x, int G, BnMode mode) override {
    x_ = &x;
    // The shortcut first: its conv output takes work slot A, which the main path's conv outputs reuse.
    const Tensor& shortcut = shortcut_forward(be, x, G, mode);
    conv1_.forward(x, a1_);
    bn1_.forward(be, a1_, r1_, G, mode, true, xhat_for(xh1_, mode));
    conv2_.forward(r1_, a2_);
    bn2_.forward(be, a2_, r2_, G, mode, true, xhat_for(xh2_, mode));
    conv3_.forward(r2_, a3_);
    bn3_.forward(be, a3_, out, G, mode, true, xhat_for(xh3_, mode), &shortcut);
  }
  void backward(Backend& be, Tensor& dsum, Tensor& dx, bool relu_input) override {
    bn3_.backward(be, a3_, out, dsum, da3_);
    conv3_.backward(r2_, da3_, &dr2_);
    bn2_.backward(be, a2_, r2_, dr2_, da2_);
    conv2_.backward(r1_, da2_, &dr1_);
    bn1_.backward(be, a1_, r1_, dr1_, da1_);
    conv1_.backward(*x_, da1_, &dx);
    shortcut_backward(be, dsum, dx, relu_input);
  }

 private:
  Conv2d conv1_;
  BatchNorm bn1_;
  Conv2d conv2_;
  BatchNorm bn2_;
  Conv2d conv3_;
  BatchNorm bn3_;
  Tensor a1_, xh1_, r1_, a2_, xh2_, r2_, a3_, xh3_, da3_, dr2_, da2_, dr1_, da1_;
};

}  // namespace

Tensor ArenaBinder::keep(const Shape& s) {
  Tensor t = saved->view(off, s);
  off += rounded(s, act_bytes);
  return t;
}

EncoderPlan plan_encoder(const EncoderConfig& cfg, int64_t n, int64_t h, int64_t w) {
  validate(cfg);
  const ArchSpec& a = *find_arch(cfg.arch);
  EncoderPlan p;
  p.act_bytes = static_cast<int64_t>(dtype_size(cfg.activation_dtype()));
  auto rounded = [&](const Shape& s) { return m2t::rounded(s, p.act_bytes); };
  auto bn = [&](int64_t ch) { p.params += 2 * ch, p.buffers += 2 * ch + 1; };
  auto act = [&](const Shape& s, int copies_kept) {
    p.saved += copies_kept * rounded(s);
    p.slot = std::max(p.slot, m2t::rounded(s, 4));
  };
  if (cfg.activation_dtype() != DType::F32) p.image = rounded({n, h, w, 3});
  const int64_t stem = scaled(64, cfg.width);
  const int64_t k = cfg.small_stem ? 3 : 7;
  p.params += 3 * stem * k * k;
  bn(stem);
  // Stem: conv and BN+ReLU outputs kept; the pool's output too (the first block's input).
  Shape x = {n, cfg.small_stem ? h : strided(h, 2), cfg.small_stem ? w : strided(w, 2), stem};
  act(x, 2);
  if (!cfg.small_stem) {
    x = {n, strided(x[1], 2), strided(x[2], 2), stem};
    act(x, 1);
    p.pool_idx = numel_of(x);
  }
  int64_t cin = stem;
  for (int s = 0; s < 4; ++s) {
    const int64_t planes = scaled(64 << s, cfg.width);
    for (int i = 0; i < a.blocks[s]; ++i) {
      const int64_t stride = (s > 0 && i == 0) ? 2 : 1;
      const BlockShapes b = block_shapes(a.bottleneck, x, planes, stride);
      const int64_t cout = b.out[3];
      if (a.bottleneck) {
        p.params += cin * planes + planes * planes * 9 + planes * cout;
        bn(planes), bn(planes), bn(cout);
        act(b.a1, 2), act(b.a2, 2), act(b.out, 2);  // a1 r1, a2 r2, a3 out
      } else {
        p.params += cin * planes * 9 + planes * planes * 9;
        bn(planes), bn(planes);
        act(b.a1, 2), act(b.out, 2);  // a1 r1, a2 out
      }
      if (b.down) {
        p.params += cin * cout;
        bn(cout);
        act(b.out, 1);
      }
      p.slot = std::max(p.slot, m2t::rounded(x, 4));
      x = b.out;
      cin = cout;
    }
  }
  p.feat = cin;
  if (n == 0) p.saved = p.slot = p.image = 0;
  return p;
}

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

// Points every activation at its arena view for input shape xs (EncoderPlan). Rebinding each
// forward costs a few hundred views; the arenas grow only when a larger input comes.
void ResNet::bind(const Shape& xs) {
  using S = ArenaBinder;
  const EncoderPlan p = plan_encoder(cfg_, xs[0], xs[1], xs[2]);
  ArenaBinder b;
  b.saved = keep_ ? (saved_src_ ? saved_src_ : &own_saved_) : nullptr;
  b.work = work_src_ ? work_src_ : &own_work_;
  b.slot = p.slot;
  b.act_bytes = p.act_bytes;
  const DType act = cfg_.activation_dtype();
  b.act = act;
  if (b.saved && (b.saved->numel() < p.saved || b.saved->dtype() != act)) *b.saved = Tensor({p.saved}, be_.device(), act);
  if (b.work->numel() < p.work() || b.work->dtype() != DType::F32) *b.work = Tensor({p.work()}, be_.device());
  if (p.image && (xin_.numel() < p.image || xin_.dtype() != act)) xin_ = Tensor({p.image}, be_.device(), act);
  const int64_t stem = bn1_->channels();
  Shape h = {xs[0], cfg_.small_stem ? xs[1] : strided(xs[1], 2), cfg_.small_stem ? xs[2] : strided(xs[2], 2), stem};
  const Shape c1 = h;
  // Keeping nothing: c1 A → r1 B → pool P0 (small stem: r1 P0); block i reads P[i%2], writes P[1-i%2].
  c1_ = b.conv_out(S::A, c1);
  xc1_ = b.xhat(c1);
  if (cfg_.small_stem) {
    r1_ = b.keep_or(S::P0, c1);
  } else {
    r1_ = b.keep_or(S::B, c1);
    h = {xs[0], strided(h[1], 2), strided(h[2], 2), stem};
    p_ = b.keep_or(S::P0, h);
  }
  for (size_t i = 0; i < blocks_.size(); ++i) h = blocks_[i]->bind(b, h, i % 2 ? S::P0 : S::P1);
  if (b.saved) {
    // The backward's block gradients ping-pong P0/P1 at whatever shape each block needs.
    g0_ = b.work->view(S::P0 * p.slot, {p.slot});
    g1_ = b.work->view(S::P1 * p.slot, {p.slot});
    dr1_ = b.at_f32(S::A, c1);
    dc1_ = b.at(S::B, c1);
    M2T_CHECK(b.off == p.saved, "memory plan: the encoder kept ", b.off, " floats, the plan says ", p.saved);
  }
}

const Tensor& ResNet::forward(const Tensor& x, int G, BnMode mode) {
  M2T_CHECK(x.ndim() == 4 && x.dim(3) == 3, "encoder input must be [N, H, W, 3] (NHWC), got ",
            shape_str(x.shape()));
  M2T_CHECK(x.dtype() == DType::F32, "encoder input must be f32 images, got ", dtype_name(x.dtype()));
  bind(x.shape());
  x_ = &x;
  if (cfg_.activation_dtype() != DType::F32) {
    // bf16 encoder: the images are rounded to bf16 once, here (the first conv reads them twice).
    xin_.resize(x.shape());
    be_.cast(x, xin_);
    x_ = &xin_;
  }
  conv1_->forward(*x_, c1_);
  bn1_->forward(be_, c1_, r1_, G, mode, true, xhat_for(xc1_, mode));
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
  be_.relu_backward(last, g0_);  // the last block's output ReLU; each block masks its input's (Block::backward)
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
    // Block 0's input is the stem's pool output (or, small stem, bn1's ReLU output: masked below).
    blocks_[i]->backward(be_, *g, *gnext, /*relu_input=*/i > 0);
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
