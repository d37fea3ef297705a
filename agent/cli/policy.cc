// vigil policy: validate, test, apply, list, disable and generate egress policies.
#include <unistd.h>

#include <fstream>
#include <memory>

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "agent/cli/cli.h"
#include "agent/cli/client.h"
#include "agent/config/config.h"
#include "agent/control/protocol.h"
#include "base/file.h"
#include "policy/compiler.h"
#include "policy/evaluator.h"
#include "policy/generator.h"
#include "policy/loader.h"
#include "policy/pins.h"

namespace vigil::cli {
namespace {

using nlohmann::json;

int validate(const std::vector<std::string>& files, bool as_json) {
  int rc = kExitOk;
  json report = json::array();
  for (const auto& f : files) {
    auto ps = policy::load_policy_file(f);
    json entry = {{"file", f}, {"ok", ps.ok()}};
    if (ps) {
      std::vector<std::string> names;
      for (const auto& p : *ps) names.push_back(p.name);
      entry["policies"] = names;
      if (!as_json)
        fmt::print("{}: ok ({} {}: {})\n", f, names.size(), names.size() == 1 ? "policy" : "policies",
                   fmt::join(names, ", "));
    } else {
      rc = kExitCheckFailed;
      entry["error"] = ps.error().message;
      if (!as_json) fmt::print(stderr, "{}\n", ps.error().message);
    }
    report.push_back(entry);
  }
  if (as_json) fmt::print("{}\n", report.dump(2));
  return rc;
}

struct TestArgs {
  std::vector<std::string> files;
  std::string exe, cgroup = "/", dst, proto = "tcp";
  uint32_t uid = 0;
  std::vector<std::string> fqdns;
};

int test_connect(const TestArgs& a, bool as_json) {
  std::vector<policy::EgressPolicy> all;
  for (const auto& f : a.files) {
    auto ps = policy::load_policy_file(f);
    if (!ps) {
      fmt::print(stderr, "{}\n", ps.error().message);
      return kExitUsage;
    }
    for (auto& p : *ps) all.push_back(std::move(p));
  }
  auto d = policy::parse_destination(a.dst, a.proto == "udp" ? policy::Proto::kUdp : policy::Proto::kTcp);
  if (!d) {
    fmt::print(stderr, "vigil: {}\n", d.error().message);
    return kExitUsage;
  }
  d->fqdns = a.fqdns;
  // The tables the kernel would be given, judged the way the kernel judges.
  auto tables = policy::compile(all);
  if (!tables) {
    fmt::print(stderr, "vigil: {}\n", tables.error().message);
    return kExitCheckFailed;
  }
  auto v = tables->judge({a.exe, a.uid, a.cgroup}, *d);
  const char* outcome = policy::outcome_name(v.outcome);
  if (as_json) {
    fmt::print("{}\n", json{{"verdict", outcome}, {"policy", v.policy}, {"rule", v.rule}}.dump());
  } else if (v.outcome == policy::Outcome::kUnrestricted) {
    fmt::print("unrestricted: no policy selects {} (uid {}, cgroup {})\n", a.exe, a.uid, a.cgroup);
  } else {
    fmt::print("{}: {} {} {}{}\n", outcome, a.proto, a.dst, v.policy.empty() ? "" : fmt::format("policy {}", v.policy),
               v.rule.empty() ? "" : fmt::format(" rule {}", v.rule));
  }
  bool allowed = v.outcome == policy::Outcome::kAllow || v.outcome == policy::Outcome::kUnrestricted;
  return allowed ? kExitOk : kExitCheckFailed;
}

void print_policy_table(const json& reply) {
  const json& e = reply["enforcement"];
  fmt::print("enforcement: {} (pins {}, generation {}, {} LPM entries, {} FQDN patterns, {} binaries, {} cgroups "
             "selected)\n",
             e.value("state", "?"), e.value("pin_dir", "?"), e.value("generation", 0), e.value("cidr_entries", 0),
             e.value("fqdn_patterns", 0), e.value("selected_binaries", 0), e.value("selected_cgroups", 0));
  fmt::print("{:<28} {:<8} {:<6} {:<9} {}\n", "POLICY", "MODE", "RULES", "LOOPBACK", "SELECTOR");
  for (const auto& p : reply["policies"]) {
    std::vector<std::string> sel;
    for (const auto& b : p["binaries"]) sel.push_back("bin=" + b.get<std::string>());
    for (const auto& c : p["cgroups"]) sel.push_back("cgroup=" + c.get<std::string>());
    for (const auto& u : p["uids"]) sel.push_back(fmt::format("uid={}", u.get<uint32_t>()));
    fmt::print("{:<28} {:<8} {:<6} {:<9} {}\n", p.value("name", "?"), p.value("mode", "?"), p.value("rules", 0),
               p.value("allow_loopback", true) ? "allowed" : "denied", fmt::join(sel, " "));
  }
}

// The agent's answer to a command that reports {"ok": false, "errors": […]} on failure.
std::optional<json> ask_ok(const Globals& g, const json& req, int& rc) {
  auto reply = ask(g.socket(), req, rc);
  if (reply && !reply->value("ok", false)) {
    for (const auto& e : (*reply)["errors"]) fmt::print(stderr, "{}\n", e.get<std::string>());
    rc = kExitCheckFailed;
    return std::nullopt;
  }
  return reply;
}

int apply_file(const Globals& g, const std::string& file) {
  auto content = read_file(file);
  if (!content) {
    fmt::print(stderr, "vigil: {}\n", content.error().message);
    return kExitUsage;
  }
  json req = control::request(control::kPolicyApply);
  req["name"] = file;
  req["content"] = *content;
  int rc = kExitOk;
  auto reply = ask_ok(g, req, rc);
  if (!reply) return rc;
  if (g.json()) {
    fmt::print("{}\n", reply->dump());
  } else {
    std::vector<std::string> names = (*reply)["applied"];
    fmt::print("applied {} ({}) as {}\n", file, fmt::join(names, ", "), reply->value("file", "?"));
    print_policy_table(*reply);
  }
  return kExitOk;
}

int list_policies(const Globals& g) {
  int rc = kExitOk;
  auto reply = ask(g.socket(), control::request(control::kPolicyList), rc);
  if (!reply) return rc;
  if (g.json()) fmt::print("{}\n", reply->dump());
  else print_policy_table(*reply);
  return kExitOk;
}

int disable_enforcement(const Globals& g) {
  std::string socket_path = g.socket();
  if (access(socket_path.c_str(), F_OK) == 0) {
    int rc = kExitOk;
    auto reply = ask_ok(g, control::request(control::kPolicyDisable), rc);
    if (!reply) return rc;
    if (g.json()) fmt::print("{}\n", reply->dump());
    else fmt::print("egress enforcement disabled: programs detached and unpinned\n");
    return kExitOk;
  }
  // No agent: remove the pinned programs ourselves (their links detach with the pins).
  auto config = g.config_path.empty() ? parse_config(default_config_yaml(), "<embedded default>")
                                      : load_config_file(g.config_path);
  if (!config) {
    fmt::print(stderr, "vigil: {}\n", config.error().message);
    return kExitUsage;
  }
  policy::EgressPins pins(config->policies.pin_dir, config->data_dir);
  auto removed = pins.remove();
  if (!removed) {
    fmt::print(stderr, "vigil: {}\n", removed.error().message);
    return kExitCheckFailed;
  }
  if (auto s = pins.mark_disabled(); !s) fmt::print(stderr, "vigil: {}\n", s.error().message);
  fmt::print("vigild is not running; removed {} pinned objects under {}: egress enforcement is off\n", *removed,
             pins.root());
  return kExitOk;
}

int generate(const std::string& from, const policy::GenerateOptions& options) {
  std::ifstream in(from);
  if (!in) {
    fmt::print(stderr, "vigil: read {}: {}\n", from, std::strerror(errno));
    return kExitUsage;
  }
  policy::GenerateOptions o = options;
  o.source = from;
  auto g = policy::generate_policies(in, o);
  if (!g) {
    fmt::print(stderr, "vigil: {}\n", g.error().message);
    return kExitCheckFailed;
  }
  for (const auto& w : g->warnings) fmt::print(stderr, "vigil: {}\n", w);
  fmt::print("{}", g->yaml);
  return kExitOk;
}

// The inventory's client-role endpoints: each binary, the addresses it called, by
// the name it used for them (the Host it sent) where that is a DNS name.
int generate_from_inventory(const Globals& g, const InventorySource& src, const policy::GenerateOptions& options) {
  if (options.select != "binary") {
    fmt::print(stderr, "vigil: --from-inventory makes one policy per binary (--select cgroup needs events)\n");
    return kExitUsage;
  }
  int rc = kExitOk;
  auto inv = load_inventory(g, src, rc);
  if (!inv) return rc;
  std::vector<policy::Flow> flows;
  for (const auto& e : (*inv)["endpoints"]) {
    if (e.value("role", "") != "client" || e.value("exe", "").empty()) continue;
    std::string host = e.value("host", "");
    if (auto colon = host.rfind(':'); colon != std::string::npos && host.find(']') == std::string::npos)
      host.resize(colon);
    bool is_name = std::any_of(host.begin(), host.end(), [](char c) { return std::isalpha(static_cast<unsigned char>(c)); }) &&
                   host.find(':') == std::string::npos;
    for (const auto& r : e.value("remotes", json::array()))
      flows.push_back({e.value("exe", ""), r.value("addr", ""), r.value("port", uint16_t{0}), "tcp", is_name ? host : ""});
  }
  policy::GenerateOptions o = options;
  o.source = src.from.empty() ? std::string("the inventory of vigild") : src.from;
  auto gen = policy::generate_from_flows(flows, o);
  if (!gen) {
    fmt::print(stderr, "vigil: {}\n", gen.error().message);
    return kExitCheckFailed;
  }
  fmt::print("{}", gen->yaml);
  return kExitOk;
}

}  // namespace

void add_policy(CLI::App& app, const Globals& g, Verbs& verbs) {
  auto* policy = app.add_subcommand("policy", "egress policies");
  policy->require_subcommand(1);

  auto* v = policy->add_subcommand("validate", "check policy files; exit 1 on any error");
  auto files = std::make_shared<std::vector<std::string>>();
  v->add_option("files", *files, "policy YAML files")->required()->check(CLI::ExistingFile);
  verbs.push_back({v, [&g, files] { return validate(*files, g.json()); }});

  auto* t = policy->add_subcommand("test", "judge one connect against policy files; exit 1 unless allowed");
  auto targs = std::make_shared<TestArgs>();
  t->add_option("--file", targs->files, "policy file (repeatable)")->required()->check(CLI::ExistingFile);
  t->add_option("--exe", targs->exe, "executable path of the connecting process")->required();
  t->add_option("--uid", targs->uid, "its uid (default 0)");
  t->add_option("--cgroup", targs->cgroup, "its cgroup v2 path (default /)");
  t->add_option("--dst", targs->dst, "ADDR:PORT or [ADDR6]:PORT")->required();
  t->add_option("--proto", targs->proto, "tcp | udp")->check(CLI::IsMember({"tcp", "udp"}));
  t->add_option("--fqdn", targs->fqdns, "a DNS name known to resolve to the address (repeatable)");
  verbs.push_back({t, [&g, targs] { return test_connect(*targs, g.json()); }});

  auto* a = policy->add_subcommand("apply", "install a policy file in vigild (validated first; exit 1 on errors)");
  auto file = std::make_shared<std::string>();
  a->add_option("file", *file, "policy YAML file")->required()->check(CLI::ExistingFile);
  verbs.push_back({a, [&g, file] { return apply_file(g, *file); }});

  verbs.push_back({policy->add_subcommand("list", "policies vigild enforces"), [&g] { return list_policies(g); }});
  verbs.push_back({policy->add_subcommand("disable", "stop egress enforcement: detach and unpin its programs"),
                   [&g] { return disable_enforcement(g); }});

  auto* gen = policy->add_subcommand(
      "generate", "least-privilege policies from observed events or the API inventory (YAML on stdout)");
  auto from = std::make_shared<std::string>();
  auto opts = std::make_shared<policy::GenerateOptions>();
  auto from_inventory = std::make_shared<bool>(false);
  auto service = std::make_shared<std::string>();
  gen->add_option("--from", *from,
                  "events file (JSON lines, e.g. /var/log/vigil/events.jsonl); with --from-inventory: an exported "
                  "inventory (default: vigild's)")
      ->check(CLI::ExistingFile);
  gen->add_flag("--from-inventory", *from_inventory, "from the client-role endpoints of the API inventory");
  gen->add_option("--service", *service, "with --from-inventory: only this service");
  gen->add_flag("--include-loopback", opts->include_loopback,
                "allow exactly the loopback destinations seen too (allowLoopback: false)");
  gen->add_option("--select", opts->select, "one policy per binary | cgroup")->check(CLI::IsMember({"binary", "cgroup"}));
  gen->add_option("--mode", opts->mode, "audit | enforce (default audit)")->check(CLI::IsMember({"audit", "enforce"}));
  verbs.push_back({gen, [&g, from, opts, from_inventory, service] {
                     if (*from_inventory) return generate_from_inventory(g, {*from, *service, "client"}, *opts);
                     if (from->empty()) {
                       fmt::print(stderr, "vigil: policy generate needs --from FILE or --from-inventory\n");
                       return kExitUsage;
                     }
                     return generate(*from, *opts);
                   }});
}

}  // namespace vigil::cli
