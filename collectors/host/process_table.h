// The process table: who a pid is (exe, parent, uid, cgroup, container, pod).
// Seeded from /proc at start, then kept by the kernel's exec/fork/exit events.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <unordered_map>

#include "bpf/include/vigil/abi.h"
#include "collectors/host/cgroup.h"

namespace vigil {

struct ProcessInfo {
  uint32_t pid = 0;
  uint32_t ppid = 0;
  uint32_t uid = 0;
  std::string comm;
  std::string exe;
  std::string cgroup;
  uint64_t cgroup_id = 0;
  ContainerRef container;
};

class ProcessTable {
 public:
  // proc_root is "/proc" outside tests; cgroups may be null (no cgroup paths).
  ProcessTable(std::string proc_root, CgroupResolver* cgroups);

  // Reads every /proc/PID; returns how many processes it found.
  size_t seed();
  void on_exec(const vigil_exec_event& e);
  void on_fork(const vigil_fork_event& e);
  // Exited processes stay resolvable for `linger_ns` of event time, so events
  // that the kernel emitted just before the exit still find their process.
  void on_exit(const vigil_exit_event& e, uint64_t linger_ns = 5'000'000'000ull);

  // The process behind an event header, learnt from /proc on a miss.
  const ProcessInfo& resolve(const vigil_event_header& hdr);
  const ProcessInfo* find(uint32_t pid) const;
  size_t size() const { return procs_.size(); }

 private:
  ProcessInfo* load_from_proc(uint32_t pid);
  void set_cgroup(ProcessInfo& p, uint64_t cgroup_id, uint32_t pid);
  void purge(uint64_t now_ns);

  std::string proc_root_;
  CgroupResolver* cgroups_;
  std::unordered_map<uint32_t, ProcessInfo> procs_;
  std::deque<std::pair<uint64_t, uint32_t>> exited_;  // (forget at ns, pid)
};

}  // namespace vigil
