// Node-API front of the data pipeline (native/data): datasets, the batch loader, previews.
// Everything slow (folder scans, decoding, waiting for a batch) runs off the JS thread; every
// C++ exception becomes a JS Error/TypeError/RangeError naming the problem.
#include <napi.h>

#include <atomic>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "binding/addon.h"
#include "binding/batch.h"
#include "binding/estimate.h"
#include "data/dataset.h"
#include "data/decode.h"
#include "data/folder.h"
#include "data/loader.h"
#include "data/pipeline.h"
#include "data/sampler.h"

namespace m2t::binding {
namespace {

using data::DataError;

Napi::Error js_error(Napi::Env env, DataError::Kind kind, const std::string& msg) {
  switch (kind) {
    case DataError::Kind::TypeError: return Napi::TypeError::New(env, msg);
    case DataError::Kind::RangeError: return Napi::RangeError::New(env, msg);
    default: return Napi::Error::New(env, msg);
  }
}

// Runs `fn` on the JS thread, turning C++ exceptions into JS ones.
template <class F>
auto guarded(Napi::Env env, F&& fn) -> decltype(fn()) {
  try {
    return fn();
  } catch (const Napi::Error&) {
    throw;
  } catch (const DataError& e) {
    throw js_error(env, e.kind(), e.what());
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
}

// A Promise settled by work on a libuv thread: `work` runs there, `done` builds the value on the
// JS thread. Errors keep their kind.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        done_(std::move(done)) {}
  static Napi::Promise start(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done) {
    auto* w = new PromiseWorker(env, std::move(work), std::move(done));
    Napi::Promise p = w->deferred_.Promise();
    w->Queue();
    return p;
  }

 protected:
  void Execute() override {
    try {
      work_();
    } catch (const DataError& e) {
      kind_ = e.kind();
      SetError(e.what());
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }
  void OnOK() override {
    Napi::Env env = Env();
    try {
      deferred_.Resolve(done_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::exception& e) {
      deferred_.Reject(Napi::Error::New(env, e.what()).Value());
    } catch (...) {
      deferred_.Reject(Napi::Error::New(env, "unknown native error").Value());
    }
  }
  void OnError(const Napi::Error& e) override { deferred_.Reject(js_error(Env(), kind_, e.Message()).Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> done_;
  DataError::Kind kind_ = DataError::Kind::Error;
};

// ---- argument reading -------------------------------------------------------------------------

struct Args {
  const Napi::CallbackInfo& info;
  const char* fn;
  Napi::Env env() const { return info.Env(); }
  [[noreturn]] void type(size_t i, const char* name, const char* what) const {
    throw Napi::TypeError::New(env(), data::cat(fn, ": ", name, " (argument ", i + 1, ") must be ", what));
  }
  double number(size_t i, const char* name) const {
    if (!info[i].IsNumber()) type(i, name, "a number");
    return info[i].As<Napi::Number>().DoubleValue();
  }
  int64_t integer(size_t i, const char* name, int64_t lo, int64_t hi) const {
    const double v = number(i, name);
    if (!(v == std::floor(v)) || v < double(lo) || v > double(hi))
      throw Napi::RangeError::New(env(), data::cat(fn, ": ", name, " must be an integer in [", lo, ", ", hi, "], got ", v));
    return int64_t(v);
  }
  std::string string(size_t i, const char* name) const {
    if (!info[i].IsString()) type(i, name, "a string");
    return info[i].As<Napi::String>().Utf8Value();
  }
  bool absent(size_t i) const { return info.Length() <= i || info[i].IsUndefined() || info[i].IsNull(); }
};

// Fields of a plain object, with messages naming "<where>.<key>".
struct Fields {
  Napi::Env env;
  Napi::Object obj;
  std::string where;
  Napi::Value get(const char* k) const { return obj.Get(k); }
  bool has(const char* k) const {
    const Napi::Value v = get(k);
    return !v.IsUndefined() && !v.IsNull();
  }
  [[noreturn]] void bad(const char* k, const std::string& what, bool range = false) const {
    const std::string m = data::cat(where, ".", k, " must be ", what);
    if (range) throw Napi::RangeError::New(env, m);
    throw Napi::TypeError::New(env, m);
  }
  double number(const char* k, double def) const {
    if (!has(k)) return def;
    if (!get(k).IsNumber()) bad(k, "a number");
    const double v = get(k).As<Napi::Number>().DoubleValue();
    if (!std::isfinite(v)) bad(k, "finite", true);
    return v;
  }
  int64_t integer(const char* k, int64_t def, int64_t lo, int64_t hi) const {
    const double v = number(k, double(def));
    if (v != std::floor(v) || v < double(lo) || v > double(hi))
      bad(k, data::cat("an integer in [", lo, ", ", hi, "], got ", v), true);
    return int64_t(v);
  }
  bool boolean(const char* k, bool def) const {
    if (!has(k)) return def;
    if (!get(k).IsBoolean()) bad(k, "a boolean");
    return get(k).As<Napi::Boolean>().Value();
  }
  std::string string(const char* k, const std::string& def) const {
    if (!has(k)) return def;
    if (!get(k).IsString()) bad(k, "a string");
    return get(k).As<Napi::String>().Utf8Value();
  }
  // A numeric array of exactly n entries.
  std::vector<double> numbers(const char* k, std::vector<double> def) const {
    if (!has(k)) return def;
    if (!get(k).IsArray()) bad(k, data::cat("an array of ", def.size(), " numbers"));
    const Napi::Array a = get(k).As<Napi::Array>();
    if (a.Length() != def.size()) bad(k, data::cat("an array of ", def.size(), " numbers"));
    std::vector<double> out;
    for (uint32_t i = 0; i < a.Length(); ++i) {
      const Napi::Value v = a.Get(i);
      if (!v.IsNumber()) bad(k, data::cat("an array of ", def.size(), " numbers"));
      out.push_back(v.As<Napi::Number>().DoubleValue());
    }
    return out;
  }
};

Fields fields(Napi::Env env, Napi::Value v, const std::string& where) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, where + " must be an object");
  return {env, v.As<Napi::Object>(), where};
}

// The flat view description lib/data/transforms.ts produces.
data::ViewConfig parse_view(Napi::Env env, Napi::Value v, const std::string& where) {
  const Fields f = fields(env, v, where);
  data::ViewConfig c;
  const auto size = f.numbers("size", {224, 224});
  c.out_h = int(size[0]);
  c.out_w = int(size[1]);
  const std::string crop = f.string("crop", "random-resized");
  if (crop == "random-resized") c.crop = data::ViewConfig::Crop::RandomResized;
  else if (crop == "center") c.crop = data::ViewConfig::Crop::Center;
  else f.bad("crop", "'random-resized' or 'center'");
  const auto scale = f.numbers("scale", {0.08, 1.0}), ratio = f.numbers("ratio", {3.0 / 4.0, 4.0 / 3.0});
  c.rrc = {scale[0], scale[1], ratio[0], ratio[1]};
  c.resize = int(f.integer("resize", 256, 0, 65536));
  c.jitter_p = f.number("jitterP", 0);
  c.brightness = f.number("brightness", 0);
  c.contrast = f.number("contrast", 0);
  c.saturation = f.number("saturation", 0);
  c.hue = f.number("hue", 0);
  c.blur_p = f.number("blurP", 0);
  const auto sigma = f.numbers("sigma", {0.1, 2.0});
  c.sigma_lo = sigma[0];
  c.sigma_hi = sigma[1];
  c.gray_p = f.number("grayscaleP", 0);
  c.flip_p = f.number("flipP", 0);
  c.solarize_p = f.number("solarizeP", 0);
  c.solarize_threshold = int(f.integer("solarizeThreshold", 128, 0, 256));
  const auto mean = f.numbers("mean", {0.485, 0.456, 0.406}), std = f.numbers("std", {0.229, 0.224, 0.225});
  for (int i = 0; i < 3; ++i) {
    c.mean[size_t(i)] = float(mean[size_t(i)]);
    c.std[size_t(i)] = float(std[size_t(i)]);
  }
  c.scaled_decode = f.boolean("scaledDecode", true);
  guarded(env, [&] { c.validate(where); });
  return c;
}

Napi::Object params_to_js(Napi::Env env, const data::ViewParams& p) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Array crop = Napi::Array::New(env, 4);
  crop.Set(0u, p.crop.top);
  crop.Set(1u, p.crop.left);
  crop.Set(2u, p.crop.height);
  crop.Set(3u, p.crop.width);
  o.Set("crop", crop);
  o.Set("jitter", p.jitter);
  Napi::Array order = Napi::Array::New(env, 4);
  for (uint32_t i = 0; i < 4; ++i) order.Set(i, p.order[i]);
  o.Set("order", order);
  o.Set("brightness", p.brightness);
  o.Set("contrast", p.contrast);
  o.Set("saturation", p.saturation);
  o.Set("hue", p.hue);
  o.Set("blur", p.blur);
  o.Set("sigma", p.sigma);
  o.Set("grayscale", p.gray);
  o.Set("flip", p.flip);
  o.Set("solarize", p.solarize);
  return o;
}

Napi::Object image_to_js(Napi::Env env, const data::Image& im) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Uint8Array a = Napi::Uint8Array::New(env, im.pixels.size());
  std::memcpy(a.Data(), im.pixels.data(), im.pixels.size());
  o.Set("data", a);
  o.Set("width", im.width);
  o.Set("height", im.height);
  return o;
}

// ---- DataSet ---------------------------------------------------------------------------------------

napi_type_tag kDatasetTag = {0x6d3274646174615fULL, 0x6461746173657431ULL};

class DatasetWrap : public Napi::ObjectWrap<DatasetWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "DataSet",
                       {InstanceMethod("openFolder", &DatasetWrap::OpenFolder),
                        InstanceMethod("openIdx", &DatasetWrap::OpenIdx),
                        InstanceMethod("setPixels", &DatasetWrap::SetPixels),
                        InstanceMethod("setEncoded", &DatasetWrap::SetEncoded),
                        InstanceMethod("setSubset", &DatasetWrap::SetSubset),
                        InstanceMethod("size", &DatasetWrap::Size),
                        InstanceMethod("classes", &DatasetWrap::Classes),
                        InstanceMethod("labels", &DatasetWrap::Labels),
                        InstanceMethod("name", &DatasetWrap::Name),
                        InstanceMethod("info", &DatasetWrap::Info),
                        InstanceMethod("decode", &DatasetWrap::Decode),
                        InstanceMethod("augment", &DatasetWrap::Augment)});
  }
  explicit DatasetWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<DatasetWrap>(info) {
    info.This().As<Napi::Object>().TypeTag(&kDatasetTag);
  }
  std::shared_ptr<const data::Dataset> dataset(Napi::Env env, const char* who) const {
    std::lock_guard<std::mutex> lk(mu_);
    if (!ds_) throw Napi::Error::New(env, data::cat(who, ": the dataset is not open yet"));
    return ds_;
  }
  static DatasetWrap* from(Napi::Env env, Napi::Value v, const char* who) {
    if (!v.IsObject() || !v.As<Napi::Object>().CheckTypeTag(&kDatasetTag))
      throw Napi::TypeError::New(env, data::cat(who, ": expected a DataSet"));
    return Unwrap(v.As<Napi::Object>());
  }

 private:
  void set(std::shared_ptr<const data::Dataset> ds, std::shared_ptr<const data::FolderDataset> folder = nullptr) {
    std::lock_guard<std::mutex> lk(mu_);
    ds_ = std::move(ds);
    folder_ = std::move(folder);
  }
  // A reference that keeps this object's JS side (so `this`) alive while async work that
  // captured `this` is pending; dropped with the worker, on the JS thread.
  std::shared_ptr<Napi::ObjectReference> keep_alive() {
    return std::make_shared<Napi::ObjectReference>(Napi::Persistent(Value()));
  }
  void check_empty(Napi::Env env, const char* who) const {
    std::lock_guard<std::mutex> lk(mu_);
    if (ds_) throw Napi::Error::New(env, data::cat(who, ": this DataSet is already open"));
  }

  Napi::Value OpenFolder(const Napi::CallbackInfo& info) {
    const Args a{info, "openFolder"};
    check_empty(info.Env(), "openFolder");
    data::FolderOptions o;
    const std::string root = a.string(0, "root");
    if (!a.absent(1)) o.cache_dir = a.string(1, "cacheDir");
    o.threads = a.absent(2) ? 1 : int(a.integer(2, "threads", 1, 1024));
    auto result = std::make_shared<std::shared_ptr<data::FolderDataset>>();
    auto self = keep_alive();
    return PromiseWorker::start(
        info.Env(), [root, o, result] { *result = data::FolderDataset::open(root, o); },
        [this, self, result](Napi::Env env) -> Napi::Value {
          set(*result, *result);
          return env.Undefined();
        });
  }

  Napi::Value OpenIdx(const Napi::CallbackInfo& info) {
    const Args a{info, "openIdx"};
    check_empty(info.Env(), "openIdx");
    const std::string images = a.string(0, "images");
    const std::string labels = a.absent(1) ? "" : a.string(1, "labels");
    auto result = std::make_shared<std::shared_ptr<data::PixelDataset>>();
    auto self = keep_alive();
    return PromiseWorker::start(
        info.Env(), [images, labels, result] { *result = data::load_idx(images, labels); },
        [this, self, result](Napi::Env env) -> Napi::Value {
          set(*result);
          return env.Undefined();
        });
  }

  static std::vector<int32_t> labels_arg(const Args& a, size_t i) {
    if (a.absent(i)) return {};
    if (!a.info[i].IsTypedArray() || a.info[i].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      a.type(i, "labels", "an Int32Array or null");
    const Napi::Int32Array l = a.info[i].As<Napi::Int32Array>();
    for (size_t k = 0; k < l.ElementLength(); ++k)
      if (l[k] < 0) throw Napi::RangeError::New(a.env(), data::cat(a.fn, ": labels must be >= 0, got ", l[k], " at ", k));
    return std::vector<int32_t>(l.Data(), l.Data() + l.ElementLength());
  }

  Napi::Value SetPixels(const Napi::CallbackInfo& info) {
    const Args a{info, "setPixels"};
    check_empty(info.Env(), "setPixels");
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      a.type(0, "pixels", "a Uint8Array");
    const Napi::Uint8Array px = info[0].As<Napi::Uint8Array>();
    const int64_t n = a.integer(1, "n", 1, int64_t(1) << 40);
    const int h = int(a.integer(2, "height", 1, 65536)), w = int(a.integer(3, "width", 1, 65536));
    const int c = int(a.integer(4, "channels", 1, 3));
    std::vector<int32_t> labels = labels_arg(a, 5);
    const std::string origin = a.absent(6) ? "<memory>" : a.string(6, "origin");
    guarded(info.Env(), [&] {
      set(std::make_shared<data::PixelDataset>(std::vector<uint8_t>(px.Data(), px.Data() + px.ByteLength()), n, h, w,
                                               c, std::move(labels), origin));
    });
    return info.Env().Undefined();
  }

  Napi::Value SetEncoded(const Napi::CallbackInfo& info) {
    const Args a{info, "setEncoded"};
    check_empty(info.Env(), "setEncoded");
    if (!info[0].IsArray()) a.type(0, "files", "an array of Uint8Arrays");
    const Napi::Array files = info[0].As<Napi::Array>();
    std::vector<std::vector<uint8_t>> bytes;
    for (uint32_t i = 0; i < files.Length(); ++i) {
      const Napi::Value v = files.Get(i);
      if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
        throw Napi::TypeError::New(info.Env(), data::cat("setEncoded: files[", i, "] must be a Uint8Array"));
      const Napi::Uint8Array u = v.As<Napi::Uint8Array>();
      bytes.emplace_back(u.Data(), u.Data() + u.ByteLength());
    }
    std::vector<int32_t> labels = labels_arg(a, 1);
    std::vector<std::string> names;
    if (!a.absent(2)) {
      if (!info[2].IsArray()) a.type(2, "names", "an array of strings or null");
      const Napi::Array n = info[2].As<Napi::Array>();
      for (uint32_t i = 0; i < n.Length(); ++i) names.push_back(n.Get(i).ToString().Utf8Value());
    }
    if (bytes.empty()) throw Napi::RangeError::New(info.Env(), "setEncoded: no files");
    guarded(info.Env(), [&] {
      set(std::make_shared<data::EncodedDataset>(std::move(bytes), std::move(labels), std::move(names)));
    });
    return info.Env().Undefined();
  }

  // setSubset(base, indices: Int32Array): the chosen samples of another DataSet, in that order.
  Napi::Value SetSubset(const Napi::CallbackInfo& info) {
    const Args a{info, "setSubset"};
    check_empty(info.Env(), "setSubset");
    DatasetWrap* base = from(info.Env(), info[0], "setSubset");
    const auto ds = base->dataset(info.Env(), "setSubset");
    if (!a.info[1].IsTypedArray() || a.info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      a.type(1, "indices", "an Int32Array");
    const Napi::Int32Array ix = a.info[1].As<Napi::Int32Array>();
    std::vector<int64_t> indices(ix.Data(), ix.Data() + ix.ElementLength());
    std::shared_ptr<const data::FolderDataset> folder;
    {
      std::lock_guard<std::mutex> lk(base->mu_);
      folder = base->folder_;
    }
    guarded(info.Env(), [&] { set(std::make_shared<data::SubsetDataset>(ds, std::move(indices)), folder); });
    return info.Env().Undefined();
  }

  Napi::Value Size(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), double(dataset(info.Env(), "size")->size()));
  }
  Napi::Value Classes(const Napi::CallbackInfo& info) {
    const auto ds = dataset(info.Env(), "classes");
    const auto& c = ds->classes();
    Napi::Array out = Napi::Array::New(info.Env(), c.size());
    for (size_t i = 0; i < c.size(); ++i) out.Set(uint32_t(i), c[i]);
    return out;
  }
  Napi::Value Labels(const Napi::CallbackInfo& info) {
    const auto ds = dataset(info.Env(), "labels");
    Napi::Int32Array out = Napi::Int32Array::New(info.Env(), size_t(ds->size()));
    for (int64_t i = 0; i < ds->size(); ++i) out[size_t(i)] = ds->label(i);
    return out;
  }
  int64_t index_arg(const Args& a, size_t i, const data::Dataset& ds) const {
    return a.integer(i, "index", 0, std::max<int64_t>(ds.size() - 1, 0));
  }
  Napi::Value Name(const Napi::CallbackInfo& info) {
    const auto ds = dataset(info.Env(), "name");
    return Napi::String::New(info.Env(), ds->name(index_arg({info, "name"}, 0, *ds)));
  }
  Napi::Value Info(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const auto ds = dataset(env, "info");
    std::shared_ptr<const data::FolderDataset> folder;
    {
      std::lock_guard<std::mutex> lk(mu_);
      folder = folder_;
    }
    Napi::Object o = Napi::Object::New(env);
    o.Set("size", double(ds->size()));
    if (folder) {
      const auto& s = folder->stats();
      o.Set("root", folder->root());
      o.Set("fromCache", s.from_cache);
      o.Set("seconds", s.seconds);
      o.Set("directories", double(s.directories));
      o.Set("cachePath", s.cache_path);
      o.Set("cacheNote", s.cache_note);
      Napi::Array empty = Napi::Array::New(env, s.empty_classes.size());
      for (size_t i = 0; i < s.empty_classes.size(); ++i) empty.Set(uint32_t(i), s.empty_classes[i]);
      o.Set("emptyClasses", empty);
    }
    return o;
  }

  Napi::Value Decode(const Napi::CallbackInfo& info) {
    const auto ds = dataset(info.Env(), "decode");
    const int64_t i = index_arg({info, "decode"}, 0, *ds);
    auto img = std::make_shared<data::Image>();
    return PromiseWorker::start(
        info.Env(),
        [ds, i, img] {
          data::Augmenter aug;
          std::vector<uint8_t> buf;
          try {
            aug.decode_full(ds->fetch(i, buf), *img);
          } catch (const DataError& e) {
            throw DataError(data::cat(ds->name(i), ": ", e.what()));
          }
        },
        [img](Napi::Env env) -> Napi::Value { return image_to_js(env, *img); });
  }

  // augment(index, views[], seed, epoch, slot) → { views: [{data, width, height, params}] }:
  // the 8-bit views exactly as the loader draws them for that (seed, epoch, slot).
  Napi::Value Augment(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    const Args a{info, "augment"};
    const auto ds = dataset(env, "augment");
    const int64_t i = index_arg(a, 0, *ds);
    if (!info[1].IsArray()) a.type(1, "views", "an array of view descriptions");
    const Napi::Array vs = info[1].As<Napi::Array>();
    std::vector<data::ViewConfig> cfgs;
    for (uint32_t k = 0; k < vs.Length() && k < 8; ++k) cfgs.push_back(parse_view(env, vs.Get(k), data::cat("view", k + 1)));
    if (cfgs.empty()) throw Napi::RangeError::New(env, "augment: at least one view");
    const uint64_t seed = uint64_t(a.integer(2, "seed", 0, int64_t(1) << 53));
    const int64_t epoch = a.integer(3, "epoch", 0, int64_t(1) << 40);
    const int64_t slot = a.absent(4) ? i : a.integer(4, "slot", 0, int64_t(1) << 50);
    struct Out {
      std::vector<data::Image> imgs;
      std::vector<data::ViewParams> params;
    };
    auto out = std::make_shared<Out>();
    return PromiseWorker::start(
        env,
        [ds, i, cfgs, seed, epoch, slot, out] {
          data::Augmenter aug;
          std::vector<uint8_t> buf;
          const int n = int(cfgs.size());
          std::vector<uint64_t> keys;
          for (int v = 0; v < n; ++v)
            keys.push_back(data::stream_key(seed, data::Stream::View, uint64_t(epoch), uint64_t(slot), uint64_t(v)));
          out->imgs.resize(size_t(n));
          out->params.resize(size_t(n));
          try {
            aug.render(ds->fetch(i, buf), cfgs.data(), keys.data(), n, nullptr, out->imgs.data(), out->params.data());
          } catch (const DataError& e) {
            throw DataError(data::cat(ds->name(i), ": ", e.what()));
          }
        },
        [out](Napi::Env env) -> Napi::Value {
          Napi::Array views = Napi::Array::New(env, out->imgs.size());
          for (size_t v = 0; v < out->imgs.size(); ++v) {
            Napi::Object o = image_to_js(env, out->imgs[v]);
            o.Set("params", params_to_js(env, out->params[v]));
            views.Set(uint32_t(v), o);
          }
          Napi::Object r = Napi::Object::New(env);
          r.Set("views", views);
          return r;
        });
  }

  mutable std::mutex mu_;
  std::shared_ptr<const data::Dataset> ds_;
  std::shared_ptr<const data::FolderDataset> folder_;
};

// ---- DataLoader ------------------------------------------------------------------------------------

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
    DatasetWrap* dw = DatasetWrap::from(env, info[0], "DataLoader");
    auto ds = dw->dataset(env, "DataLoader");
    const Fields f = fields(env, info[1], "DataLoader options");
    data::LoaderConfig c;
    c.batch_size = int(f.integer("batchSize", 0, 1, 1 << 20));
    if (!f.has("views") || !f.get("views").IsArray()) f.bad("views", "an array of 1 or 2 view descriptions");
    const Napi::Array vs = f.get("views").As<Napi::Array>();
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
    const Args a{info, "startEpoch"};
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
    return PromiseWorker::start(
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

// epochIndices(n, seed, epoch, rank, worldSize, shuffle) → { slots: Float64Array, indices: Float64Array }
Napi::Value EpochIndices(const Napi::CallbackInfo& info) {
  const Args a{info, "epochIndices"};
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

// setMaxImagePixels(n) → previous limit: the decompression-bomb guard (data.maxImagePixels).
Napi::Value SetMaxImagePixels(const Napi::CallbackInfo& info) {
  const Args a{info, "setMaxImagePixels"};
  const int64_t before = data::max_image_pixels();
  if (!a.absent(0)) data::set_max_image_pixels(a.integer(0, "pixels", 1, int64_t(1) << 40));
  return Napi::Number::New(info.Env(), double(before));
}

}  // namespace

void InitData(Napi::Env env, Napi::Object exports) {
  exports.Set("DataSet", DatasetWrap::Define(env));
  exports.Set("DataLoader", LoaderWrap::Define(env));
  exports.Set("releaseBatchArrays", Napi::Function::New(env, ReleaseBatchArrays));
  exports.Set("epochIndices", Napi::Function::New(env, EpochIndices));
  exports.Set("setMaxImagePixels", Napi::Function::New(env, SetMaxImagePixels));
}

}  // namespace m2t::binding
