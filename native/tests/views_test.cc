// Both views in one batched pass with statistics per view equal the reference's two separate
// passes (docs/algorithm.md, "Batch norm"): student outputs and gradients, teacher outputs and momentum-BN state.
#include <cstring>

#include "models/resnet.h"
#include "tests/testutil.h"

namespace m2t::test {
namespace {

Tensor concat(const Tensor& a, const Tensor& b) {
  Shape s = a.shape();
  s[0] *= 2;
  Tensor t(s);
  std::memcpy(t.data(), a.data(), a.numel() * sizeof(float));
  std::memcpy(t.data() + a.numel(), b.data(), b.numel() * sizeof(float));
  return t;
}

struct Net {
  explicit Net(const char* arch) : enc(cpu_backend(), {arch, 0.125, false}, "e.") {
    enc.register_in(reg);
    enc.init(7);
    for (Param* p : reg.params())  // non-trivial γ/β
      if (p->kind == ParamKind::BnWeight || p->kind == ParamKind::BnBias)
        gen_fill(p->value.data(), p->value.numel(), p->name, p->kind == ParamKind::BnWeight ? 1 : 0, 0.2);
  }
  void zero_bn_grads() {
    for (Param* p : reg.params())
      if (p->kind == ParamKind::BnWeight || p->kind == ParamKind::BnBias) p->grad.zero();
  }
  ResNet enc;
  Registry reg;
};

class Views : public ::testing::TestWithParam<const char*> {};

TEST_P(Views, StudentBatchedEqualsSeparate) {
  const Tensor x1 = gen("x1", {3, 32, 32, 3}), x2 = gen("x2", {3, 32, 32, 3});
  Net batched(GetParam()), separate(GetParam());
  const int64_t F = batched.enc.feature_dim();
  const Tensor w = gen("w", {6, F});  // L = Σ w·features, so dL/dfeatures = w

  const Tensor x12 = concat(x1, x2);  // must outlive backward (layers keep their inputs)
  Tensor fb = batched.enc.forward(x12, 2, BnMode::Train).clone();
  batched.zero_bn_grads();
  batched.enc.backward(w);

  // Separate passes: gradients of the two calls add up (as autograd accumulates them).
  Tensor w1({3, F}), w2({3, F});
  std::memcpy(w1.data(), w.data(), 3 * F * sizeof(float));
  std::memcpy(w2.data(), w.data() + 3 * F, 3 * F * sizeof(float));
  std::vector<Tensor> acc;
  for (Param* p : separate.reg.params()) acc.emplace_back(p->value.shape());
  Tensor f[2];
  for (int v = 0; v < 2; ++v) {
    f[v] = separate.enc.forward(v == 0 ? x1 : x2, 1, BnMode::Train).clone();
    separate.zero_bn_grads();
    separate.enc.backward(v == 0 ? w1 : w2);
    for (size_t i = 0; i < acc.size(); ++i) cpu_backend().add_inplace(acc[i], separate.reg.params()[i]->grad);
  }
  const Tensor fsep = concat(f[0], f[1]);  // [view 1; view 2]
  EXPECT_LE(rel_err(fb, fsep), 1e-5) << "features";
  for (size_t i = 0; i < acc.size(); ++i)
    EXPECT_LE(rel_err(batched.reg.params()[i]->grad, acc[i]), 1e-4) << batched.reg.params()[i]->name;
  // Running statistics: two updates, one per view, in the same order.
  for (size_t i = 0; i < batched.reg.entries().size(); ++i) {
    const Entry& e = batched.reg.entries()[i];
    if (e.is_param) continue;
    EXPECT_LE(rel_err(*e.value, *separate.reg.entries()[i].value), 1e-5) << e.name;
  }
}

TEST_P(Views, TeacherBatchedEqualsSeparate) {
  Net batched(GetParam()), separate(GetParam());
  for (Net* n : {&batched, &separate})
    for (BatchNorm* bn : n->enc.bns()) bn->mbn = {4, true};
  for (int it = 0; it < 3; ++it) {  // α moves away from 1, running stats start to matter
    const Tensor x1 = gen("x1." + std::to_string(it), {3, 32, 32, 3});
    const Tensor x2 = gen("x2." + std::to_string(it), {3, 32, 32, 3});
    const Tensor kb = batched.enc.forward(concat(x2, x1), 2, BnMode::Momentum).clone();
    const Tensor k1 = separate.enc.forward(x2, 1, BnMode::Momentum).clone();
    const Tensor k2 = separate.enc.forward(x1, 1, BnMode::Momentum).clone();
    EXPECT_LE(rel_err(kb, concat(k1, k2)), 1e-5) << "teacher features, iteration " << it;
  }
  const auto bb = batched.enc.bns(), bs = separate.enc.bns();
  for (size_t i = 0; i < bb.size(); ++i) {
    EXPECT_EQ(bb[i]->pairs, 3);
    EXPECT_EQ(bb[i]->alpha, bs[i]->alpha);
    EXPECT_FALSE(bb[i]->stash_full);
    EXPECT_LE(rel_err(bb[i]->running_mean, bs[i]->running_mean), 1e-5) << bb[i]->name();
    EXPECT_LE(rel_err(bb[i]->running_var, bs[i]->running_var), 1e-5) << bb[i]->name();
  }
}

INSTANTIATE_TEST_SUITE_P(Archs, Views, ::testing::Values("resnet18", "resnet50"));

}  // namespace
}  // namespace m2t::test
