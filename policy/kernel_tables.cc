#include "policy/kernel_tables.h"

#include <algorithm>
#include <cstring>
#include <map>

namespace vigil::policy {

EgressTables kernel_tables(const Tables& t, EgressSelectors selectors) {
  EgressTables k;
  k.gen = {t.active_mask(), t.enforce_mask(), t.any_bin_mask(), t.any_cgroup_mask(), t.any_uid_mask()};
  k.selectors = std::move(selectors);
  for (const auto& e : t.cidrs) {
    vigil_eg_cidr_key key{};
    key.prefixlen = 32 + e.prefix;
    key.policy = e.policy;
    std::copy(e.addr.begin(), e.addr.end(), key.addr);
    k.cidrs.push_back({key, e.ports});
  }
  std::map<uint64_t, uint64_t> patterns;
  for (const auto& f : t.fqdns) {
    patterns[f.hash] |= 1ull << f.policy;
    k.fqdn_ports.push_back({{0, f.policy, f.hash}, f.ports});
  }
  k.fqdns.assign(patterns.begin(), patterns.end());
  return k;
}

bool operator==(const EgressSelectors& a, const EgressSelectors& b) {
  auto same = [](const auto& x, const auto& y) {
    return x.size() == y.size() && std::equal(x.begin(), x.end(), y.begin(), [](const auto& p, const auto& q) {
             return std::memcmp(&p.first, &q.first, sizeof(p.first)) == 0 && p.second == q.second;
           });
  };
  return same(a.bins, b.bins) && same(a.cgroups, b.cgroups) && same(a.uids, b.uids);
}

}  // namespace vigil::policy
