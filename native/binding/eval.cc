// Node-API functions of the frozen-feature evaluation (native/eval): knnPredict and
// logisticRegression. Both run on the libuv pool and read the caller's typed arrays in place
// (they are pinned by references until the promise settles), so features of any size are not copied.
#include <memory>
#include <vector>

#include "binding/addon.h"
#include "binding/convert.h"
#include "eval/knn.h"
#include "eval/logreg.h"

namespace m2t::binding {
namespace {

// Keeps typed arrays alive while a worker reads them; released on the main thread with the worker.
struct Pinned {
  std::vector<Napi::ObjectReference> refs;
};

template <typename T, napi_typedarray_type kType>
Napi::TypedArrayOf<T> typed(Napi::Env env, Napi::Value v, const char* fn, const char* name, const char* what) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kType)
    throw Napi::TypeError::New(env, std::string(fn) + ": " + name + " must be " + what);
  return v.As<Napi::TypedArrayOf<T>>();
}

int64_t rows_of(Napi::Env env, size_t length, int64_t d, const char* fn, const char* name) {
  if (int64_t(length) % d != 0)
    throw Napi::RangeError::New(env, std::string(fn) + ": " + name + " has " + std::to_string(length) +
                                         " values, not a multiple of dim " + std::to_string(d));
  return int64_t(length) / d;
}

Napi::Value Int32Result(Napi::Env env, const std::vector<int32_t>& v) {
  auto out = Napi::Int32Array::New(env, v.size());
  std::copy(v.begin(), v.end(), out.Data());
  return out;
}

// knnPredict(memory: Float32Array [n·dim], labels: Int32Array [n], queries: Float32Array [m·dim], dim,
//            { classes, k = 200, temperature = 0.07, blockBytes = 32 MiB }) → Promise<Int32Array [m]>
Napi::Value KnnPredict(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "knnPredict";
  auto mem = typed<float, napi_float32_array>(env, info[0], fn, "memory", "a Float32Array");
  auto lab = typed<int32_t, napi_int32_array>(env, info[1], fn, "labels", "an Int32Array");
  auto q = typed<float, napi_float32_array>(env, info[2], fn, "queries", "a Float32Array");
  const int64_t d = int64_t(finite_number(env, info[3], "dim", 1, 1 << 24));
  Fields f(env, info[4], "knnPredict options");
  f.only({"classes", "k", "temperature", "blockBytes"});
  eval::KnnOptions o;
  o.classes = int32_t(f.integer("classes", 0, 1, 1 << 24));
  o.k = f.integer("k", 200, 1, int64_t(1) << 40);
  o.temperature = f.number("temperature", 0.07, 1e-6, 1e6);
  o.block_bytes = f.integer("blockBytes", int64_t(32) << 20, 4, int64_t(1) << 50);
  if (!f.has("classes")) throw Napi::TypeError::New(env, "knnPredict options: 'classes' is required");
  const int64_t n = rows_of(env, mem.ElementLength(), d, fn, "memory");
  const int64_t m = rows_of(env, q.ElementLength(), d, fn, "queries");
  if (int64_t(lab.ElementLength()) != n)
    throw Napi::RangeError::New(env, std::string(fn) + ": " + std::to_string(lab.ElementLength()) + " labels for " +
                                         std::to_string(n) + " memory rows");
  if (n < 1) throw Napi::RangeError::New(env, std::string(fn) + ": the memory bank is empty");
  auto pin = std::make_shared<Pinned>();
  for (Napi::Value v : {info[0], info[1], info[2]}) pin->refs.push_back(Napi::Persistent(v.As<Napi::Object>()));
  const float* pm = mem.Data();
  const int32_t* pl = lab.Data();
  const float* pq = q.Data();
  auto out = std::make_shared<std::vector<int32_t>>();
  return run_async(
      env, [=] { *out = eval::knn_predict(pm, pl, n, pq, m, d, o); },
      [pin, out](Napi::Env e) { return Int32Result(e, *out); });
}

// logisticRegression(train: Float32Array [n·dim], labels: Int32Array [n], test: Float32Array [m·dim], dim,
//   { classes, epochs = 5, batchSize = 256, lr = 0.5, momentum = 0.9, weightDecay = 1e-4, seed = 0 })
//   → Promise<Int32Array [m]>: the test rows' predicted classes.
Napi::Value LogisticRegression(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  const char* fn = "logisticRegression";
  auto x = typed<float, napi_float32_array>(env, info[0], fn, "train", "a Float32Array");
  auto lab = typed<int32_t, napi_int32_array>(env, info[1], fn, "labels", "an Int32Array");
  auto t = typed<float, napi_float32_array>(env, info[2], fn, "test", "a Float32Array");
  const int64_t d = int64_t(finite_number(env, info[3], "dim", 1, 1 << 24));
  Fields f(env, info[4], "logisticRegression options");
  f.only({"classes", "epochs", "batchSize", "lr", "momentum", "weightDecay", "seed"});
  if (!f.has("classes")) throw Napi::TypeError::New(env, "logisticRegression options: 'classes' is required");
  eval::LogregOptions o;
  o.classes = int32_t(f.integer("classes", 0, 2, 1 << 24));
  o.epochs = f.integer("epochs", 5, 1, 1 << 20);
  o.batch = f.integer("batchSize", 256, 1, 1 << 24);
  o.lr = f.number("lr", 0.5, 0, 1e6);
  o.momentum = f.number("momentum", 0.9, 0, 0.999999);
  o.weight_decay = f.number("weightDecay", 1e-4, 0, 1e3);
  o.seed = uint64_t(f.integer("seed", 0, 0, int64_t(1) << 53));
  const int64_t n = rows_of(env, x.ElementLength(), d, fn, "train");
  const int64_t m = rows_of(env, t.ElementLength(), d, fn, "test");
  if (int64_t(lab.ElementLength()) != n)
    throw Napi::RangeError::New(env, std::string(fn) + ": " + std::to_string(lab.ElementLength()) + " labels for " +
                                         std::to_string(n) + " training rows");
  auto pin = std::make_shared<Pinned>();
  for (Napi::Value v : {info[0], info[1], info[2]}) pin->refs.push_back(Napi::Persistent(v.As<Napi::Object>()));
  const float* px = x.Data();
  const int32_t* pl = lab.Data();
  const float* pt = t.Data();
  auto out = std::make_shared<std::vector<int32_t>>();
  return run_async(
      env, [=] { *out = eval::logreg_predict(eval::logreg_fit(px, pl, n, d, o), pt, m); },
      [pin, out](Napi::Env e) { return Int32Result(e, *out); });
}

}  // namespace

void InitEval(Napi::Env env, Napi::Object exports) {
  exports.Set("knnPredict", Napi::Function::New(env, KnnPredict, "knnPredict"));
  exports.Set("logisticRegression", Napi::Function::New(env, LogisticRegression, "logisticRegression"));
}

}  // namespace m2t::binding
