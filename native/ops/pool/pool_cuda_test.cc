// CUDA pooling against host loops of pool_cpu.cc. Outputs NaN-poisoned before every call. Odd and even sides
// (every border case of the 3×3/2/1 window), C = 37, ties included (values rounded to a coarse grid) so the
// "first maximum wins" rule is exercised.
#include <cuda_bf16.h>

#include <cfloat>
#include <cmath>

#include "cuda/testing.h"
#include "ops/pool/pool_cuda.h"

using namespace m2t::cuda;
using m2t::cuda::testing::all_close;
using m2t::cuda::testing::DeviceBuffer;
using m2t::cuda::testing::randn;

namespace {
constexpr int64_t kN = 3, kC = 37;

struct MaxRef {
  std::vector<float> y;
  std::vector<int32_t> idx;
  std::vector<float> dx;
};
MaxRef host_maxpool(const std::vector<float>& x, const std::vector<float>& dy, int64_t H, int64_t W) {
  const int64_t Ho = maxpool_out(H), Wo = maxpool_out(W);
  MaxRef r{std::vector<float>(kN * Ho * Wo * kC, -FLT_MAX), std::vector<int32_t>(kN * Ho * Wo * kC, -1),
           std::vector<float>(x.size(), 0.0f)};
  for (int64_t n = 0; n < kN; ++n)
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow)
        for (int64_t kh = 0; kh < 3; ++kh)
          for (int64_t kw = 0; kw < 3; ++kw) {
            const int64_t ih = oh * 2 - 1 + kh, iw = ow * 2 - 1 + kw;
            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
            for (int64_t c = 0; c < kC; ++c) {
              const int64_t o = ((n * Ho + oh) * Wo + ow) * kC + c, i = ((n * H + ih) * W + iw) * kC + c;
              if (x[i] > r.y[o]) {
                r.y[o] = x[i];
                r.idx[o] = int32_t(i);
              }
            }
          }
  for (size_t o = 0; o < r.idx.size(); ++o) r.dx[r.idx[o]] += dy[o];
  return r;
}

std::vector<float> coarse(std::vector<float> v) {  // many exact ties
  for (auto& x : v) x = std::round(x * 2.0f) / 2.0f;
  return v;
}
}  // namespace

// fp32: y, idx and dx exactly equal to the host (same comparisons, same summation order).
TEST(CudaPool, MaxPoolMatchesHostExactly) {
  M2T_REQUIRE_CUDA_DEVICE();
  for (auto [H, W] : {std::pair<int64_t, int64_t>{9, 9}, {8, 11}}) {
    const int64_t Ho = maxpool_out(H), Wo = maxpool_out(W);
    const auto x = coarse(randn(kN * H * W * kC, 91 + H)), dy = randn(kN * Ho * Wo * kC, 92 + H);
    DeviceBuffer<float> dxin(x), dyo(kN * Ho * Wo * kC), dgrad(dy), ddx(x.size());
    DeviceBuffer<int32_t> didx(kN * Ho * Wo * kC);
    dyo.poison();
    didx.poison();
    ddx.poison();
    maxpool_forward<float>(dxin.get(), dyo.get(), didx.get(), kN, H, W, kC, nullptr);
    maxpool_backward<float>(dgrad.get(), didx.get(), ddx.get(), kN, H, W, kC, nullptr);
    const MaxRef r = host_maxpool(x, dy, H, W);
    EXPECT_TRUE(all_close(dyo.download(), r.y, 0, 0)) << "y " << H << "x" << W;
    EXPECT_EQ(didx.download(), r.idx) << "idx " << H << "x" << W;
    EXPECT_TRUE(all_close(ddx.download(), r.dx, 0, 0)) << "dx " << H << "x" << W;
  }
}

// bf16: max pooling only selects, so y equals the bf16 input exactly; indices as in fp32.
TEST(CudaPool, MaxPoolBf16SelectsExactly) {
  M2T_REQUIRE_CUDA_DEVICE();
  const int64_t H = 7, W = 10, Ho = maxpool_out(H), Wo = maxpool_out(W);
  const auto x = coarse(randn(kN * H * W * kC, 95));  // halves: exact in bf16
  std::vector<__nv_bfloat16> xb(x.size());
  for (size_t i = 0; i < x.size(); ++i) xb[i] = __float2bfloat16_rn(x[i]);
  DeviceBuffer<__nv_bfloat16> dx(xb), dy(kN * Ho * Wo * kC);
  DeviceBuffer<int32_t> didx(kN * Ho * Wo * kC);
  dy.poison();
  didx.poison();
  maxpool_forward<__nv_bfloat16>(dx.get(), dy.get(), didx.get(), kN, H, W, kC, nullptr);
  const MaxRef r = host_maxpool(x, std::vector<float>(kN * Ho * Wo * kC, 0.0f), H, W);
  const auto got = dy.download();
  std::vector<float> gotf(got.size());
  for (size_t i = 0; i < got.size(); ++i) gotf[i] = __bfloat162float(got[i]);
  EXPECT_TRUE(all_close(gotf, r.y, 0, 0));
  EXPECT_EQ(didx.download(), r.idx);
}

// Global average pool: forward sums in float in pixel order as the CPU does (exact); backward exact.
TEST(CudaPool, AvgPoolMatchesHostExactly) {
  M2T_REQUIRE_CUDA_DEVICE();
  const int64_t HW = 7 * 7;
  const auto x = randn(kN * HW * kC, 97), dy = randn(kN * kC, 98);
  DeviceBuffer<float> dxin(x), dyo(kN * kC), dgrad(dy), ddx(x.size());
  dyo.poison();
  ddx.poison();
  avgpool_forward<float>(dxin.get(), dyo.get(), kN, HW, kC, nullptr);
  avgpool_backward<float>(dgrad.get(), ddx.get(), kN, HW, kC, nullptr);
  std::vector<float> y(kN * kC, 0.0f), dx(x.size());
  const float inv = 1.0f / float(HW);
  for (int64_t n = 0; n < kN; ++n)
    for (int64_t c = 0; c < kC; ++c) {
      for (int64_t p = 0; p < HW; ++p) y[n * kC + c] += x[(n * HW + p) * kC + c];
      y[n * kC + c] *= inv;
      for (int64_t p = 0; p < HW; ++p) dx[(n * HW + p) * kC + c] = dy[n * kC + c] * inv;
    }
  EXPECT_TRUE(all_close(dyo.download(), y, 0, 0)) << "y";
  EXPECT_TRUE(all_close(ddx.download(), dx, 0, 0)) << "dx";
}

TEST(CudaPool, RejectsBadShapes) {  // runs without a device: the check precedes any launch
  EXPECT_THROW(maxpool_forward<float>(nullptr, nullptr, nullptr, 1, 0, 4, 4, nullptr), m2t::Error);
  EXPECT_THROW(avgpool_forward<float>(nullptr, nullptr, 1 << 20, 1 << 10, 1 << 10, nullptr), m2t::Error);
}
