// Small libbpf helpers shared by the skeleton owners: the ABI version check
// at open, and reading per-CPU counter arrays (one __u64 per slot).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "base/result.h"

namespace vigil {

// An object built against another ABI than the agent's is refused before load.
Status check_abi_version(std::string_view object, uint32_t built, uint32_t expected);

// Fills out[slot] with the slot's total over all possible CPUs (0 when unreadable).
void sum_percpu_slots(int map_fd, std::span<uint64_t> out);

template <size_t N>
std::array<uint64_t, N> sum_percpu_slots(int map_fd) {
  std::array<uint64_t, N> out{};
  sum_percpu_slots(map_fd, out);
  return out;
}

}  // namespace vigil
