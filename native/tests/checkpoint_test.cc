// Checkpoints: save → load → continue is bitwise identical to never stopping, and a bad
// checkpoint (missing, extra or mis-shaped key, foreign file) changes nothing and names the problem.
#include <unistd.h>

#include <cstdio>

#include "core/error.h"
#include "models/m2t.h"
#include "tests/testutil.h"

namespace m2t::test {
namespace {

M2TConfig small_config(const std::string& opt, uint64_t seed) {
  M2TConfig c;
  c.encoder = {"resnet18", 0.125, true};
  c.hidden_dim = 32;
  c.out_dim = 16;
  c.total_iterations = 6;
  c.seed = seed;
  c.optimizer.name = opt;
  return c;
}

std::vector<float> flat_state(const Momentum2Teacher& m) {
  std::vector<float> v;
  for (const Registry* r : {&m.model_state(), &m.optimizer_state()})
    for (const Entry& e : r->entries()) v.insert(v.end(), e.value->data(), e.value->data() + e.value->numel());
  return v;
}

Tensor view(int it, int v) { return gen("v" + std::to_string(v) + "." + std::to_string(it), {4, 16, 16, 3}); }

class Resume : public ::testing::TestWithParam<const char*> {};

TEST_P(Resume, SaveLoadContinueIsBitwiseIdentical) {
  const std::string path = ::testing::TempDir() + "m2t_ckpt_" + std::to_string(::getpid()) + ".safetensors";
  Momentum2Teacher straight(cpu_backend(), small_config(GetParam(), 1));
  Momentum2Teacher first(cpu_backend(), small_config(GetParam(), 1));
  for (int it = 0; it < 4; ++it) straight.step(view(it, 1), view(it, 2), 0.1 - 0.01 * it);
  for (int it = 0; it < 2; ++it) first.step(view(it, 1), view(it, 2), 0.1 - 0.01 * it);
  first.save(path, {{"user", "kept"}});
  Momentum2Teacher resumed(cpu_backend(), small_config(GetParam(), 99));  // other init: all of it must load
  const auto meta = resumed.load(path);
  EXPECT_EQ(meta.at("user"), "kept");
  EXPECT_EQ(resumed.iteration(), 2);
  EXPECT_EQ(resumed.alpha(), first.alpha());
  for (int it = 2; it < 4; ++it) resumed.step(view(it, 1), view(it, 2), 0.1 - 0.01 * it);
  EXPECT_EQ(resumed.iteration(), straight.iteration());
  EXPECT_EQ(resumed.alpha(), straight.alpha());
  EXPECT_EQ(resumed.tau_at(resumed.iteration()), straight.tau_at(straight.iteration()));
  const auto a = flat_state(straight), b = flat_state(resumed);
  ASSERT_EQ(a.size(), b.size());
  int64_t diff = 0;
  for (size_t i = 0; i < a.size(); ++i) diff += a[i] != b[i];
  EXPECT_EQ(diff, 0) << "elements differing after resume";
  std::remove(path.c_str());
}

INSTANTIATE_TEST_SUITE_P(Optimizers, Resume, ::testing::Values("sgd", "lars"));

TEST(Checkpoint, BadStateChangesNothingAndNamesTheKey) {
  Momentum2Teacher m(cpu_backend(), small_config("sgd", 1));
  const auto before = flat_state(m);
  std::map<std::string, StTensor> sd;
  for (const Entry& e : m.model_state().entries())
    sd[e.name] = {"F32", e.value->shape(), std::vector<float>(e.value->numel(), 0.5f)};
  auto expect_msg = [&](const std::map<std::string, StTensor>& s, const std::string& needle) {
    try {
      m.load_state(s, false);
      FAIL() << "expected an error mentioning " << needle;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
    EXPECT_EQ(flat_state(m), before) << "a failed load changed the model";
  };
  auto missing = sd;
  missing.erase("teacher_encoder.layer1.0.conv1.weight");
  expect_msg(missing, "missing key 'teacher_encoder.layer1.0.conv1.weight'");
  auto extra = sd;
  extra["student_encoder.fc.9.weight"] = {"F32", {1}, {0}};
  expect_msg(extra, "unexpected key 'student_encoder.fc.9.weight'");
  auto shaped = sd;
  shaped["student_encoder.conv1.weight"].shape = {8, 3, 7, 7};
  expect_msg(shaped, "'student_encoder.conv1.weight' has shape [8, 3, 7, 7], expected [8, 3, 3, 3]");
}

TEST(Checkpoint, ForeignOrMismatchedFileIsRejected) {
  const std::string path = ::testing::TempDir() + "m2t_foreign_" + std::to_string(::getpid()) + ".safetensors";
  const float a[] = {1};
  write_safetensors(path, {{"x", a, {1}}}, {});
  Momentum2Teacher m(cpu_backend(), small_config("sgd", 1));
  const auto before = flat_state(m);
  try {
    m.load(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find(path), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("m2t.state"), std::string::npos) << e.what();
  }
  // A checkpoint of another width: shapes differ, nothing changes.
  M2TConfig wide = small_config("sgd", 1);
  wide.encoder.width = 0.25;
  Momentum2Teacher other(cpu_backend(), wide);
  other.save(path, {});
  try {
    m.load(path);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("has shape"), std::string::npos) << e.what();
  }
  EXPECT_EQ(flat_state(m), before);
  EXPECT_EQ(m.iteration(), 0);
  std::remove(path.c_str());
}

}  // namespace
}  // namespace m2t::test
