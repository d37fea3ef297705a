// Kernel records -> schema events: keeps the process table current, attaches
// who/where to every connection fact, and turns the connection tracker's
// finished exchanges into api_call events.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <unordered_map>

#include "agent/events/api_call.h"
#include "agent/events/capture.h"
#include "agent/events/emission.h"
#include "agent/events/events.h"
#include "base/clock.h"
#include "bpf/include/vigil/abi.h"
#include "collectors/conn_tracker.h"
#include "collectors/host/connection_table.h"
#include "collectors/host/process_table.h"

namespace vigil {

class EventMapper {
 public:
  using Emit = std::function<void(Event&&)>;
  // Sees each api_call before it is shipped, with the raw exchange (nothing
  // redacted yet), the event's wall time and what the capture rules said of its
  // connection; may fill `endpoint` and `sensitive`, and decides the call's
  // capture level (CapturePolicy::for_call with the endpoint's template).
  using CallObserver = std::function<CallOutcome(const protocols::Exchange&, const ProcessRef&, ApiCallEvent&,
                                                 uint64_t wall_ns, const CaptureScope&)>;

  EventMapper(ProcessTable& procs, ConnectionTable& conns, const BootClock& clock, std::string node,
              ApiCallOptions api = {}, size_t body_keep = 0, ApiCallSampler::Options emission = {},
              CaptureOptions capture = {});

  // Each updates the tables and calls `emit` for each schema event the record
  // yields (seq is left 0: the agent numbers events when it ships them).
  void handle(const vigil_exec_event& e, const Emit& emit);
  void handle(const vigil_fork_event& e, const Emit& emit);
  void handle(const vigil_exit_event& e, const Emit& emit);
  void handle(const vigil_conn_event& e, const Emit& emit);
  void handle(const vigil_data_event& e, const Emit& emit);

  ProcessRef process_ref(const vigil_event_header& hdr);
  // Names the TLS library numbers data events carry ("openssl-3", ...).
  void set_tls_names(std::function<std::string(uint8_t)> fn) { tls_name_ = std::move(fn); }
  void set_call_observer(CallObserver fn) { observer_ = std::move(fn); }
  // Adds what the agent knows beyond the host (pod metadata) to a process in a
  // container; called for processes whose cgroup names a container or pod.
  using ProcessEnricher = std::function<void(ProcessRef&)>;
  void set_process_enricher(ProcessEnricher fn) { enricher_ = std::move(fn); }
  // Periodic (boot-clock ns): gives up on records held for a lost predecessor.
  void tick(uint64_t now_boot_ns, const Emit& emit);
  HttpStats http_stats() const { return tracker_.stats(); }
  const ApiCallSampler& emission() const { return sampler_; }
  const CapturePolicy& capture() const { return capture_; }

 private:
  void emit_calls(const FinishedExchanges& done, const Emit& emit);
  ConnTracker::Sink sink(const Emit& emit);

  ProcessTable& procs_;
  const BootClock& clock_;
  std::string node_;
  ApiCallOptions api_;
  ApiCallSampler sampler_;
  CapturePolicy capture_;
  uint64_t calls_ = 0;  // the sampling count where no inventory counts per endpoint
  ConnTracker tracker_;
  std::function<std::string(uint8_t)> tls_name_;
  CallObserver observer_;
  ProcessEnricher enricher_;
  std::unordered_map<uint64_t, ConnRef> conn_refs_;  // formatted once, at a connection's first call
};

ConnRef conn_ref(uint64_t id, const vigil_conn_tuple& t);

}  // namespace vigil
