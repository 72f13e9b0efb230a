// Residual add + ReLU and ReLU's backward against finite differences.
#include "core/backend.h"
#include "tests/gradcheck.h"

namespace m2t::test {
namespace {

TEST(Elementwise, AddReluForwardBackward) {
  const Shape s{2, 3, 3, 4};
  const Vec a = random_vec(numel_of(s), 61), b = random_vec(numel_of(s), 62);
  auto ref = [](const Vec& av, const Vec& bv) {
    Vec y(av.size());
    for (size_t i = 0; i < av.size(); ++i) y[i] = std::max(av[i] + bv[i], 0.0);
    return y;
  };
  Backend& be = cpu_backend();
  Tensor y;
  be.add_relu(to_tensor(a, s), to_tensor(b, s), y);
  expect_close(y, ref(a, b), 1e-7, "add_relu forward");
  const Vec w = random_vec(a.size(), 63);
  Tensor g = to_tensor(w, s);
  be.relu_backward(y, g);  // ∂L/∂a = ∂L/∂b = w·[a + b > 0]
  expect_gradient([&](const Vec& av) { return dot(w, ref(av, b)); }, a, g, 1e-6, "add_relu da", 72, 1e-7);
  expect_gradient([&](const Vec& bv) { return dot(w, ref(a, bv)); }, b, g, 1e-6, "add_relu db", 72, 1e-7);
}

TEST(Elementwise, AddInplaceAndScale) {
  Backend& be = cpu_backend();
  Tensor y = to_tensor({1, 2, 3}, {3}), x = to_tensor({0.5, -1, 2}, {3});
  be.add_inplace(y, x);
  be.scale(y, 2.0f);
  EXPECT_EQ(y.data()[0], 3.0f);
  EXPECT_EQ(y.data()[1], 2.0f);
  EXPECT_EQ(y.data()[2], 10.0f);
}

}  // namespace
}  // namespace m2t::test
