// SGD (PyTorch semantics) and LARS (spec §4) over a list of parameters, one momentum buffer each.
#pragma once
#include <string>
#include <vector>

#include "models/module.h"

namespace m2t {

struct OptimizerConfig {
  std::string name = "sgd";  // "sgd" | "lars"
  double momentum = 0.9;
  double weight_decay = 1e-4;
  double eta = 0.001;  // LARS trust coefficient
};

void validate(const OptimizerConfig& cfg);

class Optimizer {
 public:
  Optimizer(Backend& be, const OptimizerConfig& cfg, std::vector<Param*> params);
  void step(double lr);
  // Momentum buffers by parameter name, registered as "optimizer.<name>.momentum_buffer".
  void register_in(Registry& r);
  // False until the first step (SGD's buffer then starts as the first update, not μ·0 + d).
  bool started() const { return started_; }
  void set_started(bool s) { started_ = s; }
  const OptimizerConfig& config() const { return cfg_; }

 private:
  Backend& be_;
  OptimizerConfig cfg_;
  std::vector<Param*> params_;
  std::vector<Tensor> bufs_;
  bool started_ = false;
};

}  // namespace m2t
