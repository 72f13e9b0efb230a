// L2 normalisation, the Momentum² Teacher loss and cross-entropy.
#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "ops/cpu_backend.h"

namespace m2t::cpu {

// y = x / max(‖x‖, ε), ε = 1e-12.
void CpuBackend::l2norm_forward(const Tensor& x, Tensor& y, Tensor& norms) {
  const int64_t N = x.dim(0), D = x.dim(1);
  y.resize(x.shape());
  norms.resize({N});
  for (int64_t n = 0; n < N; ++n) {
    const float* r = x.data() + n * D;
    double s = 0;
    for (int64_t d = 0; d < D; ++d) s += static_cast<double>(r[d]) * r[d];
    const float nrm = static_cast<float>(std::sqrt(s));
    norms.data()[n] = nrm;
    const float inv = 1.0f / std::max(nrm, 1e-12f);
    for (int64_t d = 0; d < D; ++d) y.data()[n * D + d] = r[d] * inv;
  }
}

// For ‖x‖ > ε: dx = (dy − y·⟨dy, y⟩) / ‖x‖; below ε the denominator is the constant ε: dx = dy / ε.
void CpuBackend::l2norm_backward(const Tensor& x, const Tensor& y, const Tensor& norms_t, const Tensor& dy,
                                 Tensor& dx) {
  const float* norms = norms_t.data();
  const int64_t N = x.dim(0), D = x.dim(1);
  dx.resize(x.shape());
  for (int64_t n = 0; n < N; ++n) {
    const float* yr = y.data() + n * D;
    const float* g = dy.data() + n * D;
    float* o = dx.data() + n * D;
    if (norms[n] > 1e-12f) {
      double dot = 0;
      for (int64_t d = 0; d < D; ++d) dot += static_cast<double>(g[d]) * yr[d];
      const float inv = 1.0f / norms[n];
      for (int64_t d = 0; d < D; ++d) o[d] = (g[d] - yr[d] * static_cast<float>(dot)) * inv;
    } else {
      for (int64_t d = 0; d < D; ++d) o[d] = g[d] / 1e-12f;
    }
  }
}

// L = (1/B) Σ_b [4 − 2(⟨q1_b, k1_b⟩ + ⟨q2_b, k2_b⟩)] with rows b of q = [q1; q2] paired with
// rows b of k = [k1; k2]; ∂L/∂q_row = −2·k_row / B.
void CpuBackend::m2t_loss(const Tensor& q, const Tensor& k, Tensor& dq, Tensor& loss) {
  const int64_t N = q.dim(0), D = q.dim(1), B = N / 2;
  M2T_CHECK(k.dim(0) == N && k.dim(1) == D && N % 2 == 0, "m2t_loss: shapes ", shape_str(q.shape()), " and ",
            shape_str(k.shape()));
  dq.resize(q.shape());
  double dots = 0;
  for (int64_t i = 0; i < N * D; ++i) {
    dots += static_cast<double>(q.data()[i]) * k.data()[i];
    dq.data()[i] = -2.0f * k.data()[i] / static_cast<float>(B);
  }
  loss.resize({1});
  loss.data()[0] = static_cast<float>(4.0 - 2.0 * dots / B);
}

namespace {
const int32_t* label_data(const Tensor& labels, int64_t N) {
  M2T_CHECK(labels.dtype() == DType::I32 && labels.numel() == N, "labels: ", dtype_name(labels.dtype()), " ",
            shape_str(labels.shape()), ", expected i32 [", N, "]");
  return static_cast<const int32_t*>(labels.raw());
}
}  // namespace

void CpuBackend::cross_entropy(const Tensor& logits, const Tensor& label_t, Tensor* dlogits, Tensor& loss) {
  const int64_t N = logits.dim(0), K = logits.dim(1);
  const int32_t* labels = label_data(label_t, N);
  if (dlogits) dlogits->resize(logits.shape());
  double total = 0;
  for (int64_t n = 0; n < N; ++n) {
    const float* r = logits.data() + n * K;
    const int32_t y = labels[n];
    M2T_CHECK(y >= 0 && y < K, "label ", y, " of sample ", n, " is outside [0, ", K, ")");
    const float mx = *std::max_element(r, r + K);
    double z = 0;
    for (int64_t j = 0; j < K; ++j) z += std::exp(static_cast<double>(r[j] - mx));
    total += std::log(z) + mx - r[y];
    if (dlogits) {
      float* g = dlogits->data() + n * K;
      for (int64_t j = 0; j < K; ++j)
        g[j] = static_cast<float>((std::exp(static_cast<double>(r[j] - mx)) / z - (j == y ? 1.0 : 0.0)) / N);
    }
  }
  loss.resize({1});
  loss.data()[0] = static_cast<float>(total / N);
}

void CpuBackend::count_correct(const Tensor& logits, const Tensor& label_t, Tensor& counts) {
  const int64_t N = logits.dim(0), K = logits.dim(1);
  const int32_t* labels = label_data(label_t, N);
  if (counts.dtype() != DType::I32 || counts.numel() != 2) counts = Tensor({2}, logits.device(), DType::I32);
  int32_t top1 = 0, top5 = 0;
  for (int64_t n = 0; n < N; ++n) {
    const float* row = logits.data() + n * K;
    const float target = row[labels[n]];
    // Rank of the true class: classes scoring strictly higher (ties count in its favour).
    int64_t above = 0;
    for (int64_t k = 0; k < K; ++k) above += row[k] > target;
    top1 += above < 1;
    top5 += above < 5;
  }
  static_cast<int32_t*>(counts.raw())[0] = top1;
  static_cast<int32_t*>(counts.raw())[1] = top5;
}

}  // namespace m2t::cpu
