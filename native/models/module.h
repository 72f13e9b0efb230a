// Parameters, buffers and the registry that names them as PyTorch does (spec §1).
#pragma once
#include <map>
#include <string>
#include <vector>

#include "core/backend.h"
#include "core/tensor.h"

namespace m2t {

enum class ParamKind { ConvWeight, LinearWeight, LinearBias, BnWeight, BnBias };

struct Param {
  std::string name;  // e.g. "student_encoder.layer1.0.conv1.weight"
  ParamKind kind;
  Tensor value, grad;
  // LARS adapts the learning rate of conv and linear weights only (spec §4).
  bool lars_adapted() const { return kind == ParamKind::ConvWeight || kind == ParamKind::LinearWeight; }
};

// A named tensor of a state dict. Integer buffers (num_batches_tracked) are held as float and
// written as int64 so checkpoints load in PyTorch unchanged.
struct Entry {
  std::string name;
  Tensor* value;
  bool is_param;
  bool is_int64 = false;
};

// Collects parameters and buffers in definition order (= PyTorch's state_dict order).
class Registry {
 public:
  void param(Param& p) {
    params_.push_back(&p);
    entries_.push_back({p.name, &p.value, true});
  }
  void buffer(const std::string& name, Tensor& t, bool is_int64 = false) {
    entries_.push_back({name, &t, false, is_int64});
  }
  // Lists every entry of `other` too (a view over several modules; parameters stay entries only).
  void include(const Registry& other) {
    for (const Entry& e : other.entries_) entries_.push_back(e);
  }
  const std::vector<Param*>& params() const { return params_; }
  const std::vector<Entry>& entries() const { return entries_; }

 private:
  std::vector<Param*> params_;
  std::vector<Entry> entries_;
};

struct StTensor;
// Copies named tensors into `model` (and `optimizer` when include_optimizer). Every entry of those
// must be present with its shape; a key of neither registry is an error. Validates everything
// before copying anything, so a failed load leaves the state as it was. Errors name the key.
void load_entries(const std::map<std::string, StTensor>& tensors, const Registry& model, const Registry& optimizer,
                  bool include_optimizer);

// Weight initialisation (spec §1), seeded per (seed, tensor name): independent of creation order.
void init_conv_weight(Param& p, uint64_t seed);    // normal(0, sqrt(2 / fan_out))
void init_linear(Param& w, Param& b, uint64_t seed);  // uniform(±1/sqrt(fan_in)) for both
void init_normal(Tensor& t, const std::string& name, uint64_t seed, double mean, double std);

}  // namespace m2t
