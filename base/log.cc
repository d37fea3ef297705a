#include "base/log.h"

#include <atomic>
#include <cstdio>

namespace vigil::log {
namespace {
std::atomic<Level> g_level{Level::kInfo};
constexpr const char* kNames[] = {"debug", "info", "warn", "error"};
}  // namespace

void set_level(Level l) { g_level.store(l); }
Level level() { return g_level.load(std::memory_order_relaxed); }

void write(Level l, std::string_view message) {
  // One fprintf per line so concurrent lines do not interleave.
  std::fprintf(stderr, "vigil %s: %.*s\n", kNames[static_cast<int>(l)],
               static_cast<int>(message.size()), message.data());
}

}  // namespace vigil::log
