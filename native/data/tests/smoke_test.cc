#include <gtest/gtest.h>

#include "data/crop.h"
#include "data/rng.h"

using namespace m2t::data;

TEST(Rng, UniformInRange) {
  Rng r(stream_key(1, Stream::View, 2, 3, 4));
  for (int i = 0; i < 1000; ++i) {
    const double u = r.uniform();
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
  }
}
