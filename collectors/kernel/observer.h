// Owns the observation programs (process and connection lifecycle): opens,
// configures, loads and attaches the skeleton, and reads its ring buffer.
// Destroying the Observer detaches every program; nothing is pinned.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <span>
#include <string_view>
#include <string>
#include <variant>
#include <vector>

#include "base/link.h"
#include "collectors/host/open_sockets.h"
#include "collectors/kernel/uprobe.h"
#include "base/result.h"
#include "bpf/include/vigil/abi.h"

struct observe_bpf;
struct ring_buffer;

namespace vigil {

// A decoded ring-buffer record: a view of the ABI struct, valid during the callback.
using KernelEvent = std::variant<const vigil_exec_event*, const vigil_fork_event*,
                                 const vigil_exit_event*, const vigil_conn_event*,
                                 const vigil_data_event*>;

// Checks the type tag against the record size; never reads past `data`.
Result<KernelEvent> decode_kernel_event(std::span<const std::byte> data);

// lost{source} names of the observation lost-counter slots (enum vigil_lost_slot).
inline constexpr const char* kObserveLostSources[] = {"kernel_ringbuf", "kernel_conn_table", "kernel_data_ringbuf",
                                                      "tls_no_socket", "kernel_conn_uid_quota"};
static_assert(std::size(kObserveLostSources) == VIGIL_LOST_SLOTS, "one name per vigil_lost_slot");

struct ObserverOptions {
  uint32_t ringbuf_bytes = 8u << 20;  // power of two, >= page size
  uint32_t self_pid = 0;              // the agent's pid, never reported
  uint32_t capture_bytes = 0;         // payload per syscall (<= VIGIL_MAX_CAPTURE); 0: no
                                      // payload programs are loaded at all
  bool infer_l7 = true;               // false: copy every connection (measurement only)
  bool tls = true;                    // load the TLS uprobe programs (attached per library later)
  uint32_t conn_uid_quota = 0;        // tracked sockets per non-root uid; 0: a quarter of the table
};

struct ProgramStatus {
  std::string name;
  uint32_t id = 0;   // kernel program id, 0 when not loaded
  bool attached = false;
};

class Observer {
 public:
  using Handler = std::function<void(const KernelEvent&)>;

  static Result<std::unique_ptr<Observer>> create(const ObserverOptions& options, Handler handler);
  ~Observer();
  Observer(const Observer&) = delete;
  Observer& operator=(const Observer&) = delete;

  // Waits up to timeout_ms, then delivers every record in the ring to the
  // handler; returns how many, or an error.
  Result<int> poll(int timeout_ms);
  // For an outer poll loop: readable when events wait; then call consume().
  int epoll_fd() const;
  Result<int> consume();
  // Cumulative per-slot totals of enum vigil_lost_slot, summed over CPUs.
  std::array<uint64_t, VIGIL_LOST_SLOTS> lost_counters() const;
  std::vector<ProgramStatus> programs() const;
  // Attaches uprobe (or uretprobe) program `program` to `func` in the ELF file
  // at `binary`, for every process; `cookie` reaches the program. Destroying
  // the link detaches it. Without CAP_SYS_ADMIN (the uprobe PMU refuses) the
  // probe is defined through tracefs instead (uprobe.h).
  // `offset` is func's place in the file (identify_tls_library found it).
  Result<UprobeLink> attach_uprobe(std::string_view program, const std::string& binary, const std::string& func,
                                   uint64_t offset, uint64_t cookie);
  // Socket syscalls check for a TLS call in flight only once this is set.
  void set_tls_enabled(bool on);
  // Sockets open before the programs were attached (find_open_sockets): each is
  // tracked, and reported open, at its first read or write from now on. Returns
  // how many were seeded (a socket already tracked is left as it is). Only
  // meaningful while capture is on (the payload programs make seeds connections).
  size_t seed_connections(const std::vector<OpenSocket>& sockets);
  // The process exited: its seeds that never became connections are dropped.
  void forget_seeds(uint32_t pid);
  uint64_t malformed_events() const { return malformed_; }
  // The counting filter in front of `conns` against the table, for the slots of
  // the given (pid, fd)s (tests): each tracked one's slot must be non-zero
  // (`unfiltered` 0), and the counts of those slots (none sticky) must equal the
  // entries of the table that fall in them.
  struct ConnFilterCheck {
    size_t tracked = 0, unfiltered = 0;
    uint64_t counted = 0, expected = 0;
  };
  ConnFilterCheck check_conn_filter(const std::vector<std::pair<uint32_t, int32_t>>& fds) const;

 private:
  Observer() = default;
  static int on_sample(void* ctx, void* data, size_t size);

  observe_bpf* skel_ = nullptr;
  ring_buffer* ring_ = nullptr;
  Handler handler_;
  uint64_t malformed_ = 0;
  bool uprobes_via_tracefs_ = false;  // the uprobe PMU refused once: not asked again
  std::multimap<uint32_t, int32_t> seeds_;  // pid -> fd seeded and maybe not yet used
};

}  // namespace vigil
