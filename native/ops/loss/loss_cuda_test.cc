// CUDA L2 normalisation and the M2T loss against host loops of loss_cpu.cc (l2norm_forward, m2t_loss,
// l2norm_backward). Outputs NaN-poisoned before every call. N = 2·B rows (two views), D = 300 (not a multiple
// of the block), one all-zero row to take the ε branch.
#include <cmath>

#include "cuda/testing.h"
#include "ops/loss/loss_cuda.h"

using namespace m2t::cuda;
using m2t::cuda::testing::all_close;
using m2t::cuda::testing::DeviceBuffer;
using m2t::cuda::testing::randn;

namespace {
constexpr int64_t kN = 2 * 13, kD = 300;

struct Host {
  std::vector<float> y, norms;
};
Host host_l2(const std::vector<float>& x, int64_t N, int64_t D) {
  Host h{std::vector<float>(x.size()), std::vector<float>(N)};
  for (int64_t n = 0; n < N; ++n) {
    double s = 0;
    for (int64_t d = 0; d < D; ++d) s += double(x[n * D + d]) * x[n * D + d];
    h.norms[n] = float(std::sqrt(s));
    const float inv = 1.0f / std::max(h.norms[n], 1e-12f);
    for (int64_t d = 0; d < D; ++d) h.y[n * D + d] = x[n * D + d] * inv;
  }
  return h;
}
std::vector<float> host_l2_backward(const Host& h, const std::vector<float>& dy, int64_t N, int64_t D) {
  std::vector<float> dx(dy.size());
  for (int64_t n = 0; n < N; ++n) {
    if (h.norms[n] > 1e-12f) {
      double dot = 0;
      for (int64_t d = 0; d < D; ++d) dot += double(dy[n * D + d]) * h.y[n * D + d];
      const float inv = 1.0f / h.norms[n];
      for (int64_t d = 0; d < D; ++d) dx[n * D + d] = (dy[n * D + d] - h.y[n * D + d] * float(dot)) * inv;
    } else {
      for (int64_t d = 0; d < D; ++d) dx[n * D + d] = dy[n * D + d] / 1e-12f;
    }
  }
  return dx;
}
}  // namespace

// Forward and backward of the normalisation. Tolerances: y, norms rtol 1e-6 atol 1e-7; dx rtol 1e-5 atol 1e-7
// (and exact dy/ε on the zero row up to rtol 1e-6).
TEST(CudaLoss, L2NormalizeForwardBackward) {
  M2T_REQUIRE_CUDA_DEVICE();
  auto x = randn(kN * kD, 71, 0.2f, 3.0f);
  for (int64_t d = 0; d < kD; ++d) x[5 * kD + d] = 0.0f;
  const auto dy = randn(kN * kD, 72);
  DeviceBuffer<float> dx_in(x), dy_out(kN * kD), dnorms(kN), dgrad(dy), ddx(kN * kD);
  dy_out.poison();
  dnorms.poison();
  ddx.poison();
  l2_normalize(dx_in.get(), dy_out.get(), dnorms.get(), kN, kD, nullptr);
  l2_normalize_backward(dy_out.get(), dnorms.get(), dgrad.get(), ddx.get(), kN, kD, nullptr);
  const Host h = host_l2(x, kN, kD);
  EXPECT_TRUE(all_close(dy_out.download(), h.y, 1e-6f, 1e-7f)) << "y";
  EXPECT_TRUE(all_close(dnorms.download(), h.norms, 1e-6f, 0)) << "norms";
  EXPECT_TRUE(all_close(ddx.download(), host_l2_backward(h, dy, kN, kD), 1e-5f, 1e-7f)) << "dx";
}

// Fused loss against l2norm_forward → m2t_loss → l2norm_backward on the host. Tolerances: loss atol 1e-5
// (4 − 2·Σ of 26 dots of unit vectors); q rtol 1e-6; dp rtol 1e-5 atol 1e-8. Bit-identical on a second call.
TEST(CudaLoss, M2tLossFusedMatchesHostComposition) {
  M2T_REQUIRE_CUDA_DEVICE();
  const auto p = randn(kN * kD, 81, 0.1f, 2.0f);
  const Host kh = host_l2(randn(kN * kD, 82, 0.1f, 1.0f), kN, kD);
  DeviceBuffer<float> dp_in(p), dk(kh.y), dq(kN * kD), ddp(kN * kD), dloss(1);
  DeviceBuffer<double> rows(kN);
  dq.poison();
  ddp.poison();
  dloss.poison();
  rows.poison();
  m2t_loss_fused(dp_in.get(), dk.get(), dq.get(), ddp.get(), dloss.get(), rows.get(), kN, kD, nullptr);

  const Host qh = host_l2(p, kN, kD);
  const int64_t B = kN / 2;
  double dots = 0;
  std::vector<float> dqv(kN * kD);
  for (int64_t i = 0; i < kN * kD; ++i) {
    dots += double(qh.y[i]) * kh.y[i];
    dqv[i] = -2.0f * kh.y[i] / float(B);
  }
  const float want_loss = float(4.0 - 2.0 * dots / B);
  EXPECT_NEAR(dloss.download()[0], want_loss, 1e-5f);
  EXPECT_TRUE(all_close(dq.download(), qh.y, 1e-6f, 1e-7f)) << "q";
  const auto got_dp = ddp.download();
  EXPECT_TRUE(all_close(got_dp, host_l2_backward(qh, dqv, kN, kD), 1e-5f, 1e-8f)) << "dp";
  ddp.poison();
  m2t_loss_fused(dp_in.get(), dk.get(), dq.get(), ddp.get(), dloss.get(), rows.get(), kN, kD, nullptr);
  EXPECT_TRUE(all_close(ddp.download(), got_dp, 0, 0)) << "not bit-reproducible";
}

TEST(CudaLoss, RejectsOddRows) {  // runs without a device: the check precedes any launch
  EXPECT_THROW(m2t_loss_fused(nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, 3, 4, nullptr), m2t::Error);
  EXPECT_THROW(l2_normalize(nullptr, nullptr, nullptr, 0, 4, nullptr), m2t::Error);
}
