#include "event_mapper.h"

#include <time.h>

#include <cstring>

#include "net.h"

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
  r.ppid = hdr.ppid ? hdr.ppid : p.ppid;
  r.uid = hdr.uid;
  r.comm.assign(hdr.comm, strnlen(hdr.comm, VIGIL_COMM_LEN));
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
    void operator()(const vigil_exit_event* e) { self.procs_.on_exit(*e); }
    void operator()(const vigil_conn_event* e) { self.handle_conn(*e, emit); }
    void operator()(const vigil_data_event*) {}
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
    conns_.on_open(e);
    body.conn = conn_ref(e.conn_id, e.tuple);
    body.state = "open";
  } else {
    ConnectionRecord r = conns_.on_close(e);
    body.conn = conn_ref(e.conn_id, r.tuple);
    body.state = "close";
    body.bytes_sent = e.bytes_sent;
    body.bytes_recv = e.bytes_recv;
  }
  out.body = std::move(body);
  emit(std::move(out));
}

}  // namespace vigil
