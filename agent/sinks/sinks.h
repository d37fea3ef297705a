// Event sinks (DESIGN.md §5 events.sinks): each sink runs on its own thread
// behind a bounded queue; network sinks keep a disk spool and deliver at least
// once, in order. The poll loop only encodes once and enqueues.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "agent/config/config.h"
#include "agent/sinks/outputs.h"
#include "agent/sinks/record.h"
#include "agent/sinks/worker.h"
#include "base/result.h"

namespace vigil {
struct Event;
}

namespace vigil::sinks {

struct SinkContext {
  std::string data_dir;  // spools under data_dir/spool/<sink>
  std::string node;      // syslog HOSTNAME, epoch records
  std::string boot_id;   // epoch records
  std::string hmac_key;  // audit.key_file's bytes (empty: the chain is plain SHA-256)
  std::string k8s_node;  // VIGIL_NODE_NAME from the downward API, for OTLP resources
};

class SinkSet {
 public:
  // Opens every sink (files, spools, addresses checked); nothing is half-opened on error.
  static Result<std::unique_ptr<SinkSet>> open(const std::vector<SinkConfig>& configs, const SinkContext& ctx);
  ~SinkSet();
  // Hands the event to each sink whose kinds and min_severity take it. The poll
  // loop's thread only: records collect per sink and reach the sinks' queues in
  // batches (one lock and at most one wake-up of the sink's thread each) at
  // flush(), or once kFlushRecords are waiting.
  void offer(const Event& e, std::string_view line);
  void flush();
  static constexpr size_t kFlushRecords = 256;
  // Flushes, then delivers what it can (network sinks: within their stop timeout; the rest stays spooled).
  void stop();
  // Flushes, then waits (bounded) until every sink delivered what it was given; false on timeout.
  bool drain(uint64_t timeout_ns);
  std::vector<WorkerStats> stats() const;
  // The chained file sinks: name, and where their chain stands.
  std::vector<std::pair<std::string, FileOutput::ChainState>> chains() const;

 private:
  struct Sink {
    FileOutput* file = nullptr;  // a chained file sink's output (owned by the worker)
    std::unique_ptr<Worker> worker;
    uint32_t kinds = ~0u;  // bit per event_kind_index
    uint8_t min_severity = kSevInfo;
    std::vector<Record> batch;  // offered, not yet flushed to the worker
  };
  std::vector<Sink> sinks_;
};

// An OTLP endpoint's logs URL: ENDPOINT/v1/logs.
std::string otlp_logs_url(std::string_view endpoint);

// The name of the i-th sink: the config's (which names a repeated type type-i), else its type.
std::string sink_name(const std::vector<SinkConfig>& configs, size_t i);

}  // namespace vigil::sinks
