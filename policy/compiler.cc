#include "policy/compiler.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include <fmt/format.h>

namespace vigil::policy {
namespace {

using Addr = std::array<uint8_t, 16>;

struct Prefix {
  Addr addr{};
  uint8_t len = 0;
  auto operator<=>(const Prefix&) const = default;

  bool contains(const Prefix& o) const {
    if (o.len < len) return false;
    size_t full = len / 8, rest = len % 8;
    if (!std::equal(addr.begin(), addr.begin() + full, o.addr.begin())) return false;
    if (rest == 0) return true;
    auto mask = static_cast<uint8_t>(0xff << (8 - rest));
    return (addr[full] & mask) == (o.addr[full] & mask);
  }
};

Prefix normalized(const Addr& a, uint8_t len) {
  Prefix p{a, len};
  for (size_t bit = len; bit < 128; ++bit) p.addr[bit / 8] &= static_cast<uint8_t>(~(0x80 >> (bit % 8)));
  return p;
}
Prefix prefix_of(const Cidr& c) { return normalized(c.addr, c.prefix); }

const Prefix kAnyDestination{};  // ::/0 holds IPv6 and IPv4-mapped alike
Prefix v4_loopback() {
  Addr a{};
  a[10] = a[11] = 0xff;
  a[12] = 127;
  return normalized(a, 96 + 8);
}
Prefix v6_loopback() {
  Addr a{};
  a[15] = 1;
  return normalized(a, 128);
}

struct FlatPeer {  // one `to` entry as prefixes, or the loopback / any pseudo-peers
  Prefix cidr;
  std::vector<Prefix> except;
};

// A rule reduced to what the tables need: its peers and its port ranges.
struct FlatRule {
  uint16_t index;  // egress[index], or VIGIL_EG_RULE_LOOPBACK
  std::vector<FlatPeer> peers;
  std::vector<std::string> fqdns;
  std::vector<vigil_eg_port_range> ranges;
};

std::vector<vigil_eg_port_range> port_ranges(const EgressRule& r, uint16_t index) {
  std::vector<vigil_eg_port_range> out;
  if (r.ports.empty()) out.push_back({0, 65535, VIGIL_EG_PROTO_TCP | VIGIL_EG_PROTO_UDP, 0, index});
  for (const PortRange& p : r.ports) {
    uint8_t protos = p.proto == Proto::kTcp   ? VIGIL_EG_PROTO_TCP
                     : p.proto == Proto::kUdp ? VIGIL_EG_PROTO_UDP
                                              : VIGIL_EG_PROTO_TCP | VIGIL_EG_PROTO_UDP;
    out.push_back({p.first, p.last, protos, 0, index});
  }
  return out;
}

std::vector<FlatRule> flatten(const EgressPolicy& p) {
  std::vector<FlatRule> rules;
  if (p.allow_loopback) {
    rules.push_back({VIGIL_EG_RULE_LOOPBACK, {{v4_loopback(), {}}, {v6_loopback(), {}}}, {},
                     {{0, 65535, VIGIL_EG_PROTO_TCP | VIGIL_EG_PROTO_UDP, 0, VIGIL_EG_RULE_LOOPBACK}}});
  }
  for (size_t i = 0; i < p.egress.size(); ++i) {
    const EgressRule& r = p.egress[i];
    FlatRule f{static_cast<uint16_t>(i), {}, {}, port_ranges(r, static_cast<uint16_t>(i))};
    if (r.to.empty()) f.peers.push_back({kAnyDestination, {}});
    for (const auto& peer : r.to) {
      if (peer.cidr) {
        FlatPeer flat{prefix_of(*peer.cidr), {}};
        for (const Cidr& e : peer.except) flat.except.push_back(prefix_of(e));
        f.peers.push_back(std::move(flat));
      } else {
        f.fqdns.push_back(peer.fqdn);
      }
    }
    rules.push_back(std::move(f));
  }
  return rules;
}

// Adds `add` to `ports`, dropping exact duplicates; false when it would exceed
// the kernel's VIGIL_EG_PORT_RANGES.
bool add_ranges(vigil_eg_ports& ports, const std::vector<vigil_eg_port_range>& add) {
  for (const auto& r : add) {
    bool dup = false;
    for (uint32_t i = 0; i < ports.n; ++i) {
      const auto& have = ports.r[i];
      if (have.first <= r.first && have.last >= r.last && (have.protos & r.protos) == r.protos) dup = true;
    }
    if (dup) continue;
    if (ports.n == VIGIL_EG_PORT_RANGES) return false;
    ports.r[ports.n++] = r;
  }
  return true;
}

int rule_allowing(const vigil_eg_ports& p, uint16_t port, Proto proto) {
  uint8_t bit = proto == Proto::kUdp ? VIGIL_EG_PROTO_UDP : VIGIL_EG_PROTO_TCP;
  for (uint32_t i = 0; i < p.n; ++i)
    if (port >= p.r[i].first && port <= p.r[i].last && (p.r[i].protos & bit)) return p.r[i].rule;
  return -1;
}

std::string prefix_text(const Prefix& p) {
  char buf[INET6_ADDRSTRLEN] = {};
  bool v4 = p.len >= 96 && std::all_of(p.addr.begin(), p.addr.begin() + 10, [](uint8_t b) { return b == 0; }) &&
            p.addr[10] == 0xff && p.addr[11] == 0xff;
  if (v4) inet_ntop(AF_INET, &p.addr[12], buf, sizeof(buf));
  else inet_ntop(AF_INET6, p.addr.data(), buf, sizeof(buf));
  return fmt::format("{}/{}", buf, v4 ? p.len - 96 : p.len);
}

std::string rule_name(int rule) {
  return rule == VIGIL_EG_RULE_LOOPBACK ? "loopback" : fmt::format("egress[{}]", rule);
}

}  // namespace

uint64_t name_hash(std::string_view name) {
  uint64_t h = VIGIL_EG_HASH_SEED;
  for (size_t i = name.size(); i-- > 0;) {
    auto c = static_cast<uint8_t>(name[i]);
    if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
    h = (h ^ c) * VIGIL_EG_HASH_PRIME;
  }
  return h;
}

uint64_t fqdn_pattern_hash(std::string_view pattern) {
  return name_hash(pattern.starts_with("*.") ? pattern.substr(1) : pattern);
}

Result<Tables> compile(const std::vector<EgressPolicy>& policies) {
  if (policies.size() > VIGIL_EG_MAX_POLICIES)
    return Error{fmt::format("{} policies are loaded; the kernel tables hold at most {}", policies.size(),
                             VIGIL_EG_MAX_POLICIES)};
  Tables t;
  for (size_t pi = 0; pi < policies.size(); ++pi) {
    const EgressPolicy& p = policies[pi];
    t.policies.push_back({p.name, p.source, p.mode, p.selector});
    std::vector<FlatRule> rules = flatten(p);

    // Every prefix the policy mentions becomes an entry whose ports are those
    // of every rule covering it (and not excepting it). The longest-prefix
    // match then answers exactly: prefixes either nest or are disjoint, so a
    // rule covers an address iff it covers the longest prefix holding it.
    std::set<Prefix> prefixes;
    for (const auto& r : rules)
      for (const auto& peer : r.peers) {
        prefixes.insert(peer.cidr);
        prefixes.insert(peer.except.begin(), peer.except.end());
      }
    for (const Prefix& pre : prefixes) {
      CidrEntry e{static_cast<uint8_t>(pi), pre.addr, pre.len, {}};
      for (const auto& r : rules) {
        bool covers = std::any_of(r.peers.begin(), r.peers.end(), [&](const FlatPeer& peer) {
          return peer.cidr.contains(pre) &&
                 std::none_of(peer.except.begin(), peer.except.end(), [&](const Prefix& x) { return x.contains(pre); });
        });
        if (covers && !add_ranges(e.ports, r.ranges))
          return Error{fmt::format("policy '{}' ({}): destinations in {} allow more than {} port ranges; "
                                   "merge ports or split the policy",
                                   p.name, p.source, prefix_text(pre), VIGIL_EG_PORT_RANGES)};
      }
      t.cidrs.push_back(e);
    }

    std::map<std::string, vigil_eg_ports> by_pattern;
    for (const auto& r : rules)
      for (const auto& f : r.fqdns)
        if (!add_ranges(by_pattern[f], r.ranges))
          return Error{fmt::format("policy '{}' ({}): '{}' allows more than {} port ranges", p.name, p.source, f,
                                   VIGIL_EG_PORT_RANGES)};
    for (auto& [pattern, ports] : by_pattern)
      t.fqdns.push_back({static_cast<uint8_t>(pi), pattern, fqdn_pattern_hash(pattern), ports});
  }
  return t;
}

uint64_t Tables::active_mask() const {
  return policies.size() >= 64 ? ~0ull : (1ull << policies.size()) - 1;
}

#define VIGIL_MASK_OF(fn, pred)                                          \
  uint64_t Tables::fn() const {                                           \
    uint64_t m = 0;                                                       \
    for (size_t i = 0; i < policies.size(); ++i)                          \
      if (pred(policies[i])) m |= 1ull << i;                              \
    return m;                                                             \
  }
VIGIL_MASK_OF(enforce_mask, [](const CompiledPolicy& p) { return p.mode == Mode::kEnforce; })
VIGIL_MASK_OF(any_bin_mask, [](const CompiledPolicy& p) { return p.selector.binaries.empty(); })
VIGIL_MASK_OF(any_cgroup_mask, [](const CompiledPolicy& p) { return p.selector.cgroups.empty() && p.selector.pods.empty(); })
VIGIL_MASK_OF(any_uid_mask, [](const CompiledPolicy& p) { return p.selector.uids.empty(); })
#undef VIGIL_MASK_OF

std::string_view Tables::pattern_of(uint64_t hash) const {
  for (const auto& f : fqdns)
    if (f.hash == hash) return f.pattern;
  return {};
}

uint64_t Tables::selecting(const Subject& who) const {
  uint64_t m = 0;
  for (size_t i = 0; i < policies.size(); ++i)
    if (fields_match(policies[i].selector, who)) m |= 1ull << i;
  return m;
}

Verdict Tables::judge(const Subject& who, const Destination& dst) const {
  uint64_t sel = selecting(who);
  if (!sel) return {};
  // Per selected policy: the longest prefix of that policy holding the address.
  for (size_t i = 0; i < policies.size(); ++i) {
    if (!(sel >> i & 1)) continue;
    const CidrEntry* best = nullptr;
    Prefix addr{dst.addr, 128};
    for (const auto& e : cidrs)
      if (e.policy == i && Prefix{e.addr, e.prefix}.contains(addr) && (!best || e.prefix > best->prefix)) best = &e;
    if (!best) continue;
    if (int rule = rule_allowing(best->ports, dst.port, dst.proto); rule >= 0)
      return {Outcome::kAllow, policies[i].name, rule_name(rule)};
  }
  // Names the host learnt for the address: the exact name and each "*.suffix" form.
  for (const std::string& name : dst.fqdns) {
    std::vector<uint64_t> hashes{name_hash(name)};
    for (size_t dot = name.find('.', 1); dot != std::string::npos; dot = name.find('.', dot + 1))
      hashes.push_back(name_hash(std::string_view(name).substr(dot)));
    for (size_t i = 0; i < policies.size(); ++i) {
      if (!(sel >> i & 1)) continue;
      for (const auto& f : fqdns) {
        if (f.policy != i || std::find(hashes.begin(), hashes.end(), f.hash) == hashes.end()) continue;
        if (int rule = rule_allowing(f.ports, dst.port, dst.proto); rule >= 0)
          return {Outcome::kAllow, policies[i].name, rule_name(rule)};
      }
    }
  }
  uint64_t enforcing = sel & enforce_mask();
  uint64_t decider = enforcing ? enforcing : sel;
  size_t first = 0;
  while (!(decider >> first & 1)) ++first;
  return {enforcing ? Outcome::kDeny : Outcome::kWouldDeny, policies[first].name, ""};
}

}  // namespace vigil::policy
