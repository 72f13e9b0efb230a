// Argument checking and conversion between JS values and core types. Every failure throws a
// JS TypeError/RangeError whose message names the parameter.
#pragma once
#include <napi.h>

#include <functional>
#include <map>
#include <string>

#include "core/error.h"
#include "core/tensor.h"
#include "io/safetensors.h"
#include "models/module.h"

namespace m2t::binding {

// Throws the JS error matching a core error's kind.
[[noreturn]] void throw_js(Napi::Env env, const m2t::Error& e);
Napi::Error to_js(Napi::Env env, ErrorKind kind, const std::string& msg);

// Optional fields of a config object; `where` prefixes messages (e.g. "Momentum2Teacher config").
class Fields {
 public:
  Fields(Napi::Env env, Napi::Value v, std::string where);
  Fields sub(const char* key);  // nested object (absent → empty)
  bool has(const char* key) const;
  double number(const char* key, double def, double lo, double hi);
  int64_t integer(const char* key, int64_t def, int64_t lo, int64_t hi);
  bool boolean(const char* key, bool def);
  std::string string(const char* key, const std::string& def);
  // Throws TypeError naming any key not in `known`.
  void only(std::initializer_list<const char*> known) const;

 private:
  Napi::Value get(const char* key) const;
  [[noreturn]] void type_error(const char* key, const char* expected) const;
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
