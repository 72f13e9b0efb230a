// Residual add + ReLU and ReLU's backward against finite differences.
#include "core/backend.h"
#include "core/error.h"
#include "tests/gradcheck.h"

namespace m2t::test {
namespace {

class ElementwiseOp : public BackendTest {};

TEST_P(ElementwiseOp, AddReluForwardBackward) {
  const Shape s{2, 3, 3, 4};
  const Vec a = random_vec(numel_of(s), 61), b = random_vec(numel_of(s), 62);
  auto ref = [](const Vec& av, const Vec& bv) {
    Vec y(av.size());
    for (size_t i = 0; i < av.size(); ++i) y[i] = std::max(av[i] + bv[i], 0.0);
    return y;
  };
  Backend& be = backend();
  Tensor y;
  be.add_relu(to_tensor(a, s), to_tensor(b, s), y);
  expect_close(y, ref(a, b), 1e-7, "add_relu forward");
  const Vec w = random_vec(a.size(), 63);
  Tensor g = to_tensor(w, s);
  be.relu_backward(y, g);  // ∂L/∂a = ∂L/∂b = w·[a + b > 0]
  expect_gradient([&](const Vec& av) { return dot(w, ref(av, b)); }, a, g, 1e-6, "add_relu da", 72, 1e-7);
  expect_gradient([&](const Vec& bv) { return dot(w, ref(a, bv)); }, b, g, 1e-6, "add_relu db", 72, 1e-7);
}

TEST_P(ElementwiseOp, AddInplaceAndScale) {
  Backend& be = backend();
  Tensor y = to_tensor({1, 2, 3}, {3}), x = to_tensor({0.5, -1, 2}, {3});
  be.add_inplace(y, x);
  be.scale(y, 2.0f);
  EXPECT_EQ(host(y)[0], 3.0f);
  EXPECT_EQ(host(y)[1], 2.0f);
  EXPECT_EQ(host(y)[2], 10.0f);
}

TEST_P(ElementwiseOp, Concat2StacksAlongTheBatch) {
  const Vec a = random_vec(2 * 2 * 3, 71), b = random_vec(2 * 2 * 3, 72);
  Tensor y;
  backend().concat2(to_tensor(a, {2, 2, 1, 3}), to_tensor(b, {2, 2, 1, 3}), y);
  ASSERT_EQ(y.shape(), (Shape{4, 2, 1, 3}));
  Vec ab(a);
  ab.insert(ab.end(), b.begin(), b.end());
  expect_close(y, ab, 1e-7, "concat (float rounding of the reference only)");
  EXPECT_THROW(backend().concat2(to_tensor(a, {2, 2, 1, 3}), to_tensor(b, {4, 1, 1, 3}), y), Error);
}

M2T_INSTANTIATE_BACKENDS(ElementwiseOp);

}  // namespace
}  // namespace m2t::test
