// vigil map: the API inventory — list, show, findings, export (inventory JSON or
// OpenAPI 3.1), diff against a declared spec (exit 1 on shadow or zombie APIs:
// a CI gate), and merge of several nodes' exports (offline).
#include <algorithm>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <yaml-cpp/yaml.h>

#include "agent/apimap/inventory.h"
#include "agent/apimap/openapi.h"
#include "agent/apimap/spec.h"
#include "agent/cli/cli.h"
#include "agent/cli/client.h"
#include "agent/control/protocol.h"
#include "base/file.h"

namespace vigil::cli {
namespace {

using nlohmann::json;

using Source = InventorySource;

std::optional<json> read_json_file(const std::string& path, int& rc) {
  auto text = read_file(path);
  if (!text) {
    fmt::print(stderr, "vigil: {}\n", text.error().message);
    rc = kExitUsage;
    return std::nullopt;
  }
  json j = json::parse(*text, nullptr, false);
  if (j.is_discarded()) {
    fmt::print(stderr, "vigil: {}: not JSON (expected the output of `vigil map export -o json`)\n", path);
    rc = kExitUsage;
    return std::nullopt;
  }
  return j;
}

}  // namespace

std::optional<json> load_inventory(const Globals& g, const Source& s, int& rc) {
  json inv;
  if (!s.from.empty()) {
    auto j = read_json_file(s.from, rc);
    if (!j) return std::nullopt;
    if (auto eps = apimap::endpoints_of(*j); !eps) {
      fmt::print(stderr, "vigil: {}: {}\n", s.from, eps.error().message);
      rc = kExitUsage;
      return std::nullopt;
    }
    inv = std::move(*j);
  } else {
    json req = control::request(control::kMapExport);
    if (!s.service.empty()) req["service"] = s.service;
    auto reply = ask(g.socket(), req, rc);
    if (!reply) return std::nullopt;
    if (!reply->value("ok", false)) {
      for (const auto& e : (*reply)["errors"]) fmt::print(stderr, "vigil: {}\n", e.get<std::string>());
      rc = kExitUsage;
      return std::nullopt;
    }
    inv = std::move((*reply)["inventory"]);
  }
  // Filters apply to files as to the agent.
  auto keep = [&](const json& o) {
    return (s.service.empty() || o.value("service", "") == s.service) && (s.role.empty() || o.value("role", s.role) == s.role);
  };
  for (const char* k : {"endpoints", "findings"}) {
    if (!inv.contains(k)) continue;
    json kept = json::array();
    for (auto& e : inv[k])
      if (keep(e)) kept.push_back(std::move(e));
    inv[k] = std::move(kept);
  }
  return inv;
}

namespace {

std::string join(const json& arr) {
  std::vector<std::string> v;
  for (const auto& x : arr)
    if (x.is_string()) v.push_back(x.get<std::string>());
  return v.empty() ? "-" : fmt::format("{}", fmt::join(v, ","));
}

// The list and diff outputs of DESIGN.md §7 leave the inventory's internal state out.
json public_endpoint(json e) {
  for (const char* k : {"latency_sketch", "raised", "int_ids", "first_seen_ns", "last_seen_ns"}) e.erase(k);
  for (const char* side : {"request", "response"}) {
    if (!e.contains(side)) continue;
    apimap::Schema s;
    if (e[side].contains("schema") && apimap::Schema::from_state(e[side]["schema"], s) && !s.empty())
      e[side]["schema"] = s.to_json_schema();
    else
      e[side].erase("schema");
  }
  return e;
}

int list(const Globals& g, const Source& s) {
  int rc = kExitOk;
  auto inv = load_inventory(g, s, rc);
  if (!inv) return rc;
  if (g.json()) {
    json out = json::array();
    for (const auto& e : (*inv)["endpoints"]) out.push_back(public_endpoint(e));
    fmt::print("{}\n", json{{"endpoints", out}}.dump(2));
    return kExitOk;
  }
  fmt::print("{:<18} {:<6} {:<22} {:<7} {:<34} {:>7} {:>8} {:>8} {:<14} {:<22} {}\n", "SERVICE", "ROLE", "HOST",
             "METHOD", "PATH", "COUNT", "P50 ms", "P99 ms", "AUTH", "SENSITIVE", "RISK");
  for (const auto& e : (*inv)["endpoints"]) {
    const auto& lat = e["latency_ms"];
    fmt::print("{:<18} {:<6} {:<22} {:<7} {:<34} {:>7} {:>8.3f} {:>8.3f} {:<14} {:<22} {}{}\n",
               e.value("service", "?"), e.value("role", "?"), e.value("host", "?"), e.value("method", "?"),
               e.value("path", "?"), e.value("count", 0), lat.value("p50", 0.0), lat.value("p99", 0.0),
               join(e["auth"]), join(e["sensitive"]), e["risk"].value("score", 0),
               std::string(e.value("tls", false) ? "" : " plaintext") + (e.value("redirect_only", false) ? " redirect-only" : ""));
  }
  size_t n404 = 0;
  for (const auto& sv : (*inv)["services"]) n404 += sv.value("unmatched_404", 0);
  fmt::print("{} endpoints; {} calls to unknown paths answered 404/405 (not endpoints)\n",
             (*inv)["endpoints"].size(), n404);
  return kExitOk;
}

int show(const Globals& g, const Source& s, std::string method, const std::string& path) {
  int rc = kExitOk;
  auto inv = load_inventory(g, s, rc);
  if (!inv) return rc;
  std::transform(method.begin(), method.end(), method.begin(), ::toupper);
  json found = json::array();
  for (const auto& e : (*inv)["endpoints"]) {
    if (e.value("method", "") != method) continue;
    std::string p = e.value("path", "");
    if (p == path || apimap::same_route(path, p)) found.push_back(public_endpoint(e));
  }
  if (found.empty()) {
    fmt::print(stderr, "vigil: no endpoint {} {} in the inventory{}\n", method, path,
               s.service.empty() ? "" : " of " + s.service);
    return kExitCheckFailed;
  }
  if (g.json()) {
    fmt::print("{}\n", (found.size() == 1 ? found[0] : json{{"endpoints", found}}).dump(2));
    return kExitOk;
  }
  for (const auto& e : found) {
    fmt::print("{} {}  ({} {} on {}, {})\n", e.value("method", ""), e.value("path", ""), e.value("service", ""),
               e.value("role", ""), e.value("host", ""), e.value("protocol", ""));
    fmt::print("  calls:      {} ({} over TLS)\n", e.value("count", 0), e.value("tls_calls", 0));
    std::vector<std::string> st;
    for (const auto& [k, v] : e["status"].items()) st.push_back(fmt::format("{}×{}", k, v.get<uint64_t>()));
    fmt::print("  status:     {}\n", fmt::join(st, " "));
    fmt::print("  latency ms: p50 {} p95 {} p99 {}\n", e["latency_ms"].value("p50", 0.0), e["latency_ms"].value("p95", 0.0),
               e["latency_ms"].value("p99", 0.0));
    fmt::print("  auth:       {}\n", join(e["auth"]));
    if (e.contains("jwt"))
      fmt::print("  jwt:        alg {} issuer {} {}\n", join(e["jwt"]["algs"]), join(e["jwt"]["issuers"]),
                 e["jwt"].value("no_exp", false) ? "(no exp)" : fmt::format("(lifetime up to {} s)", e["jwt"].value("max_lifetime_s", 0)));
    fmt::print("  sensitive:  {}\n", join(e["sensitive"]));
    std::vector<std::string> ps;
    for (const auto& p : e["params"]) ps.push_back(fmt::format("{}: {}", p.value("name", ""), p.value("type", "")));
    if (!ps.empty()) fmt::print("  params:     {}\n", fmt::join(ps, ", "));
    fmt::print("  request:    {} {}\n", join(e["request"]["content_types"]),
               e["request"].contains("schema") ? e["request"]["schema"].dump() : "");
    fmt::print("  response:   {} {}\n", join(e["response"]["content_types"]),
               e["response"].contains("schema") ? e["response"]["schema"].dump() : "");
    fmt::print("  examples:   {}\n", join(e["examples"]));
    if (e.contains("remotes")) {
      std::vector<std::string> r;
      for (const auto& x : e["remotes"]) r.push_back(fmt::format("{}:{}", x.value("addr", ""), x.value("port", 0)));
      fmt::print("  remotes:    {}\n", fmt::join(r, ", "));
    }
    fmt::print("  seen:       {} .. {}\n", e.value("first_seen", ""), e.value("last_seen", ""));
    fmt::print("  risk:       {}/10\n", e["risk"].value("score", 0));
    for (const auto& r : e["risk"]["reasons"]) fmt::print("              {}\n", r.get<std::string>());
  }
  return kExitOk;
}

int severity_rank(const std::string& s) {
  static const std::vector<std::string> kOrder = {"info", "low", "medium", "high", "critical"};
  auto it = std::find(kOrder.begin(), kOrder.end(), s);
  return it == kOrder.end() ? -1 : static_cast<int>(it - kOrder.begin());
}

int findings(const Globals& g, const Source& s, const std::string& min_severity) {
  int rc = kExitOk;
  auto inv = load_inventory(g, s, rc);
  if (!inv) return rc;
  json out = json::array();
  for (const auto& f : (*inv)["findings"]) {
    if (!min_severity.empty() && severity_rank(f.value("severity", "")) < severity_rank(min_severity)) continue;
    json c = f;
    c.erase("first_seen_ns");
    out.push_back(c);
  }
  std::stable_sort(out.begin(), out.end(), [](const json& a, const json& b) {
    return severity_rank(a.value("severity", "")) > severity_rank(b.value("severity", ""));
  });
  if (g.json()) {
    fmt::print("{}\n", json{{"findings", out}}.dump(2));
    return kExitOk;
  }
  for (const auto& f : out) {
    const auto& ep = f["endpoint"];
    fmt::print("{:<8} {:<4} {} — {} {} on {} ({}), {} calls since {}\n", f.value("severity", ""), f.value("owasp", ""),
               f.value("title", ""), ep.value("method", ""), ep.value("path", ""), f.value("service", ""),
               ep.value("host", ""), f.value("count", 0), f.value("first_seen", ""));
    fmt::print("         id: {}\n         evidence: {}\n         fix: {}\n", f.value("id", ""), f.value("evidence", ""),
               f.value("advice", ""));
  }
  fmt::print("{} findings\n", out.size());
  return kExitOk;
}

// YAML for people and tools: strings that would read back as something else are quoted.
void emit_yaml(YAML::Emitter& y, const json& j) {
  auto plain_safe = [](const std::string& s) {
    static const std::set<std::string> kWords = {"true", "false", "null", "yes", "no", "on", "off", "y", "n", "~",
                                                 "True", "False", "Null", "Yes", "No", "On", "Off", "NULL", "TRUE", "FALSE"};
    if (s.empty() || kWords.count(s)) return false;
    if (!std::isalpha(static_cast<unsigned char>(s[0])) && s[0] != '/') return false;
    return std::all_of(s.begin(), s.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '-' || c == '.' || c == '{' ||
             c == '}' || c == ' ' || c == '+';
    }) && s.back() != ' ';
  };
  auto str = [&](const std::string& s) {
    if (plain_safe(s)) y << s;
    else y << YAML::DoubleQuoted << s;
  };
  switch (j.type()) {
    case json::value_t::object:
      y << YAML::BeginMap;
      for (const auto& [k, v] : j.items()) {
        y << YAML::Key;
        str(k);
        y << YAML::Value;
        emit_yaml(y, v);
      }
      y << YAML::EndMap;
      break;
    case json::value_t::array:
      y << YAML::BeginSeq;
      for (const auto& v : j) emit_yaml(y, v);
      y << YAML::EndSeq;
      break;
    case json::value_t::string: str(j.get<std::string>()); break;
    case json::value_t::boolean: y << j.get<bool>(); break;
    case json::value_t::number_integer: y << j.get<int64_t>(); break;
    case json::value_t::number_unsigned: y << j.get<uint64_t>(); break;
    case json::value_t::number_float: y << j.get<double>(); break;
    default: y << YAML::Null; break;
  }
}

int export_inventory(const Globals& g, const Source& s, bool openapi) {
  int rc = kExitOk;
  auto inv = load_inventory(g, s, rc);
  if (!inv) return rc;
  if (!openapi) {  // the mergeable document
    fmt::print("{}\n", inv->dump(g.output == "yaml" ? 2 : -1));
    return kExitOk;
  }
  json doc = apimap::to_openapi(*inv, {.service = s.service, .role = s.role.empty() ? "server" : s.role, .title = {}});
  if (g.json()) {
    fmt::print("{}\n", doc.dump(2));
  } else {
    YAML::Emitter y;
    emit_yaml(y, doc);
    fmt::print("{}\n", y.c_str());
  }
  return kExitOk;
}

int diff(const Globals& g, const Source& s, const std::string& spec_file) {
  auto ops = apimap::load_spec(spec_file);
  if (!ops) {
    fmt::print(stderr, "vigil: {}\n", ops.error().message);
    return kExitUsage;
  }
  int rc = kExitOk;
  auto inv = load_inventory(g, s, rc);
  if (!inv) return rc;
  json d = apimap::diff_against_spec(*inv, *ops);
  bool failed = !d["shadow"].empty() || !d["zombie"].empty();
  if (g.json()) {
    fmt::print("{}\n", d.dump(2));
  } else {
    for (const auto& e : d["shadow"])
      fmt::print("shadow  {} {}  ({} calls, not in {})\n", e.value("method", ""), e.value("path", ""), e.value("count", 0), spec_file);
    for (const auto& e : d["zombie"])
      fmt::print("zombie  {} {}  ({} calls to a deprecated operation)\n", e.value("method", ""), e.value("path", ""),
                 e.value("count", 0));
    for (const auto& e : d["orphan"])
      fmt::print("orphan  {} {}  (declared, never seen)\n", e.value("method", ""), e.value("path", ""));
    fmt::print("{} shadow, {} zombie, {} orphan\n", d["shadow"].size(), d["zombie"].size(), d["orphan"].size());
  }
  return failed ? kExitCheckFailed : kExitOk;
}

int merge(const std::vector<std::string>& files) {
  std::vector<json> docs;
  for (const auto& f : files) {
    int rc = kExitOk;
    auto j = read_json_file(f, rc);
    if (!j) return rc;
    docs.push_back(std::move(*j));
  }
  auto merged = apimap::merge_inventories(docs);
  if (!merged) {
    fmt::print(stderr, "vigil: {}\n", merged.error().message);
    return kExitUsage;
  }
  fmt::print("{}\n", merged->dump());
  return kExitOk;
}

}  // namespace

void add_map(CLI::App& app, const Globals& g, Verbs& verbs) {
  auto* map = app.add_subcommand("map", "the API inventory: endpoints, findings, OpenAPI, spec drift");
  map->require_subcommand(1);
  auto source = [](CLI::App* c, Source& s, bool role = true) {
    c->add_option("--service", s.service, "only this service");
    if (role) c->add_option("--role", s.role, "server | client")->check(CLI::IsMember({"server", "client"}));
    c->add_option("--from", s.from, "an exported inventory (vigil map export -o json) instead of vigild")
        ->check(CLI::ExistingFile);
  };

  auto* l = map->add_subcommand("list", "the inventory, one endpoint a row");
  auto ls = std::make_shared<Source>();
  source(l, *ls);
  verbs.push_back({l, [&g, ls] { return list(g, *ls); }});

  auto* sh = map->add_subcommand("show", "one endpoint, every field (PATH may be concrete: /users/42)");
  auto ss = std::make_shared<Source>();
  auto method = std::make_shared<std::string>(), path = std::make_shared<std::string>();
  sh->add_option("method", *method, "GET, POST, ...")->required();
  sh->add_option("path", *path, "the template or a concrete path")->required();
  source(sh, *ss);
  verbs.push_back({sh, [&g, ss, method, path] { return show(g, *ss, *method, *path); }});

  auto* f = map->add_subcommand("findings", "risks, with OWASP API Security Top 10 ids");
  auto fs = std::make_shared<Source>();
  auto sev = std::make_shared<std::string>();
  f->add_option("--severity", *sev, "at least: info | low | medium | high | critical")
      ->check(CLI::IsMember({"info", "low", "medium", "high", "critical"}));
  source(f, *fs);
  verbs.push_back({f, [&g, fs, sev] { return findings(g, *fs, *sev); }});

  auto* e = map->add_subcommand("export", "the inventory as JSON (mergeable), or --openapi 3.1 (YAML, -o json)");
  auto es = std::make_shared<Source>();
  auto openapi = std::make_shared<bool>(false);
  e->add_flag("--openapi", *openapi, "OpenAPI 3.1 of the observed endpoints");
  source(e, *es);
  verbs.push_back({e, [&g, es, openapi] { return export_inventory(g, *es, *openapi); }});

  auto* d = map->add_subcommand("diff", "shadow / zombie / orphan against a declared spec (exit 1 on shadow or zombie)");
  auto ds = std::make_shared<Source>();
  auto spec = std::make_shared<std::string>();
  d->add_option("--spec", *spec, "the declared OpenAPI (YAML or JSON)")->required()->check(CLI::ExistingFile);
  source(d, *ds, false);
  verbs.push_back({d, [&g, ds, spec] { return diff(g, *ds, *spec); }});

  auto* m = map->add_subcommand("merge", "merge exported inventories of several nodes (offline; JSON on stdout)");
  auto files = std::make_shared<std::vector<std::string>>();
  m->add_option("files", *files, "vigil map export -o json outputs")->required()->check(CLI::ExistingFile);
  verbs.push_back({m, [files] { return merge(*files); }});
}

}  // namespace vigil::cli
