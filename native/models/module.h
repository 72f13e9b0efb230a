// Model-side helpers over core/param.h: state loading, saving, and weight initialisation
// (docs/algorithm.md, "The model").
#pragma once
#include <map>
#include <string>
#include <vector>

#include "comm/comm.h"
#include "core/backend.h"
#include "core/param.h"
#include "core/tensor.h"

namespace m2t {

struct StTensor;
// Data parallelism in one pass: every gradient of `arena` ← (1/P) Σ_p over the P processes of `comm`
// (nothing in one process). The Momentum² Teacher's CPU step overlaps this with its backward instead
// (comm/grad_bucketer.h).
void average_gradients(Comm& comm, Backend& be, ParamArena& arena);

// Copies named tensors into `model` (and `optimizer` when include_optimizer). Every entry of those
// must be present with its shape; a key of neither registry is an error. Validates everything
// before copying anything, so a failed load leaves the state as it was. Errors name the key.
void load_entries(const std::map<std::string, StTensor>& tensors, const Registry& model, const Registry& optimizer,
                  bool include_optimizer);
// Writes every entry of `regs` (copied to the host) and `metadata` as one safetensors file.
void save_entries(const std::string& path, const std::vector<const Registry*>& regs,
                  const std::map<std::string, std::string>& metadata);

// Weight initialisation (docs/algorithm.md, "The model", initialisation), seeded per (seed, tensor name):
// independent of creation order. Values are drawn on the host and copied to the tensor's device.
void init_conv_weight(Param& p, uint64_t seed);    // normal(0, sqrt(2 / fan_out))
void init_linear(Param& w, Param& b, uint64_t seed);  // uniform(±1/sqrt(fan_in)) for both
void init_normal(Tensor& t, const std::string& name, uint64_t seed, double mean, double std);

}  // namespace m2t
