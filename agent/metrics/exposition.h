// The Prometheus text format (0.0.4): families with HELP and TYPE, samples with
// escaped label values. Only what the format needs; no registry: vigild builds
// the page from its counters at each scrape.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace vigil::metrics {

using Label = std::pair<std::string_view, std::string_view>;

class Exposition {
 public:
  // Starts a family: `type` is counter | gauge. Counter names end in _total.
  Exposition& family(std::string_view name, std::string_view type, std::string_view help);
  // One sample of the current family.
  Exposition& sample(std::initializer_list<Label> labels, double value);
  Exposition& sample(double value) { return sample({}, value); }
  const std::string& text() const { return out_; }

 private:
  std::string out_, name_;
};

// \ " and newline escaped, as label values need.
std::string escape_label_value(std::string_view v);

}  // namespace vigil::metrics
