// The CPU op rooms' entry points (one .cc per room: ops/<op>/<op>_cpu.cc), assembled into the
// Backend by cpu_backend.cc. Contracts are documented on Backend (core/backend.h).
#pragma once
#include <dnnl.hpp>
#include <vector>

#include "core/backend.h"

namespace m2t::cpu {

dnnl::engine& engine();

std::unique_ptr<ConvKernel> make_conv(const ConvGeom& g);

void bn_stats(const Tensor& x, int64_t C, int G, float* mean, float* var);
void bn_apply(const Tensor& x, int64_t C, int G, const float* scale, const float* shift, bool relu, Tensor& y);
void bn_backward(const Tensor& x, const Tensor* y_relu, Tensor& dy, int64_t C, int G, const float* mean,
                 const float* invstd, const float* gamma, Tensor& dx, float* dgamma, float* dbeta);

void maxpool_forward(const Tensor& x, Tensor& y, std::vector<int32_t>& idx);
void maxpool_backward(const Tensor& dy, const std::vector<int32_t>& idx, const Shape& x_shape, Tensor& dx);
void avgpool_forward(const Tensor& x, Tensor& y);
void avgpool_backward(const Tensor& dy, const Shape& x_shape, Tensor& dx);

void add_relu(const Tensor& a, const Tensor& b, Tensor& y);
void relu_backward(const Tensor& y, Tensor& dy);
void add_inplace(Tensor& y, const Tensor& x);
void scale(Tensor& x, float s);

void linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y);
void linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw, Tensor& db);

void l2norm_forward(const Tensor& x, Tensor& y, std::vector<float>& norms);
void l2norm_backward(const Tensor& x, const Tensor& y, const std::vector<float>& norms, const Tensor& dy,
                     Tensor& dx);
float m2t_loss(const Tensor& q, const Tensor& k, Tensor& dq);
float cross_entropy(const Tensor& logits, const int32_t* labels, Tensor* dlogits);

void ema(Tensor& target, const Tensor& source, float tau);
double sum_squares(const Tensor& x);
void momentum_update(Tensor& p, const Tensor& g, Tensor& buf, float wd, float momentum, float lr_scale, float step,
                     bool first);

}  // namespace m2t::cpu
