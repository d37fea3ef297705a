// Which api_call events are shipped (config `events.api_call`): all of them, the
// notable ones, or the notable ones and 1 in N of the rest. Every call is still
// paired, counted and fed to the inventory; only the event is left out.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "agent/config/config.h"  // ApiCallEmission (the level names are config's)
#include "agent/events/events.h"

namespace vigil {

// Why a call is shipped at every level (bits).
enum NotableReason : uint8_t {
  kNotableFirst = 1,        // the endpoint's first call
  kNotableFinding = 2,      // it raised a finding
  kNotableServerError = 4,  // status >= 500 (or a gRPC error)
  kNotableAuthFailure = 8,  // 401, 403 (gRPC UNAUTHENTICATED, PERMISSION_DENIED)
  kNotableSensitive = 16,   // it carried a sensitive data class
};

// The reasons the event itself shows; `from_inventory` adds first/finding.
uint8_t notable_reasons(const ApiCallEvent& call, uint8_t from_inventory);

class ApiCallSampler {
 public:
  struct Options {
    ApiCallEmission mode = ApiCallEmission::kAll;
    uint32_t sample_every = 100;  // kSampled: 1 in this many of the calls that are not notable
  };
  explicit ApiCallSampler(Options o) : o_(o) {}

  bool ships_all() const { return o_.mode == ApiCallEmission::kAll; }
  // Whether the call with these reasons is shipped; counts both answers.
  bool ship(uint8_t reasons) {
    bool yes = ships_all() || reasons != 0 ||
               (o_.mode == ApiCallEmission::kSampled && o_.sample_every && ++unnotable_ % o_.sample_every == 0);
    ++(yes ? shipped_ : skipped_);
    return yes;
  }
  uint64_t shipped() const { return shipped_; }
  uint64_t skipped() const { return skipped_; }
  const Options& options() const { return o_; }

 private:
  Options o_;
  uint64_t unnotable_ = 0, shipped_ = 0, skipped_ = 0;
};

}  // namespace vigil
