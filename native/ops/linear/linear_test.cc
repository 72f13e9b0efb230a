// Fully connected layer against a double reference and finite differences.
#include "core/backend.h"
#include "tests/gradcheck.h"

namespace m2t::test {
namespace {

class LinearOp : public BackendTest {};

TEST_P(LinearOp, ForwardBackward) {
  const int64_t N = 5, in = 7, out = 3;
  const Vec x = random_vec(N * in, 71), wt = random_vec(out * in, 72), b = random_vec(out, 73);
  auto ref = [&](const Vec& xv, const Vec& wv, const Vec& bv) {
    Vec y(N * out);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t o = 0; o < out; ++o) {
        double s = bv[o];
        for (int64_t i = 0; i < in; ++i) s += xv[n * in + i] * wv[o * in + i];
        y[n * out + o] = s;
      }
    return y;
  };
  Backend& be = backend();
  const Tensor xt = to_tensor(x, {N, in}), wtt = to_tensor(wt, {out, in}), bt = to_tensor(b, {out});
  Tensor y;
  be.linear_forward(xt, wtt, bt, y);
  expect_close(y, ref(x, wt, b), 1e-6, "linear forward");
  const Vec w = random_vec(N * out, 74);
  Tensor dx, dw({out, in}, current_device()), db({out}, current_device());
  be.linear_backward(xt, wtt, to_tensor(w, {N, out}), &dx, dw, db);
  expect_gradient([&](const Vec& v) { return dot(w, ref(v, wt, b)); }, x, dx, 1e-5, "linear dx");
  expect_gradient([&](const Vec& v) { return dot(w, ref(x, v, b)); }, wt, dw, 1e-5, "linear dw");
  expect_gradient([&](const Vec& v) { return dot(w, ref(x, wt, v)); }, b, db, 1e-5, "linear db");
}

M2T_INSTANTIATE_BACKENDS(LinearOp);

}  // namespace
}  // namespace m2t::test
