// Host preparation the observation programs need: bpffs, tracefs, memlock,
// libbpf's log routed into ours, and kernel feature probes.
#pragma once

#include <string>
#include <vector>

#include "base/result.h"

namespace vigil {

// Mounts tracefs at /sys/kernel/tracing and bpffs at /sys/fs/bpf when missing.
Status ensure_kernel_mounts();
// Mounts bpffs at `target` (mode 0700) unless one is mounted there.
Status mount_bpffs(const std::string& target);
// Raises RLIMIT_MEMLOCK for kernels that still charge BPF memory to it.
Status raise_memlock_limit();
// Routes libbpf's messages into vigil::log (debug level unless verbose).
void route_libbpf_logs(bool verbose);
// Which of `tracepoints` the kernel's BTF describes (tp_btf is loadable for
// them), in the same order. vmlinux BTF is parsed once for all of them.
std::vector<bool> kernel_has_btf_tracepoints(const std::vector<const char*>& tracepoints);

}  // namespace vigil
