#include "base/clock.h"

#include <time.h>

namespace vigil {
namespace {
uint64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + ts.tv_nsec;
}
}  // namespace

void BootClock::resync() { offset_ns_ = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME); }
uint64_t BootClock::now_wall_ns() { return clock_ns(CLOCK_REALTIME); }

}  // namespace vigil
