#include "binding/estimate.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>

#include "core/error.h"

namespace m2t::binding {
namespace {

// The plan at n; beyond int64-safe sizes, extrapolated in doubles from n = 1 and 2 (exactly
// linear in n up to the 64-byte rounding of each tensor), and clamped.
template <typename Plan>
MemoryEstimate from_plan(Plan&& plan, const BatchShape& b) {
  MemoryEstimate m;
  const MemoryPlan p0 = plan(0, 0, 0);
  m.state_floats = p0.state_floats;
  m.model_bytes = p0.model();
  m.plan = p0;
  if (b.n == 0) return m;
  const MemoryPlan p1 = plan(1, b.h, b.w), p2 = plan(2, b.h, b.w);
  m.activation_bytes_per_image = double(p2.activations - p1.activations);
  if (double(b.n) * double(b.h) * double(b.w) < 1e9) {
    m.plan = plan(b.n, b.h, b.w);
    m.activation_bytes = m.plan.activations;
  } else {
    const double a = double(p1.activations) + double(b.n - 1) * m.activation_bytes_per_image;
    m.activation_bytes = int64_t(std::min(a, double(std::numeric_limits<int64_t>::max() / 4)));
    m.plan.activations = m.activation_bytes;
  }
  return m;
}

}  // namespace

MemoryEstimate estimate_m2t(const M2TConfig& cfg, const BatchShape& b) {
  return from_plan([&](int64_t n, int64_t h, int64_t w) { return plan_m2t(cfg, n, h, w); }, b);
}

MemoryEstimate estimate_probe(const ProbeConfig& cfg, const BatchShape& b) {
  return from_plan([&](int64_t n, int64_t h, int64_t w) { return plan_probe(cfg, n, h, w); }, b);
}

static int64_t read_int_file(const char* path) {
  std::ifstream f(path);
  std::string s;
  if (!(f >> s) || s == "max") return -1;
  try {
    return std::stoll(s);
  } catch (...) {
    return -1;
  }
}

int64_t available_memory(std::string* source) {
  if (const char* env = std::getenv("M2T_MEMORY_AVAILABLE")) {
    char* end = nullptr;
    const double v = std::strtod(env, &end);
    if (end != env && *end == '\0' && v >= 0) {
      if (source) *source = "M2T_MEMORY_AVAILABLE";
      return int64_t(std::min(v, 9e18));
    }
  }
  int64_t avail = -1;
  std::ifstream mi("/proc/meminfo");
  std::string key;
  int64_t kb;
  std::string unit;
  while (mi >> key >> kb) {
    std::getline(mi, unit);
    if (key == "MemAvailable:") {
      avail = kb * 1024;
      break;
    }
  }
  std::string src = "MemAvailable in /proc/meminfo";
  const int64_t max = read_int_file("/sys/fs/cgroup/memory.max");
  if (max >= 0) {
    const int64_t cur = std::max<int64_t>(0, read_int_file("/sys/fs/cgroup/memory.current"));
    const int64_t left = std::max<int64_t>(0, max - cur);
    if (avail < 0 || left < avail) avail = left, src = "the cgroup limit memory.max";
  }
  if (source) *source = avail < 0 ? "unknown" : src;
  return avail;
}

std::string format_bytes(double b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  int u = 0;
  while (b >= 1024 && u < 6) b /= 1024, ++u;
  return str(std::round(b * 10) / 10, " ", units[u]);
}

void check_memory(const MemoryEstimate& e, const std::string& what) {
  std::string source;
  const int64_t avail = available_memory(&source);
  if (avail < 0) return;  // nothing to compare with (not Linux)
  if (double(e.total()) <= double(avail)) return;
  fail(ErrorKind::RangeError, what, ": needs about ", format_bytes(double(e.total())), " (model ",
       format_bytes(double(e.model_bytes)), e.activation_bytes ? str(", activations ", format_bytes(double(e.activation_bytes))) : "",
       ") but only ", format_bytes(double(avail)), " is available (", source,
       "); use a smaller arch, width, batch or image size");
}

}  // namespace m2t::binding
