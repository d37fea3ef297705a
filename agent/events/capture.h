// Capture levels (config capture.level, capture.rules): how much of each call the
// agent looks at. metadata: method, host, path, status, latency and sizes;
// headers: plus the header fields (auth schemes, secrets in headers, media
// types, header fields in api_call events); full: plus the bodies (sensitive data
// in bodies, body schemas, shipped bodies when capture.bodies). At headers a
// call is looked at in full when it is one of its endpoint's first full_first
// calls or 1 in full_sample_every after them.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/config/config.h"
#include "agent/events/events.h"

namespace vigil {

struct CaptureOptions {
  CaptureLevel level = CaptureLevel::kHeaders;
  uint32_t full_first = 20;
  uint32_t full_sample_every = 100;
  std::vector<CaptureRule> rules;
};

// What the rules say of a connection's calls before their endpoint is known.
struct CaptureScope {
  CaptureLevel level = CaptureLevel::kHeaders;  // when no endpoint rule below matches
  uint64_t endpoint_rules = 0;                  // rules (bits) to try on the endpoint first, in order
};

// What the call observer (the inventory) says of a call.
struct CallOutcome {
  uint8_t reasons = 0;                          // what makes it notable beyond the event (NotableReason bits)
  CaptureLevel level = CaptureLevel::kHeaders;  // how much of it was looked at (and is shipped)
};

class CapturePolicy {
 public:
  explicit CapturePolicy(CaptureOptions o = {});

  // The rules without endpoints decide here; rules with endpoints that come
  // before the first match and whose other fields match are left for for_call.
  CaptureScope for_connection(const ProcessRef& p, const ConnRef& c) const;
  // The level of one call: its endpoint ("/users/{id}", or its path where no
  // inventory templates it) against the scope's endpoint rules, then at headers
  // the endpoint's first calls and the samples in full. `nth`: how many calls of
  // the endpoint came before this one.
  CaptureLevel for_call(const CaptureScope& s, std::string_view method, std::string_view endpoint,
                        uint64_t nth) const;
  // Whether any call can be looked at in full (else bodies need not be kept).
  bool may_be_full() const;
  bool has_rules() const { return !o_.rules.empty(); }

  // Counts of the calls at each level (vigil status).
  void count(CaptureLevel l) { ++counts_[static_cast<size_t>(l)]; }
  const std::array<uint64_t, 3>& counts() const { return counts_; }
  nlohmann::json status() const;

 private:
  CaptureOptions o_;
  std::array<uint64_t, 3> counts_{};
};

}  // namespace vigil
