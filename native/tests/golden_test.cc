// The native core against goldens written by tools/golden/make_goldens.py (PyTorch, from the
// spec; see tools/golden/SCHEMA.md). Tolerances: float32 throughout, so loss, parameters,
// buffers and optimizer state must agree to a relative error of 1e-4 (of each tensor's largest
// magnitude); forward features to 1e-4; first-iteration gradients to 1e-3 (they pass through
// ~20 layers of float32 reductions in different orders).
#include <cmath>

#include "io/safetensors.h"
#include "models/m2t.h"
#include "models/probe.h"
#include "tests/testutil.h"

namespace m2t::test {
namespace {

const std::string kDir = M2T_GOLDEN_DIR;

const StTensor& at(const StFile& f, const std::string& k) {
  auto it = f.tensors.find(k);
  if (it == f.tensors.end()) throw std::runtime_error("golden key missing: " + k);
  return it->second;
}

// Relative to the tensor's largest magnitude; tensors that are mathematically zero (Linear biases
// followed by BatchNorm get zero gradient) hold only rounding noise, so an absolute 1e-6 passes too.
void expect_tensor(const float* got, int64_t n, const StTensor& want, double tol, const std::string& what) {
  ASSERT_EQ(static_cast<size_t>(n), want.data.size()) << what;
  double abs_err = 0;
  for (int64_t i = 0; i < n; ++i) abs_err = std::max(abs_err, std::fabs(double(got[i]) - want.data[i]));
  if (abs_err <= 1e-6) return;
  EXPECT_LE(rel_err(got, want.data.data(), n), tol) << what << " (max abs error " << abs_err << ")";
}

// The generator's value for a parameter, by role (SCHEMA.md).
void gen_param(const Param& p, float* out, const std::string& name) {
  const auto& s = p.value.shape();
  switch (p.kind) {
    case ParamKind::ConvWeight: return gen_fill(out, p.value.numel(), name, 0, std::sqrt(6.0 / (s[0] * s[2] * s[3])));
    case ParamKind::LinearWeight: return gen_fill(out, p.value.numel(), name, 0, 1 / std::sqrt(double(s[1])));
    case ParamKind::LinearBias: break;  // needs fan_in: handled by the caller
    case ParamKind::BnWeight: return gen_fill(out, p.value.numel(), name, 1, 0.1);
    case ParamKind::BnBias: return gen_fill(out, p.value.numel(), name, 0, 0.1);
  }
}

void gen_params(const std::vector<Param*>& params, const std::function<std::string(const std::string&)>& rename) {
  int64_t last_fan_in = 1;
  for (Param* p : params) {
    if (p->kind == ParamKind::LinearWeight) last_fan_in = p->value.dim(1);
    if (p->kind == ParamKind::LinearBias)
      gen_fill(p->value.data(), p->value.numel(), rename(p->name), 0, 1 / std::sqrt(double(last_fan_in)));
    else
      gen_param(*p, p->value.data(), rename(p->name));
  }
}

Tensor image(const std::string& name, const Shape& nchw) { return nchw_to_nhwc(gen(name, nchw)); }

TEST(Golden, GeneratorMatchesBitForBit) {
  const StFile f = read_safetensors(kDir + "/gen_check.safetensors");
  const Tensor a = gen("check", {16});
  const Tensor b = gen("student_encoder.conv1.weight", {8, 3, 7, 7}, 0, std::sqrt(6.0 / (8 * 49)));
  for (int i = 0; i < 16; ++i) EXPECT_EQ(a.data()[i], at(f, "check").data[i]) << i;
  for (int64_t i = 0; i < b.numel(); ++i) ASSERT_EQ(b.data()[i], at(f, "student_encoder.conv1.weight").data[i]) << i;
}

class ResNetGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(ResNetGolden, TrainAndInferenceForward) {
  const std::string arch = GetParam();
  const StFile f = read_safetensors(kDir + "/resnet_forward.safetensors");
  ResNet net(cpu_backend(), {arch, 0.125, false}, "encoder.");
  Registry reg;
  net.register_in(reg);
  gen_params(reg.params(), [](const std::string& n) { return n; });
  const Tensor x = image("input", {4, 3, 64, 64});
  Tensor train_out = net.forward(x, 1, BnMode::Train).clone();
  expect_tensor(train_out.data(), train_out.numel(), at(f, arch + ".train_out"), 1e-4, arch + " train forward");
  for (const Entry& e : reg.entries()) {
    if (e.is_param || e.is_int64) continue;
    const std::string key = arch + ".buffer." + e.name.substr(8);  // drop "encoder."
    expect_tensor(e.value->data(), e.value->numel(), at(f, key), 1e-4, key);
  }
  const Tensor& eval_out = net.forward(x, 1, BnMode::Infer);
  expect_tensor(eval_out.data(), eval_out.numel(), at(f, arch + ".eval_out"), 1e-4, arch + " inference forward");
}

INSTANTIATE_TEST_SUITE_P(Archs, ResNetGolden, ::testing::Values("resnet18", "resnet50"));

class M2TGolden : public ::testing::TestWithParam<const char*> {};

TEST_P(M2TGolden, ThreeIterations) {
  const std::string opt = GetParam();
  const StFile f = read_safetensors(kDir + "/m2t_" + opt + ".safetensors");
  M2TConfig c;
  c.encoder = {"resnet18", 0.125, false};
  c.hidden_dim = 64;
  c.out_dim = 32;
  c.total_iterations = 10;
  c.optimizer = opt == "sgd" ? OptimizerConfig{"sgd", 0.9, 1e-4, 0.001} : OptimizerConfig{"lars", 0.9, 1e-5, 0.001};
  Momentum2Teacher m(cpu_backend(), c);
  // Student from the generator; the teacher an exact copy (its buffers stay at their init).
  gen_params(m.student_params(), [](const std::string& n) { return n; });
  std::map<std::string, StTensor> state;
  std::map<std::string, const float*> student_values;
  for (const Param* p : m.student_params()) student_values[p->name] = p->value.data();
  for (const Entry& e : m.model_state().entries()) {
    StTensor t{"F32", e.value->shape(), std::vector<float>(e.value->data(), e.value->data() + e.value->numel())};
    if (e.is_param && e.name.rfind("teacher_encoder.", 0) == 0) {
      const float* s = student_values.at("student_encoder." + e.name.substr(16));
      t.data.assign(s, s + e.value->numel());
    }
    state.emplace(e.name, std::move(t));
  }
  m.load_state(state, false);

  const StTensor& lr = at(f, "lr");
  for (int t = 0; t < 3; ++t) {
    const Tensor v1 = image("view1.it" + std::to_string(t), {8, 3, 32, 32});
    const Tensor v2 = image("view2.it" + std::to_string(t), {8, 3, 32, 32});
    const StepResult r = m.step(v1, v2, lr.data[t]);
    EXPECT_NEAR(r.loss, at(f, "loss").data[t], 1e-4 * std::fabs(at(f, "loss").data[t])) << "loss of step " << t;
    EXPECT_NEAR(r.tau, at(f, "tau").data[t], 1e-6) << "tau of step " << t;
    EXPECT_NEAR(r.alpha, at(f, "alpha").data[t], 1e-6) << "alpha after step " << t;
    if (t == 0)
      for (const Param* p : m.student_params())
        expect_tensor(p->grad.data(), p->grad.numel(), at(f, "grad." + p->name), 1e-3, "gradient " + p->name);
  }
  int checked = 0;
  for (const Entry& e : m.model_state().entries()) {
    const std::string key = (e.name.rfind("student_", 0) == 0 ? "student." : "teacher.") + e.name;
    expect_tensor(e.value->data(), e.value->numel(), at(f, key), 1e-4, key);
    ++checked;
  }
  for (const Entry& e : m.optimizer_state().entries()) {
    const std::string name = e.name.substr(10, e.name.size() - 10 - 16);  // optimizer.<name>.momentum_buffer
    expect_tensor(e.value->data(), e.value->numel(), at(f, "momentum." + name), 1e-3, "momentum buffer " + name);
    ++checked;
  }
  EXPECT_EQ(checked, 129 + 138 + 72);
}

INSTANTIATE_TEST_SUITE_P(Optimizers, M2TGolden, ::testing::Values("sgd", "lars"));

TEST(Golden, LinearProbeTwoStepsAndEvaluation) {
  const StFile f = read_safetensors(kDir + "/linear_probe.safetensors");
  ProbeConfig c;
  c.encoder = {"resnet18", 0.125, false};
  c.num_classes = 10;
  LinearProbe probe(cpu_backend(), c);
  // Encoder from the generator under teacher_encoder.* names, with non-trivial running stats.
  std::map<std::string, StTensor> enc;
  int64_t probe_feat = probe.feature_dim();
  {
    ResNet tmp(cpu_backend(), c.encoder, "teacher_encoder.");
    Registry reg;
    tmp.register_in(reg);
    gen_params(reg.params(), [](const std::string& n) { return n; });
    for (const Entry& e : reg.entries()) {
      StTensor t{"F32", e.value->shape(), std::vector<float>(e.value->data(), e.value->data() + e.value->numel())};
      const bool is_mean = e.name.size() > 13 && e.name.substr(e.name.size() - 13) == ".running_mean";
      const bool is_var = e.name.size() > 12 && e.name.substr(e.name.size() - 12) == ".running_var";
      if (is_mean) gen_fill(t.data.data(), t.data.size(), e.name, 0, 0.1);
      if (is_var) gen_fill(t.data.data(), t.data.size(), e.name, 1, 0.5);
      enc.emplace(e.name, std::move(t));
    }
  }
  probe.load_encoder(enc, "teacher_encoder.");
  std::map<std::string, StTensor> state;
  for (const Entry& e : probe.model_state().entries()) {
    StTensor t{"F32", e.value->shape(), std::vector<float>(e.value->data(), e.value->data() + e.value->numel())};
    if (e.name == "fc.0.weight" || e.name == "fc.0.bias") gen_fill(t.data.data(), t.data.size(), e.name, 0, 0.125);
    if (e.name == "fc.1.weight") gen_fill(t.data.data(), t.data.size(), e.name, 1, 0.1);
    if (e.name == "fc.1.bias") gen_fill(t.data.data(), t.data.size(), e.name, 0, 0.1);
    state.emplace(e.name, std::move(t));
  }
  probe.load_state(state, false);
  EXPECT_EQ(probe_feat, 64);

  const Tensor x = image("probe.input", {8, 3, 32, 32});
  std::vector<int32_t> labels(8);
  for (int i = 0; i < 8; ++i) labels[i] = i % 10;
  for (int t = 0; t < 2; ++t) {
    const double loss = probe.train_step(x, to_labels(labels), at(f, "lr").data[t]);
    EXPECT_NEAR(loss, at(f, "loss").data[t], 1e-4 * std::fabs(at(f, "loss").data[t])) << "probe loss " << t;
    if (t == 0) expect_tensor(probe.last_logits().data(), 80, at(f, "train_logits"), 1e-4, "train logits");
  }
  Tensor logits;
  probe.evaluate(x, to_labels(labels), logits);
  expect_tensor(logits.data(), logits.numel(), at(f, "eval_logits"), 1e-4, "eval logits");
  for (const Entry& e : probe.model_state().entries()) {
    if (e.name.rfind("fc.", 0) != 0) continue;
    expect_tensor(e.value->data(), e.value->numel(), at(f, e.name), 1e-4, e.name);
  }
  for (const Entry& e : probe.optimizer_state().entries()) {
    const std::string name = e.name.substr(10, e.name.size() - 10 - 16);
    expect_tensor(e.value->data(), e.value->numel(), at(f, "momentum." + name), 1e-3, "momentum " + name);
  }
}

}  // namespace
}  // namespace m2t::test
