// Clocks: the kernel stamps events with CLOCK_BOOTTIME; events carry wall time.
#pragma once

#include <cstdint>

namespace vigil {

// Converts the kernel's CLOCK_BOOTTIME stamps to wall-clock time.
class BootClock {
 public:
  BootClock() { resync(); }
  void resync();  // re-read both clocks (wall time can be stepped)
  uint64_t to_wall_ns(uint64_t boot_ns) const { return boot_ns + offset_ns_; }
  uint64_t to_boot_ns(uint64_t wall_ns) const { return wall_ns - offset_ns_; }
  static uint64_t now_wall_ns();

 private:
  uint64_t offset_ns_ = 0;
};

}  // namespace vigil
