#include "optim/optimizer.h"

#include <cmath>

#include "core/error.h"

namespace m2t {

void validate(const OptimizerConfig& c) {
  check_setting("optimizer.name", c.name);
  check_setting("optimizer.momentum", c.momentum);
  check_setting("optimizer.weightDecay", c.weight_decay);
  check_setting("optimizer.eta", c.eta);
}

Optimizer::Optimizer(Backend& be, const OptimizerConfig& cfg, ParamArena& arena)
    : be_(be), cfg_(cfg), arena_(arena) {
  validate(cfg_);
  for (ParamArena::Flat& f : arena_.flats()) {
    M2T_CHECK(!f.grads.empty(), "optimizer: the parameter arena has no gradients");
    M2T_CHECK(f.dtype == DType::F32, "optimizer: ", dtype_name(f.dtype), " parameters need f32 master weights");
    bufs_.push_back(arena_.like(f.dtype, &buf_views_));
  }
}

void Optimizer::register_in(Registry& r) {
  size_t i = 0;
  for (const ParamArena::Flat& f : arena_.flats())
    for (const Param* p : f.params) r.buffer("optimizer." + p->name + ".momentum_buffer", buf_views_[i++]);
}

void Optimizer::step(double lr, Tensor* nonfinite) {
  const float wd = static_cast<float>(cfg_.weight_decay), mu = static_cast<float>(cfg_.momentum);
  for (size_t k = 0; k < bufs_.size(); ++k) {
    ParamArena::Flat& f = arena_.flats()[k];
    if (cfg_.name == "sgd")
      // d = g + wd·p; buf = μ·buf + d (buf = d on the first step); p ← p − lr·buf
      be_.sgd_update(f.values, f.grads, bufs_[k], wd, mu, static_cast<float>(lr), !started_, nonfinite);
    else
      // LARS: per parameter, actual_lr from the norms (computed by the backend); buf ← μ·buf +
      // actual_lr·(g + wd·p) (zeros at start); p ← p − buf.
      be_.lars_update(f.values, f.grads, bufs_[k], f.segments, lr, cfg_.eta, cfg_.weight_decay, mu, nonfinite);
  }
  started_ = true;
}

}  // namespace m2t
