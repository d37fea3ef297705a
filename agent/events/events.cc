#include "agent/events/events.h"

#include <ctime>

#include <fmt/format.h>
#include "agent/events/json_writer.h"

namespace vigil {
namespace {

template <size_t N>
void endpoint_json(JsonWriter& w, const char (&key)[N], const Endpoint& e) {
  w.key(key).begin_object().field("addr", e.addr).field("port", e.port).end_object();
}

void conn_object(JsonWriter& w, const ConnRef& c) {
  w.begin_object().field("id", c.id).field("proto", c.proto).field("family", c.family).field("role", c.role);
  endpoint_json(w, "local", c.local);
  endpoint_json(w, "remote", c.remote);
  w.end_object();
}

void conn_json(JsonWriter& w, const ConnRef& c) {
  w.key("conn");
  if (c.json) w.raw_value(*c.json);
  else conn_object(w, c);
}

void headers_json(JsonWriter& w, const Headers& h) {
  if (h.empty()) return;
  w.key("headers").begin_object();
  for (const auto& [k, v] : h) w.field(k, v);
  w.end_object();
}

void process_json(JsonWriter& w, const ProcessRef& p) {
  w.key("process").begin_object().field("pid", p.pid).field("tid", p.tid).field("ppid", p.ppid)
      .field("uid", p.uid).field("comm", p.comm).field("exe", p.exe).field("cgroup", p.cgroup);
  if (!p.container_id.empty()) w.field("container_id", p.container_id);
  if (!p.pod_uid.empty()) w.field("pod_uid", p.pod_uid);
  if (!p.pod.empty()) {
    w.field("namespace", p.k8s_namespace).field("pod", p.pod);
    if (!p.container.empty()) w.field("container", p.container);
    w.key("workload").begin_object().field("kind", p.workload_kind).field("name", p.workload).end_object();
    if (!p.labels.empty()) {
      w.key("labels").begin_object();
      for (const auto& [k, v] : p.labels) w.field(k, v);
      w.end_object();
    }
  }
  w.end_object();
}

template <size_t N, class T>
void put_opt(JsonWriter& w, const char (&key)[N], const std::optional<T>& v) {
  if (v) w.field(key, *v);
}

struct BodyEncoder {
  JsonWriter& w;
  void operator()(const ConnectionEvent& e) const {
    conn_json(w, e.conn);
    w.field("state", e.state);
    put_opt(w, "bytes_sent", e.bytes_sent);
    put_opt(w, "bytes_recv", e.bytes_recv);
  }
  void operator()(const ApiCallEvent& e) const {
    conn_json(w, e.conn);
    w.field("role", e.role).field("tls", e.tls);
    if (!e.tls_lib.empty()) w.field("tls_lib", e.tls_lib);
    w.field("protocol", e.protocol);
    w.key("request").begin_object().field("method", e.request.method).field("host", e.request.host)
        .field("path", e.request.path);
    put_opt(w, "query", e.request.query);
    headers_json(w, e.request.headers);
    put_opt(w, "body", e.request_body);
    w.end_object();
    w.key("response").begin_object().field("status", e.response.status);
    if (e.response.interim > 0) w.field("interim", e.response.interim);
    headers_json(w, e.response.headers);
    put_opt(w, "body", e.response_body);
    w.end_object();
    w.field("endpoint", e.endpoint).field("latency_ns", e.latency_ns).field("req_bytes", e.req_bytes)
        .field("resp_bytes", e.resp_bytes).field("truncated", e.truncated);
    w.key("sensitive").begin_array();
    for (const auto& s : e.sensitive) w.value(s);
    w.end_array();
    if (e.grpc)
      w.key("grpc").begin_object().field("service", e.grpc->service).field("method", e.grpc->method)
          .field("status", e.grpc->status).end_object();
  }
  void operator()(const EgressEvent& e) const {
    w.field("verdict", e.verdict).field("mode", e.mode).field("policy", e.policy).field("rule", e.rule)
        .field("proto", e.proto);
    w.key("dst").begin_object().field("addr", e.dst.addr).field("port", e.dst.port);
    put_opt(w, "fqdn", e.dst.fqdn);
    w.end_object();
  }
  void operator()(const ApiDiscoveredEvent& e) const {
    w.field("service", e.service).field("role", e.role);
    w.key("endpoint").begin_object().field("method", e.endpoint.method).field("host", e.endpoint.host)
        .field("path", e.endpoint.path).field("protocol", e.endpoint.protocol).end_object();
    w.field("first_seen", format_rfc3339_ns(e.first_seen_ns));
  }
  void operator()(const FindingEvent& e) const {
    w.key("finding").begin_object().field("id", e.id).field("severity", e.severity)
        .field("title", e.title);
    put_opt(w, "owasp", e.owasp);
    put_opt(w, "service", e.service);
    if (e.endpoint)
      w.key("endpoint").begin_object().field("method", e.endpoint->method).field("host", e.endpoint->host)
          .field("path", e.endpoint->path).end_object();
    w.field("evidence", e.evidence).end_object();
  }
  void operator()(const PolicyEvent& e) const {
    w.key("policy").begin_object().field("name", e.name).field("action", e.action);
    put_opt(w, "error", e.error);
    w.end_object();
  }
  void operator()(const LostEvent& e) const {
    w.key("lost").begin_object().field("source", e.source).field("count", e.count).end_object();
  }
  void operator()(const CheckpointEvent& e) const {
    w.key("checkpoint").begin_object().field("sink", e.sink).field("file", e.file).field("seq", e.seq).field("hash", e.hash)
        .field("time", e.checkpoint_time).field("signature", e.signature).end_object();
  }
};

}  // namespace

const char* Event::kind() const {
  static constexpr const char* kKinds[] = {"connection", "api_call", "egress", "api_discovered",
                                           "finding",    "policy",   "lost",   "checkpoint"};
  static_assert(std::variant_size_v<EventBody> == std::size(kKinds));
  return kKinds[body.index()];
}

namespace {

// "YYYY-MM-DDTHH:MM:SS.nnnnnnnnnZ" (30 bytes) into `buf`, without fmt's allocation:
// every event carries one.
std::string_view rfc3339_ns_into(uint64_t wall_ns, char (&buf)[32]) {
  time_t secs = static_cast<time_t>(wall_ns / 1'000'000'000ull);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  auto digits = [&](char* p, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i, v /= 10) p[i] = static_cast<char>('0' + v % 10);
  };
  digits(buf, static_cast<uint64_t>(tm.tm_year + 1900) % 10000, 4);
  buf[4] = '-';
  digits(buf + 5, static_cast<uint64_t>(tm.tm_mon + 1), 2);
  buf[7] = '-';
  digits(buf + 8, static_cast<uint64_t>(tm.tm_mday), 2);
  buf[10] = 'T';
  digits(buf + 11, static_cast<uint64_t>(tm.tm_hour), 2);
  buf[13] = ':';
  digits(buf + 14, static_cast<uint64_t>(tm.tm_min), 2);
  buf[16] = ':';
  digits(buf + 17, static_cast<uint64_t>(tm.tm_sec), 2);
  buf[19] = '.';
  digits(buf + 20, wall_ns % 1'000'000'000ull, 9);
  buf[29] = 'Z';
  return {buf, 30};
}

}  // namespace

void encode_conn_ref(ConnRef& c) {
  std::string out;
  {
    JsonWriter w(out);
    conn_object(w, c);
  }
  c.json = std::make_shared<const std::string>(out);  // sized to the fragment, not to the writer's buffer
}

std::string format_rfc3339_ns(uint64_t wall_ns) {
  char buf[32];
  return std::string(rfc3339_ns_into(wall_ns, buf));
}

void encode_json(const Event& event, std::string& out) {
  out.clear();
  JsonWriter w(out);
  char time_buf[32];
  w.begin_object().field("v", kSchemaVersion).field("time", rfc3339_ns_into(event.time_ns, time_buf))
      .field("node", event.node).field("kind", event.kind()).field("seq", event.seq);
  if (!event.boot_id.empty()) w.field("boot_id", event.boot_id);
  if (event.process) process_json(w, *event.process);
  std::visit(BodyEncoder{w}, event.body);
  w.end_object();
}

std::string to_json(const Event& event) {
  std::string out;
  encode_json(event, out);
  return out;
}

}  // namespace vigil
