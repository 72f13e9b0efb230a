// Up-front memory estimate of a model (parameters, gradients, optimizer buffers) and of one
// step's activations, checked against the memory this process may use before anything is
// allocated. The one place that knows the models' memory footprint: refine it here.
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
  int64_t model_bytes = 0;       // state + gradients + optimizer buffers
  int64_t activation_bytes = 0;  // one step (or forward pass) on the batch
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
