// Compiled policies plus this host's resolved selectors -> the map entries of
// one generation, in the layout of vigil/egress_abi.h (written by the enforcer).
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

#include "bpf/include/vigil/egress_abi.h"
#include "policy/compiler.h"

namespace vigil::policy {

// Host-resolved selector tables of one generation (`gen` is filled in by the enforcer).
struct EgressSelectors {
  std::vector<std::pair<vigil_eg_bin_key, uint64_t>> bins;
  std::vector<std::pair<vigil_eg_cgroup_key, uint64_t>> cgroups;
  std::vector<std::pair<vigil_eg_uid_key, uint64_t>> uids;
};
bool operator==(const EgressSelectors& a, const EgressSelectors& b);

// Everything one generation holds, as map entries.
struct EgressTables {
  vigil_eg_gen gen{};
  EgressSelectors selectors;
  std::vector<std::pair<vigil_eg_cidr_key, vigil_eg_ports>> cidrs;
  std::vector<std::pair<uint64_t, uint64_t>> fqdns;  // pattern hash -> policy mask
  std::vector<std::pair<vigil_eg_fqdn_ports_key, vigil_eg_ports>> fqdn_ports;
};

EgressTables kernel_tables(const Tables& tables, EgressSelectors selectors);

}  // namespace vigil::policy
