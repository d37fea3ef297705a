// What the connection tracker needs of a protocol tracker on one connection:
// feed it the captured bytes of both directions, take the finished exchanges.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "collectors/protocols/common/message.h"

namespace vigil::protocols {

struct TrackerStats {
  uint64_t exchanges = 0;
  uint64_t unpaired_requests = 0;   // no response seen (or dropped after a desync)
  uint64_t unpaired_responses = 0;  // no request to pair with
  uint64_t gap_bytes = 0;
  uint64_t partial_streams = 0;     // HTTP/2: streams whose headers could not be decoded
};

class ExchangeTracker {
 public:
  virtual ~ExchangeTracker() = default;
  // One data record of this connection. egress: written by the observed process.
  virtual void on_data(bool egress, uint64_t offset, uint64_t length, std::string_view captured, uint64_t ts) = 0;
  // The connection closed: finishes what can be finished.
  virtual void on_close(uint64_t ts) = 0;
  // Periodic: bytes held back for a missing earlier record since before
  // `now - hold_ns` are delivered, the record taken as lost.
  virtual void tick(uint64_t now, uint64_t hold_ns = 50'000'000) = 0;
  virtual std::vector<Exchange>& exchanges() = 0;
  virtual const TrackerStats& stats() const = 0;
};

}  // namespace vigil::protocols
