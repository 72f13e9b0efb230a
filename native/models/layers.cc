#include "models/layers.h"

#include <cmath>

#include "core/error.h"

namespace m2t {

Conv2d::Conv2d(Backend& be, std::string name, int64_t cin, int64_t cout, int64_t k, int64_t stride, int64_t pad,
               DType compute)
    : kernel_(be.make_conv({cin, cout, k, stride, pad, compute})) {
  weight.name = std::move(name);
  weight.kind = ParamKind::ConvWeight;
  weight.value = Tensor({cout, cin, k, k}, be.device());
  weight.grad = Tensor({cout, cin, k, k}, be.device());
}

void Conv2d::backward(const Tensor& x, const Tensor& dy, Tensor* dx) {
  kernel_->backward_weights(x, dy, weight.grad);
  if (dx) kernel_->backward_data(dy, weight.value, x.shape(), *dx);
}

BatchNorm::BatchNorm(std::string name, int64_t channels, Device dev) : name_(std::move(name)), C_(channels) {
  gamma = {name_ + ".weight", ParamKind::BnWeight, Tensor({channels}, dev), Tensor({channels}, dev)};
  beta = {name_ + ".bias", ParamKind::BnBias, Tensor({channels}, dev), Tensor({channels}, dev)};
  gamma.value.fill(1.0f);
  running_mean = Tensor({channels}, dev);
  running_var = Tensor({channels}, dev);
  running_var.fill(1.0f);
  num_batches_tracked = Tensor(Shape{}, dev);
}

void BatchNorm::register_in(Registry& r) {
  r.param(gamma);
  r.param(beta);
  r.buffer(name_ + ".running_mean", running_mean);
  r.buffer(name_ + ".running_var", running_var);
  r.buffer(name_ + ".num_batches_tracked", num_batches_tracked, /*is_int64=*/true);
}

// docs/algorithm.md, "Batch norm": statistics, their fold into the affine map and the running
// statistics all stay on the device; only the momentum-BN schedule (α, pairs, which call of a
// pair) is host state, and it advances without reading anything back.
void BatchNorm::forward(Backend& be, const Tensor& x, Tensor& y, int G, BnMode mode, bool relu, Tensor* xhat,
                        const Tensor* residual) {
  const int64_t C = C_;
  M2T_CHECK(x.shape().back() == C, name_, ": input ", shape_str(x.shape()), " does not have ", C, " channels");
  M2T_CHECK(x.dim(0) % G == 0, name_, ": batch ", x.dim(0), " does not split into ", G, " views");
  G_ = G;
  relu_ = relu && !residual;  // with a residual the ReLU's mask is the caller's (see layers.h)
  xhat_ = nullptr;
  M2T_CHECK(!xhat || mode == BnMode::Train, name_, ": x̂ is saved for training batch norm only");
  if (mode == BnMode::Infer) {
    be.bn_fold_infer(running_mean, running_var, gamma.value, beta.value, G, scale_, shift_);
    be.bn_apply(x, C, G, scale_, shift_, residual, relu, y);
    return;
  }
  // Per-view batch statistics (biased variance) over n rows per view.
  be.bn_stats(x, C, G, mean_, var_);
  const int64_t n = x.numel() / C / G;
  if (mode == BnMode::Train) {
    // Each view normalised with its own statistics; running stats updated once per view (as the
    // reference's separate calls do), with the unbiased variance.
    be.bn_fold_train(mean_, var_, n, gamma.value, beta.value, running_mean, running_var, num_batches_tracked, invstd_,
                     scale_, shift_);
    if (xhat) {
      be.bn_apply_xhat(x, C, G, scale_, shift_, mean_, invstd_, residual, relu, y, *xhat);
      xhat_ = xhat;
    } else {
      be.bn_apply(x, C, G, scale_, shift_, residual, relu, y);
    }
    return;
  }
  // Momentum BN. Groups are the successive calls of the reference, in call order; both calls of a
  // pair normalise with the pre-update running stats and α: every group is normalised first,
  // then the pair's running-stat update (a pair never spans past the end of this batch when G is
  // even and the stash starts empty).
  be.bn_fold_momentum(mean_, var_, n, gamma.value, beta.value, running_mean, running_var, alpha, mbn.double_unbias,
                      scale_, shift_);
  be.bn_apply(x, C, G, scale_, shift_, residual, relu, y);
  if (stash_mean.numel() != C) {
    stash_mean = Tensor({C}, x.device());
    stash_var = Tensor({C}, x.device());
  }
  for (int i = 0; i < G; ++i) {
    be.bn_momentum_update(mean_, var_, i, n, alpha, mbn.double_unbias, stash_full, stash_mean, stash_var, running_mean,
                          running_var);
    if (!stash_full) {
      stash_full = true;
      continue;
    }
    stash_full = false;
    pairs += 1;
    alpha = (std::cos(M_PI * static_cast<double>(pairs) / static_cast<double>(mbn.total_pairs)) + 1.0) / 2.0;
  }
}

void BatchNorm::backward(Backend& be, const Tensor& x, const Tensor& y, const Tensor& dy, Tensor& dx) {
  if (xhat_)
    be.bn_backward_xhat(*xhat_, relu_ ? &y : nullptr, dy, C_, G_, invstd_, gamma.value, dx, gamma.grad, beta.grad);
  else
    be.bn_backward(x, relu_ ? &y : nullptr, dy, C_, G_, mean_, invstd_, gamma.value, dx, gamma.grad, beta.grad);
}

Linear::Linear(std::string name, int64_t in, int64_t out, Device dev) {
  weight = {name + ".weight", ParamKind::LinearWeight, Tensor({out, in}, dev), Tensor({out, in}, dev)};
  bias = {name + ".bias", ParamKind::LinearBias, Tensor({out}, dev), Tensor({out}, dev)};
}

Mlp::Mlp(const std::string& prefix, int i, int64_t in, int64_t hidden, int64_t out, Device dev)
    : l0(prefix + std::to_string(i), in, hidden, dev),
      bn(prefix + std::to_string(i + 1), hidden, dev),
      l3(prefix + std::to_string(i + 3), hidden, out, dev) {}

void Mlp::register_in(Registry& r) {
  l0.register_in(r);
  bn.register_in(r);
  l3.register_in(r);
}

void Mlp::init(uint64_t seed) {
  init_linear(l0.weight, l0.bias, seed);
  init_linear(l3.weight, l3.bias, seed);
}

void Mlp::forward(Backend& be, const Tensor& x, Tensor& y, int G, BnMode mode) {
  x_ = &x;
  l0.forward(be, x, h0_);
  bn.forward(be, h0_, h1_, G, mode, /*relu=*/true);
  l3.forward(be, h1_, y);
}

void Mlp::backward(Backend& be, const Tensor& dy, Tensor& dx) {
  l3.backward(be, h1_, dy, &dh1_);
  bn.backward(be, h0_, h1_, dh1_, dh0_);
  l0.backward(be, *x_, dh0_, &dx);
}

}  // namespace m2t
