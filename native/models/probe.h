// Linear evaluation (docs/algorithm.md, "Linear evaluation"): frozen encoder (BN in inference mode, the teacher's running stats)
// → Linear(feat → classes) → BatchNorm1d → cross-entropy; SGD on the classifier only.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "comm/comm.h"
#include "io/safetensors.h"
#include "models/resnet.h"
#include "optim/optimizer.h"

namespace m2t {

struct ProbeConfig {
  EncoderConfig encoder;
  int64_t num_classes = 1000;
  OptimizerConfig optimizer{"sgd", 0.9, 0.0, 0.001};
  uint64_t seed = 0;
  int threads = 0;
};

// The memory plan of a train step on n images of h×w (n = 0: the model only).
MemoryPlan plan_probe(const ProbeConfig& cfg, int64_t n, int64_t h, int64_t w);

struct ProbeEval {
  double loss;
  int64_t top1, top5;  // correct predictions in the batch
};

class LinearProbe {
 public:
  // `comm`: data-parallel processes whose classifier gradients each step averages (none: one process).
  LinearProbe(Backend& be, const ProbeConfig& cfg, Comm* comm = nullptr);

  // Copies `<prefix><encoder name>` tensors (conv weights, BN γ/β and running stats) into the
  // frozen encoder. Every encoder key must be present with its shape; `<prefix>fc.*` is ignored.
  void load_encoder(const std::map<std::string, StTensor>& tensors, const std::string& prefix);

  // One SGD step on the classifier; returns the loss. x [N,H,W,3] NHWC.
  // labels: i32 [N] on the model's device, each in [0, classes) (the caller checks).
  double train_step(const Tensor& x, const Tensor& labels, double lr);
  // Inference-mode logits [N, classes] into `logits`.
  ProbeEval evaluate(const Tensor& x, const Tensor& labels, Tensor& logits);
  // Pooled features of the frozen encoder, [N, feature_dim].
  const Tensor& features(const Tensor& x);

  // "encoder.*" (frozen) and "fc.0.*", "fc.1.*" (classifier) tensors; optimizer under "optimizer.".
  const Registry& model_state() const { return model_; }
  const Registry& optimizer_state() const { return optim_state_; }
  void load_state(const std::map<std::string, StTensor>& tensors, bool include_optimizer);
  void save(const std::string& path, std::map<std::string, std::string> metadata) const;
  std::map<std::string, std::string> load(const std::string& path);
  int64_t feature_dim() const { return enc_.feature_dim(); }
  Device device() const { return be_.device(); }
  // Logits of the last train_step (BatchNorm1d in training mode).
  const Tensor& last_logits() const { return logits_; }

 private:
  const Tensor& classify(const Tensor& x, BnMode bn_mode);

  Backend& be_;
  ProbeConfig cfg_;
  Comm* comm_;
  LocalComm local_comm_;
  ResNet enc_;
  Linear fc_;
  BatchNorm bn_;
  Registry encoder_, classifier_, model_, optim_state_;
  ParamArena classifier_arena_;
  std::unique_ptr<Optimizer> opt_;
  const Tensor* feat_ = nullptr;
  Tensor h_, logits_, dlogits_, dh_;
  Tensor loss_, counts_;  // [1] f32, [2] i32 on the device: read back once, at the end of a call
};

}  // namespace m2t
