#include "models/m2t.h"

#include <omp.h>

#include <cmath>
#include <cstring>
#include <tuple>
#include <nlohmann/json.hpp>

#include "core/error.h"

namespace m2t {

void use_threads(int n) {
  if (n > 0) omp_set_num_threads(n);
}

void validate(const M2TConfig& c) {
  validate(c.encoder);
  validate(c.optimizer);
  if (c.hidden_dim < 1 || c.hidden_dim > (1 << 20)) fail(ErrorKind::RangeError, "hiddenDim: must be in [1, 2^20], got ", c.hidden_dim);
  if (c.out_dim < 1 || c.out_dim > (1 << 20)) fail(ErrorKind::RangeError, "outDim: must be in [1, 2^20], got ", c.out_dim);
  if (c.total_iterations < 1) fail(ErrorKind::RangeError, "totalIterations: must be >= 1, got ", c.total_iterations);
  if (!std::isfinite(c.tau_base) || c.tau_base < 0 || c.tau_base > 1)
    fail(ErrorKind::RangeError, "tauBase: must be in [0, 1], got ", c.tau_base);
  if (c.threads < 0 || c.threads > 1024) fail(ErrorKind::RangeError, "threads: must be in [0, 1024], got ", c.threads);
}

static const M2TConfig& checked(const M2TConfig& c) {
  validate(c);
  return c;
}

Momentum2Teacher::Momentum2Teacher(Backend& be, const M2TConfig& cfg, Comm* comm)
    : be_(be),
      cfg_(checked(cfg)),
      comm_(comm ? comm : &local_comm_),
      s_enc_(be, cfg.encoder, "student_encoder."),
      t_enc_(be, cfg.encoder, "teacher_encoder."),
      s_proj_("student_encoder.fc.", 0, s_enc_.feature_dim(), cfg.hidden_dim, cfg.out_dim),
      s_pred_("student_encoder.fc.", 4, cfg.out_dim, cfg.hidden_dim, cfg.out_dim),
      t_proj_("teacher_encoder.fc.", 0, t_enc_.feature_dim(), cfg.hidden_dim, cfg.out_dim) {
  s_enc_.register_in(student_);
  s_proj_.register_in(student_);
  s_pred_.register_in(student_);
  t_enc_.register_in(teacher_);
  t_proj_.register_in(teacher_);
  // model_ lists every tensor (params as entries too), student first.
  model_.include(student_);
  model_.include(teacher_);

  s_enc_.init(cfg.seed);
  s_proj_.init(cfg.seed);
  s_pred_.init(cfg.seed);
  // The teacher starts as an exact copy of the student (encoder + projector).
  const auto& sp = student_.params();
  const auto& tp = teacher_.params();
  for (size_t i = 0; i < tp.size(); ++i) tp[i]->value.copy_from(sp[i]->value);

  teacher_bns_ = t_enc_.bns();
  teacher_bns_.push_back(&t_proj_.bn);
  for (BatchNorm* bn : teacher_bns_) bn->mbn = {cfg.total_iterations, cfg.bn_double_unbias};
  student_bn_ = s_enc_.bns();
  student_bn_.push_back(&s_proj_.bn);
  student_bn_.push_back(&s_pred_.bn);

  opt_ = std::make_unique<Optimizer>(be, cfg.optimizer, sp);
  opt_->register_in(optim_state_);
}

double Momentum2Teacher::tau_at(int64_t k) const {
  const double K = static_cast<double>(cfg_.total_iterations);
  return 1.0 - (1.0 - cfg_.tau_base) * (std::cos(M_PI * static_cast<double>(k) / K) + 1.0) / 2.0;
}

double Momentum2Teacher::alpha() const { return teacher_bns_.front()->alpha; }

StepResult Momentum2Teacher::step(const Tensor& v1, const Tensor& v2, double lr) {
  M2T_CHECK(v1.shape() == v2.shape(), "view1 ", shape_str(v1.shape()), " and view2 ", shape_str(v2.shape()),
            " differ in shape");
  use_threads(cfg_.threads);
  StepResult r{};
  // 1. Teacher EMA with τ_k (encoder + projector parameters; BN buffers are the teacher's own).
  r.tau = tau_at(iteration_);
  const auto& sp = student_.params();
  const auto& tp = teacher_.params();
  for (size_t i = 0; i < tp.size(); ++i) be_.ema(tp[i]->value, sp[i]->value, static_cast<float>(r.tau));
  // Both views in one batch per network, BN statistics per view: student sees [x1; x2];
  // teacher sees [x2; x1], the reference's call order, which fills the momentum-BN stash.
  const int64_t n = v1.numel();
  Shape s2 = v1.shape();
  s2[0] *= 2;
  xs_.resize(s2);
  xt_.resize(s2);
  std::memcpy(xs_.data(), v1.data(), n * sizeof(float));
  std::memcpy(xs_.data() + n, v2.data(), n * sizeof(float));
  std::memcpy(xt_.data(), v2.data(), n * sizeof(float));
  std::memcpy(xt_.data() + n, v1.data(), n * sizeof(float));
  forward_backward(xs_, xt_, r);
  // 5. Gradients averaged over processes, then the optimizer step at this iteration's lr.
  if (comm_->world_size() > 1) {
    const float inv = 1.0f / static_cast<float>(comm_->world_size());
    for (Param* p : sp) {
      comm_->allreduce_sum(p->grad.data(), p->grad.numel());
      be_.scale(p->grad, inv);
    }
  }
  opt_->step(lr);
  ++iteration_;
  r.iteration = iteration_;
  r.alpha = alpha();
  return r;
}

void Momentum2Teacher::forward_backward(const Tensor& xs, const Tensor& xt, StepResult& r) {
  // 2. q = predictor(projector(student(x))), L2-normalised.
  const Tensor& fs = s_enc_.forward(xs, 2, BnMode::Train);
  s_proj_.forward(be_, fs, zs_, 2, BnMode::Train);
  s_pred_.forward(be_, zs_, ps_, 2, BnMode::Train);
  be_.l2norm_forward(ps_, q_, qnorm_);
  // 3. k = projector(teacher(x)), L2-normalised; no gradients.
  const Tensor& ft = t_enc_.forward(xt, 2, BnMode::Momentum);
  t_proj_.forward(be_, ft, zt_, 2, BnMode::Momentum);
  be_.l2norm_forward(zt_, k_, knorm_);
  // 4. Loss and its gradient; backward through the student only.
  r.loss = be_.m2t_loss(q_, k_, dq_);
  for (Param* p : student_.params())
    if (p->kind == ParamKind::BnWeight || p->kind == ParamKind::BnBias) p->grad.zero();
  be_.l2norm_backward(ps_, q_, qnorm_, dq_, dqraw_);
  s_pred_.backward(be_, dqraw_, dps_);
  s_proj_.backward(be_, dps_, dzs_);
  s_enc_.backward(dzs_);
}

void Momentum2Teacher::load_state(const std::map<std::string, StTensor>& tensors, bool include_optimizer) {
  load_entries(tensors, model_, optim_state_, include_optimizer);
  if (include_optimizer) opt_->set_started(true);
}

std::map<std::string, std::string> Momentum2Teacher::training_metadata() const {
  nlohmann::json bn = nlohmann::json::array();
  for (const BatchNorm* b : teacher_bns_) bn.push_back({b->pairs, b->alpha});
  nlohmann::json j = {{"iteration", iteration_},
                      {"optimizer_started", opt_->started()},
                      {"momentum_bn", bn},
                      {"total_iterations", cfg_.total_iterations}};
  return {{"format", "momentum2-teacher/1"}, {"m2t.state", j.dump()}};
}

void Momentum2Teacher::restore_metadata(const std::map<std::string, std::string>& meta, const std::string& src) {
  auto it = meta.find("m2t.state");
  if (it == meta.end()) fail(ErrorKind::Error, src, ": no 'm2t.state' metadata (not a momentum2-teacher checkpoint?)");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(it->second);
    const auto& bn = j.at("momentum_bn");
    if (!bn.is_array() || bn.size() != teacher_bns_.size())
      fail(ErrorKind::Error, src, ": momentum-BN state has ", bn.size(), " layers, the model has ",
           teacher_bns_.size());
    iteration_ = j.at("iteration").get<int64_t>();
    opt_->set_started(j.at("optimizer_started").get<bool>());
    for (size_t i = 0; i < teacher_bns_.size(); ++i) {
      teacher_bns_[i]->pairs = bn[i].at(0).get<int64_t>();
      teacher_bns_[i]->alpha = bn[i].at(1).get<double>();
      teacher_bns_[i]->stash_full = false;  // a pair always completes within an iteration
    }
  } catch (const nlohmann::json::exception& e) {
    fail(ErrorKind::Error, src, ": malformed 'm2t.state' metadata (", e.what(), ")");
  }
}

void Momentum2Teacher::save(const std::string& path, std::map<std::string, std::string> metadata) const {
  std::vector<StItem> items;
  for (const Registry* r : {&model_, &optim_state_})
    for (const Entry& e : r->entries()) items.push_back({e.name, e.value->data(), e.value->shape(), e.is_int64});
  for (auto& [k, v] : training_metadata()) metadata[k] = v;
  write_safetensors(path, items, metadata);
}

std::map<std::string, std::string> Momentum2Teacher::load(const std::string& path) {
  StFile f = read_safetensors(path);
  try {
    // Check the metadata before copying tensors, so a bad file changes nothing.
    if (!f.metadata.count("m2t.state"))
      fail(ErrorKind::Error, "no 'm2t.state' metadata (not a momentum2-teacher training checkpoint?)");
  } catch (const Error& e) {
    fail(e.kind(), path, ": ", e.what());
  }
  // Metadata first (it validates), tensors second; undo the metadata if the tensors do not fit.
  const int64_t it0 = iteration_;
  const bool started0 = opt_->started();
  std::vector<std::pair<int64_t, double>> bn0;
  for (const BatchNorm* b : teacher_bns_) bn0.emplace_back(b->pairs, b->alpha);
  restore_metadata(f.metadata, path);
  const bool started = opt_->started();
  try {
    load_state(f.tensors, /*include_optimizer=*/true);
  } catch (const Error& e) {
    iteration_ = it0;
    opt_->set_started(started0);
    for (size_t i = 0; i < teacher_bns_.size(); ++i) std::tie(teacher_bns_[i]->pairs, teacher_bns_[i]->alpha) = bn0[i];
    fail(e.kind(), path, ": ", e.what());
  }
  opt_->set_started(started);
  return f.metadata;
}

}  // namespace m2t
