// Node-API entry points, one per feature file in this folder.
#pragma once
#include <napi.h>

namespace m2t::binding {
void InitEngine(Napi::Env env, Napi::Object exports);  // engine.cc: Momentum2Teacher, LinearProbe
void InitComm(Napi::Env env, Napi::Object exports);    // comm.cc: ProcessGroup (Gloo over TCP)
void InitEval(Napi::Env env, Napi::Object exports);    // eval.cc: knnPredict, logisticRegression
#ifdef M2T_WITH_DATA
void InitData(Napi::Env env, Napi::Object exports);    // data.cc: datasets, loaders
#endif
}  // namespace m2t::binding
