// libFuzzer target (issue 13): arbitrary bytes as a checkpoint file, through the safetensors
// reader and both models' checkpoint loaders. A core m2t::Error (the one-line message users
// see) is the expected outcome for bad input; anything else — a crash, a sanitizer report, any
// other exception escaping — is a finding.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>

#include "core/backend.h"
#include "core/error.h"
#include "io/safetensors.h"
#include "models/m2t.h"
#include "models/probe.h"

namespace {

std::string scratch_path() {
  const char* dir = std::getenv("TMPDIR");
  return std::string(dir ? dir : "/tmp") + "/m2t-fuzz-" + std::to_string(::getpid()) + ".safetensors";
}

// The tiny models the seed corpus was written from (scripts/fuzz.sh), built once.
m2t::Momentum2Teacher& m2t_model() {
  static auto* m = [] {
    m2t::M2TConfig c;
    c.encoder = {"resnet18", 1.0 / 64, true};
    c.hidden_dim = 8;
    c.out_dim = 4;
    c.total_iterations = 4;
    c.threads = 1;
    return new m2t::Momentum2Teacher(m2t::cpu_backend(), c);
  }();
  return *m;
}

m2t::LinearProbe& probe_model() {
  static auto* p = [] {
    m2t::ProbeConfig c;
    c.encoder = {"resnet18", 1.0 / 64, true};
    c.num_classes = 3;
    c.threads = 1;
    return new m2t::LinearProbe(m2t::cpu_backend(), c);
  }();
  return *p;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = scratch_path();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) return 0;
  std::fwrite(data, 1, size, f);
  std::fclose(f);
  try {
    m2t::read_safetensors(path);
  } catch (const m2t::Error&) {
  }
  try {
    m2t_model().load(path);
  } catch (const m2t::Error&) {
  }
  try {
    probe_model().load(path);
  } catch (const m2t::Error&) {
  }
  return 0;
}
