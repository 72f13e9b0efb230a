// EMA, sums of squares and the momentum updates behind SGD and LARS.
#include <cmath>
#include <cstring>

#include "core/backend.h"
#include "tests/gradcheck.h"

namespace m2t::test {
namespace {

class UpdateOp : public BackendTest {};

TEST_P(UpdateOp, EmaAndSumSquares) {
  Backend& be = backend();
  Tensor t = to_tensor({1, 2, 3}, {3});
  be.ema(t, to_tensor({3, 2, 1}, {3}), 0.75f, nullptr);
  EXPECT_FLOAT_EQ(host(t)[0], 1.5f);
  EXPECT_FLOAT_EQ(host(t)[1], 2.0f);
  EXPECT_FLOAT_EQ(host(t)[2], 2.5f);
  EXPECT_DOUBLE_EQ(be.sum_squares(t), 1.5 * 1.5 + 4 + 2.5 * 2.5);
}

TEST_P(UpdateOp, MomentumUpdateTwoSteps) {
  Backend& be = backend();
  Tensor p = to_tensor({1.0, -2.0}, {2}), g = to_tensor({0.5, 0.25}, {2}), buf({2}, current_device());
  const float wd = 0.1f, mu = 0.9f, lr = 0.2f;
  be.momentum_update(p, g, buf, wd, mu, 1.0f, lr, /*first=*/true, nullptr);
  // d = g + wd·p = (0.6, 0.05); buf = d; p = p − lr·d
  EXPECT_FLOAT_EQ(host(buf)[0], 0.6f);
  EXPECT_FLOAT_EQ(host(p)[0], 1.0f - 0.2f * 0.6f);
  be.momentum_update(p, g, buf, wd, mu, 1.0f, lr, false, nullptr);
  const float d0 = 0.5f + 0.1f * 0.88f;
  EXPECT_FLOAT_EQ(host(buf)[0], 0.9f * 0.6f + d0);
  EXPECT_FLOAT_EQ(host(p)[0], 0.88f - 0.2f * (0.9f * 0.6f + d0));
}

// The multi-tensor SGD and LARS updates over a flat buffer of two segments (with padding between)
// against the per-tensor momentum update with a hand-computed LARS trust ratio.
TEST_P(UpdateOp, FlatSgdAndLarsMatchPerTensorUpdates) {
  Backend& be = backend();
  const Vec a = random_vec(5, 401), ga = random_vec(5, 402), b = random_vec(3, 403), gb = random_vec(3, 404);
  Vec flat_p(24, 0.0), flat_g(24, 0.0);
  for (int i = 0; i < 5; ++i) flat_p[i] = a[i], flat_g[i] = ga[i];
  for (int i = 0; i < 3; ++i) flat_p[16 + i] = b[i], flat_g[16 + i] = gb[i];
  const std::vector<Segment> segs{{0, 5, true}, {16, 3, false}};
  const double lr = 0.3, eta = 0.02, wd = 0.01;
  const float mu = 0.9f;
  for (const bool lars : {false, true}) {
    Tensor p = to_tensor(flat_p, {24}), g = to_tensor(flat_g, {24}), buf({24}, current_device());
    for (int step = 0; step < 2; ++step) {
      if (lars)
        be.lars_update(p, g, buf, segs, lr, eta, wd, mu, nullptr);
      else
        be.sgd_update(p, g, buf, static_cast<float>(wd), mu, static_cast<float>(lr), step == 0, nullptr);
    }
    // Reference: each segment on its own.
    for (const Segment& s : segs) {
      Vec pv(flat_p.begin() + s.offset, flat_p.begin() + s.offset + s.numel);
      const Vec gv(flat_g.begin() + s.offset, flat_g.begin() + s.offset + s.numel);
      Tensor ps = to_tensor(pv, {s.numel}), gs = to_tensor(gv, {s.numel}), bs({s.numel}, current_device());
      for (int step = 0; step < 2; ++step) {
        if (!lars) {
          be.momentum_update(ps, gs, bs, static_cast<float>(wd), mu, 1.0f, static_cast<float>(lr), step == 0, nullptr);
          continue;
        }
        double pn = 0, gn = 0;
        for (float x : host(ps)) pn += double(x) * x;
        for (float x : host(gs)) gn += double(x) * x;
        pn = std::sqrt(pn), gn = std::sqrt(gn);
        const double actual = s.lars_adapted && pn * gn > 1e-8 ? lr * eta * pn / (gn + wd * pn) : lr;
        be.momentum_update(ps, gs, bs, static_cast<float>(wd), mu, static_cast<float>(actual), 1.0f, false, nullptr);
      }
      const std::vector<float> got = host(p), want = host(ps);
      for (int64_t i = 0; i < s.numel; ++i) EXPECT_FLOAT_EQ(got[s.offset + i], want[i]) << (lars ? "lars " : "sgd ") << i;
    }
    const std::vector<float> got = host(p);
    for (int i = 5; i < 16; ++i) EXPECT_EQ(got[i], 0.0f) << "padding " << i;
  }
}

// The non-finite flag (core/backend.h) rides on each update: 0 while everything written is finite, NaN
// once one written value is NaN or ±inf (wherever it sits, and whichever update wrote it); the values
// written are bitwise those of the update without a flag. Padding is not a parameter and is not looked at.
TEST_P(UpdateOp, UpdatesFlagANonFiniteValueTheyWrite) {
  Backend& be = backend();
  const Vec base = random_vec(40, 405), grad = random_vec(40, 406);
  const std::vector<Segment> segs{{0, 20, true}, {32, 8, false}};
  const float bad_values[] = {std::nanf(""), INFINITY, -INFINITY};
  enum Op { Ema, Sgd, Lars, Momentum, Scan };
  for (const Op op : {Ema, Sgd, Lars, Momentum, Scan}) {
    for (int bad = -1; bad < 3; ++bad) {
      for (const int64_t where : {int64_t(3), int64_t(37)}) {
        Vec pv = base;
        if (bad >= 0) pv[where] = bad_values[bad];
        Tensor p = to_tensor(pv, {40}), g = to_tensor(grad, {40}), buf({40}, current_device()), flag({1}, current_device());
        Tensor p2 = to_tensor(pv, {40}), buf2({40}, current_device());
        be.fill(flag, 0.0f);
        switch (op) {
          case Ema: be.ema(p, g, 0.9f, &flag), be.ema(p2, g, 0.9f, nullptr); break;
          case Sgd: be.sgd_update(p, g, buf, 0.01f, 0.9f, 0.1f, true, &flag), be.sgd_update(p2, g, buf2, 0.01f, 0.9f, 0.1f, true, nullptr); break;
          case Lars: be.lars_update(p, g, buf, segs, 0.1, 0.02, 0.01, 0.9f, &flag), be.lars_update(p2, g, buf2, segs, 0.1, 0.02, 0.01, 0.9f, nullptr); break;
          case Momentum: be.momentum_update(p, g, buf, 0.01f, 0.9f, 0.5f, 0.1f, false, &flag), be.momentum_update(p2, g, buf2, 0.01f, 0.9f, 0.5f, 0.1f, false, nullptr); break;
          case Scan: be.accumulate_nonfinite(p, flag); break;
        }
        const float f = host(flag)[0];
        const std::string what = "op " + std::to_string(op) + " bad " + std::to_string(bad) + " at " + std::to_string(where);
        if (bad < 0) EXPECT_EQ(f, 0.0f) << what;
        else EXPECT_TRUE(std::isnan(f)) << what;
        if (op != Scan) {
          const std::vector<float> a = host(p), b = host(p2);
          EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0) << what;
        }
      }
    }
  }
  // A finite flag accumulates: a second finite update leaves it 0, a NaN already there stays.
  Tensor flag({1}, current_device()), t = to_tensor(base, {40});
  be.fill(flag, std::nanf(""));
  be.accumulate_nonfinite(t, flag);
  EXPECT_TRUE(std::isnan(host(flag)[0]));
}

M2T_INSTANTIATE_BACKENDS(UpdateOp);

}  // namespace
}  // namespace m2t::test
