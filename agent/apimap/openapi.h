// OpenAPI 3.1 from an inventory document: servers, paths with typed path
// parameters, inferred request and response schemas, security schemes and
// per-operation security, and x-vigil-* statistics.
#pragma once

#include <string_view>

#include <nlohmann/json.hpp>

namespace vigil::apimap {

struct OpenApiOptions {
  std::string_view service;        // empty: every service
  std::string_view role = "server";  // server: what is served; client: what is called
  std::string_view title;
};

nlohmann::json to_openapi(const nlohmann::json& inventory, const OpenApiOptions& o);

}  // namespace vigil::apimap
