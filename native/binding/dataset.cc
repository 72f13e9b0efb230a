// Node-API class DataSet: an image folder, IDX files, pixels or encoded files in memory, or a
// subset of another; decode() and augment() for previews. Slow work runs on the libuv pool.
#include <cstring>
#include <memory>
#include <mutex>
#include <string>

#include "binding/convert.h"
#include "binding/data.h"
#include "data/decode.h"
#include "data/folder.h"
#include "data/sampler.h"

namespace m2t::binding {
namespace {

using data::DataError;

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
    const Args a(info, "openFolder");
    check_empty(info.Env(), "openFolder");
    data::FolderOptions o;
    const std::string root = a.string(0, "root");
    if (!a.absent(1)) o.cache_dir = a.string(1, "cacheDir");
    o.threads = a.absent(2) ? 1 : int(a.integer(2, "threads", 1, 1024));
    auto result = std::make_shared<std::shared_ptr<data::FolderDataset>>();
    auto self = keep_alive();
    return run_async(
        info.Env(), [root, o, result] { *result = data::FolderDataset::open(root, o); },
        [this, self, result](Napi::Env env) -> Napi::Value {
          set(*result, *result);
          return env.Undefined();
        });
  }

  Napi::Value OpenIdx(const Napi::CallbackInfo& info) {
    const Args a(info, "openIdx");
    check_empty(info.Env(), "openIdx");
    const std::string images = a.string(0, "images");
    const std::string labels = a.absent(1) ? "" : a.string(1, "labels");
    auto result = std::make_shared<std::shared_ptr<data::PixelDataset>>();
    auto self = keep_alive();
    return run_async(
        info.Env(), [images, labels, result] { *result = data::load_idx(images, labels); },
        [this, self, result](Napi::Env env) -> Napi::Value {
          set(*result);
          return env.Undefined();
        });
  }

  static std::vector<int32_t> labels_arg(const Args& a, size_t i) {
    if (a.absent(i)) return {};
    if (!a[i].IsTypedArray() || a[i].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      a.type_error(i, "labels", "an Int32Array or null");
    const Napi::Int32Array l = a[i].As<Napi::Int32Array>();
    for (size_t k = 0; k < l.ElementLength(); ++k)
      if (l[k] < 0) throw Napi::RangeError::New(a.env(), data::cat(a.fn(), ": labels must be >= 0, got ", l[k], " at ", k));
    return std::vector<int32_t>(l.Data(), l.Data() + l.ElementLength());
  }

  Napi::Value SetPixels(const Napi::CallbackInfo& info) {
    const Args a(info, "setPixels");
    check_empty(info.Env(), "setPixels");
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array)
      a.type_error(0, "pixels", "a Uint8Array");
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
    const Args a(info, "setEncoded");
    check_empty(info.Env(), "setEncoded");
    if (!info[0].IsArray()) a.type_error(0, "files", "an array of Uint8Arrays");
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
      if (!info[2].IsArray()) a.type_error(2, "names", "an array of strings or null");
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
    const Args a(info, "setSubset");
    check_empty(info.Env(), "setSubset");
    DatasetWrap* base = from(info.Env(), info[0], "setSubset");
    const auto ds = base->dataset(info.Env(), "setSubset");
    if (!a[1].IsTypedArray() || a[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
      a.type_error(1, "indices", "an Int32Array");
    const Napi::Int32Array ix = a[1].As<Napi::Int32Array>();
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
    return Napi::String::New(info.Env(), ds->name(index_arg(Args(info, "name"), 0, *ds)));
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
    const int64_t i = index_arg(Args(info, "decode"), 0, *ds);
    auto img = std::make_shared<data::Image>();
    return run_async(
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
    const Args a(info, "augment");
    const auto ds = dataset(env, "augment");
    const int64_t i = index_arg(a, 0, *ds);
    if (!info[1].IsArray()) a.type_error(1, "views", "an array of view descriptions");
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
    return run_async(
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

}  // namespace

std::shared_ptr<const data::Dataset> dataset_arg(Napi::Env env, Napi::Value v, const char* who) {
  return DatasetWrap::from(env, v, who)->dataset(env, who);
}

Napi::Function DefineDataSet(Napi::Env env) { return DatasetWrap::Define(env); }

// setMaxImagePixels(n) → previous limit: the decompression-bomb guard (data.maxImagePixels).
Napi::Value SetMaxImagePixels(const Napi::CallbackInfo& info) {
  const Args a(info, "setMaxImagePixels");
  const int64_t before = data::max_image_pixels();
  if (!a.absent(0)) data::set_max_image_pixels(a.integer(0, "pixels", 1, int64_t(1) << 40));
  return Napi::Number::New(info.Env(), double(before));
}

}  // namespace m2t::binding
