// Argument checking and conversion between JS values and core types. Every failure throws a
// JS TypeError/RangeError whose message names the parameter.
#pragma once
#include <napi.h>

#include <functional>
#include <map>
#include <string>
#include <vector>

#include "core/error.h"
#include "core/tensor.h"
#include "io/safetensors.h"
#include "models/module.h"

namespace m2t::binding {

// Throws the JS error matching a core error's kind.
[[noreturn]] void throw_js(Napi::Env env, const m2t::Error& e);
Napi::Error to_js(Napi::Env env, ErrorKind kind, const std::string& msg);

// Every C++ exception from `f` becomes a JS one: core and data errors keep their kind,
// allocation failures say so.
template <typename F>
auto guarded(Napi::Env env, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const Napi::Error&) {
    throw;
  } catch (const m2t::Error& e) {
    throw_js(env, e);
  } catch (const std::bad_alloc&) {
    throw Napi::RangeError::New(env, "out of memory (std::bad_alloc)");
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, std::string("native error: ") + e.what());
  }
}

// Positional arguments of the function `fn`: messages name the function, the parameter and its
// position ("openIdx: images (argument 1) must be a string").
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn) : info_(info), fn_(fn) {}
  Napi::Env env() const { return info_.Env(); }
  const char* fn() const { return fn_; }
  Napi::Value operator[](size_t i) const { return info_[i]; }
  bool absent(size_t i) const;  // missing, undefined or null
  [[noreturn]] void type_error(size_t i, const char* name, const char* expected) const;
  double number(size_t i, const char* name) const;
  int64_t integer(size_t i, const char* name, int64_t lo, int64_t hi) const;
  std::string string(size_t i, const char* name) const;

 private:
  const Napi::CallbackInfo& info_;
  const char* fn_;
};

// Optional fields of a config object; `where` prefixes messages (e.g. "Momentum2Teacher config").
class Fields {
 public:
  Fields(Napi::Env env, Napi::Value v, std::string where);
  // A field set that must be an object (absent is a TypeError too).
  static Fields object(Napi::Env env, Napi::Value v, std::string where);
  Fields sub(const char* key);  // nested object (absent → empty)
  bool has(const char* key) const;
  Napi::Value value(const char* key) const { return get(key); }
  double number(const char* key, double def, double lo, double hi);
  double number(const char* key, double def);  // any finite number
  std::vector<double> numbers(const char* key, std::vector<double> def);  // exactly def.size() numbers
  int64_t integer(const char* key, int64_t def, int64_t lo, int64_t hi);
  bool boolean(const char* key, bool def);
  std::string string(const char* key, const std::string& def);
  // Throws TypeError naming any key not in `known`.
  void only(std::initializer_list<const char*> known) const;
  [[noreturn]] void type_error(const char* key, const std::string& expected) const;

 private:
  Napi::Value get(const char* key) const;
  Napi::Env env_;
  Napi::Object obj_;
  bool present_;
  std::string where_;
};

// A Float32Array + [n, h, w, 3] shape → Tensor (copied). `name` names the parameter in errors.
Tensor image_batch(Napi::Env env, Napi::Value data, Napi::Value shape, const char* name);
double finite_number(Napi::Env env, Napi::Value v, const char* name, double lo, double hi);
std::string path_arg(Napi::Env env, Napi::Value v, const char* name);
std::map<std::string, std::string> string_map(Napi::Env env, Napi::Value v, const char* name);

// { name: { shape: number[], data: Float32Array } } ↔ core tensors.
std::map<std::string, StTensor> state_from_js(Napi::Env env, Napi::Value v, const char* name);
Napi::Object state_to_js(Napi::Env env, const std::vector<const Registry*>& regs);
Napi::Object tensors_to_js(Napi::Env env, const StFile& f);
Napi::Object metadata_to_js(Napi::Env env, const std::map<std::string, std::string>& m);

// Runs `work` on the libuv pool and settles a Promise with `done(env)` or the error it threw.
Napi::Promise run_async(Napi::Env env, std::function<void()> work, std::function<Napi::Value(Napi::Env)> done,
                        std::function<void()> finally = nullptr);

}  // namespace m2t::binding
