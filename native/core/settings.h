// The engine settings table (core/engine_settings.json): every Momentum2Teacher setting's name,
// type, default, range and doc string, defined once and shared with the binding and the
// experiment schema (lib/engine-settings.ts). The C++ checks below are the safety net behind them.
#pragma once
#include <string>
#include <vector>

namespace m2t {

struct Setting {
  std::string key;   // JS name, dotted for nested keys: "optimizer.momentum"
  std::string type;  // "number" | "integer" | "boolean" | "enum" | "device"
  double number_default = 0;
  bool bool_default = false;
  std::string string_default;
  bool has_default = false, required = false;
  bool has_min = false, has_max = false, min_exclusive = false, max_exclusive = false;
  double min = 0, max = 0;
  std::vector<std::string> values;  // enum
  std::string experiment;           // path in a pretrain experiment, if any
  std::string doc;

  bool in_range(double v) const;
  std::string range_str() const;  // "[0, 1)"
};

const std::vector<Setting>& engine_settings();
// Throws Error for a key not in the table (a programming error).
const Setting& engine_setting(const std::string& key);

// RangeError "<key>: must be in <range>, got <v>" (or "an integer ..." / "one of ...").
void check_setting(const std::string& key, double v);
void check_setting(const std::string& key, const std::string& v);
double setting_default_number(const std::string& key);
bool setting_default_bool(const std::string& key);
std::string setting_default_string(const std::string& key);

}  // namespace m2t
