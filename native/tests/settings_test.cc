// The engine settings table (core/engine_settings.json) against the core's own checks: every
// numeric key is accepted by validate() exactly where the table's range says, and the config
// structs' defaults are the table's.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <map>

#include "core/error.h"
#include "core/settings.h"
#include "models/m2t.h"

namespace m2t::test {
namespace {

M2TConfig base() {
  M2TConfig c;
  c.total_iterations = 10;
  return c;
}

// How each numeric key lands in an M2TConfig.
const std::map<std::string, std::function<void(M2TConfig&, double)>>& setters() {
  static const std::map<std::string, std::function<void(M2TConfig&, double)>> m = {
      {"width", [](M2TConfig& c, double v) { c.encoder.width = v; }},
      {"hiddenDim", [](M2TConfig& c, double v) { c.hidden_dim = static_cast<int64_t>(v); }},
      {"outDim", [](M2TConfig& c, double v) { c.out_dim = static_cast<int64_t>(v); }},
      {"totalIterations", [](M2TConfig& c, double v) { c.total_iterations = static_cast<int64_t>(v); }},
      {"tauBase", [](M2TConfig& c, double v) { c.tau_base = v; }},
      {"optimizer.momentum", [](M2TConfig& c, double v) { c.optimizer.momentum = v; }},
      {"optimizer.weightDecay", [](M2TConfig& c, double v) { c.optimizer.weight_decay = v; }},
      {"optimizer.eta", [](M2TConfig& c, double v) { c.optimizer.eta = v; }},
      {"seed", [](M2TConfig& c, double v) { c.seed = static_cast<uint64_t>(v); }},
      {"threads", [](M2TConfig& c, double v) { c.threads = static_cast<int>(v); }},
  };
  return m;
}

bool accepted(const M2TConfig& c) {
  try {
    validate(c);
    return true;
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::RangeError) << e.what();
    return false;
  }
}

TEST(EngineSettings, EveryNumericKeyIsCheckedByTheCoreAsTheTableSays) {
  int walked = 0;
  for (const Setting& s : engine_settings()) {
    if (s.type != "number" && s.type != "integer") continue;
    auto it = setters().find(s.key);
    ASSERT_NE(it, setters().end()) << "no core field for setting " << s.key;
    std::vector<double> vs;
    if (s.has_default) vs.push_back(s.number_default);
    for (const auto& [has, b] : {std::pair{s.has_min, s.min}, std::pair{s.has_max, s.max}}) {
      if (!has) continue;
      const double eps = std::max(std::fabs(b) * 1e-9, s.type == "integer" ? 1.0 : 1e-12);
      vs.insert(vs.end(), {b, b - eps, b + eps});
    }
    for (double v : vs) {
      // Integer fields cannot hold negative or fractional values: only the float keys see those.
      if (s.type == "integer" && (v < 0 || v != std::floor(v))) continue;
      M2TConfig c = base();
      it->second(c, v);
      EXPECT_EQ(accepted(c), s.in_range(v)) << s.key << " = " << v << " (range " << s.range_str() << ")";
    }
    ++walked;
  }
  EXPECT_EQ(walked, static_cast<int>(setters().size()));
}

TEST(EngineSettings, EnumsAndDefaultsComeFromTheTable) {
  const M2TConfig c;
  EXPECT_EQ(c.encoder.arch, setting_default_string("arch"));
  EXPECT_EQ(c.encoder.width, setting_default_number("width"));
  EXPECT_EQ(c.encoder.small_stem, setting_default_bool("smallStem"));
  EXPECT_EQ(c.hidden_dim, setting_default_number("hiddenDim"));
  EXPECT_EQ(c.out_dim, setting_default_number("outDim"));
  EXPECT_EQ(c.tau_base, setting_default_number("tauBase"));
  EXPECT_EQ(c.optimizer.name, setting_default_string("optimizer.name"));
  EXPECT_EQ(c.optimizer.momentum, setting_default_number("optimizer.momentum"));
  EXPECT_EQ(c.optimizer.weight_decay, setting_default_number("optimizer.weightDecay"));
  EXPECT_EQ(c.optimizer.eta, setting_default_number("optimizer.eta"));
  EXPECT_EQ(c.bn_double_unbias, setting_default_bool("bnDoubleUnbias"));
  for (const std::string& a : engine_setting("arch").values) {
    M2TConfig m = base();
    m.encoder.arch = a;
    EXPECT_TRUE(accepted(m)) << a;
  }
  M2TConfig bad = base();
  bad.encoder.arch = "resnet19";
  EXPECT_FALSE(accepted(bad));
  bad = base();
  bad.optimizer.name = "adam";
  EXPECT_FALSE(accepted(bad));
  EXPECT_EQ(engine_setting("optimizer.momentum").range_str(), "[0, 1)");
  EXPECT_THROW(engine_setting("nope"), Error);
}

}  // namespace
}  // namespace m2t::test
