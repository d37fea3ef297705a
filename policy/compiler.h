// Validated policies -> the tables the kernel enforces from (vigil/egress_abi.h).
// `vigil policy test` answers from these same tables (Tables::judge), so what
// the CLI says is what the kernel does.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "policy/evaluator.h"
#include "policy/model.h"
#include "bpf/include/vigil/egress_abi.h"

namespace vigil::policy {

struct CompiledPolicy {
  std::string name;
  std::string source;
  Mode mode = Mode::kAudit;
  Selector selector;
};

// One LPM entry: for this policy, destinations inside `prefix` (and in no
// longer prefix of the same policy) may use `ports`.
struct CidrEntry {
  uint8_t policy = 0;
  std::array<uint8_t, 16> addr{};
  uint8_t prefix = 0;  // of 128
  vigil_eg_ports ports{};
};

// An FQDN pattern of a policy and the ports its addresses may use.
struct FqdnEntry {
  uint8_t policy = 0;
  std::string pattern;  // "api.example.com" or "*.example.com"
  uint64_t hash = 0;    // fqdn_pattern_hash(pattern)
  vigil_eg_ports ports{};
};

struct Tables {
  std::vector<CompiledPolicy> policies;  // index = policy bit
  std::vector<CidrEntry> cidrs;
  std::vector<FqdnEntry> fqdns;

  uint64_t enforce_mask() const;
  uint64_t any_bin_mask() const;     // policies without a binaries selector
  uint64_t any_cgroup_mask() const;
  uint64_t any_uid_mask() const;
  uint64_t active_mask() const;
  // The pattern a hash stands for, or empty.
  std::string_view pattern_of(uint64_t hash) const;
  // Which policies select `who` (the kernel's exe/cgroup/uid tables, by path).
  uint64_t selecting(const Subject& who) const;
  // The kernel's decision for `who` connecting to `dst`; `dst.fqdns` are the
  // names DNS answers taught the host for its address.
  Verdict judge(const Subject& who, const Destination& dst) const;
};

// The hash the kernel computes for a DNS name (FNV-1a over its bytes, last to
// first). A wildcard pattern "*.example.com" is stored as ".example.com".
uint64_t name_hash(std::string_view lower_name);
uint64_t fqdn_pattern_hash(std::string_view pattern);

// Fails when the set exceeds the kernel's limits (policies, port ranges per
// destination), naming the policy.
Result<Tables> compile(const std::vector<EgressPolicy>& policies);

}  // namespace vigil::policy
