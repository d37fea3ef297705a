// Least-privilege policies from what workloads were seen doing: one policy per
// binary (or cgroup) allowing exactly the destinations its client connections
// reached, by DNS name where the events name one (`vigil policy generate`).
#pragma once

#include <cstddef>
#include <istream>
#include <string>
#include <vector>

#include "base/result.h"

namespace vigil::policy {

struct GenerateOptions {
  std::string select = "binary";  // binary | cgroup: what one policy covers
  std::string mode = "audit";     // audit | enforce
  std::string source = "events";  // names the input in the YAML header and in messages
  // Loopback destinations become allow rules too, and allowLoopback is false:
  // the policy then allows exactly what was seen, even on this host.
  bool include_loopback = false;
};

// One client connection seen: who (exe or cgroup), where, and the DNS name it used.
struct Flow {
  std::string subject, addr;
  uint16_t port = 0;
  std::string proto = "tcp", fqdn;
};

struct Generated {
  std::string yaml;  // validated: it loads as `vigil policy validate` would load it
  size_t lines = 0;
  size_t connections = 0;  // client connections the policies are built from
  std::vector<std::string> warnings;  // e.g. "FILE:LINE: not a JSON event (skipped)"
};

// Reads JSON-lines events (connection, api_call and egress kinds are used).
// An error when they hold no client connection to a non-loopback destination.
Result<Generated> generate_policies(std::istream& events, const GenerateOptions& options);
// From flows (e.g. the inventory's client-role endpoints): the same policies.
Result<Generated> generate_from_flows(const std::vector<Flow>& flows, const GenerateOptions& options);

}  // namespace vigil::policy
