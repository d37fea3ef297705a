#include "event_mapper.h"

#include <time.h>

#include <cstring>

#include <sys/socket.h>

#include <fmt/format.h>

#include "net.h"
#include "protocols/http2/tracker.h"
#include "system.h"

namespace vigil {
namespace {
uint64_t clock_ns(clockid_t id) {
  timespec ts{};
  clock_gettime(id, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + ts.tv_nsec;
}
}  // namespace

void BootClock::resync() { offset_ns_ = clock_ns(CLOCK_REALTIME) - clock_ns(CLOCK_BOOTTIME); }
uint64_t BootClock::now_wall_ns() { return clock_ns(CLOCK_REALTIME); }

ConnRef conn_ref(uint64_t id, const vigil_conn_tuple& t) {
  ConnRef c;
  c.id = id;
  c.proto = t.proto == VIGIL_PROTO_UDP ? "udp" : "tcp";
  c.family = family_name(t.family);
  c.role = t.role == VIGIL_ROLE_SERVER ? "server" : "client";
  c.local = {format_addr(t.family, t.laddr), t.lport};
  c.remote = {format_addr(t.family, t.raddr), t.rport};
  return c;
}

ProcessRef EventMapper::process_ref(const vigil_event_header& hdr) {
  const ProcessInfo& p = procs_.resolve(hdr);
  ProcessRef r;
  r.pid = hdr.pid;
  r.tid = hdr.tid;
  // Payload records carry a lite header (no comm, uid, ppid): the table knows.
  bool full = hdr.comm[0] != '\0';
  r.ppid = full && hdr.ppid ? hdr.ppid : p.ppid;
  r.uid = full ? hdr.uid : p.uid;
  if (full) r.comm.assign(hdr.comm, strnlen(hdr.comm, VIGIL_COMM_LEN));
  else r.comm = p.comm;
  r.exe = p.exe;
  r.cgroup = p.cgroup;
  r.container_id = p.container.container_id;
  r.pod_uid = p.container.pod_uid;
  return r;
}

void EventMapper::handle(const KernelEvent& event, const Emit& emit) {
  struct Visitor {
    EventMapper& self;
    const Emit& emit;
    void operator()(const vigil_exec_event* e) { self.procs_.on_exec(*e); }
    void operator()(const vigil_fork_event* e) { self.procs_.on_fork(*e); }
    void operator()(const vigil_exit_event* e) {
      self.procs_.on_exit(*e);
      self.forget_process(*e, emit);
    }
    void operator()(const vigil_conn_event* e) { self.handle_conn(*e, emit); }
    void operator()(const vigil_data_event* e) { self.handle_data(*e, emit); }
  };
  std::visit(Visitor{*this, emit}, event);
}

void EventMapper::handle_conn(const vigil_conn_event& e, const Emit& emit) {
  Event out;
  out.time_ns = clock_.to_wall_ns(e.hdr.ts_ns);
  out.node = node_;
  out.process = process_ref(e.hdr);
  ConnectionEvent body;
  if (e.hdr.type == VIGIL_EV_CONN_OPEN) {
    vigil_conn_event opened = e;
    if (opened.tuple.role == 0) opened.tuple.role = guess_role(opened);  // met mid-stream (TLS)
    conns_.on_open(opened);
    body.conn = conn_ref(e.conn_id, opened.tuple);
    body.state = "open";
  } else {
    ConnectionRecord r = conns_.on_close(e);
    body.conn = conn_ref(e.conn_id, r.tuple);
    body.state = "close";
    body.bytes_sent = e.bytes_sent;
    body.bytes_recv = e.bytes_recv;
    if (auto it = http_.find(e.conn_id); it != http_.end()) {
      // Calls finished by the close (bodies delimited by it) go out before it.
      it->second.tracker->on_close(e.hdr.ts_ns);
      emit_exchanges(e.conn_id, it->second, emit);
      retire(it->second);
      http_.erase(it);
    }
  }
  out.body = std::move(body);
  emit(std::move(out));
}

uint8_t EventMapper::guess_role(const vigil_conn_event& e) const {
  if (e.tuple.proto != VIGIL_PROTO_TCP) return VIGIL_ROLE_CLIENT;
  std::string table = read_small_file(fmt::format("{}/{}/net/{}", proc_root_, e.hdr.pid,
                                                  e.tuple.family == AF_INET6 ? "tcp6" : "tcp"));
  return tcp_table_listens_on(table, e.tuple.lport) ? VIGIL_ROLE_SERVER : VIGIL_ROLE_CLIENT;
}

void EventMapper::handle_data(const vigil_data_event& e, const Emit& emit) {
  if (e.l7 != VIGIL_L7_HTTP1 && e.l7 != VIGIL_L7_HTTP2) return;
  auto it = http_.find(e.conn_id);
  if (it == http_.end()) {
    uint8_t role = e.role;
    if (role == 0) {  // tracked mid-stream: the open event's guess
      const ConnectionRecord* r = conns_.find(e.conn_id);
      role = r ? r->tuple.role : static_cast<uint8_t>(VIGIL_ROLE_CLIENT);
    }
    std::unique_ptr<ExchangeTracker> tracker;
    if (e.l7 == VIGIL_L7_HTTP2) tracker = std::make_unique<http2::Tracker>(role == VIGIL_ROLE_CLIENT, limits_);
    else tracker = std::make_unique<http1::Tracker>(role == VIGIL_ROLE_CLIENT, limits_);
    it = http_.emplace(e.conn_id, HttpConn{std::move(tracker), e.hdr, role, {}}).first;
  }
  HttpConn& c = it->second;
  c.last_hdr = e.hdr;
  if (e.tls) c.tls = e.tls;
  c.tracker->on_data(e.direction == VIGIL_DIR_EGRESS, e.offset, e.length, payload(e), e.hdr.ts_ns);
  emit_exchanges(e.conn_id, c, emit);
}

void EventMapper::forget_process(const vigil_exit_event& e, const Emit& emit) {
  // The kernel reports the close of every socket a process still held before
  // its exit event; what is left here lost its close (ring buffer full).
  for (uint64_t id : conns_.drop_process(e.hdr.pid)) {
    ++missed_closes_;
    if (auto it = http_.find(id); it != http_.end()) {
      it->second.tracker->on_close(e.hdr.ts_ns);
      emit_exchanges(id, it->second, emit);
      retire(it->second);
      http_.erase(it);
    }
  }
}

void EventMapper::tick(uint64_t now_boot_ns, const Emit& emit) {
  for (auto& [id, c] : http_) {
    c.tracker->tick(now_boot_ns);
    emit_exchanges(id, c, emit);
  }
}

void EventMapper::emit_exchanges(uint64_t conn_id, HttpConn& c, const Emit& emit) {
  auto& ready = c.tracker->exchanges();
  if (ready.empty()) return;
  if (!c.conn) {
    if (const ConnectionRecord* r = conns_.find(conn_id)) {
      c.conn = conn_ref(conn_id, r->tuple);
    } else {
      c.conn.emplace();
      c.conn->id = conn_id;  // the open was missed: only the role is known
      c.conn->role = c.role == VIGIL_ROLE_SERVER ? "server" : "client";
    }
  }
  const ConnRef& conn = *c.conn;
  ProcessRef proc = process_ref(c.last_hdr);
  for (const auto& x : ready) {
    Event out;
    out.time_ns = clock_.to_wall_ns(x.request.first_ts);
    out.node = node_;
    out.process = proc;
    ApiCallEvent call = make_api_call(x, conn, api_);
    if (c.tls) {
      call.tls = true;
      call.tls_lib = tls_name_ ? tls_name_(c.tls) : "";
    }
    out.body = std::move(call);
    ++retired_.api_calls;
    emit(std::move(out));
  }
  ready.clear();
}

void EventMapper::retire(HttpConn& c) {
  const auto& s = c.tracker->stats();
  retired_.unpaired_requests += s.unpaired_requests;
  retired_.unpaired_responses += s.unpaired_responses;
  retired_.partial_streams += s.partial_streams;
  retired_.gap_bytes += s.gap_bytes;
}

HttpStats EventMapper::http_stats() const {
  HttpStats s = retired_;
  for (const auto& [_, c] : http_) {
    s.unpaired_requests += c.tracker->stats().unpaired_requests;
    s.unpaired_responses += c.tracker->stats().unpaired_responses;
    s.partial_streams += c.tracker->stats().partial_streams;
    s.gap_bytes += c.tracker->stats().gap_bytes;
  }
  s.trackers = http_.size();
  s.missed_closes = missed_closes_;
  return s;
}

}  // namespace vigil
