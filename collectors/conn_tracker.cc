#include "collectors/conn_tracker.h"

#include <sys/socket.h>
#include <sys/stat.h>

#include <fmt/format.h>

#include "base/file.h"
#include "collectors/host/net.h"
#include "collectors/protocols/http1/tracker.h"
#include "collectors/protocols/http2/tracker.h"

namespace vigil {
namespace {

void add(HttpStats& total, const protocols::TrackerStats& s) {
  total.unpaired_requests += s.unpaired_requests;
  total.unpaired_responses += s.unpaired_responses;
  total.partial_streams += s.partial_streams;
  total.gap_bytes += s.gap_bytes;
}

}  // namespace

const ConnectionRecord& ConnTracker::on_open(const vigil_conn_event& e) {
  if (e.tuple.role != VIGIL_ROLE_UNKNOWN) return conns_.on_open(e);
  vigil_conn_event opened = e;  // met mid-stream (TLS)
  opened.tuple.role = guess_role(opened);
  return conns_.on_open(opened);
}

uint8_t ConnTracker::guess_role(const vigil_conn_event& e) {
  if (e.tuple.proto != VIGIL_PROTO_TCP) return VIGIL_ROLE_CLIENT;
  // The listening ports of the socket's network namespace, read at most once a
  // second per namespace: a user opening TLS sockets mid-stream by the thousand
  // would otherwise make the loop read a whole table each (security review F15).
  struct stat ns {};
  if (::stat(fmt::format("{}/{}/ns/net", proc_root_, e.hdr.pid).c_str(), &ns) != 0) return VIGIL_ROLE_CLIENT;
  bool v6 = e.tuple.family == AF_INET6;
  auto& l = listening_[{ns.st_ino, v6}];
  if (!l.read_ns || e.hdr.ts_ns - l.read_ns >= kListenCacheNs) {
    if (listening_.size() > kMaxListenCache) {  // namespaces come and go: start over
      listening_.clear();
      return guess_role(e);
    }
    l.read_ns = e.hdr.ts_ns ? e.hdr.ts_ns : 1;
    l.ports = listening_tcp_ports(read_small_file(fmt::format("{}/{}/net/{}", proc_root_, e.hdr.pid, v6 ? "tcp6" : "tcp")));
  }
  return l.ports.count(e.tuple.lport) ? VIGIL_ROLE_SERVER : VIGIL_ROLE_CLIENT;
}

ConnectionRecord ConnTracker::on_close(const vigil_conn_event& e, const Sink& sink) {
  // Exchanges the close completes (a body that ends with the connection) are
  // handed over while the connection's record still names its addresses.
  finish(e.conn_id, e.hdr.ts_ns, sink);
  return conns_.on_close(e);
}

void ConnTracker::on_data(const vigil_data_event& e, const Sink& sink) {
  if (e.l7 != VIGIL_L7_HTTP1 && e.l7 != VIGIL_L7_HTTP2) return;
  auto it = http_.find(e.conn_id);
  if (it == http_.end()) {
    uint8_t role = e.role;
    if (role == VIGIL_ROLE_UNKNOWN) {  // tracked mid-stream: the open event's guess
      const ConnectionRecord* r = conns_.find(e.conn_id);
      role = r ? r->tuple.role : static_cast<uint8_t>(VIGIL_ROLE_CLIENT);
    }
    std::unique_ptr<protocols::ExchangeTracker> tracker;
    if (e.l7 == VIGIL_L7_HTTP2) tracker = std::make_unique<http2::Tracker>(role == VIGIL_ROLE_CLIENT, limits_);
    else tracker = std::make_unique<http1::Tracker>(role == VIGIL_ROLE_CLIENT, limits_);
    it = http_.emplace(e.conn_id, Conn{std::move(tracker), e.hdr, role}).first;
  }
  Conn& c = it->second;
  c.last_hdr = e.hdr;
  if (e.tls) c.tls = e.tls;
  c.tracker->on_data(e.direction == VIGIL_DIR_EGRESS, e.offset, e.length, payload(e), e.hdr.ts_ns);
  deliver(e.conn_id, c, sink);
}

std::vector<uint64_t> ConnTracker::on_exit(uint32_t pid, uint64_t ts, const Sink& sink) {
  std::vector<uint64_t> ids = conns_.drop_process(pid, [&](uint64_t id) { finish(id, ts, sink); });
  retired_.missed_closes += ids.size();
  return ids;
}

void ConnTracker::finish(uint64_t conn_id, uint64_t ts, const Sink& sink) {
  auto it = http_.find(conn_id);
  if (it == http_.end()) return;
  it->second.tracker->on_close(ts);
  deliver(conn_id, it->second, sink);
  add(retired_, it->second.tracker->stats());
  http_.erase(it);
}

void ConnTracker::tick(uint64_t now_boot_ns, const Sink& sink) {
  for (auto& [id, c] : http_) {
    c.tracker->tick(now_boot_ns);
    deliver(id, c, sink);
  }
}

void ConnTracker::deliver(uint64_t conn_id, Conn& c, const Sink& sink) {
  auto& ready = c.tracker->exchanges();
  if (ready.empty()) return;
  retired_.api_calls += ready.size();
  sink(FinishedExchanges{conn_id, c.role, c.tls, &c.last_hdr, &ready});
  ready.clear();
}

HttpStats ConnTracker::stats() const {
  HttpStats s = retired_;
  for (const auto& [_, c] : http_) add(s, c.tracker->stats());
  s.trackers = http_.size();
  return s;
}

}  // namespace vigil
