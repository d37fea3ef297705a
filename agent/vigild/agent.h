// vigild's wiring: kernel events -> tables -> schema events -> sinks and the
// control socket, in one single-threaded poll loop.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agent/apimap/service.h"
#include "agent/audit/checkpoint.h"
#include "agent/config/config.h"
#include "agent/k8s/watcher.h"
#include "agent/vigild/notify.h"
#include "agent/control/server.h"
#include "agent/metrics/server.h"
#include "agent/events/event_mapper.h"
#include "agent/policy/service.h"
#include "agent/sinks/sinks.h"
#include "base/clock.h"
#include "collectors/host/cgroup.h"
#include "collectors/host/connection_table.h"
#include "collectors/host/process_table.h"
#include "collectors/kernel/observer.h"
#include "collectors/tls/tls_manager.h"

namespace vigil {

struct AgentOptions {
  bool verbose = false;
};

class Agent {
 public:
  Agent(Config config, AgentOptions options);
  ~Agent();
  // Prepares the host, loads and attaches programs, opens sinks and the socket.
  Status start();
  // Runs until stop() or a signal flag; returns the process exit code.
  // `reload` (SIGHUP) re-reads policies.dir when set.
  int run(const std::atomic<bool>& stop, std::atomic<bool>* reload = nullptr);

 private:
  void on_kernel_event(const KernelEvent& ev);
  void ship(Event&& event);
  void report_lost();
  // Signs where each chained file sink stands (every audit.checkpoint_interval, at a
  // rotation, at exit): to data_dir/checkpoints.jsonl and as a checkpoint event.
  void checkpoint(uint64_t now, bool force);
  nlohmann::json status() const;
  nlohmann::json tls_status() const;
  nlohmann::json tls_counters() const;
  // The Prometheus page of /metrics (from the same counters as status()).
  std::string metrics_text() const;
  std::string not_ready_reason() const;

  Config config_;
  AgentOptions options_;
  std::string node_;
  std::string k8s_node_;  // VIGIL_NODE_NAME (the downward API's spec.nodeName), read once
  BootClock clock_;
  std::unique_ptr<CgroupResolver> cgroups_;
  std::unique_ptr<ProcessTable> procs_;
  ConnectionTable conns_;
  std::unique_ptr<EventMapper> mapper_;
  std::unique_ptr<Observer> observer_;
  std::unique_ptr<sinks::SinkSet> sinks_;
  std::string boot_id_;  // this run's id, in every event
  std::optional<audit::Signer> signer_;
  uint64_t last_checkpoint_ns_ = 0;
  std::map<std::string, uint64_t> checkpoint_rotations_;  // by sink
  std::unique_ptr<ControlServer> control_;
  std::unique_ptr<metrics::Server> metrics_;
  ServiceNotifier notify_;
  std::string status_line() const;  // systemd's STATUS=
  size_t attached_programs() const;
  std::map<std::pair<std::string, std::string>, uint64_t> egress_verdicts_;  // (verdict, policy)
  std::unique_ptr<PolicyService> policies_;
  std::unique_ptr<TlsManager> tls_;
  std::unique_ptr<apimap::InventoryService> inventory_;
  std::unique_ptr<k8s::PodCache> pods_;        // in a cluster (kubernetes.enabled)
  std::unique_ptr<k8s::PodWatcher> pod_watcher_;
  Status start_kubernetes();
  Status open_kubernetes();

  uint64_t seq_ = 0;
  uint64_t started_ns_ = 0;
  std::map<std::string, uint64_t> events_by_kind_;
  std::map<std::string, uint64_t> lost_reported_;  // by source
  uint64_t kernel_events_ = 0;
  std::string line_;  // reused encode buffer
};

}  // namespace vigil
