// Turns decoded kernel events into schema events: keeps the process and
// connection tables current and attaches who/where to every connection fact.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "api_call.h"
#include "events.h"
#include "observer.h"
#include "process_table.h"
#include "connection_table.h"

namespace vigil {

// Converts the kernel's CLOCK_BOOTTIME stamps to wall-clock time.
class BootClock {
 public:
  BootClock() { resync(); }
  void resync();  // re-read both clocks (wall time can be stepped)
  uint64_t to_wall_ns(uint64_t boot_ns) const { return boot_ns + offset_ns_; }
  uint64_t to_boot_ns(uint64_t wall_ns) const { return wall_ns - offset_ns_; }
  static uint64_t now_wall_ns();

 private:
  uint64_t offset_ns_ = 0;
};

struct HttpStats {
  uint64_t api_calls = 0;
  uint64_t unpaired_requests = 0;
  uint64_t unpaired_responses = 0;
  uint64_t partial_streams = 0;  // HTTP/2 streams whose headers could not be decoded (joined mid-connection)
  uint64_t gap_bytes = 0;
  uint64_t trackers = 0;  // connections with HTTP state now
  uint64_t missed_closes = 0;  // connections forgotten at their process's exit
};

class EventMapper {
 public:
  using Emit = std::function<void(Event&&)>;

  EventMapper(ProcessTable& procs, ConnectionTable& conns, const BootClock& clock, std::string node,
              ApiCallOptions api = {}, size_t body_keep = 0)
      : procs_(procs), conns_(conns), clock_(clock), node_(std::move(node)), api_(api) {
    limits_.body_keep = body_keep;
  }

  // Updates the tables; calls `emit` for each schema event the kernel event yields
  // (seq is left 0: the agent numbers events when it ships them).
  void handle(const KernelEvent& event, const Emit& emit);

  ProcessRef process_ref(const vigil_event_header& hdr);
  // Names the TLS library numbers data events carry ("openssl-3", ...).
  void set_tls_names(std::function<std::string(uint8_t)> fn) { tls_name_ = std::move(fn); }
  // Periodic (boot-clock ns): gives up on records held for a lost predecessor.
  void tick(uint64_t now_boot_ns, const Emit& emit);
  HttpStats http_stats() const;

 private:
  struct HttpConn {
    std::unique_ptr<ExchangeTracker> tracker;  // HTTP/1.x or HTTP/2, chosen by the first bytes
    vigil_event_header last_hdr;  // the process of the most recent record
    uint8_t role;
    std::optional<ConnRef> conn;  // formatted once, at the first call
    uint8_t tls = 0;              // the TLS library's number when the bytes are TLS plaintext
  };
  std::function<std::string(uint8_t)> tls_name_;
  std::string proc_root_ = "/proc";
  // Client or server for a socket tracked mid-stream: a listener on its local port says server.
  uint8_t guess_role(const vigil_conn_event& e) const;
  void handle_conn(const vigil_conn_event& e, const Emit& emit);
  void handle_data(const vigil_data_event& e, const Emit& emit);
  void emit_exchanges(uint64_t conn_id, HttpConn& c, const Emit& emit);
  void retire(HttpConn& c);
  void forget_process(const vigil_exit_event& e, const Emit& emit);

  ProcessTable& procs_;
  ConnectionTable& conns_;
  const BootClock& clock_;
  std::string node_;
  ApiCallOptions api_;
  http1::Limits limits_;
  std::unordered_map<uint64_t, HttpConn> http_;
  HttpStats retired_;  // totals of trackers already gone
  uint64_t missed_closes_ = 0;
};

ConnRef conn_ref(uint64_t id, const vigil_conn_tuple& t);

}  // namespace vigil
