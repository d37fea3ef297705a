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
#include <memory>
#include <string>
#include <vector>

#include "base/link.h"
#include "base/result.h"
#include "policy/enforcer.h"
#include "policy/pins.h"

struct egress_bpf;
struct ring_buffer;

namespace vigil {

struct EgressOptions {
  std::string pin_root = "/sys/fs/bpf/vigil";  // holds egress-v<ABI>/
  std::string cgroup_root;                     // cgroup v2 mount point
  std::vector<uint16_t> dns_ports = {53};
  uint32_t dns_min_ttl_s = 30;
};

class EgressEnforcer : public policy::Enforcer {
 public:
  // Loads and attaches, adopting pinned state when present (no gap in
  // enforcement: pinned links are switched to the new programs atomically).
  static Result<std::unique_ptr<EgressEnforcer>> open(const EgressOptions& options, Handler handler);

  ~EgressEnforcer() override;
  EgressEnforcer(const EgressEnforcer&) = delete;
  EgressEnforcer& operator=(const EgressEnforcer&) = delete;

  Status apply(policy::EgressTables tables) override;
  Status disable() override;

  bool adopted() const override { return adopted_; }
  uint32_t active_generation() const override { return gen_; }
  std::string pin_dir() const override { return pin_dir_; }
  std::vector<std::string> program_names() const override;
  int epoll_fd() const override;
  Result<int> consume() override;
  LostCounters lost_counters() const override;

 private:
  EgressEnforcer() = default;
  Status clear_generation(uint32_t gen);
  static int on_sample(void* ctx, void* data, size_t size);

  egress_bpf* skel_ = nullptr;
  ring_buffer* ring_ = nullptr;
  std::vector<Link> links_;
  Handler handler_;
  std::string pin_dir_;
  uint32_t gen_ = 0;
  bool adopted_ = false;
  bool disabled_ = false;
};

}  // namespace vigil
