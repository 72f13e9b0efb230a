#include "eval/logreg.h"

#include <dnnl.hpp>

#include <omp.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "core/rng.h"

namespace m2t::eval {
namespace {

void gemm(char ta, char tb, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
          float beta, float* C, int64_t ldc) {
  const dnnl_status_t st = dnnl_sgemm(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
  M2T_CHECK(st == dnnl_success, "logreg: sgemm failed with status ", static_cast<int>(st));
}

// Rows `rows` of x, standardised, into xb [rows.size(), d].
void gather(const LogregModel& m, const float* x, const int64_t* rows, int64_t count, float* xb) {
  const int64_t d = m.d;
  // Threads only pay off for large gathers (prediction blocks, wide features), not a 256 × 64 minibatch.
#pragma omp parallel for schedule(static) if (count * d >= (int64_t(1) << 18))
  for (int64_t r = 0; r < count; ++r) {
    const float* src = x + rows[r] * d;
    float* dst = xb + r * d;
    for (int64_t j = 0; j < d; ++j) dst[j] = (src[j] - m.mean[size_t(j)]) * m.inv_sd[size_t(j)];
  }
}

// z [count, classes] = xb · wᵀ + b.
void logits(const LogregModel& m, const float* xb, int64_t count, float* z) {
  const int64_t C = m.classes;
  for (int64_t r = 0; r < count; ++r) std::copy(m.b.begin(), m.b.end(), z + r * C);
  gemm('N', 'T', count, C, m.d, xb, m.d, m.w.data(), m.d, 1.0f, z, C);
}

// z ← softmax(z) − onehot(y) row by row (the gradient of cross-entropy w.r.t. z); returns the summed loss.
double softmax_minus_onehot(float* z, const int32_t* y, const int64_t* rows, int64_t count, int64_t C) {
  double loss = 0;
  for (int64_t r = 0; r < count; ++r) {
    float* zr = z + r * C;
    const float mx = *std::max_element(zr, zr + C);
    double sum = 0;
    for (int64_t c = 0; c < C; ++c) sum += std::exp(double(zr[c]) - mx);
    const int32_t t = y[rows[r]];
    loss += std::log(sum) - (double(zr[t]) - mx);
    for (int64_t c = 0; c < C; ++c) zr[c] = static_cast<float>(std::exp(double(zr[c]) - mx) / sum);
    zr[t] -= 1.0f;
  }
  return loss;
}

// Sets this thread's OpenMP team size for its scope. A minibatch step of a small probe (MNIST:
// 256 × 64 × 10) is microseconds of work; a team's barriers cost more than that, and far more when
// the cores are shared, so such steps run on one thread.
class TeamSize {
 public:
  explicit TeamSize(int n) : saved_(omp_get_max_threads()) { omp_set_num_threads(n); }
  ~TeamSize() { omp_set_num_threads(saved_); }
  TeamSize(const TeamSize&) = delete;
  TeamSize& operator=(const TeamSize&) = delete;

 private:
  int saved_;
};

}  // namespace

double logreg_loss(const LogregModel& m, const float* x, const int32_t* y, const std::vector<int64_t>& rows,
                   std::vector<float>* grad_w, std::vector<float>* grad_b) {
  const int64_t count = int64_t(rows.size()), C = m.classes, d = m.d;
  std::vector<float> xb(static_cast<size_t>(count * d)), z(size_t(count * C));
  gather(m, x, rows.data(), count, xb.data());
  logits(m, xb.data(), count, z.data());
  const double loss = softmax_minus_onehot(z.data(), y, rows.data(), count, C) / double(count);
  if (grad_w) {
    grad_w->assign(size_t(C * d), 0.0f);
    // ∂L/∂W = (P − Y)ᵀ · X̂ / count
    gemm('T', 'N', C, d, count, z.data(), C, xb.data(), d, 0.0f, grad_w->data(), d);
    for (float& g : *grad_w) g /= float(count);
  }
  if (grad_b) {
    grad_b->assign(size_t(C), 0.0f);
    for (int64_t r = 0; r < count; ++r)
      for (int64_t c = 0; c < C; ++c) (*grad_b)[size_t(c)] += z[size_t(r * C + c)] / float(count);
  }
  return loss;
}

LogregModel logreg_fit(const float* x, const int32_t* y, int64_t n, int64_t d, const LogregOptions& o) {
  if (n < 1) fail(ErrorKind::RangeError, "logisticRegression: no training features");
  if (d < 1) fail(ErrorKind::RangeError, "logisticRegression: feature dimension must be >= 1, got ", d);
  if (o.classes < 2) fail(ErrorKind::RangeError, "logisticRegression: classes must be >= 2, got ", o.classes);
  if (o.epochs < 1) fail(ErrorKind::RangeError, "logisticRegression: epochs must be >= 1, got ", o.epochs);
  if (o.batch < 1) fail(ErrorKind::RangeError, "logisticRegression: batchSize must be >= 1, got ", o.batch);
  for (int64_t i = 0; i < n; ++i)
    if (y[i] < 0 || y[i] >= o.classes)
      fail(ErrorKind::RangeError, "logisticRegression: label ", y[i], " at ", i, " is not in [0, ", o.classes, ")");

  LogregModel m;
  m.d = d;
  m.classes = o.classes;
  // Mean and variance per feature in double, two passes.
  std::vector<double> mu(size_t(d), 0.0), var(size_t(d), 0.0);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) mu[size_t(j)] += x[i * d + j];
  for (double& v : mu) v /= double(n);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < d; ++j) var[size_t(j)] += (x[i * d + j] - mu[size_t(j)]) * (x[i * d + j] - mu[size_t(j)]);
  m.mean.resize(size_t(d));
  m.inv_sd.resize(size_t(d));
  for (int64_t j = 0; j < d; ++j) {
    m.mean[size_t(j)] = float(mu[size_t(j)]);
    m.inv_sd[size_t(j)] = float(1.0 / std::sqrt(var[size_t(j)] / double(n) + 1e-8));
  }
  const int64_t C = o.classes, B = std::min(o.batch, n);
  m.w.assign(size_t(C * d), 0.0f);
  m.b.assign(size_t(C), 0.0f);
  std::vector<float> vw(m.w.size(), 0.0f), vb(m.b.size(), 0.0f), gw(m.w.size()), gb(m.b.size());
  std::vector<float> xb(static_cast<size_t>(B * d)), z(size_t(B * C));
  std::vector<int64_t> order(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) order[size_t(i)] = i;
  const int64_t per_epoch = (n + B - 1) / B, steps = o.epochs * per_epoch;
  const double step_flops = 4.0 * double(B) * double(C) * double(d);
  TeamSize team(step_flops < 3e7 ? 1 : omp_get_max_threads());
  int64_t step = 0;
  for (int64_t e = 0; e < o.epochs; ++e) {
    // Fisher–Yates with counter-based draws: the order is a function of (seed, epoch) only.
    const uint64_t key = rng::splitmix64(o.seed * 0x9E3779B97F4A7C15ULL + uint64_t(e) + 1);
    for (int64_t i = n - 1; i > 0; --i) {
      const int64_t j = int64_t(rng::uniform53(key, uint64_t(i)) * double(i + 1));
      std::swap(order[size_t(i)], order[size_t(std::min(j, i))]);
    }
    for (int64_t s = 0; s < n; s += B, ++step) {
      const int64_t count = std::min(B, n - s);
      const double lr = o.lr * 0.5 * (1.0 + std::cos(M_PI * double(step) / double(steps)));
      gather(m, x, order.data() + s, count, xb.data());
      logits(m, xb.data(), count, z.data());
      softmax_minus_onehot(z.data(), y, order.data() + s, count, C);
      gemm('T', 'N', C, d, count, z.data(), C, xb.data(), d, 0.0f, gw.data(), d);  // Σ (p − y) x̂ᵀ
      std::fill(gb.begin(), gb.end(), 0.0f);
      for (int64_t r = 0; r < count; ++r)
        for (int64_t c = 0; c < C; ++c) gb[size_t(c)] += z[size_t(r * C + c)];
      const float inv = 1.0f / float(count), mom = float(o.momentum), wd = float(o.weight_decay), lrf = float(lr);
      for (size_t k = 0; k < m.w.size(); ++k) {
        vw[k] = mom * vw[k] + gw[k] * inv + wd * m.w[k];
        m.w[k] -= lrf * vw[k];
      }
      for (size_t k = 0; k < m.b.size(); ++k) {
        vb[k] = mom * vb[k] + gb[k] * inv + wd * m.b[k];
        m.b[k] -= lrf * vb[k];
      }
    }
  }
  return m;
}

std::vector<int32_t> logreg_predict(const LogregModel& model, const float* x, int64_t m) {
  const int64_t C = model.classes, d = model.d, block = 4096;
  std::vector<int32_t> pred(static_cast<size_t>(m));
  std::vector<int64_t> rows(static_cast<size_t>(std::min(block, std::max<int64_t>(m, 1))));
  std::vector<float> xb(rows.size() * size_t(d)), z(rows.size() * size_t(C));
  for (int64_t s = 0; s < m; s += block) {
    const int64_t count = std::min(block, m - s);
    for (int64_t r = 0; r < count; ++r) rows[size_t(r)] = s + r;
    gather(model, x, rows.data(), count, xb.data());
    logits(model, xb.data(), count, z.data());
    for (int64_t r = 0; r < count; ++r)
      pred[size_t(s + r)] = int32_t(std::max_element(z.begin() + r * C, z.begin() + (r + 1) * C) - (z.begin() + r * C));
  }
  return pred;
}

}  // namespace m2t::eval
