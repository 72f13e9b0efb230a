// Max pool 3x3/2/1 and global average pool against double references and finite differences.
#include <cfloat>

#include "core/backend.h"
#include "tests/gradcheck.h"

namespace m2t::test {
namespace {

class PoolOp : public BackendTest {};

Vec maxpool_ref(const Vec& x, int64_t N, int64_t H, int64_t W, int64_t C) {
  const int64_t Ho = (H - 1) / 2 + 1, Wo = (W - 1) / 2 + 1;
  Vec y(N * Ho * Wo * C, -DBL_MAX);
  for (int64_t n = 0; n < N; ++n)
    for (int64_t oh = 0; oh < Ho; ++oh)
      for (int64_t ow = 0; ow < Wo; ++ow)
        for (int64_t c = 0; c < C; ++c)
          for (int64_t kh = 0; kh < 3; ++kh)
            for (int64_t kw = 0; kw < 3; ++kw) {
              const int64_t ih = oh * 2 - 1 + kh, iw = ow * 2 - 1 + kw;
              if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
              double& o = y[((n * Ho + oh) * Wo + ow) * C + c];
              o = std::max(o, x[((n * H + ih) * W + iw) * C + c]);
            }
  return y;
}

TEST_P(PoolOp, MaxPoolForwardBackward) {
  for (auto [H, C] : {std::pair<int64_t, int64_t>{7, 3}, {8, 3}, {8, 21}}) {  // 21: vector + remainder lanes
    const int64_t N = 2, W = H + 1;
    const Shape xs{N, H, W, C};
    const Vec x = random_vec(numel_of(xs), 41);  // distinct values: no ties within a window
    Tensor xt = to_tensor(x, xs), y, dx;
    Tensor idx;
    Backend& be = backend();
    be.maxpool_forward(xt, y, idx);
    const Vec yref = maxpool_ref(x, N, H, W, C);
    expect_close(y, yref, 1e-7, "maxpool forward");
    const Vec w = random_vec(yref.size(), 42);
    be.maxpool_backward(to_tensor(w, y.shape()), idx, xs, dx);
    expect_gradient([&](const Vec& xv) { return dot(w, maxpool_ref(xv, N, H, W, C)); }, x, dx, 1e-4, "maxpool dx",
                    400, 1e-7);
  }
}

TEST_P(PoolOp, AvgPoolForwardBackward) {
  const int64_t N = 3, H = 4, W = 5, C = 6;
  const Shape xs{N, H, W, C};
  const Vec x = random_vec(numel_of(xs), 51);
  auto ref = [&](const Vec& xv) {
    Vec y(N * C, 0.0);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t p = 0; p < H * W; ++p)
        for (int64_t c = 0; c < C; ++c) y[n * C + c] += xv[(n * H * W + p) * C + c] / (H * W);
    return y;
  };
  Backend& be = backend();
  Tensor y, dx;
  be.avgpool_forward(to_tensor(x, xs), y);
  expect_close(y, ref(x), 1e-6, "avgpool forward");
  const Vec w = random_vec(N * C, 52);
  be.avgpool_backward(to_tensor(w, {N, C}), xs, dx);
  expect_gradient([&](const Vec& xv) { return dot(w, ref(xv)); }, x, dx, 1e-5, "avgpool dx");
}

// bf16 activations: max pool forwards a bf16 input exactly (a maximum is one of the inputs) with
// the f32 pass's argmax; its backward sums an input's (up to four) gradients in f32 and rounds
// once; the average pool reads bf16 and writes f32 features, equal to the f32 pass on the rounded
// input, and its backward writes a bf16 gradient rounded once (expect_bf16_of).
TEST_P(PoolOp, Bf16IsF32OfRoundedInputs) {
  Backend& be = backend();
  const int64_t N = 2, H = 9, W = 8, C = 5;
  const Shape xs{N, H, W, C};
  const Vec x = random_vec(numel_of(xs), 43);
  const Tensor xb = to_bf16_tensor(x, xs), xf = to_tensor(bf16_rounded(x), xs);
  Tensor yb, yf, ib, jf;
  be.maxpool_forward(xb, yb, ib);
  be.maxpool_forward(xf, yf, jf);
  ASSERT_EQ(yb.dtype(), DType::BF16);
  EXPECT_EQ(host(yb), host(yf));
  std::vector<int32_t> i1(ib.numel()), i2(jf.numel());
  ib.copy_to_host(i1.data());
  jf.copy_to_host(i2.data());
  EXPECT_EQ(i1, i2);
  const Vec w = random_vec(yf.numel(), 44);
  Tensor dxb, dxf;
  be.maxpool_backward(to_bf16_tensor(w, yf.shape()), ib, xs, dxb);
  be.maxpool_backward(to_tensor(bf16_rounded(w), yf.shape()), jf, xs, dxf);
  expect_bf16_of(dxb, dxf, "bf16 maxpool dx");

  Tensor fb, ff;
  be.avgpool_forward(xb, fb);
  be.avgpool_forward(xf, ff);
  EXPECT_EQ(fb.dtype(), DType::F32);
  EXPECT_EQ(host(fb), host(ff));
  const Vec d = random_vec(N * C, 45);
  Tensor gb(xs, current_device(), DType::BF16), gf;
  be.avgpool_backward(to_tensor(d, {N, C}), xs, gb);
  be.avgpool_backward(to_tensor(d, {N, C}), xs, gf);
  expect_bf16_of(gb, gf, "bf16 avgpool dx");
}

M2T_INSTANTIATE_BACKENDS(PoolOp);

}  // namespace
}  // namespace m2t::test
