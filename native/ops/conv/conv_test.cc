// Convolution (oneDNN, NHWC) against a double-precision direct convolution, and its two
// backward passes against finite differences of that reference.
#include <cmath>
#include <memory>
#include <string>

#include "core/backend.h"
#include "core/error.h"
#include "tests/gradcheck.h"

namespace m2t::test {
namespace {

struct Geo {
  int64_t n, h, w, cin, cout, k, stride, pad;
};

Vec conv_ref(const Geo& g, const Vec& x, const Vec& wt) {
  const int64_t ho = (g.h + 2 * g.pad - g.k) / g.stride + 1, wo = (g.w + 2 * g.pad - g.k) / g.stride + 1;
  Vec y(g.n * ho * wo * g.cout, 0.0);
  for (int64_t n = 0; n < g.n; ++n)
    for (int64_t oh = 0; oh < ho; ++oh)
      for (int64_t ow = 0; ow < wo; ++ow)
        for (int64_t o = 0; o < g.cout; ++o) {
          double s = 0;
          for (int64_t i = 0; i < g.cin; ++i)
            for (int64_t kh = 0; kh < g.k; ++kh)
              for (int64_t kw = 0; kw < g.k; ++kw) {
                const int64_t ih = oh * g.stride - g.pad + kh, iw = ow * g.stride - g.pad + kw;
                if (ih < 0 || ih >= g.h || iw < 0 || iw >= g.w) continue;
                s += x[((n * g.h + ih) * g.w + iw) * g.cin + i] * wt[((o * g.cin + i) * g.k + kh) * g.k + kw];
              }
          y[((n * ho + oh) * wo + ow) * g.cout + o] = s;
        }
  return y;
}

class ConvGrad : public ::testing::TestWithParam<std::tuple<Backend*, Geo>> {
 protected:
  void SetUp() override { current_device() = std::get<0>(GetParam())->device(); }
  void TearDown() override { current_device() = Device::cpu(); }
};

TEST_P(ConvGrad, ForwardAndBackwardMatchReference) {
  const Geo g = std::get<1>(GetParam());
  Backend& be = *std::get<0>(GetParam());
  auto kernel = be.make_conv({g.cin, g.cout, g.k, g.stride, g.pad});
  const Shape xs{g.n, g.h, g.w, g.cin}, ws{g.cout, g.cin, g.k, g.k};
  const Vec x = random_vec(numel_of(xs), 1), wt = random_vec(numel_of(ws), 2);
  const Tensor xt = to_tensor(x, xs), wtt = to_tensor(wt, ws);
  Tensor y;
  kernel->forward(xt, wtt, y);
  const Vec yref = conv_ref(g, x, wt);
  expect_close(y, yref, 1e-5, "conv forward");

  const Vec w = random_vec(yref.size(), 3);
  const Tensor dy = to_tensor(w, y.shape());
  Tensor dx, dw(ws, current_device());
  kernel->backward_data(dy, wtt, xs, dx);
  kernel->backward_weights(xt, dy, dw);
  expect_gradient([&](const Vec& xv) { return dot(w, conv_ref(g, xv, wt)); }, x, dx, 1e-4, "conv dx");
  expect_gradient([&](const Vec& wv) { return dot(w, conv_ref(g, x, wv)); }, wt, dw, 1e-4, "conv dw");

  // Cached primitives serve a second batch size, and the first again.
  const Shape xs2{g.n + 1, g.h, g.w, g.cin};
  Tensor x2 = to_tensor(random_vec(numel_of(xs2), 4), xs2), y2;
  kernel->forward(x2, wtt, y2);
  EXPECT_EQ(y2.dim(0), g.n + 1);
  Tensor y3;
  kernel->forward(xt, wtt, y3);
  expect_close(y3, yref, 1e-5, "conv forward after another shape");
}

// Mixed precision: a bf16 kernel reads bf16 x / dy and writes bf16 y / dx, and each equals the f32
// kernel's output on the same bf16-rounded operands (x and w forward; dy and w for dx) rounded once
// to bf16 (expect_bf16_of: within one bf16 ulp, and rounded somewhere); dw stays f32 and equals the
// f32 kernel's dw of the rounded x and dy up to f32 accumulation order. The f32 kernel is itself
// checked against the exact reference above. Skipped on CPUs without bf16 convolution (the error
// path: test/precision.test.ts).
TEST_P(ConvGrad, Bf16IsTheF32KernelOfRoundedOperandsRoundedOnce) {
  const Geo g = std::get<1>(GetParam());
  Backend& be = *std::get<0>(GetParam());
  std::unique_ptr<ConvKernel> kernel;
  try {
    kernel = be.make_conv({g.cin, g.cout, g.k, g.stride, g.pad, DType::BF16});
  } catch (const Error& e) {
    GTEST_SKIP() << e.what();
  }
  auto f32 = be.make_conv({g.cin, g.cout, g.k, g.stride, g.pad});
  const Shape xs{g.n, g.h, g.w, g.cin}, ws{g.cout, g.cin, g.k, g.k};
  const Vec x = random_vec(numel_of(xs), 1), wt = random_vec(numel_of(ws), 2);
  const Vec xr = bf16_rounded(x), wr = bf16_rounded(wt);
  ASSERT_NE(xr, x);  // the rounding is not a no-op on these values
  const Tensor xb = to_bf16_tensor(x, xs), w = to_tensor(wt, ws);  // master weights stay f32
  Tensor y, yf;
  kernel->forward(xb, w, y);
  f32->forward(to_tensor(xr, xs), to_tensor(wr, ws), yf);
  expect_bf16_of(y, yf, "bf16 conv forward");

  const Vec d = random_vec(yf.numel(), 3);
  const Tensor dyb = to_bf16_tensor(d, yf.shape()), dyr = to_tensor(bf16_rounded(d), yf.shape());
  Tensor dx, dxf, dw(ws, current_device()), dwf(ws, current_device());
  kernel->backward_data(dyb, w, xs, dx);
  kernel->backward_weights(xb, dyb, dw);
  f32->backward_data(dyr, to_tensor(wr, ws), xs, dxf);
  f32->backward_weights(to_tensor(xr, xs), dyr, dwf);
  expect_bf16_of(dx, dxf, "bf16 conv dx");
  EXPECT_EQ(dw.dtype(), DType::F32);
  expect_close(dw, to_vec(dwf), 1e-5, "bf16 conv dw (f32)");

  // Activations of the wrong type are refused, naming the operand.
  Tensor y2;
  try {
    kernel->forward(to_tensor(x, xs), w, y2);
    ADD_FAILURE() << "a bf16 conv accepted an f32 input";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("conv: x is f32, expected bf16"), std::string::npos) << e.what();
  }
  EXPECT_THROW(f32->forward(xb, w, y2), Error);
}

INSTANTIATE_TEST_SUITE_P(Geometries, ConvGrad,
                         ::testing::Combine(::testing::ValuesIn(built_backends()),
                         ::testing::Values(Geo{2, 7, 7, 3, 4, 3, 1, 1},    // 3x3 same
                                           Geo{2, 11, 9, 3, 5, 7, 2, 3},   // ImageNet stem
                                           Geo{2, 8, 8, 6, 8, 1, 2, 0},    // downsample 1x1 / 2
                                           Geo{1, 8, 8, 8, 16, 3, 2, 1},   // strided 3x3
                                           Geo{3, 5, 5, 16, 4, 1, 1, 0})),  // bottleneck 1x1
                         [](const ::testing::TestParamInfo<std::tuple<Backend*, Geo>>& i) {
                           const Geo& g = std::get<1>(i.param);
                           std::string dev = std::get<0>(i.param)->device().str();
                           for (char& c : dev)
                             if (c == ':') c = '_';
                           return dev + "_k" + std::to_string(g.k) + "s" + std::to_string(g.stride) + "p" + std::to_string(g.pad) +
                                  "_" + std::to_string(g.cin) + "to" + std::to_string(g.cout);
                         });

}  // namespace
}  // namespace m2t::test
