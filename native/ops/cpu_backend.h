// The CPU backend: oneDNN (convolution, matmul) and own OpenMP loops. Its methods are defined in
// the op rooms (ops/<op>/<op>_cpu.cc); contracts are documented on Backend (core/backend.h).
#pragma once
#include <dnnl.hpp>
#include <vector>

#include "core/backend.h"

namespace m2t::cpu {

dnnl::engine& engine();

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
  void bn_apply(const Tensor& x, int64_t C, int G, const Tensor& scale, const Tensor& shift, bool relu,
                Tensor& y) override;
  void bn_backward(const Tensor& x, const Tensor* y_relu, Tensor& dy, int64_t C, int G, const Tensor& mean,
                   const Tensor& invstd, const Tensor& gamma, Tensor& dx, Tensor& dgamma, Tensor& dbeta) override;

  void maxpool_forward(const Tensor& x, Tensor& y, Tensor& idx) override;
  void maxpool_backward(const Tensor& dy, const Tensor& idx, const Shape& x_shape, Tensor& dx) override;
  void avgpool_forward(const Tensor& x, Tensor& y) override;
  void avgpool_backward(const Tensor& dy, const Shape& x_shape, Tensor& dx) override;

  void add_relu(const Tensor& a, const Tensor& b, Tensor& y) override;
  void relu_backward(const Tensor& y, Tensor& dy) override;
  void add_inplace(Tensor& y, const Tensor& x) override;
  void scale(Tensor& x, float s) override;
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
