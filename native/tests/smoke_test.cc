#include <gtest/gtest.h>

#include <cmath>

#include "models/m2t.h"

using namespace m2t;

TEST(Smoke, StepRuns) {
  M2TConfig c;
  c.encoder = {"resnet18", 0.125, true};
  c.hidden_dim = 16;
  c.out_dim = 8;
  c.total_iterations = 4;
  Momentum2Teacher m(cpu_backend(), c);
  Tensor v1({2, 8, 8, 3}), v2({2, 8, 8, 3});
  for (int i = 0; i < v1.numel(); ++i) {
    v1.data()[i] = (i % 7) * 0.1f;
    v2.data()[i] = (i % 5) * 0.2f;
  }
  auto r = m.step(v1, v2, 0.1);
  EXPECT_TRUE(std::isfinite(r.loss));
  EXPECT_EQ(r.iteration, 1);
}
