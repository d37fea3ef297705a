// Screens YAML text before yaml-cpp builds nodes from it. yaml-cpp 0.7 (Debian
// 12) loops forever in LoadAll, and silently drops the rest of the text in
// Load, when a document starts with a stray ',' (found by tests/fuzz/policy_fuzz).
// Also rejects the control characters YAML forbids.
#pragma once

#include <cstddef>
#include <string_view>

#include "base/result.h"

namespace vigil {

// Ok with the number of documents, or "source:line:col: what".
Result<size_t> check_yaml(std::string_view text, std::string_view source);

}  // namespace vigil
