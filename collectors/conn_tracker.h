// Connections to protocol exchanges: keeps the connection table by open/close
// events, decides the role of sockets met mid-stream, feeds each connection's
// payload records to its HTTP/1.x or HTTP/2 tracker (chosen by the kernel's
// inference) and hands out finished exchanges with what reporting them needs.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <map>
#include <set>
#include <unordered_map>
#include <vector>

#include "bpf/include/vigil/abi.h"
#include "collectors/host/connection_table.h"
#include "collectors/protocols/common/tracker.h"

namespace vigil {

struct HttpStats {
  uint64_t api_calls = 0;
  uint64_t unpaired_requests = 0;
  uint64_t unpaired_responses = 0;
  uint64_t partial_streams = 0;  // HTTP/2 streams whose headers could not be decoded (joined mid-connection)
  uint64_t gap_bytes = 0;
  uint64_t trackers = 0;  // connections with HTTP state now
  uint64_t missed_closes = 0;  // connections forgotten at their process's exit
};

// The payload bytes of a data record (only `captured` of them are in it).
inline std::string_view payload(const vigil_data_event& e) { return {e.data, e.captured}; }

// One connection's finished exchanges, handed to the sink (which may move them out).
struct FinishedExchanges {
  uint64_t conn_id = 0;
  uint8_t role = VIGIL_ROLE_UNKNOWN;         // enum vigil_role
  uint8_t tls = 0;                           // the TLS library's number when the bytes are TLS plaintext
  const vigil_event_header* last_hdr = nullptr;  // the process of the most recent record
  std::vector<protocols::Exchange>* exchanges = nullptr;
};

class ConnTracker {
 public:
  using Sink = std::function<void(const FinishedExchanges&)>;

  ConnTracker(ConnectionTable& conns, protocols::Limits limits = {}, std::string proc_root = "/proc")
      : conns_(conns), limits_(limits), proc_root_(std::move(proc_root)) {}

  // Records the connection; a socket met mid-stream (role unknown) is the
  // server side when its process listens on its local port.
  const ConnectionRecord& on_open(const vigil_conn_event& e);
  // Calls finished by the close (bodies delimited by it) go to `sink` first.
  ConnectionRecord on_close(const vigil_conn_event& e, const Sink& sink);
  void on_data(const vigil_data_event& e, const Sink& sink);
  // The kernel reports the close of every socket a process still held before
  // its exit event; what is left lost its close (ring buffer full): those
  // connections are finished and forgotten. Returns their ids.
  std::vector<uint64_t> on_exit(uint32_t pid, uint64_t ts, const Sink& sink);
  // Periodic (boot-clock ns): gives up on records held for a lost predecessor.
  void tick(uint64_t now_boot_ns, const Sink& sink);
  HttpStats stats() const;
  // The open connection's record; null when its open was missed.
  const ConnectionRecord* connection(uint64_t conn_id) const { return conns_.find(conn_id); }

 private:
  struct Conn {
    std::unique_ptr<protocols::ExchangeTracker> tracker;  // HTTP/1.x or HTTP/2, chosen by the first bytes
    vigil_event_header last_hdr;  // the process of the most recent record
    uint8_t role;
    uint8_t tls = 0;
  };
  uint8_t guess_role(const vigil_conn_event& e);
  void deliver(uint64_t conn_id, Conn& c, const Sink& sink);
  void finish(uint64_t conn_id, uint64_t ts, const Sink& sink);

  ConnectionTable& conns_;
  protocols::Limits limits_;
  std::string proc_root_;
  std::unordered_map<uint64_t, Conn> http_;
  HttpStats retired_;  // totals of trackers already gone
  // Listening TCP ports by (network namespace inode, IPv6), for guess_role.
  struct Listening {
    uint64_t read_ns = 0;
    std::set<uint16_t> ports;
  };
  static constexpr uint64_t kListenCacheNs = 1'000'000'000ull;
  static constexpr size_t kMaxListenCache = 1024;
  std::map<std::pair<uint64_t, bool>, Listening> listening_;
};

}  // namespace vigil
