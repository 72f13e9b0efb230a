// bf16 mixed precision end to end: 50 training steps of a small Momentum² Teacher in bf16 track
// the same steps in fp32 (same initialisation, same batches) within a stated tolerance, while
// not being the fp32 computation (the bf16 kernels really run). The op-level proofs — each bf16
// kernel is its f32 kernel on the same inputs, rounded once; batch norm's x̂ backward is its
// formula on the rounded x̂ — are in the ops' tests (ops/{conv,batchnorm,pool,elementwise}/*_test.cc).
#include <cmath>
#include <cstdio>
#include <memory>
#include <vector>

#include "core/error.h"
#include "models/m2t.h"
#include "tests/testutil.h"

namespace m2t::test {
namespace {

M2TConfig config(const std::string& precision) {
  M2TConfig c;
  c.encoder = {"resnet18", 0.125, true, precision};
  c.hidden_dim = 64;
  c.out_dim = 32;
  c.total_iterations = 50;
  c.seed = 3;
  return c;
}

// What bf16 may change, and by how much. Step 0 runs both from the same weights, so it measures
// the rounding alone: the loss (in [0, 8]) within kStep0Tol. After that the runs train apart —
// SGD on small random batches amplifies any difference (docs/algorithm.md, "Mixed precision"), and
// the per-step loss of either run swings by ±0.1 from batch to batch — so later steps are compared
// as 10-step means, within kWindowTol, and as the mean of steps 10-49, within kMeanTol.
// The tolerances come from a control: fp32 against fp32 whose views were perturbed by 2·10⁻³
// relative (bf16's rounding scale; 6 perturbations, 2 threads): step 0 differed by ≤ 0.004, the
// 10-step means by ≤ 0.125, the 40-step mean by ≤ 0.057. bf16 itself (oneDNN 3.2, Xeon with AMX,
// 2026-12-03): step 0 by 0.006, the 10-step means by ≤ 0.086, the 40-step mean by 0.013.
constexpr double kStep0Tol = 0.02;
constexpr double kWindowTol = 0.2;
constexpr double kMeanTol = 0.1;

TEST(Precision, Bf16LossesTrackFp32Over50Steps) {
  std::unique_ptr<Momentum2Teacher> bf;
  try {
    bf = std::make_unique<Momentum2Teacher>(cpu_backend(), config("bf16"));
  } catch (const Error& e) {
    GTEST_SKIP() << e.what();  // no bf16 convolution on this CPU (message: test/precision.test.ts)
  }
  Momentum2Teacher fp(cpu_backend(), config("fp32"));
  std::vector<double> lf, lb;
  bool differs = false;
  for (int it = 0; it < 50; ++it) {
    const Tensor v1 = gen("p1." + std::to_string(it), {8, 16, 16, 3});
    const Tensor v2 = gen("p2." + std::to_string(it), {8, 16, 16, 3});
    lf.push_back(fp.step(v1, v2, 0.05).loss);
    lb.push_back(bf->step(v1, v2, 0.05).loss);
    ASSERT_TRUE(std::isfinite(lb.back())) << "step " << it;
    differs = differs || lf.back() != lb.back();
  }
  EXPECT_TRUE(differs) << "bf16 losses equal fp32's bit for bit: the bf16 kernels did not run";
  EXPECT_LE(std::fabs(lf[0] - lb[0]), kStep0Tol) << "step 0: fp32 " << lf[0] << ", bf16 " << lb[0];
  std::printf("[precision] step 0: fp32 %.4f bf16 %.4f;", lf[0], lb[0]);
  double all_f = 0, all_b = 0;
  for (int w = 1; w < 5; ++w) {
    double mf = 0, mb = 0;
    for (int i = 10 * w; i < 10 * w + 10; ++i) mf += lf[i] / 10, mb += lb[i] / 10;
    std::printf(" steps %d-%d: %.4f / %.4f;", 10 * w, 10 * w + 9, mf, mb);
    EXPECT_LE(std::fabs(mf - mb), kWindowTol) << "mean loss of steps " << 10 * w << "-" << 10 * w + 9 << ": fp32 "
                                              << mf << ", bf16 " << mb;
    // The loss has fallen far more than the tolerances, so the comparison is not between two
    // runs that both did nothing.
    EXPECT_LT(mb, lb[0] - 10 * kMeanTol);
    all_f += mf / 4, all_b += mb / 4;
  }
  std::printf(" steps 10-49: %.4f / %.4f\n", all_f, all_b);
  EXPECT_LE(std::fabs(all_f - all_b), kMeanTol) << "mean loss of steps 10-49: fp32 " << all_f << ", bf16 " << all_b;
}

TEST(Precision, UnknownPrecisionIsARangeError) {
  M2TConfig c = config("fp16");
  try {
    Momentum2Teacher m(cpu_backend(), c);
    FAIL() << "accepted precision 'fp16'";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::RangeError);
    EXPECT_NE(std::string(e.what()).find("precision: expected one of 'fp32', 'bf16', got 'fp16'"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace m2t::test
