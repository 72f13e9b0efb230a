// Batch memory lent to JS. A data-loader batch buffer is exposed as an external Float32Array;
// the engine borrows it back by reference (no copy, no finiteness scan: the loader proved its
// values finite when it was configured), and release() returns it to the loader's pool.
// Lifetime: the lease and every borrower hold the buffer's owner, so the pool gets the memory
// back only when the last of them lets go — a release() during a step cannot free what the
// step is reading, and the released arrays are detached so JS cannot see reused memory.
#pragma once
#include <napi.h>

#include <memory>

namespace m2t::binding {

// Lends `floats` f32 values at `owner.get()` to JS. The caller vouches that they are all finite.
Napi::Float32Array lend(Napi::Env env, std::shared_ptr<float> owner, size_t floats);
// The owner of `a`'s memory when `a` spans exactly one live lent buffer; nullptr otherwise
// (user memory, a sub-range, a released or detached array).
std::shared_ptr<float> borrow(const Napi::TypedArray& a);
// releaseBatchArrays(arrays): detaches each lent array and drops its lease now.
Napi::Value ReleaseBatchArrays(const Napi::CallbackInfo& info);

}  // namespace m2t::binding
