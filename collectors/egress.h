// Owns the egress-enforcement programs (bpf/egress.bpf.c): loads them with
// their maps pinned under bpffs, attaches them to the cgroup v2 root through
// pinned links (or adopts the links an earlier agent left), writes compiled
// policy tables one generation at a time, and reads the verdict ring.
//
// Fail-closed for selected processes: links and maps stay pinned when the
// agent exits or crashes, so the last applied policy keeps enforcing and DNS
// names keep being learnt. Only disable() removes enforcement.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "vigil/egress_abi.h"

struct egress_bpf;
struct ring_buffer;
struct bpf_link;

namespace vigil {

struct EgressOptions {
  std::string pin_root = "/sys/fs/bpf/vigil";  // holds egress-v<ABI>/
  std::string cgroup_root;                     // cgroup v2 mount point
  std::vector<uint16_t> dns_ports = {53};
  uint32_t dns_min_ttl_s = 30;
};

// Host-resolved selector tables of one generation.
struct EgressSelectors {
  std::vector<std::pair<vigil_eg_bin_key, uint64_t>> bins;        // gen filled in by apply
  std::vector<std::pair<vigil_eg_cgroup_key, uint64_t>> cgroups;
  std::vector<std::pair<vigil_eg_uid_key, uint64_t>> uids;
};

// Everything one generation holds, as map entries.
struct EgressTables {
  vigil_eg_gen gen{};
  EgressSelectors selectors;
  std::vector<std::pair<vigil_eg_cidr_key, vigil_eg_ports>> cidrs;
  std::vector<std::pair<uint64_t, uint64_t>> fqdns;  // pattern hash -> policy mask
  std::vector<std::pair<vigil_eg_fqdn_ports_key, vigil_eg_ports>> fqdn_ports;
};

class Enforcer {
 public:
  using Handler = std::function<void(const vigil_eg_event&)>;

  // Loads and attaches, adopting pinned state when present (no gap in
  // enforcement: pinned links are switched to the new programs atomically).
  static Result<std::unique_ptr<Enforcer>> open(const EgressOptions& options, Handler handler);
  // True when pinned state from an earlier agent was found.
  static bool pinned_state_exists(const std::string& pin_root);
  // Removes every pin under pin_root/egress-*: enforcement stops. For when no agent runs.
  static Status remove_pinned_state(const std::string& pin_root);

  ~Enforcer();
  Enforcer(const Enforcer&) = delete;
  Enforcer& operator=(const Enforcer&) = delete;

  // Writes `tables` into the inactive generation, flips to it, then clears the old one.
  Status apply(EgressTables tables);
  // Stops enforcing at once, detaches and unpins everything.
  Status disable();

  bool adopted() const { return adopted_; }
  uint32_t active_generation() const { return gen_; }
  std::string pin_dir() const { return pin_dir_; }
  int epoll_fd() const;
  Result<int> consume();
  // [0] verdict events lost, [1] DNS answers not learnt; summed over CPUs.
  std::array<uint64_t, 2> lost_counters() const;
  std::vector<std::string> program_names() const;

 private:
  Enforcer() = default;
  Status clear_generation(uint32_t gen);
  static int on_sample(void* ctx, void* data, size_t size);

  egress_bpf* skel_ = nullptr;
  ring_buffer* ring_ = nullptr;
  std::vector<bpf_link*> links_;
  Handler handler_;
  std::string pin_dir_;
  uint32_t gen_ = 0;
  bool adopted_ = false;
  bool disabled_ = false;
};

// The kernel's dev_t encoding of a user-space st_dev (MAJOR << 20 | MINOR).
uint32_t kernel_dev(uint64_t st_dev);

}  // namespace vigil
