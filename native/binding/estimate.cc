#include "binding/estimate.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>

#include "core/error.h"

namespace m2t::binding {
namespace {

// Block counts per stage; mirrors models/resnet.cc (the estimate test checks the element count
// against the real state dict for every architecture).
struct Arch {
  const char* name;
  bool bottleneck;
  int blocks[4];
};
constexpr Arch kArchs[] = {
    {"resnet18", false, {2, 2, 2, 2}}, {"resnet34", false, {3, 4, 6, 3}}, {"resnet50", true, {3, 4, 6, 3}},
    {"resnet101", true, {3, 4, 23, 3}}, {"resnet152", true, {3, 8, 36, 3}},
};

int64_t scaled(int64_t c, double width) { return std::max<int64_t>(1, std::lround(c * width)); }

// Counts in doubles: the configurations worth refusing overflow int64 products.
struct Count {
  double params = 0;      // trainable elements
  double buffers = 0;     // BN running stats and counters
  double activations = 0; // per image: elements of every conv/BN output of one forward
  double feat = 0;
};

void add_bn(Count& c, double ch) {
  c.params += 2 * ch;
  c.buffers += 2 * ch + 1;
}

Count encoder(const EncoderConfig& e, int64_t h, int64_t w) {
  const Arch* a = nullptr;
  for (const Arch& x : kArchs)
    if (e.arch == x.name) a = &x;
  if (!a) fail(ErrorKind::RangeError, "arch: unknown architecture '", e.arch, "'");
  Count c;
  const double stem = double(scaled(64, e.width));
  const int k = e.small_stem ? 3 : 7;
  c.params += 3 * stem * k * k;
  add_bn(c, stem);
  double hh = double(h), ww = double(w);
  if (!e.small_stem) hh = std::ceil(hh / 2), ww = std::ceil(ww / 2);
  c.activations += 2 * stem * hh * ww;  // conv, BN+ReLU
  if (!e.small_stem) hh = std::ceil(hh / 2), ww = std::ceil(ww / 2);
  double cin = stem;
  for (int s = 0; s < 4; ++s) {
    const double planes = double(scaled(64 << s, e.width));
    for (int i = 0; i < a->blocks[s]; ++i) {
      const bool down_stride = s > 0 && i == 0;
      const double oh = down_stride ? std::ceil(hh / 2) : hh, ow = down_stride ? std::ceil(ww / 2) : ww;
      const double cout = a->bottleneck ? 4 * planes : planes;
      if (a->bottleneck) {
        c.params += cin * planes + planes * planes * 9 + planes * cout;
        add_bn(c, planes), add_bn(c, planes), add_bn(c, cout);
        c.activations += 2 * (planes * hh * ww + planes * oh * ow + cout * oh * ow) + cout * oh * ow;
      } else {
        c.params += cin * planes * 9 + planes * planes * 9;
        add_bn(c, planes), add_bn(c, planes);
        c.activations += 2 * (2 * planes * oh * ow) + cout * oh * ow;
      }
      if (down_stride || cin != cout) {
        c.params += cin * cout;
        add_bn(c, cout);
        c.activations += 2 * cout * oh * ow;
      }
      cin = cout;
      hh = oh, ww = ow;
    }
  }
  c.feat = cin;
  c.activations += cin;
  return c;
}

// Linear(in→hidden) + BN1d(hidden) + Linear(hidden→out), biases included.
Count mlp(double in, double hidden, double out) {
  Count c;
  c.params += in * hidden + hidden + hidden * out + out;
  add_bn(c, hidden);
  c.activations += 3 * hidden + out;
  return c;
}

double clamp_bytes(double b) { return std::min(b, double(std::numeric_limits<int64_t>::max() / 2)); }

}  // namespace

MemoryEstimate estimate_m2t(const M2TConfig& cfg, const BatchShape& b) {
  const Count enc = encoder(cfg.encoder, b.h, b.w);
  const double H = double(cfg.hidden_dim), O = double(cfg.out_dim);
  const Count proj = mlp(enc.feat, H, O), pred = mlp(O, H, O);
  const double student = enc.params + proj.params + pred.params;
  const double teacher = enc.params + proj.params;
  const double buffers = 2 * enc.buffers + 2 * proj.buffers + pred.buffers;
  MemoryEstimate m;
  const double state = student + teacher + buffers;
  m.state_floats = int64_t(std::min(state, 9e18));
  // state + a gradient and a momentum buffer per student parameter, float32.
  m.model_bytes = int64_t(clamp_bytes(4 * (state + 2 * student)));
  // Per image and view: the student keeps its forward outputs and as many gradients for the
  // backward pass; the teacher only its forward outputs.
  const double per_view = 2 * (enc.activations + proj.activations + pred.activations) + enc.activations + proj.activations;
  const double input = double(b.h) * double(b.w) * 3;
  m.activation_bytes = int64_t(clamp_bytes(4 * double(b.n) * 2 * (per_view + 2 * input)));
  return m;
}

MemoryEstimate estimate_probe(const ProbeConfig& cfg, const BatchShape& b) {
  const Count enc = encoder(cfg.encoder, b.h, b.w);
  const double K = double(cfg.num_classes);
  const double fc = enc.feat * K + K;
  const double state = enc.params + enc.buffers + fc + 2 * K + 2 * K + 1;
  MemoryEstimate m;
  m.state_floats = int64_t(std::min(state, 9e18));
  m.model_bytes = int64_t(clamp_bytes(4 * (state + 2 * (fc + 2 * K))));
  m.activation_bytes = int64_t(clamp_bytes(4 * double(b.n) * (enc.activations + 4 * K + double(b.h) * double(b.w) * 3)));
  return m;
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
