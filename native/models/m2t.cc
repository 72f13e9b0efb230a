#include "models/m2t.h"

#include <omp.h>

#include <chrono>
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
  check_setting("hiddenDim", static_cast<double>(c.hidden_dim));
  check_setting("outDim", static_cast<double>(c.out_dim));
  check_setting("totalIterations", static_cast<double>(c.total_iterations));
  check_setting("tauBase", c.tau_base);
  check_setting("seed", static_cast<double>(c.seed));
  check_setting("threads", c.threads);
}

namespace {
// Linear(in→hidden) + BN1d(hidden) + Linear(hidden→out): trainable elements, BN statistics.
int64_t mlp_params(int64_t in, int64_t hidden, int64_t out) { return in * hidden + hidden + 2 * hidden + hidden * out + out; }
int64_t mlp_buffers(int64_t hidden) { return 2 * hidden + 1; }
}  // namespace

MemoryPlan plan_m2t(const M2TConfig& c, int64_t n, int64_t h, int64_t w) {
  validate(c);
  const int64_t N = 2 * n;  // both views in one batch per network
  const EncoderPlan e = plan_encoder(c.encoder, N, h, w);
  const int64_t H = c.hidden_dim, O = c.out_dim, F = e.feat;
  const int64_t proj = mlp_params(F, H, O), pred = mlp_params(O, H, O), hb = mlp_buffers(H);
  const int64_t student = e.params + proj + pred, teacher = e.params + proj;
  MemoryPlan m;
  m.state_floats = student + teacher + 2 * (e.buffers + hb) + hb;
  m.parameters = 4 * (student + e.buffers + 2 * hb);
  m.gradients = 4 * student;
  m.optimizer = 4 * student;
  m.teacher = 4 * (teacher + e.buffers + hb);
  if (n == 0) return m;
  // Outside the arenas: the views as given and concatenated twice (student, teacher order), each
  // encoder's features and max-pool argmax, the heads' activations and gradients (projector and
  // predictor: h0, h1, dh1, dh0; the teacher's projector: h0, h1), normalised outputs and the
  // loss's gradients, and the BN layers' per-view statistics (≈ 5·G·C floats a layer).
  const int64_t image = N * h * w * 3;
  const int64_t heads = 3 * image + 2 * N * F + 10 * N * H + 3 * N * O + 5 * N * O + 2 * N + N * F;
  const int64_t bn_stats = 10 * (e.buffers + 3 * H);
  // The encoders' activations in their dtype (the student keeps, the teacher shares the work slots).
  m.activations = e.act_bytes * (e.saved + 2 * e.image) + 4 * (e.work() + heads + bn_stats + 2 * e.pool_idx);
  return m;
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
      s_proj_("student_encoder.fc.", 0, s_enc_.feature_dim(), cfg.hidden_dim, cfg.out_dim, be.device()),
      s_pred_("student_encoder.fc.", 4, cfg.out_dim, cfg.hidden_dim, cfg.out_dim, be.device()),
      t_proj_("teacher_encoder.fc.", 0, t_enc_.feature_dim(), cfg.hidden_dim, cfg.out_dim, be.device()) {
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
  // Parameters (and the student's gradients) into flat arenas. The teacher's parameters are the
  // student's first ones (encoder + projector), so its arena matches a prefix of the student's.
  student_arena_ = ParamArena(student_.params(), be.device(), /*with_grads=*/true);
  teacher_arena_ = ParamArena(teacher_.params(), be.device(), /*with_grads=*/false);
  const ParamArena::Flat& sf = student_arena_.flat(DType::F32);
  const ParamArena::Flat& tf = teacher_arena_.flat(DType::F32);
  M2T_CHECK(tf.segments.size() <= sf.segments.size(), "teacher has more parameters than the student");
  for (size_t i = 0; i < tf.segments.size(); ++i)
    M2T_CHECK(tf.segments[i].offset == sf.segments[i].offset && tf.segments[i].numel == sf.segments[i].numel,
              "teacher parameter ", tf.params[i]->name, " does not mirror ", sf.params[i]->name);
  student_prefix_ = sf.values.view(0, tf.values.shape());
  // The teacher starts as an exact copy of the student (encoder + projector).
  teacher_arena_.flat(DType::F32).values.copy_from(student_prefix_);

  teacher_bns_ = t_enc_.bns();
  teacher_bns_.push_back(&t_proj_.bn);
  for (BatchNorm* bn : teacher_bns_) bn->mbn = {cfg.total_iterations, cfg.bn_double_unbias};
  student_bn_ = s_enc_.bns();
  student_bn_.push_back(&s_proj_.bn);
  student_bn_.push_back(&s_pred_.bn);

  // Parameters are checked by the EMA and the optimizer as they write them; the rest of the state once a step.
  readback_ = Tensor({2}, be.device());
  loss_ = readback_.view(0, {1});
  nonfinite_ = readback_.view(1, {1});
  for (const Entry& e : model_.entries())
    if (!e.is_param) unwritten_state_.push_back(e.value);

  s_enc_.use_arenas(&act_saved_, &act_work_);
  t_enc_.use_arenas(nullptr, &act_work_);
  t_enc_.set_keep_for_backward(false);  // no gradients through the teacher

  opt_ = std::make_unique<Optimizer>(be, cfg.optimizer, student_arena_);
  opt_->register_in(optim_state_);

  // Data-parallel CPU runs: the gradient arena's all-reduce in buckets, overlapped with the backward.
  if (comm_->world_size() > 1 && be.device().is_cpu() && student_arena_.flats().size() == 1) {
    ParamArena::Flat& g = student_arena_.flats().front();
    bucketer_ = std::make_unique<GradBucketer>(*comm_, g.grads.data(), g.grads.numel(), g.segments, g.params,
                                               cfg.grad_sync);
    Registry pred, proj;
    s_pred_.register_in(pred);
    s_proj_.register_in(proj);
    pred_params_ = pred.params();
    proj_params_ = proj.params();
    s_enc_.on_grad_ready = [this](const Param& p) { bucketer_->ready(p); };
  }
}

Momentum2Teacher::~Momentum2Teacher() = default;

double Momentum2Teacher::tau_at(int64_t k) const {
  const double K = static_cast<double>(cfg_.total_iterations);
  return 1.0 - (1.0 - cfg_.tau_base) * (std::cos(M_PI * static_cast<double>(k) / K) + 1.0) / 2.0;
}

double Momentum2Teacher::alpha() const { return teacher_bns_.front()->alpha; }

StepResult Momentum2Teacher::step(const Tensor& v1, const Tensor& v2, double lr) {
  M2T_CHECK(v1.shape() == v2.shape(), "view1 ", shape_str(v1.shape()), " and view2 ", shape_str(v2.shape()),
            " differ in shape");
  M2T_CHECK(v1.device() == be_.device() && v2.device() == be_.device(), "views on ", v1.device().str(), "/",
            v2.device().str(), ", the model on ", be_.device().str());
  use_threads(cfg_.threads);
  StepResult r{};
  // 1. Teacher EMA with τ_k over the whole teacher arena (encoder + projector parameters; BN
  //    buffers are the teacher's own).
  r.tau = tau_at(iteration_);
  be_.fill_zero(nonfinite_);
  be_.ema(teacher_arena_.flat(DType::F32).values, student_prefix_, static_cast<float>(r.tau), &nonfinite_);
  // Both views in one batch per network, BN statistics per view: student sees [x1; x2];
  // teacher sees [x2; x1], the reference's call order, which fills the momentum-BN stash.
  be_.concat2(v1, v2, xs_);
  be_.concat2(v2, v1, xt_);
  if (bucketer_) bucketer_->begin();
  forward_backward(xs_, xt_);
  // 5. Gradients averaged over processes, then the optimizer step at this iteration's lr. On CPU the
  //    buckets went to the communication thread during the backward; here the optimizer waits for them.
  const auto sync0 = std::chrono::steady_clock::now();
  if (bucketer_) {
    bucketer_->finish();
  } else {
    average_gradients(*comm_, be_, student_arena_);
  }
  if (comm_->world_size() > 1)
    r.comm_wait = std::chrono::duration<double>(std::chrono::steady_clock::now() - sync0).count();
  opt_->step(lr, &nonfinite_);
  // Divergence shows in the state (BN running variance, weights) before or with the loss.
  for (const Tensor* t : unwritten_state_) be_.accumulate_nonfinite(*t, nonfinite_);
  // The one read-back of the step: the loss and the flag.
  float back[2];
  readback_.copy_to_host(back);
  r.loss = back[0];
  r.state_finite = back[1] == back[1];
  ++iteration_;
  r.iteration = iteration_;
  r.alpha = alpha();
  return r;
}

void Momentum2Teacher::forward_backward(const Tensor& xs, const Tensor& xt) {
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
  be_.m2t_loss(q_, k_, dq_, loss_);
  for (Param* p : student_.params())
    if (p->kind == ParamKind::BnWeight || p->kind == ParamKind::BnBias) p->grad.zero();
  be_.l2norm_backward(ps_, q_, qnorm_, dq_, dqraw_);
  s_pred_.backward(be_, dqraw_, dps_);
  if (bucketer_)
    for (Param* p : pred_params_) bucketer_->ready(*p);
  s_proj_.backward(be_, dps_, dzs_);
  if (bucketer_)
    for (Param* p : proj_params_) bucketer_->ready(*p);
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
  for (auto& [k, v] : training_metadata()) metadata[k] = v;
  save_entries(path, {&model_, &optim_state_}, metadata);
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
