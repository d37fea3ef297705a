// libFuzzer: control-socket requests are untrusted input (any local root
// process may connect); parsing a trace filter must never crash.
#include <cstddef>
#include <cstdint>

#include <nlohmann/json.hpp>

#include "agent/control/protocol.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto j = nlohmann::json::parse(data, data + size, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return 0;
  auto f = vigil::TraceFilter::from_json(j);
  if (f.ok()) (void)f->to_json().dump();
  return 0;
}
