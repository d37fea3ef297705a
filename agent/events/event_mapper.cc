#include "agent/events/event_mapper.h"

#include <cstring>

#include "collectors/host/net.h"

namespace vigil {

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

EventMapper::EventMapper(ProcessTable& procs, ConnectionTable& conns, const BootClock& clock, std::string node,
                         ApiCallOptions api, size_t body_keep, ApiCallSampler::Options emission,
                         CaptureOptions capture)
    : procs_(procs), clock_(clock), node_(std::move(node)), api_(api), sampler_(emission),
      capture_(std::move(capture)),
      tracker_(conns, protocols::Limits{.body_keep = body_keep}) {}

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
  if (enricher_ && (!r.pod_uid.empty() || !r.container_id.empty())) enricher_(r);
  return r;
}

ConnTracker::Sink EventMapper::sink(const Emit& emit) {
  return [this, &emit](const FinishedExchanges& done) { emit_calls(done, emit); };
}

void EventMapper::handle(const vigil_exec_event& e, const Emit&) { procs_.on_exec(e); }
void EventMapper::handle(const vigil_fork_event& e, const Emit&) { procs_.on_fork(e); }

void EventMapper::handle(const vigil_exit_event& e, const Emit& emit) {
  procs_.on_exit(e);
  for (uint64_t id : tracker_.on_exit(e.hdr.pid, e.hdr.ts_ns, sink(emit))) conn_refs_.erase(id);
}

void EventMapper::handle(const vigil_conn_event& e, const Emit& emit) {
  Event out;
  out.time_ns = clock_.to_wall_ns(e.hdr.ts_ns);
  out.node = node_;
  out.process = std::make_shared<const ProcessRef>(process_ref(e.hdr));
  ConnectionEvent body;
  if (e.hdr.type == VIGIL_EV_CONN_OPEN) {
    body.conn = conn_ref(e.conn_id, tracker_.on_open(e).tuple);
    body.state = "open";
  } else {
    ConnectionRecord r = tracker_.on_close(e, sink(emit));
    conn_refs_.erase(e.conn_id);
    body.conn = conn_ref(e.conn_id, r.tuple);
    body.state = "close";
    body.bytes_sent = e.bytes_sent;
    body.bytes_recv = e.bytes_recv;
  }
  out.body = std::move(body);
  emit(std::move(out));
}

void EventMapper::handle(const vigil_data_event& e, const Emit& emit) { tracker_.on_data(e, sink(emit)); }

void EventMapper::tick(uint64_t now_boot_ns, const Emit& emit) { tracker_.tick(now_boot_ns, sink(emit)); }

void EventMapper::emit_calls(const FinishedExchanges& done, const Emit& emit) {
  auto [it, fresh] = conn_refs_.try_emplace(done.conn_id);
  ConnRef& conn = it->second;
  if (fresh) {
    if (const ConnectionRecord* r = tracker_.connection(done.conn_id)) {
      conn = conn_ref(done.conn_id, r->tuple);
    } else {
      conn.id = done.conn_id;  // the open was missed: only the role is known
      conn.role = done.role == VIGIL_ROLE_SERVER ? "server" : "client";
    }
    encode_conn_ref(conn);
  }
  auto proc = std::make_shared<const ProcessRef>(process_ref(*done.last_hdr));
  const CaptureScope scope = capture_.for_connection(*proc, conn);
  for (auto& x : *done.exchanges) {
    Event out;
    out.time_ns = clock_.to_wall_ns(x.request.first_ts);
    out.node = node_;
    out.process = proc;
    const bool all = sampler_.ships_all();
    // The payload (headers, bodies) is added once the event is known to ship,
    // after the inventory saw the raw exchange: its header fields move, not copy.
    ApiCallEvent call = make_api_call(x, conn, api_, false);
    if (done.tls) {
      call.tls = true;
      call.tls_lib = tls_name_ ? tls_name_(done.tls) : "";
    }
    CallOutcome seen;
    if (observer_) seen = observer_(x, *proc, call, out.time_ns, scope);
    else seen.level = capture_.for_call(scope, call.request.method, call.endpoint, calls_++);
    capture_.count(seen.level);
    if (!sampler_.ship(all ? 0 : notable_reasons(call, seen.reasons))) continue;
    add_api_call_payload(call, std::move(x), api_, seen.level);
    out.body = std::move(call);
    emit(std::move(out));
  }
}

}  // namespace vigil
