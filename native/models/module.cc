#include "models/module.h"

#include <cmath>

#include <cstring>
#include <set>

#include "core/error.h"
#include "core/rng.h"
#include "io/safetensors.h"

namespace m2t {

static uint64_t key_of(const std::string& name, uint64_t seed) {
  return rng::splitmix64(rng::fnv1a64(name) ^ rng::splitmix64(seed));
}

void load_entries(const std::map<std::string, StTensor>& tensors, const Registry& model, const Registry& optimizer,
                  bool include_optimizer) {
  std::vector<const Registry*> regs{&model};
  if (include_optimizer) regs.push_back(&optimizer);
  for (const Registry* r : regs)
    for (const Entry& e : r->entries()) {
      auto it = tensors.find(e.name);
      if (it == tensors.end()) fail(ErrorKind::Error, "state: missing key '", e.name, "'");
      const bool scalar_ok = e.value->ndim() == 0 && numel_of(it->second.shape) == 1;
      if (it->second.shape != e.value->shape() && !scalar_ok)
        fail(ErrorKind::Error, "state: key '", e.name, "' has shape ", shape_str(it->second.shape), ", expected ",
             shape_str(e.value->shape()));
    }
  std::set<std::string> known;
  for (const Registry* r : {&model, &optimizer})
    for (const Entry& e : r->entries()) known.insert(e.name);
  for (const auto& kv : tensors)
    if (!known.count(kv.first)) fail(ErrorKind::Error, "state: unexpected key '", kv.first, "'");
  for (const Registry* r : regs)
    for (const Entry& e : r->entries()) e.value->copy_from_host(tensors.at(e.name).data.data());
}

void average_gradients(Comm& comm, Backend& be, ParamArena& arena) {
  if (comm.world_size() < 2) return;
  const float inv = 1.0f / static_cast<float>(comm.world_size());
  for (ParamArena::Flat& f : arena.flats()) {
    comm.allreduce_sum(f.grads);
    be.scale(f.grads, inv);
  }
}

void save_entries(const std::string& path, const std::vector<const Registry*>& regs,
                  const std::map<std::string, std::string>& metadata) {
  std::vector<Tensor> host;  // keeps the host copies (or the tensors themselves, on the CPU) alive
  std::vector<StItem> items;
  for (const Registry* r : regs)
    for (const Entry& e : r->entries()) {
      host.push_back(e.value->to(Device::cpu()));
      items.push_back({e.name, host.back().data(), e.value->shape(), e.is_int64});
    }
  write_safetensors(path, items, metadata);
}

void init_normal(Tensor& t, const std::string& name, uint64_t seed, double mean, double std) {
  const uint64_t key = key_of(name, seed);
  std::vector<float> v(t.numel());
  for (int64_t i = 0; i < t.numel(); ++i) v[i] = static_cast<float>(mean + std * rng::normal(key, i));
  t.copy_from_host(v.data());
}

void init_conv_weight(Param& p, uint64_t seed) {
  const auto& s = p.value.shape();  // OIHW
  const double fan_out = static_cast<double>(s[0] * s[2] * s[3]);
  init_normal(p.value, p.name, seed, 0.0, std::sqrt(2.0 / fan_out));
}

void init_linear(Param& w, Param& b, uint64_t seed) {
  const double bound = 1.0 / std::sqrt(static_cast<double>(w.value.dim(1)));
  for (Param* p : {&w, &b}) {
    const uint64_t key = key_of(p->name, seed);
    std::vector<float> v(p->value.numel());
    for (int64_t i = 0; i < p->value.numel(); ++i) v[i] = static_cast<float>(bound * (2.0 * rng::uniform53(key, i) - 1.0));
    p->value.copy_from_host(v.data());
  }
}

}  // namespace m2t
