#include "events.h"

#include <ctime>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

namespace vigil {
namespace {

using Json = nlohmann::ordered_json;

Json endpoint_json(const Endpoint& e) { return Json{{"addr", e.addr}, {"port", e.port}}; }

Json conn_json(const ConnRef& c) {
  return Json{{"id", c.id},          {"proto", c.proto},
              {"family", c.family},  {"role", c.role},
              {"local", endpoint_json(c.local)}, {"remote", endpoint_json(c.remote)}};
}

Json headers_json(const Headers& h) {
  Json out = Json::object();
  for (const auto& [k, v] : h) out[k] = v;
  return out;
}

Json process_json(const ProcessRef& p) {
  Json j{{"pid", p.pid}, {"tid", p.tid}, {"ppid", p.ppid}, {"uid", p.uid},
         {"comm", p.comm}, {"exe", p.exe}, {"cgroup", p.cgroup}};
  if (!p.container_id.empty()) j["container_id"] = p.container_id;
  if (!p.pod_uid.empty()) j["pod_uid"] = p.pod_uid;
  return j;
}

template <class T>
void put_opt(Json& j, const char* key, const std::optional<T>& v) {
  if (v) j[key] = *v;
}

struct BodyEncoder {
  Json& j;
  void operator()(const ConnectionEvent& e) const {
    j["conn"] = conn_json(e.conn);
    j["state"] = e.state;
    put_opt(j, "bytes_sent", e.bytes_sent);
    put_opt(j, "bytes_recv", e.bytes_recv);
  }
  void operator()(const ApiCallEvent& e) const {
    j["conn"] = conn_json(e.conn);
    j["role"] = e.role;
    j["tls"] = e.tls;
    if (!e.tls_lib.empty()) j["tls_lib"] = e.tls_lib;
    j["protocol"] = e.protocol;
    Json req{{"method", e.request.method}, {"host", e.request.host}, {"path", e.request.path}};
    put_opt(req, "query", e.request.query);
    if (!e.request.headers.empty()) req["headers"] = headers_json(e.request.headers);
    put_opt(req, "body", e.request_body);
    j["request"] = std::move(req);
    Json resp{{"status", e.response.status}};
    if (!e.response.headers.empty()) resp["headers"] = headers_json(e.response.headers);
    put_opt(resp, "body", e.response_body);
    j["response"] = std::move(resp);
    j["endpoint"] = e.endpoint;
    j["latency_ns"] = e.latency_ns;
    j["req_bytes"] = e.req_bytes;
    j["resp_bytes"] = e.resp_bytes;
    j["truncated"] = e.truncated;
    j["sensitive"] = e.sensitive;
    if (e.grpc)
      j["grpc"] = Json{{"service", e.grpc->service}, {"method", e.grpc->method},
                       {"status", e.grpc->status}};
  }
  void operator()(const EgressEvent& e) const {
    j["verdict"] = e.verdict;
    j["mode"] = e.mode;
    j["policy"] = e.policy;
    j["rule"] = e.rule;
    j["proto"] = e.proto;
    Json dst{{"addr", e.dst.addr}, {"port", e.dst.port}};
    put_opt(dst, "fqdn", e.dst.fqdn);
    j["dst"] = std::move(dst);
  }
  void operator()(const ApiDiscoveredEvent& e) const {
    j["service"] = e.service;
    j["endpoint"] = Json{{"method", e.endpoint.method}, {"host", e.endpoint.host},
                         {"path", e.endpoint.path}};
    j["first_seen"] = format_rfc3339_ns(e.first_seen_ns);
  }
  void operator()(const FindingEvent& e) const {
    Json f{{"id", e.id}, {"severity", e.severity}, {"title", e.title}};
    put_opt(f, "owasp", e.owasp);
    put_opt(f, "service", e.service);
    put_opt(f, "endpoint", e.endpoint);
    f["evidence"] = e.evidence;
    j["finding"] = std::move(f);
  }
  void operator()(const PolicyEvent& e) const {
    Json p{{"name", e.name}, {"action", e.action}};
    put_opt(p, "error", e.error);
    j["policy"] = std::move(p);
  }
  void operator()(const LostEvent& e) const {
    j["lost"] = Json{{"source", e.source}, {"count", e.count}};
  }
};

}  // namespace

const char* Event::kind() const {
  static constexpr const char* kKinds[] = {"connection",     "api_call", "egress", "api_discovered",
                                           "finding",        "policy",   "lost"};
  static_assert(std::variant_size_v<EventBody> == std::size(kKinds));
  return kKinds[body.index()];
}

std::string format_rfc3339_ns(uint64_t wall_ns) {
  time_t secs = static_cast<time_t>(wall_ns / 1'000'000'000ull);
  struct tm tm {};
  gmtime_r(&secs, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, wall_ns % 1'000'000'000ull);
}

std::string to_json(const Event& event) {
  Json j{{"v", kSchemaVersion},
         {"time", format_rfc3339_ns(event.time_ns)},
         {"node", event.node},
         {"kind", event.kind()},
         {"seq", event.seq}};
  if (event.process) j["process"] = process_json(*event.process);
  std::visit(BodyEncoder{j}, event.body);
  // Replace, not throw, on invalid UTF-8 (comm and paths are arbitrary bytes).
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace vigil
