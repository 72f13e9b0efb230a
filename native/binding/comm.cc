// ProcessGroup: the CPU processes of a data-parallel run, joined through the TCP store and Gloo
// (comm/gloo_comm.h; sums through shared memory when all ranks are on one machine, see `transport`).
// connect(), allreduceSum(Float32Array) and barrier() run on the libuv pool and
// return Promises; while one runs, the JS object and the array it works on are held, so neither can be
// collected under it.
#include <memory>

#include "binding/comm.h"

#include "binding/addon.h"
#include "binding/convert.h"
#include "comm/gloo_comm.h"

namespace m2t::binding {

namespace {

// Marks ProcessGroup objects, so a model's `processGroup` option can be checked before it is unwrapped.
constexpr napi_type_tag kProcessGroupTag = {0x6d3274cf1b0a4e51ULL, 0x9c1e8f2d7a6b5c43ULL};

class ProcessGroupWrap : public Napi::ObjectWrap<ProcessGroupWrap> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "ProcessGroup",
                       {InstanceMethod("connect", &ProcessGroupWrap::Connect),
                        InstanceMethod("allreduceSum", &ProcessGroupWrap::AllreduceSum),
                        InstanceMethod("barrier", &ProcessGroupWrap::Barrier),
                        InstanceAccessor("rank", &ProcessGroupWrap::Rank, nullptr),
                        InstanceAccessor("worldSize", &ProcessGroupWrap::WorldSize, nullptr),
                        InstanceAccessor("transport", &ProcessGroupWrap::Transport, nullptr)});
  }

  explicit ProcessGroupWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<ProcessGroupWrap>(info) {
    Napi::Env env = info.Env();
    Fields f(env, info[0], "ProcessGroup options");
    f.only({"rank", "worldSize", "host", "port", "localHost", "timeoutMs"});
    if (!f.has("rank") || !f.has("worldSize") || !f.has("port"))
      throw Napi::TypeError::New(env, "ProcessGroup options: 'rank', 'worldSize' and 'port' are required");
    opts_.world_size = int(f.integer("worldSize", 1, 1, 1 << 20));
    opts_.rank = int(f.integer("rank", 0, 0, opts_.world_size - 1));
    opts_.master_addr = f.string("host", "127.0.0.1");
    opts_.master_port = int(f.integer("port", 29500, 1, 65535));
    opts_.interface_host = f.string("localHost", "");
    opts_.timeout = std::chrono::milliseconds(f.integer("timeoutMs", 60000, 1, int64_t(24) * 3600 * 1000));
    napi_type_tag_object(env, info.This(), &kProcessGroupTag);
  }

  std::shared_ptr<GlooComm> comm() const { return comm_; }

 private:
  // Marks the object busy and pins it (and `extra`, if given) until the call settles.
  std::function<void()> pin(Napi::Env env, const char* what, Napi::Value extra = Napi::Value()) {
    if (busy_) throw Napi::Error::New(env, std::string("ProcessGroup.") + what + ": a previous call is still running; await it first");
    busy_ = true;
    auto self = std::make_shared<Napi::ObjectReference>(Napi::Persistent(Value()));
    auto held = std::make_shared<Napi::Reference<Napi::Value>>();
    if (!extra.IsEmpty()) *held = Napi::Persistent(extra);
    return [this, self, held] {
      busy_ = false;
      held->Reset();
      self->Reset();
    };
  }

  std::shared_ptr<GlooComm> connected(Napi::Env env, const char* what) {
    if (!comm_) throw Napi::Error::New(env, std::string("ProcessGroup.") + what + ": call (and await) connect() first");
    return comm_;
  }

  Napi::Value Connect(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (comm_) throw Napi::Error::New(env, "ProcessGroup.connect: already connected");
    auto slot = std::make_shared<std::shared_ptr<GlooComm>>();
    const GlooOptions o = opts_;
    auto release = pin(env, "connect");
    // The worker runs `release` before `done`: `done` holds its own reference to this object.
    auto self = std::make_shared<Napi::ObjectReference>(Napi::Persistent(Value()));
    return run_async(
        env, [slot, o] { *slot = std::make_shared<GlooComm>(o); },
        [this, slot, self](Napi::Env e) -> Napi::Value {
          comm_ = *slot;
          self->Reset();
          return e.Undefined();
        },
        release);
  }

  Napi::Value AllreduceSum(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (!info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array)
      throw Napi::TypeError::New(env, "ProcessGroup.allreduceSum: 'data' must be a Float32Array");
    auto comm = connected(env, "allreduceSum");
    Napi::Float32Array a = info[0].As<Napi::Float32Array>();
    float* p = a.Data();
    const size_t n = a.ElementLength();
    auto release = pin(env, "allreduceSum", a);
    return run_async(env, [comm, p, n] { comm->allreduce_sum(p, n); }, [](Napi::Env e) { return e.Undefined(); }, release);
  }

  Napi::Value Barrier(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    auto comm = connected(env, "barrier");
    const auto timeout = std::chrono::milliseconds(
        info[0].IsUndefined() ? 0 : int64_t(finite_number(env, info[0], "timeoutMs", 1, 7 * 24 * 3600e3)));
    auto release = pin(env, "barrier");
    return run_async(env, [comm, timeout] { comm->barrier(timeout); }, [](Napi::Env e) { return e.Undefined(); }, release);
  }

  Napi::Value Rank(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), opts_.rank); }
  Napi::Value WorldSize(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), opts_.world_size); }
  // How the sums travel: 'shm' (one machine, shared memory) or 'tcp'; null before connect() resolves.
  Napi::Value Transport(const Napi::CallbackInfo& info) {
    return comm_ ? Napi::String::New(info.Env(), comm_->transport()) : info.Env().Null();
  }

  GlooOptions opts_;
  std::shared_ptr<GlooComm> comm_;
  bool busy_ = false;
};

}  // namespace

std::shared_ptr<Comm> process_group_comm(Napi::Env env, Napi::Value v, const char* name) {
  bool tagged = false;
  if (v.IsObject()) napi_check_object_type_tag(env, v, &kProcessGroupTag, &tagged);
  if (!tagged) throw Napi::TypeError::New(env, std::string(name) + " must be a ProcessGroup");
  auto comm = ProcessGroupWrap::Unwrap(v.As<Napi::Object>())->comm();
  if (!comm) throw Napi::Error::New(env, std::string(name) + ": the ProcessGroup is not connected (await its connect() first)");
  return comm;
}

void InitComm(Napi::Env env, Napi::Object exports) { exports.Set("ProcessGroup", ProcessGroupWrap::Define(env)); }

}  // namespace m2t::binding
