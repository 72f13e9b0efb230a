// The random parameters' distributions over many draws: probabilities (binomial bounds), the
// jitter order (χ² over the 24 permutations), factor and σ ranges (KS against the uniform law),
// and the keyed streams' independence from draw order.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "data/pipeline.h"
#include "data/rng.h"

using namespace m2t::data;

namespace {

constexpr int kN = 24000;

// One-sample KS distance to U(lo, hi).
double ks_uniform(std::vector<double> v, double lo, double hi) {
  std::sort(v.begin(), v.end());
  double d = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    const double f = (v[i] - lo) / (hi - lo);
    d = std::max({d, std::abs(f - double(i) / v.size()), std::abs(f - double(i + 1) / v.size())});
  }
  return d;
}

struct Draws {
  std::vector<ViewParams> p;
  explicit Draws(const ViewConfig& cfg) {
    for (int i = 0; i < kN; ++i) p.push_back(draw_view_params(cfg, 500, 375, stream_key(5, Stream::View, 0, uint64_t(i), 0)));
  }
  template <class F> double rate(F f) const {
    double n = 0;
    for (const auto& x : p) n += f(x);
    return n / p.size();
  }
};

// |observed − p| within 5 standard deviations of a binomial proportion.
void expect_rate(double observed, double p, const char* what) {
  EXPECT_NEAR(observed, p, 5 * std::sqrt(p * (1 - p) / kN) + 1e-12) << what;
}

}  // namespace

TEST(Stats, ProbabilitiesOfBothViews) {
  const Draws v1(ViewConfig::byol_view1()), v2(ViewConfig::byol_view2());
  expect_rate(v1.rate([](auto& x) { return x.jitter; }), 0.8, "view 1 jitter");
  expect_rate(v1.rate([](auto& x) { return x.blur; }), 1.0, "view 1 blur");
  expect_rate(v1.rate([](auto& x) { return x.gray; }), 0.2, "view 1 grayscale");
  expect_rate(v1.rate([](auto& x) { return x.flip; }), 0.5, "view 1 flip");
  expect_rate(v1.rate([](auto& x) { return x.solarize; }), 0.0, "view 1 solarize");
  expect_rate(v2.rate([](auto& x) { return x.jitter; }), 0.8, "view 2 jitter");
  expect_rate(v2.rate([](auto& x) { return x.blur; }), 0.1, "view 2 blur");
  expect_rate(v2.rate([](auto& x) { return x.gray; }), 0.2, "view 2 grayscale");
  expect_rate(v2.rate([](auto& x) { return x.flip; }), 0.5, "view 2 flip");
  expect_rate(v2.rate([](auto& x) { return x.solarize; }), 0.2, "view 2 solarize");
}

TEST(Stats, JitterOrderUniformOverPermutations) {
  const Draws v(ViewConfig::byol_view1());
  std::map<std::array<int, 4>, int> count;
  for (const auto& x : v.p) ++count[x.order];
  ASSERT_EQ(count.size(), 24u);
  const double e = double(kN) / 24;
  double chi2 = 0;
  for (const auto& [k, c] : count) chi2 += (c - e) * (c - e) / e;
  EXPECT_LT(chi2, 49.7);  // χ²(23) at p = 0.001
}

TEST(Stats, FactorsAndSigmaUniformOnTheirRanges) {
  const Draws v(ViewConfig::byol_view1());
  std::vector<double> b, c, s, h, sig;
  for (const auto& x : v.p) {
    b.push_back(x.brightness);
    c.push_back(x.contrast);
    s.push_back(x.saturation);
    h.push_back(x.hue);
    sig.push_back(x.sigma);
  }
  const double crit = 1.95 / std::sqrt(double(kN));  // KS, α = 0.001
  EXPECT_LT(ks_uniform(b, 0.6, 1.4), crit);
  EXPECT_LT(ks_uniform(c, 0.6, 1.4), crit);
  EXPECT_LT(ks_uniform(s, 0.8, 1.2), crit);
  EXPECT_LT(ks_uniform(h, -0.1, 0.1), crit);
  EXPECT_LT(ks_uniform(sig, 0.1, 2.0), crit);
  for (double x : b) ASSERT_TRUE(x >= 0.6 && x <= 1.4);
  for (double x : h) ASSERT_TRUE(x >= -0.1 && x <= 0.1);
}

TEST(Stats, ConfigurableRangesAndProbabilities) {
  ViewConfig cfg = ViewConfig::byol_view1();
  cfg.brightness = 0.8;  // factor U(max(0, 0.2), 1.8)
  cfg.jitter_p = 0.3;
  cfg.gray_p = 0.0;
  cfg.sigma_lo = 0.5;
  cfg.sigma_hi = 0.6;
  const Draws v(cfg);
  expect_rate(v.rate([](auto& x) { return x.jitter; }), 0.3, "jitter p 0.3");
  expect_rate(v.rate([](auto& x) { return x.gray; }), 0.0, "grayscale p 0");
  for (const auto& x : v.p) {
    ASSERT_GE(x.brightness, 0.2f);
    ASSERT_LE(x.brightness, 1.8f);
    ASSERT_GE(x.sigma, 0.5f);
    ASSERT_LE(x.sigma, 0.6f);
  }
}

TEST(Stats, StreamsAreKeyedNotSequential) {
  const ViewConfig cfg = ViewConfig::byol_view2();
  const uint64_t k = stream_key(1, Stream::View, 3, 17, 1);
  const ViewParams a = draw_view_params(cfg, 500, 375, k);
  for (int i = 0; i < 100; ++i) draw_view_params(cfg, 64, 64, stream_key(1, Stream::View, 3, uint64_t(i), 0));
  const ViewParams b = draw_view_params(cfg, 500, 375, k);
  EXPECT_EQ(a.crop, b.crop);
  EXPECT_EQ(a.brightness, b.brightness);
  EXPECT_EQ(a.order, b.order);
  EXPECT_NE(stream_key(1, Stream::View, 3, 17, 0), k);
  EXPECT_NE(stream_key(2, Stream::View, 3, 17, 1), k);
}
