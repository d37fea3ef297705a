#include "agent/metrics/exposition.h"

#include <cmath>

#include <fmt/format.h>

namespace vigil::metrics {

std::string escape_label_value(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
  return out;
}

Exposition& Exposition::family(std::string_view name, std::string_view type, std::string_view help) {
  name_ = std::string(name);
  std::string h;
  for (char c : help) {  // HELP escapes \ and newline
    if (c == '\\') h += "\\\\";
    else if (c == '\n') h += "\\n";
    else h += c;
  }
  out_ += fmt::format("# HELP {} {}\n# TYPE {} {}\n", name, h, name, type);
  return *this;
}

Exposition& Exposition::sample(std::initializer_list<Label> labels, double value) {
  out_ += name_;
  if (labels.size()) {
    out_ += '{';
    bool first = true;
    for (const auto& [k, v] : labels) {
      if (!first) out_ += ',';
      first = false;
      out_ += fmt::format("{}=\"{}\"", k, escape_label_value(v));
    }
    out_ += '}';
  }
  if (std::isnan(value)) out_ += " NaN\n";
  else if (value == std::floor(value) && std::fabs(value) < 1e15) out_ += fmt::format(" {}\n", static_cast<int64_t>(value));
  else out_ += fmt::format(" {}\n", value);
  return *this;
}

}  // namespace vigil::metrics
