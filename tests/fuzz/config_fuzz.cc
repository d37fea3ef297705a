// libFuzzer: the config loader must turn any bytes into a Config or an Error,
// never crash, hang or leak.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/config/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto c = vigil::parse_config(std::string_view(reinterpret_cast<const char*>(data), size), "fuzz.yaml");
  if (!c.ok() && c.error().message.empty()) __builtin_trap();
  return 0;
}
