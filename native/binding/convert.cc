#include "binding/convert.h"

#include "binding/batch.h"

#include <cmath>
#include <cstring>
#include <dnnl.hpp>

namespace m2t::binding {

Napi::Error to_js(Napi::Env env, ErrorKind kind, const std::string& msg) {
  switch (kind) {
    case ErrorKind::TypeError: return Napi::TypeError::New(env, msg);
    case ErrorKind::RangeError: return Napi::RangeError::New(env, msg);
    default: return Napi::Error::New(env, msg);
  }
}

void throw_js(Napi::Env env, const m2t::Error& e) { throw to_js(env, e.kind(), e.what()); }

bool Args::absent(size_t i) const { return info_.Length() <= i || info_[i].IsUndefined() || info_[i].IsNull(); }

void Args::type_error(size_t i, const char* name, const char* expected) const {
  throw Napi::TypeError::New(env(), str(fn_, ": ", name, " (argument ", i + 1, ") must be ", expected));
}

double Args::number(size_t i, const char* name) const {
  if (!info_[i].IsNumber()) type_error(i, name, "a number");
  return info_[i].As<Napi::Number>().DoubleValue();
}

int64_t Args::integer(size_t i, const char* name, int64_t lo, int64_t hi) const {
  const double v = number(i, name);
  if (!(v == std::floor(v)) || v < double(lo) || v > double(hi))
    throw Napi::RangeError::New(env(), str(fn_, ": ", name, " must be an integer in [", lo, ", ", hi, "], got ", v));
  return int64_t(v);
}

std::string Args::string(size_t i, const char* name) const {
  if (!info_[i].IsString()) type_error(i, name, "a string");
  return info_[i].As<Napi::String>().Utf8Value();
}

Fields Fields::object(Napi::Env env, Napi::Value v, std::string where) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, where + ": expected an object");
  return Fields(env, v, std::move(where));
}

Fields::Fields(Napi::Env env, Napi::Value v, std::string where) : env_(env), where_(std::move(where)) {
  present_ = !(v.IsUndefined() || v.IsNull());
  if (present_ && !v.IsObject()) throw Napi::TypeError::New(env, where_ + ": expected an object");
  obj_ = present_ ? v.As<Napi::Object>() : Napi::Object::New(env);
}

Napi::Value Fields::get(const char* key) const { return obj_.Get(key); }
bool Fields::has(const char* key) const { return !get(key).IsUndefined(); }

void Fields::type_error(const char* key, const std::string& expected) const {
  throw Napi::TypeError::New(env_, where_ + ": '" + key + "' must be " + expected);
}

Fields Fields::sub(const char* key) { return Fields(env_, get(key), where_ + "." + key); }

double Fields::number(const char* key, double def, double lo, double hi) {
  Napi::Value v = get(key);
  if (v.IsUndefined()) return def;
  if (!v.IsNumber()) type_error(key, "a number");
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d < lo || d > hi)
    throw Napi::RangeError::New(env_, str(where_, ": '", key, "' must be a finite number in [", lo, ", ", hi,
                                          "], got ", d));
  return d;
}

double Fields::number(const char* key, double def) { return number(key, def, -HUGE_VAL, HUGE_VAL); }

std::vector<double> Fields::numbers(const char* key, std::vector<double> def) {
  Napi::Value v = get(key);
  if (v.IsUndefined()) return def;
  const std::string expected = str("an array of ", def.size(), " finite numbers");
  if (!v.IsArray() || v.As<Napi::Array>().Length() != def.size()) type_error(key, expected);
  const Napi::Array a = v.As<Napi::Array>();
  std::vector<double> out;
  for (uint32_t i = 0; i < a.Length(); ++i) {
    const Napi::Value x = a.Get(i);
    if (!x.IsNumber() || !std::isfinite(x.As<Napi::Number>().DoubleValue())) type_error(key, expected);
    out.push_back(x.As<Napi::Number>().DoubleValue());
  }
  return out;
}

int64_t Fields::integer(const char* key, int64_t def, int64_t lo, int64_t hi) {
  const double d = number(key, static_cast<double>(def), static_cast<double>(lo), static_cast<double>(hi));
  if (d != std::floor(d)) throw Napi::RangeError::New(env_, str(where_, ": '", key, "' must be an integer, got ", d));
  return static_cast<int64_t>(d);
}

bool Fields::boolean(const char* key, bool def) {
  Napi::Value v = get(key);
  if (v.IsUndefined()) return def;
  if (!v.IsBoolean()) type_error(key, "a boolean");
  return v.As<Napi::Boolean>().Value();
}

std::string Fields::string(const char* key, const std::string& def) {
  Napi::Value v = get(key);
  if (v.IsUndefined()) return def;
  if (!v.IsString()) type_error(key, "a string");
  return v.As<Napi::String>().Utf8Value();
}

void Fields::only(std::initializer_list<const char*> known) const {
  Napi::Array keys = obj_.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
    bool ok = false;
    for (const char* n : known) ok = ok || k == n;
    if (!ok) throw Napi::TypeError::New(env_, where_ + ": unknown key '" + k + "'");
  }
}

double finite_number(Napi::Env env, Napi::Value v, const char* name, double lo, double hi) {
  if (!v.IsNumber()) throw Napi::TypeError::New(env, str(name, " must be a number"));
  const double d = v.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || d < lo || d > hi)
    throw Napi::RangeError::New(env, str(name, " must be a finite number in [", lo, ", ", hi, "], got ", d));
  return d;
}

Tensor image_batch(Napi::Env env, Napi::Value data, Napi::Value shape, const char* name) {
  if (!data.IsTypedArray() || data.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
    throw Napi::TypeError::New(env, str(name, ": data must be a Float32Array"));
  if (!shape.IsArray() || shape.As<Napi::Array>().Length() != 4)
    throw Napi::TypeError::New(env, str(name, ": shape must be [n, h, w, 3] (NHWC)"));
  Napi::Array sa = shape.As<Napi::Array>();
  Shape s;
  for (uint32_t i = 0; i < 4; ++i) {
    Napi::Value d = sa.Get(i);
    if (!d.IsNumber()) throw Napi::TypeError::New(env, str(name, ": shape[", i, "] is not a number"));
    const double v = d.As<Napi::Number>().DoubleValue();
    if (!(v >= 1 && v <= (1 << 20) && v == std::floor(v)))
      throw Napi::RangeError::New(env, str(name, ": shape[", i, "] must be a positive integer, got ", v));
    s.push_back(static_cast<int64_t>(v));
  }
  if (s[3] != 3) throw Napi::RangeError::New(env, str(name, ": shape ", shape_str(s), " must end in 3 channels (NHWC)"));
  Napi::Float32Array a = data.As<Napi::Float32Array>();
  if (static_cast<int64_t>(a.ElementLength()) != numel_of(s))
    throw Napi::RangeError::New(env, str(name, ": data has ", a.ElementLength(), " elements, shape ", shape_str(s),
                                         " needs ", numel_of(s)));
  // A data-loader batch is used in place: its values are finite by construction (the loader
  // refuses a normalisation that could map a pixel to a NaN or an infinity).
  if (std::shared_ptr<float> lent = borrow(a)) {
    float* p = lent.get();
    return Tensor::wrap_host(std::move(lent), p, std::move(s));
  }
  // User memory: copied (JS may change it while the step runs) and checked.
  Tensor t(s);
  const float* d = a.Data();
  std::memcpy(t.data(), d, t.numel() * sizeof(float));
  const float* c = t.data();
  float acc = 0;  // x*0 is NaN exactly when x is not finite, and NaN survives any summation order
#pragma omp simd reduction(+ : acc)
  for (int64_t i = 0; i < t.numel(); ++i) acc += c[i] * 0.0f;
  if (acc != acc)
    for (int64_t i = 0; i < t.numel(); ++i)
      if (!std::isfinite(c[i])) throw Napi::RangeError::New(env, str(name, ": element ", i, " is not finite (", c[i], ")"));
  return t;
}

std::string path_arg(Napi::Env env, Napi::Value v, const char* name) {
  if (!v.IsString()) throw Napi::TypeError::New(env, str(name, " must be a string (a file path)"));
  std::string p = v.As<Napi::String>().Utf8Value();
  if (p.empty()) throw Napi::TypeError::New(env, str(name, " must not be empty"));
  return p;
}

std::map<std::string, std::string> string_map(Napi::Env env, Napi::Value v, const char* name) {
  std::map<std::string, std::string> m;
  if (v.IsUndefined() || v.IsNull()) return m;
  if (!v.IsObject()) throw Napi::TypeError::New(env, str(name, " must be an object of strings"));
  Napi::Object o = v.As<Napi::Object>();
  Napi::Array keys = o.GetPropertyNames();
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value x = o.Get(k);
    if (!x.IsString()) throw Napi::TypeError::New(env, str(name, ": '", k, "' must be a string"));
    m[k] = x.As<Napi::String>().Utf8Value();
  }
  return m;
}

std::map<std::string, StTensor> state_from_js(Napi::Env env, Napi::Value v, const char* name) {
  if (!v.IsObject()) throw Napi::TypeError::New(env, str(name, " must be an object of {shape, data} tensors"));
  Napi::Object o = v.As<Napi::Object>();
  Napi::Array keys = o.GetPropertyNames();
  std::map<std::string, StTensor> out;
  for (uint32_t i = 0; i < keys.Length(); ++i) {
    const std::string k = keys.Get(i).As<Napi::String>().Utf8Value();
    Napi::Value e = o.Get(k);
    if (!e.IsObject()) throw Napi::TypeError::New(env, str(name, ": '", k, "' must be {shape, data}"));
    Napi::Value sh = e.As<Napi::Object>().Get("shape"), da = e.As<Napi::Object>().Get("data");
    if (!sh.IsArray()) throw Napi::TypeError::New(env, str(name, ": '", k, "'.shape must be an array"));
    if (!da.IsTypedArray() || da.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw Napi::TypeError::New(env, str(name, ": '", k, "'.data must be a Float32Array"));
    StTensor t;
    t.dtype = "F32";
    Napi::Array sa = sh.As<Napi::Array>();
    for (uint32_t j = 0; j < sa.Length(); ++j) {
      Napi::Value d = sa.Get(j);
      const double x = d.IsNumber() ? d.As<Napi::Number>().DoubleValue() : -1;
      if (!(x >= 0 && x == std::floor(x) && x < 1e12))
        throw Napi::TypeError::New(env, str(name, ": '", k, "'.shape[", j, "] must be a non-negative integer"));
      t.shape.push_back(static_cast<int64_t>(x));
    }
    Napi::Float32Array a = da.As<Napi::Float32Array>();
    if (static_cast<int64_t>(a.ElementLength()) != numel_of(t.shape))
      throw Napi::RangeError::New(env, str(name, ": '", k, "' has ", a.ElementLength(), " elements for shape ",
                                           shape_str(t.shape)));
    t.data.assign(a.Data(), a.Data() + a.ElementLength());
    out.emplace(k, std::move(t));
  }
  return out;
}

static Napi::Object tensor_js(Napi::Env env, const Shape& shape, const float* data, size_t n) {
  Napi::Object o = Napi::Object::New(env);
  Napi::Array s = Napi::Array::New(env, shape.size());
  for (size_t i = 0; i < shape.size(); ++i) s.Set(static_cast<uint32_t>(i), Napi::Number::New(env, shape[i]));
  Napi::Float32Array a = Napi::Float32Array::New(env, n);
  if (n) std::memcpy(a.Data(), data, n * sizeof(float));
  o.Set("shape", s);
  o.Set("data", a);
  return o;
}

Napi::Object state_to_js(Napi::Env env, const std::vector<const Registry*>& regs) {
  Napi::Object o = Napi::Object::New(env);
  for (const Registry* r : regs)
    for (const Entry& e : r->entries())
      o.Set(e.name, tensor_js(env, e.value->shape(), e.value->data(), e.value->numel()));
  return o;
}

Napi::Object tensors_to_js(Napi::Env env, const StFile& f) {
  Napi::Object o = Napi::Object::New(env);
  for (const std::string& name : f.order) {
    const StTensor& t = f.tensors.at(name);
    o.Set(name, tensor_js(env, t.shape, t.data.data(), t.data.size()));
  }
  return o;
}

Napi::Object metadata_to_js(Napi::Env env, const std::map<std::string, std::string>& m) {
  Napi::Object o = Napi::Object::New(env);
  for (const auto& [k, v] : m) o.Set(k, v);
  return o;
}

namespace {
class Worker final : public Napi::AsyncWorker {
 public:
  Worker(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done,
         std::function<void()> finally)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)),
        done_(std::move(done)), finally_(std::move(finally)) {}
  Napi::Promise promise() { return deferred_.Promise(); }
  void Execute() override {
    try {
      work_();
    } catch (const m2t::Error& e) {
      kind_ = e.kind();
      SetError(e.what());
    } catch (const dnnl::error& e) {
      SetError(std::string("oneDNN: ") + e.what());
    } catch (const std::bad_alloc&) {
      SetError("out of memory (std::bad_alloc)");
    } catch (const std::exception& e) {
      SetError(e.what());
    } catch (...) {
      SetError("unknown native error");
    }
  }
  void OnOK() override {
    if (finally_) finally_();
    Napi::Env env = Env();
    try {
      deferred_.Resolve(done_(env));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    } catch (const std::exception& e) {
      deferred_.Reject(Napi::Error::New(env, std::string("native error: ") + e.what()).Value());
    }
  }
  void OnError(const Napi::Error& e) override {
    if (finally_) finally_();
    deferred_.Reject(to_js(Env(), kind_, e.Message()).Value());
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::function<void()> work_;
  std::function<Napi::Value(Napi::Env)> done_;
  std::function<void()> finally_;
  ErrorKind kind_ = ErrorKind::Error;
};
}  // namespace

Napi::Promise run_async(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done,
                        std::function<void()> finally) {
  auto* w = new Worker(env, std::move(work), std::move(done), std::move(finally));
  Napi::Promise p = w->promise();
  w->Queue();
  return p;
}

}  // namespace m2t::binding
