// The event model of DESIGN.md §4 (schema v1) and its JSON-lines encoding.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "base/fields.h"

namespace vigil {

inline constexpr int kSchemaVersion = 1;

struct ProcessRef {
  uint32_t pid = 0, tid = 0, ppid = 0, uid = 0;
  std::string comm, exe, cgroup, container_id, pod_uid;
  // In a cluster (agent/k8s), from the pod of pod_uid: namespace, pod, container,
  // the owning workload and the configured labels.
  std::string k8s_namespace{}, pod{}, container{}, workload_kind{}, workload{};
  std::vector<std::pair<std::string, std::string>> labels{};
};

struct Endpoint {
  std::string addr;
  uint16_t port = 0;
};

struct ConnRef {
  uint64_t id = 0;
  std::string proto;   // tcp | udp
  std::string family;  // ipv4 | ipv6
  std::string role;    // client | server
  Endpoint local, remote;
  // The encoded object (encode_conn_ref): made once per connection and shared by
  // every event of it (copying a ConnRef allocates nothing for it). Null: encoded
  // from the fields.
  std::shared_ptr<const std::string> json{};
};

// Fills c.json from c's fields (call again after changing them).
void encode_conn_ref(ConnRef& c);

using Headers = Fields;

struct ConnectionEvent {
  ConnRef conn;
  std::string state;  // open | close
  std::optional<uint64_t> bytes_sent, bytes_recv;  // on close
};

struct ApiCallEvent {
  ConnRef conn;
  std::string role;
  bool tls = false;
  std::string tls_lib;
  std::string protocol;
  struct Request {
    std::string method, host, path;
    std::optional<std::string> query;
    Headers headers;
  } request;
  struct Response {
    int status = 0;
    Headers headers;
    int interim = 0;  // 1xx responses before the final one (shown when > 0)
  } response;
  std::string endpoint;
  uint64_t latency_ns = 0, req_bytes = 0, resp_bytes = 0;
  bool truncated = false;
  std::vector<std::string> sensitive;
  struct Grpc {
    std::string service, method;
    int status = 0;
  };
  std::optional<Grpc> grpc;
  // Only with capture.bodies: true (already capped; redaction of bodies is the caller's).
  std::optional<std::string> request_body, response_body;
};

struct EgressEvent {
  std::string verdict, mode, policy, rule, proto;
  struct Dst {
    std::string addr;
    uint16_t port = 0;
    std::optional<std::string> fqdn;
  } dst;
};

struct EndpointRef {
  std::string method, host, path, protocol;
};

struct ApiDiscoveredEvent {
  std::string service, role;
  EndpointRef endpoint;
  uint64_t first_seen_ns = 0;  // wall clock
};

struct FindingEvent {
  std::string id, severity, title;
  std::optional<std::string> owasp, service;
  std::optional<EndpointRef> endpoint;  // method, host, path
  std::string evidence;
};

struct PolicyEvent {
  std::string name, action;
  std::optional<std::string> error;
};

struct LostEvent {
  std::string source;
  uint64_t count = 0;
};

// A signed statement of a chained file's end (agent/audit/checkpoint.h).
struct CheckpointEvent {
  std::string sink, file;
  uint64_t seq = 0;
  std::string hash, signature, checkpoint_time;
};

using EventBody = std::variant<ConnectionEvent, ApiCallEvent, EgressEvent, ApiDiscoveredEvent,
                               FindingEvent, PolicyEvent, LostEvent, CheckpointEvent>;

struct Event {
  uint64_t time_ns = 0;  // wall clock, ns since the epoch
  std::string node;
  uint64_t seq = 0;
  std::string_view boot_id;  // names the agent run (storage: the agent); seq is gap-free within it
  // Shared by the events of one batch (the api_calls a connection finished in one
  // read of the ring): built once, never copied per event.
  std::shared_ptr<const ProcessRef> process;
  EventBody body;

  const char* kind() const;
};

// "2026-11-22T08:30:00.123456789Z"
std::string format_rfc3339_ns(uint64_t wall_ns);
// One JSON object, no trailing newline, into a reused buffer (the hot path).
void encode_json(const Event& event, std::string& out);
std::string to_json(const Event& event);

}  // namespace vigil
