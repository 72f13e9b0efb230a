// The data pipeline's Node-API front (native/data), one file per class: dataset.cc (DataSet),
// loader.cc (DataLoader, epochIndices), batch.cc (batch memory lent to JS), data.cc (view
// descriptions, InitData). Argument reading, Promises and error mapping: convert.h, as for the engine.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "data/dataset.h"
#include "data/pipeline.h"

namespace m2t::binding {

// The flat view description lib/data/transforms.ts produces; `where` ("view1") prefixes messages.
data::ViewConfig parse_view(Napi::Env env, Napi::Value v, const std::string& where);
// The open dataset behind the DataSet object `v`; `who` names the caller in errors.
std::shared_ptr<const data::Dataset> dataset_arg(Napi::Env env, Napi::Value v, const char* who);

Napi::Function DefineDataSet(Napi::Env env);     // dataset.cc
Napi::Value SetMaxImagePixels(const Napi::CallbackInfo& info);
Napi::Function DefineDataLoader(Napi::Env env);  // loader.cc
Napi::Value EpochIndices(const Napi::CallbackInfo& info);

}  // namespace m2t::binding
