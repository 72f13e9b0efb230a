// CUDA parameter updates against plain host loops of the same math (update_cpu.cc, optimizer.cc, spec §3–4).
// Every output buffer is NaN-poisoned before a call whose output it is not also an input of; in-place
// arenas start from known values, so an element the kernel skips keeps a value the reference changed.
#include <cmath>

#include "cuda/testing.h"
#include "ops/update/update_cuda.h"

using namespace m2t::cuda;
using m2t::cuda::testing::all_close;
using m2t::cuda::testing::DeviceBuffer;
using m2t::cuda::testing::randn;

namespace {
// An arena size that is not a multiple of the block or the LARS chunk, spanning several grid strides.
constexpr int64_t kN = 3 * 4096 * 256 + 1234;
}  // namespace

// Tolerance: one float rounding of each side (the host may or may not contract to FMA): rtol 1e-6, atol 1e-7.
TEST(CudaUpdate, EmaMatchesHostLoop) {
  M2T_REQUIRE_CUDA_DEVICE();
  auto t = randn(kN, 1), s = randn(kN, 2);
  DeviceBuffer<float> dt(t), ds(s);
  const float tau = 0.9937f;
  ema(dt.get(), ds.get(), kN, tau, nullptr);
  for (int64_t i = 0; i < kN; ++i) t[i] = tau * t[i] + (1.0f - tau) * s[i];
  EXPECT_TRUE(all_close(dt.download(), t, 1e-6f, 1e-7f));
  EXPECT_TRUE(all_close(ds.download(), s, 0, 0)) << "student must be unchanged";
}

// Three steps (first, then two with momentum): p, buf against the PyTorch-semantics loop. rtol 1e-5 over the
// steps' roundings.
TEST(CudaUpdate, SgdMatchesHostLoop) {
  M2T_REQUIRE_CUDA_DEVICE();
  auto p = randn(kN, 3), buf = std::vector<float>(kN);
  DeviceBuffer<float> dp(p), db(kN);
  db.poison();  // first step must write buf without reading it
  const float mu = 0.9f, wd = 1e-4f;
  for (int step = 0; step < 3; ++step) {
    const auto g = randn(kN, 10 + step);
    DeviceBuffer<float> dg(g);
    const float lr = 0.05f * (step + 1);
    sgd(dp.get(), dg.get(), db.get(), kN, lr, mu, wd, step == 0, nullptr);
    for (int64_t i = 0; i < kN; ++i) {
      const float d = g[i] + wd * p[i];
      buf[i] = step == 0 ? d : mu * buf[i] + d;
      p[i] -= lr * buf[i];
    }
    EXPECT_TRUE(all_close(db.download(), buf, 1e-5f, 1e-6f)) << "buf, step " << step;
    EXPECT_TRUE(all_close(dp.download(), p, 1e-5f, 1e-6f)) << "p, step " << step;
  }
}

// LARS over tensors of varied sizes (several chunks, one chunk, tiny, empty, a zero-gradient weight that must
// fall back to actual_lr = lr), against optimizer.cc's rule with double norms. Norms: rtol 1e-12 vs a double
// host sum (both sum in double, in different orders). buf, p: rtol 1e-5 (atol 1e-8, 1e-7). Two runs are
// bit-identical.
TEST(CudaUpdate, LarsMatchesHostLoopAndIsDeterministic) {
  M2T_REQUIRE_CUDA_DEVICE();
  const std::vector<int64_t> sizes = {3 * kLarsChunk + 77, kLarsChunk, 64, 0, 1000, 5000};
  const std::vector<bool> adapt = {true, true, false, true, true, false};
  std::vector<LarsTensor> ts;
  int64_t n = 0;
  for (size_t t = 0; t < sizes.size(); ++t) {
    ts.push_back({n, sizes[t], adapt[t]});
    n += sizes[t];
  }
  const LarsPlan plan = lars_plan(ts);
  auto p = randn(n, 5, 0.0f, 0.05f), g = randn(n, 6, 0.0f, 0.01f);
  for (int64_t i = ts[4].offset; i < ts[4].offset + ts[4].size; ++i) g[i] = 0.0f;  // ‖g‖ = 0: no trust ratio
  std::vector<float> buf(n, 0.0f);
  const double lr = 0.8, eta = 1e-3;
  const float mu = 0.9f, wd = 1e-6f;

  DeviceBuffer<LarsChunk> dchunks(plan.chunks);
  DeviceBuffer<int32_t> dfirst(plan.first_chunk);
  DeviceBuffer<uint8_t> dadapt(plan.adapt);
  DeviceBuffer<double> partial(2 * plan.chunks.size()), norms(2 * ts.size());
  DeviceBuffer<float> dp(p), dg(g), db(buf);
  std::vector<float> p_first;
  for (int step = 0; step < 2; ++step) {
    partial.poison();
    norms.poison();
    lars(dp.get(), dg.get(), db.get(), dchunks.get(), static_cast<int32_t>(plan.chunks.size()), dfirst.get(),
         dadapt.get(), static_cast<int32_t>(ts.size()), partial.get(), norms.get(), lr, mu, wd, eta, nullptr);
    const auto got_norms = norms.download();
    for (size_t t = 0; t < ts.size(); ++t) {
      double sp = 0, sg = 0;
      for (int64_t i = ts[t].offset; i < ts[t].offset + ts[t].size; ++i) {
        sp += double(p[i]) * p[i];
        sg += double(g[i]) * g[i];
      }
      const double pn = std::sqrt(sp), gn = std::sqrt(sg);
      EXPECT_NEAR(got_norms[2 * t], pn, 1e-12 * pn + 1e-300) << "‖p‖ of tensor " << t;
      EXPECT_NEAR(got_norms[2 * t + 1], gn, 1e-12 * gn + 1e-300) << "‖g‖ of tensor " << t;
      double actual = lr;
      if (adapt[t] && pn * gn > 1e-8) actual = lr * eta * pn / (gn + wd * pn);
      const float r = static_cast<float>(actual);
      for (int64_t i = ts[t].offset; i < ts[t].offset + ts[t].size; ++i) {
        buf[i] = mu * buf[i] + r * (g[i] + wd * p[i]);
        p[i] -= buf[i];
      }
    }
    EXPECT_TRUE(all_close(db.download(), buf, 1e-5f, 1e-8f)) << "buf, step " << step;
    EXPECT_TRUE(all_close(dp.download(), p, 1e-5f, 1e-7f)) << "p, step " << step;
    if (step == 0) p_first = dp.download();
  }
  // Determinism: the same first step again from the same start gives the same bits.
  auto p0 = randn(n, 5, 0.0f, 0.05f);
  DeviceBuffer<float> dp2(p0), db2(std::vector<float>(n, 0.0f));
  lars(dp2.get(), dg.get(), db2.get(), dchunks.get(), static_cast<int32_t>(plan.chunks.size()), dfirst.get(),
       dadapt.get(), static_cast<int32_t>(ts.size()), partial.get(), norms.get(), lr, mu, wd, eta, nullptr);
  EXPECT_TRUE(all_close(dp2.download(), p_first, 0, 0)) << "LARS is not bit-reproducible";
}

// Host-side plan: chunks cover every tensor exactly once, in order (runs without a device).
TEST(CudaUpdate, LarsPlanCoversTensors) {
  const LarsPlan plan = lars_plan({{0, 2 * kLarsChunk + 1, true}, {2 * kLarsChunk + 1, 0, false}, {2 * kLarsChunk + 1, 5, true}});
  ASSERT_EQ(plan.first_chunk, (std::vector<int32_t>{0, 3, 3, 4}));
  ASSERT_EQ(plan.chunks.size(), 4u);
  EXPECT_EQ(plan.chunks[2].begin, 2 * kLarsChunk);
  EXPECT_EQ(plan.chunks[2].length, 1);
  EXPECT_EQ(plan.chunks[3].tensor, 2);
  EXPECT_EQ(plan.adapt, (std::vector<uint8_t>{1, 0, 1}));
  EXPECT_THROW(lars_plan({{0, -1, true}}), m2t::Error);
}
