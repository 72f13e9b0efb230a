// The CPU Backend: forwards each op to its room's CPU implementation.
#include "ops/cpu_common.h"

namespace m2t {
namespace cpu {

dnnl::engine& engine() {
  static dnnl::engine eng(dnnl::engine::kind::cpu, 0);
  return eng;
}

namespace {
class CpuBackend final : public Backend {
 public:
  Device device() const override { return Device::CPU; }
  std::unique_ptr<ConvKernel> make_conv(const ConvGeom& g) override { return cpu::make_conv(g); }
  void bn_stats(const Tensor& x, int64_t C, int G, float* mean, float* var) override {
    cpu::bn_stats(x, C, G, mean, var);
  }
  void bn_apply(const Tensor& x, int64_t C, int G, const float* sc, const float* sh, bool relu, Tensor& y) override {
    cpu::bn_apply(x, C, G, sc, sh, relu, y);
  }
  void bn_backward(const Tensor& x, const Tensor* y_relu, Tensor& dy, int64_t C, int G, const float* mean,
                   const float* invstd, const float* gamma, Tensor& dx, float* dgamma, float* dbeta) override {
    cpu::bn_backward(x, y_relu, dy, C, G, mean, invstd, gamma, dx, dgamma, dbeta);
  }
  void maxpool_forward(const Tensor& x, Tensor& y, std::vector<int32_t>& idx) override {
    cpu::maxpool_forward(x, y, idx);
  }
  void maxpool_backward(const Tensor& dy, const std::vector<int32_t>& idx, const Shape& xs, Tensor& dx) override {
    cpu::maxpool_backward(dy, idx, xs, dx);
  }
  void avgpool_forward(const Tensor& x, Tensor& y) override { cpu::avgpool_forward(x, y); }
  void avgpool_backward(const Tensor& dy, const Shape& xs, Tensor& dx) override { cpu::avgpool_backward(dy, xs, dx); }
  void add_relu(const Tensor& a, const Tensor& b, Tensor& y) override { cpu::add_relu(a, b, y); }
  void relu_backward(const Tensor& y, Tensor& dy) override { cpu::relu_backward(y, dy); }
  void add_inplace(Tensor& y, const Tensor& x) override { cpu::add_inplace(y, x); }
  void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) override {
    cpu::linear_forward(x, w, b, y);
  }
  void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw,
                       Tensor& db) override {
    cpu::linear_backward(x, w, dy, dx, dw, db);
  }
  void l2norm_forward(const Tensor& x, Tensor& y, std::vector<float>& norms) override {
    cpu::l2norm_forward(x, y, norms);
  }
  void l2norm_backward(const Tensor& x, const Tensor& y, const std::vector<float>& norms, const Tensor& dy,
                       Tensor& dx) override {
    cpu::l2norm_backward(x, y, norms, dy, dx);
  }
  float m2t_loss(const Tensor& q, const Tensor& k, Tensor& dq) override { return cpu::m2t_loss(q, k, dq); }
  float cross_entropy(const Tensor& logits, const int32_t* labels, Tensor* d) override {
    return cpu::cross_entropy(logits, labels, d);
  }
  void ema(Tensor& t, const Tensor& s, float tau) override { cpu::ema(t, s, tau); }
  double sum_squares(const Tensor& x) override { return cpu::sum_squares(x); }
  void momentum_update(Tensor& p, const Tensor& g, Tensor& buf, float wd, float mom, float lr_scale, float step,
                       bool first) override {
    cpu::momentum_update(p, g, buf, wd, mom, lr_scale, step, first);
  }
  void scale(Tensor& x, float s) override { cpu::scale(x, s); }
};
}  // namespace
}  // namespace cpu

Backend& cpu_backend() {
  static cpu::CpuBackend be;
  return be;
}

}  // namespace m2t
