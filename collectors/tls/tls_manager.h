// TLS libraries on the host: finds every mapped file that implements
// SSL_read/SSL_write (shared libssl of OpenSSL 1.1 / 3, BoringSSL, or a copy
// linked into an executable such as node), gnutls_record_send/recv (GnuTLS) or
// crypto/tls (a Go executable), identifies it by its symbols, and
// keeps the observation uprobes attached once per inode while any process maps
// it. A uprobe on an inode covers every process mapping it, including ones
// started later and ones running before the agent.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <string_view>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "base/fd.h"
#include "base/link.h"
#include "collectors/kernel/uprobe.h"
#include "collectors/tls/go_binary.h"
#include "base/result.h"

namespace vigil {

class Observer;

// What a file's dynamic symbols say about the TLS library in it.
struct TlsIdentity {
  std::string kind;  // "openssl-3", "openssl-1.1", "openssl", "boringssl", "gnutls", "go"
  bool read = false, write = false, read_ex = false, write_ex = false;
  // File offset of each SSL_* function found: what the uprobes attach to (the ELF
  // file is parsed once, here).
  std::map<std::string, uint64_t, std::less<>> offsets;
  std::optional<GoTlsBinary> go;  // kind "go": crypto/tls in a Go executable
};

// A Go executable with crypto/tls (see inspect_go_binary), else the ELF file's
// dynamic (else static) symbol table. An error when it is not ELF; kind empty
// when it has neither crypto/tls nor SSL_read/SSL_write.
Result<TlsIdentity> identify_tls_library(const std::string& path);

struct TlsLibraryStatus {
  uint8_t id = 0;  // the number data events carry (vigil_data_event.tls)
  std::string path, kind;
  std::string version;  // Go: "go1.19.8"
  std::vector<std::string> probes;  // attached
  size_t processes = 0;
  std::string error;  // why it could not be attached
};

// Caps on what other users' files can make the agent do (security review F5, F15).
struct TlsLimits {
  size_t max_rejected = 4096;  // inodes remembered as "not TLS" (the oldest forgotten first)
  // Files of one non-root owner probed at a time: at the cap, that owner's
  // unused (lingering) files are detached first; files in use are never evicted.
  size_t max_per_owner = 32;
  uint64_t attach_budget_ns = 100'000'000;  // attach time per tick before the rest waits
};

class TlsManager {
 public:
  TlsManager(Observer& observer, std::string proc_root = "/proc", TlsLimits limits = {});
  ~TlsManager();
  TlsManager(const TlsManager&) = delete;
  TlsManager& operator=(const TlsManager&) = delete;

  // The host's own TLS libraries (standard library directories), attached
  // whether or not anything maps them yet, so that a process's first call is
  // seen; they stay attached.
  void attach_host_libraries(const std::vector<std::string>& globs = kHostLibraryGlobs);
  static const std::vector<std::string> kHostLibraryGlobs;
  static constexpr uint64_t kLingerNs = 600'000'000'000ull;
  // Walks every process's maps: attaches new libraries, detaches ones no process
  // has mapped for kLingerNs (an executable run again soon, a cron job, a CLI, finds
  // its probes in place: attaching takes an RCU grace period, ~7-18 ms here,
  // longer than a short Go program takes to make its first request).
  void scan_all();
  // A process just exec'ed: a new executable is opened, identified and attached
  // at once (a one-shot process may be gone before its maps are read, and a Go
  // program's first request follows its start within milliseconds); the
  // process's maps are looked at on the next tick and again later (libraries it
  // loads after start, e.g. python's `import ssl`).
  void on_exec(uint32_t pid, uint64_t now_ns);
  // Periodic: due per-process looks, and a full walk every few seconds.
  void tick(uint64_t now_ns);

  // "openssl-3" etc. for a data event's tls number; empty if unknown.
  std::string lib_name(uint8_t id) const;
  std::vector<TlsLibraryStatus> status() const;
  struct Counters {
    uint64_t rejected = 0;  // files found not to be probeable TLS, ever
    uint64_t deferred = 0;  // looks put off by the attach budget
    size_t attached = 0;    // files with probes now
    size_t remembered_rejected = 0;  // of `rejected`, still remembered (at most max_rejected)
    size_t detaching = 0;            // probes queued for the detach thread
  };
  Counters counters() const {
    return {rejected_total_, deferred_, libs_.size(), rejected_.size(), reaper_.pending()};
  }
  const TlsLimits& limits() const { return limits_; }

 private:
  struct Library {
    TlsLibraryStatus st;
    std::vector<UprobeLink> links;
    std::set<uint32_t> pids;
    uint32_t owner = 0;  // the file's owner: non-root owners have a quota
    bool host = false;  // a host library: kept attached while unused
    bool unused = false;  // no process mapped it at the last full scan, since unused_since
    uint64_t unused_since = 0;
  };
  using Inode = std::pair<uint64_t, uint64_t>;  // (dev, ino) as /proc/PID/maps shows them

  void scan_pid(uint32_t pid, std::set<Inode>* seen);
  // Opens `open_path` and checks that it is the regular file `key` names: what
  // /proc/PID/maps showed. Everything after reads that fd, never the path again.
  static Result<Fd> open_mapped(const std::string& open_path, const Inode& key);
  // Identifies and attaches the file open as `fd` (inode `key`, shown as `path`) once per inode.
  Library* add(const Inode& key, const std::string& path, int fd, bool in_executable);
  Library* find(const Inode& key);
  bool failed_this_round(const Inode& key) const;
  void note_failed(const Inode& key, const std::string& path, std::string why);
  void reject(const Inode& key, TlsLibraryStatus st);
  // Room for one more file of `uid`: true when under the quota, after detaching
  // that owner's longest-unused file if need be.
  bool make_room_for(uint32_t uid);
  void attach(Library& lib, const std::string& path, const TlsIdentity& id, bool in_executable);
  void detach(Library& lib);

  Observer& observer_;
  std::string proc_root_;
  TlsLimits limits_;
  LinkReaper reaper_;
  std::map<Inode, Library> libs_;
  // Not looked at again: not TLS (kind empty), or a TLS library that cannot be
  // probed (e.g. a Go before the register ABI: shown in status with why).
  // At most limits_.max_rejected, the oldest forgotten first (looked at again if met).
  std::map<Inode, TlsLibraryStatus> rejected_;
  std::deque<Inode> rejected_order_;
  uint64_t rejected_total_ = 0;
  uint64_t deferred_ = 0;         // adds put off to a later look: the tick's attach budget was spent
  uint64_t attach_spent_ns_ = 0;  // attach time in this tick
  // Could not be read or attached this time (the process that showed it exited, a
  // refused attach): shown in status and tried again through the next process
  // that maps it, never given up on; forgotten once no process maps it.
  struct Failed {
    TlsLibraryStatus st;
    uint64_t round = 0;  // tried once per scan round at most (a large executable is parsed each time)
  };
  std::map<Inode, Failed> failed_;
  uint64_t round_ = 0;
  std::map<uint8_t, std::string> names_;
  std::multimap<uint64_t, uint32_t> due_;  // ns -> pid to look at
  uint64_t last_full_ns_ = 0;
  uint64_t now_ns_ = 0;  // of the last tick
  uint8_t next_id_ = 1;
};

}  // namespace vigil
