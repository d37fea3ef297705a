#include "collectors/kernel/bpf_util.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <vector>

#include <fmt/format.h>

namespace vigil {

Status check_abi_version(std::string_view object, uint32_t built, uint32_t expected) {
  if (built == expected) return {};
  return Error{fmt::format("BPF object {} has ABI version {}, the agent expects {}", object, built, expected)};
}

void sum_percpu_slots(int map_fd, std::span<uint64_t> out) {
  std::fill(out.begin(), out.end(), 0);
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) return;
  std::vector<uint64_t> per_cpu(ncpu);
  for (uint32_t slot = 0; slot < out.size(); ++slot) {
    if (bpf_map_lookup_elem(map_fd, &slot, per_cpu.data()) != 0) continue;
    for (uint64_t v : per_cpu) out[slot] += v;
  }
}

}  // namespace vigil
