// L2 normalisation, the M2T loss and cross-entropy against double references and finite differences.
#include <cmath>

#include "core/backend.h"
#include "tests/gradcheck.h"
#include "tests/testutil.h"

namespace m2t::test {
namespace {

class LossOp : public BackendTest {};

Vec l2_ref(const Vec& x, int64_t N, int64_t D) {
  Vec y(x.size());
  for (int64_t n = 0; n < N; ++n) {
    double s = 0;
    for (int64_t d = 0; d < D; ++d) s += x[n * D + d] * x[n * D + d];
    const double nrm = std::max(std::sqrt(s), 1e-12);
    for (int64_t d = 0; d < D; ++d) y[n * D + d] = x[n * D + d] / nrm;
  }
  return y;
}

TEST_P(LossOp, L2NormalizeForwardBackward) {
  const int64_t N = 4, D = 6;
  const Vec x = random_vec(N * D, 81);
  Backend& be = backend();
  Tensor xt = to_tensor(x, {N, D}), y, dx;
  Tensor norms;
  be.l2norm_forward(xt, y, norms);
  expect_close(y, l2_ref(x, N, D), 1e-6, "l2norm forward");
  const Vec w = random_vec(N * D, 82);
  be.l2norm_backward(xt, y, norms, to_tensor(w, {N, D}), dx);
  expect_gradient([&](const Vec& v) { return dot(w, l2_ref(v, N, D)); }, x, dx, 1e-5, "l2norm dx");
}

TEST_P(LossOp, M2TLossValueAndGradient) {
  const int64_t B = 3, D = 5;
  const Vec q = l2_ref(random_vec(2 * B * D, 91), 2 * B, D), k = l2_ref(random_vec(2 * B * D, 92), 2 * B, D);
  auto ref = [&](const Vec& qv) {
    double s = 0;
    for (int64_t b = 0; b < B; ++b) {
      double d1 = 0, d2 = 0;
      for (int64_t d = 0; d < D; ++d) {
        d1 += qv[b * D + d] * k[b * D + d];
        d2 += qv[(B + b) * D + d] * k[(B + b) * D + d];
      }
      s += 4 - 2 * (d1 + d2);
    }
    return s / B;
  };
  Tensor dq, loss;
  backend().m2t_loss(to_tensor(q, {2 * B, D}), to_tensor(k, {2 * B, D}), dq, loss);
  EXPECT_NEAR(host(loss)[0], ref(q), 1e-5);
  expect_gradient(ref, q, dq, 1e-5, "m2t loss dq");
}

TEST_P(LossOp, CrossEntropyValueAndGradient) {
  const int64_t N = 4, K = 5;
  const Vec z = random_vec(N * K, 101, -3, 3);
  const std::vector<int32_t> labels = {0, 4, 2, 2};
  auto ref = [&](const Vec& zv) {
    double s = 0;
    for (int64_t n = 0; n < N; ++n) {
      double lse = 0;
      for (int64_t j = 0; j < K; ++j) lse += std::exp(zv[n * K + j]);
      s += std::log(lse) - zv[n * K + labels[n]];
    }
    return s / N;
  };
  Tensor dz, loss;
  backend().cross_entropy(to_tensor(z, {N, K}), to_labels(labels, current_device()), &dz, loss);
  EXPECT_NEAR(to_vec(loss).at(0), ref(z), 1e-5);
  expect_gradient(ref, z, dz, 1e-5, "cross-entropy dz");
}

TEST_P(LossOp, CountCorrectRanksTheLabelWithTiesInItsFavour) {
  // 3 rows, 7 classes: label best (top1), label 5th (top5 only), label tied for first (top1).
  const Vec z = {0, 9, 1, 2, 3, 4, 5,   6, 5, 4, 3, 2, 1, 0,   1, 1, 0, 0, 0, 0, 0};
  Tensor counts;
  backend().count_correct(to_tensor(z, {3, 7}), to_labels({1, 3, 0}, current_device()), counts);
  ASSERT_EQ(counts.dtype(), DType::I32);
  int32_t c[2] = {-1, -1};
  counts.copy_to_host(c);
  EXPECT_EQ(c[0], 2);  // top1
  EXPECT_EQ(c[1], 3);  // top5
}

M2T_INSTANTIATE_BACKENDS(LossOp);

}  // namespace
}  // namespace m2t::test
