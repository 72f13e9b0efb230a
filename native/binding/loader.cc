// Node-API class DataLoader (native/data/loader.h): batches are awaited off the JS thread and
// lent to JS as Float32Arrays over the loader's pooled memory (batch.h); epochIndices().
#include <atomic>
#include <cstring>
#include <memory>

#include "binding/batch.h"
#include "binding/convert.h"
#include "binding/data.h"
#include "binding/estimate.h"
#include "data/loader.h"
#include "data/sampler.h"

namespace m2t::binding {
namespace {

class LoaderWrap : public Napi::ObjectWrap<LoaderWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DataLoader",
                       {InstanceMethod("batchesPerEpoch", &LoaderWrap::BatchesPerEpoch),
                        InstanceMethod("samplesPerRank", &LoaderWrap::SamplesPerRank),
                        InstanceMethod("startEpoch", &LoaderWrap::StartEpoch),
                        InstanceMethod("next", &LoaderWrap::Next),
                        InstanceMethod("report", &LoaderWrap::Report),
                        InstanceMethod("close", &LoaderWrap::Close)});
  }

  // new DataLoader(dataset, {batchSize, views: [...], seed, rank, worldSize, shuffle, dropLast,
  //                          threads, prefetch, maxAttempts})
  explicit LoaderWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<LoaderWrap>(info) {
    Napi::Env env = info.Env();
    auto ds = dataset_arg(env, info[0], "DataLoader");
    Fields f = Fields::object(env, info[1], "DataLoader options");
    f.only({"batchSize", "views", "seed", "rank", "worldSize", "shuffle", "dropLast", "threads", "prefetch", "maxAttempts",
            "maxExamples"});
    data::LoaderConfig c;
    c.batch_size = int(f.integer("batchSize", 0, 1, 1 << 20));
    if (!f.has("views") || !f.value("views").IsArray()) f.type_error("views", "an array of 1 or 2 view descriptions");
    const Napi::Array vs = f.value("views").As<Napi::Array>();
    for (uint32_t k = 0; k < vs.Length() && k < 3; ++k) c.views.push_back(parse_view(env, vs.Get(k), data::cat("view", k + 1)));
    c.sampler.seed = uint64_t(f.integer("seed", 0, 0, int64_t(1) << 53));
    c.sampler.rank = int(f.integer("rank", 0, 0, 1 << 20));
    c.sampler.world = int(f.integer("worldSize", 1, 1, 1 << 20));
    c.sampler.shuffle = f.boolean("shuffle", true);
    c.drop_last = f.boolean("dropLast", true);
    c.threads = int(f.integer("threads", 1, 1, 1024));
    c.prefetch = int(f.integer("prefetch", 2, 1, 64));
    c.max_attempts = int(f.integer("maxAttempts", 16, 1, 1 << 20));
    c.max_examples = int(f.integer("maxExamples", 5, 0, 1000));
    loader_ = guarded(env, [&] { return std::make_shared<data::Loader>(ds, c); });
  }
  ~LoaderWrap() override {
    if (loader_) loader_->close();
  }

 private:
  data::Loader& loader(Napi::Env env) {
    if (!loader_) throw Napi::Error::New(env, "DataLoader is closed");
    return *loader_;
  }
  Napi::Value BatchesPerEpoch(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(loader(info.Env()).batches_per_epoch()));
  }
  Napi::Value SamplesPerRank(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(loader(info.Env()).samples_per_rank()));
  }
  Napi::Value StartEpoch(const Napi::CallbackInfo& info) {
    const Args a(info, "startEpoch");
    data::Loader& l = loader(info.Env());
    if (*pending_) throw Napi::Error::New(info.Env(), "startEpoch: a next() call is still pending; await it first");
    const int64_t epoch = a.integer(0, "epoch", 0, int64_t(1) << 40);
    const int64_t first = a.absent(1) ? 0 : a.integer(1, "startBatch", 0, int64_t(1) << 40);
    guarded(info.Env(), [&] { l.start_epoch(epoch, first); });
    return info.Env().Undefined();
  }
  Napi::Value Next(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    loader(env);
    if (*pending_) throw Napi::Error::New(env, "next: the previous next() has not settled yet");
    *pending_ = true;
    auto l = loader_;
    auto pending = pending_;
    auto batch = std::make_shared<std::unique_ptr<data::Batch>>();
    return run_async(
        env,
        [l, batch, pending] {
          struct Clear {  // the flag drops whatever happens
            std::shared_ptr<std::atomic<bool>> p;
            ~Clear() { *p = false; }
          } clear{pending};
          *batch = l->next();
        },
        [l, batch](Napi::Env env) -> Napi::Value {
          if (!*batch) return env.Null();
          data::Batch& b = **batch;
          const auto& cfg = l->config();
          Napi::Object o = Napi::Object::New(env);
          o.Set("epoch", double(b.epoch));
          o.Set("index", double(b.index));
          o.Set("size", b.size);
          Napi::Array views = Napi::Array::New(env, b.views.size());
          for (size_t v = 0; v < b.views.size(); ++v) {
            const auto& vc = cfg.views[v];
            const size_t floats = size_t(b.size) * vc.out_h * vc.out_w * 3;
            Napi::Object view = Napi::Object::New(env);
            view.Set("data", lend(env, std::move(b.views[v]), floats));
            Napi::Array shape = Napi::Array::New(env, 4);
            shape.Set(0u, b.size);
            shape.Set(1u, vc.out_h);
            shape.Set(2u, vc.out_w);
            shape.Set(3u, 3);
            view.Set("shape", shape);
            views.Set(uint32_t(v), view);
          }
          o.Set("views", views);
          Napi::Int32Array idx = Napi::Int32Array::New(env, b.indices.size());
          Napi::Int32Array lab = Napi::Int32Array::New(env, b.labels.size());
          std::memcpy(idx.Data(), b.indices.data(), b.indices.size() * 4);
          std::memcpy(lab.Data(), b.labels.data(), b.labels.size() * 4);
          o.Set("indices", idx);
          o.Set("labels", lab);
          return o;
        });
  }
  Napi::Value Report(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const data::EpochReport r = loader(env).report();
    Napi::Object o = Napi::Object::New(env);
    o.Set("epoch", double(r.epoch));
    o.Set("bad", double(r.bad));
    Napi::Array ex = Napi::Array::New(env, r.examples.size());
    for (size_t i = 0; i < r.examples.size(); ++i) {
      Napi::Object e = Napi::Object::New(env);
      e.Set("slot", double(r.examples[i].slot));
      e.Set("index", double(r.examples[i].index));
      e.Set("attempt", r.examples[i].attempt);
      e.Set("path", r.examples[i].name);
      e.Set("error", r.examples[i].error);
      ex.Set(uint32_t(i), e);
    }
    o.Set("examples", ex);
    return o;
  }
  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (loader_) loader_->close();  // a pending next() rejects with "loader is closed"
    return info.Env().Undefined();
  }

  std::shared_ptr<data::Loader> loader_;
  std::shared_ptr<std::atomic<bool>> pending_ = std::make_shared<std::atomic<bool>>(false);
};

}  // namespace

Napi::Function DefineDataLoader(Napi::Env env) { return LoaderWrap::Define(env); }

// epochIndices(n, seed, epoch, rank, worldSize, shuffle) → { slots: Float64Array, indices: Float64Array }
Napi::Value EpochIndices(const Napi::CallbackInfo& info) {
  const Args a(info, "epochIndices");
  const int64_t n = a.integer(0, "n", 1, int64_t(1) << 40);
  data::SamplerConfig c;
  c.seed = uint64_t(a.integer(1, "seed", 0, int64_t(1) << 53));
  const int64_t epoch = a.integer(2, "epoch", 0, int64_t(1) << 40);
  c.rank = int(a.integer(3, "rank", 0, 1 << 20));
  c.world = int(a.integer(4, "worldSize", 1, 1 << 20));
  c.shuffle = a.absent(5) ? true : info[5].ToBoolean().Value();
  // The epoch's order (8 bytes a sample) and this rank's items (16 + 16 in JS): refuse up front
  // what the machine cannot hold instead of dying in the allocator (found by the N-API fuzz).
  const double need = 8.0 * double(n) + 32.0 * double(data::per_rank(n, c.world));
  std::string source;
  const int64_t avail = available_memory(&source);
  if (avail >= 0 && need > double(avail))
    throw Napi::RangeError::New(info.Env(), data::cat("epochIndices: n = ", n, " needs about ", format_bytes(need),
                                                      " but only ", format_bytes(double(avail)), " is available (", source, ")"));
  const auto items = guarded(info.Env(), [&] { return data::shard_epoch(n, c, epoch); });
  Napi::Float64Array slots = Napi::Float64Array::New(info.Env(), items.size());
  Napi::Float64Array idx = Napi::Float64Array::New(info.Env(), items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    slots[i] = double(items[i].slot);
    idx[i] = double(items[i].index);
  }
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("slots", slots);
  o.Set("indices", idx);
  return o;
}

}  // namespace m2t::binding
