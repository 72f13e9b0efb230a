// The ProcessGroup class (comm.cc) as seen by the other binding files.
#pragma once
#include <napi.h>

#include <memory>

#include "comm/comm.h"

namespace m2t::binding {

// The connected communicator of a JS ProcessGroup; TypeError naming `name` for anything else.
std::shared_ptr<Comm> process_group_comm(Napi::Env env, Napi::Value v, const char* name);

}  // namespace m2t::binding
