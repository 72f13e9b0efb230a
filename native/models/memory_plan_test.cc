// The memory plan (EncoderPlan, plan_m2t, plan_probe) against what the host caching allocator
// measures: a step's peak bytes in use equal the plan (the arenas are allocated exactly as
// planned; the tolerance covers the allocator's 64-byte rounding of the small tensors the plan
// counts as floats; stated: 1% of the total), activations grow linearly in the batch, and the arenas are reused: steps
// after the first allocate nothing new.
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>

#include "core/allocator.h"
#include "core/error.h"
#include "models/m2t.h"
#include "models/probe.h"
#include "tests/testutil.h"

namespace m2t {
namespace {
using test::gen;

struct Case {
  const char* arch;
  bool small_stem;
  int64_t n, size;
  const char* precision = "fp32";
};

M2TConfig config(const Case& k) {
  M2TConfig c;
  c.encoder = {k.arch, 0.25, k.small_stem, k.precision};
  c.hidden_dim = 256;
  c.out_dim = 64;
  c.total_iterations = 10;
  return c;
}

class PlanVsAllocator : public ::testing::TestWithParam<Case> {};

TEST_P(PlanVsAllocator, StepPeakEqualsThePlan) {
  const Case k = GetParam();
  const M2TConfig c = config(k);
  CachingAllocator& a = host_allocator();
  a.release_cached();
  const size_t before = a.stats().in_use;
  std::unique_ptr<Momentum2Teacher> mp;
  try {
    mp = std::make_unique<Momentum2Teacher>(cpu_backend(), c);
  } catch (const Error& e) {
    GTEST_SKIP() << e.what();  // bf16 on a CPU without bf16 convolution
  }
  Momentum2Teacher& m = *mp;
  const MemoryPlan p = plan_m2t(c, k.n, k.size, k.size);
  // The model alone (parameters, gradients, optimizer, teacher) before any step.
  const size_t model = a.stats().in_use - before;
  EXPECT_NEAR(double(model), double(p.model()), 0.01 * double(p.model()));
  const Tensor v1 = gen("v1", {k.n, k.size, k.size, 3}), v2 = gen("v2", {k.n, k.size, k.size, 3});
  a.reset_peak();
  m.step(v1, v2, 0.1);
  const size_t first = a.stats().peak_in_use - before;
  a.reset_peak();
  const size_t misses = a.stats().misses;
  m.step(v1, v2, 0.1);
  const size_t second = a.stats().peak_in_use - before;
  EXPECT_EQ(a.stats().misses, misses) << "a steady-state step allocated";
  EXPECT_LE(second, first);

  const double planned = double(p.total());
  std::printf("%s%s %s b%lld %lldpx: planned %.0f (model %lld, activations %lld), measured peak %zu (%+.2f%%)\n", k.arch,
              k.small_stem ? " small-stem" : "", k.precision, (long long)k.n, (long long)k.size, planned, (long long)p.model(),
              (long long)p.activations, first, 100.0 * (double(first) - planned) / planned);
  EXPECT_NEAR(double(first), planned, 0.01 * planned);
  // The activations alone, too (the model part is checked above).
  EXPECT_NEAR(double(first - model), double(p.activations), 0.03 * double(p.activations));
}

INSTANTIATE_TEST_SUITE_P(Sizes, PlanVsAllocator,
                         ::testing::Values(Case{"resnet18", true, 8, 32}, Case{"resnet50", false, 4, 64},
                                           Case{"resnet18", false, 6, 48}, Case{"resnet18", true, 8, 32, "bf16"},
                                           Case{"resnet50", false, 4, 64, "bf16"}),
                         [](const ::testing::TestParamInfo<Case>& i) {
                           return std::string(i.param.arch) + (i.param.small_stem ? "_small_stem" : "") + "_b" +
                                  std::to_string(i.param.n) + "_" + std::to_string(i.param.size) + "px_" +
                                  i.param.precision;
                         });

// precision 'bf16' keeps the student's saved activations in bf16 (BN outputs, x̂ in place of the
// conv outputs, block outputs): the saved arena takes half the bytes of fp32's (each tensor still
// rounded to 64 bytes), the work slots stay f32 (conv outputs before BN, the gradient stream), plus
// the bf16 copy of each encoder's images; the model part is unchanged, and the allocator's
// measured activation peak shrinks by the planned amount.
TEST(MemoryPlan, Bf16HalvesTheSavedArena) {
  const Case f{"resnet50", false, 4, 64}, b{"resnet50", false, 4, 64, "bf16"};
  const EncoderPlan ef = plan_encoder(config(f).encoder, 8, 64, 64), eb = plan_encoder(config(b).encoder, 8, 64, 64);
  EXPECT_EQ(ef.act_bytes, 4);
  EXPECT_EQ(eb.act_bytes, 2);
  EXPECT_EQ(ef.image, 0);
  EXPECT_EQ(eb.image, 8 * 64 * 64 * 3);
  EXPECT_EQ(ef.work(), eb.work());
  EXPECT_NEAR(double(2 * eb.saved) / double(4 * ef.saved), 0.5, 0.005);
  const MemoryPlan pf = plan_m2t(config(f), 4, 64, 64), pb = plan_m2t(config(b), 4, 64, 64);
  EXPECT_EQ(pf.model(), pb.model());
  EXPECT_EQ(pf.activations - pb.activations, 4 * ef.saved - 2 * eb.saved - 2 * 2 * eb.image);
  std::printf("resnet50/4 b4 64px activations: fp32 %lld, bf16 %lld (saved arena %lld -> %lld bytes)\n",
              (long long)pf.activations, (long long)pb.activations, (long long)(4 * ef.saved),
              (long long)(2 * eb.saved));

  // The allocator: a step's activation peak (peak in use minus the model) in each precision.
  auto measured = [](const Case& k) -> double {
    CachingAllocator& a = host_allocator();
    a.release_cached();
    const size_t before = a.stats().in_use;
    Momentum2Teacher m(cpu_backend(), config(k));
    const size_t model = a.stats().in_use - before;
    const Tensor v1 = gen("v1", {k.n, k.size, k.size, 3}), v2 = gen("v2", {k.n, k.size, k.size, 3});
    a.reset_peak();
    m.step(v1, v2, 0.1);
    return double(a.stats().peak_in_use - before - model);
  };
  double mb = 0;
  try {
    mb = measured(b);
  } catch (const Error& e) {
    GTEST_SKIP() << e.what();
  }
  const double mf = measured(f);
  std::printf("measured activation peaks: fp32 %.0f, bf16 %.0f (saved %.0f, planned %lld)\n", mf, mb, mf - mb,
              (long long)(pf.activations - pb.activations));
  EXPECT_NEAR(mf - mb, double(pf.activations - pb.activations), 0.03 * double(pf.activations - pb.activations));
  EXPECT_LT(mb, 0.7 * mf);
}

TEST(MemoryPlan, ActivationsLinearInTheBatch) {
  for (const Case& k : {Case{"resnet18", true, 0, 32}, Case{"resnet50", false, 0, 112}}) {
    const M2TConfig c = config(k);
    // Channel counts here are multiples of 16, so the 64-byte rounding changes nothing: exactly linear.
    const int64_t a1 = plan_m2t(c, 1, k.size, k.size).activations;
    const int64_t per_image = plan_m2t(c, 2, k.size, k.size).activations - a1;
    EXPECT_GT(per_image, 0);
    EXPECT_EQ(plan_m2t(c, 8, k.size, k.size).activations, a1 + 7 * per_image) << k.arch;
    EXPECT_EQ(plan_m2t(c, 64, k.size, k.size).activations, a1 + 63 * per_image) << k.arch;
    // Nothing per image outside the activations.
    EXPECT_EQ(plan_m2t(c, 64, k.size, k.size).model(), plan_m2t(c, 1, k.size, k.size).model());
  }
}

TEST(MemoryPlan, ProbeKeepsNoActivations) {
  M2TConfig mc = config({"resnet50", false, 0, 0});
  int64_t fp32_activations = 0;
  for (const char* precision : {"fp32", "bf16"}) {
    ProbeConfig pc;
    pc.encoder = {"resnet50", 0.25, false, precision};
    pc.num_classes = 10;
    // A frozen encoder keeps nothing: far less than a training step's student.
    EXPECT_LT(plan_probe(pc, 16, 64, 64).activations * 4, plan_m2t(mc, 8, 64, 64).activations);
    CachingAllocator& a = host_allocator();
    a.release_cached();
    const size_t before = a.stats().in_use;
    std::unique_ptr<LinearProbe> probe;
    try {
      probe = std::make_unique<LinearProbe>(cpu_backend(), pc);
    } catch (const Error& e) {
      GTEST_SKIP() << e.what();
    }
    const Tensor x = gen("x", {16, 64, 64, 3});
    std::vector<int32_t> labels(16);
    for (int i = 0; i < 16; ++i) labels[i] = i % 10;
    const Tensor y = test::to_labels(labels);
    a.reset_peak();
    probe->train_step(x, y, 0.1);
    const double measured = double(a.stats().peak_in_use - before), planned = double(plan_probe(pc, 16, 64, 64).total());
    std::printf("probe resnet50/4 %s b16 64px: planned %.0f, measured peak %.0f (%+.2f%%)\n", precision, planned,
                measured, 100.0 * (measured - planned) / planned);
    EXPECT_NEAR(measured, planned, 0.01 * planned);
    // bf16: the same f32 work slots (conv outputs are f32) plus the images' bf16 copy.
    if (std::string(precision) == "fp32") fp32_activations = plan_probe(pc, 16, 64, 64).activations;
    else EXPECT_EQ(plan_probe(pc, 16, 64, 64).activations, fp32_activations + 2 * 16 * 64 * 64 * 3);
  }
}

}  // namespace
}  // namespace m2t
