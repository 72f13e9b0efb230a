// Batch-norm passes with per-view groups: forward against a double reference, backward against
// finite differences, and the grouped pass against separate passes per view.
#include <cmath>

#include "core/backend.h"
#include "core/error.h"
#include "models/layers.h"
#include "tests/gradcheck.h"

namespace m2t::test {
namespace {

// y = ReLU?((x − μ_g)/sqrt(σ²_g + ε)·γ + β) per group g of rows, biased σ².
Vec bn_ref(const Vec& x, int64_t C, int G, const Vec& gamma, const Vec& beta, bool relu) {
  const int64_t M = x.size() / C, Mg = M / G;
  Vec y(x.size());
  for (int g = 0; g < G; ++g)
    for (int64_t c = 0; c < C; ++c) {
      double m = 0, v = 0;
      for (int64_t r = g * Mg; r < (g + 1) * Mg; ++r) m += x[r * C + c];
      m /= Mg;
      for (int64_t r = g * Mg; r < (g + 1) * Mg; ++r) v += (x[r * C + c] - m) * (x[r * C + c] - m);
      v /= Mg;
      for (int64_t r = g * Mg; r < (g + 1) * Mg; ++r) {
        double o = (x[r * C + c] - m) / std::sqrt(v + 1e-5) * gamma[c] + beta[c];
        y[r * C + c] = relu ? std::max(o, 0.0) : o;
      }
    }
  return y;
}

// Sets γ, β (or any per-channel tensor) from doubles.
void set(Tensor& t, const Vec& v) {
  std::vector<float> f(v.begin(), v.end());
  t.copy_from_host(f.data());
}

// γ and β set, their gradients zeroed: a BN ready for one forward and backward.
void reset(BatchNorm& bn, const Vec& gamma, const Vec& beta) {
  set(bn.gamma.value, gamma);
  set(bn.beta.value, beta);
  bn.gamma.grad.zero();
  bn.beta.grad.zero();
}

class BnGrad : public ::testing::TestWithParam<std::tuple<Backend*, int, bool>> {
 protected:
  void SetUp() override { current_device() = std::get<0>(GetParam())->device(); }
  void TearDown() override { current_device() = Device::cpu(); }
};

TEST_P(BnGrad, TrainForwardBackward) {
  const auto [bep, G, relu] = GetParam();
  Backend& be = *bep;
  const int64_t C = 5;
  const Shape xs{4, 3, 3, C};  // 4 images → G groups of 4/G images
  const Vec x = random_vec(numel_of(xs), 11, -2, 3), gamma = random_vec(C, 12, 0.5, 1.5),
            beta = random_vec(C, 13, -0.5, 0.5);
  BatchNorm bn("bn", C, be.device());
  set(bn.gamma.value, gamma);
  set(bn.beta.value, beta);
  Tensor xt = to_tensor(x, xs), y;
  bn.forward(be, xt, y, G, BnMode::Train, relu);
  expect_close(y, bn_ref(x, C, G, gamma, beta, relu), 1e-5, "bn forward");

  const Vec w = random_vec(x.size(), 14);
  Tensor dy = to_tensor(w, xs), dx;
  bn.gamma.grad.zero();
  bn.beta.grad.zero();
  bn.backward(be, xt, y, dy, dx);
  expect_gradient([&](const Vec& xv) { return dot(w, bn_ref(xv, C, G, gamma, beta, relu)); }, x, dx, 1e-4, "bn dx");
  expect_gradient([&](const Vec& gv) { return dot(w, bn_ref(x, C, G, gv, beta, relu)); }, gamma, bn.gamma.grad, 1e-4,
                  "bn dgamma", 8);
  expect_gradient([&](const Vec& bv) { return dot(w, bn_ref(x, C, G, gamma, bv, relu)); }, beta, bn.beta.grad, 1e-4,
                  "bn dbeta", 8);
}

// bf16 activations: batch norm reading bf16 x (and dy) equals the f32 pass on the bf16-rounded
// values, with y and dx rounded once to bf16 (expect_bf16_of); the statistics, running statistics,
// dγ and dβ stay f32 and equal the f32 pass's. 1280 elements per tensor: whole vectorised runs and a tail.
TEST_P(BnGrad, Bf16IsF32OfRoundedInputsRoundedOnce) {
  const auto [bep, G, relu] = GetParam();
  Backend& be = *bep;
  const int64_t C = 5;
  const Shape xs{4, 8, 8, C};
  const Vec x = random_vec(numel_of(xs), 21, -2, 3), gamma = random_vec(C, 22, 0.5, 1.5),
            beta = random_vec(C, 23, -0.5, 0.5), w = random_vec(numel_of(xs), 24);
  BatchNorm bb("bb", C, be.device()), bf("bf", C, be.device());
  for (BatchNorm* bn : {&bb, &bf}) reset(*bn, gamma, beta);
  const Tensor xb = to_bf16_tensor(x, xs), xf = to_tensor(bf16_rounded(x), xs);
  Tensor yb, yf;
  bb.forward(be, xb, yb, G, BnMode::Train, relu);
  bf.forward(be, xf, yf, G, BnMode::Train, relu);
  expect_bf16_of(yb, yf, "bf16 bn forward");
  EXPECT_EQ(host(bb.running_mean), host(bf.running_mean));
  EXPECT_EQ(host(bb.running_var), host(bf.running_var));

  Tensor dyb = to_bf16_tensor(w, xs), dyf = to_tensor(bf16_rounded(w), xs), dxb, dxf;
  bb.backward(be, xb, yb, dyb, dxb);
  bf.backward(be, xf, yf, dyf, dxf);
  expect_bf16_of(dxb, dxf, "bf16 bn dx");
  expect_close(bb.gamma.grad, to_vec(bf.gamma.grad), 1e-6, "bf16 bn dgamma (f32)");
  expect_close(bb.beta.grad, to_vec(bf.beta.grad), 1e-6, "bf16 bn dbeta (f32)");

  // Momentum BN and inference read bf16 the same way (the same apply pass).
  Tensor mb, mf;
  bb.forward(be, xb, mb, G, BnMode::Infer, relu);
  bf.forward(be, xf, mf, G, BnMode::Infer, relu);
  expect_bf16_of(mb, mf, "bf16 bn inference");
  // Mixed activation types are refused.
  Tensor y32 = to_tensor(x, xs);
  EXPECT_THROW(bb.forward(be, xb, y32, G, BnMode::Infer, relu), Error);
}

// A bf16 encoder's training BN: f32 x (the conv output; here with |μ| ≫ σ, where rounding x
// itself would cancel bits) → bf16 y and bf16 x̂ = (x − μ)·invstd; the backward reads x̂ and an f32
// dy and writes a bf16 dx. y and the running statistics are the f32 BN's (y rounded once); x̂ is
// the exact normalised input rounded once; dx, dγ, dβ are the exact backward formulas on the
// bf16 x̂ (dx rounded once), and within bf16 precision of the f32 BN's gradients. 21 channels
// (not a multiple of 16) and 140 rows: whole vectorised runs and a tail of rows.
TEST_P(BnGrad, Bf16XhatFromF32Input) {
  const auto [bep, G, relu] = GetParam();
  Backend& be = *bep;
  const int64_t C = 21;
  const Shape xs{4, 5, 7, C};
  const int64_t M = numel_of(xs) / C, Mg = M / G;
  Vec x = random_vec(numel_of(xs), 31, -1, 1);
  for (size_t i = 0; i < x.size(); ++i) x[i] += 40.0 + (i % C);  // channel means 40..60, σ ≈ 0.6
  const Vec gamma = random_vec(C, 32, 0.5, 1.5), beta = random_vec(C, 33, -0.5, 0.5),
            w = random_vec(numel_of(xs), 34);
  BatchNorm bb("bb", C, be.device()), bf("bf", C, be.device());
  for (BatchNorm* bn : {&bb, &bf}) reset(*bn, gamma, beta);
  const Tensor xf = to_tensor(x, xs);
  Tensor yb(xs, be.device(), DType::BF16), xh(xs, be.device(), DType::BF16), yf;
  bb.forward(be, xf, yb, G, BnMode::Train, relu, &xh);
  bf.forward(be, xf, yf, G, BnMode::Train, relu);
  expect_bf16_of(yb, yf, "bf16 bn forward from f32 x");
  EXPECT_EQ(host(bb.running_mean), host(bf.running_mean));
  EXPECT_EQ(host(bb.running_var), host(bf.running_var));
  // x̂ against the double reference (γ = 1, β = 0, no ReLU).
  const Vec xh_ref = bn_ref(to_vec(xf), C, G, Vec(C, 1.0), Vec(C, 0.0), false);
  expect_bf16_of(xh, to_tensor(xh_ref, xs), "bf16 x-hat", 1e-5);

  // Backward: the reference formulas in double on the rounded x̂ and the masked dy.
  const Vec xhv = to_vec(xh), yv = to_vec(yb);
  Vec dyv = w;
  if (relu)
    for (size_t i = 0; i < dyv.size(); ++i) dyv[i] = yv[i] > 0 ? static_cast<float>(w[i]) : 0.0;
  Vec dx_ref(x.size()), dg_ref(C, 0.0), db_ref(C, 0.0);
  for (int g = 0; g < G; ++g)
    for (int64_t c = 0; c < C; ++c) {
      double m = 0, v = 0, sdy = 0, sdyh = 0;
      for (int64_t r = g * Mg; r < (g + 1) * Mg; ++r) m += float(x[r * C + c]);
      m /= Mg;
      for (int64_t r = g * Mg; r < (g + 1) * Mg; ++r) v += (float(x[r * C + c]) - m) * (float(x[r * C + c]) - m);
      const double is = 1.0 / std::sqrt(v / Mg + 1e-5);
      for (int64_t r = g * Mg; r < (g + 1) * Mg; ++r) {
        sdy += float(dyv[r * C + c]);
        sdyh += float(dyv[r * C + c]) * xhv[r * C + c];
      }
      dg_ref[c] += sdyh;
      db_ref[c] += sdy;
      for (int64_t r = g * Mg; r < (g + 1) * Mg; ++r)
        dx_ref[r * C + c] = gamma[c] * is * (float(dyv[r * C + c]) - sdy / Mg - xhv[r * C + c] * sdyh / Mg);
    }
  Tensor dyb = to_tensor(w, xs), dyf = to_tensor(w, xs), dxb, dxf;
  bb.backward(be, xf, yb, dyb, dxb);
  bf.backward(be, xf, yf, dyf, dxf);
  ASSERT_EQ(dxb.dtype(), DType::BF16);
  expect_bf16_of(dxb, to_tensor(dx_ref, xs), "bf16 bn dx from x-hat", 1e-4);
  expect_close(bb.gamma.grad, dg_ref, 1e-5, "bf16 bn dgamma from x-hat");
  expect_close(bb.beta.grad, db_ref, 1e-5, "bf16 bn dbeta from x-hat");
  // The same gradient as the f32 BN's, to bf16 precision (x̂ and dx rounded).
  expect_close(dxb, to_vec(dxf), 1e-2, "bf16 bn dx vs f32");
  expect_close(bb.gamma.grad, to_vec(bf.gamma.grad), 1e-2, "bf16 bn dgamma vs f32");
  expect_close(bb.beta.grad, to_vec(bf.beta.grad), 1e-5, "bf16 bn dbeta vs f32");

  // Momentum BN and inference: f32 x → bf16 y is the f32 pass rounded once; x̂ is for training only.
  Tensor mb(xs, be.device(), DType::BF16), mf;
  bb.forward(be, xf, mb, G, BnMode::Infer, relu);
  bf.forward(be, xf, mf, G, BnMode::Infer, relu);
  expect_bf16_of(mb, mf, "bf16 bn inference from f32 x", 1e-6, false);
  EXPECT_THROW(bb.forward(be, xf, mb, G, BnMode::Infer, relu, &xh), Error);
  // Outputs that overlap their input are refused.
  Tensor alias = xf.view(0, xs, DType::BF16);
  EXPECT_THROW(bb.forward(be, xf, alias, G, BnMode::Train, relu, &xh), Error);
}

INSTANTIATE_TEST_SUITE_P(GroupsAndRelu, BnGrad,
                         ::testing::Combine(::testing::ValuesIn(built_backends()), ::testing::Values(1, 2),
                                            ::testing::Values(false, true)),
                         [](const ::testing::TestParamInfo<std::tuple<Backend*, int, bool>>& i) {
                           return backend_param_name({std::get<0>(i.param), i.index}) + "_G" +
                                  std::to_string(std::get<1>(i.param)) + (std::get<2>(i.param) ? "_relu" : "");
                         });

class BatchNormOp : public BackendTest {};

TEST_P(BatchNormOp, TrainRunningStatsUpdateOncePerView) {
  const int64_t C = 3;
  const Shape xs{4, 2, 2, C};
  const Vec x = random_vec(numel_of(xs), 21, -1, 2);
  BatchNorm bn("bn", C, backend().device());
  Tensor xt = to_tensor(x, xs), y;
  bn.forward(backend(), xt, y, 2, BnMode::Train, false);
  // Reference: two sequential momentum-0.1 updates with each view's unbiased variance.
  const int64_t Mg = 8;
  for (int64_t c = 0; c < C; ++c) {
    double rm = 0, rv = 1;
    for (int g = 0; g < 2; ++g) {
      double m = 0, v = 0;
      for (int64_t r = g * Mg; r < (g + 1) * Mg; ++r) m += x[r * C + c];
      m /= Mg;
      for (int64_t r = g * Mg; r < (g + 1) * Mg; ++r) v += (x[r * C + c] - m) * (x[r * C + c] - m);
      v /= (Mg - 1);
      rm = 0.9 * rm + 0.1 * m;
      rv = 0.9 * rv + 0.1 * v;
    }
    EXPECT_NEAR(host(bn.running_mean)[c], rm, 1e-6);
    EXPECT_NEAR(host(bn.running_var)[c], rv, 1e-6);
  }
  EXPECT_EQ(host(bn.num_batches_tracked)[0], 2.0f);
}

// Inference BN is the affine map of the running statistics, for every group alike.
TEST_P(BatchNormOp, InferUsesRunningStatistics) {
  const int64_t C = 3;
  const Vec x = random_vec(4 * C, 25, -1, 2), rm = {0.5, -1, 2}, rv = {1.5, 0.25, 4}, g = {1, 2, 0.5}, b = {0, 1, -1};
  BatchNorm bn("bn", C, backend().device());
  set(bn.running_mean, rm);
  set(bn.running_var, rv);
  set(bn.gamma.value, g);
  set(bn.beta.value, b);
  Tensor y;
  bn.forward(backend(), to_tensor(x, {4, C}), y, 2, BnMode::Infer, true);
  Vec ref(x.size());
  for (int64_t r = 0; r < 4; ++r)
    for (int64_t c = 0; c < C; ++c)
      ref[r * C + c] = std::max(0.0, (x[r * C + c] - rm[c]) / std::sqrt(rv[c] + 1e-5) * g[c] + b[c]);
  expect_close(y, ref, 1e-6, "inference BN");
}

// The backward's ReLU mask is applied where dy is read (the sums and dx) instead of by a pass
// writing dy·[y > 0] back: bit for bit the unfused sequence relu_backward → backward without mask,
// in f32 (bn_backward) and from x̂ (bn_backward_xhat: bf16 y and x̂, f32 dy), and dy is left as it
// was. 21 channels and 2·60 rows: whole vectorised runs and a tail of rows in each group. Fails if
// the mask is skipped (dx then differs from the masked reference: checked below that it must) or if
// dy is written.
TEST_P(BatchNormOp, ReluMaskInsideBackwardEqualsMaskPassFirst) {
  Backend& be = backend();
  const int64_t C = 21, G = 2;
  const Shape xs{4, 5, 6, C};
  const Vec x = random_vec(numel_of(xs), 41, -2, 2), w = random_vec(numel_of(xs), 42);
  const Tensor gamma = to_tensor(random_vec(C, 43, 0.5, 1.5), {C}), beta = to_tensor(random_vec(C, 44, -0.5, 0.5), {C});
  Tensor rm = to_tensor(Vec(C, 0.0), {C}), rv = to_tensor(Vec(C, 1.0), {C}), nbt = to_tensor({0.0}, {1});
  Tensor mean, var, invstd, scale, shift;
  const Tensor xt = to_tensor(x, xs);
  be.bn_stats(xt, C, G, mean, var);
  be.bn_fold_train(mean, var, numel_of(xs) / C / G, gamma, beta, rm, rv, nbt, invstd, scale, shift);
  struct Grads {
    std::vector<float> dx, dgamma, dbeta;
  };
  auto run = [&](bool fused, bool xhat_path, bool mask) {
    Tensor y, xh, dx, dg = to_tensor(Vec(C, 0.0), {C}), db = to_tensor(Vec(C, 0.0), {C});
    if (xhat_path) {
      y = Tensor(xs, be.device(), DType::BF16);
      xh = Tensor(xs, be.device(), DType::BF16);
      be.bn_apply_xhat(xt, C, G, scale, shift, mean, invstd, nullptr, true, y, xh);
    } else {
      be.bn_apply(xt, C, G, scale, shift, nullptr, true, y);
    }
    Tensor dy = to_tensor(w, xs);
    if (mask && !fused) be.relu_backward(y, dy);
    const Tensor* y_relu = mask && fused ? &y : nullptr;
    if (xhat_path)
      be.bn_backward_xhat(xh, y_relu, dy, C, G, invstd, gamma, dx, dg, db);
    else
      be.bn_backward(xt, y_relu, dy, C, G, mean, invstd, gamma, dx, dg, db);
    if (fused) EXPECT_EQ(host(dy), host(to_tensor(w, xs))) << "dy written";
    return Grads{host(dx), host(dg), host(db)};
  };
  for (bool xhat_path : {false, true}) {
    SCOPED_TRACE(xhat_path ? "from x-hat (bf16)" : "f32");
    const Grads fused = run(true, xhat_path, true), unfused = run(false, xhat_path, true),
                unmasked = run(false, xhat_path, false);
    EXPECT_EQ(fused.dx, unfused.dx);
    EXPECT_EQ(fused.dgamma, unfused.dgamma);
    EXPECT_EQ(fused.dbeta, unfused.dbeta);
    EXPECT_NE(unfused.dx, unmasked.dx);  // the mask matters for these values
    EXPECT_NE(unfused.dbeta, unmasked.dbeta);
  }
  // A mask of another shape, or (from x̂) not bf16, is refused.
  Tensor dx, dg = to_tensor(Vec(C, 0.0), {C}), db = to_tensor(Vec(C, 0.0), {C});
  const Tensor short_y = to_tensor(Vec(C, 1.0), {1, C}), dy = to_tensor(w, xs);
  EXPECT_THROW(be.bn_backward(xt, &short_y, dy, C, G, mean, invstd, gamma, dx, dg, db), Error);
  Tensor xh(xs, be.device(), DType::BF16), yb(xs, be.device(), DType::BF16);
  be.bn_apply_xhat(xt, C, G, scale, shift, mean, invstd, nullptr, true, yb, xh);
  EXPECT_THROW(be.bn_backward_xhat(xh, &xt, dy, C, G, invstd, gamma, dx, dg, db), Error);
}

// A residual block's last BN, shortcut add and ReLU in one pass (bn_apply / bn_apply_xhat with a
// residual). f32: bit for bit bn_apply then add_relu (and, without ReLU, then add_inplace): the
// affine map is rounded to f32 before the residual is added (an FMA over the sum would fail this).
// bf16 outputs (bf16 x, f32 x → bf16 y, and from x̂): exactly the f32 fused result on the widened
// inputs rounded once, x̂ unchanged by the residual. 21 channels and 2·60 rows: vectorised runs and
// tails. Fails if the residual or the ReLU is dropped or applied in another order.
TEST_P(BatchNormOp, ResidualAddReluFusedEqualsUnfused) {
  Backend& be = backend();
  const int64_t C = 21, G = 2;
  const Shape xs{4, 5, 6, C};
  const Vec x = random_vec(numel_of(xs), 51, -3, 3), r = random_vec(numel_of(xs), 52, -2, 2);
  const Tensor gamma = to_tensor(random_vec(C, 53, 0.5, 1.5), {C}), beta = to_tensor(random_vec(C, 54, -0.5, 0.5), {C});
  Tensor rm = to_tensor(Vec(C, 0.0), {C}), rv = to_tensor(Vec(C, 1.0), {C}), nbt = to_tensor({0.0}, {1});
  Tensor mean, var, invstd, scale, shift;
  const Tensor xt = to_tensor(x, xs), rt = to_tensor(r, xs);
  be.bn_stats(xt, C, G, mean, var);
  be.bn_fold_train(mean, var, numel_of(xs) / C / G, gamma, beta, rm, rv, nbt, invstd, scale, shift);
  auto round_all = [](std::vector<float> v) {
    for (float& e : v) e = round_bf16(e);
    return v;
  };
  for (bool relu : {true, false}) {
    SCOPED_TRACE(relu ? "relu" : "no relu");
    Tensor fused, b, ref;
    be.bn_apply(xt, C, G, scale, shift, &rt, relu, fused);
    be.bn_apply(xt, C, G, scale, shift, nullptr, false, b);
    if (relu) {
      be.add_relu(b, rt, ref);
    } else {
      ref = to_tensor(to_vec(b), xs);
      be.add_inplace(ref, rt);
    }
    const std::vector<float> f32 = host(fused);
    EXPECT_EQ(f32, host(ref));
    EXPECT_NE(f32, host(b));  // the residual (and ReLU) changed the values
    // bf16 x and residual: the f32 pass on the widened values, rounded once.
    const Tensor xb = to_bf16_tensor(x, xs), rb = to_bf16_tensor(r, xs), rw = to_tensor(to_vec(rb), xs);
    Tensor yb, yw;
    be.bn_apply(xb, C, G, scale, shift, &rb, relu, yb);
    be.bn_apply(to_tensor(to_vec(xb), xs), C, G, scale, shift, &rw, relu, yw);
    ASSERT_EQ(yb.dtype(), DType::BF16);
    EXPECT_EQ(host(yb), round_all(host(yw)));
    // f32 x, bf16 residual and y (a bf16 encoder's momentum BN and inference).
    Tensor ym(xs, be.device(), DType::BF16), yr;
    be.bn_apply(xt, C, G, scale, shift, &rb, relu, ym);
    be.bn_apply(xt, C, G, scale, shift, &rw, relu, yr);
    EXPECT_EQ(host(ym), round_all(host(yr)));
    // From x̂ (a bf16 encoder's training BN): y as above, x̂ as without a residual.
    Tensor yh(xs, be.device(), DType::BF16), xh(xs, be.device(), DType::BF16), y0(xs, be.device(), DType::BF16),
        xh0(xs, be.device(), DType::BF16);
    be.bn_apply_xhat(xt, C, G, scale, shift, mean, invstd, &rb, relu, yh, xh);
    be.bn_apply_xhat(xt, C, G, scale, shift, mean, invstd, nullptr, relu, y0, xh0);
    EXPECT_EQ(host(yh), host(ym));
    EXPECT_EQ(host(xh), host(xh0));
  }
  // A residual of another dtype or size is refused.
  Tensor y, yb(xs, be.device(), DType::BF16), xh(xs, be.device(), DType::BF16);
  const Tensor rb = to_bf16_tensor(r, xs), short_r = to_tensor(Vec(C, 1.0), {1, C});
  EXPECT_THROW(be.bn_apply(xt, C, G, scale, shift, &rb, true, y), Error);
  EXPECT_THROW(be.bn_apply(xt, C, G, scale, shift, &short_r, true, y), Error);
  EXPECT_THROW(be.bn_apply_xhat(xt, C, G, scale, shift, mean, invstd, &rt, true, yb, xh), Error);
}

M2T_INSTANTIATE_BACKENDS(BatchNormOp);

// Spec §2 written out for one channel set: the reference's two sequential calls (x2 then x1).
struct MbnRef {
  Vec rm, rv;
  double alpha = 1;
  int64_t pairs = 0, K;
  bool quirk;
  bool stash = false;
  Vec sm, sv;
  Vec call(const Vec& x, int64_t C, const Vec& gamma, const Vec& beta) {
    const int64_t n = x.size() / C;
    Vec y(x.size()), mb(C), vb(C);
    for (int64_t c = 0; c < C; ++c) {
      double m = 0, v = 0;
      for (int64_t r = 0; r < n; ++r) m += x[r * C + c];
      m /= n;
      for (int64_t r = 0; r < n; ++r) v += (x[r * C + c] - m) * (x[r * C + c] - m);
      mb[c] = m;
      vb[c] = v / (n - 1);
      const double f = quirk ? double(n) / (n - 1) : 1.0;
      const double mt = alpha * m + (1 - alpha) * rm[c], vt = alpha * vb[c] * f + (1 - alpha) * rv[c];
      for (int64_t r = 0; r < n; ++r) y[r * C + c] = (x[r * C + c] - mt) / std::sqrt(vt + 1e-5) * gamma[c] + beta[c];
    }
    if (!stash) {
      sm = mb;
      sv = vb;
      stash = true;
    } else {
      const double f = quirk ? double(n) / (n - 1) : 1.0;
      for (int64_t c = 0; c < C; ++c) {
        rm[c] = alpha * (mb[c] + sm[c]) / 2 + (1 - alpha) * rm[c];
        rv[c] = alpha * ((vb[c] + sv[c]) / 2) * f + (1 - alpha) * rv[c];
      }
      stash = false;
      pairs += 1;
      alpha = (std::cos(M_PI * pairs / K) + 1) / 2;
    }
    return y;
  }
};

class MomentumBn : public ::testing::TestWithParam<std::tuple<Backend*, bool>> {
 protected:
  void SetUp() override { current_device() = std::get<0>(GetParam())->device(); }
  void TearDown() override { current_device() = Device::cpu(); }
};

TEST_P(MomentumBn, GroupedPassEqualsSequentialCalls) {
  const auto [bep, quirk] = GetParam();
  Backend& be = *bep;
  const int64_t C = 4, K = 5;
  const Shape half{3, 2, 2, C};
  BatchNorm bn("bn", C, be.device());
  bn.mbn = {K, quirk};
  const Vec gamma = random_vec(C, 31, 0.5, 1.5), beta = random_vec(C, 32, -0.5, 0.5);
  set(bn.gamma.value, gamma);
  set(bn.beta.value, beta);
  MbnRef ref{Vec(C, 0.0), Vec(C, 1.0), 1.0, 0, K, quirk};
  for (int it = 0; it < 4; ++it) {  // several iterations so α < 1 and running stats matter
    const Vec x2 = random_vec(numel_of(half), 100 + it, -1, 2), x1 = random_vec(numel_of(half), 200 + it, -2, 1);
    Vec both(x2);
    both.insert(both.end(), x1.begin(), x1.end());
    Tensor xt = to_tensor(both, {6, 2, 2, C}), y;
    bn.forward(be, xt, y, 2, BnMode::Momentum, false);
    Vec yref = ref.call(x2, C, gamma, beta);
    const Vec y1 = ref.call(x1, C, gamma, beta);
    yref.insert(yref.end(), y1.begin(), y1.end());
    expect_close(y, yref, 1e-5, "momentum BN output");
    EXPECT_NEAR(bn.alpha, ref.alpha, 1e-12);
    EXPECT_EQ(bn.pairs, ref.pairs);
    for (int64_t c = 0; c < C; ++c) {
      EXPECT_NEAR(host(bn.running_mean)[c], ref.rm[c], 1e-5);
      EXPECT_NEAR(host(bn.running_var)[c], ref.rv[c], 1e-5);
    }
  }
  EXPECT_NEAR(bn.alpha, (std::cos(M_PI * 4 / 5) + 1) / 2, 1e-12);
}

INSTANTIATE_TEST_SUITE_P(Quirk1, MomentumBn,
                         ::testing::Combine(::testing::ValuesIn(built_backends()), ::testing::Values(true, false)),
                         [](const ::testing::TestParamInfo<std::tuple<Backend*, bool>>& i) {
                           return backend_param_name({std::get<0>(i.param), i.index}) +
                                  (std::get<1>(i.param) ? "_quirk1" : "_plain");
                         });

}  // namespace
}  // namespace m2t::test
