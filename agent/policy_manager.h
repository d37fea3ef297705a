// Egress policies in the agent: the files of policies.dir (last good version of
// each kept), compiled into kernel tables, resolved against this host's
// binaries and cgroups, applied through the Enforcer; `policy` and `egress`
// events; the control commands policy_apply / policy_list / policy_disable.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include <nlohmann/json.hpp>

#include "compiler.h"
#include "config.h"
#include "egress.h"
#include "events.h"
#include "model.h"

namespace vigil {

// What the host's binaries, cgroups and uids mean for the compiled selectors.
EgressSelectors resolve_selectors(const policy::Tables& tables, const std::string& cgroup_root,
                                  const std::string& proc_root = "/proc");
// The map entries of one generation.
EgressTables kernel_tables(const policy::Tables& tables, EgressSelectors selectors);

class PolicyManager {
 public:
  using Ship = std::function<void(Event&&)>;
  using ProcessOf = std::function<ProcessRef(const vigil_eg_event&)>;

  PolicyManager(const Config& config, std::string cgroup_root, Ship ship, ProcessOf process_of);
  ~PolicyManager();

  // Loads policies.dir and, when there is anything to enforce (or pinned state
  // to adopt), attaches the programs.
  Status start();
  // Re-reads policies.dir; a file with errors keeps its last good version.
  void reload(std::string_view why);
  // Periodic: re-resolves selectors (new binaries, new cgroups), expires the
  // allow aggregation window.
  void tick(uint64_t now_ns);

  int epoll_fd() const;  // -1 while nothing is attached
  void consume();
  int inotify_fd() const { return inotify_fd_; }
  void on_inotify();

  // Control commands: one JSON reply, or nullopt for an unknown command.
  std::optional<nlohmann::json> command(const std::string& cmd, const nlohmann::json& req);
  nlohmann::json status() const;
  std::array<uint64_t, 2> lost_counters() const;

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
  nlohmann::json apply_file(const nlohmann::json& req);
  nlohmann::json disable();
  nlohmann::json list() const;
  void emit_policy(const std::string& name, const char* action, std::optional<std::string> error = {});
  void on_verdict(const vigil_eg_event& ev);
  bool disabled_marker() const;

  Config config_;
  std::string cgroup_root_;
  Ship ship_;
  ProcessOf process_of_;
  std::map<std::string, FileState> files_;  // by path
  policy::Tables tables_;
  policy::Tables prev_tables_;  // the generation before: names for events still in flight
  EgressSelectors selectors_;
  std::unique_ptr<Enforcer> enforcer_;
  std::map<AllowKey, uint64_t> recent_allows_;  // -> ns of the allow last reported
  uint64_t allows_aggregated_ = 0;
  uint64_t verdicts_ = 0;
  uint64_t last_refresh_ns_ = 0;
  int inotify_fd_ = -1;
  bool reload_pending_ = false;
};

}  // namespace vigil
