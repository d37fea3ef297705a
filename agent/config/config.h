// vigild configuration (DESIGN.md §5): the embedded default, and strict parsing
// of a YAML file where unknown keys and wrong types name key, file, line, column.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/result.h"

namespace vigil {

struct SinkConfig {
  std::string type;     // stdout | file | syslog | webhook | otlp
  std::string name;     // spool directory, metrics, lost{source:"sink_<name>"}; default: the type
  std::string path;     // file
  std::string address;  // syslog: udp://host:port, tcp://host:port, unix:///dev/log
  std::string url;      // webhook; otlp: the whole logs URL
  std::string endpoint; // otlp: base URL, /v1/logs appended (OTEL_EXPORTER_OTLP_ENDPOINT's rule)
  std::vector<std::string> kinds;    // empty: every kind of events.kinds
  std::string min_severity = "info";  // info | low | medium | high | critical
  uint32_t queue_max_mb = 16;         // in memory, before shedding by class
  uint32_t spool_max_mb = 256;        // network sinks' disk spool
  uint32_t fsync_interval_ms = 1000;  // the spool reaches the disk this often
  uint32_t max_size_mb = 100;         // file: rotate beyond this (0: never)
  uint32_t max_files = 10;            // file: PATH and PATH.1 .. PATH.<max_files-1>
  bool chain = true;                  // file: the hash chain (vigil audit verify)
  std::string compress = "none";      // file: none | zstd (rotated files become PATH.N.zst)
  std::string facility = "daemon";    // syslog (RFC 5424 facility name)
  std::string app_name = "vigil";     // syslog APP-NAME
  std::string format;                 // webhook body: json (an array, the default) | jsonl;
                                      // syslog: rfc5424 | rfc3164 (default: rfc3164 on unix://, else rfc5424)
  bool gzip = false;                  // webhook, otlp: Content-Encoding: gzip
  std::vector<std::pair<std::string, std::string>> headers;  // webhook, otlp: e.g. Authorization
  std::string ca, client_cert, client_key;  // TLS (https://, syslog tls://): PEM files; mTLS with both
  std::string server_name;                  // TLS: the certificate name to expect (default: the host)
  uint32_t timeout_ms = 10000;              // network sinks: connect and I/O
};

// capture.level: how much of each call the agent looks at (README "How capture works").
enum class CaptureLevel : uint8_t { kMetadata = 0, kHeaders = 1, kFull = 2 };
std::optional<CaptureLevel> parse_capture_level(std::string_view s);
std::string_view to_string(CaptureLevel l);

// capture.rules: the first rule whose given fields all match sets the level of a
// call (an absent field matches anything; a rule gives at least one field).
struct CaptureRule {
  CaptureLevel level = CaptureLevel::kHeaders;
  std::vector<std::string> binaries;   // executable path globs
  std::vector<std::string> comms;      // process names (globs)
  std::vector<std::string> cgroups;    // cgroup v2 path globs (the cgroup and those below it)
  std::vector<uint32_t> uids;
  std::vector<uint16_t> ports;         // the service's port: local when serving, remote when calling
  std::vector<std::string> endpoints;  // "[METHOD ]/path/template/*" globs ('*' crosses '/')
};

struct Config {
  std::string node_name;  // empty: hostname
  std::string data_dir = "/var/lib/vigil";
  std::string control_socket = "/run/vigil/vigil.sock";
  struct Capture {
    bool http = true;
    bool tls = true;
    uint32_t max_capture_bytes = 16384;
    bool bodies = false;
    std::vector<std::string> exclude_comms;
    // metadata: method, host, path, status, latency, sizes; headers: plus the header
    // fields; full: plus the bodies. At headers, the first full_first calls of each
    // endpoint and 1 in full_sample_every after them are looked at in full (0: none).
    CaptureLevel level = CaptureLevel::kHeaders;
    uint32_t full_first = 20;
    uint32_t full_sample_every = 100;
    std::vector<CaptureRule> rules;
  } capture;
  struct Events {
    std::vector<std::string> kinds;
    // Which api_call events are shipped: all, notable (first of an endpoint, findings,
    // 5xx, 401/403, sensitive data), sampled (notable + 1 in api_call_sample_every).
    std::string api_call = "all";
    uint32_t api_call_sample_every = 100;
    std::vector<SinkConfig> sinks;
  } events;
  struct Policies {
    std::string dir = "/etc/vigil/policies.d";
    std::string pin_dir = "/sys/fs/bpf/vigil";  // bpffs: enforcement outlives the agent
    std::vector<uint16_t> dns_ports = {53};      // UDP source ports of DNS answers to learn from
    uint32_t dns_min_ttl = 30;                   // seconds a learnt name is kept at least
  } policies;
  struct Audit {
    std::string key_file;     // HMAC-SHA-256 key of the chain (else plain SHA-256)
    std::string signing_key;  // Ed25519 key for checkpoints (vigil audit keygen)
    uint32_t checkpoint_interval_s = 60;
  } audit;
  struct Metrics {
    std::string listen = "127.0.0.1:9464";
  } metrics;
  struct ApiMap {
    bool enabled = true;                      // the API inventory (agent/apimap)
    std::vector<std::string> path_hints;      // forced templates
    std::vector<std::string> declared_specs;  // OpenAPI files: templates, shadow/zombie findings
    uint32_t max_endpoints = 10000;           // per node; the stalest beyond are evicted
  } apimap;

  struct Kubernetes {
    // auto: on when the service account's token file exists (in a pod); true: required
    // (a missing token is an error at start); false: off.
    std::string enabled = "auto";
    std::string api_server;  // empty: https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT
    std::string token_file = "/var/run/secrets/kubernetes.io/serviceaccount/token";
    std::string ca_file = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
    // The pod labels events carry (all labels are used by policy selectors).
    std::vector<std::string> labels = {"app", "app.kubernetes.io/name", "app.kubernetes.io/instance",
                                       "app.kubernetes.io/version", "version"};
    uint32_t max_pods = 4096;  // cached pods of this node; more are counted, not kept
    // An http:// api_server sends the service account's token in clear: refused
    // unless this says so (a test API server on loopback).
    bool allow_insecure_http = false;
  } kubernetes;

  bool kind_enabled(std::string_view kind) const;
};

// events.api_call: which api_call events are shipped.
enum class ApiCallEmission : uint8_t { kAll, kSampled, kNotable };
std::optional<ApiCallEmission> parse_api_call_emission(std::string_view s);
std::string_view to_string(ApiCallEmission e);

// Every event kind of DESIGN.md §4.
const std::vector<std::string>& all_event_kinds();

// The configuration vigild runs with when no --config is given.
std::string_view default_config_yaml();

// `source` names the text in errors (a file path, or "<default>").
Result<Config> parse_config(std::string_view yaml, std::string_view source);
Result<Config> load_config_file(const std::string& path);

}  // namespace vigil
