// The egress policy model (DESIGN.md §6): what a validated EgressPolicy says,
// independent of YAML and of the kernel tables it compiles to.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace vigil::policy {

enum class Mode { kAudit, kEnforce };
inline const char* mode_name(Mode m) { return m == Mode::kEnforce ? "enforce" : "audit"; }
enum class Proto { kAny, kTcp, kUdp };

// An IPv4 or IPv6 prefix. IPv4 is held as IPv4-mapped IPv6 (::ffff:a.b.c.d/96+len)
// so one table serves both families and mapped destinations match as IPv4.
struct Cidr {
  std::array<uint8_t, 16> addr{};
  uint8_t prefix = 0;  // in the 128-bit space
  bool v4 = false;
  std::string text;  // as written, for messages

  bool contains(const std::array<uint8_t, 16>& a) const;
  bool contains(const Cidr& other) const;
};

struct Peer {
  std::optional<Cidr> cidr;
  std::vector<Cidr> except;
  std::string fqdn;  // lower-case; "*.example.com" matches sub-domains only
};

struct PortRange {
  uint16_t first = 0, last = 0;  // inclusive
  Proto proto = Proto::kAny;
};

struct EgressRule {
  std::vector<Peer> to;       // empty: any destination
  std::vector<PortRange> ports;  // empty: any port and protocol
};

// Pods by namespace and labels (from the API server's pods of this node, agent/k8s):
// resolved to the pods' cgroups, so in the kernel it is a cgroup selector.
struct PodSelector {
  std::string ns;  // empty: every namespace
  std::map<std::string, std::string> match_labels;
};

struct Selector {
  std::vector<std::string> binaries;  // fnmatch globs on the executable path
  std::vector<std::string> cgroups;   // fnmatch globs on the cgroup v2 path
  std::vector<uint32_t> uids;
  std::vector<PodSelector> pods;      // any of them; not with cgroups (both name cgroups)
  bool empty() const { return binaries.empty() && cgroups.empty() && uids.empty() && pods.empty(); }
};

struct EgressPolicy {
  std::string name;
  std::string source;  // "file:line" of the document
  Mode mode = Mode::kAudit;
  Selector selector;
  bool allow_loopback = true;
  std::vector<EgressRule> egress;
};

}  // namespace vigil::policy
