// The policy service: the files of policies.dir (the last good version of each
// kept), compiled, resolved against this host's binaries and cgroups, and
// applied through a policy::Enforcer; `policy` and `egress` events; apply and
// disable for the control socket.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "agent/events/events.h"
#include "base/fd.h"
#include "base/result.h"
#include "bpf/include/vigil/egress_abi.h"
#include "policy/compiler.h"
#include "policy/enforcer.h"
#include "policy/kernel_tables.h"
#include "policy/model.h"
#include "policy/pins.h"

namespace vigil {

// Why policies.dir is read again. Every reason but kDirChanged rewrites the
// kernel tables even when no file changed.
enum class ReloadReason { kStart, kSignal, kRequest, kApply, kDirChanged };
const char* reload_reason_name(ReloadReason why);  // for the log: "start", "SIGHUP", ...

struct PolicyServiceOptions {
  std::string dir;          // policies.dir
  std::string data_dir;     // holds the "disabled" marker
  std::string pin_root;     // policies.pin_dir
  std::string cgroup_root;  // the cgroup v2 mount; empty: nothing can be enforced
  std::string proc_root = "/proc";
  // In a cluster: the UIDs of the pods a pod selector names now, and a number that
  // moves whenever the pod cache changes (selectors are re-resolved at once then).
  std::function<std::vector<std::string>(const policy::PodSelector&)> pod_uids{};
  std::function<uint64_t()> pods_generation{};
};

class PolicyService {
 public:
  using Ship = std::function<void(Event&&)>;
  using ProcessOf = std::function<ProcessRef(const vigil_event_header&)>;

  PolicyService(PolicyServiceOptions options, policy::OpenEnforcer open_enforcer, Ship ship, ProcessOf process_of);

  // Loads policies.dir and, when there is anything to enforce (or pinned state
  // to adopt), opens the enforcer.
  Status start();
  // Re-reads policies.dir; a file with errors keeps its last good version.
  void reload(ReloadReason why);
  // Periodic: applies a pending directory change, re-resolves selectors (new
  // binaries, new cgroups), expires the allow aggregation window.
  void tick(uint64_t now_ns);

  int epoll_fd() const;  // -1 while nothing is enforced
  void consume();
  int inotify_fd() const { return inotify_.get(); }
  void on_inotify();

  struct Applied {
    std::vector<std::string> policies;  // names in the file
    std::string file;                   // where it was installed
  };
  // Validates `content` (as a file named `name`) against the other files,
  // installs it in policies.dir atomically and reloads; nothing changes on error.
  Result<Applied> apply(std::string_view name, std::string_view content);
  // Stops enforcement: detaches and unpins (with or without an enforcer open),
  // and marks it disabled so that a restarted agent does not enforce again.
  Status disable();

  nlohmann::json list() const;
  nlohmann::json status() const;
  policy::Enforcer::LostCounters lost_counters() const;

 private:
  struct FileState {
    std::string content;
    std::vector<policy::EgressPolicy> policies;  // the last good version
  };
  struct AllowKey {
    uint32_t pid;
    uint8_t gen, policy, proto;
    uint16_t port;
    std::array<uint8_t, 16> addr;
    auto operator<=>(const AllowKey&) const = default;
  };

  void watch_dir();
  // Builds the combined set from `files`; errors name the file.
  Result<std::vector<policy::EgressPolicy>> combine(const std::map<std::string, FileState>& files) const;
  Status enforce(bool force_write);
  void emit_policy(const std::string& name, const char* action, std::optional<std::string> error = {});
  void on_verdict(const vigil_eg_event& ev);

  PolicyServiceOptions options_;
  policy::EgressPins pins_;
  policy::OpenEnforcer open_enforcer_;
  Ship ship_;
  ProcessOf process_of_;
  std::map<std::string, FileState> files_;  // by path
  policy::Tables tables_;
  policy::Tables prev_tables_;  // the generation before: names for events still in flight
  policy::EgressSelectors selectors_;
  std::unique_ptr<policy::Enforcer> enforcer_;
  std::map<AllowKey, uint64_t> recent_allows_;  // -> ns of the allow last reported
  uint64_t allows_aggregated_ = 0;
  uint64_t verdicts_ = 0;
  uint64_t last_refresh_ns_ = 0;
  uint64_t pods_generation_ = 0;
  bool pods_pending_ = false;  // a selected pod's cgroup is not there yet
  Fd inotify_;
  bool reload_pending_ = false;
};

}  // namespace vigil
