#include "optim/optimizer.h"

#include <cmath>

#include "core/error.h"

namespace m2t {

void validate(const OptimizerConfig& c) {
  if (c.name != "sgd" && c.name != "lars")
    fail(ErrorKind::RangeError, "optimizer.name: expected 'sgd' or 'lars', got '", c.name, "'");
  if (!std::isfinite(c.momentum) || c.momentum < 0 || c.momentum >= 1)
    fail(ErrorKind::RangeError, "optimizer.momentum: must be in [0, 1), got ", c.momentum);
  if (!std::isfinite(c.weight_decay) || c.weight_decay < 0)
    fail(ErrorKind::RangeError, "optimizer.weightDecay: must be a finite number >= 0, got ", c.weight_decay);
  if (!std::isfinite(c.eta) || c.eta <= 0)
    fail(ErrorKind::RangeError, "optimizer.eta: must be a finite number > 0, got ", c.eta);
}

Optimizer::Optimizer(Backend& be, const OptimizerConfig& cfg, std::vector<Param*> params)
    : be_(be), cfg_(cfg), params_(std::move(params)) {
  validate(cfg_);
  bufs_.reserve(params_.size());
  for (Param* p : params_) bufs_.emplace_back(p->value.shape());
}

void Optimizer::register_in(Registry& r) {
  for (size_t i = 0; i < params_.size(); ++i)
    r.buffer("optimizer." + params_[i]->name + ".momentum_buffer", bufs_[i]);
}

void Optimizer::step(double lr) {
  const float wd = static_cast<float>(cfg_.weight_decay), mu = static_cast<float>(cfg_.momentum);
  for (size_t i = 0; i < params_.size(); ++i) {
    Param& p = *params_[i];
    if (cfg_.name == "sgd") {
      // d = g + wd·p; buf = μ·buf + d (buf = d on the first step); p ← p − lr·buf
      be_.momentum_update(p.value, p.grad, bufs_[i], wd, mu, 1.0f, static_cast<float>(lr), !started_);
      continue;
    }
    // LARS: actual_lr = lr·η·‖p‖/(‖g‖ + wd·‖p‖) for conv/linear weights when ‖p‖·‖g‖ > 1e-8;
    // buf ← μ·buf + actual_lr·(g + wd·p) (zeros at start); p ← p − buf.
    double actual = lr;
    if (p.lars_adapted()) {
      const double pn = std::sqrt(be_.sum_squares(p.value)), gn = std::sqrt(be_.sum_squares(p.grad));
      if (pn * gn > 1e-8) actual = lr * cfg_.eta * pn / (gn + cfg_.weight_decay * pn);
    }
    be_.momentum_update(p.value, p.grad, bufs_[i], wd, mu, static_cast<float>(actual), 1.0f, false);
  }
  started_ = true;
}

}  // namespace m2t
