#include "models/probe.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "models/m2t.h"

namespace m2t {

MemoryPlan plan_probe(const ProbeConfig& cfg, int64_t n, int64_t h, int64_t w) {
  const EncoderPlan e = plan_encoder(cfg.encoder, n, h, w);
  const int64_t K = std::max<int64_t>(cfg.num_classes, 1);
  const int64_t trained = e.feat * K + K + 2 * K;  // fc weight and bias, BN γ and β
  MemoryPlan m;
  m.state_floats = e.params + e.buffers + trained + 2 * K + 1;
  m.parameters = 4 * m.state_floats;
  m.gradients = 4 * trained;
  m.optimizer = 4 * trained;
  if (n == 0) return m;
  // The encoder keeps nothing (work slots only); the input, features, max-pool argmax, fc output,
  // logits and their gradients, and BN statistics (inference: scale and shift; the classifier's BN
  // trains: five per channel).
  m.activations = e.activation_bytes(/*keep=*/false) + 4 * (n * h * w * 3 + n * e.feat + e.pool_idx + 4 * n * K + e.buffers + 5 * K);
  return m;
}

LinearProbe::LinearProbe(Backend& be, const ProbeConfig& cfg, Comm* comm)
    : be_(be), cfg_(cfg), comm_(comm ? comm : &local_comm_), enc_(be, cfg.encoder, "encoder."),
      fc_("fc.0", enc_.feature_dim(), std::max<int64_t>(cfg.num_classes, 1), be.device()),
      bn_("fc.1", std::max<int64_t>(cfg.num_classes, 1), be.device()) {
  if (cfg.num_classes < 2 || cfg.num_classes > (1 << 24))
    fail(ErrorKind::RangeError, "numClasses: must be in [2, 2^24], got ", cfg.num_classes);
  validate(cfg.optimizer);
  enc_.register_in(encoder_);
  // The encoder is frozen: its activations are transient and its parameters need no gradients.
  enc_.set_keep_for_backward(false);
  for (Param* p : encoder_.params()) p->grad = Tensor();
  enc_.init(cfg.seed);
  fc_.register_in(classifier_);
  bn_.register_in(classifier_);
  model_.include(encoder_);
  model_.include(classifier_);
  init_normal(fc_.weight.value, fc_.weight.name, cfg.seed, 0.0, 0.01);  // bias stays 0
  classifier_arena_ = ParamArena(classifier_.params(), be.device(), /*with_grads=*/true);
  opt_ = std::make_unique<Optimizer>(be, cfg.optimizer, classifier_arena_);
  opt_->register_in(optim_state_);
}

void LinearProbe::load_encoder(const std::map<std::string, StTensor>& tensors, const std::string& prefix) {
  for (const Entry& e : encoder_.entries()) {
    const std::string key = prefix + e.name.substr(std::strlen("encoder."));
    auto it = tensors.find(key);
    if (it == tensors.end()) fail(ErrorKind::Error, "encoder: missing key '", key, "'");
    if (numel_of(it->second.shape) != e.value->numel() ||
        (e.value->ndim() > 0 && it->second.shape != e.value->shape()))
      fail(ErrorKind::Error, "encoder: key '", key, "' has shape ", shape_str(it->second.shape), ", expected ",
           shape_str(e.value->shape()), " (different arch or width?)");
  }
  for (const Entry& e : encoder_.entries()) {
    const StTensor& t = tensors.at(prefix + e.name.substr(std::strlen("encoder.")));
    e.value->copy_from_host(t.data.data());
  }
}

const Tensor& LinearProbe::features(const Tensor& x) {
  use_threads(cfg_.threads);
  return enc_.forward(x, 1, BnMode::Infer);
}

const Tensor& LinearProbe::classify(const Tensor& x, BnMode bn_mode) {
  feat_ = &features(x);
  fc_.forward(be_, *feat_, h_);
  bn_.forward(be_, h_, logits_, 1, bn_mode, false);
  return logits_;
}

double LinearProbe::train_step(const Tensor& x, const Tensor& labels, double lr) {
  const Tensor& logits = classify(x, BnMode::Train);
  be_.cross_entropy(logits, labels, &dlogits_, loss_);
  bn_.gamma.grad.zero();
  bn_.beta.grad.zero();
  bn_.backward(be_, h_, logits_, dlogits_, dh_);
  fc_.backward(be_, *feat_, dh_, nullptr);
  // Data-parallel: g ← (1/P) Σ_p g_p over the classifier's gradients (the encoder is frozen); BatchNorm1d's
  // batch statistics stay per process, as under the reference's DistributedDataParallel.
  average_gradients(*comm_, be_, classifier_arena_);
  opt_->step(lr);
  float loss = 0;
  loss_.copy_to_host(&loss);
  return loss;
}

ProbeEval LinearProbe::evaluate(const Tensor& x, const Tensor& labels, Tensor& out) {
  const Tensor& logits = classify(x, BnMode::Infer);
  be_.cross_entropy(logits, labels, nullptr, loss_);
  be_.count_correct(logits, labels, counts_);
  out.resize(logits.shape());
  out.copy_from(logits);
  float loss = 0;
  int32_t c[2] = {0, 0};
  loss_.copy_to_host(&loss);
  counts_.copy_to_host(c);
  return {loss, c[0], c[1]};
}

void LinearProbe::load_state(const std::map<std::string, StTensor>& tensors, bool include_optimizer) {
  load_entries(tensors, model_, optim_state_, include_optimizer);
  if (include_optimizer) opt_->set_started(true);
}

void LinearProbe::save(const std::string& path, std::map<std::string, std::string> metadata) const {
  metadata["format"] = "momentum2-teacher-probe/1";
  metadata["probe.optimizer_started"] = opt_->started() ? "true" : "false";
  save_entries(path, {&model_, &optim_state_}, metadata);
}

std::map<std::string, std::string> LinearProbe::load(const std::string& path) {
  StFile f = read_safetensors(path);
  try {
    load_state(f.tensors, true);
  } catch (const Error& e) {
    fail(e.kind(), path, ": ", e.what());
  }
  opt_->set_started(f.metadata["probe.optimizer_started"] != "false");
  return f.metadata;
}

}  // namespace m2t
