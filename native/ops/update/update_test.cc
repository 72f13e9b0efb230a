// EMA, sums of squares and the momentum updates behind SGD and LARS.
#include "core/backend.h"
#include "tests/gradcheck.h"

namespace m2t::test {
namespace {

TEST(Update, EmaAndSumSquares) {
  Backend& be = cpu_backend();
  Tensor t = to_tensor({1, 2, 3}, {3});
  be.ema(t, to_tensor({3, 2, 1}, {3}), 0.75f);
  EXPECT_FLOAT_EQ(t.data()[0], 1.5f);
  EXPECT_FLOAT_EQ(t.data()[1], 2.0f);
  EXPECT_FLOAT_EQ(t.data()[2], 2.5f);
  EXPECT_DOUBLE_EQ(be.sum_squares(t), 1.5 * 1.5 + 4 + 2.5 * 2.5);
}

TEST(Update, MomentumUpdateTwoSteps) {
  Backend& be = cpu_backend();
  Tensor p = to_tensor({1.0, -2.0}, {2}), g = to_tensor({0.5, 0.25}, {2}), buf({2});
  const float wd = 0.1f, mu = 0.9f, lr = 0.2f;
  be.momentum_update(p, g, buf, wd, mu, 1.0f, lr, /*first=*/true);
  // d = g + wd·p = (0.6, 0.05); buf = d; p = p − lr·d
  EXPECT_FLOAT_EQ(buf.data()[0], 0.6f);
  EXPECT_FLOAT_EQ(p.data()[0], 1.0f - 0.2f * 0.6f);
  be.momentum_update(p, g, buf, wd, mu, 1.0f, lr, false);
  const float d0 = 0.5f + 0.1f * 0.88f;
  EXPECT_FLOAT_EQ(buf.data()[0], 0.9f * 0.6f + d0);
  EXPECT_FLOAT_EQ(p.data()[0], 0.88f - 0.2f * (0.9f * 0.6f + d0));
}

}  // namespace
}  // namespace m2t::test
