// Momentum² Teacher (docs/algorithm.md): student encoder + projector + predictor trained by
// SGD/LARS, teacher encoder + projector as an EMA of the student with momentum-BN statistics.
// step() is one whole iteration ("The step"), graph code over backend ops: the parameters and
// gradients live in flat arenas on the backend's device, and the only value read back is the
// loss, once, at the end.
#pragma once
#include <map>
#include <memory>
#include <string>

#include "comm/comm.h"
#include "comm/grad_bucketer.h"
#include "io/safetensors.h"
#include "models/resnet.h"
#include "optim/optimizer.h"

namespace m2t {

// Defaults, ranges and docs: core/engine_settings.json (the JS names in comments).
struct M2TConfig {
  EncoderConfig encoder;
  int64_t hidden_dim = static_cast<int64_t>(setting_default_number("hiddenDim"));
  int64_t out_dim = static_cast<int64_t>(setting_default_number("outDim"));
  int64_t total_iterations = 0;  // totalIterations, K (required)
  double tau_base = setting_default_number("tauBase");
  OptimizerConfig optimizer;
  // bnDoubleUnbias: quirk 1 (docs/algorithm.md, "Quirks kept on purpose")
  bool bn_double_unbias = setting_default_bool("bnDoubleUnbias");
  uint64_t seed = static_cast<uint64_t>(setting_default_number("seed"));
  int threads = static_cast<int>(setting_default_number("threads"));  // 0: OpenMP's default
  // Multi-process CPU runs: bucket size of the gradient all-reduce and whether it overlaps the backward.
  GradSyncConfig grad_sync;
};

void validate(const M2TConfig& cfg);

// The memory plan of a step on two views of n images of h×w (n = 0: the model only); validates cfg.
MemoryPlan plan_m2t(const M2TConfig& cfg, int64_t n, int64_t h, int64_t w);

struct StepResult {
  double loss, tau, alpha;
  int64_t iteration;  // completed iterations after this step
  // Seconds the optimizer waited, after the backward, for the gradient all-reduce: the communication the
  // backward pass did not hide (0 in one process).
  double comm_wait = 0;
  // Every tensor of model_state() is finite after the step (checked inside the updates that wrote them).
  bool state_finite = true;
};

// Sets OpenMP's thread count for the calling thread when n > 0.
void use_threads(int n);

class Momentum2Teacher {
 public:
  Momentum2Teacher(Backend& be, const M2TConfig& cfg, Comm* comm = nullptr);
  ~Momentum2Teacher();

  // v1, v2: [B, H, W, 3] NHWC on the backend's device, the two views of the same B images.
  StepResult step(const Tensor& v1, const Tensor& v2, double lr);

  // τ_k = 1 − (1 − τ_base)·(cos(π·k/K) + 1)/2
  double tau_at(int64_t k) const;
  double alpha() const;
  int64_t iteration() const { return iteration_; }

  // Student and teacher tensors by PyTorch name (docs/algorithm.md, "The model"); the optimizer's under "optimizer.".
  const Registry& model_state() const { return model_; }
  const Registry& optimizer_state() const { return optim_state_; }
  const std::vector<Param*>& student_params() const { return student_.params(); }

  // Copies named tensors in. Model keys must all be present (optimizer keys too when
  // include_optimizer); unknown or mis-shaped keys throw Error naming the key.
  void load_state(const std::map<std::string, StTensor>& tensors, bool include_optimizer);
  std::map<std::string, std::string> training_metadata() const;
  void restore_metadata(const std::map<std::string, std::string>& meta, const std::string& source);

  void save(const std::string& path, std::map<std::string, std::string> metadata) const;
  std::map<std::string, std::string> load(const std::string& path);

  const M2TConfig& config() const { return cfg_; }
  // The gradient all-reduce of a multi-process CPU run (null otherwise).
  const GradBucketer* grad_bucketer() const { return bucketer_.get(); }
  Device device() const { return be_.device(); }

 private:
  void forward_backward(const Tensor& x_student, const Tensor& x_teacher);

  Backend& be_;
  M2TConfig cfg_;
  Comm* comm_;
  LocalComm local_comm_;
  ResNet s_enc_, t_enc_;
  Mlp s_proj_, s_pred_, t_proj_;
  Registry student_, teacher_, model_, optim_state_;
  ParamArena student_arena_, teacher_arena_;
  std::vector<BatchNorm*> teacher_bns_, student_bn_;
  std::unique_ptr<Optimizer> opt_;
  // The gradient all-reduce (world size > 1 on CPU); the predictor's and projector's parameters, which
  // forward_backward reports final after their backward (the encoder reports its own).
  std::unique_ptr<GradBucketer> bucketer_;
  std::vector<Param*> pred_params_, proj_params_;
  int64_t iteration_ = 0;
  Tensor xs_, xt_, zs_, ps_, qs_raw_, q_, zt_, k_, dq_, dqraw_, dps_, dzs_;
  Tensor qnorm_, knorm_, loss_;
  // What the step reads back, in one copy: [loss, non-finite flag (core/backend.h)]; loss_ and nonfinite_
  // are views of it. unwritten_state_: model_state()'s tensors no update writes (BN buffers).
  Tensor readback_, nonfinite_;
  std::vector<const Tensor*> unwritten_state_;
  // The student arena's prefix that mirrors the teacher's parameters (same layout).
  Tensor student_prefix_;
  // Activation arenas (EncoderPlan): the student's saved activations, and the work slots the
  // teacher's forward and the student's backward take turns in.
  Tensor act_saved_, act_work_;
};

}  // namespace m2t
