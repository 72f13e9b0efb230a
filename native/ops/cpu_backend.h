// The CPU backend: oneDNN (convolution, matmul) and own OpenMP loops. Its methods are defined in
// the op rooms (ops/<op>/<op>_cpu.cc); contracts are documented on Backend (core/backend.h).
#pragma once
#include <cstring>
#include <dnnl.hpp>
#include <initializer_list>
#include <vector>

#include "core/backend.h"
#include "core/error.h"

namespace m2t::cpu {

dnnl::engine& engine();

// Activation element access for kernels over f32 or bf16 (uint16_t bit patterns) tensors: load
// widens to f32, store rounds to nearest even (both inline and vectorisable inside omp simd).
inline float load(float v) { return v; }
inline float load(uint16_t v) { return bf16_to_f32(v); }
inline void store(float& d, float v) { d = v; }
inline void store(uint16_t& d, float v) { d = f32_to_bf16(v); }
// d·[m > 0] for a ReLU output m (f32 or bf16): d, or +0 where m ≤ 0 or NaN — what relu_backward
// stores. An and of the bits: GCC leaves the select `m > 0 ? d : 0` as a branch in some loops,
// which then do not vectorise.
template <typename TM>
inline float relu_masked(float d, TM m) {
  uint32_t b;
  std::memcpy(&b, &d, sizeof b);
  b &= load(m) > 0.0f ? 0xffffffffu : 0u;
  std::memcpy(&d, &b, sizeof d);
  return d;
}
template <typename T>
T* elems(Tensor& t) { return static_cast<T*>(t.raw()); }
template <typename T>
const T* elems(const Tensor& t) { return static_cast<const T*>(t.raw()); }
// Calls f(float{}) or f(uint16_t{}) for an f32 or bf16 activation tensor; Error naming `what` else.
template <typename F>
void with_act_type(DType t, const char* what, F&& f) {
  if (t == DType::F32) return f(float{});
  if (t == DType::BF16) return f(uint16_t{});
  fail(ErrorKind::Error, what, ": ", dtype_name(t), " activations (expected f32 or bf16)");
}
// Error naming `what` unless every tensor has dtype t.
inline void check_dtypes(const char* what, DType t, std::initializer_list<const Tensor*> ts) {
  for (const Tensor* x : ts)
    M2T_CHECK(x->dtype() == t, what, ": a ", dtype_name(x->dtype()), " tensor among ", dtype_name(t), " ones");
}

class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::cpu(); }
  Allocator& allocator() override { return host_allocator(); }
  void copy(Tensor& dst, const Tensor& src) override;
  void fill_zero(Tensor& t) override;
  void fill(Tensor& t, float v) override;

  std::unique_ptr<ConvKernel> make_conv(const ConvGeom& g) override;

  void bn_stats(const Tensor& x, int64_t C, int G, Tensor& mean, Tensor& var) override;
  void bn_fold_train(const Tensor& mean, const Tensor& var, int64_t n, const Tensor& gamma, const Tensor& beta,
                     Tensor& running_mean, Tensor& running_var, Tensor& num_batches_tracked, Tensor& invstd,
                     Tensor& scale, Tensor& shift) override;
  void bn_fold_infer(const Tensor& running_mean, const Tensor& running_var, const Tensor& gamma, const Tensor& beta,
                     int G, Tensor& scale, Tensor& shift) override;
  void bn_fold_momentum(const Tensor& mean, const Tensor& var, int64_t n, const Tensor& gamma, const Tensor& beta,
                        const Tensor& running_mean, const Tensor& running_var, double alpha, bool double_unbias,
                        Tensor& scale, Tensor& shift) override;
  void bn_momentum_update(const Tensor& mean, const Tensor& var, int g, int64_t n, double alpha, bool double_unbias,
                          bool stash_full, Tensor& stash_mean, Tensor& stash_var, Tensor& running_mean,
                          Tensor& running_var) override;
  void bn_apply(const Tensor& x, int64_t C, int G, const Tensor& scale, const Tensor& shift, const Tensor* residual,
                bool relu, Tensor& y) override;
  void bn_backward(const Tensor& x, const Tensor* y_relu, const Tensor& dy, int64_t C, int G, const Tensor& mean,
                   const Tensor& invstd, const Tensor& gamma, Tensor& dx, Tensor& dgamma, Tensor& dbeta) override;
  void bn_apply_xhat(const Tensor& x, int64_t C, int G, const Tensor& scale, const Tensor& shift, const Tensor& mean,
                     const Tensor& invstd, const Tensor* residual, bool relu, Tensor& y, Tensor& xhat) override;
  void bn_backward_xhat(const Tensor& xhat, const Tensor* y_relu, const Tensor& dy, int64_t C, int G,
                        const Tensor& invstd, const Tensor& gamma, Tensor& dx, Tensor& dgamma, Tensor& dbeta) override;

  void maxpool_forward(const Tensor& x, Tensor& y, Tensor& idx) override;
  void maxpool_backward(const Tensor& dy, const Tensor& idx, const Shape& x_shape, Tensor& dx) override;
  void avgpool_forward(const Tensor& x, Tensor& y) override;
  void avgpool_backward(const Tensor& dy, const Shape& x_shape, Tensor& dx) override;

  void add_relu(const Tensor& a, const Tensor& b, Tensor& y) override;
  void relu_backward(const Tensor& y, Tensor& dy) override;
  void add_inplace(Tensor& y, const Tensor& x) override;
  void add_relu_backward(Tensor& dx, const Tensor& g, const Tensor& y) override;
  void scale(Tensor& x, float s) override;
  void cast(const Tensor& src, Tensor& dst) override;
  void concat2(const Tensor& a, const Tensor& b, Tensor& y) override;

  void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) override;
  void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw,
                       Tensor& db) override;

  void l2norm_forward(const Tensor& x, Tensor& y, Tensor& norms) override;
  void l2norm_backward(const Tensor& x, const Tensor& y, const Tensor& norms, const Tensor& dy, Tensor& dx) override;
  void m2t_loss(const Tensor& q, const Tensor& k, Tensor& dq, Tensor& loss) override;
  void cross_entropy(const Tensor& logits, const Tensor& labels, Tensor* dlogits, Tensor& loss) override;
  void count_correct(const Tensor& logits, const Tensor& labels, Tensor& counts) override;

  void accumulate_nonfinite(const Tensor& x, Tensor& flag) override;
  void ema(Tensor& target, const Tensor& source, float tau, Tensor* nonfinite) override;
  double sum_squares(const Tensor& x) override;
  void momentum_update(Tensor& p, const Tensor& g, Tensor& buf, float wd, float momentum, float lr_scale, float step,
                       bool first, Tensor* nonfinite) override;
  void sgd_update(Tensor& p, const Tensor& g, Tensor& buf, float wd, float momentum, float lr, bool first,
                  Tensor* nonfinite) override;
  void lars_update(Tensor& p, const Tensor& g, Tensor& buf, const std::vector<Segment>& segments, double lr,
                   double eta, double wd, float momentum, Tensor* nonfinite) override;
};

}  // namespace m2t::cpu
