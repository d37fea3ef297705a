#include "base/caps.h"

#include <fmt/format.h>

#include <array>
#include <sstream>

#include "base/file.h"

namespace vigil::caps {

std::span<const Need> needs() {
  static constexpr std::array<Need, 5> kNeeds = {{
      {kBpf, "CAP_BPF", true, "creating maps, loading and attaching every program (bpf())",
       "nothing loads: vigild does not start"},
      {kPerfmon, "CAP_PERFMON", true,
       "tracing programs (socket and process tracepoints), reading kernel memory in them, TLS uprobes "
       "through tracefs",
       "nothing loads: vigild does not start"},
      {kNetAdmin, "CAP_NET_ADMIN", false, "the egress programs (cgroup connect/sendmsg, DNS answers)",
       "egress policies are not enforced (observation runs)"},
      {kSysPtrace, "CAP_SYS_PTRACE", false,
       "/proc/<pid>/exe, maps, root and fd of processes with capabilities vigild lacks (most root daemons, "
       "containers)",
       "those processes' executable paths, TLS libraries and connections open before the start are not seen; "
       "binary selectors do not match them"},
      {kDacReadSearch, "CAP_DAC_READ_SEARCH", false,
       "reading executables and libraries whose mode bits shut out root-without-override (e.g. under a 0700 home)",
       "TLS in those files is not probed"},
  }};
  return kNeeds;
}

uint64_t effective() {
  std::istringstream in(read_small_file("/proc/self/status"));
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("CapEff:")) return std::stoull(line.substr(7), nullptr, 16);
  return 0;
}

bool has_bpf_perfmon(uint64_t set) { return has(set, kSysAdmin) || (has(set, kBpf) && has(set, kPerfmon)); }
bool has_net_admin(uint64_t set) { return has(set, kNetAdmin) || has(set, kSysAdmin); }

std::vector<std::string> missing(uint64_t set) {
  std::vector<std::string> out;
  for (const Need& n : needs()) {
    bool ok = has(set, n.cap) || (n.cap != kSysPtrace && n.cap != kDacReadSearch && has(set, kSysAdmin));
    if (!ok) out.push_back(fmt::format("{} is missing: {} (it serves {})", n.name, n.without, n.for_what));
  }
  return out;
}

}  // namespace vigil::caps
