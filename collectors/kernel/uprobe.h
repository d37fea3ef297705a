// uprobes without CAP_SYS_ADMIN. The kernel's uprobe PMU (what libbpf uses)
// refuses a caller without CAP_SYS_ADMIN (perf_uprobe_event_init); a probe
// defined in tracefs's uprobe_events and opened as a tracepoint perf event needs
// only CAP_PERFMON. Both run the same uprobe handler, so the cost per hit is the
// same. Also the ELF symbol walk both paths (and TLS detection) need.
#pragma once

#include <bpf/libbpf.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "base/link.h"
#include "base/result.h"

namespace vigil {

// Calls `f(name, file_offset)` for every defined function symbol of the ELF file at
// `path` (the symbol table and the dynamic one); file_offset is what a uprobe takes.
// `f` returns false to stop.
Status for_each_elf_function(const std::string& path,
                             const std::function<bool(std::string_view name, uint64_t file_offset)>& f);
Result<uint64_t> elf_function_offset(const std::string& path, std::string_view func);

// An attached uprobe: the link and, when it was made through tracefs, the probe
// event to remove once the link is gone.
class UprobeLink {
 public:
  UprobeLink() = default;
  explicit UprobeLink(Link link, std::string tracefs_event = {})
      : link_(std::move(link)), tracefs_event_(std::move(tracefs_event)) {}
  UprobeLink(UprobeLink&& o) noexcept = default;
  UprobeLink& operator=(UprobeLink&& o) noexcept;
  ~UprobeLink() { reset(); }
  void reset();
  bool via_tracefs() const { return !tracefs_event_.empty(); }

 private:
  Link link_;
  std::string tracefs_event_;  // "group/event"
};

// Detaches uprobes on a thread of its own. Removing a uprobe waits for RCU
// grace periods (~70 ms a probe on this kernel, measured), which the event loop
// must not: a user whose executables linger would stall it (security review F5).
// The destructor waits for what is queued.
class LinkReaper {
 public:
  LinkReaper() = default;
  ~LinkReaper();
  LinkReaper(const LinkReaper&) = delete;
  LinkReaper& operator=(const LinkReaper&) = delete;
  void retire(std::vector<UprobeLink> links);
  // Links queued or being detached.
  size_t pending() const;

 private:
  void run();
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<UprobeLink> queue_;
  size_t busy_ = 0;
  bool stop_ = false;
  std::thread thread_;  // started with the first retire
};

// Defines a uprobe (or uretprobe) at `file_offset` of `binary` in
// <tracefs>/uprobe_events, in a group named after this process, and attaches
// `prog` to it for every process with `cookie`.
Result<UprobeLink> attach_uprobe_tracefs(bpf_program* prog, const std::string& binary, uint64_t file_offset,
                                         bool retprobe, uint64_t cookie);
// Removes the uprobe_events entries a vigild that is no longer running left
// behind (a SIGKILL skips the cleanup); returns how many.
size_t remove_stale_tracefs_uprobes();

}  // namespace vigil
