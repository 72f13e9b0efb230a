// The oneDNN convolution ceiling of one Momentum² Teacher step: every convolution the step runs,
// at its shape, straight through oneDNN with nothing else — per conv layer of the encoder, two
// forwards (student and teacher, each on both views: N = 2·batch), one backward-data (not for
// the stem: no gradient for the images) and one backward-weights. Activations NHWC as in the
// engine; weights already in the primitive's layout (their reorder is not counted); scratchpads
// preallocated. The best of several repetitions is the ceiling: a step can be no faster than
// its convolutions. tools/bench/step.ts builds and runs this and prints ours as a percentage.
//
//   conv_ceiling --arch resnet50 --size 112 --batch 16 --threads 2 --precision fp32 --budget 10
// prints one JSON line: {"images_per_s", "images_per_cpu_s", "step_conv_s", "forward_s",
// "backward_data_s", "backward_weights_s", "convs", "reps"}; images per CPU-second of the process
// is the figure to compare when other processes share the cores. --precision bf16 times the
// engine's mixed-precision primitives (bf16 operands; f32 outputs and weight gradients). --blocked lets oneDNN choose the
// activations' layout too (not what the engine runs; for comparing layouts).
#include <omp.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include <dnnl.hpp>

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

struct Geo {
  int64_t cin, cout, k, stride, pad, h, w;  // input spatial size h x w
  bool needs_dx;
};

// CPU seconds of this process so far (user + system): steadier than wall time on a shared machine.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

int64_t out_size(int64_t s, int64_t k, int64_t st, int64_t p) { return (s + 2 * p - k) / st + 1; }

// The conv layers of a torchvision-v1.5 ResNet (as native/models/resnet.cc builds it).
std::vector<Geo> resnet_convs(const std::string& arch, int64_t size, bool small_stem) {
  struct A { const char* n; bool bott; int b[4]; };
  const A archs[] = {{"resnet18", false, {2, 2, 2, 2}}, {"resnet34", false, {3, 4, 6, 3}},
                     {"resnet50", true, {3, 4, 6, 3}}, {"resnet101", true, {3, 4, 23, 3}},
                     {"resnet152", true, {3, 8, 36, 3}}};
  const A* a = nullptr;
  for (const A& x : archs)
    if (arch == x.n) a = &x;
  if (!a) {
    std::fprintf(stderr, "conv_ceiling: --arch: unknown '%s'\n", arch.c_str());
    std::exit(2);
  }
  std::vector<Geo> v;
  int64_t s = size;
  if (small_stem) {
    v.push_back({3, 64, 3, 1, 1, s, s, false});
  } else {
    v.push_back({3, 64, 7, 2, 3, s, s, false});
    s = out_size(s, 7, 2, 3);
    s = out_size(s, 3, 2, 1);  // max pool
  }
  int64_t cin = 64;
  for (int st = 0; st < 4; ++st) {
    const int64_t planes = 64 << st;
    for (int i = 0; i < a->b[st]; ++i) {
      const int64_t stride = (st > 0 && i == 0) ? 2 : 1;
      const int64_t cout = a->bott ? planes * 4 : planes;
      const int64_t so = out_size(s, 3, stride, 1);
      if (a->bott) {
        v.push_back({cin, planes, 1, 1, 0, s, s, true});
        v.push_back({planes, planes, 3, stride, 1, s, s, true});
        v.push_back({planes, cout, 1, 1, 0, so, so, true});
      } else {
        v.push_back({cin, planes, 3, stride, 1, s, s, true});
        v.push_back({planes, planes, 3, 1, 1, so, so, true});
      }
      if (stride != 1 || cin != cout) v.push_back({cin, cout, 1, stride, 0, s, s, true});
      cin = cout;
      s = so;
    }
  }
  return v;
}

struct Prims {
  std::vector<std::pair<dnnl::primitive, std::unordered_map<int, memory>>> fwd, bwd_d, bwd_w;
};

int main(int argc, char** argv) {
  std::string arch = "resnet50", precision = "fp32";
  int64_t size = 112, batch = 16;
  int threads = 2;
  double budget = 10;
  bool small_stem = false;
  tag act = tag::nhwc;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) { std::fprintf(stderr, "conv_ceiling: %s needs a value\n", a.c_str()); std::exit(2); }
      return argv[++i];
    };
    if (a == "--arch") arch = next();
    else if (a == "--size") size = std::atoll(next().c_str());
    else if (a == "--batch") batch = std::atoll(next().c_str());
    else if (a == "--threads") threads = std::atoi(next().c_str());
    else if (a == "--budget") budget = std::atof(next().c_str());
    else if (a == "--precision") precision = next();
    else if (a == "--small-stem") small_stem = true;
    else if (a == "--blocked") act = tag::any;  // activations in oneDNN's preferred layout (not what the engine uses)
    else { std::fprintf(stderr, "conv_ceiling: unknown flag %s\n", a.c_str()); return 2; }
  }
  if (precision != "fp32" && precision != "bf16") {
    std::fprintf(stderr, "conv_ceiling: --precision: expected fp32 or bf16, got '%s'\n", precision.c_str());
    return 2;
  }
  if (threads > 0) omp_set_num_threads(threads);
  const bool bf = precision == "bf16";
  const dt ct = bf ? dt::bf16 : dt::f32;
  dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  dnnl::stream strm(eng);
  const int64_t N = 2 * batch;  // both views in one batch
  const std::vector<Geo> convs = resnet_convs(arch, size, small_stem);

  std::vector<memory> keep;  // buffers stay alive
  auto mem = [&](const memory::desc& d) {
    memory m(d, eng);
    std::memset(m.get_data_handle(), 0, d.get_size());
    keep.push_back(m);
    return m;
  };
  dnnl::primitive_attr attr;
  attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  Prims P;
  size_t scratch = 0;
  std::vector<memory::desc> scratch_mds;
  try {
    for (const Geo& g : convs) {
      const int64_t ho = out_size(g.h, g.k, g.stride, g.pad), wo = out_size(g.w, g.k, g.stride, g.pad);
      const memory::dims xd{N, g.cin, g.h, g.w}, yd{N, g.cout, ho, wo}, wd{g.cout, g.cin, g.k, g.k};
      const memory::dims st{g.stride, g.stride}, pd{g.pad, g.pad};
      const memory::desc x_c(xd, ct, act), x_f(xd, dt::f32, act), y_c(yd, ct, act),
          y_f(yd, dt::f32, act), w_any(wd, ct, tag::any), wf_any(wd, dt::f32, tag::any);
      dnnl::convolution_forward::primitive_desc fpd(eng, dnnl::prop_kind::forward_training,
                                                    dnnl::algorithm::convolution_direct, x_c, w_any, y_f, st, pd, pd,
                                                    attr);
      memory x = mem(fpd.src_desc()), w = mem(fpd.weights_desc()), y = mem(fpd.dst_desc());
      P.fwd.push_back({dnnl::convolution_forward(fpd), {{DNNL_ARG_SRC, x}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_DST, y}}});
      scratch_mds.push_back(fpd.scratchpad_desc());
      if (g.needs_dx) {
        dnnl::convolution_backward_data::primitive_desc bpd(eng, dnnl::algorithm::convolution_direct, x_f, w_any,
                                                            y_c, st, pd, pd, fpd, attr);
        memory dy = mem(bpd.diff_dst_desc()), wb = mem(bpd.weights_desc()), dx = mem(bpd.diff_src_desc());
        P.bwd_d.push_back({dnnl::convolution_backward_data(bpd),
                           {{DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_WEIGHTS, wb}, {DNNL_ARG_DIFF_SRC, dx}}});
        scratch_mds.push_back(bpd.scratchpad_desc());
      }
      dnnl::convolution_backward_weights::primitive_desc wpd(eng, dnnl::algorithm::convolution_direct, x_c, wf_any,
                                                             y_c, st, pd, pd, fpd, attr);
      memory dy = mem(wpd.diff_dst_desc()), dw = mem(wpd.diff_weights_desc()), xw = mem(wpd.src_desc());
      P.bwd_w.push_back({dnnl::convolution_backward_weights(wpd),
                         {{DNNL_ARG_SRC, xw}, {DNNL_ARG_DIFF_DST, dy}, {DNNL_ARG_DIFF_WEIGHTS, dw}}});
      scratch_mds.push_back(wpd.scratchpad_desc());
    }
  } catch (const dnnl::error& e) {
    std::fprintf(stderr, "conv_ceiling: oneDNN has no %s convolution here (%s)\n", precision.c_str(), e.what());
    return 1;
  }
  for (const auto& d : scratch_mds) scratch = std::max(scratch, d.get_size());
  std::vector<char> pad(scratch + 64);
  auto run = [&](auto& list, int times) {
    double t = 0;
    for (auto& [prim, args] : list) {
      auto a = args;
      // Every primitive shares one scratchpad (they run one at a time), as the engine's do.
      const auto t0 = std::chrono::steady_clock::now();
      for (int r = 0; r < times; ++r) {
        memory sp(dnnl::memory::desc({static_cast<int64_t>(scratch)}, dt::u8, tag::x), eng, pad.data());
        a[DNNL_ARG_SCRATCHPAD] = sp;
        prim.execute(strm, a);
      }
      strm.wait();
      t += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    }
    return t;
  };
  run(P.fwd, 1), run(P.bwd_d, 1), run(P.bwd_w, 1);  // warm-up
  double best = 1e30, bf_ = 0, bd = 0, bw = 0, spent = 0, best_cpu = 1e30;
  int reps = 0;
  while (reps < 2 || spent < budget) {
    const double c0 = cpu_seconds();
    const double f = run(P.fwd, 2), d = run(P.bwd_d, 1), w = run(P.bwd_w, 1);
    best_cpu = std::min(best_cpu, cpu_seconds() - c0);
    spent += f + d + w;
    ++reps;
    if (f + d + w < best) best = f + d + w, bf_ = f, bd = d, bw = w;
  }
  std::printf("{\"arch\":\"%s\",\"size\":%lld,\"batch\":%lld,\"threads\":%d,\"precision\":\"%s\",\"convs\":%zu,"
              "\"reps\":%d,\"images_per_s\":%.3f,\"images_per_cpu_s\":%.3f,\"step_conv_s\":%.5f,\"forward_s\":%.5f,\"backward_data_s\":%.5f,"
              "\"backward_weights_s\":%.5f}\n",
              arch.c_str(), static_cast<long long>(size), static_cast<long long>(batch), threads, precision.c_str(),
              convs.size(), reps, batch / best, batch / best_cpu, best, bf_, bd, bw);
  return 0;
}
