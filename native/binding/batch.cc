#include "binding/batch.h"

#include <mutex>
#include <unordered_map>

namespace m2t::binding {
namespace {

struct Lease {
  std::shared_ptr<float> owner;
  size_t bytes;
};
std::mutex g_mu;
std::unordered_map<const void*, Lease*> g_leases;  // live leases by data pointer

}  // namespace

Napi::Float32Array lend(Napi::Env env, std::shared_ptr<float> owner, size_t floats) {
  auto* lease = new Lease{std::move(owner), floats * sizeof(float)};
  void* ptr = lease->owner.get();
  {
    std::lock_guard<std::mutex> lk(g_mu);
    g_leases[ptr] = lease;
  }
  Napi::MemoryManagement::AdjustExternalMemory(env, int64_t(lease->bytes));
  // The finalizer runs when the ArrayBuffer is collected (after a release() or not).
  Napi::ArrayBuffer ab = Napi::ArrayBuffer::New(
      env, ptr, lease->bytes,
      [](Napi::Env env, void* data, Lease* l) {
        {
          std::lock_guard<std::mutex> lk(g_mu);
          auto it = g_leases.find(data);
          if (it != g_leases.end() && it->second == l) g_leases.erase(it);
        }
        Napi::MemoryManagement::AdjustExternalMemory(env, -int64_t(l->bytes));
        delete l;
      },
      lease);
  return Napi::Float32Array::New(env, floats, ab, 0);
}

std::shared_ptr<float> borrow(const Napi::TypedArray& a) {
  Napi::ArrayBuffer ab = a.ArrayBuffer();
  if (ab.IsDetached() || a.ByteOffset() != 0) return nullptr;
  std::lock_guard<std::mutex> lk(g_mu);
  auto it = g_leases.find(ab.Data());
  if (it == g_leases.end() || !it->second->owner || it->second->bytes != a.ByteLength()) return nullptr;
  return it->second->owner;
}

Napi::Value ReleaseBatchArrays(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsArray())
    throw Napi::TypeError::New(env, "releaseBatchArrays: expected an array of Float32Arrays");
  const Napi::Array arr = info[0].As<Napi::Array>();
  for (uint32_t i = 0; i < arr.Length(); ++i) {
    const Napi::Value v = arr.Get(i);
    if (!v.IsTypedArray()) continue;
    Napi::ArrayBuffer ab = v.As<Napi::TypedArray>().ArrayBuffer();
    if (ab.IsDetached()) continue;
    std::shared_ptr<float> owner;
    {
      std::lock_guard<std::mutex> lk(g_mu);
      auto it = g_leases.find(ab.Data());
      if (it == g_leases.end()) continue;  // not ours
      owner = std::move(it->second->owner);  // the Lease itself goes with the finalizer
    }
    ab.Detach();
    owner.reset();  // back to the pool now, unless a step still holds it
  }
  return env.Undefined();
}

}  // namespace m2t::binding
