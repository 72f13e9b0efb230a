// The CPU backend's device-level methods (memory, copies) and the backend registry. The op
// methods are defined in their rooms (ops/<op>/<op>_cpu.cc).
#include "ops/cpu_backend.h"

#include <algorithm>
#include <cstring>

#include "core/error.h"

namespace m2t {
namespace cpu {

dnnl::engine& engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

void CpuBackend::copy(Tensor& dst, const Tensor& src) {
  M2T_CHECK(dst.device().is_cpu() && src.device().is_cpu(), "cpu backend: copy between ", src.device().str(), " and ",
            dst.device().str());
  M2T_CHECK(dst.nbytes() == src.nbytes(), "cpu backend: copy of ", src.nbytes(), " bytes into ", dst.nbytes());
  if (dst.nbytes()) std::memcpy(dst.raw(), src.raw(), dst.nbytes());
}

void CpuBackend::fill_zero(Tensor& t) {
  if (t.nbytes()) std::memset(t.raw(), 0, t.nbytes());
}

void CpuBackend::fill(Tensor& t, float v) { std::fill(t.data(), t.data() + t.numel(), v); }

}  // namespace cpu

Backend& cpu_backend() {
  static cpu::CpuBackend be;
  return be;
}

Backend& backend_for(Device dev) {
  if (dev.is_cpu()) return cpu_backend();
  fail(ErrorKind::Error, "device ", dev.str(),
       ": this build of momentum2-teacher has no CUDA backend (built backends: cpu); use 'cpu'");
}

std::vector<std::string> available_backends() { return {"cpu"}; }

std::vector<Backend*> built_backends() { return {&cpu_backend()}; }

}  // namespace m2t
