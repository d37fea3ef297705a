#include "agent/cli/event_query.h"

#include <charconv>
#include <ctime>

#include "agent/config/config.h"
#include "agent/sinks/record.h"

namespace vigil::cli {
namespace {

std::string str(const nlohmann::json& e, std::initializer_list<const char*> path) {
  const nlohmann::json* p = &e;
  for (const char* k : path) {
    if (!p->is_object()) return "";
    auto it = p->find(k);
    if (it == p->end()) return "";
    p = &*it;
  }
  return p->is_string() ? p->get<std::string>() : "";
}

}  // namespace

uint64_t parse_rfc3339_ns(std::string_view t) {
  struct tm tm{};
  std::string s(t.substr(0, 19));
  const char* end = strptime(s.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end || *end) return 0;
  uint64_t ns = static_cast<uint64_t>(timegm(&tm)) * 1'000'000'000ull;
  std::string_view rest = t.substr(std::min<size_t>(19, t.size()));
  if (rest.starts_with('.')) {
    rest.remove_prefix(1);
    uint64_t frac = 0, scale = 1'000'000'000ull;
    while (!rest.empty() && rest.front() >= '0' && rest.front() <= '9') {
      if (scale > 1) {
        scale /= 10;
        frac += static_cast<uint64_t>(rest.front() - '0') * scale;
      }
      rest.remove_prefix(1);
    }
    ns += frac;
  }
  return rest == "Z" || rest.empty() ? ns : 0;
}

int event_severity(const nlohmann::json& e) {
  std::string kind = str(e, {"kind"});
  if (kind == "finding") return std::max(0, sinks::parse_severity(str(e, {"finding", "severity"})));
  if (kind == "egress") {
    std::string v = str(e, {"verdict"});
    return v == "deny" ? sinks::kSevHigh : v == "would_deny" ? sinks::kSevMedium : sinks::kSevInfo;
  }
  if (kind == "lost") return sinks::kSevMedium;
  if (kind == "policy") return str(e, {"policy", "action"}) == "rejected" ? sinks::kSevMedium : sinks::kSevInfo;
  return sinks::kSevInfo;
}

void EventQuery::add_options(CLI::App* cmd, bool window) {
  cmd->add_option("--pid", pid, "only events of this process");
  cmd->add_option("--comm", comm, "only events of processes with this comm");
  cmd->add_option("--kind", kinds, "only these kinds (repeatable)")->check(CLI::IsMember(all_event_kinds()));
  cmd->add_option("--host", host, "only calls to this host, egress to this name or address");
  cmd->add_option("--path", path, "only calls and findings whose path starts with this");
  cmd->add_option("--verdict", verdict, "only egress events with this verdict")
      ->check(CLI::IsMember({"allow", "deny", "would_deny"}));
  cmd->add_option("--severity", severity, "at least this severity")
      ->check(CLI::IsMember({"info", "low", "medium", "high", "critical"}));
  if (window) {
    cmd->add_option("--since", since, "from this time (RFC 3339, or 30s, 10m, 2h, 1d ago)");
    cmd->add_option("--until", until, "up to this time (same forms)");
  }
}

Status EventQuery::resolve(uint64_t now_ns) {
  auto at = [&](const std::string& v, const char* flag) -> Result<uint64_t> {
    if (v.empty()) return uint64_t{0};
    if (uint64_t t = parse_rfc3339_ns(v)) return t;
    uint64_t n = 0;
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    std::string_view unit(ptr, static_cast<size_t>(v.data() + v.size() - ptr));
    uint64_t mult = unit == "s" ? 1 : unit == "m" ? 60 : unit == "h" ? 3600 : unit == "d" ? 86400 : 0;
    if (ec != std::errc() || !mult)
      return Error{fmt::format("{} '{}' is neither an RFC 3339 time (2026-12-01T10:00:00Z) nor a duration "
                               "(30s, 10m, 2h, 1d)", flag, v)};
    return now_ns - std::min<uint64_t>(now_ns, n * mult * 1'000'000'000ull);
  };
  auto s = at(since, "--since");
  if (!s) return s.error();
  auto u = at(until, "--until");
  if (!u) return u.error();
  since_ns = *s;
  until_ns = *u;
  return {};
}

bool EventQuery::matches(const nlohmann::json& e) const {
  if (!e.is_object()) return false;
  std::string kind = str(e, {"kind"});
  if (!kinds.empty() && std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) return false;
  if (pid) {
    auto p = e.find("process");
    if (p == e.end() || !p->is_object() || p->value("pid", 0u) != pid) return false;
  }
  if (!comm.empty() && str(e, {"process", "comm"}) != comm) return false;
  if (!host.empty()) {
    bool hit = str(e, {"request", "host"}) == host || str(e, {"endpoint", "host"}) == host ||
               str(e, {"finding", "endpoint", "host"}) == host || str(e, {"dst", "fqdn"}) == host ||
               str(e, {"dst", "addr"}) == host;
    if (!hit) return false;
  }
  if (!path.empty()) {
    std::string p = str(e, {"request", "path"});
    if (p.empty()) p = str(e, {"endpoint", "path"});
    if (p.empty()) p = str(e, {"finding", "endpoint", "path"});
    if (!std::string_view(p).starts_with(path)) return false;
  }
  if (!verdict.empty() && (kind != "egress" || str(e, {"verdict"}) != verdict)) return false;
  if (!severity.empty() && event_severity(e) < sinks::parse_severity(severity)) return false;
  if (since_ns || until_ns) {
    uint64_t t = parse_rfc3339_ns(str(e, {"time"}));
    if (since_ns && t < since_ns) return false;
    if (until_ns && t > until_ns) return false;
  }
  return true;
}

}  // namespace vigil::cli
