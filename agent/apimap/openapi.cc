#include "agent/apimap/openapi.h"

#include <map>
#include <set>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "agent/apimap/schema.h"
#include "agent/apimap/template.h"

namespace vigil::apimap {
namespace {

using nlohmann::json;

std::string operation_id(const std::string& method, const std::string& path, std::set<std::string>& taken) {
  std::string id;
  for (char c : method) id += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  bool up = true;
  for (char c : path) {
    if (std::isalnum(static_cast<unsigned char>(c))) {
      id += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
      up = false;
    } else {
      up = true;
    }
  }
  std::string base = id;
  for (int k = 2; !taken.insert(id).second; ++k) id = base + std::to_string(k);
  return id;
}

json param_schema(const std::string& type) {
  if (type == "integer") return {{"type", "integer"}};
  if (type == "uuid") return {{"type", "string"}, {"format", "uuid"}};
  if (type == "date") return {{"type", "string"}, {"format", "date"}};
  return {{"type", "string"}};
}

// The security scheme (components name, definition) of one auth scheme name.
std::optional<std::pair<std::string, json>> scheme_for(const std::string& auth, const json& e) {
  if (auth == "basic") return std::pair{std::string("basicAuth"), json{{"type", "http"}, {"scheme", "basic"}}};
  if (auth == "bearer") return std::pair{std::string("bearerAuth"), json{{"type", "http"}, {"scheme", "bearer"}}};
  if (auth == "jwt")
    return std::pair{std::string("jwtAuth"), json{{"type", "http"}, {"scheme", "bearer"}, {"bearerFormat", "JWT"}}};
  std::string key = e.value("api_key_name", "X-API-Key");
  if (auth == "api_key_header")
    return std::pair{"apiKeyHeader_" + key, json{{"type", "apiKey"}, {"in", "header"}, {"name", key}}};
  if (auth == "api_key_query")
    return std::pair{"apiKeyQuery_" + key, json{{"type", "apiKey"}, {"in", "query"}, {"name", key}}};
  if (auth == "cookie") {
    std::string name = e.value("cookie_name", "session");
    return std::pair{"cookie_" + name, json{{"type", "apiKey"}, {"in", "cookie"}, {"name", name}}};
  }
  if (auth == "mtls") return std::pair{std::string("mutualTLS"), json{{"type", "mutualTLS"}}};
  return std::nullopt;
}

std::string safe_component(std::string s) {
  for (char& c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '.' && c != '-' && c != '_') c = '_';
  return s;
}

}  // namespace

json to_openapi(const json& inv, const OpenApiOptions& o) {
  json paths = json::object(), schemes = json::object();
  std::set<std::string> servers, services, op_ids;
  for (const auto& e : inv.value("endpoints", json::array())) {
    if (!o.service.empty() && e.value("service", "") != o.service) continue;
    if (e.value("role", "") != o.role) continue;
    std::string method = e.value("method", "GET"), path = e.value("path", "/");
    std::string lm;
    for (char c : method) lm += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    static const std::set<std::string> kMethods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"};
    if (!kMethods.count(lm)) continue;
    if (path.empty() || path[0] != '/') continue;
    bool tls = e.value("tls", false);
    servers.insert(fmt::format("{}://{}", tls ? "https" : "http", e.value("host", "localhost")));
    services.insert(e.value("service", ""));
    json& item = paths[path];
    if (item.contains(lm)) {  // the same route from another host or service: counts add
      item[lm]["x-vigil-count"] = item[lm]["x-vigil-count"].get<uint64_t>() + e.value("count", uint64_t{0});
      continue;
    }
    json op = {{"operationId", operation_id(method, path, op_ids)},
               {"summary", fmt::format("{} {} (observed)", method, path)},
               {"tags", json::array({e.value("service", "")})}};
    json params = json::array();
    std::map<std::string, std::string> types;
    for (const auto& p : e.value("params", json::array())) types[p.value("name", "")] = p.value("type", "string");
    // Every {name} of the template, in order.
    for (size_t i = path.find('{'); i != std::string::npos; i = path.find('{', i + 1)) {
      size_t close = path.find('}', i);
      if (close == std::string::npos) break;
      std::string name = path.substr(i + 1, close - i - 1);
      params.push_back({{"name", name}, {"in", "path"}, {"required", true},
                        {"schema", param_schema(types.count(name) ? types[name] : "string")}});
    }
    if (!params.empty()) op["parameters"] = params;
    const json& req = e.value("request", json::object());
    Schema rs;
    if (req.contains("schema") && Schema::from_state(req["schema"], rs) && !rs.empty()) {
      json content = json::object();
      auto types_seen = req.value("content_types", json::array());
      std::string ct = types_seen.empty() ? "application/json" : types_seen[0].get<std::string>();
      content[ct] = {{"schema", rs.to_json_schema()}};
      op["requestBody"] = {{"content", content}};
    }
    const json& resp = e.value("response", json::object());
    Schema ps;
    bool has_schema = resp.contains("schema") && Schema::from_state(resp["schema"], ps) && !ps.empty();
    json responses = json::object();
    const json status = e.value("status", json::object());
    for (const auto& [code, n] : status.items()) {
      int c = std::atoi(code.c_str());
      if (c < 100 || c > 599) continue;
      json r = {{"description", fmt::format("Observed {} times", n.get<uint64_t>())}};
      if (has_schema && c >= 200 && c < 300) {
        auto ts = resp.value("content_types", json::array());
        std::string ct = ts.empty() ? "application/json" : ts[0].get<std::string>();
        r["content"] = {{ct, {{"schema", ps.to_json_schema()}}}};
      }
      responses[code] = r;
    }
    if (responses.empty()) responses["default"] = {{"description", "No response observed"}};
    op["responses"] = responses;
    json security = json::array();
    for (const auto& a : e.value("auth", json::array())) {
      std::string name = a.get<std::string>();
      if (name == "none") {
        security.push_back(json::object());  // callable without credentials
        continue;
      }
      if (auto s = scheme_for(name, e)) {
        std::string comp = safe_component(s->first);
        schemes[comp] = s->second;
        security.push_back({{comp, json::array()}});
      }
    }
    op["security"] = security.empty() ? json::array({json::object()}) : security;
    op["x-vigil-count"] = e.value("count", uint64_t{0});
    op["x-vigil-latency-ms"] = e.value("latency_ms", json::object());
    op["x-vigil-first-seen"] = e.value("first_seen", "");
    op["x-vigil-last-seen"] = e.value("last_seen", "");
    op["x-vigil-sensitive"] = e.value("sensitive", json::array());
    op["x-vigil-risk"] = e.value("risk", json::object());
    op["x-vigil-service"] = e.value("service", "");
    if (e.value("deprecated", false)) op["deprecated"] = true;
    item[lm] = op;
  }
  std::string title = o.title.empty()
                          ? (o.service.empty() ? std::string("Observed APIs") : fmt::format("{} (observed)", o.service))
                          : std::string(o.title);
  json doc = {{"openapi", "3.1.0"},
              {"info",
               {{"title", title},
                {"version", "observed"},
                {"description", fmt::format("Generated by vigil from observed {} traffic of {} on {}.",
                                            o.role == "server" ? "served" : "outgoing", fmt::join(services, ", "),
                                            fmt::join(inv.value("nodes", json::array()), ", "))},
                {"license", {{"name", "Observed traffic, no license asserted"}, {"identifier", "CC0-1.0"}}}}},
              {"paths", paths}};
  json srv = json::array();
  for (const auto& s : servers) srv.push_back({{"url", s}});
  if (srv.empty()) srv.push_back({{"url", "/"}});
  doc["servers"] = srv;
  if (!schemes.empty()) doc["components"] = {{"securitySchemes", schemes}};
  return doc;
}

}  // namespace vigil::apimap
