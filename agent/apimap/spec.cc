#include "agent/apimap/spec.h"

#include <algorithm>
#include <set>

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include "agent/apimap/template.h"
#include "base/file.h"

namespace vigil::apimap {
namespace {

std::string base_path(const YAML::Node& root) {
  std::string url;
  if (root["servers"] && root["servers"].IsSequence() && root["servers"].size() > 0 && root["servers"][0]["url"])
    url = root["servers"][0]["url"].as<std::string>();
  else if (root["basePath"])
    url = root["basePath"].as<std::string>();
  if (auto scheme = url.find("://"); scheme != std::string::npos) {
    auto slash = url.find('/', scheme + 3);
    url = slash == std::string::npos ? "" : url.substr(slash);
  }
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (!url.empty() && url.front() != '/') url.clear();  // a relative or templated server URL
  return url;
}

bool is_param(std::string_view s) { return s.find('{') != std::string_view::npos; }

}  // namespace

Result<std::vector<DeclaredOperation>> parse_spec(std::string_view text, std::string_view source) {
  YAML::Node root;
  try {
    root = YAML::Load(std::string(text));
  } catch (const YAML::Exception& e) {
    return Error{fmt::format("{}:{}:{}: not a YAML or JSON document: {}", source, e.mark.line + 1, e.mark.column + 1,
                             e.msg)};
  }
  if (!root.IsMap() || !(root["openapi"] || root["swagger"]))
    return Error{fmt::format("{}: not an OpenAPI document (no `openapi:` or `swagger:` key)", source)};
  const YAML::Node paths = root["paths"];
  if (!paths || !paths.IsMap()) return Error{fmt::format("{}: OpenAPI document without `paths`", source)};
  std::vector<DeclaredOperation> ops;
  std::string base = base_path(root);
  static const std::set<std::string> kMethods = {"get", "put", "post", "delete", "options", "head", "patch", "trace"};
  try {
    for (const auto& p : paths) {
      std::string path = p.first.as<std::string>();
      if (path.empty() || path[0] != '/')
        return Error{fmt::format("{}:{}: path `{}` does not start with /", source, p.first.Mark().line + 1, path)};
      if (!p.second.IsMap()) continue;
      for (const auto& m : p.second) {
        std::string method = m.first.as<std::string>();
        if (!kMethods.count(method)) continue;
        DeclaredOperation op;
        std::transform(method.begin(), method.end(), method.begin(), ::toupper);
        op.method = method;
        op.path = base + path;
        op.deprecated = m.second.IsMap() && m.second["deprecated"] && m.second["deprecated"].as<bool>(false);
        ops.push_back(std::move(op));
      }
    }
  } catch (const YAML::Exception& e) {
    return Error{fmt::format("{}:{}:{}: {}", source, e.mark.line + 1, e.mark.column + 1, e.msg)};
  }
  return ops;
}

Result<std::vector<DeclaredOperation>> load_spec(const std::string& path) {
  auto text = read_file(path);
  if (!text) return text.error();
  return parse_spec(*text, path);
}

bool same_route(std::string_view observed, std::string_view declared) {
  std::vector<std::string_view> a, b;
  split_path(observed, a);
  split_path(declared, b);
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (is_param(b[i])) {
      auto open = b[i].find('{'), close = b[i].find('}');
      std::string_view prefix = b[i].substr(0, open), suffix = b[i].substr(close + 1);
      if (!a[i].starts_with(prefix) || !a[i].ends_with(suffix)) return false;
      continue;
    }
    if (is_param(a[i]) || a[i] != b[i]) return false;
  }
  return true;
}

nlohmann::json diff_against_spec(const nlohmann::json& inventory, const std::vector<DeclaredOperation>& ops) {
  nlohmann::json shadow = nlohmann::json::array(), zombie = nlohmann::json::array(),
                 orphan = nlohmann::json::array();
  std::vector<bool> seen(ops.size(), false);
  std::set<std::pair<std::string, std::string>> reported;
  for (const auto& e : inventory.value("endpoints", nlohmann::json::array())) {
    if (e.value("role", "") != "server") continue;
    std::string method = e.value("method", ""), path = e.value("path", "");
    if (!reported.insert({method, path}).second) continue;
    bool matched = false;
    for (size_t i = 0; i < ops.size(); ++i) {
      if (ops[i].method != method || !same_route(path, ops[i].path)) continue;
      matched = true;
      seen[i] = true;
      if (ops[i].deprecated) zombie.push_back({{"method", method}, {"path", ops[i].path}, {"observed", path},
                                               {"count", e.value("count", 0)}});
    }
    if (!matched) shadow.push_back({{"method", method}, {"path", path}, {"count", e.value("count", 0)}});
  }
  for (size_t i = 0; i < ops.size(); ++i)
    if (!seen[i]) orphan.push_back({{"method", ops[i].method}, {"path", ops[i].path}});
  return {{"shadow", shadow}, {"zombie", zombie}, {"orphan", orphan}};
}

}  // namespace vigil::apimap
