#include "core/settings.h"

#include <cmath>
#include <sstream>

#include <nlohmann/json.hpp>

#include "core/engine_settings_json.h"
#include "core/error.h"

namespace m2t {

bool Setting::in_range(double v) const {
  if (!std::isfinite(v)) return false;
  if (has_min && (min_exclusive ? v <= min : v < min)) return false;
  if (has_max && (max_exclusive ? v >= max : v > max)) return false;
  return type != "integer" || v == std::floor(v);
}

std::string Setting::range_str() const {
  std::ostringstream os;
  os.precision(17);
  os << (has_min && !min_exclusive ? '[' : '(');
  if (has_min) os << min; else os << "-inf";
  os << ", ";
  if (has_max) os << max; else os << "inf";
  os << (has_max && !max_exclusive ? ']' : ')');
  return os.str();
}

const std::vector<Setting>& engine_settings() {
  static const std::vector<Setting> table = [] {
    std::vector<Setting> out;
    const auto j = nlohmann::json::parse(generated::kEngineSettingsJson);
    for (const auto& e : j.at("settings")) {
      Setting s;
      s.key = e.at("key").get<std::string>();
      s.type = e.at("type").get<std::string>();
      s.doc = e.value("doc", "");
      s.experiment = e.value("experiment", "");
      s.required = e.value("required", false);
      const auto& d = e.at("default");
      s.has_default = !d.is_null();
      if (d.is_number()) s.number_default = d.get<double>();
      if (d.is_boolean()) s.bool_default = d.get<bool>();
      if (d.is_string()) s.string_default = d.get<std::string>();
      if (e.contains("min")) s.has_min = true, s.min = e["min"].get<double>();
      if (e.contains("max")) s.has_max = true, s.max = e["max"].get<double>();
      s.min_exclusive = e.value("minExclusive", false);
      s.max_exclusive = e.value("maxExclusive", false);
      if (e.contains("values")) s.values = e["values"].get<std::vector<std::string>>();
      out.push_back(std::move(s));
    }
    return out;
  }();
  return table;
}

const Setting& engine_setting(const std::string& key) {
  for (const Setting& s : engine_settings())
    if (s.key == key) return s;
  fail(ErrorKind::Error, "engine settings: no setting '", key, "'");
}

void check_setting(const std::string& key, double v) {
  const Setting& s = engine_setting(key);
  if (s.in_range(v)) return;
  fail(ErrorKind::RangeError, key, ": must be ", s.type == "integer" ? "an integer" : "a finite number", " in ",
       s.range_str(), ", got ", v);
}

void check_setting(const std::string& key, const std::string& v) {
  const Setting& s = engine_setting(key);
  for (const std::string& ok : s.values)
    if (ok == v) return;
  std::string list;
  for (size_t i = 0; i < s.values.size(); ++i) list += (i ? ", '" : "'") + s.values[i] + "'";
  fail(ErrorKind::RangeError, key, ": expected one of ", list, ", got '", v, "'");
}

double setting_default_number(const std::string& key) { return engine_setting(key).number_default; }
bool setting_default_bool(const std::string& key) { return engine_setting(key).bool_default; }
std::string setting_default_string(const std::string& key) { return engine_setting(key).string_default; }

}  // namespace m2t
