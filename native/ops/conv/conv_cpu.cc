// Convolution on CPU through oneDNN (v2 API, as Debian ships 2.6).
// Activations stay NHWC end to end; weights are kept OIHW (PyTorch's layout, what the
// optimiser and checkpoints see) and reordered into the primitive's preferred blocked layout
// per call — cheap next to the convolution itself. Primitives are cached per input shape.
// Scratchpads are user-managed: one buffer per calling thread, grown to the largest need, so
// steady-state iterations allocate nothing (library-managed scratchpads page-faulted per call).
//
// Mixed precision (ConvGeom::compute == BF16): x and dy are bf16 tensors, read as they are (what
// the bf16 encoder stores: batch norm's outputs and input gradients), or f32 ones rounded to bf16
// here (round-to-nearest-even, a oneDNN reorder into a per-thread buffer: the same bits). The f32
// master weights are reordered straight into the primitive's bf16 blocked layout; the primitives
// accumulate in f32 and write y, dx and dw as f32: batch norm takes its statistics of the f32 y and
// reads an f32 dy (docs/algorithm.md, "Mixed precision"). The f32 path below is the same code as
// without mixed precision.
//
// Weights reordered for a primitive (and its weight gradient before the reorder back) live only
// for the call: one 64-byte aligned buffer per layer serves every direction and input shape
// (instead of a copy per direction and shape).
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <tuple>
#include <vector>

#include <dnnl.hpp>

#include "core/allocator.h"
#include "core/backend.h"
#include "core/error.h"
#include "ops/cpu_backend.h"

namespace m2t::cpu {
namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

dnnl::primitive_attr user_scratchpad() {
  dnnl::primitive_attr a;
  a.set_scratchpad_mode(dnnl::scratchpad_mode::user);
  return a;
}

// The calling thread's scratchpad, at least as large as `pd` asks for.
template <typename PD>
memory scratchpad_for(const PD& pd) {
  thread_local std::vector<char> buf;
  const memory::desc d = pd.scratchpad_desc();
  const size_t need = d.get_size();
  if (buf.size() < need) {
    note_workspace(static_cast<std::ptrdiff_t>(need - buf.size()));
    buf.resize(need);
  }
  return memory(d, engine(), buf.data());
}

// A per-thread bf16 staging buffer (slot 0: x, slot 1: dy) of at least `md`'s size.
memory bf16_buffer(const memory::desc& md, int slot) {
  thread_local std::vector<char> buf[2];
  const size_t need = md.get_size();
  if (buf[slot].size() < need) {
    note_workspace(static_cast<std::ptrdiff_t>(need - buf[slot].size()));
    buf[slot].resize(need);
  }
  return memory(md, engine(), buf[slot].data());
}

const char* isa_name(dnnl::cpu_isa isa) {
  switch (isa) {
    case dnnl::cpu_isa::sse41: return "SSE4.1";
    case dnnl::cpu_isa::avx: return "AVX";
    case dnnl::cpu_isa::avx2: return "AVX2";
    case dnnl::cpu_isa::avx2_vnni: return "AVX2-VNNI";
    case dnnl::cpu_isa::avx2_vnni_2: return "AVX2-VNNI-2";
    case dnnl::cpu_isa::avx512_core_fp16: return "AVX512-FP16";
    case dnnl::cpu_isa::avx512_core_amx_fp16: return "AMX-FP16";
    case dnnl::cpu_isa::avx512_core: return "AVX512";
    case dnnl::cpu_isa::avx512_core_vnni: return "AVX512-VNNI";
    case dnnl::cpu_isa::avx512_core_bf16: return "AVX512-BF16";
    case dnnl::cpu_isa::avx512_core_amx: return "AMX";
    default: return "no vector extension oneDNN uses";
  }
}

void require_bf16_conv();

class ConvCpu final : public ConvKernel {
 public:
  explicit ConvCpu(const ConvGeom& g) : g_(g), bf16_(g.compute == DType::BF16) {
    M2T_CHECK(g.compute == DType::F32 || g.compute == DType::BF16, "conv: compute type ", dtype_name(g.compute),
              " is not supported (f32 or bf16)");
    if (bf16_) require_bf16_conv();
  }
  ~ConvCpu() override { note_workspace(-static_cast<std::ptrdiff_t>(wcap_)); }

  void forward(const Tensor& x, const Tensor& w, Tensor& y) override {
    check_act(x, "x");
    check_f32(w, "w");
    Entry& e = entry(x.shape());
    y.resize_as(e.y_shape, DType::F32, "conv");
    dnnl::stream s(engine());
    memory src = input(s, e.src_md, x, 0);
    memory dst(e.dst_md, engine(), y.data());
    memory wm = weights_for(s, e.fwd_pd.weights_desc(), w);
    e.fwd.execute(s, {{DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DST, dst},
                      {DNNL_ARG_SCRATCHPAD, scratchpad_for(e.fwd_pd)}});
    s.wait();
  }

  void backward_data(const Tensor& dy, const Tensor& w, const Shape& x_shape, Tensor& dx) override {
    check_act(dy, "dy");
    check_f32(w, "w");
    Entry& e = entry(x_shape);
    ensure_bwd(e);
    dx.resize_as(x_shape, DType::F32, "conv backward");
    dnnl::stream s(engine());
    memory ddst = input(s, e.dst_md, dy, 1);
    memory dsrc(e.src_md, engine(), dx.data());
    memory wm = weights_for(s, e.bwd_data_pd.weights_desc(), w);
    e.bwd_data.execute(s, {{DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_WEIGHTS, wm}, {DNNL_ARG_DIFF_SRC, dsrc},
                           {DNNL_ARG_SCRATCHPAD, scratchpad_for(e.bwd_data_pd)}});
    s.wait();
  }

  void backward_weights(const Tensor& x, const Tensor& dy, Tensor& dw) override {
    check_act(x, "x");
    check_act(dy, "dy");
    check_f32(dw, "dw");
    Entry& e = entry(x.shape());
    ensure_bwd(e);
    dnnl::stream s(engine());
    memory src = input(s, e.src_md, x, 0);
    memory ddst = input(s, e.dst_md, dy, 1);
    memory user_dw(user_w_md(), engine(), dw.data());
    const bool direct = e.bwd_weights_pd.diff_weights_desc() == user_w_md();
    memory prim_dw = direct ? user_dw : layout_buffer(e.bwd_weights_pd.diff_weights_desc());
    e.bwd_weights.execute(s, {{DNNL_ARG_SRC, src}, {DNNL_ARG_DIFF_DST, ddst}, {DNNL_ARG_DIFF_WEIGHTS, prim_dw},
                              {DNNL_ARG_SCRATCHPAD, scratchpad_for(e.bwd_weights_pd)}});
    if (!direct) dnnl::reorder(prim_dw, user_dw).execute(s, prim_dw, user_dw);
    s.wait();
  }

 private:
  struct Entry {
    Shape y_shape;
    memory::desc src_md, dst_md;
    dnnl::convolution_forward::primitive_desc fwd_pd;
    dnnl::convolution_forward fwd;
    bool has_bwd = false;
    dnnl::convolution_backward_data::primitive_desc bwd_data_pd;
    dnnl::convolution_backward_data bwd_data;
    dnnl::convolution_backward_weights::primitive_desc bwd_weights_pd;
    dnnl::convolution_backward_weights bwd_weights;
  };

  static void check_f32(const Tensor& t, const char* what) {
    M2T_CHECK(t.dtype() == DType::F32, "conv: ", what, " is ", dtype_name(t.dtype()), ", expected f32");
  }
  // Compute type of the primitives' bf16-able operands (src, weights, dst of the backward passes).
  dt ct() const { return bf16_ ? dt::bf16 : dt::f32; }
  // A primitive-side activation desc: `user` (f32 NHWC) with the compute type.
  memory::desc compute_md(const memory::desc& user) const {
    return bf16_ ? memory::desc(user.get_dims(), dt::bf16, tag::nhwc) : user;
  }
  // x and dy: f32, or bf16 when the layer computes in bf16.
  void check_act(const Tensor& t, const char* what) const {
    M2T_CHECK(t.dtype() == DType::F32 || (bf16_ && t.dtype() == DType::BF16), "conv: ", what, " is ",
              dtype_name(t.dtype()), ", expected f32", bf16_ ? " or bf16" : " (the layer's precision is fp32)");
  }
  // The activation t as the primitive reads it: t itself (f32 path, or a bf16 tensor), or the
  // bf16 rounding of an f32 t in `slot`.
  memory input(dnnl::stream& s, const memory::desc& user_md, const Tensor& t, int slot) {
    if (t.dtype() == DType::BF16) return memory(compute_md(user_md), engine(), const_cast<void*>(t.raw()));
    memory user(user_md, engine(), const_cast<float*>(t.data()));
    if (!bf16_) return user;
    memory b = bf16_buffer(compute_md(user_md), slot);
    dnnl::reorder(user, b).execute(s, user, b);
    return b;
  }

  memory::desc user_w_md() const {
    return memory::desc({g_.cout, g_.cin, g_.kernel, g_.kernel}, dt::f32, tag::oihw);
  }
  memory::desc any_w_md(dt t = dt::f32) const {
    return memory::desc({g_.cout, g_.cin, g_.kernel, g_.kernel}, t, tag::any);
  }
  memory::dims strides() const { return {g_.stride, g_.stride}; }
  memory::dims pads() const { return {g_.pad, g_.pad}; }

  // The weights as the primitive wants them: the user's buffer itself or a reordered copy.
  memory weights_for(dnnl::stream& s, const memory::desc& want, const Tensor& w) {
    memory user(user_w_md(), engine(), const_cast<float*>(w.data()));
    if (want == user_w_md()) return user;
    memory scratch = layout_buffer(want);
    dnnl::reorder(user, scratch).execute(s, user, scratch);
    return scratch;
  }

  // This layer's buffer for weights in a primitive's layout, as `d` (a model's calls are serial).
  memory layout_buffer(const memory::desc& d) {
    const size_t need = (d.get_size() + 63) / 64 * 64;
    if (wcap_ < need) {
      char* p = static_cast<char*>(std::aligned_alloc(64, need));
      if (!p) throw std::bad_alloc();  // the old buffer stays
      wbuf_.reset(p);
      note_workspace(static_cast<std::ptrdiff_t>(need - wcap_));
      wcap_ = need;
    }
    return memory(d, engine(), wbuf_.get());
  }

  Entry& entry(const Shape& xs) {
    M2T_CHECK(xs.size() == 4 && xs[3] == g_.cin, "conv: input ", shape_str(xs), " does not have ", g_.cin,
              " channels (NHWC)");
    auto key = std::make_tuple(xs[0], xs[1], xs[2]);
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(key);
    if (it != cache_.end()) return it->second;
    const int64_t n = xs[0], h = xs[1], wd = xs[2];
    const int64_t ho = (h + 2 * g_.pad - g_.kernel) / g_.stride + 1;
    const int64_t wo = (wd + 2 * g_.pad - g_.kernel) / g_.stride + 1;
    M2T_CHECK(ho > 0 && wo > 0, "conv: input ", shape_str(xs), " is smaller than the ", g_.kernel, "x", g_.kernel,
              " kernel");
    Entry e;
    e.y_shape = {n, ho, wo, g_.cout};
    e.src_md = memory::desc({n, g_.cin, h, wd}, dt::f32, tag::nhwc);
    e.dst_md = memory::desc({n, g_.cout, ho, wo}, dt::f32, tag::nhwc);
    // bf16: src and weights bf16, dst f32 (what the next op, batch norm, reads).
    e.fwd_pd = dnnl::convolution_forward::primitive_desc(engine(), dnnl::prop_kind::forward_training,
                                                         dnnl::algorithm::convolution_direct, compute_md(e.src_md),
                                                         any_w_md(ct()), e.dst_md, strides(), pads(), pads(),
                                                         user_scratchpad());
    e.fwd = dnnl::convolution_forward(e.fwd_pd);
    return cache_.emplace(key, std::move(e)).first->second;
  }

  void ensure_bwd(Entry& e) {
    std::lock_guard<std::mutex> lock(mu_);
    if (e.has_bwd) return;
    // bf16: diff_dst and weights bf16, diff_src f32; backward weights: src and diff_dst bf16,
    // diff_weights f32 (the master weights' gradient).
    e.bwd_data_pd = dnnl::convolution_backward_data::primitive_desc(
        engine(), dnnl::algorithm::convolution_direct, e.src_md, any_w_md(ct()), compute_md(e.dst_md), strides(),
        pads(), pads(), e.fwd_pd, user_scratchpad());
    e.bwd_weights_pd = dnnl::convolution_backward_weights::primitive_desc(
        engine(), dnnl::algorithm::convolution_direct, compute_md(e.src_md), any_w_md(), compute_md(e.dst_md),
        strides(), pads(), pads(), e.fwd_pd, user_scratchpad());
    e.bwd_data = dnnl::convolution_backward_data(e.bwd_data_pd);
    e.bwd_weights = dnnl::convolution_backward_weights(e.bwd_weights_pd);
    e.has_bwd = true;
  }

  struct Free {
    void operator()(char* p) const { std::free(p); }
  };
  std::unique_ptr<char, Free> wbuf_;
  size_t wcap_ = 0;
  ConvGeom g_;
  bool bf16_;
  std::mutex mu_;
  std::map<std::tuple<int64_t, int64_t, int64_t>, Entry> cache_;
};

// oneDNN's effective ISA honours DNNL_MAX_CPU_ISA, so a test can take bf16 away (e.g. =AVX512_CORE).
void require_bf16_conv() {
  const dnnl::cpu_isa isa = dnnl::get_effective_cpu_isa();
  // oneDNN 3's ISA values are feature masks: every bf16-capable one contains avx512_core_bf16's bits.
  const auto need = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
  if ((static_cast<unsigned>(isa) & need) == need) return;
  fail(ErrorKind::Error, "precision 'bf16' needs a CPU with AVX512-BF16 or AMX; this CPU has ", isa_name(isa),
       " (use precision 'fp32')");
}

}  // namespace

std::unique_ptr<ConvKernel> CpuBackend::make_conv(const ConvGeom& g) { return std::make_unique<ConvCpu>(g); }

}  // namespace m2t::cpu
