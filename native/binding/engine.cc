// Node-API classes Momentum2Teacher and LinearProbe, and readSafetensors. Compute runs on the
// libuv pool; one call at a time per object (a second overlapping call is rejected, not queued,
// so a forgotten `await` shows up at once).
#include <cmath>
#include <cstring>
#include <memory>
#include <set>

#include "binding/addon.h"
#include "binding/comm.h"
#include "binding/convert.h"
#include "binding/estimate.h"
#include "core/allocator.h"
#include "core/settings.h"
#include "models/m2t.h"
#include "models/probe.h"

namespace m2t::binding {
namespace {

// Shared by both classes: the busy flag that serialises async calls on one object.
class Busy {
 public:
  void enter(Napi::Env env, const char* cls) {
    if (busy_)
      throw Napi::Error::New(env, std::string(cls) + ": a previous call (step/save/load) is still running; await it first");
    busy_ = true;
  }
  void leave() { busy_ = false; }
  void check(Napi::Env env, const char* cls) const {
    if (busy_) throw Napi::Error::New(env, std::string(cls) + ": cannot read or change state while a call is running");
  }

 private:
  bool busy_ = false;
};

// The first tensor of `r` holding a NaN or an infinity, or "" when all are finite.
// Host tensors (the CPU backend); a device backend reads a device-side flag instead.
std::string first_non_finite(const Registry& r) {
  for (const Entry& e : r.entries()) {
    const float* d = e.value->data();
    const int64_t n = e.value->numel();
    float acc = 0;  // x*0 is NaN exactly when x is not finite; NaN survives any summation order, so simd may reorder
#pragma omp simd reduction(+ : acc)
    for (int64_t i = 0; i < n; ++i) acc += d[i] * 0.0f;
    if (acc != acc) return e.name;
  }
  return "";
}

// The backend of the config's `device` ('cpu' | 'cuda:N', default 'cpu'); a device this build
// cannot drive is an Error naming it.
Backend& read_backend(Napi::Env env, Fields& f) {
  const std::string dev = f.string("device", "cpu");
  return guarded(env, [&]() -> Backend& { return backend_for(parse_device(dev, "device")); });
}

// Engine settings read by their table entry (core/engine_settings.json): default and range come
// from there; an exclusive bound is left to the core's check (validate), which names the key.
double number_setting(Fields& f, const char* key, const char* setting, double def) {
  const Setting& s = engine_setting(setting);
  return f.number(key, def, s.has_min ? s.min : -HUGE_VAL, s.has_max ? s.max : HUGE_VAL);
}
double number_setting(Fields& f, const char* key, const char* setting) {
  return number_setting(f, key, setting, engine_setting(setting).number_default);
}
int64_t integer_setting(Fields& f, const char* key) {
  const Setting& s = engine_setting(key);
  return f.integer(key, static_cast<int64_t>(s.number_default), static_cast<int64_t>(s.min),
                   static_cast<int64_t>(s.max));
}

EncoderConfig read_encoder(Napi::Env env, Fields& f) {
  EncoderConfig e;
  if (!f.has("arch")) throw Napi::TypeError::New(env, "config: 'arch' is required (e.g. 'resnet50')");
  e.arch = f.string("arch", "");
  e.width = number_setting(f, "width", "width");
  e.small_stem = f.boolean("smallStem", setting_default_bool("smallStem"));
  guarded(env, [&] { validate(e); });
  return e;
}

OptimizerConfig read_optimizer(Napi::Env env, Fields f, const OptimizerConfig& def) {
  f.only({"name", "momentum", "weightDecay", "eta"});
  OptimizerConfig o = def;
  o.name = f.string("name", def.name);
  o.momentum = number_setting(f, "momentum", "optimizer.momentum", def.momentum);
  o.weight_decay = number_setting(f, "weightDecay", "optimizer.weightDecay", def.weight_decay);
  o.eta = number_setting(f, "eta", "optimizer.eta", def.eta);
  guarded(env, [&] { validate(o); });
  return o;
}

M2TConfig read_m2t_config(Napi::Env env, Napi::Value v) {
  Fields f(env, v, "Momentum2Teacher config");
  // device and processGroup are read by the Momentum2Teacher constructor.
  f.only({"arch", "width", "smallStem", "threads", "seed", "hiddenDim", "outDim", "totalIterations", "tauBase",
          "optimizer", "bnDoubleUnbias", "precision", "device", "processGroup"});
  M2TConfig c;
  c.encoder = read_encoder(env, f);
  c.encoder.precision = f.string("precision", setting_default_string("precision"));
  guarded(env, [&] { check_setting("precision", c.encoder.precision); });
  c.hidden_dim = integer_setting(f, "hiddenDim");
  c.out_dim = integer_setting(f, "outDim");
  if (!f.has("totalIterations")) throw Napi::TypeError::New(env, "Momentum2Teacher config: 'totalIterations' is required");
  c.total_iterations = integer_setting(f, "totalIterations");
  c.tau_base = number_setting(f, "tauBase", "tauBase");
  c.optimizer = read_optimizer(env, f.sub("optimizer"), OptimizerConfig{});
  c.bn_double_unbias = f.boolean("bnDoubleUnbias", setting_default_bool("bnDoubleUnbias"));
  c.seed = static_cast<uint64_t>(integer_setting(f, "seed"));
  c.threads = static_cast<int>(integer_setting(f, "threads"));
  return c;
}

ProbeConfig read_probe_config(Napi::Env env, Napi::Value v) {
  Fields f(env, v, "LinearProbe config");
  // device and processGroup are read by the LinearProbe constructor.
  f.only({"arch", "width", "smallStem", "threads", "seed", "numClasses", "momentum", "weightDecay", "device", "processGroup"});
  ProbeConfig c;
  c.encoder = read_encoder(env, f);
  if (!f.has("numClasses")) throw Napi::TypeError::New(env, "LinearProbe config: 'numClasses' is required");
  c.num_classes = f.integer("numClasses", 2, 2, 1 << 24);
  c.optimizer.momentum = number_setting(f, "momentum", "optimizer.momentum", c.optimizer.momentum);
  c.optimizer.weight_decay = number_setting(f, "weightDecay", "optimizer.weightDecay", c.optimizer.weight_decay);
  c.seed = static_cast<uint64_t>(integer_setting(f, "seed"));
  c.threads = static_cast<int>(integer_setting(f, "threads"));
  return c;
}

// The memory plan by category, in bytes, with the slope in the batch.
Napi::Object plan_to_js(Napi::Env env, const MemoryEstimate& m) {
  Napi::Object o = Napi::Object::New(env);
  o.Set("parameters", double(m.plan.parameters));
  o.Set("gradients", double(m.plan.gradients));
  o.Set("optimizer", double(m.plan.optimizer));
  o.Set("teacher", double(m.plan.teacher));
  o.Set("activations", double(m.activation_bytes));
  o.Set("activationsPerImage", m.activation_bytes_per_image);
  o.Set("total", double(m.total()));
  return o;
}

// What the device's caching allocator holds now and at its peak (since the last reset when
// reset_peak), how many blocks it has handed out and how many of those came from the system
// (cache misses) since it was made, and the kernels' workspaces (outside it).
Napi::Object measured_to_js(Napi::Env env, Device dev, bool reset_peak) {
  Napi::Object o = Napi::Object::New(env);
  if (auto* c = dynamic_cast<CachingAllocator*>(&backend_for(dev).allocator())) {
    const AllocatorStats s = c->stats();
    o.Set("inUse", double(s.in_use));
    o.Set("peakInUse", double(s.peak_in_use));
    o.Set("cached", double(s.cached));
    o.Set("allocations", double(s.hits + s.misses));
    o.Set("systemAllocations", double(s.misses));
    if (reset_peak) c->reset_peak();
  }
  o.Set("workspaces", double(workspace_bytes()));
  return o;
}

// What both model classes share: the native model, the busy flag, and state/checkpoint methods.
// Model provides model_state(), optimizer_state(), load_state(), save() and load().
template <typename Derived, typename Model>
class ModelWrap : public Napi::ObjectWrap<Derived> {
 public:
  explicit ModelWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<Derived>(info) {}

 protected:
  // Marks the object busy and keeps its JS object (so this wrapper) alive until the async call
  // settles: the returned function, run on the JS thread when it does, lets both go.
  std::function<void()> hold(Napi::Env env) {
    busy_.enter(env, Derived::kName);
    auto ref = std::make_shared<Napi::ObjectReference>(Napi::Persistent(this->Value()));
    return [this, ref] {
      busy_.leave();
      ref->Reset();
    };
  }
  // Refuses a batch whose activations would not fit (checked once per batch shape).
  template <typename Estimate>
  void check_batch(Napi::Env env, const Tensor& x, Estimate&& estimate) {
    const BatchShape b{x.dim(0), x.dim(1), x.dim(2)};
    if (b.n == checked_.n && b.h == checked_.h && b.w == checked_.w) return;
    guarded(env, [&] { check_memory(estimate(b), Derived::kName); });
    checked_ = b;
  }
  Napi::Value StateDict(const Napi::CallbackInfo& info) {
    busy_.check(info.Env(), Derived::kName);
    std::vector<const Registry*> regs{&model_->model_state()};
    if (info[0].ToBoolean()) regs.push_back(&model_->optimizer_state());
    return state_to_js(info.Env(), regs);
  }
  Napi::Value LoadStateDict(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    busy_.check(env, Derived::kName);
    auto sd = state_from_js(env, info[0], "stateDict");
    guarded(env, [&] { model_->load_state(sd, info[1].ToBoolean()); });
    return env.Undefined();
  }
  Napi::Value Save(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string path = path_arg(env, info[0], "path");
    auto meta = string_map(env, info[1], "metadata");
    auto release = hold(env);
    auto model = model_;
    return run_async(
        env,
        [=] {
          // A checkpoint never holds a NaN or an infinity: the last good one stays.
          for (const Registry* r : {&model->model_state(), &model->optimizer_state()}) {
            const std::string bad = first_non_finite(*r);
            if (!bad.empty())
              fail(ErrorKind::RangeError, path, ": not written: tensor '", bad,
                   "' holds a non-finite value (NaN or infinity); the previous checkpoint is kept");
          }
          model->save(path, meta);
        },
        [](Napi::Env e) { return e.Undefined(); }, release);
  }
  Napi::Value Load(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const std::string path = path_arg(env, info[0], "path");
    auto release = hold(env);
    auto model = model_;
    auto meta = std::make_shared<std::map<std::string, std::string>>();
    return run_async(env, [=] { *meta = model->load(path); }, [meta](Napi::Env e) { return metadata_to_js(e, *meta); },
                     release);
  }

  std::shared_ptr<Model> model_;
  Busy busy_;
  BatchShape checked_;
};

class M2TWrap : public ModelWrap<M2TWrap, Momentum2Teacher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "Momentum2Teacher",
                       {InstanceMethod("step", &M2TWrap::Step), InstanceMethod("iteration", &M2TWrap::Iteration),
                        InstanceMethod("tau", &M2TWrap::Tau), InstanceMethod("alpha", &M2TWrap::Alpha),
                        InstanceMethod("stateDict", &M2TWrap::StateDict),
                        InstanceMethod("loadStateDict", &M2TWrap::LoadStateDict),
                        InstanceMethod("save", &M2TWrap::Save), InstanceMethod("load", &M2TWrap::Load),
                        InstanceMethod("memory", &M2TWrap::Memory)});
  }

  explicit M2TWrap(const Napi::CallbackInfo& info) : ModelWrap(info) {
    Napi::Env env = info.Env();
    cfg_ = read_m2t_config(env, info[0]);
    Fields f(env, info[0], "Momentum2Teacher config");
    Backend& be = read_backend(env, f);
    guarded(env, [&] { check_memory(estimate_m2t(cfg_, {}), kName); });
    // Data-parallel: gradients are averaged over the group's processes inside step().
    if (f.has("processGroup")) comm_ = process_group_comm(env, info[0].As<Napi::Object>().Get("processGroup"), "processGroup");
    model_ = guarded(env, [&] { return std::make_shared<Momentum2Teacher>(be, cfg_, comm_.get()); });
  }

  static constexpr const char* kName = "Momentum2Teacher";

 private:
  // memory(resetPeak?) → {planned: the plan at the last batch shape stepped (the model only
  // before the first step), measured: the allocator now}.
  Napi::Value Memory(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const MemoryEstimate m = guarded(env, [&] { return estimate_m2t(cfg_, checked_); });
    Napi::Object o = Napi::Object::New(env);
    Napi::Object planned = plan_to_js(env, m);
    Napi::Object batch = Napi::Object::New(env);
    batch.Set("n", double(checked_.n)), batch.Set("h", double(checked_.h)), batch.Set("w", double(checked_.w));
    planned.Set("batch", batch);
    o.Set("planned", planned);
    o.Set("measured", measured_to_js(env, model_->device(), info[0].ToBoolean()));
    return o;
  }

  Napi::Value Step(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto v1 = std::make_shared<Tensor>(image_batch(env, info[0], info[1], "view1"));
    auto v2 = std::make_shared<Tensor>(image_batch(env, info[2], info[3], "view2"));
    if (v1->shape() != v2->shape())
      throw Napi::RangeError::New(env, "view2: shape " + shape_str(v2->shape()) + " differs from view1's " +
                                           shape_str(v1->shape()));
    const double lr = finite_number(env, info[4], "lr", 0, 1e6);
    check_batch(env, *v1, [&](const BatchShape& b) { return estimate_m2t(cfg_, b); });
    auto release = hold(env);
    auto model = model_;
    auto comm = comm_;  // the model's communicator outlives the step
    auto res = std::make_shared<StepResult>();
    auto bad = std::make_shared<std::string>();
    return run_async(
        env,
        [=] {
          const Device dev = model->device();  // explicit host → device copies (none on the CPU)
          *res = model->step(v1->to(dev), v2->to(dev), lr);
          (void)comm;  // the model's communicator outlives the step
          // The step checked its state as it wrote it; the names of the culprits only when it is not finite.
          if (!res->state_finite) {
            *bad = first_non_finite(model->model_state());
            if (bad->empty()) *bad = "(unnamed)";
          }
        },
        [res, bad](Napi::Env e) {
          Napi::Object o = Napi::Object::New(e);
          o.Set("loss", res->loss);
          o.Set("tau", res->tau);
          o.Set("alpha", res->alpha);
          o.Set("iteration", static_cast<double>(res->iteration));
          o.Set("commWait", res->comm_wait);
          if (!bad->empty()) o.Set("nonFinite", *bad);
          return o;
        },
        release);
  }
  Napi::Value Iteration(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(model_->iteration()));
  }
  Napi::Value Tau(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), model_->tau_at(model_->iteration()));
  }
  Napi::Value Alpha(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), model_->alpha()); }
  M2TConfig cfg_;
  std::shared_ptr<Comm> comm_;
};

class ProbeWrap : public ModelWrap<ProbeWrap, LinearProbe> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "LinearProbe",
                       {InstanceMethod("loadEncoder", &ProbeWrap::LoadEncoder),
                        InstanceMethod("trainStep", &ProbeWrap::TrainStep),
                        InstanceMethod("evaluate", &ProbeWrap::Evaluate),
                        InstanceMethod("features", &ProbeWrap::Features),
                        InstanceMethod("stateDict", &ProbeWrap::StateDict),
                        InstanceMethod("loadStateDict", &ProbeWrap::LoadStateDict),
                        InstanceMethod("save", &ProbeWrap::Save), InstanceMethod("load", &ProbeWrap::Load)});
  }

  explicit ProbeWrap(const Napi::CallbackInfo& info) : ModelWrap(info) {
    Napi::Env env = info.Env();
    cfg_ = read_probe_config(env, info[0]);
    Fields f(env, info[0], "LinearProbe config");
    Backend& be = read_backend(env, f);
    guarded(env, [&] { check_memory(estimate_probe(cfg_, {}), kName); });
    // Data-parallel: classifier gradients are averaged over the group's processes inside trainStep().
    if (f.has("processGroup")) comm_ = process_group_comm(env, info[0].As<Napi::Object>().Get("processGroup"), "processGroup");
    model_ = guarded(env, [&] { return std::make_shared<LinearProbe>(be, cfg_, comm_.get()); });
    classes_ = cfg_.num_classes;
  }

  static constexpr const char* kName = "LinearProbe";

 private:

  // The labels as an i32 host tensor, each checked against [0, classes) here, so the ops need not look.
  std::shared_ptr<Tensor> labels(Napi::Env env, Napi::Value v, int64_t n) {
    if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      throw Napi::TypeError::New(env, "labels must be an Int32Array");
    Napi::Int32Array a = v.As<Napi::Int32Array>();
    if (static_cast<int64_t>(a.ElementLength()) != n)
      throw Napi::RangeError::New(env, str("labels has ", a.ElementLength(), " entries for ", n, " images"));
    const int32_t* y = a.Data();
    for (int64_t i = 0; i < n; ++i)
      if (y[i] < 0 || y[i] >= classes_)
        throw Napi::RangeError::New(env, str("labels[", i, "] = ", y[i], " is outside [0, ", classes_, ")"));
    auto out = std::make_shared<Tensor>(Shape{n}, Device::cpu(), DType::I32);
    out->copy_from_host(y);
    return out;
  }

  Napi::Value LoadEncoder(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    busy_.check(env, kName);
    auto sd = state_from_js(env, info[0], "stateDict");
    const std::string prefix = info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "teacher_encoder.";
    // An encoder tensor this architecture lacks means the checkpoint holds another (deeper) one:
    // loading the common part would evaluate a different network without a word.
    std::set<std::string> known;
    for (const Entry& e : model_->model_state().entries())
      if (e.name.rfind("encoder.", 0) == 0) known.insert(prefix + e.name.substr(8));
    std::vector<std::string> extra;
    for (const auto& kv : sd)
      if (kv.first.rfind(prefix, 0) == 0 && kv.first.rfind(prefix + "fc.", 0) != 0 && !known.count(kv.first))
        extra.push_back(kv.first);
    if (!extra.empty()) {
      std::string list;
      for (size_t i = 0; i < extra.size() && i < 5; ++i) list += (i ? ", '" : "'") + extra[i] + "'";
      if (extra.size() > 5) list += str(" and ", extra.size() - 5, " more");
      throw Napi::Error::New(env, str("encoder: ", extra.size(), " tensors are not part of ", cfg_.encoder.arch,
                                      " (width ", cfg_.encoder.width, "): ", list, " (a different arch?)"));
    }
    guarded(env, [&] { model_->load_encoder(sd, prefix); });
    return env.Undefined();
  }
  Napi::Value TrainStep(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto x = std::make_shared<Tensor>(image_batch(env, info[0], info[1], "images"));
    auto y = labels(env, info[2], x->dim(0));
    if (x->dim(0) < 2) throw Napi::RangeError::New(env, "images: training needs at least 2 images (BatchNorm1d)");
    const double lr = finite_number(env, info[3], "lr", 0, 1e6);
    check_batch(env, *x, [&](const BatchShape& b) { return estimate_probe(cfg_, b); });
    auto release = hold(env);
    auto p = model_;
    auto comm = comm_;  // the probe's communicator outlives the step
    auto loss = std::make_shared<double>();
    return run_async(
        env,
        [=] {
          *loss = p->train_step(*x, y->to(p->device()), lr);  // explicit host → device copy (none on the CPU)
          (void)comm;
        },
        [loss](Napi::Env e) {
          Napi::Object o = Napi::Object::New(e);
          o.Set("loss", *loss);
          return o;
        },
        release);
  }
  Napi::Value Evaluate(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto x = std::make_shared<Tensor>(image_batch(env, info[0], info[1], "images"));
    auto y = labels(env, info[2], x->dim(0));
    check_batch(env, *x, [&](const BatchShape& b) { return estimate_probe(cfg_, b); });
    auto release = hold(env);
    auto p = model_;
    auto logits = std::make_shared<Tensor>();
    auto r = std::make_shared<ProbeEval>();
    return run_async(
        env, [=] { *r = p->evaluate(*x, y->to(p->device()), *logits); },
        [=](Napi::Env e) {
          Napi::Object o = Napi::Object::New(e);
          Napi::Float32Array a = Napi::Float32Array::New(e, logits->numel());
          logits->copy_to_host(a.Data());
          o.Set("logits", a);
          o.Set("top1", static_cast<double>(r->top1));
          o.Set("top5", static_cast<double>(r->top5));
          o.Set("loss", r->loss);
          return o;
        },
        release);
  }
  Napi::Value Features(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto x = std::make_shared<Tensor>(image_batch(env, info[0], info[1], "images"));
    check_batch(env, *x, [&](const BatchShape& b) { return estimate_probe(cfg_, b); });
    auto release = hold(env);
    auto p = model_;
    auto out = std::make_shared<Tensor>();
    return run_async(
        env, [=] { out->copy_from_resized(p->features(*x)); },
        [out](Napi::Env e) {
          Napi::Float32Array a = Napi::Float32Array::New(e, out->numel());
          std::memcpy(a.Data(), out->data(), out->numel() * sizeof(float));
          return a;
        },
        release);
  }
  int64_t classes_ = 0;
  ProbeConfig cfg_;
  std::shared_ptr<Comm> comm_;
};

Napi::Value ReadSafetensors(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::string path = path_arg(env, info[0], "path");
  auto f = std::make_shared<StFile>();
  return run_async(env, [=] { *f = read_safetensors(path); },
                   [f](Napi::Env e) {
                     Napi::Object o = Napi::Object::New(e);
                     o.Set("tensors", tensors_to_js(e, *f));
                     o.Set("metadata", metadata_to_js(e, f->metadata));
                     return o;
                   });
}

// estimateMemory(kind: 'Momentum2Teacher' | 'LinearProbe', config, batch?: {n, h, w}) → bytes.
Napi::Value EstimateMemory(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (!info[0].IsString()) throw Napi::TypeError::New(env, "estimateMemory: kind must be 'Momentum2Teacher' or 'LinearProbe'");
  const std::string kind = info[0].As<Napi::String>().Utf8Value();
  Fields bf(env, info[2], "estimateMemory batch");
  bf.only({"n", "h", "w"});
  BatchShape b{bf.integer("n", 0, 0, 1 << 20), bf.integer("h", 0, 0, 1 << 20), bf.integer("w", 0, 0, 1 << 20)};
  MemoryEstimate m;
  if (kind == "Momentum2Teacher") {
    const M2TConfig c = read_m2t_config(env, info[1]);
    m = guarded(env, [&] { return estimate_m2t(c, b); });
  } else if (kind == "LinearProbe") {
    const ProbeConfig c = read_probe_config(env, info[1]);
    m = guarded(env, [&] { return estimate_probe(c, b); });
  } else {
    throw Napi::RangeError::New(env, "estimateMemory: kind must be 'Momentum2Teacher' or 'LinearProbe', got '" + kind + "'");
  }
  std::string source;
  const int64_t avail = available_memory(&source);
  Napi::Object o = Napi::Object::New(env);
  o.Set("stateElements", static_cast<double>(m.state_floats));
  o.Set("modelBytes", static_cast<double>(m.model_bytes));
  o.Set("activationBytes", static_cast<double>(m.activation_bytes));
  o.Set("totalBytes", static_cast<double>(m.total()));
  o.Set("breakdown", plan_to_js(env, m));
  o.Set("availableBytes", avail < 0 ? env.Null() : Napi::Number::New(env, static_cast<double>(avail)));
  o.Set("availableSource", source);
  return o;
}

}  // namespace

// backends(): the devices this build drives on this machine ("cpu", "cuda:N", ...).
Napi::Value Backends(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const std::vector<std::string> names = available_backends();
  Napi::Array a = Napi::Array::New(env, names.size());
  for (size_t i = 0; i < names.size(); ++i) a.Set(static_cast<uint32_t>(i), names[i]);
  return a;
}

void InitEngine(Napi::Env env, Napi::Object exports) {
  exports.Set("backends", Napi::Function::New(env, Backends));
  exports.Set("Momentum2Teacher", M2TWrap::Define(env));
  exports.Set("LinearProbe", ProbeWrap::Define(env));
  exports.Set("readSafetensors", Napi::Function::New(env, ReadSafetensors));
  exports.Set("estimateMemory", Napi::Function::New(env, EstimateMemory));
}

}  // namespace m2t::binding
