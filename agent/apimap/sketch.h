// A mergeable quantile sketch (DDSketch): logarithmic buckets with relative
// accuracy `alpha` (1%). Two sketches with the same alpha merge exactly, so the
// inventories of several nodes combine without losing accuracy.
#pragma once

#include <cstdint>
#include <vector>

#include <nlohmann/json.hpp>

namespace vigil::apimap {

class Sketch {
 public:
  static constexpr double kAlpha = 0.01;
  static constexpr size_t kMaxBins = 2048;  // beyond: the lowest buckets fold together

  void add(double value);
  void merge(const Sketch& other);
  // q in [0,1]; 0 when empty. Within alpha of the exact rank-q value.
  double quantile(double q) const;
  uint64_t count() const { return count_; }
  size_t bins() const { return bins_.size(); }
  size_t memory_bytes() const { return sizeof(*this) + bins_.capacity() * sizeof(uint64_t); }

  nlohmann::json to_json() const;  // {"alpha", "offset", "bins", "zero"}
  static bool from_json(const nlohmann::json& j, Sketch& out);

 private:
  int index(double v) const;
  double value_of(int index) const;
  void grow_to(int index);

  int offset_ = 0;  // bucket index of bins_[0]
  std::vector<uint64_t> bins_;
  uint64_t zero_ = 0;  // values too small to index (<= 1)
  uint64_t count_ = 0;
};

}  // namespace vigil::apimap
