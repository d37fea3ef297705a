// Declared API specs (OpenAPI 2/3, YAML or JSON): the operations a team says it
// serves, with their deprecation flags. The inventory templates by them, and
// `vigil map diff` compares what was observed against them.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "base/result.h"

namespace vigil::apimap {

struct DeclaredOperation {
  std::string method;  // upper case
  std::string path;    // with the servers' base path prepended ("/api/v1/users/{id}")
  bool deprecated = false;
};

Result<std::vector<DeclaredOperation>> parse_spec(std::string_view text, std::string_view source);
Result<std::vector<DeclaredOperation>> load_spec(const std::string& path);

// True when the observed template and the declared path name the same route:
// segment by segment, a declared parameter matches anything, an observed one
// matches only a declared parameter.
bool same_route(std::string_view observed, std::string_view declared);

// {"shadow":[…],"zombie":[…],"orphan":[…]} of {method, path}; server-role endpoints only.
nlohmann::json diff_against_spec(const nlohmann::json& inventory, const std::vector<DeclaredOperation>& ops);

}  // namespace vigil::apimap
