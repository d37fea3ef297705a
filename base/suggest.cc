#include "base/suggest.h"

#include <algorithm>
#include <limits>
#include <vector>

#include <fmt/format.h>

namespace vigil {

std::string suggest_key(std::string_view key, std::initializer_list<std::string_view> allowed) {
  size_t best = std::numeric_limits<size_t>::max();
  std::string_view best_key;
  for (auto candidate : allowed) {
    // Levenshtein distance, two rows.
    std::vector<size_t> prev(candidate.size() + 1), cur(candidate.size() + 1);
    for (size_t j = 0; j <= candidate.size(); ++j) prev[j] = j;
    for (size_t i = 1; i <= key.size(); ++i) {
      cur[0] = i;
      for (size_t j = 1; j <= candidate.size(); ++j)
        cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1,
                           prev[j - 1] + (key[i - 1] == candidate[j - 1] ? 0 : 1)});
      std::swap(prev, cur);
    }
    if (prev[candidate.size()] < best) {
      best = prev[candidate.size()];
      best_key = candidate;
    }
  }
  if (best <= 2) return fmt::format(" (did you mean '{}'?)", best_key);
  std::string list;
  for (auto a : allowed) list += (list.empty() ? "" : ", ") + std::string(a);
  return fmt::format(" (expected one of: {})", list);
}

}  // namespace vigil
