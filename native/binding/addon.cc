#include "binding/addon.h"

namespace {
Napi::Object Init(Napi::Env env, Napi::Object exports) {
  m2t::binding::InitEngine(env, exports);
  m2t::binding::InitComm(env, exports);
  m2t::binding::InitEval(env, exports);
#ifdef M2T_WITH_DATA
  m2t::binding::InitData(env, exports);
#endif
  return exports;
}
}  // namespace

NODE_API_MODULE(m2t, Init)
