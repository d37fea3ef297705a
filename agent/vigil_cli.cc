// vigil: the investigation CLI; talks to vigild over its control socket.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <optional>
#include <sstream>
#include <string>

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <fmt/ranges.h>
#include <nlohmann/json.hpp>

#include "config.h"
#include "control.h"
#include "compiler.h"
#include "evaluator.h"
#include "loader.h"

namespace {

using nlohmann::json;
constexpr int kExitCheckFailed = 1;
constexpr int kExitUsage = 2;

std::string resolve_socket(const std::string& flag, const std::string& config_path) {
  if (!flag.empty()) return flag;
  std::string path = config_path;
  if (path.empty() && std::filesystem::exists("/etc/vigil/vigil.yaml")) path = "/etc/vigil/vigil.yaml";
  if (!path.empty()) {
    auto c = vigil::load_config_file(path);
    if (c) return c->control_socket;
    fmt::print(stderr, "vigil: {}\n", c.error().message);
    std::exit(kExitUsage);
  }
  return vigil::Config{}.control_socket;
}

int connect_socket(const std::string& path) {
  sockaddr_un addr{};
  if (path.size() >= sizeof(addr.sun_path)) return -1;
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  addr.sun_family = AF_UNIX;
  std::copy(path.begin(), path.end(), addr.sun_path);
  if (fd < 0 || connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    fmt::print(stderr, "vigil: cannot connect to vigild at {}: {} (is vigild running? try --socket)\n",
               path, std::strerror(errno));
    if (fd >= 0) close(fd);
    return -1;
  }
  return fd;
}

// Sends one request line and calls `on_line` for each line back until EOF or false.
template <class F>
int request(const std::string& socket_path, const json& req, F on_line) {
  int fd = connect_socket(socket_path);
  if (fd < 0) return kExitUsage;
  std::string out = req.dump() + "\n";
  if (send(fd, out.data(), out.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(out.size())) {
    fmt::print(stderr, "vigil: send to {}: {}\n", socket_path, std::strerror(errno));
    close(fd);
    return kExitUsage;
  }
  std::string buf;
  char chunk[65536];
  while (true) {
    ssize_t n = read(fd, chunk, sizeof(chunk));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    buf.append(chunk, n);
    size_t nl;
    while ((nl = buf.find('\n')) != std::string::npos) {
      std::string line = buf.substr(0, nl);
      buf.erase(0, nl + 1);
      if (!on_line(line)) {
        close(fd);
        return 0;
      }
    }
  }
  close(fd);
  return 0;
}

std::string short_time(const std::string& rfc3339) {
  // "2026-11-22T08:30:00.123456789Z" -> "08:30:00.123456"
  return rfc3339.size() >= 26 ? rfc3339.substr(11, 15) : rfc3339;
}

std::string endpoint_str(const json& e) {
  std::string addr = e.value("addr", "?");
  if (addr.find(':') != std::string::npos) addr = "[" + addr + "]";
  return fmt::format("{}:{}", addr, e.value("port", 0));
}

std::string human_line(const json& e) {
  std::string kind = e.value("kind", "?");
  std::string who = "-";
  if (e.contains("process")) {
    const auto& p = e["process"];
    who = fmt::format("{}/{}", p.value("pid", 0), p.value("comm", "?"));
  }
  std::string what;
  if (kind == "connection") {
    const auto& c = e["conn"];
    what = fmt::format("{:<5} {} {:<6} {} -> {}", e.value("state", "?"), c.value("proto", "?"),
                       c.value("role", "?"), endpoint_str(c["local"]), endpoint_str(c["remote"]));
    if (e.contains("bytes_sent"))
      what += fmt::format(" sent={} recv={}", e.value("bytes_sent", 0), e.value("bytes_recv", 0));
    if (e.contains("process")) what += fmt::format(" exe={}", e["process"].value("exe", ""));
  } else if (kind == "api_call") {
    const auto& req = e["request"];
    std::string target = req.value("path", "");
    if (req.contains("query")) target += "?" + req["query"].get<std::string>();
    what = fmt::format("{:<6} {} {} {}{} -> {} ({:.2f} ms, {}/{} B{})", e.value("role", "?"),
                       e.value("protocol", "?"), req.value("method", "?"), req.value("host", ""),
                       target, e["response"].value("status", 0),
                       e.value("latency_ns", 0) / 1e6, e.value("req_bytes", 0),
                       e.value("resp_bytes", 0), e.value("truncated", false) ? ", truncated" : "");
    if (e.value("tls", false)) what += fmt::format(" tls={}", e.value("tls_lib", "?"));
    if (e.contains("grpc"))
      what += fmt::format(" grpc={}/{} status={}", e["grpc"].value("service", ""), e["grpc"].value("method", ""),
                          e["grpc"].value("status", -1));
  } else if (kind == "egress") {
    const auto& d = e["dst"];
    what = fmt::format("{:<10} {} {}{} policy {} ({}){}", e.value("verdict", "?"), e.value("proto", "?"),
                       endpoint_str(d), d.contains("fqdn") ? " (" + d["fqdn"].get<std::string>() + ")" : "",
                       e.value("policy", "?"), e.value("mode", "?"),
                       e.value("rule", "").empty() ? "" : " rule " + e.value("rule", ""));
    if (e.contains("process")) what += fmt::format(" exe={}", e["process"].value("exe", ""));
  } else if (kind == "policy") {
    const auto& p = e["policy"];
    what = fmt::format("{} {}{}", p.value("action", "?"), p.value("name", "?"),
                       p.contains("error") ? ": " + p["error"].get<std::string>() : "");
  } else if (kind == "lost") {
    what = fmt::format("{} events from {}", e["lost"].value("count", 0), e["lost"].value("source", "?"));
  } else {
    json rest = e;
    for (const char* k : {"v", "time", "node", "kind", "seq", "process"}) rest.erase(k);
    what = rest.dump();
  }
  return fmt::format("{} {:<11} {:<22} {}", short_time(e.value("time", "")), kind, who, what);
}

int cmd_status(const std::string& socket_path, bool as_json) {
  json status;
  int rc = request(socket_path, json{{"cmd", "status"}}, [&](const std::string& line) {
    status = json::parse(line, nullptr, false);
    return false;
  });
  if (rc != 0) return rc;
  if (status.is_discarded() || !status.is_object()) {
    fmt::print(stderr, "vigil: malformed status reply from {}\n", socket_path);
    return kExitUsage;
  }
  if (as_json) {
    fmt::print("{}\n", status.dump(2));
    return 0;
  }
  const auto& c = status["counters"];
  fmt::print("vigild {} on {} (pid {}), up {}s\n", status.value("version", "?"),
             status.value("node", "?"), status.value("pid", 0), status.value("uptime_s", 0));
  fmt::print("programs:\n  {:>6}  {:<8}  {}\n", "ID", "ATTACHED", "NAME");
  for (const auto& p : status["programs"])
    fmt::print("  {:>6}  {:<8}  {}\n", p.value("id", 0), p.value("attached", false) ? "yes" : "no",
               p.value("name", "?"));
  fmt::print("counters: {} events shipped, {} kernel events, {} processes, {} open connections, "
             "{} trace clients\n",
             c.value("events", 0), c.value("kernel_events", 0), c.value("processes", 0),
             c.value("connections", 0), c.value("trace_clients", 0));
  if (c.contains("http"))
    fmt::print("http: {} api_calls, {} connections with HTTP in flight, {} bytes not captured (cap or loss)\n",
               c["http"].value("api_calls", 0), c["http"].value("open_http_connections", 0),
               c["http"].value("uncaptured_bytes", 0));
  std::string lost;
  for (const auto& [k, v] : c["lost"].items()) lost += fmt::format(" {}={}", k, v.get<uint64_t>());
  fmt::print("lost:{}\n", lost.empty() ? " none" : lost);
  if (status.contains("tls") && !status["tls"].empty()) {
    fmt::print("tls libraries:\n  {:<12} {:>5}  {:<46} {}\n", "LIB", "PROCS", "PATH", "PROBES");
    for (const auto& l : status["tls"]) {
      std::vector<std::string> probes = l["probes"];
      std::string err = l.value("error", "");
      fmt::print("  {:<12} {:>5}  {:<46} {}\n", l.value("lib", "?"), l.value("processes", 0), l.value("path", "?"),
                 err.empty() ? fmt::format("{}", fmt::join(probes, ", ")) : "not attached: " + err);
    }
  }
  for (const auto& s : status["sinks"])
    fmt::print("sink: {} ({} write errors)\n", s.value("name", "?"), s.value("errors", 0));
  return 0;
}

int cmd_trace(const std::string& socket_path, const vigil::TraceFilter& filter, bool as_json) {
  std::setvbuf(stdout, nullptr, _IOLBF, 0);
  return request(socket_path, filter.to_json(), [&](const std::string& line) {
    if (as_json) {
      std::fwrite(line.data(), 1, line.size(), stdout);
      std::fputc('\n', stdout);
      return !std::ferror(stdout);
    }
    json e = json::parse(line, nullptr, false);
    if (e.is_discarded()) return true;
    if (e.contains("error")) {
      fmt::print(stderr, "vigil: {}\n", e["error"].get<std::string>());
      return false;
    }
    fmt::print("{}\n", human_line(e));
    return !std::ferror(stdout);
  });
}

int cmd_policy_validate(const std::vector<std::string>& files, bool as_json) {
  int rc = 0;
  json report = json::array();
  for (const auto& f : files) {
    auto ps = vigil::policy::load_policy_file(f);
    json entry = {{"file", f}, {"ok", ps.ok()}};
    if (ps) {
      std::vector<std::string> names;
      for (const auto& p : *ps) names.push_back(p.name);
      entry["policies"] = names;
      if (!as_json) fmt::print("{}: ok ({} {}: {})\n", f, names.size(), names.size() == 1 ? "policy" : "policies",
                               fmt::join(names, ", "));
    } else {
      rc = 1;
      entry["error"] = ps.error().message;
      if (!as_json) fmt::print(stderr, "{}\n", ps.error().message);
    }
    report.push_back(entry);
  }
  if (as_json) fmt::print("{}\n", report.dump(2));
  return rc;
}

struct PolicyTestArgs {
  std::vector<std::string> files;
  std::string exe, cgroup = "/", dst, proto = "tcp";
  uint32_t uid = 0;
  std::vector<std::string> fqdns;
};

int cmd_policy_test(const PolicyTestArgs& a, bool as_json) {
  std::vector<vigil::policy::EgressPolicy> all;
  for (const auto& f : a.files) {
    auto ps = vigil::policy::load_policy_file(f);
    if (!ps) {
      fmt::print(stderr, "{}\n", ps.error().message);
      return kExitUsage;
    }
    for (auto& p : *ps) all.push_back(std::move(p));
  }
  auto d = vigil::policy::parse_destination(
      a.dst, a.proto == "udp" ? vigil::policy::Proto::kUdp : vigil::policy::Proto::kTcp);
  if (!d) {
    fmt::print(stderr, "vigil: {}\n", d.error().message);
    return kExitUsage;
  }
  d->fqdns = a.fqdns;
  // The tables the kernel would be given, judged the way the kernel judges.
  auto tables = vigil::policy::compile(all);
  if (!tables) {
    fmt::print(stderr, "vigil: {}\n", tables.error().message);
    return kExitCheckFailed;
  }
  auto v = tables->judge({a.exe, a.uid, a.cgroup}, *d);
  const char* outcome = vigil::policy::outcome_name(v.outcome);
  if (as_json) {
    fmt::print("{}\n", json{{"verdict", outcome}, {"policy", v.policy}, {"rule", v.rule}}.dump());
  } else if (v.outcome == vigil::policy::Outcome::kUnrestricted) {
    fmt::print("unrestricted: no policy selects {} (uid {}, cgroup {})\n", a.exe, a.uid, a.cgroup);
  } else {
    fmt::print("{}: {} {} {}{}\n", outcome, a.proto, a.dst,
               v.policy.empty() ? "" : fmt::format("policy {}", v.policy),
               v.rule.empty() ? "" : fmt::format(" rule {}", v.rule));
  }
  bool allowed = v.outcome == vigil::policy::Outcome::kAllow ||
                 v.outcome == vigil::policy::Outcome::kUnrestricted;
  return allowed ? 0 : 1;
}

// One request, one JSON reply; prints errors; returns the reply or nullopt.
std::optional<json> ask(const std::string& socket_path, const json& req, int& rc) {
  std::optional<json> reply;
  rc = request(socket_path, req, [&](const std::string& line) {
    reply = json::parse(line, nullptr, false);
    return false;
  });
  if (rc != 0) return std::nullopt;
  if (!reply || reply->is_discarded()) {
    fmt::print(stderr, "vigil: no reply from vigild at {}\n", socket_path);
    rc = kExitUsage;
    return std::nullopt;
  }
  if (reply->contains("error")) {
    fmt::print(stderr, "vigil: {}\n", (*reply)["error"].dump());
    rc = kExitUsage;
    return std::nullopt;
  }
  return reply;
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

int cmd_policy_apply(const std::string& socket_path, const std::string& file, bool as_json) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    fmt::print(stderr, "vigil: read {}: {}\n", file, std::strerror(errno));
    return kExitUsage;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  int rc = 0;
  auto reply = ask(socket_path, json{{"cmd", "policy_apply"}, {"name", file}, {"content", ss.str()}}, rc);
  if (!reply) return rc;
  if (!reply->value("ok", false)) {
    for (const auto& e : (*reply)["errors"]) fmt::print(stderr, "{}\n", e.get<std::string>());
    return kExitCheckFailed;
  }
  if (as_json) {
    fmt::print("{}\n", reply->dump());
  } else {
    std::vector<std::string> names = (*reply)["applied"];
    fmt::print("applied {} ({}) as {}\n", file, fmt::join(names, ", "), reply->value("file", "?"));
    print_policy_table(*reply);
  }
  return 0;
}

int cmd_policy_list(const std::string& socket_path, bool as_json) {
  int rc = 0;
  auto reply = ask(socket_path, json{{"cmd", "policy_list"}}, rc);
  if (!reply) return rc;
  if (as_json) fmt::print("{}\n", reply->dump());
  else print_policy_table(*reply);
  return 0;
}

int cmd_policy_disable(const std::string& socket_path, const std::string& config_path, bool as_json) {
  if (access(socket_path.c_str(), F_OK) == 0) {
    int rc = 0;
    auto reply = ask(socket_path, json{{"cmd", "policy_disable"}}, rc);
    if (!reply) return rc;
    if (!reply->value("ok", false)) {
      for (const auto& e : (*reply)["errors"]) fmt::print(stderr, "{}\n", e.get<std::string>());
      return kExitCheckFailed;
    }
    if (as_json) fmt::print("{}\n", reply->dump());
    else fmt::print("egress enforcement disabled: programs detached and unpinned\n");
    return 0;
  }
  // No agent: remove the pinned programs ourselves (their links detach with the pins).
  auto config = config_path.empty() ? vigil::parse_config(vigil::default_config_yaml(), "<embedded default>")
                                    : vigil::load_config_file(config_path);
  if (!config) {
    fmt::print(stderr, "vigil: {}\n", config.error().message);
    return kExitUsage;
  }
  namespace fs = std::filesystem;
  std::error_code ec;
  size_t removed = 0;
  for (const auto& dir : fs::directory_iterator(config->policies.pin_dir, ec)) {
    if (!dir.path().filename().string().starts_with("egress-v")) continue;
    removed += fs::remove_all(dir.path(), ec);
    if (ec) {
      fmt::print(stderr, "vigil: remove {}: {}\n", dir.path().string(), ec.message());
      return kExitCheckFailed;
    }
  }
  fs::remove(config->policies.pin_dir, ec);  // when empty
  fs::create_directories(config->data_dir, ec);
  std::ofstream(fs::path(config->data_dir) / "egress-disabled") << "vigil policy disable\n";
  fmt::print("vigild is not running; removed {} pinned objects under {}: egress enforcement is off\n", removed,
             config->policies.pin_dir);
  return 0;
}

// Least-privilege policies from what a workload was seen doing: one policy per
// binary (or cgroup), allowing exactly the destinations its client-side
// connections reached, by DNS name where the events name one.
int cmd_policy_generate(const std::string& from, const std::string& select, const std::string& mode) {
  std::ifstream in(from);
  if (!in) {
    fmt::print(stderr, "vigil: read {}: {}\n", from, std::strerror(errno));
    return kExitUsage;
  }
  struct Dest {
    std::string addr;
    uint16_t port;
    std::string proto;
    auto operator<=>(const Dest&) const = default;
  };
  std::map<std::string, std::set<Dest>> by_subject;          // subject -> destinations
  std::map<std::pair<std::string, std::string>, std::string> names;  // (subject, addr) -> fqdn
  size_t lineno = 0, used = 0, bad = 0;
  auto is_loopback = [](const std::string& a) { return a.starts_with("127.") || a == "::1"; };
  std::string line;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.empty()) continue;
    json e = json::parse(line, nullptr, false);
    if (e.is_discarded() || !e.is_object()) {
      if (bad++ == 0) fmt::print(stderr, "vigil: {}:{}: not a JSON event (skipped)\n", from, lineno);
      continue;
    }
    if (!e.contains("process") || !e["process"].is_object()) continue;
    std::string subject = e["process"].value(select == "cgroup" ? "cgroup" : "exe", "");
    if (subject.empty()) continue;
    std::string kind = e.value("kind", "");
    if (kind == "connection" && e.value("state", "") == "open" && e.contains("conn") &&
        e["conn"].value("role", "") == "client") {
      const json& r = e["conn"]["remote"];
      std::string addr = r.value("addr", "");
      if (addr.empty() || is_loopback(addr)) continue;
      by_subject[subject].insert({addr, static_cast<uint16_t>(r.value("port", 0)), e["conn"].value("proto", "tcp")});
      ++used;
    } else if (kind == "api_call" && e.value("role", "") == "client" && e.contains("request")) {
      std::string host = e["request"].value("host", "");
      if (auto colon = host.rfind(':'); colon != std::string::npos && host.find(']') == std::string::npos)
        host.resize(colon);
      std::string addr = e.contains("conn") ? e["conn"]["remote"].value("addr", "") : "";
      bool is_name = !host.empty() && std::any_of(host.begin(), host.end(), [](char c) { return std::isalpha(c); }) &&
                     host.find(':') == std::string::npos;
      if (auto fqdn = vigil::policy::parse_fqdn(host); is_name && !addr.empty() && fqdn) names[{subject, addr}] = *fqdn;
    } else if (kind == "egress" && e.contains("dst") && e["dst"].contains("fqdn")) {
      std::string fqdn = e["dst"]["fqdn"].get<std::string>();
      if (!fqdn.starts_with("*")) names[{subject, e["dst"].value("addr", "")}] = fqdn;
    }
  }
  if (by_subject.empty()) {
    fmt::print(stderr, "vigil: {} holds no client connections to non-loopback destinations ({} lines)\n", from,
               lineno);
    return kExitCheckFailed;
  }
  std::string out = fmt::format("# Generated by `vigil policy generate --from {}` from {} connections.\n"
                                "# Review, then switch mode to enforce.\n", from, used);
  std::set<std::string> taken;
  for (const auto& [subject, dests] : by_subject) {
    std::string base = std::filesystem::path(subject).filename().string();
    std::string name;
    for (char c : base.empty() ? std::string("root") : base)
      name += std::isalnum(static_cast<unsigned char>(c)) ? static_cast<char>(std::tolower(c)) : '-';
    name += "-egress";
    for (int k = 2; taken.count(name); ++k) name = fmt::format("{}-egress-{}", base, k);
    taken.insert(name);
    // One rule per (port, protocol), listing its destinations.
    std::map<std::pair<uint16_t, std::string>, std::set<std::string>> rules;
    for (const auto& d : dests) {
      auto n = names.find({subject, d.addr});
      std::string peer = n != names.end() && !n->second.empty()
                             ? fmt::format("{{fqdn: \"{}\"}}", n->second)
                             : fmt::format("{{cidr: \"{}/{}\"}}", d.addr, d.addr.find(':') == std::string::npos ? 32 : 128);
      rules[{d.port, d.proto}].insert(peer);
    }
    out += fmt::format("---\napiVersion: vigil/v1\nkind: EgressPolicy\nmetadata:\n  name: {}\nspec:\n"
                       "  mode: {}\n  selector:\n    {}: [\"{}\"]\n  allowLoopback: true\n  egress:\n",
                       name, mode, select == "cgroup" ? "cgroups" : "binaries", subject);
    for (const auto& [pp, peers] : rules)
      out += fmt::format("    - to: [{}]\n      ports: [{{port: {}, protocol: {}}}]\n", fmt::join(peers, ", "),
                         pp.first, pp.second);
  }
  // What we print must load: check it the way `policy validate` would.
  if (auto ok = vigil::policy::load_policies(out, "<generated>"); !ok) {
    fmt::print(stderr, "vigil: generated policy does not validate (a bug): {}\n", ok.error().message);
    return kExitUsage;
  }
  fmt::print("{}", out);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"vigil — investigate API traffic and egress on this host"};
  app.require_subcommand(1);
  std::string socket_flag, config_path, output = "table";
  app.add_option("--socket", socket_flag, "control socket of vigild");
  app.add_option("--config", config_path, "vigild configuration (for its control_socket)");

  auto* status = app.add_subcommand("status", "agent, programs and counters");
  status->add_option("-o,--output", output, "table | json")->check(CLI::IsMember({"table", "json"}));

  auto* trace = app.add_subcommand("trace", "stream live events");
  vigil::TraceFilter filter;
  uint32_t pid = 0;
  trace->add_option("--pid", pid, "only events of this process");
  trace->add_option("--comm", filter.comm, "only events of processes with this comm");
  trace->add_option("--kind", filter.kinds, "only these kinds (repeatable)")
      ->check(CLI::IsMember(vigil::all_event_kinds()));
  trace->add_option("-o,--output", output, "table | json")->check(CLI::IsMember({"table", "json"}));

  auto* policy = app.add_subcommand("policy", "egress policies");
  policy->require_subcommand(1);
  auto* validate = policy->add_subcommand("validate", "check policy files; exit 1 on any error");
  std::vector<std::string> validate_files;
  validate->add_option("files", validate_files, "policy YAML files")->required()->check(CLI::ExistingFile);
  validate->add_option("-o,--output", output, "table | json")->check(CLI::IsMember({"table", "json"}));
  auto* ptest = policy->add_subcommand("test", "judge one connect against policy files; exit 1 unless allowed");
  PolicyTestArgs targs;
  ptest->add_option("--file", targs.files, "policy file (repeatable)")->required()->check(CLI::ExistingFile);
  ptest->add_option("--exe", targs.exe, "executable path of the connecting process")->required();
  ptest->add_option("--uid", targs.uid, "its uid (default 0)");
  ptest->add_option("--cgroup", targs.cgroup, "its cgroup v2 path (default /)");
  ptest->add_option("--dst", targs.dst, "ADDR:PORT or [ADDR6]:PORT")->required();
  ptest->add_option("--proto", targs.proto, "tcp | udp")->check(CLI::IsMember({"tcp", "udp"}));
  ptest->add_option("--fqdn", targs.fqdns, "a DNS name known to resolve to the address (repeatable)");
  ptest->add_option("-o,--output", output, "table | json")->check(CLI::IsMember({"table", "json"}));

  auto* apply = policy->add_subcommand("apply", "install a policy file in vigild (validated first; exit 1 on errors)");
  std::string apply_file;
  apply->add_option("file", apply_file, "policy YAML file")->required()->check(CLI::ExistingFile);
  apply->add_option("-o,--output", output, "table | json")->check(CLI::IsMember({"table", "json"}));
  auto* plist = policy->add_subcommand("list", "policies vigild enforces");
  plist->add_option("-o,--output", output, "table | json")->check(CLI::IsMember({"table", "json"}));
  auto* pdisable = policy->add_subcommand("disable", "stop egress enforcement: detach and unpin its programs");
  pdisable->add_option("-o,--output", output, "table | json")->check(CLI::IsMember({"table", "json"}));

  auto* generate = policy->add_subcommand("generate", "least-privilege policies from observed events (YAML on stdout)");
  std::string gen_from, gen_select = "binary", gen_mode = "audit";
  generate->add_option("--from", gen_from, "events file (JSON lines, e.g. /var/log/vigil/events.jsonl)")
      ->required()->check(CLI::ExistingFile);
  generate->add_option("--select", gen_select, "one policy per binary | cgroup")
      ->check(CLI::IsMember({"binary", "cgroup"}));
  generate->add_option("--mode", gen_mode, "audit | enforce (default audit)")->check(CLI::IsMember({"audit", "enforce"}));

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : kExitUsage;
  }
  signal(SIGPIPE, SIG_IGN);
  if (*validate) return cmd_policy_validate(validate_files, output == "json");
  if (*ptest) return cmd_policy_test(targs, output == "json");
  if (*generate) return cmd_policy_generate(gen_from, gen_select, gen_mode);
  std::string socket_path = resolve_socket(socket_flag, config_path);
  if (*status) return cmd_status(socket_path, output == "json");
  if (*apply) return cmd_policy_apply(socket_path, apply_file, output == "json");
  if (*plist) return cmd_policy_list(socket_path, output == "json");
  if (*pdisable) return cmd_policy_disable(socket_path, config_path, output == "json");
  if (*trace) {
    if (pid) filter.pid = pid;
    return cmd_trace(socket_path, filter, output == "json");
  }
  return kExitUsage;
}
