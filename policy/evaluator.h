// Judges a connect against validated policies: the reference semantics that
// the kernel's compiled tables must reproduce (and `vigil policy test` answers).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/result.h"
#include "policy/model.h"
#include "policy/selector.h"

namespace vigil::policy {

struct Destination {
  std::array<uint8_t, 16> addr{};  // IPv6, or IPv4-mapped IPv6 for IPv4
  uint16_t port = 0;
  Proto proto = Proto::kTcp;
  std::vector<std::string> fqdns;  // names the host learnt for addr (lower-case)
};

// "127.0.0.2:443", "[::1]:80", "[::ffff:127.0.0.2]:80" (judged as IPv4).
Result<Destination> parse_destination(std::string_view text, Proto proto);

enum class Outcome { kUnrestricted, kAllow, kDeny, kWouldDeny };
const char* outcome_name(Outcome o);  // "unrestricted", "allow", "deny", "would_deny"

struct Verdict {
  Outcome outcome = Outcome::kUnrestricted;
  std::string policy;  // the allowing policy, or the one whose mode decided a deny
  std::string rule;    // "egress[i]", "loopback", or empty on a deny
};

class Evaluator {
 public:
  explicit Evaluator(std::vector<EgressPolicy> policies) : policies_(std::move(policies)) {}
  Verdict evaluate(const Subject& who, const Destination& dst) const;
  const std::vector<EgressPolicy>& policies() const { return policies_; }

 private:
  std::vector<EgressPolicy> policies_;
};

bool fqdn_matches(std::string_view pattern, std::string_view name);

}  // namespace vigil::policy
