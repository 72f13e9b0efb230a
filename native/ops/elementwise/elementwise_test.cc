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

// Tensors of several 8192-element chunks and a ragged tail (the OpenMP split of the vectorised
// loops): every element against its scalar definition, exactly, in f32 and bf16.
TEST_P(ElementwiseOp, ManyChunksAndATailExactly) {
  Backend& be = backend();
  const Shape s{3 * 8192 + 77};
  const Vec a = random_vec(s[0], 64), b = random_vec(s[0], 65), w = random_vec(s[0], 66);
  Tensor y, g = to_tensor(w, s);
  be.add_relu(to_tensor(a, s), to_tensor(b, s), y);
  be.relu_backward(y, g);
  const std::vector<float> yh = host(y), gh = host(g);
  for (int64_t i = 0; i < s[0]; ++i) {
    const float yi = std::max(float(a[i]) + float(b[i]), 0.0f);
    ASSERT_EQ(yh[i], yi) << i;
    ASSERT_EQ(gh[i], yi > 0 ? float(w[i]) : 0.0f) << i;
  }
  Tensor ab = to_bf16_tensor(a, s), bb = to_bf16_tensor(b, s), yb;
  be.add_relu(ab, bb, yb);
  be.add_inplace(ab, bb);
  const std::vector<float> ybh = host(yb), abh = host(ab);
  for (int64_t i = 0; i < s[0]; ++i) {
    const float ai = round_bf16(float(a[i])), bi = round_bf16(float(b[i]));
    ASSERT_EQ(ybh[i], round_bf16(std::max(ai + bi, 0.0f))) << i;
    ASSERT_EQ(abh[i], round_bf16(ai + bi)) << i;
  }
}

// The residual gradient add and the ReLU mask in one pass: add_relu_backward(dx, g, y) is bit for bit
// add_inplace(dx, g) then relu_backward(y, dx), over several chunks and a ragged tail, for an f32
// gradient masked by f32 or bf16 outputs and for bf16 gradients. Fails if the add or the mask is
// dropped (both change these values: checked).
TEST_P(ElementwiseOp, AddReluBackwardIsAddThenMask) {
  Backend& be = backend();
  const Shape s{2 * 8192 + 133};
  const Vec d = random_vec(s[0], 91), g = random_vec(s[0], 92), y = random_vec(s[0], 93);
  for (DType yt : {DType::F32, DType::BF16})
    for (DType gt : {DType::F32, DType::BF16}) {
      SCOPED_TRACE(std::string("y ") + dtype_name(yt) + ", dx " + dtype_name(gt));
      auto make = [&](const Vec& v, DType t) { return t == DType::F32 ? to_tensor(v, s) : to_bf16_tensor(v, s); };
      const Tensor yy = make(y, yt), gg = make(g, gt);
      Tensor fused = make(d, gt), ref = make(d, gt), added = make(d, gt);
      be.add_relu_backward(fused, gg, yy);
      be.add_inplace(ref, gg);
      be.add_inplace(added, gg);
      be.relu_backward(yy, ref);
      ASSERT_EQ(fused.dtype(), gt);
      EXPECT_EQ(host(fused), host(ref));
      EXPECT_NE(host(ref), host(added));       // the mask zeroed something
      EXPECT_NE(host(ref), host(make(d, gt)));  // the add changed something
    }
  Tensor dx = to_tensor(d, s);
  EXPECT_THROW(be.add_relu_backward(dx, to_tensor(g, s), to_tensor(Vec(8, 1.0), {8})), Error);  // y's size
  EXPECT_THROW(be.add_relu_backward(dx, to_bf16_tensor(g, s), to_tensor(y, s)), Error);          // mixed dx, g
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

// bf16 activations: the residual add + ReLU, its mask and the in-place add compute in f32 on the
// widened values and round once (expect_bf16_of against the f32 ops on the rounded values); cast
// rounds to nearest even (ties to even checked on exact midpoints) and widens exactly.
TEST_P(ElementwiseOp, Bf16IsF32OfRoundedInputsRoundedOnce) {
  Backend& be = backend();
  const Shape s{2, 5, 5, 12};
  const Vec a = random_vec(numel_of(s), 81), b = random_vec(numel_of(s), 82), w = random_vec(numel_of(s), 83);
  const Tensor ab = to_bf16_tensor(a, s), bb = to_bf16_tensor(b, s);
  const Tensor af = to_tensor(bf16_rounded(a), s), bf = to_tensor(bf16_rounded(b), s);
  Tensor yb, yf;
  be.add_relu(ab, bb, yb);
  be.add_relu(af, bf, yf);
  expect_bf16_of(yb, yf, "bf16 add_relu");
  Tensor gb = to_bf16_tensor(w, s), gf = to_tensor(bf16_rounded(w), s);
  be.relu_backward(yb, gb);
  be.relu_backward(yf, gf);
  expect_bf16_of(gb, gf, "bf16 relu backward", 0, /*must_round=*/false);  // a mask: exact
  EXPECT_EQ(host(gb), host(gf));
  be.add_inplace(gb, ab);
  be.add_inplace(gf, af);
  expect_bf16_of(gb, gf, "bf16 add_inplace");
  EXPECT_THROW(be.add_inplace(gb, af), Error);  // mixed types
  // A bf16 encoder's f32 gradient stream masked by its bf16 outputs: the f32 mask of the same values.
  Tensor g32 = to_tensor(w, s), g32ref = to_tensor(w, s);
  be.relu_backward(yb, g32);
  be.relu_backward(yf, g32ref);
  ASSERT_EQ(g32.dtype(), DType::F32);
  EXPECT_EQ(host(g32), host(g32ref));
  EXPECT_NE(host(g32), host(to_tensor(w, s)));  // the mask zeroed something

  // 1 + 2^-8 is the midpoint of 1 and 1 + 2^-7: ties to even gives 1; 1 + 3·2^-8 → 1 + 2^-6.
  const Tensor t = to_tensor({1 + std::ldexp(1.0, -8), 1 + 3 * std::ldexp(1.0, -8), -2.5, 1e-3}, {4});
  Tensor tb(Shape{4}, current_device(), DType::BF16), back;
  be.cast(t, tb);
  const std::vector<float> r = host(tb);
  EXPECT_EQ(r[0], 1.0f);
  EXPECT_EQ(r[1], static_cast<float>(1 + std::ldexp(1.0, -6)));
  EXPECT_EQ(r[2], -2.5f);
  EXPECT_EQ(r[3], round_bf16(1e-3f));
  EXPECT_NE(r[3], 1e-3f);
  be.cast(tb, back);  // → f32 (a fresh tensor): exact
  EXPECT_EQ(back.dtype(), DType::F32);
  EXPECT_EQ(host(back), r);
}

M2T_INSTANTIATE_BACKENDS(ElementwiseOp);

}  // namespace
}  // namespace m2t::test
