// The models' memory plans (plan_m2t, plan_probe: the layouts the models allocate) as the binding
// states them, checked against the memory this process may use before anything is allocated.
#pragma once
#include <cstdint>
#include <string>

#include "models/m2t.h"
#include "models/probe.h"

namespace m2t::binding {

struct BatchShape {
  int64_t n = 0, h = 0, w = 0;  // n == 0: no batch (model memory only)
};

struct MemoryEstimate {
  int64_t state_floats = 0;      // exact element count of the state dict (model, no optimizer)
  int64_t model_bytes = 0;       // parameters + gradients + optimizer buffers + teacher
  int64_t activation_bytes = 0;  // one step (or forward pass) on the batch
  double activation_bytes_per_image = 0;  // the plan's slope in the batch
  MemoryPlan plan;               // by category (batches too large for int64 arithmetic: model only)
  int64_t total() const { return model_bytes + activation_bytes; }
};

MemoryEstimate estimate_m2t(const M2TConfig& c, const BatchShape& b);
MemoryEstimate estimate_probe(const ProbeConfig& c, const BatchShape& b);

// Bytes this process may still allocate: MemAvailable of /proc/meminfo, capped by the cgroup
// limit (memory.max − memory.current) when one is set. M2T_MEMORY_AVAILABLE (bytes) overrides
// both (tests, or to allow a run the estimate would refuse). `source` says where it came from.
int64_t available_memory(std::string* source);

// Throws m2t::Error (RangeError) naming the estimate and the memory available when the estimate
// exceeds it. `what` names the object (e.g. "Momentum2Teacher").
void check_memory(const MemoryEstimate& e, const std::string& what);

std::string format_bytes(double bytes);

}  // namespace m2t::binding
