// SGD (PyTorch semantics) and LARS (docs/algorithm.md, "LARS") as multi-tensor updates over the
// parameters' flat arenas: one momentum buffer per arena, laid out like it.
#pragma once
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/param.h"
#include "core/settings.h"

namespace m2t {

// Defaults, ranges and docs: core/engine_settings.json ("optimizer.*").
struct OptimizerConfig {
  std::string name = setting_default_string("optimizer.name");  // "sgd" | "lars"
  double momentum = setting_default_number("optimizer.momentum");
  double weight_decay = setting_default_number("optimizer.weightDecay");
  double eta = setting_default_number("optimizer.eta");  // LARS trust coefficient
};

void validate(const OptimizerConfig& cfg);

class Optimizer {
 public:
  // `arena` (parameters with gradients) must outlive the optimizer.
  Optimizer(Backend& be, const OptimizerConfig& cfg, ParamArena& arena);
  // nonfinite: the backend's flag (core/backend.h), or null.
  void step(double lr, Tensor* nonfinite = nullptr);
  // Momentum buffers by parameter name, registered as "optimizer.<name>.momentum_buffer".
  void register_in(Registry& r);
  // False until the first step (SGD's buffer then starts as the first update, not μ·0 + d).
  bool started() const { return started_; }
  void set_started(bool s) { started_ = s; }
  const OptimizerConfig& config() const { return cfg_; }

 private:
  Backend& be_;
  OptimizerConfig cfg_;
  ParamArena& arena_;
  std::vector<Tensor> bufs_;      // one flat buffer per arena flat
  std::vector<Tensor> buf_views_; // per parameter, in arena order
  bool started_ = false;
};

}  // namespace m2t
