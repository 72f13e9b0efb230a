// CUDA batch norm against host loops that follow batchnorm_cpu.cc and models/layers.cc step by step (double
// sums, then the same float roundings). Outputs are NaN-poisoned before every call. Shapes: G = 2 views of
// 4×11×11 rows (several row chunks per group), C = 40 (a partial 32-channel tile), inputs with a mean offset.
#include <cuda_bf16.h>

#include <cmath>

#include "cuda/testing.h"
#include "ops/batchnorm/batchnorm_cuda.h"

using namespace m2t::cuda;
using m2t::cuda::testing::all_close;
using m2t::cuda::testing::DeviceBuffer;
using m2t::cuda::testing::randn;

namespace {

constexpr int64_t kC = 40;
constexpr int kG = 2;
constexpr int64_t kM = kG * 4 * 11 * 11;
constexpr int64_t kMg = kM / kG;

struct Stats {
  std::vector<float> mean, var;  // [G·C], biased, as bn_stats rounds them
};
Stats host_stats(const std::vector<float>& x, int64_t M, int64_t C, int G) {
  const int64_t Mg = M / G;
  Stats s{std::vector<float>(G * C), std::vector<float>(G * C)};
  for (int g = 0; g < G; ++g)
    for (int64_t c = 0; c < C; ++c) {
      double s1 = 0, s2 = 0;
      for (int64_t r = g * Mg; r < (g + 1) * Mg; ++r) {
        s1 += x[r * C + c];
        s2 += double(x[r * C + c]) * x[r * C + c];
      }
      const double m = s1 / Mg;
      s.mean[g * C + c] = float(m);
      s.var[g * C + c] = float(std::max(s2 / Mg - m * m, 0.0));
    }
  return s;
}

std::vector<float> host_apply(const std::vector<float>& x, int64_t C, int64_t Mg, const std::vector<float>& scale,
                              const std::vector<float>& shift, bool relu) {
  std::vector<float> y(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const int64_t r = i / C, c = i % C, k = (r / Mg) * C + c;
    const float v = x[i] * scale[k] + shift[k];
    y[i] = relu ? std::max(v, 0.0f) : v;
  }
  return y;
}

template <typename T>
std::vector<T> to(const std::vector<float>& v);
template <>
std::vector<float> to(const std::vector<float>& v) { return v; }
template <>
std::vector<__nv_bfloat16> to(const std::vector<float>& v) {
  std::vector<__nv_bfloat16> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = __float2bfloat16_rn(v[i]);
  return o;
}
std::vector<float> from(const std::vector<float>& v) { return v; }
std::vector<float> from(const std::vector<__nv_bfloat16>& v) {
  std::vector<float> o(v.size());
  for (size_t i = 0; i < v.size(); ++i) o[i] = __bfloat162float(v[i]);
  return o;
}

// Student BN forward: statistics, running stats, y; fp32 with and without ReLU, bf16 activations.
// Tolerances: statistics rtol 1e-6 (double sums in another order, one float rounding); y in fp32 rtol/atol 1e-5
// (FMA vs separate multiply-add); y in bf16: one bf16 rounding of the output, rtol 8e-3 atol 1e-2.
template <typename T>
void check_train_forward(bool relu, float y_rtol, float y_atol) {
  auto x = randn(kM * kC, 21, 3.0f, 2.0f);
  x = from(to<T>(x));  // the values the device sees
  const auto gamma = randn(kC, 22, 1.0f, 0.2f), beta = randn(kC, 23, 0.0f, 0.3f);
  std::vector<float> rm = randn(kC, 24), rv(kC, 1.0f);
  DeviceBuffer<T> dx(to<T>(x)), dy(kM * kC);
  DeviceBuffer<float> dgamma(gamma), dbeta(beta), mean(kG * kC), var(kG * kC), invstd(kG * kC), scale(kG * kC),
      shift(kG * kC), drm(rm), drv(rv);
  DeviceBuffer<double> ws(bn_workspace_doubles(kM, kC, kG));
  for (auto* b : {&mean, &var, &invstd, &scale, &shift}) b->poison();
  dy.poison();
  ws.poison();
  bn_train_forward<T>(dx.get(), dy.get(), kM, kC, kG, dgamma.get(), dbeta.get(), mean.get(), var.get(), invstd.get(),
                      scale.get(), shift.get(), drm.get(), drv.get(), relu, ws.get(), nullptr);

  const Stats s = host_stats(x, kM, kC, kG);
  std::vector<float> is(kG * kC), sc(kG * kC), sh(kG * kC);
  const double unbias = double(kMg) / (kMg - 1);
  for (int g = 0; g < kG; ++g)
    for (int64_t c = 0; c < kC; ++c) {
      const int64_t k = g * kC + c;
      is[k] = 1.0f / std::sqrt(s.var[k] + kBnEps);
      sc[k] = gamma[c] * is[k];
      sh[k] = beta[c] - s.mean[k] * sc[k];
      rm[c] = 0.9f * rm[c] + 0.1f * s.mean[k];
      rv[c] = 0.9f * rv[c] + 0.1f * float(s.var[k] * unbias);
    }
  EXPECT_TRUE(all_close(mean.download(), s.mean, 1e-6f, 1e-6f)) << "mean";
  EXPECT_TRUE(all_close(var.download(), s.var, 1e-6f, 1e-6f)) << "var";
  EXPECT_TRUE(all_close(invstd.download(), is, 1e-6f, 0)) << "invstd";
  EXPECT_TRUE(all_close(drm.download(), rm, 1e-6f, 1e-6f)) << "running_mean";
  EXPECT_TRUE(all_close(drv.download(), rv, 1e-6f, 1e-6f)) << "running_var";
  EXPECT_TRUE(all_close(from(dy.download()), host_apply(x, kC, kMg, sc, sh, relu), y_rtol, y_atol)) << "y";
}

}  // namespace

TEST(CudaBatchNorm, TrainForwardFp32) {
  M2T_REQUIRE_CUDA_DEVICE();
  check_train_forward<float>(false, 1e-5f, 1e-5f);
}
TEST(CudaBatchNorm, TrainForwardReluFp32) {
  M2T_REQUIRE_CUDA_DEVICE();
  check_train_forward<float>(true, 1e-5f, 1e-5f);
}
TEST(CudaBatchNorm, TrainForwardReluBf16) {
  M2T_REQUIRE_CUDA_DEVICE();
  check_train_forward<__nv_bfloat16>(true, 8e-3f, 1e-2f);
}

// Apply with a residual and ReLU (the bottleneck's last BN): y = ReLU(x·s + b + r). Tolerance rtol/atol 1e-5.
TEST(CudaBatchNorm, ApplyResidualRelu) {
  M2T_REQUIRE_CUDA_DEVICE();
  const auto x = randn(kM * kC, 31), r = randn(kM * kC, 32), sc = randn(kG * kC, 33), sh = randn(kG * kC, 34);
  DeviceBuffer<float> dx(x), dr(r), dy(kM * kC), dsc(sc), dsh(sh);
  dy.poison();
  bn_apply<float>(dx.get(), dr.get(), dy.get(), kM, kC, kG, dsc.get(), dsh.get(), true, nullptr);
  std::vector<float> want(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const int64_t k = (int64_t(i) / kC / kMg) * kC + int64_t(i) % kC;
    want[i] = std::max(x[i] * sc[k] + sh[k] + r[i], 0.0f);
  }
  EXPECT_TRUE(all_close(dy.download(), want, 1e-5f, 1e-5f));
}

// Backward with ReLU mask against bn_backward's formulas evaluated in double (dγ/dβ accumulate into existing
// values). Tolerances: dx rtol 1e-4 atol 1e-5; dγ, dβ rtol 1e-5 atol 1e-4 (sums of ~500 terms in float output).
TEST(CudaBatchNorm, TrainBackwardRelu) {
  M2T_REQUIRE_CUDA_DEVICE();
  const auto x = randn(kM * kC, 41, 1.0f, 2.0f), y = randn(kM * kC, 42), g_up = randn(kM * kC, 43);
  const auto gamma = randn(kC, 44, 1.0f, 0.2f);
  const Stats s = host_stats(x, kM, kC, kG);
  std::vector<float> is(kG * kC);
  for (size_t k = 0; k < is.size(); ++k) is[k] = 1.0f / std::sqrt(s.var[k] + kBnEps);
  std::vector<float> dgamma = randn(kC, 45), dbeta = randn(kC, 46);
  DeviceBuffer<float> dx_in(x), dyr(y), ddy(g_up), ddx(kM * kC), dmean(s.mean), dis(is), dgam(gamma), ddg(dgamma),
      ddb(dbeta), coef(3 * kG * kC);
  DeviceBuffer<double> ws(bn_workspace_doubles(kM, kC, kG));
  ddx.poison();
  coef.poison();
  ws.poison();
  bn_train_backward<float>(dx_in.get(), dyr.get(), ddy.get(), ddx.get(), kM, kC, kG, dmean.get(), dis.get(),
                           dgam.get(), ddg.get(), ddb.get(), coef.get(), ws.get(), nullptr);
  std::vector<float> want(x.size());
  for (int g = 0; g < kG; ++g)
    for (int64_t c = 0; c < kC; ++c) {
      const int64_t k = g * kC + c;
      double sdy = 0, sdyx = 0;
      for (int64_t r = g * kMg; r < (g + 1) * kMg; ++r) {
        const int64_t i = r * kC + c;
        const double d = y[i] > 0 ? g_up[i] : 0.0;
        sdy += d;
        sdyx += d * (double(x[i]) - s.mean[k]);
      }
      const double dgam = sdyx * is[k];
      dgamma[c] += float(dgam);
      dbeta[c] += float(sdy);
      for (int64_t r = g * kMg; r < (g + 1) * kMg; ++r) {
        const int64_t i = r * kC + c;
        const double d = y[i] > 0 ? g_up[i] : 0.0;
        want[i] = float(gamma[c] * is[k] * (d - sdy / kMg - (x[i] - s.mean[k]) * is[k] * dgam / kMg));
      }
    }
  EXPECT_TRUE(all_close(ddx.download(), want, 1e-4f, 1e-5f)) << "dx";
  EXPECT_TRUE(all_close(ddg.download(), dgamma, 1e-5f, 1e-4f)) << "dgamma";
  EXPECT_TRUE(all_close(ddb.download(), dbeta, 1e-5f, 1e-4f)) << "dbeta";
  EXPECT_TRUE(all_close(ddy.download(), g_up, 0, 0)) << "dy must not be modified";
}

// Momentum BN: the host algorithm of BatchNorm::momentum_forward, run for a sequence of calls that opens and
// closes pairs across calls (G = 1, 1, 2, 2) and within one (G = 2), with total_pairs small enough that α moves.
// Tolerances: y rtol/atol 1e-5; running stats and stash rtol 1e-6 atol 1e-7; host state exactly.
TEST(CudaBatchNorm, MomentumForwardFollowsHostAlgorithm) {
  M2T_REQUIRE_CUDA_DEVICE();
  const auto gamma = randn(kC, 51, 1.0f, 0.2f), beta = randn(kC, 52, 0.0f, 0.3f);
  std::vector<float> rm(kC, 0.0f), rv(kC, 1.0f), stm(kC, 0.0f), stv(kC, 0.0f);
  double alpha = 1.0;
  int64_t pairs = 0;
  bool full = false;
  const int64_t K = 3;
  MomentumBnState st;
  st.total_pairs = K;
  DeviceBuffer<float> dgamma(gamma), dbeta(beta), drm(rm), drv(rv), dstm(stm), dstv(stv), sc(kG * kC), sh(kG * kC);
  int call = 0;
  for (int G : {1, 1, 2, 2, 1}) {
    const int64_t M = G * kMg;
    const auto x = randn(M * kC, 60 + call, 0.5f * call, 1.0f + call);
    DeviceBuffer<float> dx(x), dy(M * kC);
    DeviceBuffer<double> ws(bn_workspace_doubles(M, kC, G));
    dy.poison();
    sc.poison();
    sh.poison();
    momentum_bn_forward<float>(dx.get(), dy.get(), M, kC, G, dgamma.get(), dbeta.get(), drm.get(), drv.get(),
                               dstm.get(), dstv.get(), st, sc.get(), sh.get(), true, ws.get(), nullptr);
    // Host: layers.cc, with kG-sized scale/shift arrays (only the first G groups used).
    const Stats s = host_stats(x, M, kC, G);
    const double unbias = double(kMg) / (kMg - 1), extra = unbias;  // double_unbias (default true)
    std::vector<float> scale(G * kC), shift(G * kC);
    for (int i = 0; i < G; ++i)
      for (int64_t c = 0; c < kC; ++c) {
        const int64_t k = i * kC + c;
        const double v_unb = s.var[k] * unbias;
        const double mu_t = alpha * s.mean[k] + (1 - alpha) * rm[c];
        const double v_t = alpha * v_unb * extra + (1 - alpha) * rv[c];
        const double sd = gamma[c] / std::sqrt(v_t + kBnEps);
        scale[k] = float(sd);
        shift[k] = float(beta[c] - mu_t * sd);
      }
    const auto want_y = host_apply(x, kC, kMg, scale, shift, true);
    for (int i = 0; i < G; ++i) {
      if (!full) {
        for (int64_t c = 0; c < kC; ++c) {
          stm[c] = s.mean[i * kC + c];
          stv[c] = float(s.var[i * kC + c] * unbias);
        }
        full = true;
        continue;
      }
      for (int64_t c = 0; c < kC; ++c) {
        const double m = 0.5 * (s.mean[i * kC + c] + stm[c]);
        const double v = 0.5 * (s.var[i * kC + c] * unbias + stv[c]) * extra;
        rm[c] = float(alpha * m + (1 - alpha) * rm[c]);
        rv[c] = float(alpha * v + (1 - alpha) * rv[c]);
      }
      full = false;
      pairs += 1;
      alpha = (std::cos(M_PI * double(pairs) / double(K)) + 1.0) / 2.0;
    }
    EXPECT_TRUE(all_close(dy.download(), want_y, 1e-5f, 1e-5f)) << "y, call " << call;
    auto got_sc = sc.download();
    got_sc.resize(G * kC);
    EXPECT_TRUE(all_close(got_sc, scale, 1e-6f, 1e-7f)) << "scale, call " << call;
    EXPECT_TRUE(all_close(drm.download(), rm, 1e-6f, 1e-7f)) << "running_mean, call " << call;
    EXPECT_TRUE(all_close(drv.download(), rv, 1e-6f, 1e-7f)) << "running_var, call " << call;
    if (full) {
      EXPECT_TRUE(all_close(dstm.download(), stm, 1e-6f, 1e-7f)) << "stash mean, call " << call;
      EXPECT_TRUE(all_close(dstv.download(), stv, 1e-6f, 1e-7f)) << "stash var, call " << call;
    }
    EXPECT_EQ(st.pairs, pairs);
    EXPECT_EQ(st.stash_full, full);
    EXPECT_EQ(st.alpha, alpha);
    ++call;
  }
  EXPECT_EQ(pairs, 3);
  EXPECT_LT(alpha, 0.01) << "α should have reached 0 at K pairs";
}

// Bad shapes are refused with a clear error before any launch (runs without a device).
TEST(CudaBatchNorm, RejectsBadShapes) {
  EXPECT_THROW(bn_workspace_doubles(10, 4, 3), m2t::Error);  // 3 does not divide 10
  EXPECT_THROW(bn_workspace_doubles(16, 4, kBnMaxGroups + 1), m2t::Error);
  EXPECT_THROW(bn_workspace_doubles(16, 0, 1), m2t::Error);
  EXPECT_GT(bn_workspace_doubles(kM, kC, kG), 0);
}
