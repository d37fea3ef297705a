// Host preparation the observation programs need: bpffs, tracefs, memlock,
// libbpf's log routed into ours, and kernel feature probes.
#pragma once

#include <string>

#include "base/result.h"

namespace vigil {

// Mounts tracefs at /sys/kernel/tracing and bpffs at /sys/fs/bpf when missing.
Status ensure_kernel_mounts();
// Raises RLIMIT_MEMLOCK for kernels that still charge BPF memory to it.
Status raise_memlock_limit();
// Routes libbpf's messages into vigil::log (debug level unless verbose).
void route_libbpf_logs(bool verbose);
// True when the kernel's BTF describes the raw tracepoint (tp_btf is loadable).
bool kernel_has_btf_tracepoint(const char* tracepoint);
// Text of a small file (e.g. under /proc), empty when it cannot be read.
std::string read_small_file(const std::string& path);

}  // namespace vigil
