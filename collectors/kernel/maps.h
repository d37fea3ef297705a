// Reading the programs' per-CPU counter arrays (one __u64 per slot).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

namespace vigil {

// Fills out[slot] with the slot's total over all possible CPUs (0 when unreadable).
void sum_percpu_slots(int map_fd, std::span<uint64_t> out);

template <size_t N>
std::array<uint64_t, N> sum_percpu_slots(int map_fd) {
  std::array<uint64_t, N> out{};
  sum_percpu_slots(map_fd, out);
  return out;
}

}  // namespace vigil
