#include "agent/apimap/sketch.h"

#include <algorithm>
#include <cmath>

namespace vigil::apimap {
namespace {

const double kGamma = (1 + Sketch::kAlpha) / (1 - Sketch::kAlpha);
const double kLogGamma = std::log(kGamma);

}  // namespace

int Sketch::index(double v) const { return static_cast<int>(std::ceil(std::log(v) / kLogGamma)); }

double Sketch::value_of(int i) const { return 2 * std::pow(kGamma, i) / (kGamma + 1); }

void Sketch::grow_to(int i) {
  if (bins_.empty()) {
    offset_ = i;
    bins_.assign(1, 0);
    return;
  }
  if (i < offset_) {
    bins_.insert(bins_.begin(), static_cast<size_t>(offset_ - i), 0);
    offset_ = i;
  } else if (i >= offset_ + static_cast<int>(bins_.size())) {
    bins_.resize(static_cast<size_t>(i - offset_ + 1), 0);
  }
  if (bins_.size() > kMaxBins) {  // fold the lowest buckets: high quantiles stay exact
    size_t fold = bins_.size() - kMaxBins;
    uint64_t folded = 0;
    for (size_t k = 0; k <= fold; ++k) folded += bins_[k];
    bins_.erase(bins_.begin(), bins_.begin() + static_cast<long>(fold));
    bins_[0] = folded;
    offset_ += static_cast<int>(fold);
  }
}

void Sketch::add(double v) {
  ++count_;
  if (!(v > 1.0)) {
    ++zero_;
    return;
  }
  int i = index(v);
  if (bins_.empty() || i < offset_ || i >= offset_ + static_cast<int>(bins_.size())) grow_to(i);
  ++bins_[static_cast<size_t>(std::max(0, i - offset_))];
}

void Sketch::merge(const Sketch& o) {
  count_ += o.count_;
  zero_ += o.zero_;
  if (o.bins_.empty()) return;
  grow_to(o.offset_);
  grow_to(o.offset_ + static_cast<int>(o.bins_.size()) - 1);
  for (size_t k = 0; k < o.bins_.size(); ++k) {
    int i = o.offset_ + static_cast<int>(k);
    bins_[static_cast<size_t>(std::max(0, i - offset_))] += o.bins_[k];
  }
}

double Sketch::quantile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  auto rank = static_cast<uint64_t>(q * static_cast<double>(count_ - 1));
  if (rank < zero_) return 0;
  uint64_t seen = zero_;
  for (size_t k = 0; k < bins_.size(); ++k) {
    seen += bins_[k];
    if (seen > rank) return value_of(offset_ + static_cast<int>(k));
  }
  return value_of(offset_ + static_cast<int>(bins_.size()) - 1);
}

nlohmann::json Sketch::to_json() const {
  return {{"alpha", kAlpha}, {"offset", offset_}, {"bins", bins_}, {"zero", zero_}};
}

bool Sketch::from_json(const nlohmann::json& j, Sketch& out) {
  if (!j.is_object() || j.value("alpha", 0.0) != kAlpha) return false;
  const auto& b = j.value("bins", nlohmann::json::array());
  if (!b.is_array() || b.size() > kMaxBins) return false;
  out = Sketch{};
  out.offset_ = j.value("offset", 0);
  out.zero_ = j.value("zero", uint64_t{0});
  out.count_ = out.zero_;
  for (const auto& v : b) {
    if (!v.is_number_unsigned()) return false;
    out.bins_.push_back(v.get<uint64_t>());
    out.count_ += out.bins_.back();
  }
  return true;
}

}  // namespace vigil::apimap
