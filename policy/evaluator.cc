#include "policy/evaluator.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <cstring>

#include <fmt/format.h>

namespace vigil::policy {
namespace {

bool is_loopback(const std::array<uint8_t, 16>& a) {
  static constexpr std::array<uint8_t, 16> kV6Loopback = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  bool v4_mapped = std::all_of(a.begin(), a.begin() + 10, [](uint8_t b) { return b == 0; }) &&
                   a[10] == 0xff && a[11] == 0xff;
  return a == kV6Loopback || (v4_mapped && a[12] == 127);
}

bool peer_matches(const Peer& p, const Destination& d) {
  if (p.cidr) {
    if (!p.cidr->contains(d.addr)) return false;
    return std::none_of(p.except.begin(), p.except.end(), [&](const Cidr& e) { return e.contains(d.addr); });
  }
  return std::any_of(d.fqdns.begin(), d.fqdns.end(), [&](const std::string& n) { return fqdn_matches(p.fqdn, n); });
}

bool port_matches(const PortRange& r, const Destination& d) {
  return d.port >= r.first && d.port <= r.last && (r.proto == Proto::kAny || r.proto == d.proto);
}

}  // namespace

const char* outcome_name(Outcome o) {
  switch (o) {
    case Outcome::kUnrestricted: return "unrestricted";
    case Outcome::kAllow: return "allow";
    case Outcome::kDeny: return "deny";
    case Outcome::kWouldDeny: return "would_deny";
  }
  return "?";
}

bool fqdn_matches(std::string_view pattern, std::string_view name) {
  if (pattern.substr(0, 2) == "*.") {
    std::string_view suffix = pattern.substr(1);  // ".example.com"
    return name.size() > suffix.size() && name.substr(name.size() - suffix.size()) == suffix;
  }
  return pattern == name;
}

Result<Destination> parse_destination(std::string_view text, Proto proto) {
  Destination d;
  d.proto = proto;
  std::string host;
  std::string_view port;
  if (!text.empty() && text.front() == '[') {
    size_t close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
      return Error{fmt::format("destination '{}' must be ADDR:PORT or [ADDR6]:PORT", text)};
    host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
  } else {
    size_t colon = text.rfind(':');
    if (colon == std::string_view::npos || text.find(':') != colon)
      return Error{fmt::format("destination '{}' must be ADDR:PORT or [ADDR6]:PORT", text)};
    host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
  }
  unsigned p = 0;
  auto [ptr, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc() || ptr != port.data() + port.size() || p == 0 || p > 65535)
    return Error{fmt::format("destination '{}' has a bad port", text)};
  d.port = static_cast<uint16_t>(p);
  in_addr v4{};
  in6_addr v6{};
  if (inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    d.addr[10] = d.addr[11] = 0xff;
    std::memcpy(&d.addr[12], &v4, 4);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    std::memcpy(d.addr.data(), &v6, 16);  // IPv4-mapped stays mapped: judged as IPv4
  } else {
    return Error{fmt::format("destination '{}': '{}' is not an IP address", text, host)};
  }
  return d;
}

Verdict Evaluator::evaluate(const Subject& who, const Destination& dst) const {
  std::vector<const EgressPolicy*> selecting;
  for (const auto& p : policies_)
    if (selects(p.selector, who)) selecting.push_back(&p);
  if (selecting.empty()) return {};

  // A union of allows: the first policy and rule that allow decide the reason.
  for (const EgressPolicy* p : selecting) {
    if (p->allow_loopback && is_loopback(dst.addr)) return {Outcome::kAllow, p->name, "loopback"};
    for (size_t i = 0; i < p->egress.size(); ++i) {
      const EgressRule& r = p->egress[i];
      bool to = r.to.empty() || std::any_of(r.to.begin(), r.to.end(), [&](const Peer& peer) { return peer_matches(peer, dst); });
      bool port = r.ports.empty() || std::any_of(r.ports.begin(), r.ports.end(), [&](const PortRange& pr) { return port_matches(pr, dst); });
      if (to && port) return {Outcome::kAllow, p->name, fmt::format("egress[{}]", i)};
    }
  }
  // Denied: any enforcing policy makes it a real deny.
  auto enforcing = std::find_if(selecting.begin(), selecting.end(),
                                [](const EgressPolicy* p) { return p->mode == Mode::kEnforce; });
  if (enforcing != selecting.end()) return {Outcome::kDeny, (*enforcing)->name, ""};
  return {Outcome::kWouldDeny, selecting.front()->name, ""};
}

}  // namespace vigil::policy
