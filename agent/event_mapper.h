// Turns decoded kernel events into schema events: keeps the process and
// connection tables current and attaches who/where to every connection fact.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

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
  static uint64_t now_wall_ns();

 private:
  uint64_t offset_ns_ = 0;
};

class EventMapper {
 public:
  using Emit = std::function<void(Event&&)>;

  EventMapper(ProcessTable& procs, ConnectionTable& conns, const BootClock& clock, std::string node)
      : procs_(procs), conns_(conns), clock_(clock), node_(std::move(node)) {}

  // Updates the tables; calls `emit` for each schema event the kernel event yields
  // (seq is left 0: the agent numbers events when it ships them).
  void handle(const KernelEvent& event, const Emit& emit);

  ProcessRef process_ref(const vigil_event_header& hdr);

 private:
  void handle_conn(const vigil_conn_event& e, const Emit& emit);

  ProcessTable& procs_;
  ConnectionTable& conns_;
  const BootClock& clock_;
  std::string node_;
};

ConnRef conn_ref(uint64_t id, const vigil_conn_tuple& t);

}  // namespace vigil
