// Parameters, the registry that names them as PyTorch does (docs/algorithm.md, "The model"),
// and the flat arenas parameters and gradients live in.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"

namespace m2t {

enum class ParamKind { ConvWeight, LinearWeight, LinearBias, BnWeight, BnBias };

struct Param {
  std::string name;  // e.g. "student_encoder.layer1.0.conv1.weight"
  ParamKind kind;
  Tensor value, grad;
  // LARS adapts the learning rate of conv and linear weights only (docs/algorithm.md, "LARS").
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

// One parameter's place in a flat buffer: elements [offset, offset + numel).
struct Segment {
  int64_t offset, numel;
  bool lars_adapted;
};

// Parameters (and, when asked, their gradients) packed into one flat buffer per dtype, in the
// given order, each starting on a 64-byte boundary (padding stays zero). Every Param's value and
// grad become views into the buffers, so whole-model ops (EMA, the optimizer's multi-tensor
// update, the bucketed all-reduce of multi-process training) are single passes over them.
// Two arenas packed from parameter lists of equal shapes have equal layouts.
class ParamArena {
 public:
  struct Flat {
    DType dtype;
    Tensor values, grads;  // grads empty when packed without gradients
    std::vector<Segment> segments;
    std::vector<Param*> params;
  };

  ParamArena() = default;
  // Copies current values in; gradients start at zero. Without gradients, each Param's grad is
  // released (a parameter that never trains, e.g. the teacher's).
  ParamArena(const std::vector<Param*>& params, Device dev, bool with_grads);

  const std::vector<Flat>& flats() const { return flats_; }
  std::vector<Flat>& flats() { return flats_; }
  // The flat of `dtype` (throws when there is none).
  Flat& flat(DType dtype);
  // A zeroed buffer laid out like flat(dtype).values (optimizer state), with per-param views.
  Tensor like(DType dtype, std::vector<Tensor>* views = nullptr);

 private:
  std::vector<Flat> flats_;
};

}  // namespace m2t
