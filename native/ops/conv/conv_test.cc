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

// The layer's bf16 kernel, or null with the reason when this CPU has no bf16 convolution.
std::unique_ptr<ConvKernel> bf16_kernel(Backend& be, const Geo& g, std::string& why) {
  try {
    return be.make_conv({g.cin, g.cout, g.k, g.stride, g.pad, DType::BF16});
  } catch (const Error& e) {
    why = e.what();
    return nullptr;
  }
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

// Mixed precision: a bf16 kernel equals the exact convolution of bf16-rounded operands (x and w
// forward; dy and w for dx; x and dy for dw) up to f32 accumulation, so the casts are the only
// approximation. Skipped on CPUs without bf16 convolution (the error path: test/precision.test.ts).
TEST_P(ConvGrad, Bf16MatchesReferenceOfRoundedOperands) {
  const Geo g = std::get<1>(GetParam());
  Backend& be = *std::get<0>(GetParam());
  std::string why;
  const std::unique_ptr<ConvKernel> kernel = bf16_kernel(be, g, why);
  if (!kernel) GTEST_SKIP() << why;
  const Shape xs{g.n, g.h, g.w, g.cin}, ws{g.cout, g.cin, g.k, g.k};
  const Vec x = random_vec(numel_of(xs), 1), wt = random_vec(numel_of(ws), 2);
  auto rounded = [](Vec v) {
    for (double& d : v) d = round_bf16(static_cast<float>(d));
    return v;
  };
  const Vec xr = rounded(x), wr = rounded(wt);
  ASSERT_NE(xr, x);  // the rounding is not a no-op on these values
  Tensor y;
  kernel->forward(to_tensor(x, xs), to_tensor(wt, ws), y);
  const Vec yref = conv_ref(g, xr, wr);
  expect_close(y, yref, 1e-5, "bf16 conv forward");
  // The f32 result of the unrounded operands differs by bf16's precision: the test can tell.
  const Vec yf = conv_ref(g, x, wt);
  double err = 0, mag = 0;
  for (size_t i = 0; i < yf.size(); ++i) err = std::max(err, std::fabs(yf[i] - yref[i])), mag = std::max(mag, std::fabs(yf[i]));
  EXPECT_GT(err / mag, 1e-4);

  const Vec w = random_vec(yref.size(), 3), wround = rounded(w);
  Tensor dx, dw(ws, current_device());
  kernel->backward_data(to_tensor(w, y.shape()), to_tensor(wt, ws), xs, dx);
  kernel->backward_weights(to_tensor(x, xs), to_tensor(w, y.shape()), dw);
  expect_gradient([&](const Vec& xv) { return dot(wround, conv_ref(g, xv, wr)); }, x, dx, 1e-4, "bf16 conv dx");
  expect_gradient([&](const Vec& wv) { return dot(wround, conv_ref(g, xr, wv)); }, wt, dw, 1e-4, "bf16 conv dw");
}

// A bf16 kernel reads bf16 x and dy as they are (what the bf16 encoder stores): the same bits as
// for the f32 tensors it rounds itself, y, dx and dw f32 either way. An fp32 kernel refuses bf16.
TEST_P(ConvGrad, Bf16ReadsBf16ActivationsAsItsOwnRounding) {
  const Geo g = std::get<1>(GetParam());
  Backend& be = *std::get<0>(GetParam());
  std::string why;
  const std::unique_ptr<ConvKernel> kernel = bf16_kernel(be, g, why);
  if (!kernel) GTEST_SKIP() << why;
  const Shape xs{g.n, g.h, g.w, g.cin}, ws{g.cout, g.cin, g.k, g.k};
  const Vec x = random_vec(numel_of(xs), 4), wt = random_vec(numel_of(ws), 5);
  const Tensor w = to_tensor(wt, ws);
  Tensor yf, yb;
  kernel->forward(to_tensor(x, xs), w, yf);
  kernel->forward(to_bf16_tensor(x, xs), w, yb);
  ASSERT_EQ(yb.dtype(), DType::F32);
  EXPECT_EQ(host(yb), host(yf));
  const Vec d = random_vec(yf.numel(), 6);
  Tensor dxf, dxb, dwf(ws, current_device()), dwb(ws, current_device());
  kernel->backward_data(to_tensor(d, yf.shape()), w, xs, dxf);
  kernel->backward_data(to_bf16_tensor(d, yf.shape()), w, xs, dxb);
  ASSERT_EQ(dxb.dtype(), DType::F32);
  EXPECT_EQ(host(dxb), host(dxf));
  kernel->backward_weights(to_tensor(x, xs), to_tensor(d, yf.shape()), dwf);
  kernel->backward_weights(to_bf16_tensor(x, xs), to_bf16_tensor(d, yf.shape()), dwb);
  EXPECT_EQ(host(dwb), host(dwf));
  // A bf16 output tensor is refused (y is f32), and so is bf16 input to an fp32 layer.
  Tensor ybad(yf.shape(), current_device(), DType::BF16);
  EXPECT_THROW(kernel->forward(to_bf16_tensor(x, xs), w, ybad), Error);
  auto f32 = be.make_conv({g.cin, g.cout, g.k, g.stride, g.pad, DType::F32});
  EXPECT_THROW(f32->forward(to_bf16_tensor(x, xs), w, yf), Error);
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
