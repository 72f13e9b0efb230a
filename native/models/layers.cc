#include "models/layers.h"

#include <cmath>

#include "core/error.h"

namespace m2t {

Conv2d::Conv2d(Backend& be, std::string name, int64_t cin, int64_t cout, int64_t k, int64_t stride, int64_t pad)
    : kernel_(be.make_conv({cin, cout, k, stride, pad})) {
  weight.name = std::move(name);
  weight.kind = ParamKind::ConvWeight;
  weight.value = Tensor({cout, cin, k, k});
  weight.grad = Tensor({cout, cin, k, k});
}

void Conv2d::backward(const Tensor& x, const Tensor& dy, Tensor* dx) {
  kernel_->backward_weights(x, dy, weight.grad);
  if (dx) kernel_->backward_data(dy, weight.value, x.shape(), *dx);
}

BatchNorm::BatchNorm(std::string name, int64_t channels) : name_(std::move(name)), C_(channels) {
  gamma = {name_ + ".weight", ParamKind::BnWeight, Tensor({channels}), Tensor({channels})};
  beta = {name_ + ".bias", ParamKind::BnBias, Tensor({channels}), Tensor({channels})};
  for (int64_t c = 0; c < channels; ++c) gamma.value.data()[c] = 1.0f;
  running_mean = Tensor({channels});
  running_var = Tensor({channels});
  for (int64_t c = 0; c < channels; ++c) running_var.data()[c] = 1.0f;
  num_batches_tracked = Tensor(Shape{});
}

void BatchNorm::register_in(Registry& r) {
  r.param(gamma);
  r.param(beta);
  r.buffer(name_ + ".running_mean", running_mean);
  r.buffer(name_ + ".running_var", running_var);
  r.buffer(name_ + ".num_batches_tracked", num_batches_tracked, /*is_int64=*/true);
}

void BatchNorm::forward(Backend& be, const Tensor& x, Tensor& y, int G, BnMode mode, bool relu) {
  const int64_t C = C_;
  M2T_CHECK(x.shape().back() == C, name_, ": input ", shape_str(x.shape()), " does not have ", C, " channels");
  M2T_CHECK(x.dim(0) % G == 0, name_, ": batch ", x.dim(0), " does not split into ", G, " views");
  G_ = G;
  relu_ = relu;
  scale_.resize(G * C);
  shift_.resize(G * C);
  const float* g = gamma.value.data();
  const float* b = beta.value.data();
  if (mode == BnMode::Momentum) return momentum_forward(be, x, y, G, relu);
  if (mode == BnMode::Infer) {
    for (int i = 0; i < G; ++i)
      for (int64_t c = 0; c < C; ++c) {
        const float s = g[c] / std::sqrt(running_var.data()[c] + kEps);
        scale_[i * C + c] = s;
        shift_[i * C + c] = b[c] - running_mean.data()[c] * s;
      }
    be.bn_apply(x, C, G, scale_.data(), shift_.data(), relu, y);
    return;
  }
  // Train: normalise each view with its own biased statistics; update running stats once per view
  // (as the reference's separate calls do), with the unbiased variance.
  mean_.resize(G * C);
  var_.resize(G * C);
  invstd_.resize(G * C);
  be.bn_stats(x, C, G, mean_.data(), var_.data());
  const double n = static_cast<double>(x.numel() / C / G);
  const double unbias = n > 1 ? n / (n - 1) : 1.0;
  for (int i = 0; i < G; ++i)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t k = i * C + c;
      invstd_[k] = 1.0f / std::sqrt(var_[k] + kEps);
      scale_[k] = g[c] * invstd_[k];
      shift_[k] = b[c] - mean_[k] * scale_[k];
      float& rm = running_mean.data()[c];
      float& rv = running_var.data()[c];
      rm = 0.9f * rm + 0.1f * mean_[k];
      rv = 0.9f * rv + 0.1f * static_cast<float>(var_[k] * unbias);
    }
  num_batches_tracked.data()[0] += static_cast<float>(G);
  be.bn_apply(x, C, G, scale_.data(), shift_.data(), relu, y);
}

// Spec §2, momentum BN. Groups are the successive calls of the reference, in call order; both
// calls of a pair normalise with the pre-update running stats and α.
void BatchNorm::momentum_forward(Backend& be, const Tensor& x, Tensor& y, int G, bool relu) {
  const int64_t C = C_;
  std::vector<float> mb(G * C), vb(G * C);
  be.bn_stats(x, C, G, mb.data(), vb.data());
  const double n = static_cast<double>(x.numel() / C / G);
  const double unbias = n > 1 ? n / (n - 1) : 1.0;
  const double extra = mbn.double_unbias ? unbias : 1.0;
  const float* g = gamma.value.data();
  const float* b = beta.value.data();
  float* rm = running_mean.data();
  float* rv = running_var.data();
  stash_mean.resize(C);
  stash_var.resize(C);
  // Normalise every group first: the running-stat update of a pair happens after its second call,
  // and a pair never spans past the end of this batch when G is even and the stash starts empty.
  const double a = alpha;
  for (int i = 0; i < G; ++i)
    for (int64_t c = 0; c < C; ++c) {
      const int64_t k = i * C + c;
      const double v_unb = vb[k] * unbias;  // batch variance, unbiased
      const double mu_t = a * mb[k] + (1 - a) * rm[c];
      const double v_t = a * v_unb * extra + (1 - a) * rv[c];
      const double s = g[c] / std::sqrt(v_t + kEps);
      scale_[k] = static_cast<float>(s);
      shift_[k] = static_cast<float>(b[c] - mu_t * s);
    }
  be.bn_apply(x, C, G, scale_.data(), shift_.data(), relu, y);
  for (int i = 0; i < G; ++i) {
    if (!stash_full) {
      for (int64_t c = 0; c < C; ++c) {
        stash_mean[c] = mb[i * C + c];
        stash_var[c] = static_cast<float>(vb[i * C + c] * unbias);
      }
      stash_full = true;
      continue;
    }
    for (int64_t c = 0; c < C; ++c) {
      const double m = 0.5 * (mb[i * C + c] + stash_mean[c]);
      const double v = 0.5 * (vb[i * C + c] * unbias + stash_var[c]) * extra;
      rm[c] = static_cast<float>(alpha * m + (1 - alpha) * rm[c]);
      rv[c] = static_cast<float>(alpha * v + (1 - alpha) * rv[c]);
    }
    stash_full = false;
    pairs += 1;
    alpha = (std::cos(M_PI * static_cast<double>(pairs) / static_cast<double>(mbn.total_pairs)) + 1.0) / 2.0;
  }
}

void BatchNorm::backward(Backend& be, const Tensor& x, const Tensor& y, Tensor& dy, Tensor& dx) {
  be.bn_backward(x, relu_ ? &y : nullptr, dy, C_, G_, mean_.data(), invstd_.data(), gamma.value.data(), dx,
                 gamma.grad.data(), beta.grad.data());
}

Linear::Linear(std::string name, int64_t in, int64_t out) {
  weight = {name + ".weight", ParamKind::LinearWeight, Tensor({out, in}), Tensor({out, in})};
  bias = {name + ".bias", ParamKind::LinearBias, Tensor({out}), Tensor({out})};
}

Mlp::Mlp(const std::string& prefix, int i, int64_t in, int64_t hidden, int64_t out)
    : l0(prefix + std::to_string(i), in, hidden),
      bn(prefix + std::to_string(i + 1), hidden),
      l3(prefix + std::to_string(i + 3), hidden, out) {}

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
