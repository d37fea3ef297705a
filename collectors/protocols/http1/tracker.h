// HTTP/1.x on one connection: reassembles both directions, parses them, and
// pairs each response with its request. A desynchronised stream (gap, bad
// bytes) drops the requests that may have lost their answer rather than
// pairing them with someone else's response.
#pragma once

#include <cstdint>
#include <deque>
#include <string_view>
#include <vector>

#include "collectors/protocols/common/tracker.h"
#include "collectors/protocols/http1/parser.h"
#include "collectors/stream/reassembler.h"

namespace vigil::http1 {

using protocols::Exchange;
using protocols::TrackerStats;

class Tracker : public protocols::ExchangeTracker {
 public:
  // client: requests are written (egress); server: requests are read (ingress).
  Tracker(bool client_role, Limits limits = {});

  // One data record of this connection. egress: written by the observed process.
  void on_data(bool egress, uint64_t offset, uint64_t length, std::string_view captured,
               uint64_t ts) override;
  // The connection closed: finishes what can be finished.
  void on_close(uint64_t ts) override;
  // Periodic: bytes held back for a missing earlier record since before
  // `now - hold_ns` are delivered, the record taken as lost.
  void tick(uint64_t now, uint64_t hold_ns = 50'000'000) override;

  std::vector<Exchange>& exchanges() override { return ready_; }
  const TrackerStats& stats() const override { return stats_; }
  bool ignored() const { return requests_.parser.ignored() && responses_.parser.ignored(); }

 private:
  struct Direction : Reassembler::Sink {
    explicit Direction(Kind kind, Limits limits) : parser(kind, limits) {}
    void data(std::string_view b, uint64_t ts) override { parser.feed(b, ts); }
    void gap(uint64_t n, uint64_t ts) override { parser.gap(n, ts); }
    Reassembler reasm;
    StreamParser parser;
    uint64_t seen_invalid = 0;
  };
  void after_input(uint64_t ts);
  void drop_pending_before(uint64_t ts);

  bool client_;
  Direction requests_;
  Direction responses_;
  std::deque<Message> pending_;  // requests waiting for their response (at most StreamParser::kMaxPending)
  uint64_t skip_responses_ = 0;  // responses still to come for requests dropped from pending_
  // Responses sent before their request's body was read (a server may answer
  // after the head, e.g. nginx `return`, and read or discard the body later).
  std::deque<Message> early_;
  std::vector<Exchange> ready_;
  TrackerStats stats_;
};

}  // namespace vigil::http1
