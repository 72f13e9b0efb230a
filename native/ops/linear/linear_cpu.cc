// Fully connected layer y = x·Wᵀ + b through oneDNN's sgemm (row-major).
#include <dnnl.hpp>

#include "core/error.h"
#include "ops/cpu_backend.h"

namespace m2t::cpu {

static void gemm(char ta, char tb, int64_t M, int64_t N, int64_t K, float alpha, const float* A, int64_t lda,
                 const float* B, int64_t ldb, float beta, float* C, int64_t ldc) {
  dnnl_status_t st = dnnl_sgemm(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  M2T_CHECK(st == dnnl_success, "sgemm failed with status ", static_cast<int>(st));
}

void CpuBackend::linear_forward(const Tensor& x, const Tensor& w, const Tensor& b, Tensor& y) {
  const int64_t N = x.dim(0), in = x.dim(1), out = w.dim(0);
  M2T_CHECK(w.dim(1) == in, "linear: input has ", in, " features, weight expects ", w.dim(1));
  y.resize({N, out});
  float* py = y.data();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t o = 0; o < out; ++o) py[n * out + o] = b.data()[o];
  gemm('N', 'T', N, out, in, 1.0f, x.data(), in, w.data(), in, 1.0f, py, out);
}

void CpuBackend::linear_backward(const Tensor& x, const Tensor& w, const Tensor& dy, Tensor* dx, Tensor& dw, Tensor& db) {
  const int64_t N = x.dim(0), in = x.dim(1), out = w.dim(0);
  if (dx) {
    dx->resize({N, in});
    gemm('N', 'N', N, in, out, 1.0f, dy.data(), out, w.data(), in, 0.0f, dx->data(), in);  // dx = dy·W
  }
  gemm('T', 'N', out, in, N, 1.0f, dy.data(), out, x.data(), in, 0.0f, dw.data(), in);  // dW = dyᵀ·x
  float* pdb = db.data();
  const float* pdy = dy.data();
  for (int64_t o = 0; o < out; ++o) {
    double s = 0;
    for (int64_t n = 0; n < N; ++n) s += pdy[n * out + o];
    pdb[o] = static_cast<float>(s);
  }
}

}  // namespace m2t::cpu
