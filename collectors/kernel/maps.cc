#include "collectors/kernel/maps.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <vector>

namespace vigil {

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
