// Where compiled tables go to be enforced: the interface the policy service
// drives. The kernel's egress programs implement it
// (collectors/kernel/egress_enforcer.h); unit tests use a fake.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "base/result.h"
#include "bpf/include/vigil/egress_abi.h"
#include "policy/kernel_tables.h"

namespace vigil::policy {

// lost{source} names of the enforcer's lost-counter slots (enum vigil_eg_lost_slot).
inline constexpr const char* kEgressLostSources[] = {"kernel_egress_ringbuf", "dns_answers_not_learnt",
                                                    "dns_answers_unsolicited"};
static_assert(std::size(kEgressLostSources) == VIGIL_EG_LOST_SLOTS, "one name per vigil_eg_lost_slot");

class Enforcer {
 public:
  using Handler = std::function<void(const vigil_eg_event&)>;
  using LostCounters = std::array<uint64_t, VIGIL_EG_LOST_SLOTS>;

  virtual ~Enforcer() = default;
  // Writes `tables` into the inactive generation, flips to it, then clears the old one.
  virtual Status apply(EgressTables tables) = 0;
  // Stops enforcing at once, detaches and unpins everything.
  virtual Status disable() = 0;

  virtual bool adopted() const = 0;  // pinned state from an earlier agent was taken over
  virtual uint32_t active_generation() const = 0;
  virtual std::string pin_dir() const = 0;
  virtual std::vector<std::string> program_names() const = 0;
  // The verdict ring: readable fd for the poll loop, then consume() delivers to the handler.
  virtual int epoll_fd() const = 0;
  virtual Result<int> consume() = 0;
  // Cumulative per-slot totals of enum vigil_eg_lost_slot, summed over CPUs.
  virtual LostCounters lost_counters() const = 0;
};

// Opens (loads, attaches or adopts) the enforcer; verdicts go to the handler.
using OpenEnforcer = std::function<Result<std::unique_ptr<Enforcer>>(Enforcer::Handler)>;

}  // namespace vigil::policy
