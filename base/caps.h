// The capabilities vigild runs with (CapEff of /proc/self/status; no libcap), and
// what each one is for: the table the README, the systemd unit and the DaemonSet
// grant, measured by running vigild with a reduced bounding set (tests/e2e/test_caps.py).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace vigil::caps {

constexpr int kDacReadSearch = 2;
constexpr int kNetAdmin = 12;
constexpr int kSysPtrace = 19;
constexpr int kSysAdmin = 21;
constexpr int kPerfmon = 38;
constexpr int kBpf = 39;

struct Need {
  int cap;
  const char* name;     // "CAP_BPF"
  bool required;        // vigild does not start without it
  const char* for_what; // what needs it
  const char* without;  // what is lost without it
};
// Every capability vigild uses, in the order of the README's table.
std::span<const Need> needs();

// The effective set of this process (bit n = capability n).
uint64_t effective();
inline bool has(uint64_t set, int cap) { return (set >> cap) & 1; }
// The kernel accepts CAP_SYS_ADMIN for CAP_BPF and CAP_PERFMON (and for
// CAP_NET_ADMIN in bpf()).
bool has_bpf_perfmon(uint64_t set);
bool has_net_admin(uint64_t set);
// One line per capability of needs() missing from `set`: "CAP_X is missing: ...".
std::vector<std::string> missing(uint64_t set);

}  // namespace vigil::caps
