// libFuzzer: redaction runs over captured bodies and queries (untrusted, often
// cut mid-token by the capture cap). It must never crash, read out of bounds,
// or grow without bound.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/events/api_call.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  std::string a = vigil::redact_body(in, "application/json");
  std::string b = vigil::redact_body(in, "application/x-www-form-urlencoded");
  std::string c = vigil::redact_query(in);
  // Each redaction replaces a value by a 10-byte marker: bounded growth.
  if (a.size() > 11 * size + 16 || b.size() > 11 * size + 16 || c.size() > 11 * size + 16) __builtin_trap();
  return 0;
}
